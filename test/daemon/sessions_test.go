package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Session sandboxes (/v1/sandboxes) through a real daemon: each exec is a
// fresh sandbox over the session's /work and /tmp.

// sessionDaemon starts a daemon without a warm pool, so that whatever it
// leaves is its sessions' own, and imports busybox.
func sessionDaemon(t *testing.T, args ...string) *testdaemon.Daemon {
	t.Helper()
	d := testdaemon.Start(t, append([]string{"--pool-size", "0"}, args...)...)
	d.ImportDir("busybox", testRootfs)
	return d
}

// newSandbox creates a sandbox as c, of busybox unless req says otherwise.
func newSandbox(t *testing.T, c *client.Client, req api.CreateSandboxRequest) *api.Sandbox {
	t.Helper()
	if req.Image == "" && req.Language == "" {
		req.Image = "busybox"
	}
	sb, err := c.CreateSandbox(context.Background(), &req)
	if err != nil {
		t.Fatalf("creating a sandbox: %v", err)
	}
	return sb
}

// run execs req in the sandbox id and returns its result.
func run(t *testing.T, c *client.Client, id string, req api.SandboxExecRequest) *api.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.Exec(ctx, id, &req)
	if err != nil {
		t.Fatalf("exec %q: %v", req.Cmd, err)
	}
	if resp.ID != id || resp.Run == nil || resp.Status != resp.Run.Status {
		t.Fatalf("exec %q: malformed answer %+v", req.Cmd, resp)
	}
	return resp.Run
}

func shell(script string) []string { return []string{"/bin/sh", "-c", script} }

// outcome is the answer of an exec sent by execAsync, and when it came.
type outcome struct {
	resp *api.ExecuteResponse
	err  error
	at   time.Time
}

// execAsync sends an exec from another goroutine.
func execAsync(c *client.Client, id string, req api.SandboxExecRequest) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		resp, err := c.Exec(context.Background(), id, &req)
		ch <- outcome{resp, err, time.Now()}
	}()
	return ch
}

// apiErr is an API error's HTTP status and code (0 and the text for
// another error; 0 and "" for none).
func apiErr(err error) (int, string) {
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		return ce.HTTPStatus, ce.Code
	case err != nil:
		return 0, err.Error()
	}
	return 0, ""
}

// tarOf is an uncompressed tar of regular files.
func tarOf(files ...string) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range files {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(name))})
		_, _ = tw.Write([]byte(name))
	}
	_ = tw.Close()
	return &buf
}

// everyCall makes each call of the sandbox API on id as c, DELETE last,
// and returns their errors by name.
func everyCall(c *client.Client, id string) map[string]error {
	ctx := context.Background()
	errs := map[string]error{}
	_, errs["GET"] = c.Sandbox(ctx, id)
	_, errs["exec"] = c.Exec(ctx, id, &api.SandboxExecRequest{Cmd: []string{"true"}})
	_, errs["files GET"] = c.ReadFile(ctx, id, "f.txt")
	_, errs["files GET dir"] = c.ListFiles(ctx, id, "", true)
	_, errs["files PUT"] = c.WriteFile(ctx, id, "intruder.txt", strings.NewReader("x"), 0)
	errs["files DELETE"] = c.RemoveFile(ctx, id, "f.txt", false)
	var r io.ReadCloser
	if r, errs["archive GET"] = c.GetArchive(ctx, id, "/work"); r != nil {
		r.Close()
	}
	_, errs["archive PUT"] = c.PutArchive(ctx, id, "/work", tarOf("intruder2.txt"))
	_, errs["detach"] = c.Detach(ctx, id, &api.SandboxExecRequest{Cmd: []string{"true"}})
	_, errs["execs GET"] = c.Execs(ctx, id)
	_, errs["exec GET"] = c.DetachedExec(ctx, id, "ex-0", true)
	errs["exec DELETE"] = c.KillExec(ctx, id, "ex-0")
	errs["DELETE"] = c.DeleteSandbox(ctx, id)
	return errs
}

// wantUnknown fails t for each call that did not answer 404 unknown_sandbox.
func wantUnknown(t *testing.T, errs map[string]error) {
	t.Helper()
	for name, err := range errs {
		if st, code := apiErr(err); st != http.StatusNotFound || code != api.CodeUnknownSandbox {
			t.Errorf("%s: %d %s, want 404 unknown_sandbox", name, st, code)
		}
	}
}

