// Package attacks_test is sandboxd's adversarial suite: hostile programs
// (busybox sh and the static C programs of testdata/attacks) run through a
// real `sandboxd serve`, each asserting that its attack failed and that the
// host, the daemon and other sandboxes are unchanged. Run it with
// `make test` (root, SANDBOXD_BIN and SANDBOXD_ROOTFS).
package attacks_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

var (
	sandboxdBin string
	testRootfs  string
)

func TestMain(m *testing.M) {
	sandboxdBin, testRootfs = testdaemon.RequireEnv("attack")
	if _, err := os.Stat(filepath.Join(testRootfs, "usr/local/bin/attack")); err != nil {
		fmt.Fprintln(os.Stderr, "the test rootfs has no attack program: rebuild it with `make test`")
		os.Exit(1)
	}
	code := m.Run()
	printTable()
	os.Exit(code)
}

// processState is the state letter of /proc/PID/stat (R, S, D, T, Z...).
func processState(procDir string) string {
	stat, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return ""
	}
	return string(stat[i+2])
}

// snapshot describes a tree: names, types, modes, owners and contents.
func snapshot(root string) map[string]string {
	snap := map[string]string{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			snap[p] = "error " + err.Error()
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		desc := info.Mode().String()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			desc += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" %d %x", len(data), bytes.Repeat(data[:min(len(data), 64)], 1))
		}
		snap[p] = desc
		return nil
	})
	return snap
}

func diffSnapshots(before, after map[string]string) []string {
	var out []string
	for p, d := range before {
		if after[p] != d {
			out = append(out, fmt.Sprintf("%s changed: %q -> %q", p, d, after[p]))
		}
	}
	for p, d := range after {
		if _, ok := before[p]; !ok {
			out = append(out, fmt.Sprintf("%s appeared: %q", p, d))
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// metric reads one unlabelled value from the daemon's GET /metrics.
func metric(d *testdaemon.Daemon, name string) (float64, bool) {
	resp, err := testdaemon.HTTPClient(d.Socket).Get("http://sandboxd/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// settled waits (up to 5 s) until what is left of the daemon's sandboxes
// is exactly its warm pool: no more sandboxes (cgroups, mounts, state and
// scratch directories) than sandboxd_warm_sandboxes, each with at most its
// parked entry process. It returns what is still wrong.
func settled(d *testdaemon.Daemon) []string {
	var bad []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		bad = bad[:0]
		left := d.Leftovers()
		procs := testdaemon.ProcessesOfSandboxes(d.CgroupParent)
		ids := testdaemon.SandboxIDs(left)
		warm, _ := metric(d, "sandboxd_warm_sandboxes")
		if len(ids) > int(warm) {
			bad = append(bad, fmt.Sprintf("%d sandboxes left, %d of them parked in the warm pool: %v", len(ids), int(warm), left))
		}
		perID := map[string][]string{}
		for _, p := range procs {
			dir, _, _ := strings.Cut(p, ":")
			cg, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
			id := testdaemon.SandboxID(string(cg))
			perID[id] = append(perID[id], dir)
			// A one-run sandbox's entry, or a reusable one's and its
			// prepared run's PID 1 (runtime/reuse.go).
			if !strings.HasSuffix(p, "sandbox-entry ") && !strings.HasSuffix(p, "sandbox-entry fresh ") {
				bad = append(bad, "a process other than a parked entry: "+p)
			}
		}
		for id, dirs := range perID {
			if len(dirs) > 2 || (len(dirs) == 2 && !preparedRun(dirs[0], dirs[1])) {
				bad = append(bad, fmt.Sprintf("%s has %d processes, more than its entry and a prepared run: %v", id, len(dirs), dirs))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return bad
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// preparedRun reports whether the two processes are a reusable sandbox's
// entry and the PID 1 it cloned for the next run: a child of the entry, in
// a PID namespace of its own.
func preparedRun(a, b string) bool {
	parent := func(dir string) string {
		status, _ := os.ReadFile(filepath.Join(dir, "status"))
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "PPid:"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	pidns := func(dir string) string { ns, _ := os.Readlink(filepath.Join(dir, "ns", "pid")); return ns }
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		entry, run := pair[0], pair[1]
		if parent(run) == filepath.Base(entry) && pidns(run) != "" && pidns(run) != pidns(entry) {
			return true
		}
	}
	return false
}
