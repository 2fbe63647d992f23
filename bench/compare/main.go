// Command compare is `make bench`: it measures, in one run and on the same
// busybox rootfs running /bin/true, sandboxd through its API (warm pool on
// and off), `sandboxd exec`, runc, crun, docker, bubblewrap and a plain
// fork+exec, and prints latency percentiles, CPU per run, throughput at
// several concurrencies and the ratio to sandboxd. It also times a Python
// hello world through sandboxd, docker and bare, and writes the table to
// docs/benchmarks.md. Runners that can't run here are reported with the
// reason instead of a number.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type subject struct {
	name string
	// run performs one run and returns the CPU it cost, when the runner's
	// processes are children of this program.
	run     func(ctx context.Context) (cpu time.Duration, err error)
	skipped string
	// pace, when set, is a pause before each run: requests arriving
	// slower than the daemon builds sandboxes (no throughput then).
	pace time.Duration
	// usage, when set, is a running total of the CPU the runner uses, for
	// a runner whose work is not done by children of this program (the
	// daemon's). It is read around all the sequential runs at once, so
	// that what the runner does between runs counts too.
	usage func() time.Duration
	// parked, when set, counts the sandboxes parked in the runner's warm
	// pool; it is sampled during the throughput runs, and the latency
	// runs start only once the pool has the size the row keeps it at
	// (warmPool).
	parked func(ctx context.Context) (int, error)
	// runs, when set, is how many sequential runs to time instead of the
	// bench's n: the pooled rows take a millisecond or two each, and a
	// p99 of 200 is the third-worst run.
	runs int
}

type measurement struct {
	name          string
	p50, p90, p99 time.Duration
	cpu           time.Duration
	throughput    map[int]float64
	parked        map[int]samples // by concurrency, when the subject has a pool
	skipped       string
	paced         bool // no throughput runs
}

func pct(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// command runs argv and returns the CPU its process tree used.
func command(ctx context.Context, argv ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func paced(s subject, pace time.Duration) subject {
	s.pace = pace
	return s
}

// sequential times n runs of s one after another (s.pace apart) and
// returns their latencies and the CPU they cost: the runner's usage
// around all of them when it has one, else the sum of what each run says.
func sequential(ctx context.Context, s subject, n int) (lat []time.Duration, cpu time.Duration, err error) {
	lat = make([]time.Duration, 0, n)
	var before time.Duration
	if s.usage != nil {
		before = s.usage()
	}
	for range n {
		time.Sleep(s.pace)
		start := time.Now()
		c, err := s.run(ctx)
		if err != nil {
			return nil, 0, err
		}
		lat = append(lat, time.Since(start))
		cpu += c
	}
	if s.usage != nil {
		cpu = s.usage() - before
	}
	return lat, cpu, nil
}

func measure(ctx context.Context, s subject, n int, concurrencies []int) measurement {
	m := measurement{name: s.name, skipped: s.skipped, throughput: map[int]float64{}, parked: map[int]samples{}}
	if s.skipped != "" {
		return m
	}
	if _, err := s.run(ctx); err != nil { // warm-up, and a check that it runs here
		m.skipped = "not runnable here: " + firstLine(err.Error())
		return m
	}
	if s.runs > 0 {
		n = s.runs
	}
	if s.parked != nil {
		if err := warmPool(ctx, s); err != nil {
			m.skipped = "failed during the warm-up: " + firstLine(err.Error())
			return m
		}
	}
	lat, cpu, err := sequential(ctx, s, n)
	if err != nil {
		m.skipped = "failed during the run: " + firstLine(err.Error())
		return m
	}
	m.p50, m.p90, m.p99, m.cpu = pct(lat, .5), pct(lat, .9), pct(lat, .99), cpu/time.Duration(n)
	if s.pace > 0 {
		m.paced = true
		return m
	}
	for _, c := range concurrencies {
		rate, parked, err := throughput(ctx, s, n, c)
		if err == nil {
			m.throughput[c] = rate
		}
		if s.parked != nil {
			m.parked[c] = parked
		}
	}
	return m
}

// throughput does n runs with c concurrent clients and returns the rate,
// and the parked sandboxes sampled meanwhile when the subject has a pool.
func throughput(ctx context.Context, s subject, n, c int) (float64, samples, error) {
	sampled := make(chan samples, 1)
	stop := make(chan struct{})
	if s.parked != nil {
		go func() { sampled <- sample(ctx, s.parked, stop) }()
	} else {
		sampled <- samples{}
	}
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	var failed error
	var mu sync.Mutex
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if _, err := s.run(ctx); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	close(stop)
	return rate, <-sampled, failed
}

func firstLine(s string) string { return strings.SplitN(strings.TrimSpace(s), "\n", 2)[0] }

// daemon is a sandboxd serve started for the benchmark.
type daemon struct {
	*testdaemon.Daemon
	dir     string
	metrics *http.Client // over the daemon's socket
	cpuDir  string       // the cgroup its CPU is read from (v1; see accountIn)
}

// startDaemon runs a daemon with the rootfs imported as image; an empty
// parent means a cgroup parent of its own.
func startDaemon(bin, rootfs, image, parent string, extra ...string) (*daemon, error) {
	dir, err := os.MkdirTemp("", "sandboxd-bench-")
	if err != nil {
		return nil, err
	}
	// Sandboxes in user namespaces must reach the image store.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	launch, cpuDir, err := accountIn(dir, bin)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("a cgroup to account the daemon's CPU: %w", err)
	}
	td, err := testdaemon.Launch(testdaemon.Config{Bin: launch, Dir: dir, LogLevel: "warn", CgroupParent: parent,
		Args: append([]string{"--queue-length", "256"}, extra...)})
	if err != nil {
		os.RemoveAll(dir)
		if cpuDir != "" {
			removeCgroup(cpuDir)
		}
		return nil, err
	}
	d := &daemon{Daemon: td, dir: dir, metrics: metricsClient(td.Socket), cpuDir: cpuDir}
	if _, err := d.Import(context.Background(), image, rootfs); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *daemon) stop() {
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd daemon:", err)
	}
	if d.cpuDir != "" {
		removeCgroup(d.cpuDir)
	}
	os.RemoveAll(d.dir)
}

