package attacks_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The attacks of hardening round 2 (issue 19): each broke a guarantee on
// the engine before its fix.

// hostIDBase is the first host uid that the user namespace of process
// procDir maps, or "" for a process in the host's own namespace.
func hostIDBase(procDir string) string {
	m, err := os.ReadFile(filepath.Join(procDir, "uid_map"))
	f := strings.Fields(string(m))
	if err != nil || len(f) != 3 || f[1] == "0" {
		return ""
	}
	return f[1]
}

// slotOwners maps each host id base in use to the sandboxes using it, for
// every sandbox process under the cgroup parents given.
func slotOwners(parents ...string) map[string]map[string]bool {
	owners := map[string]map[string]bool{}
	for _, parent := range parents {
		for _, p := range testdaemon.ProcessesOfSandboxes(parent) {
			dir, _, _ := strings.Cut(p, ":")
			cg, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
			base, id := hostIDBase(dir), testdaemon.SandboxID(string(cg))
			if base == "" || id == "" {
				continue
			}
			if owners[base] == nil {
				owners[base] = map[string]bool{}
			}
			owners[base][parent+"/"+id] = true
		}
	}
	return owners
}

// TestHostIDSlotsAreHostWide: two daemons with their own state and run
// dirs, and a `sandboxd exec` with a third run dir, all over the same id
// range, never map the same host ids at once. (The slot locks used to live
// under each run dir: all three took slot 0.)
func TestHostIDSlotsAreHostWide(t *testing.T) {
	a, b := testdaemon.Start(t, "--pool-size", "2"), testdaemon.Start(t, "--pool-size", "2")
	for _, d := range []*testdaemon.Daemon{a, b} {
		d.ImportDir("busybox", testRootfs)
		// The pool parks sandboxes of the images in use.
		if _, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
		testdaemon.WaitUntil(t, "parked sandboxes", 20*time.Second, func() bool {
			return len(testdaemon.ProcessesOfSandboxes(d.CgroupParent)) >= 1
		})
	}
	parent := "sandboxd-attacks-exec-" + randHex(4)
	defer testdaemon.RemoveCgroupParent(parent)
	cmd := exec.Command(sandboxdBin, "exec", "--run-dir", t.TempDir(), "--cgroup-parent", parent,
		"--rootfs", testRootfs, "--", "/bin/sleep", "3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	testdaemon.WaitUntil(t, "the exec's sandbox", 10*time.Second, func() bool {
		return len(slotOwners(parent)) == 1
	})
	owners := slotOwners(a.CgroupParent, b.CgroupParent, parent)
	sandboxes := 0
	for base, ids := range owners {
		sandboxes += len(ids)
		if len(ids) > 1 {
			t.Errorf("host ids from %s are mapped by %d sandboxes at once: %v", base, len(ids), ids)
		}
	}
	if sandboxes < 3 {
		t.Errorf("saw %d sandboxes, want the two daemons' parked ones and the exec's: %v", sandboxes, owners)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("sandboxd exec: %v", err)
	}
}
