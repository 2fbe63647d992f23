package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/errdefs"
)

// newScratch mounts a small scratch, as a session would have, owned by
// uid 1000 (not the test's uid, so ownership is really checked).
func newScratch(t *testing.T) *Scratch {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs")
	}
	s, err := NewScratch(t.TempDir()+"/s", 1000, 1000, ScratchSizes{WorkBytes: 1 << 20, TmpBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove() })
	return s
}

// within fails the test if fn takes more than a few seconds: a FIFO opened
// the wrong way blocks forever.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s hangs", what)
	}
}

func mustWrite(t *testing.T, s *Scratch, p, content string) {
	t.Helper()
	if _, err := s.WriteFile(p, strings.NewReader(content), 0, 1<<20); err != nil {
		t.Fatalf("WriteFile(%q): %v", p, err)
	}
}

func readAll(t *testing.T, s *Scratch, p string, follow bool) (string, error) {
	t.Helper()
	f, e, err := s.OpenFile(p, follow)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	if int64(len(data)) != e.Size {
		t.Errorf("%s: read %d bytes, Entry.Size %d", p, len(data), e.Size)
	}
	return string(data), nil
}

func owner(t *testing.T, host string) (uid, gid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(host)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode()
}

func TestScratchPath(t *testing.T) {
	long := strings.Repeat("x", 255)
	ok := []struct{ in, want string }{
		{"", "work"}, {"a", "work/a"}, {"a/b", "work/a/b"}, {"a/", "work/a"},
		{"/work", "work"}, {"/work/", "work"}, {"/work/a/b", "work/a/b"},
		{"/tmp", "tmp"}, {"/tmp/", "tmp"}, {"/tmp/x", "tmp/x"},
		{"work/x", "work/work/x"}, {"tmp/x", "work/tmp/x"},
		{"a..b", "work/a..b"}, {".hidden", "work/.hidden"}, {"/work/" + long, "work/" + long},
	}
	for _, c := range ok {
		got, err := ScratchPath(c.in)
		if err != nil || got != c.want {
			t.Errorf("ScratchPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []string{"/", "//work", "/etc/passwd", "/workx", "/tm", "/proc/self/root",
		"..", "../x", "a/../b", "/work/..", "/tmp/../etc", "a/..",
		"a//b", "/work//a", "a//", "./a", "a/.", ".", "/work/.",
		"nul\x00byte", "a\nb", "tab\there", "del\x7f", "/work/" + long + "x",
		strings.Repeat("a/", 2048) + "a"}
	for _, in := range bad {
		got, err := ScratchPath(in)
		if err == nil {
			t.Errorf("ScratchPath(%q) = %q, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrBadPath) || !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ScratchPath(%q): %v is not ErrBadPath of class invalid", in, err)
		}
	}
	for _, rel := range []string{"work", "work/a/b", "tmp/x"} {
		if back, err := ScratchPath(APIPath(rel)); err != nil || back != rel {
			t.Errorf("ScratchPath(APIPath(%q)) = %q, %v", rel, back, err)
		}
	}
}

func TestWriteFileReadBack(t *testing.T) {
	s := newScratch(t)
	cases := []struct {
		path     string
		mode     os.FileMode
		content  string
		host     string // under the scratch dir
		wantMode os.FileMode
	}{
		{"/work/dir/sub/f.txt", 0o640, "hello", "work/dir/sub/f.txt", 0o640},
		{"rel.txt", 0, "relative is /work", "work/rel.txt", 0o644},
		{"/tmp/t/x", os.ModeSetuid | os.ModeSetgid | os.ModeSticky | 0o755, "#!/bin/sh\n", "tmp/t/x", 0o755},
		{"/work/empty", 0o600, "", "work/empty", 0o600},
	}
	for _, c := range cases {
		e, err := s.WriteFile(c.path, strings.NewReader(c.content), c.mode, 1<<20)
		if err != nil {
			t.Fatalf("WriteFile(%q): %v", c.path, err)
		}
		wantPath := APIPath(c.host)
		if e.Path != wantPath || e.Name != filepath.Base(c.host) || e.Type != EntryFile || e.Size != int64(len(c.content)) || e.Mode != c.wantMode {
			t.Errorf("WriteFile(%q) = %+v", c.path, e)
		}
		got, err := readAll(t, s, c.path, false)
		if err != nil || got != c.content {
			t.Errorf("read back %q: %q, %v", c.path, got, err)
		}
		uid, gid, mode := owner(t, filepath.Join(s.dir, c.host))
		if uid != 1000 || gid != 1000 || mode != c.wantMode {
			t.Errorf("%s on the host: %d:%d %v, want 1000:1000 %v", c.host, uid, gid, mode, c.wantMode)
		}
	}
	// The parents were made, for the sandbox user.
	for _, d := range []string{"work/dir", "work/dir/sub", "tmp/t"} {
		uid, gid, mode := owner(t, filepath.Join(s.dir, d))
		if uid != 1000 || gid != 1000 || mode != os.ModeDir|0o755 {
			t.Errorf("parent %s: %d:%d %v, want 1000:1000 drwxr-xr-x", d, uid, gid, mode)
		}
	}
	// Replacing truncates: nothing of the longer old content is left.
	mustWrite(t, s, "/work/dir/sub/f.txt", "hi")
	if got, _ := readAll(t, s, "/work/dir/sub/f.txt", false); got != "hi" {
		t.Errorf("after replacing: %q", got)
	}
	e, err := s.Stat("/work/dir", false)
	if err != nil || e.Type != EntryDir || e.Path != "/work/dir" || e.Name != "dir" {
		t.Errorf("Stat(/work/dir) = %+v, %v", e, err)
	}
	for _, p := range []string{"/work", "/tmp", "/work/dir"} {
		if _, err := s.WriteFile(p, strings.NewReader("x"), 0, 10); !errors.Is(err, ErrIsDir) {
			t.Errorf("WriteFile(%s): %v, want ErrIsDir", p, err)
		}
		if _, _, err := s.OpenFile(p, false); !errors.Is(err, ErrIsDir) {
			t.Errorf("OpenFile(%s): %v, want ErrIsDir", p, err)
		}
	}
	if _, err := s.WriteFile("rel.txt/x", strings.NewReader("x"), 0, 10); !errors.Is(err, ErrNotDir) {
		t.Errorf("WriteFile below a file: %v, want ErrNotDir", err)
	}
	if _, err := s.WriteFile("/etc/x", strings.NewReader("x"), 0, 10); !errors.Is(err, ErrBadPath) {
		t.Errorf("WriteFile(/etc/x): %v, want ErrBadPath", err)
	}
}

func TestSymlinksAreNotFollowed(t *testing.T) {
	s := newScratch(t)
	mustWrite(t, s, "/work/f", "F")
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"l": "/etc", "l2": "/work/f", "rel": "f",
		"root": "/", "up": "../../../..", "lp": "/etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(s.WorkDir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		path    string
		follow  bool
		want    string // content, when no error is wanted
		wantErr error
	}{
		{"l", false, "", ErrSymlink},
		{"l2", false, "", ErrSymlink},
		{"rel", false, "", ErrSymlink},
		{"lp", false, "", ErrSymlink},
		{"l/passwd", false, "", ErrSymlink},
		{"root/etc/passwd", false, "", ErrSymlink},
		{"l2", true, "F", nil},
		{"rel", true, "F", nil},
		{"root/work/f", true, "F", nil}, // the sandbox's own view of /work/f
		{"l/passwd", true, "", ErrNotFound},
		{"lp", true, "", ErrNotFound},
		{"root/etc/passwd", true, "", ErrNotFound},
		{"up/etc/passwd", true, "", ErrNotFound},
		{"l", true, "", ErrNotFound},
		{"root", true, "", errdefs.ErrNotFound}, // the scratch dir itself is not the sandbox's
	}
	for _, c := range cases {
		got, err := readAll(t, s, c.path, c.follow)
		if got == string(hostPasswd) {
			t.Fatalf("OpenFile(%q, %v) read the host's /etc/passwd", c.path, c.follow)
		}
		if c.wantErr == nil && (err != nil || got != c.want) {
			t.Errorf("OpenFile(%q, %v) = %q, %v; want %q", c.path, c.follow, got, err, c.want)
		}
		if c.wantErr != nil && !errors.Is(err, c.wantErr) {
			t.Errorf("OpenFile(%q, %v): %v, want %v", c.path, c.follow, err, c.wantErr)
		}
	}
	for _, name := range []string{"l", "l2", "root"} {
		if e, err := s.Stat(name, false); err != nil || e.Type != EntrySymlink || e.Path != "/work/"+name {
			t.Errorf("Stat(%q) = %+v, %v; want a symlink", name, e, err)
		}
	}
	if e, err := s.Stat("l2", true); err != nil || e.Type != EntryFile || e.Size != 1 {
		t.Errorf("Stat(l2, follow) = %+v, %v", e, err)
	}
	if _, err := s.Stat("root", true); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stat(root, follow): %v, want not found", err)
	}
	if _, err := s.List("l", false, false, 100); !errors.Is(err, ErrSymlink) {
		t.Errorf("List(l): %v, want ErrSymlink", err)
	}
	if _, err := s.List("root", true, true, 100); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Errorf("List(root, follow): %v, want not found", err)
	}
	if _, err := s.WriteFile("l2", strings.NewReader("replaced"), 0, 100); !errors.Is(err, ErrSymlink) {
		t.Errorf("WriteFile through a symlink: %v, want ErrSymlink", err)
	}
	if got, _ := readAll(t, s, "f", false); got != "F" {
		t.Errorf("a write through l2 reached f: %q", got)
	}
}