func (d *daemon) rssKiB() int64 { return d.statusKiB("VmRSS:") }

// peakRSSKiB is the daemon's RSS high-water mark since it started.
func (d *daemon) peakRSSKiB() int64 { return d.statusKiB("VmHWM:") }

func (d *daemon) statusKiB(field string) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Pid()))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func (d *daemon) subject(name string, cmd []string, image string) subject {
	return subject{name: name, usage: d.cpu, run: func(ctx context.Context) (time.Duration, error) {
		resp, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: image, Cmd: cmd})
		if err != nil {
			return 0, err
		}
		if resp.Status != "ok" {
			return 0, fmt.Errorf("status %s: %s", resp.Status, resp.Run.Stderr)
		}
		return 0, nil
	}}
}

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	rootfs := flag.String("rootfs", ".cache/rootfs/busybox", "busybox rootfs")
	pyRootfs := flag.String("python-rootfs", "", "a Python rootfs for the python hello world (empty: skip)")
	gccRootfs := flag.String("gcc-rootfs", "", "the lang/gcc image's rootfs for the 100-test C row (empty: reported as not runnable)")
	catalog := flag.String("catalog", "languages/catalog.toml", "the language catalog, for the C row")
	n := flag.Int("n", 200, "runs per subject")
	out := flag.String("out", "docs/benchmarks.md", "where to write the table ('' for nowhere)")
	only := flag.String("only", "", "\"testsets\": print the test-set rows only; \"api\": the pooled API rows and bwrap's (both write nothing)")
	onlyInteractive := flag.Bool("only-interactive", false, "time the interactive row alone and print it (`make bench-interactive`)")
	ab := flag.String("ab", "", "another sandboxd binary: compare the pooled back-to-back row of -bin and this one, their daemons taking turns (prints, writes nothing)")
	abPace := flag.Duration("ab-pace", 0, "with -ab: a pause before each request")
	flag.Parse()
	ctx := context.Background()
	if *only == "testsets" {
		fmt.Println(testsetText(testsetBench(ctx, *bin, *gccRootfs, *catalog, max(3, *n/20))))
		return
	}
	abs, _ := filepath.Abs(*rootfs)
	*rootfs = abs
	if *ab != "" {
		text, err := abCompare(ctx, [2]string{*bin, *ab}, *rootfs, *n, *abPace)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(text)
		return
	}
	work, _ := os.MkdirTemp("", "sandboxd-compare-")
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755) // sandboxes in user namespaces reach their roots through it
	if *onlyInteractive {
		fmt.Println(interactiveText(interactive(ctx, *bin, *gccRootfs, *catalog, work, interactiveRuns)))
		return
	}

	// sandboxd exec keeps its default parent cgroup on purpose; the bench
	// uses one of its own and removes it.
	defer testdaemon.RemoveCgroupParent(execParent)
	pooled, err := startDaemon(*bin, *rootfs, "bench", poolParent, "--pool-size", strconv.Itoa(benchPoolSize))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd daemon:", err)
		os.Exit(1)
	}
	defer pooled.stop()
	if *only == "api" {
		fmt.Println(apiOnly(ctx, pooled, *rootfs, *n))
		return
	}
	fresh, err := startDaemon(*bin, *rootfs, "bench", "", "--pool-size", "0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd daemon:", err)
		pooled.stop()
		os.Exit(1)
	}
	defer fresh.stop()
	idleRSS := pooled.rssKiB()
	concurrencies := []int{1, 4, 16}
	var results []measurement
	for _, s := range runners(ctx, pooled, fresh, *bin, *rootfs, work, *n) {
		fmt.Fprintf(os.Stderr, "measuring %s ...\n", s.name)
		results = append(results, measure(ctx, s, *n, concurrencies))
	}
	parkedRSS := pooled.rssKiB()
	nParked, cgroupKiB := parkedSandboxes()
	fmt.Fprintf(os.Stderr, "measuring C, %d tests ...\n", cTestCount)
	c := cTests(ctx, *bin, *gccRootfs, *catalog, max(5, *n/10))
	fmt.Fprintf(os.Stderr, "measuring a %d-test set of 1 MiB inputs ...\n", setTests)
	sets := testsetBench(ctx, *bin, *gccRootfs, *catalog, max(3, *n/20))
	fmt.Fprintf(os.Stderr, "measuring an interactive test, %d round trips ...\n", roundTrips)
	inter := interactive(ctx, *bin, *gccRootfs, *catalog, work, interactiveRuns)
	pooledRow, _ := find(results, rowAPI)
	parts := []string{render(results, concurrencies), cTestsText(c), testsetText(sets), interactiveText(inter), ratiosText(results, c), poolText(pooledRow, concurrencies), cpuNote + "\n",
		pythonTable(ctx, *bin, *pyRootfs, *n),
		fmt.Sprintf("Daemon RSS: %d KiB idle (after start, before any run); %d KiB after the runs, with %d sandboxes parked in the warm pool.\n\n"+
			"Host memory of one parked sandbox: %d KiB charged to its cgroup (its entry process and the kernel memory of its namespaces, mounts and page tables), plus its share of the daemon's growth, %d KiB.\n",
			idleRSS, parkedRSS, nParked, cgroupKiB, (parkedRSS-idleRSS)/int64(max(nParked, 1)))}
	text := strings.Join(parts, "\n")
	fmt.Println(text)
	if *out != "" {
		doc := "# Benchmarks\n\nWritten by `make bench` (`bench/compare`); numbers from one run on " + machine() +
			fmt.Sprintf(". Each runner starts /bin/true in the same busybox rootfs; latency is sequential (%d runs; %d for the pooled back-to-back row, timed after 200 warm-up requests of its own kind, once its warm pool has grown to the size they call for), throughput uses the given number of concurrent clients. Compare ratios, not absolute numbers: these machines are noisy. ", *n, pooledRuns**n) +
			"What each step of issue 16 bought, and where a run's time and CPU go: [throughput.md](throughput.md).\n\n" + text
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// runners lists what the table compares, in its order: sandboxd's API on
// both daemons, `sandboxd exec`, the other runtimes, and fork+exec.
func runners(ctx context.Context, pooled, fresh *daemon, bin, rootfs, work string, n int) []subject {
	return append(pooledSubjects(pooled, n),
		fresh.subject("sandboxd API, pool off", []string{"/bin/true"}, "bench"),
		subject{name: rowExec, run: func(ctx context.Context) (time.Duration, error) {
			return command(ctx, bin, "exec", "--run-dir", filepath.Join(work, "exec"), "--cgroup-parent", execParent, "--rootfs", rootfs, "--", "/bin/true")
		}},
		ociSubject("runc", work, rootfs), ociSubject("crun", work, rootfs),
		dockerSubject(ctx, "docker run --rm --network none", rootfs, "sandboxd-bench-busybox", "/bin/true"),
		bwrapSubject(rootfs),
		subject{name: "fork+exec", run: func(ctx context.Context) (time.Duration, error) {
			return command(ctx, filepath.Join(rootfs, "bin", "true"))
		}},
	)
}

// apiOnly measures the pooled API rows and bwrap's, for a quick look at
// the figures a change of the run's path moves (`-only api`).
func apiOnly(ctx context.Context, pooled *daemon, rootfs string, n int) string {
	concurrencies := []int{1, 4, 16}
	var results []measurement
	for _, s := range append(pooledSubjects(pooled, n), bwrapSubject(rootfs)) {
		fmt.Fprintf(os.Stderr, "measuring %s ...\n", s.name)
		results = append(results, measure(ctx, s, n, concurrencies))
	}
	return render(results, concurrencies)
}

// pooledRuns is how many times the bench's n the back-to-back pooled row
// times.
const pooledRuns = 5

// pooledSubjects are the rows of the daemon with a warm pool: back to back
// (with its pool counted) and paced.
func pooledSubjects(pooled *daemon, n int) []subject {
	row := pooled.subject(rowAPI, []string{"/bin/true"}, "bench")
	row.parked, row.runs = pooled.parked, pooledRuns*n
	return []subject{row,
		paced(pooled.subject("sandboxd API, pool on, a request every 20 ms", []string{"/bin/true"}, "bench"), 20*time.Millisecond)}
}

func bwrapSubject(rootfs string) subject {
	return subject{name: rowBwrap, run: func(ctx context.Context) (time.Duration, error) {
		return command(ctx, "bwrap", "--ro-bind", rootfs, "/", "--unshare-all", "--die-with-parent",
			"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true")
	}}
}

func render(results []measurement, conc []int) string {
	var b strings.Builder
	ref := time.Duration(0)
	for _, r := range results {
		if r.skipped == "" {
			ref = r.p50
			break
		}
	}
	fmt.Fprintf(&b, "| runner | p50 ms | p90 ms | p99 ms | CPU/run ms |")
	for _, c := range conc {
		fmt.Fprintf(&b, " runs/s @%d |", c)
	}
	b.WriteString(" p50 vs sandboxd |\n|---|---|---|---|---|")
	for range conc {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, r := range results {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %s | %s |", r.name, r.skipped)
			for i := 0; i < 4+len(conc); i++ {
				b.WriteString(" |")
			}
			b.WriteString("\n")
			continue
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f |", r.name, ms(r.p50), ms(r.p90), ms(r.p99), ms(r.cpu))
		for _, c := range conc {
			if t, ok := r.throughput[c]; ok {
				fmt.Fprintf(&b, " %.0f |", t)
			} else if r.paced {
				b.WriteString(" — |")
			} else {
				b.WriteString(" failed |")
			}
		}
		fmt.Fprintf(&b, " %.1fx |\n", float64(r.p50)/float64(ref))
	}
	return b.String()
}

func machine() string {
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	rel := make([]byte, 0, 65)
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Join(strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1:], " ")
	}
	return fmt.Sprintf("%s, Linux %s, %d CPUs, MemTotal %s, %s", time.Now().UTC().Format("2006-01-02"), rel, goruntime.NumCPU(), mem, cgroupMode())
}

