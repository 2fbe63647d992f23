package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, d *testdaemon.Daemon, path, body string) rawResponse {
	t.Helper()
	resp, err := testdaemon.HTTPClient(d.Socket).Post("http://sandboxd"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return rawResponse{resp.StatusCode, resp.Header, data}
}

func errorCode(t *testing.T, r rawResponse) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("status %d, body %q is not an error object", r.status, r.body)
	}
	return eb.Error.Code
}

func TestExecuteStatusesThroughTheAPI(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	tests := []struct {
		name   string
		req    api.ExecuteRequest
		status runtime.Status
		stdout string
	}{
		{"ok with files, stdin and env", api.ExecuteRequest{
			Cmd:   []string{"/bin/sh", "-c", `cat in.txt; cat; echo "$GREETING"; cat bin.dat | od -An -tx1 | tr -d ' \n'`},
			Files: []api.File{{Name: "in.txt", Content: "file\n"}, {Name: "bin.dat", Content: "AP8=", Encoding: "base64"}},
			Stdin: "stdin\n", Env: map[string]string{"GREETING": "hi"},
		}, runtime.StatusOK, "file\nstdin\nhi\n00ff"},
		{"runtime error", api.ExecuteRequest{Cmd: []string{"/bin/sh", "-c", "exit 3"}}, runtime.StatusRuntimeError, ""},
		{"wall time limit", api.ExecuteRequest{Cmd: []string{"sleep", "5"}, Limits: &api.Limits{WallTimeMS: ptr(int64(200))}}, runtime.StatusWallTimeLimit, ""},
		{"cpu time limit", api.ExecuteRequest{Cmd: []string{"probe", "burn", "1"}, Limits: &api.Limits{CPUTimeMS: ptr(int64(200)), CPUs: ptr(1.0)}}, runtime.StatusTimeLimit, ""},
		{"memory limit", api.ExecuteRequest{Cmd: []string{"probe", "alloc", "100"}, Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20))}}, runtime.StatusMemoryLimit, ""},
		{"output limit", api.ExecuteRequest{Cmd: []string{"yes"}, Limits: &api.Limits{OutputBytes: ptr(int64(10))}}, runtime.StatusOutputLimit, "y\ny\ny\ny\ny\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Image = "busybox"
			resp, err := d.Client.Execute(context.Background(), &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || resp.Run.Status != tt.status {
				t.Fatalf("status %s (run %s), want %s: %+v", resp.Status, resp.Run.Status, tt.status, resp.Run)
			}
			if tt.stdout != "" && resp.Run.Stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", resp.Run.Stdout, tt.stdout)
			}
			if resp.ID == "" || resp.Image != "busybox:latest" {
				t.Errorf("id %q image %q", resp.ID, resp.Image)
			}
		})
	}
	if !strings.Contains(d.Log(), "msg=execution") {
		t.Error("no execution line in the daemon's log")
	}
	if strings.Contains(d.Log(), "GREETING") || strings.Contains(d.Log(), "stdin\\n") {
		t.Error("request contents reached the log")
	}
}

func ptr[T any](v T) *T { return &v }

