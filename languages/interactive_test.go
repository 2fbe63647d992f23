package languages

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/limits"
)

// side is a stand-in for one sandbox's program: it gets its own copies of
// the stdin and stdout it was given, as a sandbox does, and returns how
// it ended.
type side func(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result

// pairRunner runs the program (image "prog") and the interactor (image
// "inter") of an interactive test as goroutines over the real exchange.
type pairRunner struct {
	prog, inter side
	slots       int // Together calls
}

func (r *pairRunner) RunStage(context.Context, execution.Stage) (*execution.Output, error) {
	return nil, errors.New("an interactive test runs its stages together")
}

func (r *pairRunner) Together(ctx context.Context, fn func(run func(context.Context, execution.Stage) (*execution.Output, error)) error) error {
	r.slots++
	return fn(func(ctx context.Context, st execution.Stage) (*execution.Output, error) {
		s := r.prog
		if st.Image == "inter" {
			s = r.inter
		}
		in, out := dupFile(st.StdinFile), dupFile(st.StdoutFile)
		defer in.Close()
		defer out.Close()
		st.Started()
		res := s(ctx, bufio.NewReader(in), out)
		return &execution.Output{Result: res}, nil
	})
}

func dupFile(f *os.File) *os.File {
	fd, err := dupCloexec(int(f.Fd()))
	if err != nil {
		panic(err)
	}
	return os.NewFile(uintptr(fd), f.Name())
}

var (
	okResult   = &api.Result{Status: "ok"}
	wallResult = &api.Result{Status: "wall_time_limit"}
	canceled   = &api.Result{Status: "internal_error", Error: "run canceled"}
)

func exited(code int, stderr string) *api.Result {
	return &api.Result{Status: "runtime_error", ExitCode: code, Stderr: stderr}
}

// guesser asks for 7 until told "=", then answers.
func guesser(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result {
	fmt.Fprintln(out, "? 7")
	if line, err := in.ReadString('\n'); err != nil || line != "=\n" {
		return exited(1, "")
	}
	fmt.Fprintln(out, "! 7")
	return okResult
}

// judge7 accepts "? 7" then "! 7".
func judge7(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result {
	if line, _ := in.ReadString('\n'); line != "? 7\n" {
		return exited(1, "expected a query")
	}
	fmt.Fprintln(out, "=")
	if line, _ := in.ReadString('\n'); line != "! 7\n" {
		return exited(1, "wrong guess")
	}
	return &api.Result{Status: "ok", Stderr: "guessed\n"}
}

// hangs until the daemon ends it.
func hangs(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result {
	<-ctx.Done()
	return canceled
}

// rejects at once.
func rejects(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result {
	return exited(1, "too many queries")
}

// timesOut waits for the end of its input, or its wall time.
func timesOut(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result {
	time.Sleep(50 * time.Millisecond)
	return wallResult
}

// readsToEnd reads until the end of its input, then says so.
func readsToEnd(ctx context.Context, in *bufio.Reader, out *os.File) *api.Result {
	for {
		if _, err := in.ReadString('\n'); err != nil {
			return exited(1, "unexpected end of the program's output")
		}
	}
}

func TestRunInteractive(t *testing.T) {
	tests := []struct {
		name        string
		prog, inter side
		record      bool
		want        string
		message     string
		ended       string // "program", "interactor": the side the daemon ended
		transcript  *api.Transcript
	}{
		{"accepted", guesser, judge7, false, "accepted", "guessed", "", nil},
		{"recorded", guesser, judge7, true, "accepted", "guessed", "", &api.Transcript{FromProgram: "? 7\n! 7\n", ToProgram: "=\n"}},
		// The program's end is the interactor's end of input.
		{"program out of time", timesOut, readsToEnd, false, "wall_time_limit", "unexpected end", "", nil},
		{"interactor hangs after the program failed", timesOut, hangs, false, "wall_time_limit", "", "interactor", nil},
		{"program hangs after a rejection", hangs, rejects, false, "wrong_answer", "too many queries", "program", nil},
	}
	for _, tt := range tests {
		r := &pairRunner{prog: tt.prog, inter: tt.inter}
		req := &Request{Limits: limits.Set{OutputBytes: 64}, Interactor: &Interactor{Aux: Aux{Language: &Language{Image: "inter"}}, Record: tt.record}}
		start := time.Now()
		tr, err := runInteractive(context.Background(), r, req, 0, Test{Stdin: "7"}, execution.Stage{Image: "prog"})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if took := time.Since(start); took > endGrace+2*time.Second {
			t.Errorf("%s: took %v", tt.name, took)
		}
		if tr.Status != tt.want || !strings.Contains(tr.Message, tt.message) {
			t.Errorf("%s: %s %q, want %s %q", tt.name, tr.Status, tr.Message, tt.want, tt.message)
		}
		if r.slots != 1 {
			t.Errorf("%s: %d admissions, want one for the pair", tt.name, r.slots)
		}
		progEnded := tr.Run.Error != "" && tr.Run.Error != "run canceled"
		interEnded := tr.Interactor.Error != "" && tr.Interactor.Error != "run canceled"
		if progEnded != (tt.ended == "program") || interEnded != (tt.ended == "interactor") {
			t.Errorf("%s: program %q, interactor %q: want the daemon to have ended %q", tt.name, tr.Run.Error, tr.Interactor.Error, tt.ended)
		}
		switch {
		case tt.transcript == nil && tr.Transcript != nil:
			t.Errorf("%s: a transcript without record", tt.name)
		case tt.transcript != nil && (tr.Transcript == nil || *tr.Transcript != *tt.transcript):
			t.Errorf("%s: transcript %+v, want %+v", tt.name, tr.Transcript, tt.transcript)
		}
	}
}
