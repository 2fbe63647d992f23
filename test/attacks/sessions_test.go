package attacks_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Attacks on session sandboxes through the files and archive API: the
// program in the sandbox keeps running (or has left its traps in /work)
// while the daemon reads and writes its /work as root on the host.

// TestSessionAttacks runs them against one daemon (the suite's), each in a
// sandbox of its own that it deletes before the host check.
func TestSessionAttacks(t *testing.T) {
	s := newSuite(t)
	for i, a := range sessionAttacks() {
		t.Run(a.class+"/"+a.name, func(t *testing.T) { s.runAttack(t, 900+i, a) })
	}
}

func sessionAttacks() []attack {
	return []attack{
		{class: "escape", name: "files API: /work/d swapped between a directory and a link to / during 2,000 GETs, 100 archives and 200 PUTs",
			expected: "host /etc/shadow never read, /etc/sandboxd-pwned never made", run: filesSwapRace},
		{class: "escape", name: "files API: links to /etc/shadow, to / and to the host sentinel left in /work",
			expected: "400 or 404, never content; links inside /work followed", run: filesSymlinks},
		{class: "daemon", name: "files API: a FIFO in /work read, written and archived",
			expected: "400 within 5 s, daemon fine", run: filesFIFO},
		{class: "daemon", name: "files API: /work/f swapped between a file and a FIFO during 500 GETs and 500 PUTs",
			expected: "every call answered within 5 s", run: filesFIFOSwap},
		{class: "escape", name: "archive: absolute, .., links out, hard link, devices, setuid in an uploaded tar",
			expected: "400, nothing outside /work; setuid bit dropped", run: hostileTars},
		{class: "escape", name: "files API: what PUT and archive write belongs to the sandbox user",
			expected: "owner nobody (65534), never root", run: filesOwnership},
	}
}

// session is one attack's sandbox: id, its raw HTTP client, and its end.
type session struct {
	s    *suite
	id   string
	http *http.Client
}

func (s *suite) newSession(marker string) (*session, error) {
	sb, err := s.d.Client.CreateSandbox(context.Background(), &api.CreateSandboxRequest{Image: "busybox", Env: s.env(marker)})
	if err != nil {
		return nil, err
	}
	hc := testdaemon.HTTPClient(s.d.Socket)
	// Raw answers: a redirect would be the daemon's answer to judge, not
	// one to follow.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Timeout = 10 * time.Second
	return &session{s: s, id: sb.ID, http: hc}, nil
}

// end deletes the sandbox: the host check wants nothing of it left.
func (ss *session) end() error { return ss.s.d.Client.DeleteSandbox(context.Background(), ss.id) }

// exec runs script (sh -c, the marker as $0) in the sandbox.
func (ss *session) exec(script, marker string, wallMS int64) (*api.ExecuteResponse, error) {
	return ss.s.d.Client.Exec(context.Background(), ss.id, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", script, marker},
		Limits: &api.Limits{WallTimeMS: ptr(wallMS)}})
}