// Create, list, write, exec, read back, usage, delete: then the sandbox is
// gone from every endpoint and from the host.
func TestSessionLifecycle(t *testing.T) {
	d := sessionDaemon(t)
	ctx, e := context.Background(), unixEndpoint(d.Socket)
	start := time.Now()
	r := e.call(t, "POST", "/v1/sandboxes", "", `{"image":"busybox","ttl_ms":60000,"labels":{"team":"a"}}`)
	var sb api.Sandbox
	if err := json.Unmarshal(r.body, &sb); r.status != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if !strings.HasPrefix(sb.ID, "sb-") || sb.Image != "busybox:latest" || sb.State != api.SandboxRunning || sb.Labels["team"] != "a" ||
		sb.CreatedAt.Before(start.Add(-time.Second)) || sb.CreatedAt.After(time.Now()) || sb.ExpiresAt.Sub(sb.CreatedAt) != time.Minute ||
		sb.Limits.MemoryBytes == nil || *sb.Limits.MemoryBytes != 128<<20 || sb.Limits.WorkBytes == nil || sb.Usage != nil {
		t.Fatalf("created: %s", r.body)
	}
	if list, err := d.Client.Sandboxes(ctx); err != nil || len(list) != 1 || list[0].ID != sb.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	fe, err := d.Client.WriteFile(ctx, sb.ID, "in.txt", strings.NewReader("hello\n"), 0o600)
	if err != nil || fe.Path != "/work/in.txt" || fe.Type != "file" || fe.Size != 6 || fe.Mode != "0600" {
		t.Fatalf("PUT: %+v %v", fe, err)
	}
	if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"cat", "in.txt"}}); res.Status != api.StatusOK || res.Stdout != "hello\n" {
		t.Fatalf("cat: %+v", res)
	}
	if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`echo from exec > out.txt`)}); res.Status != api.StatusOK {
		t.Fatalf("write: %+v", res)
	}
	if got, err := d.Client.ReadFile(ctx, sb.ID, "out.txt"); err != nil || string(got) != "from exec\n" {
		t.Fatalf("GET out.txt: %q %v", got, err)
	}
	got, err := d.Client.Sandbox(ctx, sb.ID)
	if err != nil || got.Usage == nil {
		t.Fatalf("GET: %+v %v", got, err)
	}
	if u := got.Usage; u.Execs != 2 || u.CPUTimeMS <= 0 || u.WorkBytes <= 0 || u.ExecsActive != 0 || u.LastExecAt == nil ||
		u.LastExecAt.Before(sb.CreatedAt) || u.LastExecAt.After(time.Now()) {
		t.Fatalf("usage: %+v", *u)
	}
	if len(d.Leftovers()) == 0 {
		t.Fatal("a live sandbox shows nothing on the host: the leftovers check below would prove nothing")
	}
	if r := e.call(t, "DELETE", "/v1/sandboxes/"+sb.ID, "", ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	// Gone at once: DELETE returns once everything of the sandbox is.
	if l := append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...); len(l) != 0 {
		t.Errorf("after DELETE, left on the host: %v", l)
	}
	wantUnknown(t, everyCall(d.Client, sb.ID))
	if list, err := d.Client.Sandboxes(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after DELETE: %+v %v", list, err)
	}
	wantUnknown(t, everyCall(d.Client, "sb-000000000000000000000000"))
}

// Files and directories persist from exec to exec, and from the create's
// "files"; cwd and env work per exec; /tmp persists too.
func TestSessionFilesPersistAcrossExecs(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{
		Files: []api.File{{Name: "main.sh", Content: "echo main $A\n"}, {Name: "pkg/mod.py", Content: "X = 1\n"},
			{Name: "pkg/data.bin", Content: "AP8=", Encoding: "base64"}},
		Env: map[string]string{"A": "from-create", "B": "create"}})
	steps := []struct {
		name   string
		req    api.SandboxExecRequest
		stdout string
	}{
		{"initial files", api.SandboxExecRequest{Cmd: shell(`sh main.sh; cat pkg/mod.py; od -An -tx1 pkg/data.bin | tr -d ' \n'; echo; stat -c '%U %a' pkg pkg/mod.py`)},
			"main from-create\nX = 1\n00ff\nnobody 755\nnobody 644\n"},
		{"make a tree", api.SandboxExecRequest{Cmd: shell(`mkdir -p sub/deep && echo one > sub/deep/f && echo top > t.txt && rm pkg/data.bin && echo tmp > /tmp/x && echo done`)}, "done\n"},
		{"the tree persists", api.SandboxExecRequest{Cmd: shell(`cat sub/deep/f t.txt /tmp/x; ls pkg`)}, "one\ntop\ntmp\nmod.py\n"},
		{"relative cwd", api.SandboxExecRequest{Cwd: "sub", Cmd: shell(`pwd; cat deep/f`)}, "/work/sub\none\n"},
		{"absolute cwd", api.SandboxExecRequest{Cwd: "/work/sub/deep", Cmd: []string{"pwd"}}, "/work/sub/deep\n"},
		{"exec env over the create's", api.SandboxExecRequest{Env: map[string]string{"B": "exec", "C": "c"}, Cmd: shell(`echo $A $B $C`)}, "from-create exec c\n"},
		{"exec env is the exec's only", api.SandboxExecRequest{Cmd: shell(`echo $A $B $C.`)}, "from-create create .\n"},
		{"stdin", api.SandboxExecRequest{Stdin: "in\n", Cmd: []string{"cat"}}, "in\n"},
	}
	for _, s := range steps {
		res := run(t, d.Client, sb.ID, s.req)
		if res.Status != api.StatusOK || res.Stdout != s.stdout {
			t.Fatalf("%s: %s stdout %q (want %q) stderr %q", s.name, res.Status, res.Stdout, s.stdout, res.Stderr)
		}
	}
	ctx := context.Background()
	if got, err := d.Client.ReadFile(ctx, sb.ID, "pkg/mod.py"); err != nil || string(got) != "X = 1\n" {
		t.Errorf("GET pkg/mod.py: %q %v", got, err)
	}
	if got, err := d.Client.ReadFile(ctx, sb.ID, "/tmp/x"); err != nil || string(got) != "tmp\n" {
		t.Errorf("GET /tmp/x: %q %v", got, err)
	}
	list, err := d.Client.ListFiles(ctx, sb.ID, "", true)
	var paths []string
	for _, e := range list.Entries {
		paths = append(paths, e.Path+":"+e.Type)
	}
	want := "/work/main.sh:file /work/pkg:dir /work/pkg/mod.py:file /work/sub:dir /work/sub/deep:dir /work/sub/deep/f:file /work/t.txt:file"
	if err != nil || strings.Join(paths, " ") != want {
		t.Errorf("recursive list: %v %v, want %s", paths, err, want)
	}
}

