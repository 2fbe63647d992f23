// Command soak runs a real `sandboxd serve` through many runs of mixed
// outcomes — N sequential, then M at once — and reports what the daemon
// holds before and after (RSS, open fds, threads, goroutines from
// GET /metrics), what it leaked (sandbox cgroups, mounts, state and
// scratch directories beyond its warm pool) and every failed request. It
// exits 1 when anything leaked, any request failed, or RSS grew more than
// -max-rss-growth percent. `make soak` runs 10,000 + 1,000; `make test`
// a short version.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type kind struct {
	name string
	req  api.ExecuteRequest
	want api.Status
}

// compileErrorKind is the language-mode run whose compile fails.
const compileErrorKind = "compile error"

func ptr[T any](v T) *T { return &v }

var kinds = []kind{
	{"ok", api.ExecuteRequest{Cmd: []string{"echo", "hello"}}, api.StatusOK},
	{"oom", api.ExecuteRequest{Cmd: []string{"probe", "alloc", "100"}, Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20))}}, api.StatusMemoryLimit},
	{"wall timeout", api.ExecuteRequest{Cmd: []string{"sleep", "5"}, Limits: &api.Limits{WallTimeMS: ptr(int64(150))}}, api.StatusWallTimeLimit},
	{"cpu timeout", api.ExecuteRequest{Cmd: []string{"probe", "burn", "1"}, Limits: &api.Limits{CPUTimeMS: ptr(int64(60)), CPUs: ptr(1.0), WallTimeMS: ptr(int64(5000))}}, api.StatusTimeLimit},
	{"output flood", api.ExecuteRequest{Cmd: []string{"yes"}, Limits: &api.Limits{OutputBytes: ptr(int64(64 << 10))}}, api.StatusOutputLimit},
	{"runtime error", api.ExecuteRequest{Cmd: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}}, api.StatusRuntimeError},
	{"daemonizer", api.ExecuteRequest{Cmd: []string{"probe", "daemon", "soak-daemonized"}}, api.StatusOK},
}

var (
	idle      time.Duration
	gccRootfs string
)

type stats struct {
	rss, fds, threads int64
	goroutines, warm  float64
}

func (s stats) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %d fds, %d threads, %.0f goroutines (%.0f sandboxes parked in the warm pool)", float64(s.rss)/(1<<20), s.fds, s.threads, s.goroutines, s.warm)
}

type soak struct {
	d        *testdaemon.Daemon
	c        *client.Client
	http     *http.Client
	mu       sync.Mutex
	failures []string
	counts   map[string]int
}

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary (static)")
	rootfs := flag.String("rootfs", ".cache/rootfs/busybox-test", "busybox test rootfs (with the probe)")
	seq := flag.Int("seq", 10000, "sequential runs")
	conc := flag.Int("conc", 1000, "runs sent at once after the sequential ones")
	slots := flag.Int("concurrency", 8, "the daemon's --concurrency")
	warmup := flag.Int("warmup", 100, "runs before the start figures are taken")
	maxGrowth := flag.Float64("max-rss-growth", 10, "largest RSS growth allowed, percent")
	flag.StringVar(&gccRootfs, "gcc-rootfs", "", "the lang/gcc image's rootfs (make images); with it, compile errors are soaked too")
	flag.DurationVar(&idle, "idle", 0, "wait this long idle before the end figures (Go returns a burst's heap to the OS only after a GC, forced every 2 minutes when idle)")
	flag.Parse()
	if err := run(*bin, *rootfs, *seq, *conc, *slots, *warmup, *maxGrowth); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(bin, rootfs string, seq, conc, slots, warmup int, maxGrowth float64) error {
	dir, err := os.MkdirTemp("", "sandboxd-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := launch(bin, dir, conc, slots)
	if err != nil {
		return err
	}
	defer func() {
		if err := s.d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}()
	if err := s.importImages(rootfs); err != nil {
		return err
	}
	fmt.Printf("soak: %d sequential + %d concurrent runs of %d kinds, daemon pid %d, --concurrency %d\n", seq, conc, len(kinds), s.d.Pid(), slots)
	fresh := s.stats()
	fmt.Printf("fresh: %s\n", fresh)
	start := s.warmUp(warmup, conc)
	s.load(seq, conc)
	end, leaked := s.finish()
	errs := s.report(fresh, start, end, leaked, maxGrowth)
	errs = append(errs, s.stop()...)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, ", "))
	}
	fmt.Println("soak: ok")
	return nil
}

