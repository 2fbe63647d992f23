package attacks_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestCrashDuring20InFlightRuns SIGKILLs the daemon while 20 sandboxes of
// assorted kinds run (sleepers, daemonizers, CPU burners, memory holders,
// /work and /tmp writers, slow output), restarts it, and wants nothing of
// those runs left (processes, cgroups, mounts, state and scratch
// directories) and 20 new requests to work.
func TestCrashDuring20InFlightRuns(t *testing.T) {
	d := testdaemon.Start(t, "--concurrency", "24")
	d.ImportDir("busybox", testRootfs)
	marker := "crash20-" + randHex(4)
	kinds := []string{
		`sleep 60; :`,
		`probe daemon $0; sleep 60; :`,
		`probe burn 2; :`,
		`probe alloc 20 && sleep 60; :`,
		`probe write /work/big 8000000 && probe write /tmp/big 8000000 && sleep 60; :`,
		`while :; do echo tick; sleep 0.05; done`,
		`sh -c 'sleep 60; :' $0 & sh -c 'sleep 60; :' $0 & wait`,
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// These never answer: the daemon dies under them.
			_, _ = d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox",
				Cmd:    []string{"/bin/sh", "-c", kinds[i%len(kinds)], fmt.Sprintf("%s-%02d", marker, i)},
				Limits: &api.Limits{WallTimeMS: ptr(int64(50000)), CPUs: ptr(0.1)}})
		}(i)
	}
	testdaemon.WaitUntil(t, "20 runs in flight", 30*time.Second, func() bool {
		for i := 0; i < 20; i++ {
			if len(testdaemon.ProcessesWith(fmt.Sprintf("%s-%02d", marker, i))) == 0 {
				return false
			}
		}
		return true
	})
	before := d.Leftovers()
	inFlight := testdaemon.SandboxIDs(before)
	t.Logf("in flight: %d sandboxes (with any parked ones), %d processes, %d cgroups/mounts/dirs", len(inFlight), len(testdaemon.ProcessesOfSandboxes(d.CgroupParent)), len(before))
	d.Kill()
	wg.Wait()
	// Orphaned sandboxes end by themselves once their daemon is gone, all
	// but one caught between libcontainer creating its init and starting
	// it: that init is blocked opening its exec fifo, before any user code,
	// and waits for the next daemon, whose recovery removes it.
	var unstarted []string
	testdaemon.WaitUntil(t, "orphaned sandboxes to end", 10*time.Second, func() bool {
		unstarted = nil
		for _, p := range testdaemon.ProcessesOfSandboxes(d.CgroupParent) {
			if !strings.HasSuffix(p, " init ") {
				return false
			}
			unstarted = append(unstarted, p)
		}
		return len(testdaemon.ProcessesWith(marker)) == 0
	})
	t.Logf("after the kill, before the restart: %d leftovers to recover, %d inits never started", len(d.Leftovers()), len(unstarted))
	d.MustRestart()
	// Recovery SIGKILLs those inits before the new instance serves; each is
	// then a zombie until the host's init reaps it, so give that a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var alive []string
		for _, p := range unstarted {
			if dir, _, _ := strings.Cut(p, ":"); processState(dir) != "" && processState(dir) != "Z" {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("5 s after the restart, inits of the killed instance are still there: %v", alive)
			break
		}
	}
	// Nothing of the killed instance's sandboxes (runs or parked) remains;
	// the new instance may be parking fresh ones.
	for _, l := range append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...) {
		if id := testdaemon.SandboxID(l); inFlight[id] {
			t.Errorf("after restart, left behind: %s", l)
		}
	}
	if bad := settled(d); len(bad) != 0 {
		t.Errorf("after restart: %v\n%s", bad, d.Log())
	}
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			want := fmt.Sprintf("new %d\n", i)
			r, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", "new", fmt.Sprint(i)}})
			switch {
			case err != nil:
				errs <- err
			case r.Status != runtime.StatusOK || r.Run.Stdout != want:
				errs <- fmt.Errorf("run %d after restart: %s %q", i, r.Status, r.Run.Stdout)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if bad := settled(d); len(bad) != 0 {
		t.Errorf("after the new runs: %v", bad)
	}
}
