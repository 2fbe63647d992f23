package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchPoolSize is the pooled daemon's --pool-size: the most sandboxes its
// warm pool may hold, whatever the request rate.
const benchPoolSize = 8

// sampleEvery is how often the parked sandboxes are counted during a
// throughput run. Each count is a scrape of the daemon's /metrics, which
// costs the daemon one to two milliseconds of CPU (measured on the 2-core
// development VM), taken from the runs being counted: every 100 ms it is
// about 2% of one core.
const sampleEvery = 100 * time.Millisecond

// samples sums up the parked-sandbox counts taken during one run.
type samples struct {
	n, min, median, max int
	empty               int // how many counts found the pool empty
	err                 error
}

// sample counts the parked sandboxes every sampleEvery until stop closes.
func sample(ctx context.Context, count func(context.Context) (int, error), stop <-chan struct{}) samples {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	var got []int
	for {
		c, err := count(ctx)
		if err != nil {
			return samples{err: err}
		}
		got = append(got, c)
		select {
		case <-stop:
			return summarize(got)
		case <-tick.C:
		}
	}
}

func summarize(got []int) samples {
	s := slices.Clone(got)
	slices.Sort(s)
	empty := 0
	for _, c := range s {
		if c == 0 {
			empty++
		}
	}
	return samples{n: len(s), min: s[0], median: s[len(s)/2], max: s[len(s)-1], empty: empty}
}

// parked reads the daemon's sandboxd_warm_sandboxes gauge (docs/api.md,
// Metrics): the sandboxes its pool holds built and unused. The sandbox
// cgroups (parkedSandboxes) would count the ones running requests too.
func (d *daemon) parked(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://sandboxd/metrics", nil)
	resp, err := d.metrics.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "sandboxd_warm_sandboxes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("GET /metrics: no sandboxd_warm_sandboxes")
}

// metricsClient speaks HTTP over the daemon's socket, where it serves
// /metrics as it does the API.
func metricsClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "unix", socket)
	}}}
}

// poolText reports the parked sandboxes of the pooled row's throughput
// runs, beside the pool's size, for sizing the pool to a machine's peak rate.
func poolText(m measurement, conc []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Warm pool during the throughput runs of %q (--pool-size %d), its parked sandboxes (built, not yet handed out) counted every %v from the daemon's sandboxd_warm_sandboxes gauge:\n\n",
		m.name, benchPoolSize, sampleEvery)
	b.WriteString("| concurrency | runs/s | parked: median | min | max | counts with none parked | counts |\n|---|---|---|---|---|---|---|\n")
	for _, c := range conc {
		s, ok := m.parked[c]
		switch {
		case m.skipped != "":
			fmt.Fprintf(&b, "| %d | %s | | | | | |\n", c, m.skipped)
		case !ok || s.n == 0:
			fmt.Fprintf(&b, "| %d | not sampled: %v | | | | | |\n", c, s.err)
		default:
			fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %d%% | %d |\n", c, rateCell(m, c), s.median, s.min, s.max, 100*s.empty/s.n, s.n)
		}
	}
	return b.String()
}

func rateCell(m measurement, c int) string {
	if t, ok := m.throughput[c]; ok {
		return fmt.Sprintf("%.0f", t)
	}
	return "failed"
}

// poolFillTimeout bounds warmPool's wait: a pool that never settles is
// timed as it is.
const poolFillTimeout = 20 * time.Second

// poolSettle is how long the parked count must stay the same for warmPool
// to take it as the pool's size for the row: the pool builds one sandbox
// at a time, a few tens of milliseconds each.
const poolSettle = time.Second

// warmRuns is how many of the row's own requests warmPool sends first.
const warmRuns = 200

// warmPool brings the warm pool to the size the timed runs keep it at.
// The pool sizes itself from the request rate (pool.targetSize), so one
// warm-up request leaves it at its smallest, and timing right after it
// would share the machine with the builds that the row's rate then calls
// for: a start-up cost, not a run's. warmRuns requests in the row's own
// pattern (back to back, or paced) raise the rate to the row's; then it
// waits for the builds that follow, until the pool holds benchPoolSize or
// its count stays the same for poolSettle.
func warmPool(ctx context.Context, s subject) error {
	if _, _, err := sequential(ctx, s, warmRuns); err != nil {
		return err
	}
	last, since := -1, time.Now()
	for deadline := time.Now().Add(poolFillTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n, err := s.parked(ctx)
		if err != nil {
			return err
		}
		switch {
		case n >= benchPoolSize:
			return nil
		case n != last:
			last, since = n, time.Now()
		case time.Since(since) >= poolSettle:
			return nil
		}
	}
	fmt.Fprintf(os.Stderr, "%s: the warm pool did not settle within %v; timing it as it is\n", s.name, poolFillTimeout)
	return nil
}