// A directory component that is a symlink to "/" must not let a write
// reach the host's /etc, nor the scratch dir.
func TestWriteThroughSymlinkedDir(t *testing.T) {
	s := newScratch(t)
	marker := fmt.Sprintf("sandboxd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	if err := os.Symlink("/", filepath.Join(s.WorkDir(), "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(s.WorkDir(), "e")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d/etc/" + marker, "d/" + marker, "e/" + marker, "e/new/" + marker, "/tmp/../work/d/etc/" + marker} {
		_, err := s.WriteFile(p, strings.NewReader("x"), 0, 10)
		if !errors.Is(err, ErrSymlink) && !errors.Is(err, ErrBadPath) {
			t.Errorf("WriteFile(%q): %v, want ErrSymlink", p, err)
		}
	}
	for _, host := range []string{"/etc/" + marker, "/" + marker, "/etc/new", filepath.Join(s.dir, "etc"), filepath.Join(s.dir, marker)} {
		if _, err := os.Lstat(host); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists on the host: %v", host, err)
		}
	}
}

func TestFIFOsNeverBlock(t *testing.T) {
	s := newScratch(t)
	fifo := filepath.Join(s.WorkDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	within(t, "OpenFile on a FIFO", func() {
		if _, _, err := s.OpenFile("fifo", false); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenFile(fifo): %v, want ErrNotRegular", err)
		}
	})
	within(t, "Stat on a FIFO", func() {
		if e, err := s.Stat("fifo", false); err != nil || e.Type != EntryOther {
			t.Errorf("Stat(fifo) = %+v, %v", e, err)
		}
	})
	within(t, "List on a FIFO", func() {
		if _, err := s.List("fifo", false, false, 10); !errors.Is(err, ErrNotDir) {
			t.Errorf("List(fifo): %v, want ErrNotDir", err)
		}
	})
	// Nothing opens the FIFO: a writer (then a reader) waiting in open
	// for the other end stays waiting.
	for _, c := range []struct {
		flag int
		op   func() error
	}{
		{os.O_WRONLY, func() error { _, _, err := s.OpenFile("fifo", false); return err }},
		{os.O_WRONLY, func() error { return s.WriteTar("/work", io.Discard) }},
		{os.O_RDONLY, func() error { _, err := s.WriteFile("fifo", strings.NewReader("x"), 0, 10); return err }},
	} {
		opened := make(chan struct{})
		go func() {
			if f, err := os.OpenFile(fifo, c.flag, 0); err == nil {
				f.Close()
			}
			close(opened)
		}()
		time.Sleep(50 * time.Millisecond) // let it wait in open
		within(t, "an operation on a FIFO", func() { _ = c.op() })
		select {
		case <-opened:
			t.Errorf("flag %#x: the FIFO was opened", c.flag)
		case <-time.After(50 * time.Millisecond):
		}
		// O_RDWR opens a FIFO at once, as both ends: it releases the waiter.
		rw, err := os.OpenFile(fifo, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		<-opened
		rw.Close()
	}
	// With a reader present, an O_WRONLY|O_NONBLOCK open would succeed:
	// the write must still be refused, and the reader get nothing.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	within(t, "WriteFile on a FIFO", func() {
		if _, err := s.WriteFile("fifo", strings.NewReader("into the pipe"), 0, 100); !errors.Is(err, ErrNotRegular) {
			t.Errorf("WriteFile(fifo): %v, want ErrNotRegular", err)
		}
	})
	buf := make([]byte, 64)
	if n, _ := syscall.Read(int(r.Fd()), buf); n > 0 {
		t.Errorf("the FIFO's reader got %q", buf[:n])
	}
	within(t, "WriteTar of a FIFO", func() {
		if err := s.WriteTar("fifo", io.Discard); !errors.Is(err, ErrNotRegular) {
			t.Errorf("WriteTar(fifo): %v, want ErrNotRegular", err)
		}
	})
	if err := s.RemovePath("fifo", false); err != nil {
		t.Errorf("RemovePath(fifo): %v", err)
	}
}

