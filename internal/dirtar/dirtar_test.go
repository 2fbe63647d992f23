package dirtar

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestTarKeepsFilesDirsAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("x"), 0o755)
	os.Symlink("tool", filepath.Join(dir, "bin", "alias"))
	os.WriteFile(filepath.Join(dir, "skip"), nil, 0o644)
	r, err := Tar(dir, func(h *tar.Header) bool { return h.Name != "skip" })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Typeflag
		if h.Name == "bin/alias" && h.Linkname != "tool" {
			t.Errorf("symlink target %q", h.Linkname)
		}
	}
	want := map[string]byte{"bin/": tar.TypeDir, "bin/tool": tar.TypeReg, "bin/alias": tar.TypeSymlink}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("%s: type %c, want %c", name, got[name], typ)
		}
	}
}

func TestStreamMatchesTar(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("alpha"), 0o644)
	os.Symlink("a", filepath.Join(dir, "b"))
	whole, err := Tar(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(whole)
	s := Stream(dir)
	defer s.Close()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != string(want) {
		t.Fatalf("stream differs from Tar (%v)", err)
	}
	if _, err := io.ReadAll(Stream(filepath.Join(dir, "missing"))); err == nil {
		t.Error("a missing directory streamed without an error")
	}
}
