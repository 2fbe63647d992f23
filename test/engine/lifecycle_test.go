package engine_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/sandboxd/sandboxd/runtime"
)

type footprint struct{ cgroups, mounts, files int }

func countDirs(root string, onlyDirs bool) int {
	n := 0
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && (!onlyDirs || d.IsDir()) {
			n++
		}
		return nil
	})
	return n
}

// measure counts this suite's cgroups (under its own parent, in every
// hierarchy), the mounts under its run dir, and the files in its run dir.
func measure(t *testing.T) footprint {
	t.Helper()
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fp := footprint{files: countDirs(runDir, false)}
	for _, l := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(l, runDir) {
			fp.mounts++
		}
	}
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroupParent)
	mem, _ := filepath.Glob("/sys/fs/cgroup/memory/*/*/" + cgroupParent)
	for _, p := range append(parents, mem...) {
		fp.cgroups += countDirs(p, true)
	}
	return fp
}

// After many runs of every outcome, the host has exactly the cgroups,
// mounts and state files it had before.
func TestNoLeaksAfterManyRuns(t *testing.T) {
	runs := 1000
	if testing.Short() {
		runs = 100
	}
	run(t, nil, "/bin/true") // creates the parent cgroup and the seccomp cache
	before := measure(t)
	scripts := []struct {
		flags []string
		cmd   []string
	}{
		{nil, []string{"/bin/true"}},
		{nil, []string{"/bin/sh", "-c", "exit 1"}},
		{[]string{"--output-limit", "10"}, []string{"yes"}},
		{[]string{"--wall-time", "50ms"}, []string{"sleep", "1"}},
		{[]string{"--memory", "16MiB"}, []string{"probe", "alloc", "64"}},
		{nil, []string{"probe", "daemon", "leak-check"}},
		{nil, []string{"nosuchcommand"}},
	}
	var wg sync.WaitGroup
	work := make(chan int)
	var mu sync.Mutex
	failures := 0
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s := scripts[i%len(scripts)]
				args := append([]string{"--json", "--rootfs", testRootfs}, s.flags...)
				o := sandboxd(t, nil, append(append(args, "--"), s.cmd...)...)
				if o.code == 125 && s.cmd[0] != "nosuchcommand" {
					mu.Lock()
					failures++
					mu.Unlock()
					t.Errorf("run %d (%v) failed: %s", i, s.cmd, o.stderr)
				}
			}
		}()
	}
	for i := 0; i < runs; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	after := measure(t)
	if before != after {
		t.Errorf("after %d runs: %+v, before: %+v", runs, after, before)
	}
	if procs := hostProcessesWith(t, "leak-check"); len(procs) != 0 {
		t.Errorf("processes left behind: %v", procs)
	}
}

