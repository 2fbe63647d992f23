// Command exec-bench measures `sandboxd exec` of /bin/true: wall time and
// CPU time per run, beside a plain fork+exec of the same binary measured in
// the same run (compare ratios, not absolute figures, on a noisy machine).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type sample struct{ wall, cpu time.Duration }

func measure(n int, name string, args ...string) ([]sample, error) {
	out := make([]sample, 0, n)
	for i := 0; i < n; i++ {
		cmd := exec.Command(name, args...)
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		wall := time.Since(start)
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		out = append(out, sample{wall, cpu})
	}
	return out, nil
}

func pct(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func report(name string, samples []sample) time.Duration {
	walls, cpus := make([]time.Duration, len(samples)), make([]time.Duration, len(samples))
	for i, s := range samples {
		walls[i], cpus[i] = s.wall, s.cpu
	}
	fmt.Printf("%-28s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  cpu p50 %7.2f ms\n", name,
		ms(pct(walls, .5)), ms(pct(walls, .9)), ms(pct(walls, .99)), ms(pct(cpus, .5)))
	return pct(walls, .5)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	rootfs := flag.String("rootfs", ".cache/rootfs/busybox", "busybox rootfs")
	n := flag.Int("n", 200, "runs per subject")
	flag.Parse()
	if err := run(*bin, *rootfs, *n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// execParent is the bench's own cgroup parent, removed at the end: the
// default one (sandboxd-exec) is kept by sandboxd exec on purpose.
const execParent = "sandboxd-bench-exec"

func run(bin, rootfs string, n int) error {
	runDir, err := os.MkdirTemp("", "sandboxd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(runDir)
	defer testdaemon.RemoveCgroupParent(execParent)
	trueBin := filepath.Join(rootfs, "bin", "true")
	args := []string{"exec", "--run-dir", runDir, "--cgroup-parent", execParent, "--rootfs", rootfs, "--", "/bin/true"}
	// One warm-up run fills the seccomp cache and creates the parent cgroup.
	if _, err := measure(1, bin, args...); err != nil {
		return err
	}
	fmt.Printf("%d runs each of /bin/true (busybox), %s\n", n, time.Now().Format(time.RFC3339))
	base, err := measure(n, trueBin)
	if err != nil {
		return err
	}
	sbx, err := measure(n, bin, args...)
	if err != nil {
		return err
	}
	b := report("fork+exec (host)", base)
	s := report("sandboxd exec", sbx)
	fmt.Printf("sandboxd exec / fork+exec: %.1fx at the median\n", float64(s)/float64(b))
	return nil
}