func cgroupMode() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "cgroup v2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		return "cgroup v1 hybrid"
	}
	return "cgroup v1"
}

const (
	poolParent = "sandboxd-bench-pool"
	execParent = "sandboxd-bench-exec"
)

// parkedSandboxes counts the pooled daemon's sandbox cgroups and their
// average memory charge (all of them parked once the runs are over).
func parkedSandboxes() (int, int64) {
	time.Sleep(time.Second) // let the pool refill
	var files []string
	for _, pattern := range []string{
		"/sys/fs/cgroup/memory/" + poolParent + "/sbx-*/memory.usage_in_bytes",
		"/sys/fs/cgroup/memory/*/*/" + poolParent + "/sbx-*/memory.usage_in_bytes",
		"/sys/fs/cgroup/" + poolParent + "/sbx-*/memory.current",
		"/sys/fs/cgroup/*/" + poolParent + "/sbx-*/memory.current",
	} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	var total int64
	for _, f := range files {
		data, _ := os.ReadFile(f)
		v, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		total += v
	}
	if len(files) == 0 {
		return 0, 0
	}
	return len(files), total / int64(len(files)) / 1024
}

// ociSubject runs a bundle with runc or crun (config from `runc spec`).
func ociSubject(runtimeName, work, rootfs string) subject {
	s := subject{name: runtimeName + " run"}
	if _, err := exec.LookPath(runtimeName); err != nil {
		s.skipped = "not installed"
		return s
	}
	bundle := filepath.Join(work, runtimeName+"-bundle")
	os.MkdirAll(bundle, 0o755)
	if out, err := exec.Command(runtimeName, "spec", "-b", bundle).CombinedOutput(); err != nil {
		s.skipped = "spec failed: " + firstLine(string(out))
		return s
	}
	cfgPath := filepath.Join(bundle, "config.json")
	data, _ := os.ReadFile(cfgPath)
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		s.skipped = "bad spec: " + err.Error()
		return s
	}
	cfg["root"] = map[string]any{"path": rootfs, "readonly": true}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	data, _ = json.Marshal(cfg)
	os.WriteFile(cfgPath, data, 0o644)
	var seq int
	var mu sync.Mutex
	s.run = func(ctx context.Context) (time.Duration, error) {
		mu.Lock()
		seq++
		id := fmt.Sprintf("bench-%s-%d-%d", runtimeName, os.Getpid(), seq)
		mu.Unlock()
		return command(ctx, runtimeName, "run", "-b", bundle, id)
	}
	return s
}

