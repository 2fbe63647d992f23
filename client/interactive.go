package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
)

// Interactive is a run over the daemon's WebSocket (docs/api.md,
// "Interactive runs"): the program's input is sent while it runs, and its
// output comes as events, the result last. Its methods may be called
// concurrently, except Next.
type Interactive struct {
	conn *websocket.Conn
}

// Event is one event of an interactive run.
type Event struct {
	Type     string           `json:"type"` // stdout, stderr, stage, result or error
	Data     string           `json:"data,omitempty"`
	Encoding string           `json:"encoding,omitempty"`
	Stage    string           `json:"stage,omitempty"`
	Index    int              `json:"index,omitempty"`
	Error    *api.ErrorDetail `json:"error,omitempty"`
	// Raw is the whole event as sent; a result's fields are in it.
	Raw []byte `json:"-"`
}

// Bytes returns an output event's bytes, decoded from base64 when so sent.
func (e *Event) Bytes() ([]byte, error) {
	if e.Encoding == "base64" {
		return base64.StdEncoding.DecodeString(e.Data)
	}
	return []byte(e.Data), nil
}

// Result decodes a result event into v (an api.ExecuteResponse, or an
// api.LanguageResponse in language mode).
func (e *Event) Result(v any) error { return json.Unmarshal(e.Raw, v) }

// maxEvent bounds one event read: the result holds both outputs and the
// collected files, each within the daemon's caps.
const maxEvent = 256 << 20

// ExecuteInteractive starts POST /v1/execute's request over the WebSocket
// (GET /v1/execute/ws).
func (c *Client) ExecuteInteractive(ctx context.Context, req *api.ExecuteRequest) (*Interactive, error) {
	return c.dialInteractive(ctx, "/v1/execute/ws", req)
}

// ExecInteractive starts a session exec over the WebSocket (GET
// /v1/sandboxes/{id}/exec/ws).
func (c *Client) ExecInteractive(ctx context.Context, id string, req *api.SandboxExecRequest) (*Interactive, error) {
	return c.dialInteractive(ctx, "/v1/sandboxes/"+url.PathEscape(id)+"/exec/ws", req)
}

func (c *Client) dialInteractive(ctx context.Context, path string, req any) (*Interactive, error) {
	// http://host → ws://host, https://host → wss://host.
	u := "ws" + strings.TrimPrefix(c.base, "http") + path
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		if apiErr := upgradeRefusal(resp); apiErr != nil {
			return nil, apiErr
		}
		return nil, fmt.Errorf("connecting to the daemon: %w", err)
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
	return &Interactive{conn: conn}, nil
}

// upgradeRefusal is the API error of a refused upgrade (401, 403, 429, ...),
// nil when the answer is not one.
func upgradeRefusal(resp *http.Response) error {
	if resp == nil || resp.StatusCode < 400 || resp.Body == nil {
		return nil
	}
	data, _ := io.ReadAll(resp.Body) // at most 1024 bytes: websocket.Dial's rule
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		return nil
	}
	return &Error{HTTPStatus: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
}

// Next returns the next event. After the result or an error event the
// daemon closes the connection: a further Next fails.
func (s *Interactive) Next(ctx context.Context) (*Event, error) {
	_, msg, err := s.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	ev := &Event{Raw: msg}
	if err := json.Unmarshal(msg, ev); err != nil {
		return nil, fmt.Errorf("an event that is not JSON: %w", err)
	}
	if ev.Type == "" {
		return nil, errors.New("an event without a type")
	}
	return ev, nil
}

// Stdin sends p to the program's standard input (or its terminal).
func (s *Interactive) Stdin(ctx context.Context, p []byte) error {
	return s.conn.Write(ctx, websocket.MessageBinary, p)
}

// CloseStdin ends the program's input (on a terminal: types Ctrl-D).
func (s *Interactive) CloseStdin(ctx context.Context) error {
	return s.send(ctx, map[string]string{"type": "close_stdin"})
}

// Signal sends the program a signal by name ("SIGINT"; docs/api.md lists
// the ones allowed).
func (s *Interactive) Signal(ctx context.Context, name string) error {
	return s.send(ctx, map[string]string{"type": "signal", "signal": name})
}

// Resize sets the program's terminal's size.
func (s *Interactive) Resize(ctx context.Context, rows, cols int) error {
	return s.send(ctx, map[string]any{"type": "resize", "rows": rows, "cols": cols})
}

// Close ends the connection; a run still going ends with it.
func (s *Interactive) Close() error { return s.conn.CloseNow() }

func (s *Interactive) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.conn.Write(ctx, websocket.MessageText, b)
}