// A process an exec leaves behind, however it detaches, ends with the
// exec: the next exec is a fresh sandbox.
func TestSessionExecLeavesNoProcesses(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	for _, tt := range []struct{ name, script, stdout string }{
		{"background shell", `sh -c 'sleep 1000; :' $0 & sleep 0.2; kill -0 $! && echo started`, "started\n"},
		{"setsid, ignoring HUP TERM INT", `setsid sh -c 'trap "" HUP TERM INT; sleep 1000; :' $0 >/dev/null 2>&1 & sleep 0.2; kill -0 $! && echo started`, "started\n"},
		{"setsid and a double fork", `probe daemon $0`, "daemonized\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			marker := fmt.Sprintf("sess-bg-%d", time.Now().UnixNano())
			start := time.Now()
			res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", tt.script, marker}})
			if res.Status != api.StatusOK || res.Stdout != tt.stdout {
				t.Fatalf("%s stdout %q stderr %q", res.Status, res.Stdout, res.Stderr)
			}
			if p := testdaemon.ProcessesWith(marker); len(p) != 0 {
				t.Errorf("outlived the exec: %v", p)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("the exec took %v: it waited for what it left behind", el)
			}
			// The next exec's sandbox may be building (its init) or parked
			// (its entry), the last one's being torn down (its exiting
			// tasks have no argv left); nothing else may be in the
			// sandboxes' cgroups.
			for _, p := range testdaemon.ProcessesOfSandboxes(d.CgroupParent) {
				if !strings.HasSuffix(p, " init ") && !strings.HasSuffix(p, "sandbox-entry ") && !strings.HasSuffix(p, "sandbox-entry fresh ") && !strings.HasSuffix(p, ": ") {
					t.Errorf("a program's process after its exec: %s", p)
				}
			}
		})
	}
	if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"echo", "fine"}}); res.Stdout != "fine\n" {
		t.Errorf("after: %+v", res)
	}
}

// Each exec's result accounts for that exec alone; the sandbox's usage
// sums them, and shows an exec in flight.
func TestSessionExecAccounting(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Limits: &api.Limits{CPUs: ptr(1.0)}})
	burn := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"probe", "burnfor", "800"}})
	alloc := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"probe", "alloc", "48"}})
	idle := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"true"}})
	for _, r := range []*api.Result{burn, alloc, idle} {
		if r.Status != api.StatusOK {
			t.Fatalf("%+v", r)
		}
	}
	// 800 ms of wall time spinning: most of it CPU time, less on a
	// machine busy with other work.
	if burn.CPUTimeMS < 250 {
		t.Errorf("burning exec: cpu_time_ms %.1f, want >= 250", burn.CPUTimeMS)
	}
	if idle.CPUTimeMS > 100 || alloc.CPUTimeMS > burn.CPUTimeMS/2 {
		t.Errorf("later execs carry earlier CPU time: alloc %.1f ms, true %.1f ms (burn %.1f)", alloc.CPUTimeMS, idle.CPUTimeMS, burn.CPUTimeMS)
	}
	if alloc.MemoryPeakBytes < 48<<20 {
		t.Errorf("allocating exec: memory_peak_bytes %d, want >= 48 MiB", alloc.MemoryPeakBytes)
	}
	if idle.MemoryPeakBytes <= 0 || idle.MemoryPeakBytes >= 16<<20 {
		t.Errorf("trivial exec after it: memory_peak_bytes %d, want its own (0 < peak < 16 MiB)", idle.MemoryPeakBytes)
	}
	// In flight: the usage shows the exec's processes and memory.
	done := execAsync(d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`sleep 2 & sleep 2; wait`)})
	testdaemon.WaitUntil(t, "the exec in flight to show", 10*time.Second, func() bool {
		got, err := d.Client.Sandbox(context.Background(), sb.ID)
		return err == nil && got.Usage.ExecsActive == 1 && got.Usage.Processes >= 2 && got.Usage.MemoryBytes > 0
	})
	o := <-done
	if o.err != nil || o.resp.Status != api.StatusOK {
		t.Fatalf("the exec in flight: %v %+v", o.err, o.resp)
	}
	last := o.resp.Run
	got, err := d.Client.Sandbox(context.Background(), sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	u, sum := got.Usage, burn.CPUTimeMS+alloc.CPUTimeMS+idle.CPUTimeMS+last.CPUTimeMS
	if u.Execs != 4 || u.ExecsActive != 0 || u.Processes != 0 || u.MemoryBytes != 0 || u.CPUTimeMS < sum-1 || u.CPUTimeMS > sum+1 ||
		u.MemoryPeakBytes < alloc.MemoryPeakBytes {
		t.Errorf("usage %+v; execs' cpu sum %.3f, highest peak %d", *u, sum, alloc.MemoryPeakBytes)
	}
}

