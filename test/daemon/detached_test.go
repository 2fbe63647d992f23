package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Detached execs ("detach": true): programs of a session that outlive the
// call that started them.

// detach starts req detached in the sandbox id and checks the answer.
func detach(t *testing.T, c *client.Client, id string, req api.SandboxExecRequest) *api.Exec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x, err := c.Detach(ctx, id, &req)
	if err != nil {
		t.Fatalf("detach %q: %v", req.Cmd, err)
	}
	// Running, or (a program quicker than the answer) ended with its result.
	running := x.State == api.ExecRunning && x.Result == nil && x.EndedAt == nil
	ended := x.State == api.ExecExited && x.Result != nil && x.EndedAt != nil
	if !strings.HasPrefix(x.ID, "ex-") || !running && !ended {
		t.Fatalf("detach %q: answer %+v", req.Cmd, x)
	}
	return x
}

// waitExec waits for the exec's end through ?wait=1.
func waitExec(t *testing.T, c *client.Client, id, execID string) *api.Exec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x, err := c.DetachedExec(ctx, id, execID, true)
	if err != nil {
		t.Fatalf("waiting for %s: %v", execID, err)
	}
	if x.State == api.ExecRunning || x.Result == nil || x.EndedAt == nil {
		t.Fatalf("?wait=1 answered before the end: %+v", x)
	}
	return x
}

// TestDetachedExecLifecycle: a detached program runs on after its call,
// is listed running, its result comes with ?wait=1; a killed one says so;
// unknown exec ids are 404 unknown_exec, another owner's sandbox 404
// unknown_sandbox.
func TestDetachedExecLifecycle(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	start := time.Now()
	x := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell("sleep 1; echo done; echo oops >&2; exit 3")})
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("the detach call took %v: it waited for the program", el)
	}
	list, err := d.Client.Execs(context.Background(), sb.ID)
	if err != nil || len(list) != 1 || list[0].ID != x.ID || list[0].State != api.ExecRunning {
		t.Fatalf("list while running: %+v, %v", list, err)
	}
	// The sandbox shows it in flight.
	if info, err := d.Client.Sandbox(context.Background(), sb.ID); err != nil || info.Usage.ExecsActive != 1 {
		t.Errorf("usage while running: %+v, %v", info.Usage, err)
	}
	end := waitExec(t, d.Client, sb.ID, x.ID)
	if end.State != api.ExecExited || end.Result.Status != api.StatusRuntimeError || end.Result.ExitCode != 3 ||
		end.Result.Stdout != "done\n" || end.Result.Stderr != "oops\n" || end.Result.WallTimeMS < 900 {
		t.Errorf("ended: %+v result %+v", end, end.Result)
	}

	// The request's stdin comes first; the pipe stays open after it.
	head := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"head", "-n", "1"}, Stdin: "pre\n"})
	if end := waitExec(t, d.Client, sb.ID, head.ID); end.Result.Status != api.StatusOK || end.Result.Stdout != "pre\n" {
		t.Errorf("stdin: %+v", end.Result)
	}

	// Killed.
	sleeper := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"sleep", "1000"}})
	if err := d.Client.KillExec(context.Background(), sb.ID, sleeper.ID); err != nil {
		t.Fatal(err)
	}
	got, err := d.Client.DetachedExec(context.Background(), sb.ID, sleeper.ID, false)
	if err != nil || got.State != api.ExecKilled || got.Result == nil || got.Result.Signal == nil ||
		*got.Result.Signal != "SIGKILL" || got.Result.ExitCode != 137 {
		t.Fatalf("after kill: %+v, %v", got, err)
	}
	// Killing an ended exec is harmless; it stays as it ended.
	if err := d.Client.KillExec(context.Background(), sb.ID, x.ID); err != nil {
		t.Errorf("killing an ended exec: %v", err)
	}
	if got, _ := d.Client.DetachedExec(context.Background(), sb.ID, x.ID, false); got.State != api.ExecExited {
		t.Errorf("an ended exec became %q", got.State)
	}
	list, _ = d.Client.Execs(context.Background(), sb.ID)
	if len(list) != 3 || list[0].ID != x.ID || list[2].ID != sleeper.ID {
		t.Errorf("list: %+v", list)
	}
	detachRefusals(t, d, sb.ID)
	if list, _ := d.Client.Execs(context.Background(), sb.ID); len(list) != 3 {
		t.Errorf("list after refused calls: %+v", list)
	}
}

