//go:build container

package container_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

func ptr[T any](v T) *T { return &v }

// checkStatuses: every status a run can end with, inside the container.
func checkStatuses(t *testing.T, c *client.Client) {
	for _, tt := range []struct {
		name   string
		req    api.ExecuteRequest
		status api.Status
		stdout string
	}{
		{"ok", api.ExecuteRequest{Cmd: []string{"/bin/sh", "-c", "cat; echo $G"}, Stdin: "in\n", Env: map[string]string{"G": "hi"}}, api.StatusOK, "in\nhi\n"},
		{"runtime error", api.ExecuteRequest{Cmd: []string{"/bin/sh", "-c", "exit 3"}}, api.StatusRuntimeError, ""},
		{"wall time limit", api.ExecuteRequest{Cmd: []string{"sleep", "5"}, Limits: &api.Limits{WallTimeMS: ptr(int64(300))}}, api.StatusWallTimeLimit, ""},
		{"cpu time limit", api.ExecuteRequest{Cmd: []string{"probe", "burn", "1"}, Limits: &api.Limits{CPUTimeMS: ptr(int64(200)), CPUs: ptr(1.0)}}, api.StatusTimeLimit, ""},
		{"memory limit", api.ExecuteRequest{Cmd: []string{"probe", "alloc", "100"}, Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20))}}, api.StatusMemoryLimit, ""},
		{"output limit", api.ExecuteRequest{Cmd: []string{"yes"}, Limits: &api.Limits{OutputBytes: ptr(int64(10))}}, api.StatusOutputLimit, "y\ny\ny\ny\ny\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Image = "busybox-test"
			resp, err := c.Execute(context.Background(), &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status {
				t.Fatalf("status %s, want %s: %+v", resp.Status, tt.status, resp.Run)
			}
			if tt.stdout != "" && resp.Run.Stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", resp.Run.Stdout, tt.stdout)
			}
		})
	}
}

// evidenceScript prints, one per line: the status lines of capabilities,
// no_new_privs and seccomp; the uid map; each namespace; the uid; whether
// / is writable; /proc/kcore's size; the pids in /proc; network devices.
const evidenceScript = `grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
cat /proc/self/uid_map
for n in mnt pid net ipc uts user; do echo "ns $n $(readlink /proc/self/ns/$n)"; done
echo "uid $(id -u)"
touch /x 2>/dev/null && echo "root writable" || echo "root read-only"
echo "kcore $(wc -c < /proc/kcore 2>/dev/null || echo denied)"
echo "pids $(ls /proc | grep '^[0-9]' | tr '\n' ' ')"
echo "netdevs $(tail -n +3 /proc/net/dev | wc -l)"`

// checkIsolation reads the evidence from inside a sandbox and compares
// its namespaces with the daemon's (the container's, read on the host).
func checkIsolation(t *testing.T, c *container) {
	resp, err := c.client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/sh", "-c", evidenceScript}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != api.StatusOK {
		t.Fatalf("status %s: %+v", resp.Status, resp.Run)
	}
	out := resp.Run.Stdout
	t.Logf("evidence:\n%s", out)
	for _, want := range []string{
		"CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2",
		"uid 65534", "root read-only", "netdevs 1",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("evidence lacks %q", want)
		}
	}
	// /proc/kcore is masked (empty, or not readable at all).
	if k := fieldsOf(out, "kcore"); len(k) != 1 || (k[0] != "0" && k[0] != "denied") {
		t.Errorf("/proc/kcore read %v", k)
	}
	// Its own PID namespace: the entry (1), sh and the pipeline's few.
	pids := fieldsOf(out, "pids")
	if len(pids) == 0 || pids[0] != "1" || len(pids) > 8 {
		t.Errorf("pids visible: %v, want 1 and a few more", pids)
	}
	// The uid map: 0 maps onto an unprivileged host range (never 0).
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			if start, _ := strconv.Atoi(f[1]); start < 65536 {
				t.Errorf("uid map %q maps onto privileged host ids", line)
			}
		}
	}
	for _, ns := range []string{"mnt", "pid", "net", "ipc", "uts", "user"} {
		theirs, err := os.Readlink("/proc/" + c.pid + "/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		if mine := fieldsOf(out, "ns "+ns); len(mine) != 1 || mine[0] == theirs {
			t.Errorf("%s namespace %v, the daemon's %s: want its own", ns, mine, theirs)
		}
	}
}

