package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// [images] preload from a registry on loopback, then from a file: the
// daemon is alive (/v1/healthz 200) but not ready (/v1/readyz 503, naming
// the images still missing) while the image is not in the registry yet
// and then while the registry holds the layer back; ready once both are
// in, and they run. The probes answer without a token on the operations
// port (metrics_listen), as a kubelet calls them. Then, stopping while a
// run is in flight, it is not ready any more.
func TestPreloadThenReady(t *testing.T) {
	var failures atomic.Int64 // manifest reads still to fail
	release := make(chan struct{})
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet && failures.Add(-1) >= 0 {
			// Not pushed yet: a 404 the registry client does not retry
			// by itself (it does a 503), so the daemon's own retry runs.
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	ref := pushRootfs(t, host+"/test/busybox:1.0")
	failures.Store(1) // the daemon's first manifest read fails: it retries

	rootfsTar, err := io.ReadAll(testdaemon.Tar(t, testRootfs, nil))
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "rootfs.tar", string(rootfsTar))
	ops := fmt.Sprintf("127.0.0.1:%d", testdaemon.FreePort(t))
	cfg := writeFile(t, "sandboxd.toml", fmt.Sprintf(`metrics_listen = "tcp://%s"
[images]
registries = [%q]
[[images.preload]]
ref = %q
name = "preloaded:1.0"
[[images.preload]]
file = %q
name = "fromfile:1.0"
`, ops, host, ref, file))
	d := testdaemon.Start(t, "--config", cfg)

	opsBase := "http://" + ops
	waitFor(t, func() bool { return failures.Load() < 0 }, "the daemon's first pull")
	for _, p := range []struct{ path, what string }{{"/v1/healthz", "liveness"}, {"/v1/readyz", "readiness"}} {
		r := call(t, opsBase, "GET", p.path, "", "")
		want := http.StatusOK
		if p.path == "/v1/readyz" {
			want = http.StatusServiceUnavailable
		}
		if r.status != want {
			t.Fatalf("%s while preloading: %d %s, want %d", p.path, r.status, r.body, want)
		}
	}
	var ready api.Readiness
	r := call(t, opsBase, "GET", "/v1/readyz", "", "")
	if json.Unmarshal(r.body, &ready) != nil || ready.Status != "not_ready" || !strings.Contains(ready.Reason, "preloaded:1.0") || !strings.Contains(ready.Reason, "fromfile:1.0") {
		t.Fatalf("readyz while preloading: %s", r.body)
	}

	close(release)
	waitFor(t, func() bool { return call(t, opsBase, "GET", "/v1/readyz", "", "").status == http.StatusOK }, "readiness")
	if r := call(t, opsBase, "GET", "/v1/readyz", "", ""); strings.TrimSpace(string(r.body)) != `{"status":"ready"}` {
		t.Errorf("readyz once ready: %s", r.body)
	}
	for _, img := range []string{"preloaded:1.0", "fromfile:1.0"} {
		res, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: img, Cmd: []string{"/bin/sh", "-c", "echo in"}})
		if err != nil || res.Status != runtime.StatusOK || res.Run.Stdout != "in\n" {
			t.Fatalf("run in the preloaded image %s: %v %+v\n%s", img, err, res, d.Log())
		}
	}
	for _, line := range []string{"preloading an image failed; retrying", "preloaded every image"} {
		if !strings.Contains(d.Log(), line) {
			t.Errorf("the log has no %q:\n%s", line, d.Log())
		}
	}
	drainingIsNotReady(t, d, opsBase)
}

// drainingIsNotReady stops d while a run is in flight: until it exits,
// the operations port still answers, and /v1/readyz says it is draining.
func drainingIsNotReady(t *testing.T, d *testdaemon.Daemon, opsBase string) {
	t.Helper()
	ran := make(chan error, 1)
	go func() {
		_, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "preloaded:1.0", Cmd: []string{"sleep", "3"}})
		ran <- err
	}()
	waitFor(t, func() bool { h, err := d.Client.Health(context.Background()); return err == nil && h.Running == 1 }, "the run to start")
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(time.Minute) }()
	waitFor(t, func() bool {
		r := call(t, opsBase, "GET", "/v1/readyz", "", "")
		return r.status == http.StatusServiceUnavailable && strings.Contains(string(r.body), "draining")
	}, "readyz to say draining")
	if err := <-ran; err != nil {
		t.Errorf("the run in flight while draining: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Error(err)
	}
}

// pushRootfs pushes the busybox test rootfs as a one-layer image to ref.
func pushRootfs(t *testing.T, ref string) string {
	t.Helper()
	data, err := io.ReadAll(testdaemon.Tar(t, testRootfs, nil))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return r.String()
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
	}
}