// detachRefusals: unknown exec ids, a command that can't be started,
// "stream" with "detach"; none leaves an exec behind.
func detachRefusals(t *testing.T, d *testdaemon.Daemon, id string) {
	t.Helper()
	for _, call := range []func() error{
		func() error {
			_, err := d.Client.DetachedExec(context.Background(), id, "ex-0000", false)
			return err
		},
		func() error { return d.Client.KillExec(context.Background(), id, "ex-0000") },
	} {
		if st, code := apiErr(call()); st != http.StatusNotFound || code != api.CodeUnknownExec {
			t.Errorf("unknown exec: %d %s", st, code)
		}
	}
	// Attaching to an unknown exec is refused before the upgrade.
	_, resp, err := websocket.Dial(context.Background(), "ws://sandboxd/v1/sandboxes/"+id+"/execs/ex-0/ws",
		&websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("attach to an unknown exec: %v %v", err, resp)
	}
	// A command that can't be started is the call's error, as for any exec.
	_, err = d.Client.Detach(context.Background(), id, &api.SandboxExecRequest{Cmd: []string{"/no/such/cmd"}})
	if st, code := apiErr(err); st != http.StatusBadRequest || code != api.CodeInvalidRequest {
		t.Errorf("a command that does not exist: %d %s (%v)", st, code, err)
	}
	// "stream" and "detach" together are refused.
	_, err = d.Client.Detach(context.Background(), id, &api.SandboxExecRequest{Cmd: []string{"true"}, Stream: true})
	if st, _ := apiErr(err); st != http.StatusBadRequest {
		t.Errorf("stream and detach: %v", err)
	}
}

// TestDetachedExecAttach: a client attaching over WebSocket gets the
// output kept so far, then live output, sends stdin to the program, and
// gets the result when it ends; leaving does not end the program.
func TestDetachedExecAttach(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell("echo hello; echo warn >&2; exec cat")})
	path := "/v1/sandboxes/" + sb.ID + "/execs/" + x.ID + "/ws"
	attach := func() *websocket.Conn {
		c, resp, err := websocket.Dial(ctx, "ws://sandboxd"+path, &websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
		if err != nil {
			t.Fatalf("attach: %v (%v)", err, resp)
		}
		return c
	}
	// The program's first lines are kept: wait until it has written them.
	testdaemon.WaitUntil(t, "the program's first output", 10*time.Second, func() bool {
		a := attach()
		defer a.CloseNow()
		ev := readEvent(ctx, t, a)
		return ev.Type == "stdout" && ev.Data == "hello\n"
	})
	c := attach()
	if ev := readEvent(ctx, t, c); ev.Type != "stdout" || ev.Data != "hello\n" {
		t.Fatalf("first event %s", ev.line)
	}
	if ev := readEvent(ctx, t, c); ev.Type != "stderr" || ev.Data != "warn\n" {
		t.Fatalf("second event %s", ev.line)
	}
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		sendJSON(ctx, t, c, map[string]string{"type": "stdin", "data": line})
		if ev := readEvent(ctx, t, c); ev.Type != "stdout" || ev.Data != line {
			t.Fatalf("echo of %q: %s", line, ev.line)
		}
	}
	// Leaving does not end it, nor close its stdin.
	c.Close(websocket.StatusNormalClosure, "")
	time.Sleep(200 * time.Millisecond)
	if got, _ := d.Client.DetachedExec(ctx, sb.ID, x.ID, false); got.State != api.ExecRunning {
		t.Fatalf("after the client left: %+v", got)
	}
	c = attach()
	defer c.CloseNow()
	want := []string{"hello\n", "line 0\n"}
	for _, w := range want {
		if ev := readEvent(ctx, t, c); ev.Type != "stdout" || !strings.HasPrefix(ev.Data, w) {
			t.Fatalf("the kept output again: %s, want %q first", ev.line, w)
		}
		break
	}
	sendJSON(ctx, t, c, map[string]string{"type": "stdin", "data": "last\n"})
	sendJSON(ctx, t, c, map[string]string{"type": "close_stdin"})
	var result event
	for {
		ev := readEvent(ctx, t, c)
		if ev.Type == "result" {
			result = ev
			break
		}
	}
	if !strings.Contains(result.line, `"state":"exited"`) || !strings.Contains(result.line, `"exec_id":"`+x.ID) ||
		!strings.Contains(result.line, `last\n`) {
		t.Errorf("result event: %s", result.line)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after the result: %v", err)
	}
}