// The sandbox's limits hold for every exec; one exec reaching a limit ends
// alone, and the sandbox and its files stay. An exec may set only its own
// limits.
func TestSessionLimits(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Limits: &api.Limits{MemoryBytes: ptr(int64(64 << 20)), WallTimeMS: ptr(int64(3000))},
		Files: []api.File{{Name: "keep.txt", Content: "kept\n"}}})
	for _, tt := range []struct {
		name   string
		req    api.SandboxExecRequest
		status api.Status
	}{
		{"memory over the sandbox's", api.SandboxExecRequest{Cmd: []string{"probe", "alloc", "100"}}, api.StatusMemoryLimit},
		{"memory within it", api.SandboxExecRequest{Cmd: []string{"probe", "alloc", "32"}}, api.StatusOK},
		{"the sandbox's wall time as the default", api.SandboxExecRequest{Cmd: []string{"sleep", "10"}}, api.StatusWallTimeLimit},
		{"the exec's wall time", api.SandboxExecRequest{Cmd: []string{"sleep", "5"}, Limits: &api.Limits{WallTimeMS: ptr(int64(300))}}, api.StatusWallTimeLimit},
		{"the exec's cpu time", api.SandboxExecRequest{Cmd: []string{"probe", "burn", "1"}, Limits: &api.Limits{CPUTimeMS: ptr(int64(200))}}, api.StatusTimeLimit},
		{"the exec's output", api.SandboxExecRequest{Cmd: []string{"yes"}, Limits: &api.Limits{OutputBytes: ptr(int64(10))}}, api.StatusOutputLimit},
		{"the exec's wall time above the sandbox's", api.SandboxExecRequest{Cmd: shell(`sleep 4; echo slept`), Limits: &api.Limits{WallTimeMS: ptr(int64(8000))}}, api.StatusOK},
	} {
		start := time.Now()
		if res := run(t, d.Client, sb.ID, tt.req); res.Status != tt.status {
			t.Errorf("%s: %s (%+v), want %s", tt.name, res.Status, res, tt.status)
		}
		if tt.status == api.StatusWallTimeLimit && time.Since(start) > 4*time.Second {
			t.Errorf("%s: took %v", tt.name, time.Since(start))
		}
		if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"cat", "keep.txt"}}); res.Status != api.StatusOK || res.Stdout != "kept\n" {
			t.Fatalf("after %s: %+v", tt.name, res)
		}
	}
	for _, f := range []string{`"memory_bytes":67108864`, `"pids":10`, `"cpus":1`, `"work_bytes":1048576`, `"tmp_bytes":1048576`,
		`"open_files":64`, `"file_size_bytes":1024`, `"wall_time_ms":100000000`, `"output_bytes":0`} {
		r := post(t, d, "/v1/sandboxes/"+sb.ID+"/exec", `{"cmd":["true"],"limits":{`+f+`}}`)
		if r.status != http.StatusBadRequest || errorCode(t, r) != api.CodeInvalidRequest {
			t.Errorf("exec with limits {%s}: %d %s, want 400 invalid_request", f, r.status, r.body)
		}
	}
}

// waitGone polls GET until the sandbox answers 404 unknown_sandbox, and
// returns when it did.
func waitGone(t *testing.T, c *client.Client, id string, within time.Duration) time.Time {
	t.Helper()
	testdaemon.WaitUntil(t, "the sandbox to end", within, func() bool {
		_, err := c.Sandbox(context.Background(), id)
		_, code := apiErr(err)
		if err != nil && code != api.CodeUnknownSandbox {
			t.Fatalf("GET: %v", err)
		}
		return code == api.CodeUnknownSandbox
	})
	return time.Now()
}