func TestList(t *testing.T) {
	s := newScratch(t)
	for _, f := range []string{"a.txt", "b/c.txt", "b/d/e.txt"} {
		mustWrite(t, s, f, f)
	}
	if err := os.Mkdir(filepath.Join(s.WorkDir(), "z"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(s.WorkDir(), "b/link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(s.WorkDir(), "b/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	flat := "/work/a.txt:file:5 /work/b:dir:0 /work/z:dir:0"
	deep := "/work/a.txt:file:5 /work/b:dir:0 /work/b/c.txt:file:7 /work/b/d:dir:0 /work/b/d/e.txt:file:9 " +
		"/work/b/fifo:other:0 /work/b/link:symlink:1 /work/z:dir:0"
	cases := []struct {
		path       string
		recursive  bool
		maxEntries int
		want       string
		wantErr    error
	}{
		{"/work", false, 100, flat, nil},
		{"", false, 3, flat, nil},
		{"/work/", true, 100, deep, nil},
		{"/work", true, 8, deep, nil},
		{"/work", true, 7, "", errdefs.ErrTooLarge},
		{"/work", false, 2, "", errdefs.ErrTooLarge},
		{"b/d", false, 100, "/work/b/d/e.txt:file:9", nil},
		{"/tmp", true, 100, "", nil},
		{"a.txt", false, 100, "", ErrNotDir},
		{"nope", false, 100, "", ErrNotFound},
		{"b/link", false, 100, "", ErrSymlink},
		{"b/link/etc", true, 100, "", ErrSymlink},
	}
	for _, c := range cases {
		entries, err := s.List(c.path, c.recursive, false, c.maxEntries)
		if c.wantErr != nil {
			if !errors.Is(err, c.wantErr) {
				t.Errorf("List(%q, %v, %d): %v, want %v", c.path, c.recursive, c.maxEntries, err, c.wantErr)
			}
			continue
		}
		var got []string
		for _, e := range entries {
			got = append(got, fmt.Sprintf("%s:%s:%d", e.Path, e.Type, e.Size))
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("List(%q, %v, %d) = %q, %v\nwant %q", c.path, c.recursive, c.maxEntries, strings.Join(got, " "), err, c.want)
		}
	}
	entries, err := s.List("/work", false, false, 0)
	if err != nil || len(entries) != 3 || entries[2].Name != "z" || entries[2].Mode != 0o700 || entries[0].ModTime.IsZero() {
		t.Errorf("List with the default bound = %+v, %v", entries, err)
	}
}

func TestRemovePath(t *testing.T) {
	s := newScratch(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"f", "target", "full/x", "tree/a/b/c", "tree/a/d", "tree/e"} {
		mustWrite(t, s, f, "x")
	}
	for _, d := range []string{"empty", "tree/emptydir"} {
		if err := os.Mkdir(filepath.Join(s.WorkDir(), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"link": "target", "tree/a/out": outside, "tree/root": "/"} {
		if err := os.Symlink(target, filepath.Join(s.WorkDir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		path      string
		recursive bool
		wantErr   error
		gone      string // host path under work that must be gone after
	}{
		{"f", false, nil, "f"},
		{"link", false, nil, "link"},
		{"empty", false, nil, "empty"},
		{"full", false, ErrNotEmpty, ""},
		{"tree", true, nil, "tree"},
		{"missing", false, ErrNotFound, ""},
		{"missing/x", true, ErrNotFound, ""},
		{"/work", true, ErrBadPath, ""},
		{"/tmp", true, ErrBadPath, ""},
		{"", false, ErrBadPath, ""},
		{"/etc/passwd", false, ErrBadPath, ""},
		{"f/x", false, ErrNotFound, ""}, // f is gone by now
	}
	for _, c := range cases {
		err := s.RemovePath(c.path, c.recursive)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("RemovePath(%q, %v): %v, want %v", c.path, c.recursive, err, c.wantErr)
		}
		if c.gone != "" {
			if _, err := os.Lstat(filepath.Join(s.WorkDir(), c.gone)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after RemovePath(%q): %s still there", c.path, c.gone)
			}
		}
	}
	if !errdefs.Is(s.RemovePath("full", false), errdefs.ErrConflict) {
		t.Error("a non-empty directory is not a conflict")
	}
	for _, keep := range []string{filepath.Join(s.WorkDir(), "target"), filepath.Join(s.WorkDir(), "full/x"), filepath.Join(outside, "keep"), "/etc/passwd"} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
}

func TestWriteFileLimits(t *testing.T) {
	s := newScratch(t)
	// The area holds 1 MiB: 2 MiB can't fit, whatever maxBytes allows.
	_, err := s.WriteFile("/tmp/big", bytes.NewReader(make([]byte, 2<<20)), 0, 4<<20)
	if !errors.Is(err, errdefs.ErrNoSpace) || !errors.Is(err, ErrNoSpace) {
		t.Errorf("filling /tmp: %v, want no space", err)
	}
	if _, err := s.Stat("/tmp/big", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("the partial file is left: %v", err)
	}
	_, err = s.WriteFile("f", bytes.NewReader(make([]byte, 100)), 0, 99)
	if !errdefs.Is(err, errdefs.ErrTooLarge) {
		t.Errorf("100 bytes with maxBytes 99: %v, want too large", err)
	}
	if _, err := s.Stat("f", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("the partial file is left: %v", err)
	}
	if e, err := s.WriteFile("f", bytes.NewReader(make([]byte, 100)), 0, 100); err != nil || e.Size != 100 {
		t.Errorf("100 bytes with maxBytes 100: %+v, %v", e, err)
	}
	// The space freed by removing the partial file is usable again.
	if _, err := s.WriteFile("/tmp/small", bytes.NewReader(make([]byte, 512<<10)), 0, 1<<20); err != nil {
		t.Errorf("after a failed write: %v", err)
	}
}

// The program swaps work/d between a directory and a symlink to "/" as
// fast as it can while the daemon opens paths through it: no open may
// ever reach the host.
func TestSwapRace(t *testing.T) {
	s := newScratch(t)
	mustWrite(t, s, "d/secret", "inside")
	if err := os.Symlink("/", filepath.Join(s.WorkDir(), "dl")); err != nil {
		t.Fatal(err)
	}
	d, dl := filepath.Join(s.WorkDir(), "d"), filepath.Join(s.WorkDir(), "dl")
	var stop atomic.Bool
	swapped := make(chan error)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			err = unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, dl, unix.RENAME_EXCHANGE)
		}
		swapped <- err
	}()
	marker := fmt.Sprintf("sandboxd-race-%d", os.Getpid())
	var inside, linked, n int
	for start := time.Now(); time.Since(start) < time.Second || n < 300; n++ {
		for _, follow := range []bool{false, true} {
			for _, p := range []string{"d/etc/shadow", "d/etc/passwd"} {
				if f, _, err := s.OpenFile(p, follow); err == nil {
					f.Close()
					t.Fatalf("OpenFile(%q, %v) succeeded during the swap", p, follow)
				}
			}
		}
		// Through the real directory this makes d/etc/marker inside it,
		// as it should; through the link it must fail.
		_, _ = s.WriteFile("d/etc/"+marker, strings.NewReader("x"), 0, 10)
		es, _ := s.List("d/etc", false, false, 10)
		for _, e := range es {
			if e.Name != marker {
				t.Fatalf("List(d/etc) showed %s during the swap", e.Path)
			}
		}
		switch got, err := readAll(t, s, "d/secret", false); {
		case err == nil && got == "inside":
			inside++
		case errors.Is(err, ErrSymlink):
			linked++
		}
	}
	stop.Store(true)
	if err := <-swapped; err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"/etc/" + marker, filepath.Join(s.dir, "etc")} {
		if _, err := os.Lstat(host); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created", host)
		}
	}
	t.Logf("%d rounds: d/secret read %d times, refused as a symlink %d times", n, inside, linked)
	if inside == 0 || linked == 0 {
		t.Errorf("the swap was never seen both ways (%d, %d): the test proves nothing", inside, linked)
	}
}

// Entries are listed with their own names, sorted.
func TestListSorted(t *testing.T) {
	s := newScratch(t)
	names := []string{"b", "a", "C", "ä", "a b", "-x"}
	for _, n := range names {
		mustWrite(t, s, n, "")
	}
	entries, err := s.List("", false, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name)
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("List = %q, want %q", got, names)
	}
}