// Bad input ends with exit 125 and one clear line, and leaves nothing.
func TestBadInput(t *testing.T) {
	run(t, nil, "/bin/true")
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing rootfs", []string{"--rootfs", "/nonexistent", "--", "true"}, "rootfs /nonexistent does not exist"},
		{"rootfs is a file", []string{"--rootfs", file, "--", "true"}, "is not a directory"},
		{"command not in PATH", []string{"--rootfs", testRootfs, "--", "nosuchcmd"}, "nosuchcmd: command not found"},
		{"command path missing", []string{"--rootfs", testRootfs, "--", "/bin/nosuch"}, "/bin/nosuch: no such file"},
		{"command is a directory", []string{"--rootfs", testRootfs, "--", "/etc"}, "/etc: permission denied"},
		{"no command", []string{"--rootfs", testRootfs}, "no command given"},
		{"no rootfs flag", []string{"--", "true"}, `Required flag "rootfs" not set`},
		{"unknown flag", []string{"--rootfs", testRootfs, "--bogus", "1", "--", "true"}, "flag provided but not defined"},
		{"zero memory", []string{"--rootfs", testRootfs, "--memory", "0", "--", "true"}, "--memory"},
		{"negative memory", []string{"--rootfs", testRootfs, "--memory", "-1", "--", "true"}, "--memory"},
		{"bad memory unit", []string{"--rootfs", testRootfs, "--memory", "12XB", "--", "true"}, "--memory"},
		{"tiny memory", []string{"--rootfs", testRootfs, "--memory", "1KiB", "--", "true"}, "below the 4 MiB minimum"},
		{"zero cpus", []string{"--rootfs", testRootfs, "--cpus", "0", "--", "true"}, "--cpus"},
		{"negative cpus", []string{"--rootfs", testRootfs, "--cpus", "-1", "--", "true"}, "--cpus"},
		{"zero pids", []string{"--rootfs", testRootfs, "--pids", "0", "--", "true"}, "--pids"},
		{"zero wall time", []string{"--rootfs", testRootfs, "--wall-time", "0s", "--", "true"}, "--wall-time"},
		{"negative cpu time", []string{"--rootfs", testRootfs, "--cpu-time", "-1s", "--", "true"}, "--cpu-time"},
		{"unitless duration", []string{"--rootfs", testRootfs, "--wall-time", "10", "--", "true"}, "--wall-time"},
		{"zero output limit", []string{"--rootfs", testRootfs, "--output-limit", "0", "--", "true"}, "--output-limit"},
		{"zero tmp size", []string{"--rootfs", testRootfs, "--tmp-size", "0", "--", "true"}, "--tmp-size"},
		{"zero nofile", []string{"--rootfs", testRootfs, "--nofile", "0", "--", "true"}, "--nofile"},
		{"root user", []string{"--rootfs", testRootfs, "--user", "0:0", "--", "true"}, "--user"},
		{"bad env", []string{"--rootfs", testRootfs, "--env", "NOEQUALS", "--", "true"}, "--env"},
		{"missing stdin file", []string{"--rootfs", testRootfs, "--stdin", "/nonexistent", "--", "true"}, "--stdin"},
		{"missing files dir", []string{"--rootfs", testRootfs, "--files", "/nonexistent", "--", "true"}, "--files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := measure(t)
			o := sandboxd(t, nil, tt.args...)
			if o.code != 125 {
				t.Errorf("exit %d, want 125", o.code)
			}
			if strings.Count(o.stderr, "\n") != 1 || !strings.Contains(o.stderr, tt.want) {
				t.Errorf("stderr %q, want one line containing %q", o.stderr, tt.want)
			}
			if strings.Contains(o.stderr, "goroutine") || o.stdout != "" {
				t.Errorf("stdout %q stderr %q: want nothing on stdout and no trace", o.stdout, o.stderr)
			}
			if after := measure(t); after != before {
				t.Errorf("left behind: before %+v, after %+v", before, after)
			}
		})
	}
}