// launch starts the daemon in dir with a queue long enough for the
// concurrent phase, and the language catalog when compile errors are
// soaked too.
func launch(bin, dir string, conc, slots int) (*soak, error) {
	if err := os.Chmod(dir, 0o755); err != nil { // user namespaces must reach the image store
		return nil, err
	}
	args := []string{"--concurrency", fmt.Sprint(slots), "--queue-length", fmt.Sprint(conc + slots)}
	if gccRootfs != "" {
		catalog, _ := filepath.Abs("languages/catalog.toml")
		args = append(args, "--catalog", catalog)
	}
	// The soak looks for leaks, which are live memory: a small GC target
	// keeps the garbage a daemon holds between collections (up to its
	// live heap again at the default 100, about a tenth of its RSS here)
	// from hiding or faking them in the RSS compared.
	d, err := testdaemon.Launch(testdaemon.Config{Bin: bin, Dir: dir, LogLevel: "warn", Args: args, Env: []string{"GOGC=25"}})
	if err != nil {
		return nil, err
	}
	s := &soak{d: d, c: d.Client, counts: map[string]int{}}
	s.http = testdaemon.HTTPClient(d.Socket)
	return s, nil
}

// importImages imports busybox and, with -gcc-rootfs, lang/gcc:12, whose
// compile error then joins the kinds of run.
func (s *soak) importImages(rootfs string) error {
	if _, err := s.d.Import(context.Background(), "busybox", rootfs); err != nil {
		return err
	}
	if gccRootfs == "" {
		fmt.Println("soak: compile errors are not exercised: no -gcc-rootfs given (busybox only)")
		return nil
	}
	if _, err := s.d.Import(context.Background(), "lang/gcc:12", gccRootfs); err != nil {
		return err
	}
	kinds = append(kinds, kind{name: compileErrorKind,
		req: api.ExecuteRequest{Language: "c", Files: []api.File{{Name: "main.c", Content: "int main(void){ return undeclared; }"}}}})
	return nil
}

// warmUp runs warmup sequential runs and one burst as large as the
// concurrent phase, uncounted, and returns the figures growth is measured
// from: the Go runtime keeps the heap and stacks of a burst's high-water
// mark, which is footprint, not a leak.
func (s *soak) warmUp(warmup, conc int) stats {
	for i := 0; i < warmup; i++ {
		s.one(i, false)
	}
	s.burst(conc, false)
	s.settle()
	start := s.stats()
	fmt.Printf("start (after %d warm-up runs and a burst of %d): %s\n", warmup, conc, start)
	return start
}

// load is the soak itself: seq sequential runs, then conc at once.
func (s *soak) load(seq, conc int) {
	t0 := time.Now()
	for i := 0; i < seq; i++ {
		s.one(i, true)
		if (i+1)%1000 == 0 {
			fmt.Printf("  %d sequential runs, %v, %s\n", i+1, time.Since(t0).Round(time.Second), s.stats())
		}
	}
	fmt.Printf("sequential: %d runs in %v\n", seq, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	s.burst(conc, true)
	fmt.Printf("concurrent: %d runs in %v\n", conc, time.Since(t0).Round(time.Millisecond))
}

// finish takes the end figures and leftovers once the daemon has settled,
// and again after -idle when it is set.
func (s *soak) finish() (stats, leaks) {
	l := s.settle()
	end := s.stats()
	fmt.Printf("right after: %s\n", end)
	if idle > 0 {
		time.Sleep(idle)
		l = s.settle()
		end = s.stats()
		fmt.Printf("end (after %v idle): %s\n", idle, end)
	}
	return end, l
}

// report prints growth, outcomes, leaks and failures, and returns what
// fails the soak among them.
func (s *soak) report(fresh, start, end stats, l leaks, maxGrowth float64) []string {
	growth := 100 * (float64(end.rss) - float64(start.rss)) / float64(start.rss)
	fmt.Printf("RSS growth from fresh: %+.1f%% (informative)\n", 100*(float64(end.rss)-float64(fresh.rss))/float64(fresh.rss))
	fmt.Printf("RSS growth: %+.1f%% (limit %.0f%%); fds %+d; threads %+d; goroutines %+.0f\n", growth, maxGrowth, end.fds-start.fds, end.threads-start.threads, end.goroutines-start.goroutines)
	fmt.Printf("outcomes: %v\n", s.counts)
	fmt.Printf("leaked: %d cgroups, %d mounts, %d directories (beyond %d parked in the warm pool)\n", l.cgroups, l.mounts, l.dirs, l.warm)
	fmt.Printf("failures: %d\n", len(s.failures))
	for i, f := range s.failures {
		if i == 50 {
			fmt.Printf("  ... %d more\n", len(s.failures)-50)
			break
		}
		fmt.Println("  " + f)
	}
	var errs []string
	if len(s.failures) > 0 {
		errs = append(errs, fmt.Sprintf("%d failed requests", len(s.failures)))
	}
	if l.cgroups+l.mounts+l.dirs > 0 {
		errs = append(errs, "leaks")
	}
	if growth > maxGrowth {
		errs = append(errs, fmt.Sprintf("RSS grew %.1f%%", growth))
	}
	return errs
}

// stop stops the daemon and returns what is wrong after: a clean stop
// takes the warm pool with it, so nothing may be left.
func (s *soak) stop() []string {
	var errs []string
	if err := s.d.Stop(time.Minute); err != nil {
		errs = append(errs, err.Error())
	}
	if left := s.d.Leftovers(); len(left) > 0 {
		fmt.Printf("left after the daemon stopped: %v\n", left)
		errs = append(errs, fmt.Sprintf("%d leftovers after the daemon stopped", len(left)))
	} else {
		fmt.Println("after the daemon stopped: nothing left")
	}
	return errs
}

func (s *soak) burst(n int, count bool) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); s.one(i, count) }(i)
	}
	wg.Wait()
}

