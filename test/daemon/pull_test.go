package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// A registry in this process, on 127.0.0.1 and listed in [images]
// registries: the daemon pulls the busybox test rootfs from it as a
// two-layer image, then runs a program in it that sees the image's Env.
func TestPullFromRegistryAndRun(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	base, err := io.ReadAll(testdaemon.Tar(t, testRootfs, nil))
	if err != nil {
		t.Fatal(err)
	}
	layer1, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(base)), nil })
	if err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	tw := tar.NewWriter(&extra)
	msg := []byte("from the second layer\n")
	tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0o644, Size: int64(len(msg)), Typeflag: tar.TypeReg})
	tw.Write(msg)
	tw.Close()
	layer2, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(extra.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer1, layer2)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/usr/local/bin:/bin", "GREETING=from the image"}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/test/busybox:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	// The registry is on loopback, which pulls reach only when it is
	// listed.
	d := testdaemon.Start(t, "--config", registriesConfig(t, host))
	// Streamed: progress lines while the layers download, then the image.
	var calls, lastDone, lastTotal int64
	got, err := d.Client.PullProgress(context.Background(), ref.String(), "pulled:1.0", func(done, total int64) {
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, d.Log())
	}
	if got.Name != "pulled:1.0" || len(got.Config.Env) == 0 {
		t.Fatalf("pulled %+v", got)
	}
	resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "pulled:1.0", Cmd: []string{"/bin/sh", "-c", `cat /etc/motd; echo "$GREETING"`}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != runtime.StatusOK || resp.Run.Stdout != "from the second layer\nfrom the image\n" {
		t.Fatalf("run in the pulled image: %+v", resp.Run)
	}
	// The same image again, not streamed: nothing new to fetch.
	again, err := d.Client.Pull(context.Background(), ref.String(), "again:1.0")
	if err != nil || again.ID != got.ID {
		t.Fatalf("second pull: %v %+v", err, again)
	}
	if calls == 0 || lastTotal <= 0 || lastDone != lastTotal {
		t.Errorf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	if _, err := d.Client.PullProgress(context.Background(), host+"/test/nosuch:1.0", "", nil); !client.IsCode(err, "not_found") {
		t.Errorf("streamed pull of a missing image: %v, want not_found in-band", err)
	}
	if _, err := d.Client.Pull(context.Background(), host+"/test/nosuch:1.0", ""); !client.IsCode(err, "not_found") {
		t.Errorf("pull of a missing image: %v, want not_found", err)
	}
	if _, err := d.Client.Pull(context.Background(), "not a reference!", ""); !client.IsCode(err, "invalid_request") {
		t.Errorf("pull of a bad reference: %v, want invalid_request", err)
	}
}

// registriesConfig writes a configuration whose [images] registries are
// hosts, and returns its path.
func registriesConfig(t *testing.T, hosts ...string) string {
	t.Helper()
	quoted := make([]string, len(hosts))
	for i, h := range hosts {
		quoted[i] = strconv.Quote(h)
	}
	path := filepath.Join(t.TempDir(), "sandboxd.toml")
	body := "[images]\nregistries = [" + strings.Join(quoted, ", ") + "]\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// countingServer is an httptest server on 127.0.0.1 that counts the
// connections it accepts.
func countingServer(t *testing.T, h http.Handler) (host string, conns *atomic.Int64) {
	t.Helper()
	conns = new(atomic.Int64)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), conns
}

// Pulls go only where [images] registries and the public-address rule
// allow, and the API never shows what a registry wrote: a registry on
// loopback that is not listed is refused (400 invalid_request, naming it)
// before any connection; a listed one that answers 500 with a marker in
// its body gives "unavailable" with the status and without the marker,
// streamed or not.
func TestPullRefusedDestinationsAndRegistryWords(t *testing.T) {
	const marker = "MARKER-pull-body-5b1e9d"
	unlisted, unlistedConns := countingServer(t, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	failing, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, marker+" internal details", http.StatusInternalServerError)
	}))
	d := testdaemon.Start(t, "--config", registriesConfig(t, failing))
	ctx := context.Background()

	_, err := d.Client.Pull(ctx, unlisted+"/x/y:1", "")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "invalid_request" || apiErr.HTTPStatus != http.StatusBadRequest ||
		!strings.Contains(apiErr.Message, unlisted) || !strings.Contains(apiErr.Message, "not allowed") {
		t.Errorf("pull from an unlisted loopback registry: %v, want 400 invalid_request naming %s as not allowed", err, unlisted)
	}
	if _, err := d.Client.PullProgress(ctx, unlisted+"/x/y:1", "", nil); !client.IsCode(err, "invalid_request") {
		t.Errorf("streamed pull from an unlisted loopback registry: %v, want invalid_request", err)
	}
	if n := unlistedConns.Load(); n != 0 {
		t.Errorf("the unlisted registry saw %d connections", n)
	}

	for _, streamed := range []bool{false, true} {
		var err error
		if streamed {
			_, err = d.Client.PullProgress(ctx, failing+"/x/y:1", "", nil)
		} else {
			_, err = d.Client.Pull(ctx, failing+"/x/y:1", "")
		}
		if !client.IsCode(err, "unavailable") || !strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), marker) {
			t.Errorf("pull (streamed %v) from a registry answering 500: %v, want unavailable with the status and without its body", streamed, err)
		}
	}
	if !strings.Contains(d.Log(), marker) {
		t.Error("the daemon's log lost what the registry answered")
	}
}
