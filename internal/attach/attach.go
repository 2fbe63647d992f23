// Package attach connects this process's standard streams to an interactive
// run (client.Interactive): what is typed goes to the program while it
// runs, its output comes back as it is written. With a terminal, the local
// terminal is put in raw mode for the run (so Ctrl-C, arrows and line
// editing reach the program's terminal, not this one), its size is sent
// and followed, and it is restored however the run ends.
package attach

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/sandboxd/sandboxd/api"
)

// Run is the remote half: a started interactive run.
type Run interface {
	Next() (*api.Event, error)
	Write(p []byte) (int, error)
	CloseStdin() error
	Resize(rows, cols int) error
	Close() error
}

// Streams are the local half.
type Streams struct {
	In       *os.File
	Out, Err io.Writer
}

// Outcome is how the run ended.
type Outcome struct {
	// Result is the result event's run (nil when the run ended in an
	// error event).
	Result *api.Result
	// Status is the answer's status ("ok", "compile_error", ...).
	Status string
	// Error is the error event's cause, when the run ended in one.
	Error *api.ErrorDetail
}

// Size returns the terminal size of f, or ok false when f is no terminal.
func Size(f *os.File) (rows, cols int, ok bool) {
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0, 0, false
	}
	return h, w, true
}

// Attach forwards s to r until the run ends. tty says the run has a
// terminal and s.In is one: it is then raw for the run's length.
func Attach(ctx context.Context, r Run, s Streams, tty bool) (*Outcome, error) {
	defer r.Close()
	if tty {
		old, err := term.MakeRaw(int(s.In.Fd()))
		if err != nil {
			return nil, fmt.Errorf("making the terminal raw: %w", err)
		}
		defer term.Restore(int(s.In.Fd()), old)
		stop := followSize(ctx, r, s.In)
		defer stop()
	}
	go forwardInput(r, s.In)
	return readEvents(r, s)
}

// forwardInput sends what is read from in to the program, then closes its
// stdin at end of file. It stops when the run is over (a write fails).
func forwardInput(r Run, in io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := r.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = r.CloseStdin()
			return
		}
	}
}

// followSize sends the terminal's size now and on every SIGWINCH.
func followSize(ctx context.Context, r Run, f *os.File) (stop func()) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			if rows, cols, ok := Size(f); ok {
				_ = r.Resize(rows, cols)
			}
			select {
			case <-winch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(winch); cancel() }
}

// readEvents writes output events to s until the result or an error.
func readEvents(r Run, s Streams) (*Outcome, error) {
	var out Outcome
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			if out.Result == nil && out.Error == nil {
				return nil, errors.New("the run ended without a result")
			}
			return &out, nil
		}
		if err != nil {
			return nil, err
		}
		switch ev.Type {
		case "stdout", "stderr":
			w := s.Out
			if ev.Type == "stderr" {
				w = s.Err
			}
			if err := writeData(w, ev); err != nil {
				return nil, err
			}
		case "result":
			var res struct {
				Status string      `json:"status"`
				Run    *api.Result `json:"run"`
			}
			if err := json.Unmarshal(ev.Raw, &res); err != nil {
				return nil, fmt.Errorf("decoding the result: %w", err)
			}
			out.Status, out.Result = res.Status, res.Run
		case "error":
			out.Error = ev.Error
		}
	}
}

func writeData(w io.Writer, ev *api.Event) error {
	data := []byte(ev.Data)
	if ev.Encoding == "base64" {
		var err error
		if data, err = base64.StdEncoding.DecodeString(ev.Data); err != nil {
			return fmt.Errorf("decoding output: %w", err)
		}
	}
	_, err := w.Write(data)
	return err
}
