package images

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testRegistry is an in-process registry on 127.0.0.1 that counts blob
// fetches and can hold them back.
type testRegistry struct {
	srv  *httptest.Server
	host string

	mu    sync.Mutex
	blobs map[string]int // GETs by digest
	// hold, if set, is called for each blob GET before it is served.
	hold func(r *http.Request, digest string)
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{blobs: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := strings.Index(r.URL.Path, "/blobs/"); i >= 0 && r.Method == http.MethodGet {
			d := r.URL.Path[i+len("/blobs/"):]
			tr.mu.Lock()
			tr.blobs[d]++
			hold := tr.hold
			tr.mu.Unlock()
			if hold != nil {
				hold(r, d)
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testRegistry) fetches(digest string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.blobs[digest]
}

func (tr *testRegistry) setHold(f func(r *http.Request, digest string)) {
	tr.mu.Lock()
	tr.hold = f
	tr.mu.Unlock()
}

// push uploads img as repo:tag and returns the reference.
func (tr *testRegistry) push(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	ref := tr.host + "/" + repo
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func tarLayer(t *testing.T, ents ...ent) v1.Layer {
	t.Helper()
	data := makeTar(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage is a linux image of the given layers with a config set.
func testImage(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

// twoLayers is an image whose second layer whites out a file, makes a
// directory opaque (with a new child listed before the marker) and
// replaces a file by a directory.
func twoLayers(t *testing.T) (v1.Image, []string) {
	img := testImage(t,
		v1.Config{Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/srv", User: "1000:1000", Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}},
		tarLayer(t,
			dir("bin"), file("bin/sh", "shell"), symlink("bin/ash", "sh"),
			dir("a"), file("a/1", "one"), file("a/2", "two"),
			dir("d"), file("d/x", "x"), dir("d/sub"), file("d/sub/y", "y"),
			file("gone", "g"), file("f2d", "file"),
			dir("etc"), file("etc/passwd", "root"), hardlink("etc/pw", "etc/passwd"),
		),
		tarLayer(t,
			file("a/.wh.1", ""),
			dir("d"), file("d/z", "z"), file("d/.wh..wh..opq", ""), file("d/w", "w"),
			file(".wh.gone", ""),
			dir("f2d"), file("f2d/in", "in"),
			file("etc/passwd", "new root"),
		),
	)
	return img, []string{
		"bin dir", "bin/sh = shell", "bin/ash -> sh",
		"a dir", "a/2 = two",
		"d dir", "d/z = z", "d/w = w",
		"f2d dir", "f2d/in = in",
		"etc dir", "etc/passwd = new root", "etc/pw = root",
	}
}

func v1Config() v1.Config { return v1.Config{} }
