package daemon_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestTerminalRuns: "tty" runs the program on a terminal of the
// sandbox's own devpts instance, of the requested size; stdout and stderr
// are one stream; without "tty" there is no terminal.
func TestTerminalRuns(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	// Only the sandbox's own terminal is in /dev/pts: the instance is new.
	// The host's has terminals of its own meanwhile (these, at least).
	for range 3 {
		f, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	script := "tty; stty size; echo to-stderr >&2; ls /dev/pts | tr '\\n' ' '"
	for _, tc := range []struct {
		name string
		run  func(req api.ExecuteRequest) (*api.Result, error)
	}{
		{"execute", func(req api.ExecuteRequest) (*api.Result, error) {
			req.Image = "busybox"
			resp, err := d.Client.Execute(ctx, &req)
			if err != nil {
				return nil, err
			}
			return resp.Run, nil
		}},
		{"session exec", func(req api.ExecuteRequest) (*api.Result, error) {
			resp, err := d.Client.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: req.Cmd, TTY: req.TTY, Rows: req.Rows, Cols: req.Cols})
			if err != nil {
				return nil, err
			}
			return resp.Run, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.run(api.ExecuteRequest{Cmd: []string{"sh", "-c", script}, TTY: true, Rows: 31, Cols: 101})
			if err != nil {
				t.Fatal(err)
			}
			if want := "/dev/pts/0\r\n31 101\r\nto-stderr\r\n0 ptmx "; res.Stdout != want || res.Stderr != "" || res.Status != api.StatusOK {
				t.Errorf("with a terminal: stdout %q, stderr %q, status %s; want stdout %q", res.Stdout, res.Stderr, res.Status, want)
			}
			res, err = tc.run(api.ExecuteRequest{Cmd: []string{"sh", "-c", "stty size"}, TTY: true})
			if err != nil || strings.TrimSpace(res.Stdout) != "24 80" {
				t.Errorf("the default size: %v %+v", err, res)
			}
			res, err = tc.run(api.ExecuteRequest{Cmd: []string{"sh", "-c", "tty; ls /dev/pts"}})
			if err != nil || res.Stdout != "not a tty\nptmx\n" || res.ExitCode != 0 {
				t.Errorf("without a terminal: %v %+v", err, res)
			}
		})
	}
	t.Run("without a user namespace", func(t *testing.T) {
		// devpts is mounted by a root that owns no user namespace then.
		d := testdaemon.Start(t, "--no-userns", "true")
		d.ImportDir("busybox", testRootfs)
		resp, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-c", script}, TTY: true, Rows: 31, Cols: 101})
		if err != nil {
			t.Fatal(err)
		}
		if want := "/dev/pts/0\r\n31 101\r\nto-stderr\r\n0 ptmx "; resp.Run.Stdout != want {
			t.Errorf("stdout %q, want %q", resp.Run.Stdout, want)
		}
	})
}

// TestTerminalRequestErrors: sizes without "tty" or out of bounds are 400.
func TestTerminalRequestErrors(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	sb, err := d.Client.CreateSandbox(context.Background(), &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"image":"busybox","cmd":["true"],"rows":10}`,
		`{"image":"busybox","cmd":["true"],"tty":true,"rows":1001}`,
		`{"image":"busybox","cmd":["true"],"tty":true,"cols":-1}`,
	} {
		if r := post(t, d, "/v1/execute", body); r.status != 400 || errorCode(t, r) != "invalid_request" {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	if r := post(t, d, "/v1/sandboxes/"+sb.ID+"/exec", `{"cmd":["true"],"tty":true,"rows":5000}`); r.status != 400 {
		t.Errorf("session exec with 5000 rows: %d %s", r.status, r.body)
	}
}

// TestInteractiveShellOnATerminal drives busybox's interactive shell over
// the WebSocket as a user at a terminal would: a prompt, an answer, the
// size read back before and after a resize, Ctrl-C typed and a client's
// SIGINT both interrupting a sleep (the prompt comes back), and the end:
// "exit" or Ctrl-D (close_stdin).
func TestInteractiveShellOnATerminal(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "PROMPT> "
	env := map[string]string{"PS1": prompt}
	for _, tc := range []struct{ name, path string }{
		{"execute", "/v1/execute/ws"},
		{"session exec", "/v1/sandboxes/" + sb.ID + "/exec/ws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req any = api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-i"}, Env: env, TTY: true}
			if tc.name == "session exec" {
				req = api.SandboxExecRequest{Cmd: []string{"sh", "-i"}, Env: env, TTY: true}
			}
			c := dialWS(ctx, t, d, tc.path, req)
			defer c.CloseNow()
			typed := func(s string) { sendJSON(ctx, t, c, map[string]string{"type": "stdin", "data": s}) }
			readUntil(ctx, t, c, prompt)
			typed("echo $((6*7))\r")
			readUntil(ctx, t, c, "\r\n42\r\n"+prompt)
			typed("stty size\r")
			readUntil(ctx, t, c, "\r\n24 80\r\n"+prompt)
			sendJSON(ctx, t, c, map[string]any{"type": "resize", "rows": 50, "cols": 132})
			typed("stty size\r")
			readUntil(ctx, t, c, "\r\n50 132\r\n"+prompt)
			for _, interrupt := range []func(){
				func() { typed("\x03") },
				func() { sendJSON(ctx, t, c, map[string]string{"type": "signal", "signal": "SIGINT"}) },
			} {
				const marker = "613.7"
				typed("sleep " + marker + "\r")
				testdaemon.WaitUntil(t, "the sleep", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) > 0 })
				interrupt()
				readUntil(ctx, t, c, prompt)
				testdaemon.WaitUntil(t, "the sleep to end", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) == 0 })
			}
			typed("exit 5\r")
			res, _ := readResult(ctx, t, c)
			if res.Type != "result" || res.Run == nil || res.Run.ExitCode != 5 || res.Run.Stderr != "" || !strings.Contains(res.Run.Stdout, "50 132") {
				t.Fatalf("result %.600s", res.line)
			}
		})
	}
	t.Run("Ctrl-D", func(t *testing.T) {
		c := dialWS(ctx, t, d, "/v1/execute/ws", api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-i"}, Env: env, TTY: true})
		defer c.CloseNow()
		readUntil(ctx, t, c, prompt)
		sendJSON(ctx, t, c, map[string]string{"type": "close_stdin"})
		res, _ := readResult(ctx, t, c)
		if res.Type != "result" || res.Status != "ok" {
			t.Fatalf("result %.600s", res.line)
		}
	})
	t.Run("stdout events only", func(t *testing.T) {
		c := dialWS(ctx, t, d, "/v1/execute/ws", api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, TTY: true})
		defer c.CloseNow()
		var kinds []string
		for {
			ev := readEvent(ctx, t, c)
			if ev.Type == "result" {
				break
			}
			kinds = append(kinds, ev.Type)
		}
		b, _ := json.Marshal(kinds)
		for _, k := range kinds {
			if k != "stdout" {
				t.Fatalf("events %s: all output is stdout on a terminal", b)
			}
		}
	})
}
