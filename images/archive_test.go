package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// dockerSave is what `docker save` of img tagged ref writes.
func dockerSave(t *testing.T, ref string, img v1.Image) []byte {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ociLayoutTar writes an OCI image layout with one entry (an image or an
// index) and tars it.
func ociLayoutTar(t *testing.T, add func(p layout.Path) error) []byte {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := add(p); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name, _ = filepath.Rel(dir, path)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportKinds(t *testing.T) {
	img, want := twoLayers(t)
	otherArch := testImage(t, v1.Config{}, tarLayer(t, file("wrong", "arch")))
	cf, _ := otherArch.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "s390x-not-this"
	otherArch, _ = mutate.ConfigFile(otherArch, cf)
	if runtime.GOARCH == "s390x-not-this" {
		t.Fatal("unreachable")
	}
	index := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: otherArch, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x-not-this"}}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	rootfsTar := makeTar(t, dir("./"), dir("./bin"), file("./bin/busybox", "bb"), hardlink("./bin/sh", "./bin/busybox"), symlink("./bin/ls", "busybox"))
	rootfsWant := []string{"bin dir", "bin/busybox = bb", "bin/sh = bb", "bin/ls -> busybox"}

	docker := dockerSave(t, "example.com/org/tool:2.0", img)
	oci := ociLayoutTar(t, func(p layout.Path) error {
		return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.com/x/ocitool:3"}))
	})
	ociIndex := ociLayoutTar(t, func(p layout.Path) error {
		return p.AppendIndex(index, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "docker.io/library/multi:4"}))
	})
	ociBareTag := ociLayoutTar(t, func(p layout.Path) error {
		return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "5"}))
	})

	type importer func(e *env, r io.Reader, name string) (*Image, error)
	archive := func(e *env, r io.Reader, n string) (*Image, error) { return e.store.ImportArchive(bg, r, n) }
	auto := func(e *env, r io.Reader, n string) (*Image, error) { return e.store.Import(bg, r, n) }
	rootfs := func(e *env, r io.Reader, n string) (*Image, error) { return e.store.ImportRootfs(bg, r, n) }

	for _, tc := range []struct {
		name     string
		data     []byte
		imp      importer
		as       string
		wantName string
		want     []string
		config   bool // the image config of twoLayers is expected
		err      error
	}{
		{name: "docker save", data: docker, imp: archive, wantName: "tool:2.0", want: want, config: true},
		{name: "docker save renamed", data: docker, imp: archive, as: "mine:1", wantName: "mine:1", want: want, config: true},
		{name: "docker save gzip, detected", data: gzipped(t, docker), imp: auto, wantName: "tool:2.0", want: want, config: true},
		{name: "oci layout", data: oci, imp: archive, wantName: "ocitool:3", want: want, config: true},
		{name: "oci layout, detected", data: oci, imp: auto, wantName: "ocitool:3", want: want, config: true},
		{name: "oci index picks this platform", data: ociIndex, imp: archive, wantName: "multi:4", want: want, config: true},
		{name: "oci layout with a bare tag needs a name", data: ociBareTag, imp: archive, err: ErrInvalid},
		{name: "oci layout with a bare tag, named", data: ociBareTag, imp: archive, as: "named", wantName: "named:latest", want: want, config: true},
		{name: "plain rootfs", data: rootfsTar, imp: rootfs, as: "bb", wantName: "bb:latest", want: rootfsWant},
		{name: "gzip rootfs", data: gzipped(t, rootfsTar), imp: rootfs, as: "bb:gz", wantName: "bb:gz", want: rootfsWant},
		{name: "plain rootfs, detected", data: rootfsTar, imp: auto, as: "bb", wantName: "bb:latest", want: rootfsWant},
		{name: "gzip rootfs, detected", data: gzipped(t, rootfsTar), imp: auto, as: "bb", wantName: "bb:latest", want: rootfsWant},
		{name: "rootfs needs a name", data: rootfsTar, imp: auto, err: ErrInvalid},
		{name: "rootfs is no archive", data: rootfsTar, imp: archive, as: "x", err: ErrInvalid},
		{name: "garbage", data: []byte("this is not a tar file at all, not even close........"), imp: auto, as: "x", err: ErrInvalid},
		{name: "garbage gzip", data: append([]byte{0x1f, 0x8b}, make([]byte, 100)...), imp: auto, as: "x", err: ErrInvalid},
		{name: "truncated docker save", data: docker[:len(docker)/2], imp: archive, err: ErrInvalid},
		{name: "bad name", data: docker, imp: archive, as: "UPPER", err: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			got, err := tc.imp(e, bytes.NewReader(tc.data), tc.as)
			mustClass(t, err, tc.err)
			e.checkNoLeftovers(t)
			e.checkOutside(t)
			if err != nil {
				t.Log(err)
				return
			}
			if got.Name != tc.wantName || got.Source != SourceImport {
				t.Errorf("name %q source %q, want %q", got.Name, got.Source, tc.wantName)
			}
			sameLines(t, tree(t, got.Rootfs), tc.want)
			if tc.config {
				cfgID, _ := img.ConfigName()
				if got.ID != cfgID.String() {
					t.Errorf("id %s, want %s", got.ID, cfgID)
				}
				if got.Config.WorkingDir != "/srv" || len(got.Config.Cmd) != 1 {
					t.Errorf("config %+v", got.Config)
				}
			} else if len(got.Config.Env) != 1 || got.Config.Env[0] != DefaultPath {
				t.Errorf("rootfs config %+v", got.Config)
			}
			// Importing again reuses the image.
			again, err := tc.imp(e, bytes.NewReader(tc.data), tc.as)
			if err != nil || again.ID != got.ID || again.Rootfs != got.Rootfs {
				t.Errorf("import again: %+v, %v", again, err)
			}
			e.checkNoLeftovers(t)
		})
	}
}

