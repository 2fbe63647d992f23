package images

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseName(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), 129))
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"busybox", "busybox:latest", true},
		{"busybox:1.36", "busybox:1.36", true},
		{"org/tool:v1.2_3-rc.1", "org/tool:v1.2_3-rc.1", true},
		{"a.b-c_d/e", "a.b-c_d/e:latest", true},
		{"x:" + long[:128], "x:" + long[:128], true},
		{"", "", false},
		{":tag", "", false},
		{"busybox:", "", false},
		{"BusyBox", "", false},
		{"a:b:c", "", false},
		{"a b", "", false},
		{"/abs", "", false},
		{"trailing/", "", false},
		{"a//b", "", false},
		{"../up", "", false},
		{"a/./b", "", false},
		{"x:" + long, "", false},
		{"x:t/g", "", false},
		{"x@sha256:00", "", false},
		{"x:tag\n", "", false},
	} {
		got, err := ParseName(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseName(%q) = %q, %v; want %q ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseName(%q): %v is not ErrInvalid", tc.in, err)
		}
	}
}

func TestNameFromRef(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox":                        "busybox:latest",
		"docker.io/library/busybox:1.36": "busybox:1.36",
		"ghcr.io/org/tool:V1":            "tool:V1",
		"127.0.0.1:5000/a/b/c:x":         "c:x",
		"busybox@sha256:" + zeros64:      "busybox:sha256-000000000000",
	} {
		r, err := parseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := nameFromRef(r)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", ref, got, err, want)
		}
	}
}

func TestCleanEntryName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"a/b", "a/b", true},
		{"./a/b/", "a/b", true},
		{"/etc/passwd", "etc/passwd", true},
		{"//a//./b", "a/b", true},
		{".", ".", true},
		{"./", ".", true},
		{"", ".", true},
		{"a/.wh.b", "a/.wh.b", true},
		{"..", "", false},
		{"../a", "", false},
		{"a/../b", "", false},
		{"a/..", "", false},
		{"/../etc", "", false},
		{"a\x00b", "", false},
		{"...", "...", true},
		{"a/..b", "a/..b", true},
	} {
		got, err := cleanEntryName(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzCleanEntryName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/abs", "./a/../b", ".wh..wh..opq", "a/.wh.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := cleanEntryName(name)
		if err != nil {
			return
		}
		if p == "" || p[0] == '/' || filepath.Clean(p) != p {
			t.Fatalf("%q -> %q: not clean and relative", name, p)
		}
		if p == ".." || len(p) >= 3 && (p[:3] == "../" || bytes.Contains([]byte(p), []byte("/../")) || p[len(p)-3:] == "/..") {
			t.Fatalf("%q -> %q climbs", name, p)
		}
	})
}

func importBusybox(t *testing.T, e *env, name, body string) *Image {
	t.Helper()
	img, err := e.store.ImportRootfs(bg, bytes.NewReader(makeTar(t, dir("bin"), file("bin/busybox", body))), name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRemoveInUse(t *testing.T) {
	e := newEnv(t, Options{})
	img := importBusybox(t, e, "bb", "v1")
	got, release, err := e.store.Acquire("bb")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rootfs != img.Rootfs {
		t.Errorf("acquired %+v", got)
	}
	// A second name of the same image can go; the last one can't.
	importBusybox(t, e, "bb:two", "v1")
	if err := e.store.Remove("bb:two"); err != nil {
		t.Fatalf("removing another name of an image in use: %v", err)
	}
	if err := e.store.Remove("bb"); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove while acquired: %v, want ErrInUse", err)
	}
	mustIsDir(t, img.Rootfs)
	if _, err := e.store.Get("bb"); err != nil {
		t.Fatalf("still named after a refused remove: %v", err)
	}
	release()
	release() // harmless
	if err := e.store.Remove("bb"); err != nil {
		t.Fatalf("remove after release: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(img.Rootfs)); !os.IsNotExist(err) {
		t.Errorf("image dir still there: %v", err)
	}
	if _, err := e.store.Get("bb"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
	e.checkNoLeftovers(t)
}

// A name moved to another image while its old image is in use: the old
// rootfs stays until released, then goes.
func TestRetagWhileInUse(t *testing.T) {
	e := newEnv(t, Options{})
	old := importBusybox(t, e, "bb", "v1")
	_, release, err := e.store.Acquire("bb")
	if err != nil {
		t.Fatal(err)
	}
	cur := importBusybox(t, e, "bb", "v2")
	if cur.ID == old.ID {
		t.Fatal("same id for different content")
	}
	mustContent(t, filepath.Join(old.Rootfs, "bin/busybox"), "v1")
	release()
	if _, err := os.Stat(old.Rootfs); !os.IsNotExist(err) {
		t.Errorf("old rootfs still there after release: %v", err)
	}
	mustContent(t, filepath.Join(cur.Rootfs, "bin/busybox"), "v2")
	e.checkNoLeftovers(t)
}

func TestLookupErrors(t *testing.T) {
	e := newEnv(t, Options{})
	importBusybox(t, e, "bb", "v1")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"bb", nil},
		{"bb:latest", nil},
		{"bb:other", ErrNotFound},
		{"nope", ErrNotFound},
		{"Bad Name", ErrInvalid},
		{"", ErrInvalid},
		{"../x", ErrInvalid},
	} {
		_, err := e.store.Get(tc.name)
		mustClass(t, err, tc.err)
		_, release, err := e.store.Acquire(tc.name)
		mustClass(t, err, tc.err)
		if release != nil {
			release()
		}
		if tc.err != nil {
			mustClass(t, e.store.Remove(tc.name), tc.err)
		}
	}
}

func TestListAndReopen(t *testing.T) {
	e := newEnv(t, Options{})
	b := importBusybox(t, e, "b", "bbbb")
	a := importBusybox(t, e, "a:1", "aaaa")
	list, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a:1" || list[1].Name != "b:latest" {
		t.Fatalf("list %+v", list)
	}
	for _, img := range list {
		if img.SizeBytes <= 0 || img.Created.IsZero() || img.ID == "" {
			t.Errorf("list entry %+v", img)
		}
	}
	if _, err := Open(e.state, Options{}); err == nil {
		t.Fatal("a second store opened the same state directory")
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: a half-made build, and an unpacked image that
	// no name points at yet.
	if err := os.MkdirAll(filepath.Join(e.state, "tmp", "build-123", "rootfs", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(e.state, "images", zeros64)
	if err := os.MkdirAll(filepath.Join(orphan, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, "config.json"), []byte(`{"id":"sha256:`+zeros64+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.store, err = Open(e.state, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*Image{a, b} {
		got, err := e.store.Get(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.Rootfs != want.Rootfs || got.SizeBytes != want.SizeBytes || !got.Created.Equal(want.Created) {
			t.Errorf("after reopen: %+v, want %+v", got, want)
		}
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan image kept: %v", err)
	}
	e.checkNoLeftovers(t)
}