func TestErrorCodes(t *testing.T) {
	d := testdaemon.Start(t, "--max-wall-time", "20s", "--max-body", "1MiB")
	d.ImportDir("busybox", testRootfs)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"bad JSON", `{"image":`, 400, "invalid_request"},
		{"not an object", `[1,2]`, 400, "invalid_request"},
		{"two objects", `{"image":"busybox","cmd":["true"]} {}`, 400, "invalid_request"},
		{"unknown field", `{"image":"busybox","cmd":["true"],"bogus":1}`, 400, "invalid_request"},
		{"missing cmd", `{"image":"busybox"}`, 400, "invalid_request"},
		{"empty cmd", `{"image":"busybox","cmd":[""]}`, 400, "invalid_request"},
		{"missing image", `{"cmd":["true"]}`, 400, "invalid_request"},
		{"file name with an empty segment", `{"image":"busybox","cmd":["true"],"files":[{"name":"a//b","content":""}]}`, 400, "invalid_request"},
		{"file name with a control character", `{"image":"busybox","cmd":["true"],"files":[{"name":"a\u001b[2Jb","content":""}]}`, 400, "invalid_request"},
		{"file inside a file", `{"image":"busybox","cmd":["true"],"files":[{"name":"a","content":""},{"name":"a/b","content":""}]}`, 400, "invalid_request"},
		{"absolute file name", `{"image":"busybox","cmd":["true"],"files":[{"name":"/etc/x","content":""}]}`, 400, "invalid_request"},
		{"bad collect pattern", `{"image":"busybox","cmd":["true"],"collect":["../etc/passwd"]}`, 400, "invalid_request"},
		{"collect_bytes above the maximum", `{"image":"busybox","cmd":["true"],"collect":["a"],"collect_bytes":1099511627776}`, 400, "invalid_request"},
		{"file name dotdot", `{"image":"busybox","cmd":["true"],"files":[{"name":"..","content":""}]}`, 400, "invalid_request"},
		{"duplicate file", `{"image":"busybox","cmd":["true"],"files":[{"name":"a","content":""},{"name":"a","content":""}]}`, 400, "invalid_request"},
		{"bad encoding", `{"image":"busybox","cmd":["true"],"files":[{"name":"a","content":"x","encoding":"rot13"}]}`, 400, "invalid_request"},
		{"bad base64", `{"image":"busybox","cmd":["true"],"files":[{"name":"a","content":"!!","encoding":"base64"}]}`, 400, "invalid_request"},
		{"limit above maximum", `{"image":"busybox","cmd":["true"],"limits":{"wall_time_ms":60000}}`, 400, "invalid_request"},
		{"negative limit", `{"image":"busybox","cmd":["true"],"limits":{"memory_bytes":-1}}`, 400, "invalid_request"},
		{"zero limit", `{"image":"busybox","cmd":["true"],"limits":{"pids":0}}`, 400, "invalid_request"},
		{"negative cpus", `{"image":"busybox","cmd":["true"],"limits":{"cpus":-0.5}}`, 400, "invalid_request"},
		{"env name with =", `{"image":"busybox","cmd":["true"],"env":{"A=B":"c"}}`, 400, "invalid_request"},
		{"command not found", `{"image":"busybox","cmd":["nosuchcmd"]}`, 400, "invalid_request"},
		{"unknown image", `{"image":"nosuchimage","cmd":["true"]}`, 404, "unknown_image"},
		{"invalid image reference", `{"image":"Not A/Valid:ref!","cmd":["true"]}`, 400, "invalid_request"},
		{"open_files above maximum", `{"image":"busybox","cmd":["true"],"limits":{"open_files":100000}}`, 400, "invalid_request"},
		{"open_files below 16", `{"image":"busybox","cmd":["true"],"limits":{"open_files":8}}`, 400, "invalid_request"},
		{"too large", `{"image":"busybox","cmd":["true"],"stdin":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "request_too_large"},
		{"deeply nested", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, d, "/v1/execute", tt.body)
			if r.status != tt.status || errorCode(t, r) != tt.code {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if bytes.Contains(r.body, []byte(d.Dir)) {
				t.Errorf("the error names a host path: %s", r.body)
			}
		})
	}
	if _, err := d.Client.Health(context.Background()); err != nil {
		t.Fatalf("daemon unhealthy after bad requests: %v", err)
	}
}

// open_files is RLIMIT_NOFILE, as the program sees it with `ulimit -n`:
// the default, a lower and a higher request, pooled or not.
func TestOpenFilesLimit(t *testing.T) {
	for _, pool := range []string{"0", "4"} {
		d := testdaemon.Start(t, "--pool-size", pool)
		d.ImportDir("busybox", testRootfs)
		for _, tt := range []struct {
			ask  *int64
			want string
		}{{nil, "256"}, {ptr(int64(64)), "64"}, {ptr(int64(1024)), "1024"}} {
			resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox",
				Cmd: []string{"sh", "-c", "ulimit -n"}, Limits: &api.Limits{OpenFiles: tt.ask}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != runtime.StatusOK || strings.TrimSpace(resp.Run.Stdout) != tt.want {
				t.Errorf("pool %s, open_files %v: %s %q, want %s", pool, tt.ask, resp.Status, resp.Run.Stdout, tt.want)
			}
		}
	}
}

func TestBusyWhenQueueIsFull(t *testing.T) {
	d := testdaemon.Start(t, "--concurrency", "1", "--queue-length", "0")
	d.ImportDir("busybox", testRootfs)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"sleep", "1"}})
		done <- err
	}()
	<-started
	testdaemon.WaitUntil(t, "the first run to take the slot", 5*time.Second, func() bool {
		h, err := d.Client.Health(context.Background())
		return err == nil && h.Running == 1
	})
	r := post(t, d, "/v1/execute", `{"image":"busybox","cmd":["true"]}`)
	if r.status != 503 || errorCode(t, r) != "busy" || r.header.Get("Retry-After") == "" {
		t.Errorf("got %d %s (Retry-After %q), want 503 busy with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFiftyConcurrentRequests(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "0")
	d.ImportDir("busybox", testRootfs)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			want := fmt.Sprintf("run %d\n", i)
			resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", "run", fmt.Sprint(i)}})
			switch {
			case err != nil:
				errs <- err
			case resp.Status != runtime.StatusOK || resp.Run.Stdout != want:
				errs <- fmt.Errorf("run %d: %s %q", i, resp.Status, resp.Run.Stdout)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Sandboxes are torn down just after their answer: give it a moment.
	testdaemon.WaitUntil(t, "every sandbox to be torn down", 10*time.Second, func() bool { return len(d.Leftovers()) == 0 })
}

// A pooled run's answer comes only once every process it started is gone
// (the run's PID 1 kills and reaps them before it reports the program's
// end), whatever they did to outlive it, and keeps what they wrote before.
func TestPooledRunAnswersAfterItsProcessesAreGone(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "2")
	d.ImportDir("busybox", testRootfs)
	for _, tt := range []struct{ name, script, stdout string }{
		{"background", `sh -c 'sleep 1000; :' $0 & sleep 0.1; echo started`, "started\n"},
		{"setsid, ignoring HUP TERM INT", `setsid sh -c 'trap "" HUP TERM INT; sleep 1000; :' $0 >/dev/null 2>&1 & sleep 0.1; echo started`, "started\n"},
		{"stopped", `sh -c 'kill -STOP $$; :' $0 & sleep 0.1; echo started`, "started\n"},
		{"setsid and a double fork", `probe daemon $0`, "daemonized\n"},
		{"still writing to stdout", `sh -c 'while :; do echo more; sleep 0.01; done' $0 & sleep 0.1; echo started >&2`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			marker := fmt.Sprintf("pooled-bg-%d", time.Now().UnixNano())
			resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/sh", "-c", tt.script, marker}})
			if err != nil || resp.Status != runtime.StatusOK {
				t.Fatalf("%v %+v", err, resp)
			}
			// Checked at once: no grace after the answer.
			if p := testdaemon.ProcessesWith(marker); len(p) != 0 {
				t.Errorf("outlived the answer: %v", p)
			}
			if tt.stdout != "" && resp.Run.Stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", resp.Run.Stdout, tt.stdout)
			}
			if tt.stdout == "" && !strings.HasPrefix(resp.Run.Stdout, "more\n") {
				t.Errorf("stdout %q: the background writer's lines are lost", resp.Run.Stdout)
			}
		})
	}
}

func TestClientDisconnectKillsTheRun(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "0")
	d.ImportDir("busybox", testRootfs)
	marker := fmt.Sprintf("disconnect-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/sh", "-c", "sleep 30; true", marker}})
	if err == nil {
		t.Fatal("the request finished although the client went away")
	}
	testdaemon.WaitUntil(t, "the sandbox to be killed and cleaned", 5*time.Second, func() bool {
		return len(testdaemon.ProcessesWith(marker)) == 0 && len(d.Leftovers()) == 0
	})
	resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}})
	if err != nil || resp.Status != runtime.StatusOK {
		t.Fatalf("after a disconnect: %v %+v", err, resp)
	}
}

func TestCrashRecovery(t *testing.T) {
	d := testdaemon.Start(t, "--concurrency", "8")
	d.ImportDir("busybox", testRootfs)
	marker := fmt.Sprintf("crash-%d", time.Now().UnixNano())
	for i := 0; i < 6; i++ {
		go d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/sh", "-c", "sleep 30; true", marker}})
	}
	testdaemon.WaitUntil(t, "six runs in flight", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) >= 6 })
	d.Kill()
	// The sandboxes end by themselves once their daemon is gone.
	testdaemon.WaitUntil(t, "orphaned sandboxes to end", 5*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) == 0 })
	if l := d.Leftovers(); len(l) == 0 {
		t.Log("nothing to recover: the kill left no state (unexpected but harmless)")
	}
	d.MustRestart()
	if l := d.Leftovers(); len(l) != 0 {
		t.Errorf("after restart, left behind: %v\n%s", l, d.Log())
	}
	resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", "alive"}})
	if err != nil || resp.Run.Stdout != "alive\n" {
		t.Fatalf("after restart: %v %+v", err, resp)
	}
	if !strings.Contains(d.Log(), "removed what an earlier instance left") {
		t.Errorf("restart did not report recovery:\n%s", d.Log())
	}
}

func TestGracefulShutdownLetsRunsFinish(t *testing.T) {
	// With the warm pool on: shutdown also removes the parked sandboxes.
	d := testdaemon.Start(t, "--grace-period", "5s", "--pool-size", "4")
	d.ImportDir("busybox", testRootfs)
	done := make(chan *api.ExecuteResponse, 1)
	go func() {
		resp, _ := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/sh", "-c", "sleep 1; echo finished"}})
		done <- resp
	}()
	testdaemon.WaitUntil(t, "the run to start", 5*time.Second, func() bool {
		h, err := d.Client.Health(context.Background())
		return err == nil && h.Running == 1
	})
	stopDaemon(t, d)
	resp := <-done
	if resp == nil || resp.Run.Stdout != "finished\n" {
		t.Fatalf("in-flight run did not finish: %+v", resp)
	}
	if l := d.Leftovers(); len(l) != 0 {
		t.Errorf("left behind after shutdown: %v", l)
	}
	// The daemon also removes its own, now empty, parent cgroup.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + d.CgroupParent)
	mem, _ := filepath.Glob("/sys/fs/cgroup/memory/*/*/" + d.CgroupParent)
	if left := append(parents, mem...); len(left) != 0 {
		t.Errorf("parent cgroup left after shutdown: %v", left)
	}
}

func TestImagesEndpoints(t *testing.T) {
	d := testdaemon.Start(t)
	img := d.ImportDir("tools/busybox:1.0", testRootfs)
	if img.Name != "tools/busybox:1.0" || img.SizeBytes <= 0 {
		t.Fatalf("imported %+v", img)
	}
	list, err := d.Client.Images(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if got, err := d.Client.Image(context.Background(), "tools/busybox:1.0"); err != nil || got.ID != img.ID {
		t.Fatalf("get: %v %+v", err, got)
	}
	if _, err := d.Client.Image(context.Background(), "nosuch"); !client.IsCode(err, "not_found") {
		t.Fatalf("get unknown: %v", err)
	}
	// In use: a running sandbox holds the image.
	go d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "tools/busybox:1.0", Cmd: []string{"sleep", "1"}})
	testdaemon.WaitUntil(t, "the run to start", 5*time.Second, func() bool {
		h, err := d.Client.Health(context.Background())
		return err == nil && h.Running == 1
	})
	if err := d.Client.RemoveImage(context.Background(), "tools/busybox:1.0"); !client.IsCode(err, "conflict") {
		t.Fatalf("remove while in use: %v, want conflict", err)
	}
	testdaemon.WaitUntil(t, "the run to end", 5*time.Second, func() bool {
		h, err := d.Client.Health(context.Background())
		return err == nil && h.Running == 0
	})
	if err := d.Client.RemoveImage(context.Background(), "tools/busybox:1.0"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if list, _ := d.Client.Images(context.Background()); len(list) != 0 {
		t.Fatalf("image still listed: %+v", list)
	}
}
