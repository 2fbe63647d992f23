package languages_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// terminal is a WebSocket run on a terminal, read as a user reads it.
type terminal struct {
	t   *testing.T
	ctx context.Context
	c   *websocket.Conn
	out strings.Builder // everything shown since the last expect
}

func openTerminal(ctx context.Context, t *testing.T, d *testdaemon.Daemon, req api.ExecuteRequest) *terminal {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws://sandboxd/v1/execute/ws", &websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c.SetReadLimit(1 << 24)
	term := &terminal{t: t, ctx: ctx, c: c}
	term.send(req)
	return term
}

func (term *terminal) send(v any) {
	term.t.Helper()
	b, _ := json.Marshal(v)
	if err := term.c.Write(term.ctx, websocket.MessageText, b); err != nil {
		term.t.Fatal(err)
	}
}

func (term *terminal) typed(s string) { term.send(map[string]string{"type": "stdin", "data": s}) }

// expect reads the terminal until want shows and forgets it and what came
// before; the result event fails it.
func (term *terminal) expect(want string) {
	term.t.Helper()
	for !strings.Contains(term.out.String(), want) {
		ev := term.next()
		if ev.Type != "stdout" {
			var run api.Result
			if ev.Run != nil {
				run = *ev.Run
			}
			term.t.Fatalf("waiting for %q: event %+v (run %+v); the terminal showed %q", want, ev, run, term.out.String())
		}
		term.out.WriteString(ev.Data)
	}
	// Keep what came after want, in the same event.
	rest := term.out.String()
	rest = rest[strings.Index(rest, want)+len(want):]
	term.out.Reset()
	term.out.WriteString(rest)
}

type ttyEvent struct {
	Type, Data, Encoding, Status string
	Run                          *api.Result
}

func (term *terminal) next() ttyEvent {
	term.t.Helper()
	_, msg, err := term.c.Read(term.ctx)
	if err != nil {
		term.t.Fatalf("reading: %v; the terminal showed %q", err, term.out.String())
	}
	var ev ttyEvent
	if err := json.Unmarshal(msg, &ev); err != nil || ev.Encoding != "" {
		term.t.Fatalf("event %q", msg)
	}
	return ev
}

// result reads up to the result event.
func (term *terminal) result() ttyEvent {
	term.t.Helper()
	for {
		if ev := term.next(); ev.Type != "stdout" {
			return ev
		}
	}
}

// TestREPLsOnATerminal: python3 -i, node and bash run interactively on a
// terminal: a prompt, a line typed and its answer, Ctrl-C interrupting a
// running statement (KeyboardInterrupt) or the line being typed, and
// Ctrl-D (close_stdin) ending the REPL. Language mode runs its program on
// a terminal too; "tty" with "tests" is refused.
func TestREPLsOnATerminal(t *testing.T) {
	d := startWithImages(t, "python", "node", "bash")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Run("python3 -i", func(t *testing.T) { replPython(ctx, t, d) })
	t.Run("node", func(t *testing.T) { replNode(ctx, t, d) })
	t.Run("bash -i", func(t *testing.T) { replBash(ctx, t, d) })
	t.Run("language mode", func(t *testing.T) { ttyLanguageMode(ctx, t, d) })
	t.Run("tty with tests is refused", func(t *testing.T) { ttyWithTestsRefused(ctx, t, d) })
}

func replPython(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	term := openTerminal(ctx, t, d, api.ExecuteRequest{Image: "lang/python:3", Cmd: []string{"python3", "-i"}, TTY: true, Rows: 40, Cols: 120})
	defer term.c.CloseNow()
	term.expect(">>> ")
	term.typed("print(6*7)\r")
	term.expect("42\r\n>>> ")
	term.typed("import os; print(os.get_terminal_size())\r")
	term.expect("os.terminal_size(columns=120, lines=40)")
	term.send(map[string]any{"type": "resize", "rows": 33, "cols": 77})
	term.typed("print(os.get_terminal_size())\r")
	term.expect("os.terminal_size(columns=77, lines=33)")
	term.typed("import time; time.sleep(100)\r")
	time.Sleep(300 * time.Millisecond) // the statement runs
	term.typed("\x03")
	term.expect("KeyboardInterrupt")
	term.expect(">>> ")
	term.typed("print('still here')\r")
	term.expect("still here\r\n>>> ")
	term.send(map[string]string{"type": "close_stdin"})
	if res := term.result(); res.Type != "result" || res.Status != "ok" {
		t.Fatalf("result %+v", res)
	}
}

func replNode(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	term := openTerminal(ctx, t, d, api.ExecuteRequest{Image: "lang/node:18", Cmd: []string{"node"}, TTY: true})
	defer term.c.CloseNow()
	term.expect("> ")
	term.typed("6*7\r")
	term.expect("42")
	term.typed("\x03")
	term.expect("press Ctrl+C again")
	term.typed(".exit\r")
	if res := term.result(); res.Type != "result" || res.Status != "ok" {
		t.Fatalf("result %+v", res)
	}
}

func replBash(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	term := openTerminal(ctx, t, d, api.ExecuteRequest{Image: "lang/bash:5.2", Cmd: []string{"bash", "--norc", "-i"},
		Env: map[string]string{"PS1": "BASH> "}, TTY: true})
	defer term.c.CloseNow()
	term.expect("BASH> ")
	term.typed("echo $((6*7))\r")
	term.expect("42\r\nBASH> ")
	term.typed("sleep 100\r")
	time.Sleep(300 * time.Millisecond)
	term.typed("\x03")
	term.expect("BASH> ")
	term.typed("exit 9\r")
	if res := term.result(); res.Type != "result" || res.Run == nil || res.Run.ExitCode != 9 {
		t.Fatalf("result %+v", res)
	}
}

func ttyLanguageMode(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	term := openTerminal(ctx, t, d, api.ExecuteRequest{Language: "python", TTY: true, Files: []api.File{{Name: "main.py",
		Content: "import sys\nname = input('name? ')\nprint('hello', name, sys.stdin.isatty(), sys.stdout.isatty())\n"}}})
	defer term.c.CloseNow()
	for {
		if ev := term.next(); ev.Type == "stdout" {
			term.out.WriteString(ev.Data)
			break
		}
	}
	term.expect("name? ")
	term.typed("ada\r")
	term.expect("hello ada True True\r\n")
	if res := term.result(); res.Type != "result" || res.Status != "ok" {
		t.Fatalf("result %+v", res)
	}
}

func ttyWithTestsRefused(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	body := `{"language":"python","tty":true,"files":[{"name":"main.py","content":"print(1)"}],"tests":[{"stdin":"","expected_stdout":"1\n"}]}`
	resp, err := testdaemon.HTTPClient(d.Socket).Post("http://sandboxd/v1/execute", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}
