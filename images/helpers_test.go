package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// ent is one entry of a tar built by a test.
type ent struct {
	name string
	typ  byte // tar.TypeReg if 0
	body string
	link string
	mode int64 // 0644 for files, 0755 for dirs if 0
	pax  map[string]string
}

func file(name, body string) ent   { return ent{name: name, body: body} }
func dir(name string) ent          { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) ent  { return ent{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) ent { return ent{name: name, typ: tar.TypeLink, link: to} }
func withMode(e ent, m int64) ent  { e.mode = m; return e }

func makeTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1_700_000_000, 0), Format: tar.FormatPAX, PAXRecords: e.pax}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg || e.body != "" {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// env is a store in base/state with a sentinel directory beside it that
// no image may touch.
type env struct {
	base, state, sentinel string
	store                 *Store
	before                map[string]string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{base: base, state: filepath.Join(base, "state"), sentinel: filepath.Join(base, "sentinel")}
	if err := os.MkdirAll(filepath.Join(e.sentinel, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"file", "sub/x"} {
		if err := os.WriteFile(filepath.Join(e.sentinel, f), []byte("sentinel "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.store, err = Open(e.state, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	e.before = e.snapshotOutside(t)
	return e
}

// snapshotOutside describes everything under base except the state
// directory: names, types, modes and contents.
func (e *env) snapshotOutside(t *testing.T) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(e.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == e.state {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(data)
		}
		snap[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func (e *env) checkOutside(t *testing.T) {
	t.Helper()
	after := e.snapshotOutside(t)
	for p, d := range e.before {
		if after[p] != d {
			t.Errorf("outside the store, %s changed: %q -> %q", p, d, after[p])
		}
	}
	for p, d := range after {
		if _, ok := e.before[p]; !ok {
			t.Errorf("outside the store, %s appeared: %q", p, d)
		}
	}
}

// checkNoLeftovers asserts that tmp/ is empty and images/ holds exactly
// the images named in the store.
func (e *env) checkNoLeftovers(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.state, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		t.Errorf("leftover in tmp: %s", d.Name())
	}
	list, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, img := range list {
		want[idHex(img.ID)] = true
	}
	ents, err = os.ReadDir(filepath.Join(e.state, "images"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if !want[d.Name()] {
			t.Errorf("image dir %s is not named by any image", d.Name())
		}
	}
}

// tree lists a rootfs as "path type [content|target]" lines, leaving out
// the mount points the store adds.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		switch rel {
		case "proc", "dev", "sys", "tmp", "work":
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := rel + " "
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += "-> " + target
		case info.IsDir():
			line += "dir"
		case info.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			line += "= " + string(data)
		default:
			line += info.Mode().Type().String()
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rootfs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func mustClass(t *testing.T, err, class error) {
	t.Helper()
	if class == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, class) {
		t.Fatalf("error %v is not %v", err, class)
	}
}

var bg = context.Background()
