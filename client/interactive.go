package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
)

// Interactive is a run over a WebSocket (GET /v1/execute/ws, GET
// /v1/sandboxes/{id}/exec/ws): the program's stdin is written while it
// runs, and its output comes as events, the result last.
type Interactive struct {
	conn *websocket.Conn
	ctx  context.Context
}

// maxEvent bounds one event read: a result event carries the kept output
// of both streams, JSON-escaped.
const maxEvent = 512 << 20

// ExecuteInteractive starts req (either mode) over a WebSocket. ctx bounds
// the whole run.
func (c *Client) ExecuteInteractive(ctx context.Context, req *api.ExecuteRequest) (*Interactive, error) {
	return c.dialWS(ctx, "/v1/execute/ws", req)
}

// ExecInteractive starts req in sandbox id over a WebSocket.
func (c *Client) ExecInteractive(ctx context.Context, id string, req *api.SandboxExecRequest) (*Interactive, error) {
	return c.dialWS(ctx, sandboxPath(id, "/exec/ws"), req)
}

func (c *Client) dialWS(ctx context.Context, path string, req any) (*Interactive, error) {
	conn, resp, err := websocket.Dial(ctx, c.base+path, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			// Refused before the upgrade: an ordinary API error answer.
			return nil, answerError(resp)
		}
		return nil, fmt.Errorf("sandboxd is not reachable: %w", err)
	}
	conn.SetReadLimit(maxEvent)
	body, err := json.Marshal(req)
	if err == nil {
		err = conn.Write(ctx, websocket.MessageText, body)
	}
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("sending the request: %w", err)
	}
	return &Interactive{conn: conn, ctx: ctx}, nil
}

// answerError decodes an API error answer.
func answerError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		return &Error{HTTPStatus: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return &Error{HTTPStatus: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: string(data)}
}

// Next returns the next event; io.EOF once the daemon has closed the run
// normally (after the result). An error event is returned as an event.
func (i *Interactive) Next() (*api.Event, error) {
	typ, msg, err := i.conn.Read(i.ctx)
	if err != nil {
		if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
			return nil, io.EOF
		}
		if websocket.CloseStatus(err) != -1 {
			// The daemon's error event came before its close.
			return nil, io.EOF
		}
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, errors.New("sandboxd sent a binary message")
	}
	ev := &api.Event{Raw: msg}
	if err := json.Unmarshal(msg, ev); err != nil {
		return nil, fmt.Errorf("decoding an event: %w", err)
	}
	return ev, nil
}

// Write sends p to the program's stdin, as raw bytes.
func (i *Interactive) Write(p []byte) (int, error) {
	if err := i.conn.Write(i.ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseStdin ends the program's stdin: it reads end of file.
func (i *Interactive) CloseStdin() error {
	return i.send(map[string]string{"type": "close_stdin"})
}

// Signal sends the program a signal by name ("SIGINT").
func (i *Interactive) Signal(name string) error {
	return i.send(map[string]string{"type": "signal", "signal": name})
}

// Resize sets the terminal's size (runs with "tty": true).
func (i *Interactive) Resize(rows, cols int) error {
	return i.send(map[string]any{"type": "resize", "rows": rows, "cols": cols})
}

func (i *Interactive) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return i.conn.Write(i.ctx, websocket.MessageText, b)
}

// Close ends the connection; a run still going is killed by the daemon.
func (i *Interactive) Close() error { return i.conn.CloseNow() }