// dockerSubject needs a running Docker engine; `make bench` installs
// docker.io and starts dockerd when it can.
func dockerSubject(ctx context.Context, name, rootfs, image string, cmd ...string) subject {
	s := subject{name: name}
	if _, err := exec.LookPath("docker"); err != nil {
		s.skipped = "docker is not installed"
		return s
	}
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		s.skipped = "no Docker engine: " + firstLine(string(out))
		return s
	}
	imp := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("tar -C %q -c . | docker import - %s", rootfs, image))
	if out, err := imp.CombinedOutput(); err != nil {
		s.skipped = "docker import failed: " + firstLine(string(out))
		return s
	}
	s.run = func(ctx context.Context) (time.Duration, error) {
		return command(ctx, append([]string{"docker", "run", "--rm", "--network", "none", image}, cmd...)...)
	}
	return s
}

// pythonTable times print("hello") through sandboxd, docker and bare.
func pythonTable(ctx context.Context, bin, pyRootfs string, n int) string {
	if pyRootfs == "" {
		return "Python hello world: skipped (no Python rootfs given; `make bench` passes the lang/python recipe's).\n"
	}
	n = max(n/4, 5)
	var rows []measurement
	d, err := startDaemon(bin, pyRootfs, "bench", "", "--pool-size", "4")
	if err == nil {
		defer d.stop()
		rows = append(rows, measure(ctx, d.subject("sandboxd API (pool on)", []string{"python3", "-c", "print('hello')"}, "bench"), n, nil))
	} else {
		rows = append(rows, measurement{name: "sandboxd API", skipped: err.Error()})
	}
	rows = append(rows, measure(ctx, dockerSubject(ctx, "docker run --rm --network none", pyRootfs, "sandboxd-bench-python", "python3", "-c", "print('hello')"), n, nil))
	rows = append(rows, measure(ctx, subject{name: "bare python3 -c (host)", run: func(ctx context.Context) (time.Duration, error) {
		return command(ctx, "python3", "-c", "print('hello')")
	}}, n, nil))
	return "Python hello world (`print('hello')`):\n\n" + render(rows, nil)
}
