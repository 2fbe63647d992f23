package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
)

// A streaming answer ("stream": true) is NDJSON: one event per line,
// written and flushed as the program's output is read, then one result
// event holding exactly the object the plain answer would have held. The
// status line goes out with the first event, so an error found before the
// program wrote anything (a bad request, a busy daemon, an unknown image)
// is still an ordinary error answer; after it, an error is an event.

// ndjsonType is the streaming answer's Content-Type.
const ndjsonType = "application/x-ndjson"

// eventStream writes one streaming answer. The program's two streams are
// read by two goroutines: writes are serialized here.
type eventStream struct {
	mu      sync.Mutex
	start   func()             // sends the status line, before the first event
	sink    func([]byte) error // writes and flushes one event
	started bool
	gone    bool // a write failed: the client left (its context ends the run)
	// Stdin, when set, is the program's input as the client sends it (a
	// WebSocket's); nil: the request's stdin.
	Stdin io.Reader
	// Control, when set, carries the client's signals and resizes (a
	// WebSocket's); nil: the program gets none.
	Control <-chan runtime.Control
}

// newEventStream streams an HTTP answer as NDJSON.
func newEventStream(w http.ResponseWriter) *eventStream {
	rc := http.NewResponseController(w)
	return &eventStream{
		start: func() {
			w.Header().Set("Content-Type", ndjsonType)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
		},
		sink: func(line []byte) error {
			// net/http buffers the two writes; one flush sends them.
			if _, err := w.Write(line); err != nil {
				return err
			}
			if _, err := w.Write(newline); err != nil {
				return err
			}
			return rc.Flush()
		},
	}
}

var newline = []byte{'\n'}

// send writes one event and flushes it.
func (e *eventStream) send(line []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return
	}
	if !e.started {
		e.started = true
		e.start()
	}
	if err := e.sink(line); err != nil {
		e.gone = true
	}
}

// begun reports whether the status line has gone out.
func (e *eventStream) begun() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// event sends v as one line.
func (e *eventStream) event(v any) {
	line, err := json.Marshal(v)
	if err == nil {
		e.send(line)
	}
}

// result sends the final event: {"type":"result", ...v's fields}.
func (e *eventStream) result(v any) {
	body, err := json.Marshal(v)
	if err != nil || len(body) < 2 || body[0] != '{' {
		e.fail(&apiError{http.StatusInternalServerError, api.CodeInternal, "encoding the result failed"})
		return
	}
	line := []byte(`{"type":"result"`)
	if len(body) > 2 {
		line = append(line, ',')
	}
	e.send(append(line, body[1:]...))
}

// fail sends an error event: the status line is gone, so the error is the
// stream's last line.
func (e *eventStream) fail(ae *apiError) {
	e.event(struct {
		Type  string          `json:"type"`
		Error api.ErrorDetail `json:"error"`
	}{"error", api.ErrorDetail{Code: ae.code, Message: ae.message}})
}

// outputEvents turns one of the program's streams into events. A
// multi-byte character split between two reads is held back until it is
// whole, never sent in halves; bytes that are not UTF-8 go as base64.
type outputEvents struct {
	s       *eventStream
	kind    string // "stdout" or "stderr"
	pending []byte // the start of a character not yet whole
	line    []byte // the last event's buffer, reused
}

func (o *outputEvents) Write(p []byte) (int, error) {
	data := p
	if len(o.pending) > 0 {
		// Rare: only after a read that ended inside a character. The
		// usual read is sent from the reader's own buffer, uncopied.
		data = append(o.pending, p...)
	}
	cut := len(data) - partialRune(data)
	o.emit(data[:cut])
	o.pending = bytes.Clone(data[cut:])
	// Never an error: the run goes on until its context ends, and the
	// capture keeps the whole output for the result.
	return len(p), nil
}

// close sends what is held back: the stream ended inside a character.
func (o *outputEvents) close() {
	o.emit(o.pending)
	o.pending = nil
}

// emit sends b as one event. The line is built by hand: output is the
// bulk of a stream, and encoding/json would copy it and escape HTML
// characters on top of what JSON needs.
func (o *outputEvents) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	line := append(o.line[:0], `{"type":"`...)
	line = append(line, o.kind...)
	line = append(line, `","data":"`...)
	if utf8.Valid(b) {
		line = append(appendJSONText(line, b), `"}`...)
	} else {
		line = base64.StdEncoding.AppendEncode(line, b)
		line = append(line, `","encoding":"base64"}`...)
	}
	o.line = line
	o.s.send(line)
}

// appendJSONText appends valid UTF-8 text to dst as the inside of a JSON
// string: quote, backslash and control characters escaped (RFC 8259),
// everything else as it is.
func appendJSONText(dst, text []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i, c := range text {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, text[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(dst, text[start:]...)
}

// partialRune is how many bytes at the end of b begin a UTF-8 character
// that is not whole yet (0 when b ends on a boundary or on bytes that can
// never become one).
func partialRune(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return len(b) - i
			}
			return 0
		}
	}
	return 0
}

// Stage sends a language request's stage event (languages.Events).
func (e *eventStream) Stage(name string, index int) {
	e.event(struct {
		Type  string `json:"type"`
		Stage string `json:"stage"`
		Index int    `json:"index"`
	}{"stage", name, index})
}

// Output is outputs, for languages.Events.
func (e *eventStream) Output() (stdout, stderr io.Writer, flush func()) { return e.outputs() }

// outputs are the writers of a streaming run's two streams; flush sends
// what they hold back once the run has ended, before the result.
func (e *eventStream) outputs() (stdout, stderr io.Writer, flush func()) {
	o, er := &outputEvents{s: e, kind: "stdout"}, &outputEvents{s: e, kind: "stderr"}
	return o, er, func() { o.close(); er.close() }
}