// TestDetachedExecEndsWithTheSandbox: DELETE of the sandbox kills its
// detached programs; nothing of them is left on the host.
func TestDetachedExecEndsWithTheSandbox(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	marker := fmt.Sprintf("detached-%d", time.Now().UnixNano())
	x := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", "echo up; sleep 1000; :", marker}})
	testdaemon.WaitUntil(t, "the detached program", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) > 0 })
	// A client waiting for its end and one attached to it are told the
	// sandbox is gone.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waited := make(chan error, 1)
	go func() { _, err := d.Client.DetachedExec(ctx, sb.ID, x.ID, true); waited <- err }()
	attached, _, err := websocket.Dial(ctx, "ws://sandboxd/v1/sandboxes/"+sb.ID+"/execs/"+x.ID+"/ws",
		&websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err != nil {
		t.Fatal(err)
	}
	defer attached.CloseNow()
	if ev := readEvent(ctx, t, attached); ev.Type != "stdout" || ev.Data != "up\n" {
		t.Fatalf("attached: %s", ev.line)
	}
	if len(d.Leftovers()) == 0 {
		t.Fatal("a live sandbox shows nothing on the host: the leftovers check below would prove nothing")
	}
	if err := d.Client.DeleteSandbox(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	if p := testdaemon.ProcessesWith(marker); len(p) != 0 {
		t.Errorf("outlived its sandbox: %v", p)
	}
	if st, code := apiErr(<-waited); st != http.StatusNotFound || code != api.CodeUnknownSandbox {
		t.Errorf("?wait=1 across the sandbox's end: %d %s", st, code)
	}
	if ev := readEvent(ctx, t, attached); ev.Type != "error" || !strings.Contains(ev.line, api.CodeUnknownSandbox) {
		t.Errorf("the attached client at the sandbox's end: %s", ev.line)
	}
	// Sandbox cgroups, state, scratch mounts, processes: nothing left.
	if l := append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...); len(l) != 0 {
		t.Errorf("left on the host: %v", l)
	}
	if _, err := d.Client.Execs(context.Background(), sb.ID); err == nil {
		t.Error("the ended sandbox's execs are still listed")
	}
}

// TestDetachedExecLimits: detached execs count against
// max_execs_per_sandbox; one running does not hold the daemon's only
// admission slot; an idle timeout does not end a sandbox while one runs.
func TestDetachedExecLimits(t *testing.T) {
	d := sessionDaemon(t, "--concurrency", "1", "--max-execs-per-sandbox", "2")
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{IdleTimeoutMS: ptr(int64(1000))})
	a := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"sleep", "1000"}})
	detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"sleep", "1000"}})
	_, err := d.Client.Detach(context.Background(), sb.ID, &api.SandboxExecRequest{Cmd: []string{"true"}})
	if st, code := apiErr(err); st != http.StatusTooManyRequests || code != api.CodeRateLimited {
		t.Errorf("a third exec: %d %s", st, code)
	}
	// The daemon's one slot is free: a one-shot run goes through.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", "ran"}})
	if err != nil || resp.Run.Stdout != "ran\n" {
		t.Fatalf("a one-shot run beside detached execs: %+v, %v", resp, err)
	}
	// Past the idle timeout, the sandbox lives on.
	time.Sleep(1500 * time.Millisecond)
	if _, err := d.Client.Sandbox(context.Background(), sb.ID); err != nil {
		t.Fatalf("idled out with detached execs running: %v", err)
	}
	// One killed, a new one fits.
	if err := d.Client.KillExec(context.Background(), sb.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"true"}})
}