// The program swaps a regular file and a FIFO (which has a reader) while
// the daemon reads and writes the file: no open may block, and nothing
// may be written into the pipe.
func TestFIFOSwapRace(t *testing.T) {
	s := newScratch(t)
	mustWrite(t, s, "f", "file")
	f, p := filepath.Join(s.WorkDir(), "f"), filepath.Join(s.WorkDir(), "p")
	if err := syscall.Mkfifo(p, 0o666); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stop atomic.Bool
	swapped := make(chan error)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			err = unix.Renameat2(unix.AT_FDCWD, f, unix.AT_FDCWD, p, unix.RENAME_EXCHANGE)
		}
		swapped <- err
	}()
	var read, refused int
	within(t, "reading and writing a file swapped with a FIFO", func() {
		for start := time.Now(); time.Since(start) < time.Second; {
			switch got, err := readAll(t, s, "f", false); {
			case err == nil && got == "file":
				read++
			case errors.Is(err, ErrNotRegular):
				refused++
			default:
				t.Errorf("OpenFile(f) = %q, %v", got, err)
			}
			_, err := s.WriteFile("f", strings.NewReader("file"), 0, 10)
			if err != nil && !errors.Is(err, ErrNotRegular) {
				t.Errorf("WriteFile(f): %v", err)
			}
		}
	})
	stop.Store(true)
	if err := <-swapped; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, _ := syscall.Read(int(r.Fd()), buf); n > 0 {
		t.Errorf("the FIFO's reader got %q", buf[:n])
	}
	t.Logf("read %d times, refused %d times", read, refused)
	if read == 0 || refused == 0 {
		t.Errorf("the swap was never seen both ways (%d, %d)", read, refused)
	}
}
