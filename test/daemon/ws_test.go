package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// dialWS opens a WebSocket to path over the daemon's socket and sends the
// request as its first message.
func dialWS(ctx context.Context, t *testing.T, d *testdaemon.Daemon, path string, req any) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws://sandboxd"+path, &websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", path, err, resp)
	}
	b, _ := json.Marshal(req)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	return c
}

// readEvent reads one event message.
func readEvent(ctx context.Context, t *testing.T, c *websocket.Conn) event {
	t.Helper()
	typ, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading an event: %v", err)
	}
	var ev event
	if typ != websocket.MessageText || json.Unmarshal(msg, &ev) != nil {
		t.Fatalf("message %q", msg)
	}
	ev.line = string(msg)
	return ev
}

func sendJSON(ctx context.Context, t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// TestInteractiveOverWebSocket: stdin sent while the program runs gets its
// answer before the next is sent (1,000 lines through cat), raw bytes
// pass as binary messages, closing stdin ends cat, and the result comes
// last, for one-shot runs and session execs.
func TestInteractiveOverWebSocket(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		req        any
	}{
		{"execute", "/v1/execute/ws", api.ExecuteRequest{Image: "busybox", Cmd: []string{"cat"}}},
		{"session exec", "/v1/sandboxes/" + sb.ID + "/exec/ws", api.SandboxExecRequest{Cmd: []string{"cat"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(ctx, t, d, tc.path, tc.req)
			defer c.CloseNow()
			start := time.Now()
			for i := range 1000 {
				line := fmt.Sprintf("line %d\n", i)
				sendJSON(ctx, t, c, map[string]string{"type": "stdin", "data": line})
				if ev := readEvent(ctx, t, c); ev.Type != "stdout" || ev.Data != line {
					t.Fatalf("answer to %q: %s", line, ev.line)
				}
			}
			t.Logf("1,000 round trips through cat: %v", time.Since(start))
			if err := c.Write(ctx, websocket.MessageBinary, []byte("\xff\x00raw\n")); err != nil {
				t.Fatal(err)
			}
			if ev := readEvent(ctx, t, c); ev.Encoding != "base64" || ev.Data != "/wByYXcK" {
				t.Fatalf("raw bytes came back as %s", ev.line)
			}
			sendJSON(ctx, t, c, map[string]string{"type": "close_stdin"})
			last := readEvent(ctx, t, c)
			if last.Type != "result" || last.Status != "ok" || last.Run == nil || last.Run.StdoutEncoding != "base64" {
				t.Fatalf("last event %.300s", last.line)
			}
			// The result keeps the whole output; with the raw bytes in it,
			// it is base64.
			if out, _ := base64.StdEncoding.DecodeString(last.Run.Stdout); !strings.HasPrefix(string(out), "line 0\nline 1\n") || !strings.HasSuffix(string(out), "line 999\n\xff\x00raw\n") {
				t.Errorf("the result's stdout: %.100q", out)
			}
			if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("after the result: %v, want a normal close", err)
			}
		})
	}
	t.Run("a client that goes ends the run", func(t *testing.T) {
		const marker = "618.25"
		c := dialWS(ctx, t, d, "/v1/execute/ws", api.ExecuteRequest{Image: "busybox", Cmd: []string{"sleep", marker}})
		testdaemon.WaitUntil(t, "the sleep", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) > 0 })
		c.CloseNow()
		testdaemon.WaitUntil(t, "the sleep to end with the client", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) == 0 })
	})
	t.Run("a bad request message is an error event and a close", func(t *testing.T) {
		c := dialWS(ctx, t, d, "/v1/execute/ws", map[string]any{"image": "busybox", "nosuch": 1})
		if ev := readEvent(ctx, t, c); ev.Type != "error" || ev.Error == nil || ev.Error.Code != "invalid_request" {
			t.Fatalf("event %s", ev.line)
		}
		if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("after the error: %v", err)
		}
	})
}

// TestWebSocketAccessBeforeUpgrade: a caller the daemon refuses gets its
// 401 in HTTP; the connection never upgrades.
func TestWebSocketAccessBeforeUpgrade(t *testing.T) {
	d := testdaemon.Start(t, append(jwtFlags(t), "--require-auth")...)
	_, resp, err := websocket.Dial(context.Background(), "ws://sandboxd/v1/execute/ws",
		&websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without a token: %v, %v", err, resp)
	}
}