// call sends one files or archive request, rest being the URL after the
// sandbox's id ("/files/a?follow=1"); it returns the status and body, or
// status 0 and the error.
func (ss *session) call(method, rest string, body []byte) (int, []byte) {
	req, err := http.NewRequest(method, "http://sandboxd/v1/sandboxes/"+ss.id+rest, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	resp, err := ss.http.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// leaked reports host content in body: the first line of the host's
// /etc/shadow (root's entry, with its hash) or the suite's secret. (Not
// "root:" alone: an error naming /work/root says "/work/root: ...".)
func (s *suite) leaked(body, shadow []byte) bool {
	first, _, _ := bytes.Cut(shadow, []byte("\n"))
	return bytes.Contains(body, []byte(s.secret)) || (len(first) > 0 && bytes.Contains(body, first))
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// filesSwapRace: an exec swaps /work/d between a real directory (holding
// a decoy etc/shadow) and a symlink to / as fast as it can, while the
// client GETs d/etc/shadow, with and without follow, and PUTs through d.
func filesSwapRace(t *testing.T, s *suite, marker string) (string, bool) {
	shadow, err := os.ReadFile("/etc/shadow")
	if err != nil || !bytes.HasPrefix(shadow, []byte("root:")) || exists("/etc/sandboxd-pwned") {
		return fmt.Sprintf("host not ready: /etc/shadow %v, /etc/sandboxd-pwned exists %v", err, exists("/etc/sandboxd-pwned")), false
	}
	ss, err := s.newSession(marker)
	if err != nil {
		return "create: " + err.Error(), false
	}
	defer ss.end()
	go func() { // ends when the sandbox is deleted
		_, _ = ss.exec(`while :; do rm -rf d; mkdir -p d/etc; echo decoy > d/etc/shadow; rm -rf d; ln -s / d; done`, marker, 15000)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for st, b := ss.call("GET", "/files/d/etc/shadow", nil); st != 200 || string(b) != "decoy\n"; st, b = ss.call("GET", "/files/d/etc/shadow", nil) {
		if time.Now().After(deadline) {
			return "the swapping loop never showed its decoy", false
		}
	}
	seen := map[string]int{}
	for i := 0; i < 1000; i++ {
		for _, q := range []string{"/files/d/etc/shadow", "/files/d/etc/shadow?follow=1"} {
			st, body := ss.call("GET", q, nil)
			if s.leaked(body, shadow) {
				return fmt.Sprintf("HOST /etc/shadow READ through the swap (GET %d %s)", i, q), false
			}
			seen[fmt.Sprint(st)]++
		}
		if i%10 == 0 { // the archive walks d: never through the link
			st, body := ss.call("GET", "/archive?path=/work/d", nil)
			if s.leaked(body, shadow) {
				return fmt.Sprintf("HOST /etc/shadow READ through the swap (archive %d)", i), false
			}
			seen[fmt.Sprint("archive ", st)]++
		}
	}
	for i := 0; i < 200; i++ {
		st, _ := ss.call("PUT", "/files/d/etc/sandboxd-pwned", []byte(marker))
		seen["PUT "+fmt.Sprint(st)]++
		if exists("/etc/sandboxd-pwned") {
			return fmt.Sprintf("HOST /etc/sandboxd-pwned WRITTEN through the swap (PUT %d)", i), false
		}
	}
	for k := range seen {
		if strings.HasSuffix(k, " 0") || k == "0" || strings.HasSuffix(k, "500") {
			return fmt.Sprintf("a broken answer: %v", seen), false
		}
	}
	// Both states of d were met: the decoy read, the link refused.
	return fmt.Sprintf("nothing of the host: %v", seen), seen["200"] > 0 && seen["400"] > 0
}

// filesSymlinks: links the program leaves in /work, asked for by path,
// as a parent directory, with and without follow.
func filesSymlinks(t *testing.T, s *suite, marker string) (string, bool) {
	shadow, _ := os.ReadFile("/etc/shadow")
	ss, err := s.newSession(marker)
	if err != nil {
		return "create: " + err.Error(), false
	}
	defer ss.end()
	r, err := ss.exec(`ln -s /etc/shadow s && ln -s / root && ln -s ../../../../etc/shadow rel && ln -s $SENT/secret sent && ln -s $SENT sentdir &&
mkdir real && echo inside > real/f && ln -s /work/real l && echo ok`, marker, 5000)
	if err != nil || r.Run.Stdout != "ok\n" {
		return fmt.Sprintf("setup: %v %+v", err, r), false
	}
	for _, tt := range []struct {
		method, rest string
		want         []int // acceptable statuses
		body         string
	}{
		{"GET", "/files/s", []int{400}, ""},
		{"GET", "/files/s?follow=1", []int{400, 404}, ""},
		{"GET", "/files/rel?follow=1", []int{400, 404}, ""},
		{"GET", "/files/sent?follow=1", []int{400, 404}, ""},
		{"GET", "/files/sentdir/secret?follow=1", []int{400, 404}, ""},
		{"GET", "/files/root/etc/passwd", []int{400}, ""},
		{"GET", "/files/root/etc/passwd?follow=1", []int{400, 404}, ""},
		{"GET", "/files/root?follow=1", []int{400, 404}, ""},
		{"GET", "/files/root/etc?follow=1&recursive=1", []int{400, 404}, ""},
		{"GET", "/files/l/f", []int{400}, ""},
		{"GET", "/files/l/f?follow=1", []int{200}, "inside\n"},
		{"GET", "/archive?path=/work/root", []int{200}, ""},
		{"GET", "/archive?path=/work/root/etc", []int{400, 404}, ""},
		{"GET", "/archive?path=/work", []int{200}, ""},
		{"PUT", "/files/s", []int{400}, ""},
		{"PUT", "/files/root/etc/sandboxd-" + marker, []int{400}, ""},
		{"PUT", "/files/sentdir/written", []int{400}, ""},
		{"PUT", "/archive?path=/work/root/etc", []int{400}, ""},
		{"DELETE", "/files/sentdir/secret", []int{400}, ""},
		{"DELETE", "/files/l?recursive=1", []int{204}, ""},
		{"GET", "/files/real/f", []int{200}, "inside\n"},
	} {
		st, body := ss.call(tt.method, tt.rest, []byte(marker))
		if s.leaked(body, shadow) {
			return fmt.Sprintf("HOST FILE READ: %s %s: %d %q", tt.method, tt.rest, st, clip(string(body))), false
		}
		okStatus := false
		for _, w := range tt.want {
			okStatus = okStatus || st == w
		}
		if !okStatus || (tt.body != "" && string(body) != tt.body) {
			return fmt.Sprintf("%s %s: %d %q, want %v %q", tt.method, tt.rest, st, clip(string(body)), tt.want, tt.body), false
		}
	}
	if exists("/etc/sandboxd-"+marker) || exists(filepath.Join(s.sentinel, "written")) {
		return "a file WRITTEN on the host through a link", false
	}
	if b, _ := os.ReadFile("/etc/shadow"); !bytes.Equal(b, shadow) {
		return "host /etc/shadow CHANGED", false
	}
	return "links refused or kept inside /work; /work/real followed", true
}

// filesFIFO: a FIFO nobody writes to must not hold a files call.
func filesFIFO(t *testing.T, s *suite, marker string) (string, bool) {
	ss, err := s.newSession(marker)
	if err != nil {
		return "create: " + err.Error(), false
	}
	defer ss.end()
	if r, err := ss.exec(`mkfifo p && mkdir d && mkfifo d/q && ln -s p lp && echo ok`, marker, 5000); err != nil || r.Run.Stdout != "ok\n" {
		return fmt.Sprintf("setup: %v %+v", err, r), false
	}
	var bad []string
	for _, tt := range []struct {
		method, rest string
		want         int
	}{
		{"GET", "/files/p", 400}, {"GET", "/files/p?follow=1", 400}, {"GET", "/files/lp?follow=1", 400},
		{"PUT", "/files/p", 400}, {"PUT", "/files/d/q", 400}, {"GET", "/archive?path=/work/p", 400},
		{"GET", "/archive?path=/work/d", 200}, {"GET", "/files/d", 200}, {"DELETE", "/files/p", 204},
	} {
		start := time.Now()
		st, body := ss.call(tt.method, tt.rest, []byte("x"))
		if el := time.Since(start); el > 5*time.Second || st != tt.want {
			bad = append(bad, fmt.Sprintf("%s %s: %d %q after %v, want %d at once", tt.method, tt.rest, st, clip(string(body)), el.Round(time.Millisecond), tt.want))
		}
	}
	if _, err := s.d.Client.Health(context.Background()); err != nil {
		bad = append(bad, "the daemon does not answer: "+err.Error())
	}
	if len(bad) > 0 {
		return strings.Join(bad, "; "), false
	}
	return "9 calls answered at once: FIFOs refused, skipped in a directory's archive", true
}

// filesFIFOSwap: an exec swaps /work/f between a regular file and a FIFO
// as fast as it can while the client GETs and PUTs it: no call may wait
// for a FIFO's other end.
func filesFIFOSwap(t *testing.T, s *suite, marker string) (string, bool) {
	ss, err := s.newSession(marker)
	if err != nil {
		return "create: " + err.Error(), false
	}
	defer ss.end()
	go func() { // ends when the sandbox is deleted
		_, _ = ss.exec(`while :; do rm -f f; echo data > f; rm -f f; mkfifo f && usleep 500; done`, marker, 45000)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for st, b := ss.call("GET", "/files/f", nil); st != 200 || string(b) != "data\n"; st, b = ss.call("GET", "/files/f", nil) {
		if time.Now().After(deadline) {
			return "the swapping loop never showed its file", false
		}
	}
	seen := map[string]int{}
	var slowest time.Duration
	// 500 calls of each, and GETs until both a file and a FIFO were met:
	// on a loaded machine the loop in the sandbox can stall for longer
	// than 500 GETs take (CI once saw 500 files and no FIFO).
	raced := func() bool { return seen["GET 400"] > 0 && seen["GET 200"] > 0 }
	deadline = time.Now().Add(20 * time.Second) // the loop runs for 45 s at most
	for _, m := range []string{"GET", "PUT"} {
		for i := 0; i < 500 || m == "GET" && !raced() && time.Now().Before(deadline); i++ {
			start := time.Now()
			st, _ := ss.call(m, "/files/f", []byte("x"))
			slowest = max(slowest, time.Since(start))
			seen[fmt.Sprint(m, " ", st)]++
			if st == 0 || st >= 500 {
				return fmt.Sprintf("%s %d: %v", m, i, seen), false
			}
		}
	}
	seen["the slowest ms"] = int(slowest.Milliseconds())
	return fmt.Sprintf("%v", seen), slowest < 5*time.Second && raced()
}

// entry is one tar header, with content for a regular file.
type entry struct {
	hdr  tar.Header
	body string
}

func tarball(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		_ = tw.WriteHeader(&h)
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	return buf.Bytes()
}

func reg(name, body string) entry { return entry{tar.Header{Typeflag: tar.TypeReg, Name: name}, body} }

// hostileTars uploads archives that aim outside /work; each is refused and
// nothing named after the attack appears on the host.
func hostileTars(t *testing.T, s *suite, marker string) (string, bool) {
	ss, err := s.newSession(marker)
	if err != nil {
		return "create: " + err.Error(), false
	}
	defer ss.end()
	if r, err := ss.exec(`ln -s / rootlink && ln -s $SENT sentlink && echo ok`, marker, 5000); err != nil || r.Run.Stdout != "ok\n" {
		return fmt.Sprintf("setup: %v %+v", err, r), false
	}
	esc := "escape-" + marker
	link := func(name, target string, typ byte) entry {
		return entry{tar.Header{Typeflag: typ, Name: name, Linkname: target}, ""}
	}
	for _, tt := range []struct {
		name, dir string
		tar       []byte
	}{
		{"absolute name", "/work", tarball(reg("/"+esc, marker), reg("/etc/"+esc, marker))},
		{"../ name", "/work", tarball(reg("../"+esc, marker))},
		{"../ deep name", "/work/a", tarball(reg("b/../../../../../../"+esc, marker))},
		{"symlink to /etc, then a file through it", "/work", tarball(link("etc", "/etc", tar.TypeSymlink), reg("etc/"+esc, marker))},
		{"symlink climbing out, then a file through it", "/work", tarball(link("up", "../../..", tar.TypeSymlink), reg("up/etc/"+esc, marker))},
		{"symlink to its own dir, then a file through it", "/work", tarball(reg("sub/x", ""), link("sub/l", "..", tar.TypeSymlink), reg("sub/l/"+esc, marker))},
		{"hard link to /etc/shadow", "/work", tarball(link("hl", "/etc/shadow", tar.TypeLink))},
		{"hard link to a file of the archive", "/work", tarball(reg("f", "x"), link("hl2", "f", tar.TypeLink))},
		{"char device /dev/mem", "/work", tarball(entry{tar.Header{Typeflag: tar.TypeChar, Name: "mem", Devmajor: 1, Devminor: 1}, ""})},
		{"block device", "/work", tarball(entry{tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Devmajor: 8}, ""})},
		{"FIFO", "/work", tarball(entry{tar.Header{Typeflag: tar.TypeFifo, Name: "fifo"}, ""})},
		{"control character in a name", "/work", tarball(reg("a\x1b[2Jb", marker))},
		{"extraction into a link to /", "/work/rootlink/etc", tarball(reg(esc, marker))},
		{"extraction into a link to the host sentinel", "/work/sentlink", tarball(reg(esc, marker))},
		{"extraction dir outside /work", "/etc", tarball(reg(esc, marker))},
	} {
		st, body := ss.call("PUT", "/archive?path="+slashes(tt.dir), tt.tar)
		if st != http.StatusBadRequest {
			return fmt.Sprintf("%s: %d %s, want 400", tt.name, st, clip(string(body))), false
		}
		if p := hostFilesNamed(esc, s.sentinel, s.d.RunDir, s.d.StateDir); len(p) > 0 {
			return fmt.Sprintf("%s: WRITTEN ON THE HOST: %v", tt.name, p), false
		}
	}
	for _, p := range []string{"hl", "hl2", "mem", "sda", "fifo"} {
		if st, _ := ss.call("GET", "/files/"+p, nil); st != http.StatusNotFound {
			return fmt.Sprintf("%s exists in /work after a refused archive (GET %d)", p, st), false
		}
	}
	st, body := ss.call("PUT", "/archive?path=/work/s", tarball(entry{tar.Header{Typeflag: tar.TypeReg, Name: "suid", Mode: 0o6755}, "#!/bin/sh\nid -u\n"},
		entry{tar.Header{Typeflag: tar.TypeDir, Name: "sticky", Mode: 0o1777}, ""}))
	if st != http.StatusOK {
		return fmt.Sprintf("setuid archive: %d %s", st, clip(string(body))), false
	}
	r, err := ss.exec(`stat -c '%a %U' s/suid s/sticky; ./s/suid`, marker, 5000)
	if err != nil || r.Run.Stdout != "755 nobody\n777 nobody\n65534\n" {
		return fmt.Sprintf("setuid archive: %v %+v", err, r), false
	}
	return "15 archives refused, nothing on the host; setuid, setgid, sticky dropped", true
}

func slashes(p string) string { return strings.ReplaceAll(p, "/", "%2F") }

// hostFilesNamed lists files whose name contains part, at the host's root,
// in /etc and below the given directories.
func hostFilesNamed(part string, dirs ...string) []string {
	var found []string
	for _, d := range []string{"/", "/etc"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), part) {
				found = append(found, filepath.Join(d, e.Name()))
			}
		}
	}
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && strings.Contains(e.Name(), part) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// filesOwnership: files and directories the daemon makes (as root) in
// /work are the sandbox user's, which can change and remove them.
func filesOwnership(t *testing.T, s *suite, marker string) (string, bool) {
	ss, err := s.newSession(marker)
	if err != nil {
		return "create: " + err.Error(), false
	}
	defer ss.end()
	for _, w := range []struct{ method, rest string }{{"PUT", "/files/owned.txt?mode=0755"}, {"PUT", "/files/new/deep/f.txt"}, {"PUT", "/files/%2Ftmp%2Ft.txt"}} {
		if st, body := ss.call(w.method, w.rest, []byte("#!/bin/sh\necho ran\n")); st != http.StatusCreated {
			return fmt.Sprintf("%s %s: %d %s", w.method, w.rest, st, clip(string(body))), false
		}
	}
	if st, body := ss.call("PUT", "/archive?path=/work/arch", tarball(reg("x/y.txt", "y"), entry{tar.Header{Typeflag: tar.TypeDir, Name: "z"}, ""})); st != http.StatusOK {
		return fmt.Sprintf("archive: %d %s", st, clip(string(body))), false
	}
	r, err := ss.exec(`stat -c '%U %u:%g' owned.txt new new/deep new/deep/f.txt /tmp/t.txt arch arch/x arch/x/y.txt arch/z | sort | uniq -c | awk '{print $1, $2, $3}';
./owned.txt && echo more >> new/deep/f.txt && rm -r new arch /tmp/t.txt && echo changed`, marker, 5000)
	if err != nil {
		return "exec: " + err.Error(), false
	}
	out := r.Run.Stdout
	return clip(strings.ReplaceAll(out, "\n", "; ")), out == "9 nobody 65534:65534\nran\nchanged\n"
}
