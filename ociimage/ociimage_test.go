package ociimage

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeRootfs is a tiny rootfs: a shell, a symlink to it, a file owned by
// another user.
func fakeRootfs(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{"bin", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), []byte("#!busybox"), 0o755))
	must(t, os.Symlink("busybox", filepath.Join(dir, "bin/sh")))
	must(t, os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte("secret"), 0o600))
	must(t, os.Lchown(filepath.Join(dir, "etc/shadow"), 1000, 42))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// entries flattens img and returns its entries by name.
func entries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			must(t, err)
			h.PAXRecords = map[string]string{"content": string(data)}
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

func selfImage(t *testing.T) v1.Image {
	files := t.TempDir()
	paths := map[string]string{}
	for _, f := range []string{"sandboxd", "entrypoint.sh", "sandboxd.toml", "catalog.toml"} {
		paths[f] = filepath.Join(files, f)
		must(t, os.WriteFile(paths[f], []byte("content of "+f), 0o600))
	}
	img, err := Self(SelfOptions{
		Binary: paths["sandboxd"], Entrypoint: paths["entrypoint.sh"], Config: paths["sandboxd.toml"],
		Catalog: paths["catalog.toml"], Rootfs: fakeRootfs(t), Version: "test", Created: time.Unix(1e9, 0),
	})
	must(t, err)
	return img
}

func TestSelfImageThroughTarballAndLayout(t *testing.T) {
	out := t.TempDir()
	imgs := []Named{{Ref: "sandboxd:test", Image: selfImage(t)}}
	must(t, WriteTarball(filepath.Join(out, "sandboxd.tar"), imgs))
	must(t, WriteLayout(filepath.Join(out, "oci"), imgs))

	tag, _ := name.NewTag("sandboxd:test")
	img, err := tarball.ImageFromPath(filepath.Join(out, "sandboxd.tar"), &tag)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != EntrypointPath || cf.OS != "linux" {
		t.Errorf("config: entrypoint %v, os %s", cf.Config.Entrypoint, cf.OS)
	}
	if _, ok := cf.Config.Volumes[StateDir]; !ok {
		t.Errorf("no volume at %s: %v", StateDir, cf.Config.Volumes)
	}
	got := entries(t, img)
	for _, want := range []struct {
		name    string
		mode    int64
		content string
		link    string
	}{
		{name: "usr/local/bin/sandboxd", mode: 0o755, content: "content of sandboxd"},
		{name: "usr/local/lib/sandboxd/entrypoint.sh", mode: 0o755, content: "content of entrypoint.sh"},
		{name: "etc/sandboxd/sandboxd.toml", mode: 0o644, content: "content of sandboxd.toml"},
		{name: "etc/sandboxd/catalog.toml", mode: 0o644, content: "content of catalog.toml"},
		{name: "bin/busybox", mode: 0o755, content: "#!busybox"},
		{name: "bin/sh", link: "busybox"},
		{name: "usr/share/sandboxd/rootfs/busybox/bin/sh", link: "busybox"},
		{name: "usr/share/sandboxd/rootfs/busybox/etc/shadow", mode: 0o600, content: "secret"},
		{name: "usr/share/sandboxd/rootfs", mode: 0o755},
	} {
		h := got[want.name]
		switch {
		case h == nil:
			t.Errorf("%s missing", want.name)
		case want.link != "" && h.Linkname != want.link:
			t.Errorf("%s: link %q, want %q", want.name, h.Linkname, want.link)
		case want.link == "" && (h.Mode&0o7777 != want.mode || h.PAXRecords["content"] != want.content):
			t.Errorf("%s: mode %o content %q, want %o %q", want.name, h.Mode, h.PAXRecords["content"], want.mode, want.content)
		}
	}
	if h := got["usr/share/sandboxd/rootfs/busybox/etc/shadow"]; h == nil || h.Uid != 1000 || h.Gid != 42 {
		t.Errorf("owner not kept: %+v", h)
	}

	p, err := layout.FromPath(filepath.Join(out, "oci"))
	must(t, err)
	idx, err := p.ImageIndex()
	must(t, err)
	m, err := idx.IndexManifest()
	must(t, err)
	want, _ := imgs[0].Image.Digest()
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations[refAnnotation] != "sandboxd:test" || m.Manifests[0].Digest != want ||
		m.Manifests[0].MediaType != types.OCIManifestSchema1 {
		t.Errorf("layout index %+v, want one sandboxd:test at %s", m.Manifests, want)
	}
}

// Push sends every image of a layout to a registry (an in-memory one on
// the loopback), each under its ref, and the registry serves them back
// with the same digests.
func TestPushLayoutToRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	lang, err := Language(fakeRootfs(t), "lang/test:1", time.Unix(1e9, 0))
	must(t, err)
	imgs := []Named{{Ref: "sandboxd:test", Image: selfImage(t)}, {Ref: "lang/test:1", Image: lang}}
	dir := filepath.Join(t.TempDir(), "oci")
	must(t, WriteLayout(dir, imgs))

	pushed, err := Push(context.Background(), dir, host+"/mirror")
	must(t, err)
	if len(pushed) != 2 {
		t.Fatalf("pushed %v", pushed)
	}
	for _, n := range imgs {
		ref, err := name.NewTag(host + "/mirror/" + n.Ref)
		must(t, err)
		got, err := remote.Image(ref)
		must(t, err)
		gd, _ := got.Digest()
		wd, _ := n.Image.Digest()
		if gd != wd {
			t.Errorf("%s: registry has %s, layout %s", ref, gd, wd)
		}
	}
	if _, err := Push(context.Background(), dir, "http://"+host); err == nil {
		t.Error("a URL as the registry: want an error")
	}
}