// A sandbox ends at its TTL, even with an exec in flight, and after its
// idle timeout, which an exec in flight holds off.
func TestSessionExpiry(t *testing.T) {
	d := sessionDaemon(t)
	c := d.Client
	t.Run("ttl", func(t *testing.T) {
		start := time.Now()
		sb := newSandbox(t, c, api.CreateSandboxRequest{TTLMS: ptr(int64(1500))})
		if got := sb.ExpiresAt.Sub(sb.CreatedAt); got != 1500*time.Millisecond {
			t.Errorf("expires_at - created_at = %v", got)
		}
		cut := execAsync(c, sb.ID, api.SandboxExecRequest{Cmd: []string{"sleep", "30"}})
		gone := waitGone(t, c, sb.ID, 5*time.Second)
		if el := gone.Sub(start); el < 1400*time.Millisecond || el > 2500*time.Millisecond {
			t.Errorf("gone %v after the create, want ~1.5 s", el)
		}
		select {
		case o := <-cut:
			if o.at.Sub(gone) > 2*time.Second {
				t.Errorf("the exec in flight answered %v after the sandbox ended", o.at.Sub(gone))
			}
			if o.err == nil && (o.resp.Status == api.StatusOK || o.resp.Run.WallTimeMS > 5000) {
				t.Errorf("the exec cut by the TTL: %+v", o.resp.Run)
			}
			if o.err == nil {
				t.Logf("the exec cut by the TTL answered 200, status %s, error %q", o.resp.Status, o.resp.Run.Error)
			} else {
				t.Logf("the exec cut by the TTL answered %v", o.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the exec in flight never answered after the TTL")
		}
	})
	t.Run("idle", func(t *testing.T) {
		sb := newSandbox(t, c, api.CreateSandboxRequest{IdleTimeoutMS: ptr(int64(1000))})
		if sb.IdleTimeoutMS != 1000 {
			t.Errorf("idle_timeout_ms %d", sb.IdleTimeoutMS)
		}
		// An exec of 2 s: longer than the idle timeout, which it holds off.
		if res := run(t, c, sb.ID, api.SandboxExecRequest{Cmd: shell(`sleep 2; echo slept`)}); res.Status != api.StatusOK || res.Stdout != "slept\n" {
			t.Fatalf("a 2 s exec in a sandbox idle after 1 s: %+v", res)
		}
		idleFrom := time.Now()
		time.Sleep(500 * time.Millisecond)
		if _, err := c.Sandbox(context.Background(), sb.ID); err != nil {
			t.Fatalf("ended 0.5 s after its last exec: %v", err)
		}
		// GET is no activity: the sandbox ends 1 s after the exec.
		gone := waitGone(t, c, sb.ID, 3*time.Second)
		if el := gone.Sub(idleFrom); el < 900*time.Millisecond || el > 2*time.Second {
			t.Errorf("gone %v after its last exec, want ~1 s", el)
		}
	})
	testdaemon.WaitUntil(t, "expired sandboxes to leave nothing", 5*time.Second, func() bool { return len(d.Leftovers()) == 0 })
}

// Another caller can't see, use, change or end a sandbox: every call
// answers 404 unknown_sandbox, as for an id that never existed.
func TestSessionOwnership(t *testing.T) {
	d := sessionDaemon(t, jwtFlags(t)...)
	ctx := context.Background()
	alice := client.NewWithToken(d.Socket, goodToken(t, "alice"))
	sb := newSandbox(t, alice, api.CreateSandboxRequest{Files: []api.File{{Name: "f.txt", Content: "alice's\n"}}})
	others := map[string]*client.Client{
		"another subject":          client.NewWithToken(d.Socket, goodToken(t, "bob")),
		"the socket without token": d.Client, // uid:0
	}
	for name, c := range others {
		t.Run(name, func(t *testing.T) {
			wantUnknown(t, everyCall(c, sb.ID))
			if list, err := c.Sandboxes(ctx); err != nil || len(list) != 0 {
				t.Errorf("list: %+v %v", list, err)
			}
		})
	}
	got, err := alice.Sandbox(ctx, sb.ID)
	if err != nil || got.Usage.Execs != 0 {
		t.Fatalf("the owner's GET: %+v %v", got, err)
	}
	list, err := alice.ListFiles(ctx, sb.ID, "", true)
	if err != nil || len(list.Entries) != 1 || list.Entries[0].Name != "f.txt" {
		t.Fatalf("the owner's files: %+v %v", list, err)
	}
	if res := run(t, alice, sb.ID, api.SandboxExecRequest{Cmd: []string{"cat", "f.txt"}}); res.Stdout != "alice's\n" {
		t.Fatalf("the owner's exec: %+v", res)
	}
	if l, err := alice.Sandboxes(ctx); err != nil || len(l) != 1 {
		t.Fatalf("the owner's list: %+v %v", l, err)
	}
	if err := alice.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
}

// Quotas answer 429 rate_limited with Retry-After: sandboxes per user, the
// sum of their memory limits, execs in flight per sandbox. Ending one
// makes room.
func TestSessionQuotas(t *testing.T) {
	d := sessionDaemon(t, append(jwtFlags(t), "--max-sessions-per-user", "2", "--session-memory", "300MiB", "--max-execs-per-sandbox", "1")...)
	ctx := context.Background()
	alice, bob := client.NewWithToken(d.Socket, goodToken(t, "alice")), client.NewWithToken(d.Socket, goodToken(t, "bob"))
	limited := func(what string, err error) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusTooManyRequests || ce.Code != api.CodeRateLimited || ce.RetryAfter <= 0 {
			t.Errorf("%s: %v (%+v), want 429 rate_limited with Retry-After", what, err, ce)
		}
	}
	a1 := newSandbox(t, alice, api.CreateSandboxRequest{}) // 128 MiB each by default
	newSandbox(t, alice, api.CreateSandboxRequest{})
	_, err := alice.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox", Limits: &api.Limits{MemoryBytes: ptr(int64(8 << 20))}})
	limited("alice's third sandbox", err)
	_, err = bob.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox", Limits: &api.Limits{MemoryBytes: ptr(int64(64 << 20))}})
	limited("bob's 64 MiB over 256 MiB of 300", err)
	b1 := newSandbox(t, bob, api.CreateSandboxRequest{Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20))}})
	if err := alice.DeleteSandbox(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	newSandbox(t, alice, api.CreateSandboxRequest{Limits: &api.Limits{MemoryBytes: ptr(int64(64 << 20))}})

	first := execAsync(bob, b1.ID, api.SandboxExecRequest{Cmd: shell(`sleep 1.5; echo first`)})
	testdaemon.WaitUntil(t, "the first exec to run", 10*time.Second, func() bool {
		got, err := bob.Sandbox(ctx, b1.ID)
		return err == nil && got.Usage.ExecsActive == 1
	})
	_, err = bob.Exec(ctx, b1.ID, &api.SandboxExecRequest{Cmd: []string{"true"}})
	limited("a second exec in flight", err)
	if o := <-first; o.err != nil || o.resp.Run.Stdout != "first\n" {
		t.Errorf("first exec: %v %+v", o.err, o.resp)
	}
	if res := run(t, bob, b1.ID, api.SandboxExecRequest{Cmd: []string{"echo", "next"}}); res.Stdout != "next\n" {
		t.Errorf("an exec after the first ended: %+v", res)
	}
}

// A daemon SIGKILLed with 20 sandboxes, some running execs, leaves nothing
// once restarted, and their ids are unknown to the new instance.
func TestSessionsAfterDaemonCrash(t *testing.T) {
	d := sessionDaemon(t, "--max-sessions-per-user", "25", "--concurrency", "8")
	ctx := context.Background()
	marker := fmt.Sprintf("sess-crash-%d", time.Now().UnixNano())
	var ids []string
	for i := 0; i < 20; i++ {
		sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20)), CPUs: ptr(0.1)},
			Files: []api.File{{Name: "data/f.txt", Content: "x"}}})
		ids = append(ids, sb.ID)
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Go(func() { // never answers: the daemon dies under it
			_, _ = d.Client.Exec(ctx, ids[i], &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", "sleep 60; :", fmt.Sprintf("%s-%d", marker, i)},
				Limits: &api.Limits{WallTimeMS: ptr(int64(50000))}})
		})
	}
	testdaemon.WaitUntil(t, "6 execs in flight", 30*time.Second, func() bool {
		for i := 0; i < 6; i++ {
			if len(testdaemon.ProcessesWith(fmt.Sprintf("%s-%d", marker, i))) == 0 {
				return false
			}
		}
		return true
	})
	if l := d.Leftovers(); len(l) < 20 {
		t.Fatalf("20 sandboxes show only %d things on the host: %v", len(l), l)
	}
	d.Kill()
	wg.Wait()
	d.MustRestart()
	if l := d.Leftovers(); len(l) != 0 {
		t.Errorf("after restart, left behind: %v\n%s", l, d.Log())
	}
	testdaemon.WaitUntil(t, "the killed instance's processes to end", 10*time.Second, func() bool {
		return len(testdaemon.ProcessesWith(marker)) == 0 && len(testdaemon.ProcessesOfSandboxes(d.CgroupParent)) == 0
	})
	if list, err := d.Client.Sandboxes(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after restart: %+v %v", list, err)
	}
	for _, id := range ids {
		if _, err := d.Client.Sandbox(ctx, id); !client.IsCode(err, api.CodeUnknownSandbox) {
			t.Errorf("GET %s after restart: %v", id, err)
		}
	}
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`ls /work; echo alive`)}); res.Stdout != "alive\n" {
		t.Errorf("a new sandbox after restart: %+v", res)
	}
}