// TestDetachedServerAnswersLaterExecs: every exec of a sandbox is in one
// network namespace, the sandbox's own: a server a detached exec starts
// on 127.0.0.1:8000 answers a later exec's wget; its namespace has only
// loopback.
func TestDetachedServerAnswersLaterExecs(t *testing.T) {
	d := sessionDaemon(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.Log())
		}
	})
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Files: []api.File{{Name: "www/x", Content: "served from the session\n"}}})
	srv := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"httpd", "-f", "-v", "-p", "127.0.0.1:8000", "-h", "/work/www"}})
	var res *api.Result
	testdaemon.WaitUntil(t, "the server to answer", 10*time.Second, func() bool {
		res = run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"wget", "-qO-", "http://127.0.0.1:8000/x"}})
		return res.Status == api.StatusOK
	})
	if res.Stdout != "served from the session\n" {
		t.Fatalf("wget: %+v", res)
	}
	// Several execs at once reach it too.
	var chans []<-chan outcome
	for range 3 {
		chans = append(chans, execAsync(d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"wget", "-qO-", "http://127.0.0.1:8000/x"}}))
	}
	for _, ch := range chans {
		if o := <-ch; o.err != nil || o.resp.Run.Stdout != "served from the session\n" {
			t.Errorf("a concurrent wget: %+v %v", o.resp, o.err)
		}
	}
	// Loopback only.
	links := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell("ls /sys/class/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1")})
	if strings.Fields(links.Stdout)[0] != "lo" || len(strings.Fields(links.Stdout)) != 2 {
		t.Errorf("interfaces: %q", links.Stdout)
	}
	// Killed, it answers no more.
	if err := d.Client.KillExec(context.Background(), sb.ID, srv.ID); err != nil {
		t.Fatal(err)
	}
	if res := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"wget", "-qO-", "-T", "2", "http://127.0.0.1:8000/x"}}); res.Status == api.StatusOK {
		t.Errorf("the killed server still answers: %+v", res)
	}
}

// TestDetachedExecEndsAtTheTTLAndWithTheDaemon: a detached program's
// sandbox reaching its TTL, or the daemon stopping, ends it; nothing is
// left on the host.
func TestDetachedExecEndsAtTheTTLAndWithTheDaemon(t *testing.T) {
	d := sessionDaemon(t)
	marker := fmt.Sprintf("detached-ttl-%d", time.Now().UnixNano())
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{TTLMS: ptr(int64(1500))})
	x := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", "sleep 1000; :", marker}})
	// Its wall time is the sandbox's remaining life.
	testdaemon.WaitUntil(t, "the detached program", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) > 0 })
	waitGone(t, d.Client, sb.ID, 5*time.Second)
	if p := testdaemon.ProcessesWith(marker); len(p) != 0 {
		t.Errorf("outlived its sandbox's TTL: %v", p)
	}
	if _, err := d.Client.DetachedExec(context.Background(), sb.ID, x.ID, false); err == nil {
		t.Error("the expired sandbox's exec still answers")
	}

	marker2 := marker + "-stop"
	sb2 := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	detach(t, d.Client, sb2.ID, api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", "sleep 1000; :", marker2}})
	testdaemon.WaitUntil(t, "the second detached program", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker2)) > 0 })
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("stopping the daemon: %v", err)
	}
	if p := testdaemon.ProcessesWith(marker2); len(p) != 0 {
		t.Errorf("outlived the daemon: %v", p)
	}
	if l := d.Leftovers(); len(l) != 0 {
		t.Errorf("left on the host after the daemon stopped: %v", l)
	}
}

// goroutines reads the daemon's go_goroutines.
func goroutines(t *testing.T, d *testdaemon.Daemon) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://sandboxd/metrics", nil)
	req.Close = true // no idle connection (and its goroutine) left behind
	resp, err := testdaemon.HTTPClient(d.Socket).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// TestDetachedExecsLeaveNoGoroutines: 16 detached execs (attached to,
