package daemon_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

func warmSandboxes(t *testing.T, d *testdaemon.Daemon) int {
	t.Helper()
	resp, err := testdaemon.HTTPClient(d.Socket).Get("http://sandboxd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "sandboxd_warm_sandboxes "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	t.Fatal("no sandboxd_warm_sandboxes metric")
	return 0
}

// Every run in a parked sandbox finds a fresh /work and has its own id (a
// reusable sandbox serves many runs), gets the request's limits when they
// are taken, and account only for the program.
func TestWarmPool(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "4")
	d.ImportDir("busybox", testRootfs)
	ctx := context.Background()
	run := func(req api.ExecuteRequest) *api.ExecuteResponse {
		t.Helper()
		req.Image = "busybox"
		resp, err := d.Client.Execute(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	run(api.ExecuteRequest{Cmd: []string{"true"}})
	testdaemon.WaitUntil(t, "the pool to fill", 10*time.Second, func() bool { return warmSandboxes(t, d) >= 1 })

	// A mark left in /work never shows up again; every run has its own id.
	ids := map[string]bool{}
	for i := 0; i < 6; i++ {
		resp := run(api.ExecuteRequest{Cmd: []string{"/bin/sh", "-c", "ls /work; touch /work/used-before"}})
		if resp.Run.Stdout != "" {
			t.Fatalf("run %d found a used sandbox: /work holds %q", i, resp.Run.Stdout)
		}
		if ids[resp.ID] {
			t.Fatalf("run id %s given twice", resp.ID)
		}
		ids[resp.ID] = true
	}
	// The request's limits are in force although the sandbox was built
	// with the maximums.
	mem := run(api.ExecuteRequest{Cmd: []string{"probe", "alloc", "100"}, Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20))}})
	if mem.Status != runtime.StatusMemoryLimit {
		t.Errorf("memory limit in a parked sandbox: %s", mem.Status)
	}
	pids := run(api.ExecuteRequest{Cmd: []string{"probe", "forkbomb"}, Limits: &api.Limits{Pids: ptr(int64(16))}})
	var forks int
	if _, err := fmt.Sscanf(pids.Run.Stdout, "fork failed after %d", &forks); err != nil || forks >= 16 {
		t.Errorf("pids limit in a parked sandbox: %q", pids.Run.Stdout)
	}
	out := run(api.ExecuteRequest{Cmd: []string{"/bin/sh", "-c", "ulimit -n; ulimit -f"}, Limits: &api.Limits{FileSizeBytes: ptr(int64(1 << 20))}})
	if out.Run.Stdout != "256\n2048\n" {
		t.Errorf("rlimits in a parked sandbox: %q, want nofile 256 and 1 MiB (2048 blocks)", out.Run.Stdout)
	}
	// Accounting starts with the program, not with the parked setup.
	peak := run(api.ExecuteRequest{Cmd: []string{"probe", "alloc", "50"}})
	if p := peak.Run.MemoryPeakBytes; p < 50<<20 || p > 58<<20 {
		t.Errorf("memory peak %d in a parked sandbox, want 50..58 MiB", p)
	}
	idle := run(api.ExecuteRequest{Cmd: []string{"true"}})
	if idle.Run.CPUTimeMS > 20 || idle.Run.MemoryPeakBytes > 8<<20 {
		t.Errorf("/bin/true in a parked sandbox: cpu %.1f ms, peak %d: setup was counted", idle.Run.CPUTimeMS, idle.Run.MemoryPeakBytes)
	}
}

// With the pool off, nothing is built ahead.
func TestPoolOff(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "0")
	d.ImportDir("busybox", testRootfs)
	for i := 0; i < 3; i++ {
		if _, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := warmSandboxes(t, d); n != 0 {
		t.Errorf("%d parked sandboxes with the pool off", n)
	}
}

// parkedRoots lists the root directories (overlay mount points) of the
// daemon's parked sandboxes, read from the host's mount table. (The
// overlay names its layers by descriptor, so the image is not in it.)
func parkedRoots(d *testdaemon.Daemon) []string {
	var out []string
	for _, l := range d.Leftovers() {
		f := strings.Fields(strings.TrimPrefix(l, "mount: "))
		if strings.HasPrefix(l, "mount: ") && strings.Contains(l, " - overlay ") && len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// The pool's budget goes where requests go: a parked sandbox of an image
// that has gone quiet is given up for the image now in use, rather than
// held until pool_idle while the busy image builds every sandbox on
// request (a daemon with a dozen languages and a pool of 8).
func TestPoolBudgetFollowsTheImageInUse(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "1")
	a := d.ImportDir("busybox", testRootfs)
	// The same tree with other timestamps: another image, another root.
	b, err := d.Client.Import(context.Background(), testdaemon.Tar(t, testRootfs, func(h *tar.Header) bool {
		h.ModTime = time.Unix(1e9, 0)
		return true
	}), "busybox-b")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Fatal("both imports gave the same image")
	}
	// The two images differ in their files' times: a root shows which
	// image it is over by the time of its /bin.
	parkedOf := func(img *api.Image) func() bool {
		_, hex, _ := strings.Cut(img.ID, ":")
		want, err := os.Stat(filepath.Join(d.StateDir, "images", "images", hex, "rootfs", "bin"))
		if err != nil {
			t.Fatal(err)
		}
		return func() bool {
			p := parkedRoots(d)
			if len(p) != 1 {
				return false
			}
			got, err := os.Stat(filepath.Join(p[0], "bin"))
			return err == nil && got.ModTime().Equal(want.ModTime())
		}
	}
	run := func(img *api.Image) {
		t.Helper()
		r, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: img.Name, Cmd: []string{"true"}})
		if err != nil || r.Status != runtime.StatusOK {
			t.Fatalf("run in %s: %v %+v", img.Name, err, r)
		}
	}
	run(a)
	testdaemon.WaitUntil(t, "a sandbox of the first image to be parked", 10*time.Second, parkedOf(a))
	run(b)
	testdaemon.WaitUntil(t, "the parked sandbox to move to the second image", 10*time.Second, parkedOf(b))
	if ids := testdaemon.SandboxIDs(d.Leftovers()); len(ids) != 1 {
		t.Errorf("%d sandboxes held with a pool of 1: %v", len(ids), d.Leftovers())
	}
}

