package server

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/runtime"
)

// A client's signal and resize messages: the allowed ones are queued for
// the run, anything else is ignored, and a full queue drops rather than
// blocks.
func TestClientControlMessages(t *testing.T) {
	size := func(r, c uint16) *runtime.WindowSize { return &runtime.WindowSize{Rows: r, Cols: c} }
	tests := []struct {
		name string
		msg  clientMessage
		want *runtime.Control // nil: ignored
	}{
		{"SIGINT", clientMessage{Type: "signal", Signal: "SIGINT"}, &runtime.Control{Signal: unix.SIGINT}},
		{"SIGKILL", clientMessage{Type: "signal", Signal: "SIGKILL"}, &runtime.Control{Signal: unix.SIGKILL}},
		{"SIGWINCH", clientMessage{Type: "signal", Signal: "SIGWINCH"}, &runtime.Control{Signal: unix.SIGWINCH}},
		{"not allowed", clientMessage{Type: "signal", Signal: "SIGSEGV"}, nil},
		{"no SIG prefix", clientMessage{Type: "signal", Signal: "INT"}, nil},
		{"lower case", clientMessage{Type: "signal", Signal: "sigint"}, nil},
		{"a number", clientMessage{Type: "signal", Signal: "9"}, nil},
		{"resize", clientMessage{Type: "resize", Rows: 50, Cols: 132}, &runtime.Control{Resize: size(50, 132)}},
		{"resize at the bound", clientMessage{Type: "resize", Rows: 1000, Cols: 1}, &runtime.Control{Resize: size(1000, 1)}},
		{"resize without rows", clientMessage{Type: "resize", Cols: 80}, nil},
		{"resize too large", clientMessage{Type: "resize", Rows: 1001, Cols: 80}, nil},
		{"resize negative", clientMessage{Type: "resize", Rows: 24, Cols: -1}, nil},
	}
	for _, tt := range tests {
		ws := &wsSession{control: make(chan runtime.Control, 1)}
		ws.control1(tt.msg)
		select {
		case got := <-ws.control:
			switch {
			case tt.want == nil:
				t.Errorf("%s: queued %+v, want it ignored", tt.name, got)
			case got.Signal != tt.want.Signal || (got.Resize == nil) != (tt.want.Resize == nil) || (got.Resize != nil && *got.Resize != *tt.want.Resize):
				t.Errorf("%s: queued %+v, want %+v", tt.name, got, *tt.want)
			}
		default:
			if tt.want != nil {
				t.Errorf("%s: ignored, want %+v", tt.name, *tt.want)
			}
		}
	}
	ws := &wsSession{control: make(chan runtime.Control, wsControlQueue)}
	for range wsControlQueue + 5 {
		ws.control1(clientMessage{Type: "signal", Signal: "SIGINT"}) // never blocks
	}
	if len(ws.control) != wsControlQueue {
		t.Errorf("queued %d, want %d", len(ws.control), wsControlQueue)
	}
}