// fieldsOf returns the fields after prefix on the line that starts with it.
func fieldsOf(out, prefix string) []string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

// checkSession: a session sandbox over the image the entrypoint imported,
// its files API, an exec that reads what was written, its end.
func checkSession(t *testing.T, c *client.Client) {
	ctx := context.Background()
	sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteFile(ctx, sb.ID, "note.txt", strings.NewReader("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", "cat note.txt; echo more >> note.txt; ip link 2>/dev/null | grep -c LOOPBACK"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != api.StatusOK || resp.Run.Stdout != "kept\n1\n" {
		t.Fatalf("exec: %s %q", resp.Status, resp.Run.Stdout)
	}
	data, err := c.ReadFile(ctx, sb.ID, "note.txt")
	if err != nil || string(data) != "kept\nmore\n" {
		t.Fatalf("read back %q, %v", data, err)
	}
	checkDetachedAndArchive(t, c, sb.ID)
	if err := c.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sandbox(ctx, sb.ID); err == nil {
		t.Fatal("the session is still there after DELETE")
	}
}

// checkDetachedAndArchive: a detached exec killed through the API, and a
// tar unpacked into the session's /work (files owned by its ids).
func checkDetachedAndArchive(t *testing.T, c *client.Client, id string) {
	ctx := context.Background()
	ex, err := c.Detach(ctx, id, &api.SandboxExecRequest{Cmd: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KillExec(ctx, id, ex.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := c.DetachedExec(ctx, id, ex.ID, true); err != nil || got.State != "killed" {
		t.Fatalf("detached exec after kill: %+v, %v", got, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	script := []byte("echo tar\n")
	tw.WriteHeader(&tar.Header{Name: "d/x.sh", Mode: 0o755, Size: int64(len(script)), Typeflag: tar.TypeReg})
	tw.Write(script)
	tw.Close()
	if _, err := c.PutArchive(ctx, id, "/work", &buf); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Exec(ctx, id, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "d/x.sh"}})
	if err != nil || resp.Run.Stdout != "tar\n" {
		t.Fatalf("running the unpacked file: %+v, %v", resp, err)
	}
}

// stopAndCheckHost stops the container as `docker stop` does (SIGTERM:
// the daemon's graceful stop), removes it with its volume, and checks that
// the host keeps nothing of it: container, volume, cgroups, mounts,
// processes.
func stopAndCheckHost(t *testing.T, c *container) {
	begin := time.Now()
	mustDocker(t, "stop", "-t", "45", c.id)
	t.Logf("docker stop took %v", time.Since(begin).Round(time.Millisecond))
	if code := mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", c.id); code != "0" {
		logs, _ := dockerCmd("logs", c.id)
		t.Errorf("exit code %s, want 0 (graceful stop)\n%s", code, logs)
	}
	if logs, _ := dockerCmd("logs", c.id); !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("the daemon did not log its stop:\n%s", logs)
	}
	mustDocker(t, "rm", "-v", c.id)
	if out, _ := dockerCmd("ps", "-aq", "--no-trunc", "--filter", "id="+c.id); out != "" {
		t.Errorf("container still listed: %s", out)
	}
	for _, v := range c.volumes {
		if _, err := dockerCmd("volume", "inspect", v); err == nil {
			t.Errorf("volume %s left", v)
		}
	}
	for _, dir := range c.cgroups {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left", dir)
		}
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.merged, c.sockDir, c.id} {
		if strings.Contains(string(info), s) {
			t.Errorf("a mount of %s left", s)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		if cg, err := os.ReadFile(p); err == nil && strings.Contains(string(cg), c.id) {
			t.Errorf("a process of the container is alive: %s", filepath.Dir(p))
		}
	}
}
