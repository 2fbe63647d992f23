package daemon_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestCLISandboxNetworkAndDetached: `sandbox create --allow`, `sandbox
// network --lock`, `sandbox exec -d`, `sandbox execs` and `sandbox kill`
// drive the API as their names say.
func TestCLISandboxNetworkAndDetached(t *testing.T) {
	e := startEgress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pkgs := "pkgs.test:" + e.port
	cli := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, sandboxdBin, append(args[:1:1], append([]string{args[1], "--socket", e.d.Socket}, args[2:]...)...)...).CombinedOutput()
		return string(out), err
	}
	out, err := cli("sandbox", "create", "--image", "busybox", "--allow", pkgs)
	if err != nil {
		t.Fatalf("create: %v %q", err, out)
	}
	id := strings.TrimSpace(out)
	get := "wget -qO- http://" + pkgs + "/cli 2>&1; true"
	if out, err := cli("sandbox", "exec", id, "--", "sh", "-c", get); err != nil || out != "hello from /cli" {
		t.Errorf("a download before the lock: %v %q", err, out)
	}
	if out, err := cli("sandbox", "network", "--lock", id); err != nil || out != "allow: []\n" {
		t.Errorf("network --lock: %v %q", err, out)
	}
	if out, _ := cli("sandbox", "exec", id, "--", "sh", "-c", get); !strings.Contains(out, "403") {
		t.Errorf("a download after the lock: %q", out)
	}
	if out, err := cli("sandbox", "network", id); err == nil || !strings.Contains(out, "--allow HOST... | --lock") {
		t.Errorf("network without --allow or --lock: %v %q", err, out)
	}
	out, err = cli("sandbox", "exec", "-d", id, "--", "sleep", "60")
	execID := strings.TrimSpace(out)
	if err != nil || !strings.HasPrefix(execID, "ex-") {
		t.Fatalf("exec -d: %v %q", err, out)
	}
	if out, err := cli("sandbox", "execs", id); err != nil || !strings.Contains(out, execID+"  running") {
		t.Errorf("execs: %v %q", err, out)
	}
	if out, err := cli("sandbox", "kill", id, execID); err != nil {
		t.Errorf("kill: %v %q", err, out)
	}
	testdaemon.WaitUntil(t, "the killed exec listed as killed", 10*time.Second, func() bool {
		out, _ := cli("sandbox", "execs", id)
		return strings.Contains(out, execID+"  killed")
	})
	out, _ = cli("sandbox", "exec", "-d", id, "--", "sh", "-c", "exit 3")
	exited := strings.TrimSpace(out)
	ends := map[string]audit.Record{}
	testdaemon.WaitUntil(t, "an audit line at the end of each detached exec", 10*time.Second, func() bool {
		data, _ := os.ReadFile(e.auditLog)
		for _, line := range strings.Split(string(data), "\n") {
			var r audit.Record
			if json.Unmarshal([]byte(line), &r) == nil && r.Action == "sandbox.exec_end" {
				ends[r.ExecID] = r
			}
		}
		return len(ends) == 2
	})
	if r := ends[execID]; r.Status != "killed" || r.SandboxID != id || r.User == "" {
		t.Errorf("the killed exec's end: %+v", r)
	}
	if r := ends[exited]; r.Status != "runtime_error" || r.ExitCode == nil || *r.ExitCode != 3 {
		t.Errorf("the exited exec's end: %+v", r)
	}
}