// waited for, killed, and left running into the sandbox's end), and
// clients that leave stdin behind, leave the daemon's goroutines where
// they were.
func TestDetachedExecsLeaveNoGoroutines(t *testing.T) {
	d := sessionDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"true"}})
	time.Sleep(200 * time.Millisecond) // the next sandbox built ahead
	base := goroutines(t, d)
	for i := range 5 {
		detachedRound(ctx, t, d, sb.ID, i)
	}
	// Left running (with a client attached) into the sandbox's end.
	left := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"sleep", "1000"}})
	c := attachWS(ctx, t, d, sb.ID, left.ID)
	defer c.CloseNow()
	leaveStdinBehind(ctx, t, d, sb.ID, left.ID)
	if during := goroutines(t, d); during <= base {
		t.Fatalf("goroutines: %d with an exec running and a client attached, %d before: the check below would prove nothing", during, base)
	}
	if err := d.Client.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	// The sandbox built ahead had none; a few for HTTP connections the
	// test's clients keep open.
	if now := settleGoroutines(t, d, base+4, 10*time.Second); now > base+4 {
		t.Errorf("goroutines: %d before, %d after 16 detached execs and the sandbox's end", base, now)
	}
}

// attachWS attaches to a detached exec.
func attachWS(ctx context.Context, t *testing.T, d *testdaemon.Daemon, id, execID string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://sandboxd/v1/sandboxes/"+id+"/execs/"+execID+"/ws",
		&websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// untilResult reads events until the result.
func untilResult(ctx context.Context, t *testing.T, c *websocket.Conn) {
	t.Helper()
	for ev := readEvent(ctx, t, c); ev.Type != "result"; ev = readEvent(ctx, t, c) {
	}
}

// detachedRound runs three detached execs: one attached to until its
// end, one waited for, one killed while a client is attached.
func detachedRound(ctx context.Context, t *testing.T, d *testdaemon.Daemon, id string, i int) {
	t.Helper()
	x := detach(t, d.Client, id, api.SandboxExecRequest{Cmd: shell("sleep 0.2; echo " + strconv.Itoa(i))})
	c := attachWS(ctx, t, d, id, x.ID)
	untilResult(ctx, t, c)
	c.CloseNow()
	y := detach(t, d.Client, id, api.SandboxExecRequest{Cmd: []string{"true"}})
	waitExec(t, d.Client, id, y.ID)
	z := detach(t, d.Client, id, api.SandboxExecRequest{Cmd: []string{"cat"}})
	c = attachWS(ctx, t, d, id, z.ID)
	defer c.CloseNow()
	sendJSON(ctx, t, c, map[string]string{"type": "stdin", "data": "x\n"})
	if ev := readEvent(ctx, t, c); ev.Data != "x\n" {
		t.Fatalf("cat: %s", ev.line)
	}
	if err := d.Client.KillExec(ctx, id, z.ID); err != nil {
		t.Fatal(err)
	}
	untilResult(ctx, t, c)
}

// leaveStdinBehind: clients that hand stdin to a program that never reads
// it, then go, leave nothing waiting behind them once the daemon notices
// they went (its next ping, within 10 s).
func leaveStdinBehind(ctx context.Context, t *testing.T, d *testdaemon.Daemon, id, execID string) {
	t.Helper()
	before := goroutines(t, d)
	for range 5 {
		sender := attachWS(ctx, t, d, id, execID)
		// The first fills the program's 64 KiB pipe, the next waits.
		for _, n := range []int{100 << 10, 1 << 10} {
			if err := sender.Write(ctx, websocket.MessageBinary, make([]byte, n)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond)
		sender.CloseNow()
	}
	if n := goroutines(t, d); n <= before {
		t.Fatalf("goroutines: %d with 5 clients' stdin waiting, %d before: the check below would prove nothing", n, before)
	}
	if after := settleGoroutines(t, d, before+4, 30*time.Second); after > before+4 {
		t.Errorf("goroutines: %d before 5 clients left stdin for a program that does not read it, %d after", before, after)
	}
}

// settleGoroutines polls the daemon's goroutines until they are at most
// want or within has passed, and returns the last count.
func settleGoroutines(t *testing.T, d *testdaemon.Daemon, want int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	n := goroutines(t, d)
	for n > want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = goroutines(t, d)
	}
	return n
}

// TestDetachedExecStalledClient: a client attached to a flooding program
// that never reads holds up neither another client's attach, nor the
// exec's GET, nor the sandbox's end; the daemon's memory stays bounded.
func TestDetachedExecStalledClient(t *testing.T) {
	d := sessionDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	x := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"yes", "flood"}, Limits: &api.Limits{OutputBytes: ptr(int64(64 << 10))}})
	path := "ws://sandboxd/v1/sandboxes/" + sb.ID + "/execs/" + x.ID + "/ws"
	opts := &websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)}
	stalled, _, err := websocket.Dial(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow() // never read: its buffers fill, then the daemon's chunks for it
	time.Sleep(2 * time.Second)
	start := time.Now()
	if got, err := d.Client.DetachedExec(ctx, sb.ID, x.ID, false); err != nil || got.State != api.ExecRunning {
		t.Fatalf("GET beside a stalled client: %+v %v", got, err)
	}
	other, _, err := websocket.Dial(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer other.CloseNow()
	other.SetReadLimit(1 << 20)
	// The kept output comes in events of at most 32 KiB of output.
	kept := 0
	for kept < 64<<10 {
		ev := readEvent(ctx, t, other)
		if ev.Type != "stdout" || !strings.Contains(ev.Data, "flood\n") || len(ev.Data) > 32<<10 {
			t.Fatalf("another client's event: %d bytes %.80s", len(ev.Data), ev.line)
		}
		kept += len(ev.Data)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("GET and another attach took %v beside a stalled client", el)
	}
	other.CloseNow()
	start = time.Now()
	if err := d.Client.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("DELETE took %v with a stalled client attached", el)
	}
	if l := append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...); len(l) != 0 {
		t.Errorf("left on the host: %v", l)
	}
}