// A bad create is 400 invalid_request (an unknown image 404
// unknown_image), and leaves no sandbox behind.
func TestSessionBadCreate(t *testing.T) {
	d := sessionDaemon(t, "--max-session-ttl", "1h")
	e := unixEndpoint(d.Socket)
	labels := make([]string, 33)
	for i := range labels {
		labels[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	for _, tt := range []struct{ name, body, code string }{
		{"image and language", `{"image":"busybox","language":"python"}`, api.CodeInvalidRequest},
		{"neither image nor language", `{}`, api.CodeInvalidRequest},
		{"version with an image", `{"image":"busybox","version":"3"}`, api.CodeInvalidRequest},
		{"unknown image", `{"image":"nosuchimage"}`, api.CodeUnknownImage},
		{"ttl_ms above the maximum", `{"image":"busybox","ttl_ms":3600001}`, api.CodeInvalidRequest},
		{"ttl_ms zero", `{"image":"busybox","ttl_ms":0}`, api.CodeInvalidRequest},
		{"idle_timeout_ms negative", `{"image":"busybox","idle_timeout_ms":-1}`, api.CodeInvalidRequest},
		{"idle_timeout_ms above the maximum", `{"image":"busybox","idle_timeout_ms":3600001}`, api.CodeInvalidRequest},
		{"33 labels", `{"image":"busybox","labels":{` + strings.Join(labels, ",") + `}}`, api.CodeInvalidRequest},
		{"empty label key", `{"image":"busybox","labels":{"":"v"}}`, api.CodeInvalidRequest},
		{"label key of 64 bytes", `{"image":"busybox","labels":{"` + strings.Repeat("k", 64) + `":"v"}}`, api.CodeInvalidRequest},
		{"label value of 257 bytes", `{"image":"busybox","labels":{"k":"` + strings.Repeat("v", 257) + `"}}`, api.CodeInvalidRequest},
		{"control character in a label", `{"image":"busybox","labels":{"k":"a\u001bb"}}`, api.CodeInvalidRequest},
		{"env name with =", `{"image":"busybox","env":{"A=B":"c"}}`, api.CodeInvalidRequest},
		{"file name with ..", `{"image":"busybox","files":[{"name":"../x","content":""}]}`, api.CodeInvalidRequest},
		{"absurd memory", `{"image":"busybox","limits":{"memory_bytes":4611686018427387904}}`, api.CodeInvalidRequest},
		{"unknown field", `{"image":"busybox","bogus":1}`, api.CodeInvalidRequest},
	} {
		r := e.call(t, "POST", "/v1/sandboxes", "", tt.body)
		if want := map[bool]int{true: 404, false: 400}[tt.code == api.CodeUnknownImage]; r.status != want || errorCode(t, r) != tt.code {
			t.Errorf("create, %s: %d %s, want %d %s", tt.name, r.status, r.body, want, tt.code)
		}
	}
	if list, err := d.Client.Sandboxes(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("refused creates left sandboxes: %+v %v", list, err)
	}
	if l := d.Leftovers(); len(l) != 0 {
		t.Errorf("refused creates left on the host: %v", l)
	}
}

// A files or archive path outside /work and /tmp, with "..", "." or an
// empty segment, a control character or an overlong segment is 400
// invalid_request, for every method; so are a bad cwd, cmd or env.
func TestSessionBadPaths(t *testing.T) {
	d := sessionDaemon(t)
	e := unixEndpoint(d.Socket)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Files: []api.File{{Name: "ok.txt", Content: "ok"}}})
	base := "/v1/sandboxes/" + sb.ID
	for _, p := range []string{"..%2Fx", "a/..%2F..%2Fx", "%2Fetc%2Fpasswd", "%2Fproc%2Fself%2Fenviron", "%2Fwork%2F..%2F..%2Fetc%2Fpasswd",
		"a%01b", "a%00b", "a%0Ab", ".%2Fok.txt", "sub%2F%2Fx", strings.Repeat("n", 256),
		// Literal dot and empty segments: refused before routing, never
		// redirected to the cleaned URL (files/../.. is the sandbox).
		"..", "../..", "../x", "a/../../x", "./ok.txt", "sub/./ok.txt", "sub//x"} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			if r := e.call(t, m, base+"/files/"+p, "", "x"); r.status != 400 || errorCode(t, r) != api.CodeInvalidRequest {
				t.Errorf("%s files/%s: %d %s, want 400 invalid_request", m, p, r.status, r.body)
			}
		}
	}
	for _, q := range []string{"/etc", "../x", "%2Fwork%2F..%2Fetc", "a%01b"} {
		for _, m := range []string{"GET", "PUT"} {
			if r := e.call(t, m, base+"/archive?path="+q, "", ""); r.status != 400 || errorCode(t, r) != api.CodeInvalidRequest {
				t.Errorf("%s archive?path=%s: %d %s, want 400 invalid_request", m, q, r.status, r.body)
			}
		}
	}
	ctx := context.Background()
	if got, err := d.Client.ReadFile(ctx, sb.ID, "ok.txt"); err != nil || string(got) != "ok" {
		t.Errorf("after the bad requests: %q %v", got, err)
	}
}