// A layer whose content is not what the config's diffID says is refused,
// so an id always vouches for the content under it.
func TestLayerDiffIDMismatch(t *testing.T) {
	e := newEnv(t, Options{})
	data := makeTar(t, file("x", "x"))
	_, _, err := e.store.flatten(bg, []layerStream{{
		diffID: "sha256:" + zeros64,
		open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v, want ErrInvalid", err)
	}
	e.checkNoLeftovers(t)
	if _, _, err := e.store.flatten(bg, []layerStream{{
		diffID: digestOf(data),
		open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}}); err != nil {
		t.Fatal(err)
	}
}

func TestWhiteoutsAcrossLayers(t *testing.T) {
	// Via a docker archive rather than a registry: same flattening.
	img, want := twoLayers(t)
	e := newEnv(t, Options{})
	got, err := e.store.ImportArchive(bg, bytes.NewReader(dockerSave(t, "wh:1", img)), "")
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, tree(t, got.Rootfs), want)

	// An opaque directory in a third layer hides everything below but
	// keeps what that layer put there, in either tar order; whiteouts of
	// missing files and of whole directories work.
	img3, err := mutate.AppendLayers(img, tarLayer(t,
		file("bin/new", "n"), file("bin/.wh..wh..opq", ""), file("bin/after", "a"),
		file(".wh.a", ""), file("d/.wh.nothere", ""), file("nodir/.wh.x", ""),
	))
	if err != nil {
		t.Fatal(err)
	}
	got3, err := e.store.ImportArchive(bg, bytes.NewReader(dockerSave(t, "wh:3", img3)), "")
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, tree(t, got3.Rootfs), []string{
		"bin dir", "bin/new = n", "bin/after = a",
		"d dir", "d/z = z", "d/w = w",
		"f2d dir", "f2d/in = in",
		"etc dir", "etc/passwd = new root", "etc/pw = root",
	})
}

func TestImportCanceled(t *testing.T) {
	img, _ := twoLayers(t)
	docker := dockerSave(t, "c:1", img)
	rootfsTar := makeTar(t, file("a", "a"))
	for name, imp := range map[string]func(s *Store, ctx context.Context) error{
		"archive": func(s *Store, ctx context.Context) error {
			_, err := s.ImportArchive(ctx, bytes.NewReader(docker), "")
			return err
		},
		"rootfs": func(s *Store, ctx context.Context) error {
			_, err := s.ImportRootfs(ctx, bytes.NewReader(rootfsTar), "r")
			return err
		},
		"detected": func(s *Store, ctx context.Context) error {
			_, err := s.Import(ctx, bytes.NewReader(rootfsTar), "r")
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ctx, cancel := context.WithCancel(bg)
			cancel()
			if err := imp(e.store, ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			if list, _ := e.store.List(); len(list) != 0 {
				t.Errorf("images after a canceled import: %v", list)
			}
			e.checkNoLeftovers(t)
		})
	}
}
