package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
)

// ent is one entry of a test archive.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func mkTar(t *testing.T, gz bool, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

var projectTar = []ent{
	{name: "./", typ: tar.TypeDir, mode: 0o755},
	{name: "src/", typ: tar.TypeDir, mode: 0o750},
	{name: "src/main.c", typ: tar.TypeReg, body: "int main(void) { return 0; }\n"},
	{name: "./src/run.sh", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o755},
	{name: "src/link", typ: tar.TypeSymlink, link: "main.c"},
	{name: "src/deep/up", typ: tar.TypeSymlink, link: "../../top.txt"},
	{name: "top.txt", typ: tar.TypeReg, body: "top"},
	{name: "suid", typ: tar.TypeReg, body: "s", mode: 0o6755},
	{name: "sticky/", typ: tar.TypeDir, mode: 0o1777},
	{name: "top.txt", typ: tar.TypeReg, body: "top again"}, // a later entry replaces
}

func TestExtractTar(t *testing.T) {
	s := newScratch(t)
	for _, gz := range []bool{false, true} {
		dir := fmt.Sprintf("/work/proj-gz-%v", gz)
		n, size, err := s.ExtractTar(dir, bytes.NewReader(mkTar(t, gz, projectTar...)), 1<<20)
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if n != 9 || size != 29+10+3+1+9 {
			t.Errorf("gzip %v: %d entries, %d bytes", gz, n, size)
		}
		host := filepath.Join(s.dir, dir)
		want := map[string]os.FileMode{
			"": fs.ModeDir | 0o755, "src": fs.ModeDir | 0o750, "src/main.c": 0o644, "src/run.sh": 0o755,
			"src/link": fs.ModeSymlink | 0o777, "src/deep": fs.ModeDir | 0o755, "src/deep/up": fs.ModeSymlink | 0o777,
			"top.txt": 0o644, "suid": 0o755, "sticky": fs.ModeDir | 0o777,
		}
		for name, mode := range want {
			uid, gid, got := owner(t, filepath.Join(host, name))
			if uid != 1000 || gid != 1000 || got != mode {
				t.Errorf("gzip %v: %s: %d:%d %v, want 1000:1000 %v", gz, name, uid, gid, got, mode)
			}
		}
		for p, content := range map[string]string{"src/main.c": "int main(void) { return 0; }\n", "top.txt": "top again"} {
			if got, err := readAll(t, s, dir+"/"+p, false); err != nil || got != content {
				t.Errorf("gzip %v: %s = %q, %v", gz, p, got, err)
			}
		}
		if got, err := readAll(t, s, dir+"/src/deep/up", true); err != nil || got != "top again" {
			t.Errorf("gzip %v: src/deep/up followed = %q, %v", gz, got, err)
		}
		if target, _ := os.Readlink(filepath.Join(host, "src/link")); target != "main.c" {
			t.Errorf("gzip %v: src/link -> %q", gz, target)
		}
		// Directories and symlinks too: a directory's is set after what
		// is inside it was made.
		for _, name := range []string{"src/main.c", "top.txt", "src", "sticky", "src/link", "src/deep/up"} {
			fi, err := os.Lstat(filepath.Join(host, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.ModTime().Unix() != 1700000000 {
				t.Errorf("gzip %v: %s mtime %v, want the tar's", gz, name, fi.ModTime())
			}
		}
	}
}

// noEscape fails if anything exists outside the scratch's two areas, or
// in the host's /etc or / under marker.
func noEscape(t *testing.T, s *Scratch, marker string) {
	t.Helper()
	for _, p := range []string{"/etc/" + marker, "/" + marker} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists", p)
		}
	}
	parent := filepath.Dir(s.dir)
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch p {
		case parent, s.dir, s.WorkDir(), s.TmpDir():
			return nil
		}
		if !strings.HasPrefix(p, s.WorkDir()+"/") && !strings.HasPrefix(p, s.TmpDir()+"/") {
			t.Errorf("%s was created outside the scratch areas", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestExtractTarHostile(t *testing.T) {
	s := newScratch(t)
	m := fmt.Sprintf("sandboxd-tar-%d", os.Getpid())
	file := func(name string) ent { return ent{name: name, typ: tar.TypeReg, body: "pwned"} }
	link := func(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }
	// A symlink the running program made: the archive writes through it.
	if err := os.MkdirAll(filepath.Join(s.WorkDir(), "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(s.WorkDir(), "out/progetc")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		ents  []ent
		class error  // the error (or class) wanted
		entry string // the refused entry, which the error must name
	}{
		{"absolute name", []ent{file("/etc/" + m)}, ErrBadPath, "/etc/" + m},
		{"dot-dot", []ent{file("../" + m)}, ErrBadPath, "../" + m},
		{"dot-dot inside", []ent{file("a/../../" + m)}, ErrBadPath, "a/../../" + m},
		{"dot-dot in a dir", []ent{{name: "../../" + m + "/", typ: tar.TypeDir}}, ErrBadPath, "../../" + m + "/"},
		{"control character", []ent{file("a\x1bb")}, ErrBadPath, "a\x1bb"},
		{"absolute symlink, then through it", []ent{link("l", "/etc"), file("l/" + m)}, ErrBadPath, "l"},
		{"symlink up and out", []ent{link("l", "../../.."), file("l/" + m)}, ErrBadPath, "l"},
		{"symlink up one too many", []ent{link("a/l", "../../x")}, ErrBadPath, "a/l"},
		{"symlink climbing through a name", []ent{link("a/l", "b/../../..")}, ErrBadPath, "a/l"},
		// Lexically a/b/l -> x/../.. is a; but through x -> ../.. it is
		// two levels above the extraction directory.
		{"symlink climbing through a link", []ent{link("a/b/x", "../.."), link("a/b/l", "x/../..")}, ErrBadPath, "a/b/l"},
		{"safe symlink, then through it", []ent{link("sub", "."), file("sub/" + m)}, ErrSymlink, "sub/" + m},
		{"the program's symlink", []ent{file("progetc/" + m)}, ErrSymlink, "progetc/" + m},
		{"dir over the program's symlink", []ent{{name: "progetc/", typ: tar.TypeDir}}, ErrSymlink, "progetc/"},
		{"file over the program's symlink", []ent{file("progetc")}, ErrSymlink, "progetc"},
		{"hard link", []ent{file("f"), {name: "h", typ: tar.TypeLink, link: "f"}}, errBadTar, "h"},
		{"hard link out", []ent{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, errBadTar, "h"},
		{"char device", []ent{{name: "mem", typ: tar.TypeChar}}, errBadTar, "mem"},
		{"block device", []ent{{name: "sda", typ: tar.TypeBlock}}, errBadTar, "sda"},
		{"FIFO", []ent{{name: "p", typ: tar.TypeFifo}}, errBadTar, "p"},
		{"too large", []ent{{name: "big", typ: tar.TypeReg, body: strings.Repeat("x", 2000)}}, errdefs.ErrTooLarge, "big"},
		{"too large in all", []ent{{name: "big1", typ: tar.TypeReg, body: strings.Repeat("x", 600)},
			{name: "big2", typ: tar.TypeReg, body: strings.Repeat("x", 600)}}, errdefs.ErrTooLarge, "big2"},
	}
	for _, c := range cases {
		for _, gz := range []bool{false, true} {
			_, _, err := s.ExtractTar("/work/out", bytes.NewReader(mkTar(t, gz, c.ents...)), 1000)
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.entry)) {
				t.Errorf("%s (gzip %v): %v, want %v naming %q", c.name, gz, err, c.class, c.entry)
			}
			if errdefs.Class(err) == errdefs.ErrInternal {
				t.Errorf("%s: %v is unclassified", c.name, err)
			}
			noEscape(t, s, m)
		}
	}
	if _, err := os.Stat(filepath.Join(s.WorkDir(), "out/mem")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a device node was made")
	}
	for _, garbage := range [][]byte{[]byte("not a tar at all, but long enough to be read as a header"), {0x1f, 0x8b, 0, 0}} {
		if _, _, err := s.ExtractTar("/work/out", bytes.NewReader(garbage), 1000); !errdefs.Is(err, errdefs.ErrInvalid) {
			t.Errorf("garbage %q: %v, want invalid", garbage[:4], err)
		}
	}
	if _, _, err := s.ExtractTar("/etc", bytes.NewReader(mkTar(t, false, file(m))), 1000); !errors.Is(err, ErrBadPath) {
		t.Errorf("extracting into /etc: %v", err)
	}
	if _, _, err := s.ExtractTar("/work/out/progetc", bytes.NewReader(mkTar(t, false, file(m))), 1000); !errors.Is(err, ErrSymlink) {
		t.Errorf("extracting into the program's symlink: %v", err)
	}
	noEscape(t, s, m)
}

func TestExtractTarNoSpace(t *testing.T) {
	s := newScratch(t)
	big := strings.Repeat("x", 2<<20)
	_, _, err := s.ExtractTar("/tmp/x", bytes.NewReader(mkTar(t, true, ent{name: "big", typ: tar.TypeReg, body: big})), 4<<20)
	if !errors.Is(err, errdefs.ErrNoSpace) {
		t.Errorf("a tar larger than /tmp: %v, want no space", err)
	}
	if _, err := s.Stat("/tmp/x/big", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("the partial file is left: %v", err)
	}
}

func TestWriteTarRoundTrip(t *testing.T) {
	s := newScratch(t)
	files := map[string]string{"src/a.txt": "A", "src/sub/b.bin": "\x00\xff", "src/sub/deeper/c": strings.Repeat("c", 70000)}
	for p, content := range files {
		mustWrite(t, s, p, content)
	}
	if _, err := s.WriteFile("src/run", strings.NewReader("#!/bin/sh\n"), 0o700, 100); err != nil {
		t.Fatal(err)
	}
	work := s.WorkDir()
	for name, target := range map[string]string{"src/link": "a.txt", "src/root": "/", "src/etc": "/etc"} {
		if err := os.Symlink(target, filepath.Join(work, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(work, "src/sub/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	within(t, "WriteTar", func() {
		if err := s.WriteTar("/work/src", &buf); err != nil {
			t.Error(err)
		}
	})
	want := "a.txt etc->/etc link->a.txt root->/ run sub/ sub/b.bin sub/deeper/ sub/deeper/c"
	if got := tarNames(t, buf.Bytes()); got != want {
		t.Errorf("tar holds %q\nwant       %q", got, want)
	}
	// ExtractTar refuses absolute symlinks: drop them for the round trip.
	for _, p := range []string{"src/root", "src/etc"} {
		if err := s.RemovePath(p, false); err != nil {
			t.Fatal(err)
		}
	}
	buf.Reset()
	if err := s.WriteTar("/work/src", &buf); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ExtractTar("/tmp/dst", bytes.NewReader(buf.Bytes()), 1<<20); err != nil {
		t.Fatal(err)
	}
	src, err := s.List("/work/src", true, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := s.List("/tmp/dst", true, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	summary := func(es []Entry, prefix string) string {
		var parts []string
		for _, e := range es {
			if e.Type != EntryOther { // the FIFO is not carried
				parts = append(parts, fmt.Sprintf("%s:%s:%d:%v", strings.TrimPrefix(e.Path, prefix), e.Type, e.Size, e.Mode))
			}
		}
		return strings.Join(parts, " ")
	}
	if a, b := summary(src, "/work/src"), summary(dst, "/tmp/dst"); a != b {
		t.Errorf("round trip differs:\n%s\n%s", a, b)
	}
	for p, content := range files {
		if got, err := readAll(t, s, "/tmp/dst/"+strings.TrimPrefix(p, "src/"), false); err != nil || got != content {
			t.Errorf("%s after the round trip: %d bytes, %v", p, len(got), err)
		}
	}
	// A single file is archived under its own name.
	buf.Reset()
	if err := s.WriteTar("/work/src/sub/b.bin", &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	if hdr, err := tr.Next(); err != nil || hdr.Name != "b.bin" || hdr.Size != 2 {
		t.Errorf("single file: %+v, %v", hdr, err)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("single file: a second entry (%v)", err)
	}
	for p, wantErr := range map[string]error{"/work/nope": ErrNotFound, "/work/src/link/x": ErrSymlink, "/work/src/sub/fifo": ErrNotRegular, "/etc": ErrBadPath} {
		if err := s.WriteTar(p, io.Discard); !errors.Is(err, wantErr) {
			t.Errorf("WriteTar(%s): %v, want %v", p, err, wantErr)
		}
	}
}

// tarNames lists an archive's entries, a symlink as name->target.
func tarNames(t *testing.T, data []byte) string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return strings.Join(names, " ")
		}
		if err != nil {
			t.Fatal(err)
		}
		n := hdr.Name
		if hdr.Typeflag == tar.TypeSymlink {
			n += "->" + hdr.Linkname
		}
		names = append(names, n)
	}
}

// The program truncates and rewrites a file while it is archived: the
// archive must stay well formed (an entry shorter than its header says
// would make the tar writer fail).
func TestWriteTarShrinkingFile(t *testing.T) {
	s := newScratch(t)
	content := strings.Repeat("y", 200<<10)
	mustWrite(t, s, "src/f", content)
	host := filepath.Join(s.WorkDir(), "src/f")
	var stop atomic.Bool
	done := make(chan error)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			err = os.WriteFile(host, []byte(content), 0o644) // truncates, then refills
		}
		done <- err
	}()
	var short int
	for range 300 {
		var buf bytes.Buffer
		if err := s.WriteTar("/work/src", &buf); err != nil {
			t.Fatalf("WriteTar while the file changes: %v", err)
		}
		tr := tar.NewReader(&buf)
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil || int64(len(data)) != hdr.Size {
			t.Fatalf("entry of %d bytes read as %d, %v", hdr.Size, len(data), err)
		}
		if hdr.Size > 0 && hdr.Size < int64(len(content)) {
			short++
		}
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d archives caught the file part-written", short)
}