// TestReusedSandboxTakesEachRunsLimits: a sandbox that serves run after
// run enforces each run's own limits, whether higher or lower than the
// last's (the cgroup's limits are written only when they change).
func TestReusedSandboxTakesEachRunsLimits(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "1", "--concurrency", "1")
	d.ImportDir("busybox", testRootfs)
	ctx := context.Background()
	type step struct {
		memory int64
		want   api.Status
	}
	// In pairs, so that whether the pool alternates two sandboxes or
	// hands out one, each sees its limits change.
	var steps []step
	for _, m := range []int64{128, 32, 96, 32, 128, 32} {
		want := runtime.StatusOK
		if m == 32 {
			want = runtime.StatusMemoryLimit
		}
		steps = append(steps, step{m << 20, want}, step{m << 20, want})
	}
	// Runs whose limits differ from the last run of their sandbox.
	var changed int
	last := map[string]int64{}
	for i, s := range steps {
		resp, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"probe", "alloc", "48"},
			Limits: &api.Limits{MemoryBytes: ptr(s.memory)}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != s.want {
			t.Errorf("step %d: 48 MB under %d MiB: %s, want %s", i, s.memory>>20, resp.Status, s.want)
		}
		sandbox, _, _ := strings.Cut(strings.TrimPrefix(resp.ID, "sbx-"), "-")
		if m, ok := last[sandbox]; ok && m != s.memory {
			changed++
		}
		last[sandbox] = s.memory
	}
	if changed < 2 {
		t.Errorf("only %d runs took a reused sandbox with other limits than its last run's: too few to tell", changed)
	}
}

// A parked reusable sandbox's entry holds CAP_SYS_ADMIN, CAP_NET_ADMIN and
// CAP_SETPCAP (in its user namespace) and no other: CAP_SYS_RESOURCE,
// which it gets to write its user namespace's limits, is gone from every
// set once it has, and its prepared run's PID 1 holds none.
func TestParkedEntryHoldsOnlyItsThreeCapabilities(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "2")
	d.ImportDir("busybox", testRootfs)
	if resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}}); err != nil || resp.Status != runtime.StatusOK {
		t.Fatalf("%v %+v", err, resp)
	}
	const entryCaps = 1<<21 | 1<<12 | 1<<8 // SYS_ADMIN, NET_ADMIN, SETPCAP
	// An entry not yet through its first prepare (the pool may be
	// building one) still holds CAP_SYS_RESOURCE: it must lose it soon.
	var seen []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		entries, runs := 0, 0
		seen = seen[:0]
		for _, p := range testdaemon.ProcessesOfSandboxes(d.CgroupParent) {
			if !strings.HasSuffix(p, "sandbox-entry fresh ") {
				continue
			}
			dir, _, _ := strings.Cut(p, ":")
			switch caps := capSets(t, dir); caps {
			case [4]uint64{entryCaps, entryCaps, entryCaps, entryCaps}:
				entries++
			case [4]uint64{}:
				runs++
			default:
				seen = append(seen, fmt.Sprintf("%s: CapPrm, CapEff, CapBnd, CapAmb %x", p, caps))
			}
		}
		if entries > 0 && runs > 0 && len(seen) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries with their three capabilities, %d prepared runs with none; others: %v", entries, runs, seen)
		}
	}
}

// capSets reads a process's permitted, effective, bounding and ambient
// capability sets.
func capSets(t *testing.T, procDir string) [4]uint64 {
	data, err := os.ReadFile(filepath.Join(procDir, "status"))
	if err != nil {
		return [4]uint64{} // gone meanwhile: a run's PID 1
	}
	var sets [4]uint64
	for i, name := range []string{"CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"} {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, name); ok {
				if sets[i], err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
					t.Fatalf("%s %s: %v", procDir, l, err)
				}
			}
		}
	}
	return sets
}