// The Go client's files paths, as a program would pass them: one with
// ".." must be refused, never resolved by the URL into another file,
// another sandbox or another endpoint.
func TestSessionClientPathsWithDots(t *testing.T) {
	d := sessionDaemon(t)
	d.ImportDir("victim", testRootfs)
	ctx := context.Background()
	files := []api.File{{Name: "ok.txt", Content: "ok"}}
	a, b := newSandbox(t, d.Client, api.CreateSandboxRequest{Files: files}), newSandbox(t, d.Client, api.CreateSandboxRequest{Files: files})
	for _, p := range []string{"../x", "/etc/passwd", "a\x01b", "/work/../etc/passwd", "sub/../ok.txt", "../../" + b.ID + "/files/ok.txt"} {
		_, rerr := d.Client.ReadFile(ctx, a.ID, p)
		_, werr := d.Client.WriteFile(ctx, a.ID, p, strings.NewReader("x"), 0)
		for what, err := range map[string]error{"ReadFile": rerr, "WriteFile": werr} {
			if st, code := apiErr(err); st != 400 || code != api.CodeInvalidRequest {
				t.Errorf("%s(%q): %d %s, want 400 invalid_request", what, p, st, code)
			}
		}
	}
	// ".." last: it would name the sandbox itself.
	for _, p := range []string{"../../../images/victim", "../../" + b.ID, ".."} {
		if st, code := apiErr(d.Client.RemoveFile(ctx, a.ID, p, true)); st != 400 || code != api.CodeInvalidRequest {
			t.Errorf("RemoveFile(%q): %d %s, want 400 invalid_request", p, st, code)
		}
	}
	for _, sb := range []*api.Sandbox{a, b} {
		if got, err := d.Client.ReadFile(ctx, sb.ID, "ok.txt"); err != nil || string(got) != "ok" {
			t.Errorf("sandbox %s after: ok.txt %q %v", sb.ID, got, err)
		}
	}
	if _, err := d.Client.Image(ctx, "victim"); err != nil {
		t.Errorf("image victim after: %v", err)
	}
}

// A write that does not fit in /work is 507 insufficient_storage, leaves
// no partial file, and the sandbox stays usable.
func TestSessionWorkFull(t *testing.T) {
	d := sessionDaemon(t)
	ctx := context.Background()
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Limits: &api.Limits{WorkBytes: ptr(int64(1 << 20))}})
	big := bytes.Repeat([]byte("x"), 2<<20)
	_, err := d.Client.WriteFile(ctx, sb.ID, "big.bin", bytes.NewReader(big), 0)
	if st, code := apiErr(err); st != http.StatusInsufficientStorage || code != api.CodeInsufficientStorage {
		t.Fatalf("PUT of 2 MiB into a 1 MiB /work: %d %s, want 507 insufficient_storage", st, code)
	}
	if _, err := d.Client.ReadFile(ctx, sb.ID, "big.bin"); !client.IsCode(err, api.CodeNotFound) {
		t.Errorf("the partial file: %v, want not_found", err)
	}
	_, err = d.Client.PutArchive(ctx, sb.ID, "/work", tarOfSized("big.tar.bin", 2<<20))
	if st, code := apiErr(err); st != http.StatusInsufficientStorage || code != api.CodeInsufficientStorage {
		t.Errorf("archive of 2 MiB into a 1 MiB /work: %d %s, want 507 insufficient_storage", st, code)
	}
	if _, err := d.Client.WriteFile(ctx, sb.ID, "small.txt", strings.NewReader("small\n"), 0); err != nil {
		t.Fatalf("a small PUT after: %v", err)
	}
	res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`cat small.txt; ls; df -k /work | tail -1 | awk '{print $2}'`)})
	if res.Status != api.StatusOK || res.Stdout != "small\nsmall.txt\n1024\n" {
		t.Errorf("exec after: %s %q %q", res.Status, res.Stdout, res.Stderr)
	}
}

func tarOfSized(name string, size int) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(size)})
	_, _ = tw.Write(bytes.Repeat([]byte("y"), size))
	_ = tw.Close()
	return &buf
}

// DELETE while an exec runs: the exec is cut and answers 404
// unknown_sandbox (not a 500 or a result), and DELETE returns once it is.
// An exec waiting for an admission slot is cut the same way.
func TestSessionEndCutsExecs(t *testing.T) {
	d := sessionDaemon(t, "--concurrency", "1")
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	running := execAsync(d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`touch started; sleep 30`)})
	waitFor(t, 20*time.Second, func() bool {
		_, err := d.Client.ReadFile(context.Background(), sb.ID, "started")
		return err == nil
	})
	queued := execAsync(d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"true"}})
	time.Sleep(300 * time.Millisecond) // the second exec is in the admission queue
	start := time.Now()
	if err := d.Client.DeleteSandbox(context.Background(), sb.ID); err != nil {
		t.Fatalf("DELETE during the exec: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("DELETE took %v with an exec in flight", el)
	}
	for name, ch := range map[string]<-chan outcome{"running": running, "queued": queued} {
		select {
		case o := <-ch:
			if st, code := apiErr(o.err); st != http.StatusNotFound || code != api.CodeUnknownSandbox {
				t.Errorf("%s exec cut by DELETE: %d %s (%+v), want 404 unknown_sandbox", name, st, code, o.resp)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s exec: no answer 10 s after DELETE", name)
		}
	}
	if l := append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...); len(l) != 0 {
		t.Errorf("left on the host: %v", l)
	}
}