// Sandboxes nest under the configured parent, inside sandboxd's own
// cgroup in every v1 hierarchy, with the requested limits; nothing remains.
func TestCgroupNesting(t *testing.T) {
	parent := fmt.Sprintf("sandboxd-test-%d/inner", time.Now().UnixNano())
	ownMem, err := cgroups.GetOwnCgroupPath("memory")
	if err != nil {
		t.Fatal(err)
	}
	ownPids, err := cgroups.GetOwnCgroupPath("pids")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, own := range []string{ownMem, ownPids} {
			_ = os.Remove(filepath.Join(own, parent))
			_ = os.Remove(filepath.Join(own, filepath.Dir(parent)))
		}
		// The other hierarchies got the same two levels.
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		for _, d := range dirs {
			_ = os.Remove(d)
			_ = os.Remove(filepath.Dir(d))
		}
	})
	cmd := exec.Command(sandboxdBin, "exec", "--run-dir", runDir, "--json", "--rootfs", testRootfs,
		"--cgroup-parent", parent, "--memory", "40MiB", "--pids", "20", "--", "sleep", "3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the program itself runs in the cgroup: the run's limits
	// are applied before it starts (during setup, libcontainer's own
	// processes are there with the build-time values still unwritten).
	var found []string
	running := func() bool {
		procs, _ := os.ReadFile(filepath.Join(found[0], "cgroup.procs"))
		for _, pid := range strings.Fields(string(procs)) {
			if comm, _ := os.ReadFile("/proc/" + pid + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		found, _ = filepath.Glob(filepath.Join(ownMem, parent, "sbx-*"))
		if len(found) == 1 && running() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(found) != 1 {
		cmd.Wait()
		t.Fatalf("no sandbox cgroup under %s", filepath.Join(ownMem, parent))
	}
	limit, _ := os.ReadFile(filepath.Join(found[0], "memory.limit_in_bytes"))
	memsw, _ := os.ReadFile(filepath.Join(found[0], "memory.memsw.limit_in_bytes"))
	procs, _ := os.ReadFile(filepath.Join(found[0], "cgroup.procs"))
	pidsDir := filepath.Join(ownPids, parent, filepath.Base(found[0]))
	pidsMax, _ := os.ReadFile(filepath.Join(pidsDir, "pids.max"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sandboxd: %v", err)
	}
	if got := strings.TrimSpace(string(limit)); got != strconv.Itoa(40<<20) {
		t.Errorf("memory.limit_in_bytes %s, want %d", got, 40<<20)
	}
	if len(memsw) > 0 && strings.TrimSpace(string(memsw)) != strconv.Itoa(40<<20) {
		t.Errorf("memory.memsw.limit_in_bytes %s: swap is not off", memsw)
	}
	if strings.TrimSpace(string(procs)) == "" {
		t.Error("the sandbox's processes are not in its cgroup")
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(pidsMax))); n < 20 || n > 30 {
		t.Errorf("pids.max %q, want 20 plus the entry's own tasks", pidsMax)
	}
	if _, err := os.Stat(found[0]); !os.IsNotExist(err) {
		t.Errorf("sandbox cgroup %s still exists after the run", found[0])
	}
	r := run(t, []string{"--cgroup-parent", parent}, "cat", "/proc/self/cgroup")
	wantStatus(t, r, runtime.StatusOK)
	for _, l := range lines(r.Stdout) {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("inside the cgroup namespace, /proc/self/cgroup shows %q, want the root", l)
		}
	}
}

// A `sandboxd exec` killed with SIGKILL leaves its sandbox's state behind
// (its sandbox itself dies with it); the next exec removes it, while other
// execs' live sandboxes are left alone.
func TestKilledExecIsReapedByTheNext(t *testing.T) {
	run(t, nil, "/bin/true")
	before := measure(t)
	live := exec.Command(sandboxdBin, "exec", "--run-dir", runDir, "--cgroup-parent", cgroupParent,
		"--rootfs", testRootfs, "--", "sleep", "3")
	victim := exec.Command(sandboxdBin, "exec", "--run-dir", runDir, "--cgroup-parent", cgroupParent,
		"--rootfs", testRootfs, "--", "sleep", "30")
	for _, c := range []*exec.Cmd{live, victim} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	sandboxes := func() int {
		entries, _ := os.ReadDir(filepath.Join(runDir, "containers"))
		return len(entries)
	}
	waitFor("both sandboxes", func() bool { return sandboxes() == 2 })
	time.Sleep(300 * time.Millisecond) // both programs running
	_ = victim.Process.Kill()          // ours, by pid
	_ = victim.Wait()
	if measure(t) == before {
		t.Fatal("the killed exec left nothing: the test proves nothing")
	}
	run(t, nil, "/bin/true") // reaps the dead one
	if n := sandboxes(); n != 1 {
		t.Errorf("%d sandboxes after the reap, want only the live one", n)
	}
	if err := live.Wait(); err != nil {
		t.Errorf("the live exec was disturbed: %v", err)
	}
	if after := measure(t); after != before {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}