// TestDetachedServerWithoutUserNamespaces: the session's network
// namespace works the same when sandboxes have no user namespace.
func TestDetachedServerWithoutUserNamespaces(t *testing.T) {
	d := sessionDaemon(t, "--no-userns", "true")
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{Files: []api.File{{Name: "www/x", Content: "served\n"}}})
	detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"httpd", "-f", "-p", "127.0.0.1:8000", "-h", "/work/www"}})
	testdaemon.WaitUntil(t, "the server to answer", 10*time.Second, func() bool {
		return run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: []string{"wget", "-qO-", "http://127.0.0.1:8000/x"}}).Stdout == "served\n"
	})
	if r := run(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell("ls /sys/class/net")}); r.Stdout != "lo\n" {
		t.Errorf("interfaces: %q", r.Stdout)
	}
	if err := d.Client.DeleteSandbox(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	if l := append(d.Leftovers(), testdaemon.ProcessesOfSandboxes(d.CgroupParent)...); len(l) != 0 {
		t.Errorf("left on the host: %v", l)
	}
}

// TestDetachedExecAttachSignal: an attached client's signal reaches the
// detached program's process group; "tty" with "detach" is refused.
func TestDetachedExecAttachSignal(t *testing.T) {
	d := sessionDaemon(t)
	sb := newSandbox(t, d.Client, api.CreateSandboxRequest{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x := detach(t, d.Client, sb.ID, api.SandboxExecRequest{Cmd: shell(`trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.1; done`)})
	c, resp, err := websocket.Dial(ctx, "ws://sandboxd/v1/sandboxes/"+sb.ID+"/execs/"+x.ID+"/ws",
		&websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err != nil {
		t.Fatalf("attach: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if ev := readEvent(ctx, t, c); ev.Type != "stdout" || ev.Data != "ready\n" {
		t.Fatalf("first event %s", ev.line)
	}
	sendJSON(ctx, t, c, map[string]string{"type": "signal", "signal": "SIGINT"})
	for {
		ev := readEvent(ctx, t, c)
		if ev.Type == "result" {
			if !strings.Contains(ev.line, `"exit_code":7`) || !strings.Contains(ev.line, "got-int") {
				t.Errorf("result after SIGINT: %s", ev.line)
			}
			break
		}
	}
	_, err = d.Client.Detach(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"true"}, TTY: true})
	if !client.IsCode(err, api.CodeInvalidRequest) {
		t.Errorf("tty with detach: %v", err)
	}
}
