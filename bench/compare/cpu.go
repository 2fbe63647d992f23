package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/sandboxd/sandboxd/cgroup"
)

// cpuNote says, in the rendered text, what CPU/run counts.
const cpuNote = "CPU/run of the sandboxd API rows is the daemon and its sandboxes together, summed over all the sequential runs and divided by their number " +
	"(so what the daemon does between requests, refilling the pool and destroying used sandboxes, counts too). " +
	"On cgroup v1 and hybrid hosts the bench starts each daemon in a cpuacct cgroup of its own, under which its --cgroup-parent and so every sandbox's cgroup nest: " +
	"that cgroup's cpuacct.usage is the daemon's own CPU (its rusage without its children), the CPU of the processes it starts before they join a sandbox's cgroup, " +
	"and every sandbox's (the kernel charges a cgroup's ancestors as it goes, so sandboxes removed since still count). " +
	"On cgroup v2 it is the daemon's own user and system time (/proc/PID/stat) plus usage_usec of its --cgroup-parent's cpu.stat, " +
	"which leaves out what a process the daemon starts uses before it joins its sandbox's cgroup. " +
	"The other rows count the user and system time of the runner's own process tree (its reaped children), not that of a daemon it talks to (dockerd)."

// cpu reads the CPU the daemon and its sandboxes have used so far: see
// cpuNote. The reaped-children fields of the daemon's rusage would not
// do: they see a sandbox's CPU only once the daemon has waited for the
// sandbox's init, which for a parked sandbox is long after it was built.
func (d *daemon) cpu() time.Duration {
	if d.cpuDir != "" {
		data, err := os.ReadFile(filepath.Join(d.cpuDir, "cpuacct.usage"))
		if err != nil {
			return 0
		}
		ns, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return time.Duration(ns)
	}
	return d.ownCPU() + parentCPU(d.CgroupParent)
}

// accountIn prepares, on cgroup v1 and hybrid hosts, a cpuacct cgroup for
// the daemon whose directory is dir, and a script that starts bin in it.
// The daemon resolves a relative --cgroup-parent from its own cgroup in
// each hierarchy, so its sandboxes nest in that cgroup too. It returns
// what to launch and the cgroup: bin and "" on v2, where sandboxd moves
// itself into a leaf of its own cgroup and the bench's cgroup, holding
// the bench, could not delegate controllers to one for the daemon.
func accountIn(dir, bin string) (string, string, error) {
	if cgroup.DetectMode().Unified() {
		return bin, "", nil
	}
	own, err := cgroups.GetOwnCgroupPath("cpuacct")
	if err != nil {
		return "", "", fmt.Errorf("own cpuacct cgroup: %w", err)
	}
	cg := filepath.Join(own, "sandboxd-bench-cpu-"+filepath.Base(dir))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return "", "", err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", "", err
	}
	script := filepath.Join(dir, "sandboxd-in-cgroup")
	body := fmt.Sprintf("#!/bin/sh\necho $$ > '%s/cgroup.procs' || exit 1\nexec '%s' \"$@\"\n", cg, abs)
	return script, cg, os.WriteFile(script, []byte(body), 0o755)
}

// removeCgroup removes the cgroup accountIn made, with what the daemon
// left in it, deepest first; a stopped daemon leaves its cgroups empty.
func removeCgroup(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil {
			fmt.Fprintln(os.Stderr, "bench: removing cgroup:", err)
		}
	}
}

// ownCPU is the daemon's own user and system time, its threads included
// and its children left out.
func (d *daemon) ownCPU() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Pid()))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12} { // utime stime
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / 100)
}

// parentCPU reads usage_usec of a v2 daemon's cgroup parent (named as its
// --cgroup-parent), which keeps the CPU of every sandbox it has held;
// zero until the parent exists.
func parentCPU(parent string) time.Duration {
	dirs, err := cgroup.DirsOf(parent)
	if err != nil || len(dirs) == 0 {
		return 0
	}
	data, err := os.ReadFile(filepath.Join(dirs[0], "cpu.stat"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			usec, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(usec) * time.Microsecond
		}
	}
	return 0
}
