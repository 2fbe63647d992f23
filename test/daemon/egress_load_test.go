package daemon_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// bigDownload is what /big of the egress upstream sends: at the default
// rate cap (10 MiB/s per run) a download takes at least 1.6 s.
const bigDownload = 16 << 20

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestEgressLoadLeavesTheDaemonResponsive: 50 sandboxes at once, each
// downloading 16 MiB through the egress proxy, while plain runs of `true`
// go on beside them: every download completes in full, every plain run
// answers, and the plain runs' p99 is reported. The bound on it is loose
// (a 2-core machine runs 50 sandboxes and the proxy's copying); what it
// catches is a daemon that stops answering while the proxy is busy.
func TestEgressLoadLeavesTheDaemonResponsive(t *testing.T) {
	const downloads = 50
	e := startEgress(t, "--concurrency", fmt.Sprint(downloads+8), "--queue-length", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pkgs := "pkgs.test:" + e.port
	var wg sync.WaitGroup
	results := make([]*api.ExecuteResponse, downloads)
	errs := make([]error, downloads)
	started := time.Now()
	for i := range downloads {
		wg.Go(func() {
			results[i], errs[i] = e.d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox",
				Cmd:     []string{"sh", "-c", "wget -qO- http://" + pkgs + "/big | wc -c"},
				Network: &api.Network{Allow: []string{pkgs}}, Limits: &api.Limits{WallTimeMS: ptr(int64(60000))}})
		})
	}
	var lat []time.Duration
	for time.Since(started) < 3*time.Second || len(lat) < 20 {
		t0 := time.Now()
		r, err := e.d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}})
		if err != nil || r.Status != "ok" {
			t.Fatalf("a plain run beside the downloads: %+v %v", r, err)
		}
		lat = append(lat, time.Since(t0))
	}
	wg.Wait()
	took := time.Since(started)
	for i := range downloads {
		if errs[i] != nil || results[i].Status != "ok" || results[i].Run.Stdout != fmt.Sprintf("%d\n", bigDownload) {
			t.Fatalf("download %d: %+v %v", i, results[i], errs[i])
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
	t.Logf("%d downloads of %d MiB in %v (%.0f MiB/s through the proxy); %d plain runs beside them: p50 %v, p99 %v",
		downloads, bigDownload>>20, took.Round(time.Millisecond), float64(downloads*bigDownload>>20)/took.Seconds(), len(lat), p50, p99)
	if p99 > 10*time.Second {
		t.Errorf("plain runs beside the downloads: p99 %v, the daemon is not responsive", p99)
	}
}