// An archive GET of a FIFO is 400, before any 200: the program's FIFO is
// never opened (which would block), and no empty tar is passed off as it.
func TestSessionArchiveOfFIFO(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`mkfifo pipe`)}); res.Status != api.StatusOK {
		t.Fatalf("mkfifo: %+v", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := d.Client.GetArchive(ctx, sb.ID, "/work/pipe")
	if r != nil {
		r.Close()
	}
	if st, code := apiErr(err); st != http.StatusBadRequest || code != api.CodeInvalidRequest {
		t.Errorf("archive of a FIFO: %d %s, want 400 invalid_request", st, code)
	}
	if _, err := d.Client.ReadFile(ctx, sb.ID, "pipe"); !client.IsCode(err, api.CodeInvalidRequest) {
		t.Errorf("files GET of a FIFO: %v, want invalid_request", err)
	}
}

// waitFor polls cond every 50 ms until it holds, or fails t after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
	}
}

// Each create, exec, write and delete is one audit line with the user, the
// sandbox id and sizes, never content; the session counters count created,
// deleted, expired and active sandboxes, and an exec's queue wait.
func TestSessionAuditAndMetrics(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.log")
	d := sessionDaemon(t, "--audit-log", logPath)
	ctx, e := context.Background(), unixEndpoint(d.Socket)
	scrape := func() map[string]float64 {
		r := e.call(t, "GET", "/metrics", "", "")
		if r.status != 200 {
			t.Fatalf("GET /metrics: %d %s", r.status, r.body)
		}
		return metricsOf(t, r.body)
	}
	before := scrape()
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Files: []api.File{{Name: "a.txt", Content: "SECRET-CREATE-5d1e"}}})
	short := newSandbox(t, d.Client, api.CreateSandboxRequest{IdleTimeoutMS: ptr(int64(300))})
	if _, err := d.Client.WriteFile(ctx, sb.ID, "dir/b.txt", strings.NewReader("SECRET-PUT-77aa"), 0); err != nil {
		t.Fatal(err)
	}
	run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`cat dir/b.txt >/dev/null`), Stdin: "SECRET-STDIN-c0de"})
	if err := d.Client.RemoveFile(ctx, sb.ID, "a.txt", false); err != nil {
		t.Fatal(err)
	}
	if err := d.Client.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { _, err := d.Client.Sandbox(ctx, short.ID); return err != nil })
	after := scrape()
	for name, want := range map[string]float64{"sandboxd_session_sandboxes_created_total": 2, "sandboxd_session_sandboxes_deleted_total": 1,
		"sandboxd_session_sandboxes_expired_total": 1, "sandboxd_session_sandboxes_active": 0, "sandboxd_queue_wait_seconds_count": 1} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s went up by %v, want %v", name, got, want)
		}
	}
	stopDaemon(t, d) // flushes the log
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("SECRET-")) {
		t.Fatalf("the audit log holds content:\n%s", data)
	}
	var got []string
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.User != "uid:0" || r.HTTPStatus >= 300 {
			t.Errorf("%s: user %q, status %d", r.Action, r.User, r.HTTPStatus)
		}
		desc := r.Action + " " + r.SandboxID
		switch {
		case r.Bytes != nil:
			desc += fmt.Sprintf(" %s %d", r.Path, *r.Bytes)
		case r.Action == "sandbox.exec":
			desc += fmt.Sprintf(" stdin %d queue %v", r.StdinBytes, r.QueueMS != nil && r.ExitCode != nil)
		}
		got = append(got, desc)
	}
	want := []string{"sandbox.create " + sb.ID, "sandbox.create " + short.ID, "sandbox.write " + sb.ID + " /work/dir/b.txt 15",
		"sandbox.exec " + sb.ID + " stdin 17 queue true", "sandbox.write " + sb.ID + " /work/a.txt 0", "sandbox.delete " + sb.ID}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSessionExecsReuseTheirSandbox: with reuse (the default), a session's
// execs run one after another in one sandbox, while each sees no process
// of an earlier exec (a PID namespace of its own) and its files persist;
// with --no-reuse each exec has a sandbox of its own.
func TestSessionExecsReuseTheirSandbox(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		reuse bool
	}{{"reuse", nil, true}, {"no-reuse", []string{"--no-reuse", "true"}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := sessionDaemon(t, tc.args...)
			sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
			built, procs := map[string]bool{}, map[string]bool{}
			const execs = 4
			for i := range execs {
				res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(
					`grep -l '^sleep' /proc/[0-9]*/cmdline 2>/dev/null | wc -l; echo x >> count; wc -l < count; sleep 1000 & true`)})
				lines := strings.Fields(res.Stdout)
				if res.Status != api.StatusOK || len(lines) != 2 || lines[1] != fmt.Sprint(i+1) {
					t.Fatalf("exec %d: %+v", i, res)
				}
				procs[lines[0]] = true
				entries, err := os.ReadDir(filepath.Join(d.SandboxStateDir(), "containers"))
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					built[e.Name()] = true
				}
			}
			if len(procs) != 1 || !procs["0"] {
				t.Errorf("the execs saw %v sleeps: an earlier exec's lived on", procs)
			}
			// Without reuse, a sandbox may be gone, and the next not yet
			// built, when the directory is read: more than one is enough.
			if tc.reuse && len(built) != 1 || !tc.reuse && len(built) < 2 {
				t.Errorf("%d execs, %d sandboxes built (%v); reuse %v", execs, len(built), built, tc.reuse)
			}
			if err := d.Client.DeleteSandbox(context.Background(), sb.ID); err != nil {
				t.Fatal(err)
			}
			if l := append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...); len(l) != 0 {
				t.Errorf("after DELETE, left on the host: %v", l)
			}
		})
	}
}
