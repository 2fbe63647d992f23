package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// readUntil reads events until the stdout seen so far contains want; it
// returns that stdout.
func readUntil(ctx context.Context, t *testing.T, c *websocket.Conn, want string) string {
	t.Helper()
	var out strings.Builder
	for !strings.Contains(out.String(), want) {
		ev := readEvent(ctx, t, c)
		if ev.Type == "result" || ev.Type == "error" {
			t.Fatalf("waiting for %q, the run ended: %.400s (stdout so far %q)", want, ev.line, out.String())
		}
		if ev.Type == "stdout" {
			out.WriteString(ev.Data)
		}
	}
	return out.String()
}

// readResult reads events up to the result; it returns the result and the
// stdout of the events before it.
func readResult(ctx context.Context, t *testing.T, c *websocket.Conn) (event, string) {
	t.Helper()
	var out strings.Builder
	for {
		ev := readEvent(ctx, t, c)
		switch ev.Type {
		case "stdout":
			out.WriteString(ev.Data)
		case "result", "error":
			return ev, out.String()
		}
	}
}

// TestWebSocketSignals: a client's signal reaches the running program (a
// shell's trap runs, a sleep dies of SIGKILL), in one-shot runs and
// session execs; the result tells how the program ended; a signal the
// daemon does not allow is ignored.
func TestWebSocketSignals(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	trap := func(sig string, code int) []string {
		return []string{"sh", "-c", "trap 'echo got " + sig + "; exit " + string(rune('0'+code)) + "' " + sig + "; echo ready; while :; do sleep 0.1; done"}
	}
	paths := []struct{ name, path string }{
		{"execute", "/v1/execute/ws"},
		{"session exec", "/v1/sandboxes/" + sb.ID + "/exec/ws"},
	}
	for _, tc := range []struct {
		name     string
		cmd      []string
		signal   string
		stdin    string // sent after the signal
		wantOut  string
		wantCode int
		wantSig  string // the result's signal, "" for none
		status   api.Status
	}{
		{"trapped SIGINT", trap("INT", 3), "SIGINT", "", "ready\ngot INT\n", 3, "", api.StatusRuntimeError},
		{"trapped SIGTERM", trap("TERM", 4), "SIGTERM", "", "ready\ngot TERM\n", 4, "", api.StatusRuntimeError},
		{"SIGKILL of a sleep", []string{"sh", "-c", "echo ready; exec sleep 100"}, "SIGKILL", "", "ready\n", 137, "SIGKILL", api.StatusRuntimeError},
		// The program leads its process group: the shell's child gets
		// SIGINT too, as from a terminal's Ctrl-C.
		{"SIGINT to the group", []string{"sh", "-c", "echo ready; sleep 100; echo not reached"}, "SIGINT", "", "ready\n", 130, "SIGINT", api.StatusRuntimeError},
		{"a signal not allowed is ignored", []string{"sh", "-c", "echo ready; read x; echo got $x"}, "SIGSEGV", "line\n", "ready\ngot line\n", 0, "", api.StatusOK},
	} {
		for _, p := range paths {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				var req any = api.ExecuteRequest{Image: "busybox", Cmd: tc.cmd}
				if p.name == "session exec" {
					req = api.SandboxExecRequest{Cmd: tc.cmd}
				}
				c := dialWS(ctx, t, d, p.path, req)
				defer c.CloseNow()
				out := readUntil(ctx, t, c, "ready\n")
				sendJSON(ctx, t, c, map[string]string{"type": "signal", "signal": tc.signal})
				if tc.stdin != "" {
					sendJSON(ctx, t, c, map[string]string{"type": "stdin", "data": tc.stdin})
				}
				res, rest := readResult(ctx, t, c)
				out += rest
				if res.Type != "result" || res.Run == nil {
					t.Fatalf("last event %.400s", res.line)
				}
				sig := ""
				if res.Run.Signal != nil {
					sig = *res.Run.Signal
				}
				if out != tc.wantOut || res.Run.Stdout != tc.wantOut || res.Run.ExitCode != tc.wantCode || sig != tc.wantSig || res.Status != string(tc.status) {
					t.Errorf("stdout %q (result %q), exit %d, signal %q, status %s; want %q, %d, %q, %s",
						out, res.Run.Stdout, res.Run.ExitCode, sig, res.Status, tc.wantOut, tc.wantCode, tc.wantSig, tc.status)
				}
				if res.Run.WallTimeMS > 30_000 {
					t.Errorf("the run took %.0f ms: the signal did not end it", res.Run.WallTimeMS)
				}
			})
		}
	}
}
