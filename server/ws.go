package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/runtime"
)

// Interactive runs over WebSocket (GET /v1/execute/ws and GET
// /v1/sandboxes/{id}/exec/ws): the client's first message is the request,
// the POST's JSON body; then it may send stdin while the program runs, and
// it gets the streaming answer's events (stream.go) as text messages, the
// result last, then a normal close. Access and the user's admission are
// checked before the upgrade, as for the POST. Both ways are bounded: an
// event is written before the program's next output is read, and a stdin
// message is taken only once the program has read the one before, through
// its 64 KiB pipe.

const (
	// wsPingEvery and wsPongWithin detect a half-open client: its run ends
	// within their sum of the client's going silent.
	wsPingEvery  = 10 * time.Second
	wsPongWithin = 15 * time.Second
	// wsRequestWithin bounds the wait for the request message.
	wsRequestWithin = 30 * time.Second
)

// clientMessage is what a client sends after the request, as text; a
// binary message is raw stdin bytes.
type clientMessage struct {
	Type   string `json:"type"` // "stdin", "close_stdin", "signal" or "resize"
	Data   string `json:"data"`
	Signal string `json:"signal"`
	Rows   int    `json:"rows"`
	Cols   int    `json:"cols"`
}

// wsSignals are the signals a client may send its program, by name: the
// ones a terminal's user or a supervisor sends. Anything else is ignored,
// as every message the daemon does not know is.
var wsSignals = map[string]unix.Signal{
	"SIGHUP": unix.SIGHUP, "SIGINT": unix.SIGINT, "SIGQUIT": unix.SIGQUIT, "SIGKILL": unix.SIGKILL,
	"SIGUSR1": unix.SIGUSR1, "SIGUSR2": unix.SIGUSR2, "SIGALRM": unix.SIGALRM, "SIGTERM": unix.SIGTERM,
	"SIGCONT": unix.SIGCONT, "SIGSTOP": unix.SIGSTOP, "SIGTSTP": unix.SIGTSTP, "SIGWINCH": unix.SIGWINCH,
}

// wsControlQueue bounds the signals and resizes waiting for the program
// (sent before it starts, or faster than they are applied); more are
// dropped rather than held or allowed to stall the client's stdin.
const wsControlQueue = 16

// wsSession is one upgraded connection.
type wsSession struct {
	c      *websocket.Conn
	ctx    context.Context // the run's: ends when the client goes
	cancel context.CancelFunc
	stdin  *io.PipeReader // the program's stdin
	feed   *io.PipeWriter
	// control carries the client's signals and resizes to the run.
	control chan runtime.Control
}

// upgrade accepts the WebSocket and reads the request message into v. On
// error the client has its answer: an HTTP error before the upgrade, an
// error event and a close after it.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, v any) (*wsSession, error) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil, invalid("not a WebSocket upgrade: " + err.Error())
	}
	c.SetReadLimit(s.MaxBody)
	// The hijacked request's context no longer ends with the client: the
	// session's does (readClient, keepAlive).
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	pr, pw := io.Pipe()
	ws := &wsSession{c: c, ctx: ctx, cancel: cancel, stdin: pr, feed: pw, control: make(chan runtime.Control, wsControlQueue)}
	// The request must come soon: the caller's admission is held already.
	first, cancelFirst := context.WithTimeout(ctx, wsRequestWithin)
	_, msg, err := c.Read(first)
	cancelFirst()
	if err != nil {
		// The client's doing (too large, too late, gone), never a 500.
		err = invalid("reading the request message: " + err.Error())
	} else {
		err = decodeMessage(msg, v)
	}
	if err != nil {
		ws.end(ws.events(), classify(err))
		return nil, err
	}
	go ws.readClient()
	go ws.keepAlive()
	return ws, nil
}

// decodeMessage reads exactly one JSON object, refusing unknown fields.
func decodeMessage(msg []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("malformed JSON request message: " + err.Error())
	}
	if dec.More() {
		return invalid("malformed JSON request message: data after the object")
	}
	return nil
}

// readClient feeds the client's stdin to the program until the client
// closes stdin or goes; a client that goes ends the run.
func (ws *wsSession) readClient() {
	defer ws.cancel()
	for {
		m, err := ws.nextMessage()
		if err != nil {
			ws.feed.Close()
			return
		}
		switch m.Type {
		case "stdin":
			// Blocks while the program does not read; fails once its
			// stdin is closed, and the data is dropped.
			_, _ = ws.feed.Write([]byte(m.Data))
		case "close_stdin":
			ws.feed.Close()
		case "signal", "resize":
			ws.control1(m)
		}
	}
}

// nextMessage reads the client's next message of ours: a binary message is
// stdin bytes; text that is not JSON is skipped.
func (ws *wsSession) nextMessage() (clientMessage, error) {
	for {
		typ, msg, err := ws.c.Read(ws.ctx)
		if err != nil {
			return clientMessage{}, err
		}
		if typ == websocket.MessageBinary {
			return clientMessage{Type: "stdin", Data: string(msg)}, nil
		}
		var m clientMessage
		if json.Unmarshal(msg, &m) == nil {
			return m, nil
		}
	}
}

// control1 queues a signal or a resize for the run; one that is not valid
// (an unknown signal, a size out of bounds) is ignored.
func (ws *wsSession) control1(m clientMessage) {
	var c runtime.Control
	if m.Type == "signal" {
		sig, ok := wsSignals[m.Signal]
		if !ok {
			return
		}
		c.Signal = sig
	} else {
		size, err := terminalSize(true, m.Rows, m.Cols)
		if err != nil || m.Rows == 0 || m.Cols == 0 {
			return
		}
		c.Resize = size
	}
	select {
	case ws.control <- c:
	default:
	}
}

// keepAlive pings the client; one that does not answer ends the run.
func (ws *wsSession) keepAlive() {
	t := time.NewTicker(wsPingEvery)
	defer t.Stop()
	for {
		select {
		case <-ws.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(ws.ctx, wsPongWithin)
			err := ws.c.Ping(ctx)
			cancel()
			if err != nil {
				ws.cancel()
				return
			}
		}
	}
}

// events is the streaming answer over the WebSocket, its program's stdin
// the client's.
func (ws *wsSession) events() *eventStream {
	return &eventStream{started: true, Stdin: ws.stdin, Control: ws.control, sink: func(line []byte) error {
		return ws.c.Write(ws.ctx, websocket.MessageText, line)
	}}
}

// end sends the last event (the error, when there is one: the result was
// sent by the caller) and closes the connection.
func (ws *wsSession) end(stream *eventStream, ae *apiError) {
	defer ws.cancel()
	ws.stdin.Close() // the program's input ends with the session
	code := websocket.StatusNormalClosure
	if ae != nil {
		stream.fail(ae)
		code = websocket.StatusPolicyViolation
		if ae.status >= 500 {
			code = websocket.StatusInternalError
		}
	}
	_ = ws.c.Close(code, "")
}

// answerWS ends an interactive call as answer ends a streaming one.
func (s *Server) answerWS(ws *wsSession, stream *eventStream, r *http.Request, rec *execRecord, resp any, err error) {
	if err != nil {
		ae := classify(err)
		if ae.status >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		s.noteError(rec, ae)
		ws.end(stream, ae)
		return
	}
	stream.result(resp)
	ws.end(stream, nil)
}