func (s *soak) one(i int, count bool) {
	k := kinds[i%len(kinds)]
	req := k.req
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if k.name == compileErrorKind {
		// A different source each time: a compile error is never cached,
		// but this keeps even a cache from hiding work.
		req.Files = []api.File{{Name: "main.c", Content: fmt.Sprintf("/* %d */ %s", i, k.req.Files[0].Content)}}
		r, err := s.c.ExecuteLanguage(ctx, &req)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case err != nil:
			s.failures = append(s.failures, fmt.Sprintf("run %d (%s): %v", i, k.name, err))
		case r.Status != "compile_error" || r.Run != nil:
			s.failures = append(s.failures, fmt.Sprintf("run %d (%s): status %s", i, k.name, r.Status))
		}
		if count && err == nil {
			s.counts[r.Status]++
		}
		return
	}
	req.Image = "busybox"
	r, err := s.c.Execute(ctx, &req)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.failures = append(s.failures, fmt.Sprintf("run %d (%s): %v", i, k.name, err))
	case r.Status != k.want:
		s.failures = append(s.failures, fmt.Sprintf("run %d (%s): status %s, want %s (%s)", i, k.name, r.Status, k.want, r.Run.Error))
	}
	if count && err == nil {
		s.counts[string(r.Status)]++
	}
}

func (s *soak) stats() stats {
	pid := s.d.Pid()
	var st stats
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			st.rss = kb << 10
		}
		if len(f) >= 2 && f[0] == "Threads:" {
			st.threads, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	st.fds = int64(len(fds))
	st.goroutines = s.metric("go_goroutines")
	st.warm = s.metric("sandboxd_warm_sandboxes")
	return st
}

func (s *soak) metric(name string) float64 {
	resp, err := s.http.Get("http://sandboxd/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

type leaks struct{ cgroups, mounts, dirs, warm int }

// settle waits until no run is in flight and what is left is the warm
// pool, then counts what is beyond it, per kind of leftover.
func (s *soak) settle() leaks {
	var l leaks
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		warm := int(s.metric("sandboxd_warm_sandboxes"))
		cg, mounts, dirs := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, left := range s.d.Leftovers() {
			id := testdaemon.SandboxID(left)
			switch kind, _, _ := strings.Cut(left, ":"); kind {
			case "cgroup":
				cg[id] = true
			case "mount":
				mounts[id] = true
			default:
				dirs[id] = true
			}
		}
		l = leaks{max(0, len(cg)-warm), max(0, len(mounts)-warm), max(0, len(dirs)-warm), warm}
		h, err := s.c.Health(context.Background())
		if (err == nil && h.Running == 0 && h.Queued == 0 && l.cgroups+l.mounts+l.dirs == 0) || time.Now().After(deadline) {
			return l
		}
	}
}
