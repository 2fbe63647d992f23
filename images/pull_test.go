package images

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPull(t *testing.T) {
	reg := newRegistry(t)
	img, want := twoLayers(t)
	ref := reg.push(t, "library/tool:1.0", img)
	e := newEnv(t, Options{Registries: []string{reg.host}})

	var calls atomic.Int64
	var last [2]int64
	var mu sync.Mutex
	got, err := e.store.Pull(bg, ref, "", func(done, total int64) {
		calls.Add(1)
		mu.Lock()
		last = [2]int64{done, total}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "tool:1.0" || got.Source != ref {
		t.Errorf("name %q source %q", got.Name, got.Source)
	}
	sameLines(t, tree(t, got.Rootfs), want)
	wantCfg := ImageConfig{Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/srv", User: "1000:1000", Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}}
	if !equalConfig(got.Config, wantCfg) {
		t.Errorf("config %+v, want %+v", got.Config, wantCfg)
	}
	if calls.Load() == 0 || last[0] != last[1] || last[1] <= 0 {
		t.Errorf("progress: %d calls, last %v", calls.Load(), last)
	}
	if got.SizeBytes <= 0 || !filepath.IsAbs(got.Rootfs) {
		t.Errorf("size %d rootfs %q", got.SizeBytes, got.Rootfs)
	}
	for _, m := range []string{"proc", "dev", "sys", "tmp", "work"} {
		mustIsDir(t, filepath.Join(got.Rootfs, m))
	}
	cfgID, _ := img.ConfigName()
	if got.ID != cfgID.String() {
		t.Errorf("id %s, want the config digest %s", got.ID, cfgID)
	}

	// The same image under another name: no layer fetched again, one
	// rootfs for both.
	layers := layerDigests(t, img)
	other, err := e.store.Pull(bg, ref, "other", nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Rootfs != got.Rootfs || other.Name != "other:latest" {
		t.Errorf("second pull: %+v", other)
	}
	for _, d := range layers {
		if n := reg.fetches(d); n != 1 {
			t.Errorf("layer %s fetched %d times", d, n)
		}
	}
	if err := e.store.Remove("tool:1.0"); err != nil {
		t.Fatal(err)
	}
	mustIsDir(t, other.Rootfs)
	if err := e.store.Remove("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other.Rootfs); !os.IsNotExist(err) {
		t.Errorf("rootfs still there after the last name went: %v", err)
	}
	e.checkNoLeftovers(t)
	e.checkOutside(t)
}

func equalConfig(a, b ImageConfig) bool {
	return slices.Equal(a.Env, b.Env) && a.WorkingDir == b.WorkingDir && a.User == b.User &&
		slices.Equal(a.Entrypoint, b.Entrypoint) && slices.Equal(a.Cmd, b.Cmd)
}

func TestPullDefaultPath(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.push(t, "nopath", testImage(t, v1Config(), tarLayer(t, file("x", "x"))))
	e := newEnv(t, Options{Registries: []string{reg.host}})
	got, err := e.store.Pull(bg, ref, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "nopath:latest" || !slices.Equal(got.Config.Env, []string{DefaultPath}) {
		t.Errorf("%s: env %v", got.Name, got.Config.Env)
	}
}

func TestPullConcurrent(t *testing.T) {
	reg := newRegistry(t)
	img, want := twoLayers(t)
	ref := reg.push(t, "conc:1", img)
	layers := layerDigests(t, img)
	// Slow layer fetches, so that the pulls overlap.
	reg.setHold(func(r *http.Request, d string) {
		if slices.Contains(layers, d) {
			time.Sleep(200 * time.Millisecond)
		}
	})
	e := newEnv(t, Options{Registries: []string{reg.host}})
	const n = 8
	var wg sync.WaitGroup
	imgs := make([]*Image, n)
	errs := make([]error, n)
	var progressed [n]atomic.Bool
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs[i], errs[i] = e.store.Pull(bg, ref, "", func(done, total int64) { progressed[i].Store(true) })
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		if imgs[i].ID != imgs[0].ID || imgs[i].Rootfs != imgs[0].Rootfs {
			t.Errorf("pull %d: %+v vs %+v", i, imgs[i], imgs[0])
		}
	}
	for _, d := range layers {
		if got := reg.fetches(d); got != 1 {
			t.Errorf("layer %s fetched %d times, want once", d, got)
		}
	}
	if !progressed[0].Load() && !progressed[1].Load() {
		t.Error("no progress reported")
	}
	sameLines(t, tree(t, imgs[0].Rootfs), want)
	e.checkNoLeftovers(t)
}

func TestPullCanceled(t *testing.T) {
	reg := newRegistry(t)
	img, _ := twoLayers(t)
	ref := reg.push(t, "slow:1", img)
	layers := layerDigests(t, img)
	started := make(chan struct{}, 16)
	reg.setHold(func(r *http.Request, d string) {
		if d == layers[1] {
			started <- struct{}{}
			<-r.Context().Done()
		}
	})
	e := newEnv(t, Options{Registries: []string{reg.host}})

	t.Run("last caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		go func() { <-started; cancel() }()
		_, err := e.store.Pull(ctx, ref, "", nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if _, err := e.store.Get("slow:1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("canceled image visible: %v", err)
		}
		e.checkNoLeftovers(t)
		if list, _ := e.store.List(); len(list) != 0 {
			t.Errorf("images after a canceled pull: %v", list)
		}
	})

	t.Run("one of two callers cancels", func(t *testing.T) {
		var released atomic.Bool
		reg.setHold(func(r *http.Request, d string) {
			if d == layers[1] && !released.Load() {
				started <- struct{}{}
				time.Sleep(300 * time.Millisecond)
			}
		})
		ctx, cancel := context.WithCancel(bg)
		errc := make(chan error, 1)
		go func() {
			_, err := e.store.Pull(ctx, ref, "", nil)
			errc <- err
		}()
		<-started
		done := make(chan *Image, 1)
		go func() {
			img, err := e.store.Pull(bg, ref, "", nil)
			if err != nil {
				t.Errorf("the caller that stayed: %v", err)
			}
			done <- img
		}()
		waitWaiters(t, e.store, 2) // the second caller has joined
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("canceled caller: %v", err)
		}
		released.Store(true)
		if img := <-done; img == nil || img.Name != "slow:1" {
			t.Errorf("image %+v", img)
		}
		if got := reg.fetches(layers[1]); got != 2 {
			// One from the first subtest, one here.
			t.Errorf("layer fetched %d times, want 2", got)
		}
		e.checkNoLeftovers(t)
	})
}

func TestPullErrors(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.push(t, "there:1", testImage(t, v1Config(), tarLayer(t, file("x", "x"))))
	closed := newRegistry(t)
	closed.srv.Close()
	e := newEnv(t, Options{Registries: []string{reg.host, closed.host}})
	for _, tc := range []struct {
		ref, name string
		err       error
	}{
		{ref: reg.host + "/missing:1", err: ErrNotFound},
		{ref: reg.host + "/there:2", err: ErrNotFound},
		{ref: reg.host + "/there@sha256:" + zeros64, err: ErrNotFound},
		{ref: "Bad Ref!", err: ErrInvalid},
		{ref: "", err: ErrInvalid},
		{ref: ref, name: "Bad:Name", err: ErrInvalid},
		{ref: ref, name: "a:b:c", err: ErrInvalid},
		{ref: closed.host + "/x:1", err: ErrUnavailable},
	} {
		t.Run(tc.ref+"|"+tc.name, func(t *testing.T) {
			_, err := e.store.Pull(bg, tc.ref, tc.name, nil)
			mustClass(t, err, tc.err)
			t.Log(err)
		})
	}
	e.checkNoLeftovers(t)
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

func TestTLSUnlessLoopback(t *testing.T) {
	passed := 0
	rt := tlsUnlessLoopback{next: roundTripFunc(func(*http.Request) (*http.Response, error) {
		passed++
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://[::1]:5000/v2/", true},
		{"http://127.1.2.3/v2/", true},
		{"https://registry.example/v2/", true},
		{"http://10.0.0.1:5000/v2/", false},
		{"http://192.168.1.1/v2/", false},
		{"http://registry.local/v2/", false},
		{"http://registry.example/v2/", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		before := passed
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if (err == nil) != tc.ok || (passed > before) != tc.ok {
			t.Errorf("%s: err %v, passed on %v; want ok %v", tc.url, err, passed > before, tc.ok)
		}
	}
	for _, tc := range []struct {
		ref      string
		insecure bool
	}{
		{"127.0.0.1:5000/x", true}, {"localhost:5000/x", true}, {"[::1]:5000/x", true},
		{"10.0.0.1:5000/x", false}, {"busybox", false}, {"ghcr.io/a/b:1", false},
	} {
		r, err := parseRef(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Registry.Scheme() == "http"; got != tc.insecure && tc.insecure {
			t.Errorf("%s: scheme %s", tc.ref, r.Context().Registry.Scheme())
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// waitWaiters waits until some build has n callers waiting for it.
func waitWaiters(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.builds.mu.Lock()
		for _, f := range s.builds.m {
			if f.waiters == n {
				s.builds.mu.Unlock()
				return
			}
		}
		s.builds.mu.Unlock()
	}
	t.Fatalf("no build got %d waiters", n)
}
