package languages

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

func sig(name string) *string { return &name }

func TestInteractiveVerdict(t *testing.T) {
	ok := &api.Result{Status: "ok"}
	exit := func(code int, stderr string) *api.Result {
		return &api.Result{Status: "runtime_error", ExitCode: code, Stderr: stderr}
	}
	pipe := &api.Result{Status: "runtime_error", ExitCode: 141, Signal: sig("SIGPIPE")}
	segv := &api.Result{Status: "runtime_error", ExitCode: 139, Signal: sig("SIGSEGV")}
	canceled := &api.Result{Status: "internal_error", Error: "run canceled"}
	tests := []struct {
		name                  string
		prog, inter           *api.Result
		progEnded, interEnded bool
		want, message         string
		fraction              float64
	}{
		{"both ok", ok, ok, false, false, "accepted", "", 0},
		{"interactor says wrong answer", ok, exit(1, "wrong guess\nmore"), false, false, "wrong_answer", "wrong guess", 0},
		{"presentation error", ok, exit(2, "bad token"), false, false, "presentation_error", "bad token", 0},
		{"interactor fails", ok, exit(3, "no such test"), false, false, "checker_error", "no such test", 0},
		{"unknown exit code", ok, exit(5, ""), false, false, "checker_error", "the interactor exited 5", 0},
		{"interactor crashes", ok, segv, false, false, "checker_error", "the interactor ended with runtime_error", 0},
		{"interactor out of time", ok, &api.Result{Status: "wall_time_limit"}, false, false, "checker_error", "the interactor ended with wall_time_limit", 0},
		{"partial", ok, exit(7, "points 0.25 of the queries"), false, false, "partial", "points 0.25 of the queries", 0.25},
		{"partial without the word", ok, exit(7, "0.5"), false, false, "partial", "0.5", 0.5},
		{"partial without points", ok, exit(7, "half"), false, false, "checker_error", "without a fraction from 0 to 1", 0},
		{"partial above 1", ok, exit(7, "points 2"), false, false, "checker_error", "without a fraction from 0 to 1", 0},
		{"program out of time", &api.Result{Status: "wall_time_limit"}, exit(1, "unexpected end"), false, false, "wall_time_limit", "unexpected end", 0},
		{"program out of memory", &api.Result{Status: "memory_limit"}, exit(1, ""), false, false, "memory_limit", "", 0},
		{"program crashes, interactor accepted", segv, ok, false, false, "runtime_error", "", 0},
		{"program exits 1 after the exchange", exit(1, ""), ok, false, false, "runtime_error", "", 0},
		{"SIGPIPE after a rejection", pipe, exit(1, "too many queries"), false, false, "wrong_answer", "too many queries", 0},
		{"exit 1 on EOF after a rejection", exit(1, "EOFError"), exit(1, "too many queries"), false, false, "wrong_answer", "too many queries", 0},
		{"program ended by the daemon after a rejection", canceled, exit(1, "too many queries"), true, false, "wrong_answer", "too many queries", 0},
		{"interactor ended by the daemon after a crash", segv, canceled, false, true, "runtime_error", "", 0},
		{"sandboxd failed the program", &api.Result{Status: "internal_error"}, ok, false, false, "internal_error", "", 0},
	}
	for _, tt := range tests {
		v := interactiveVerdict(tt.prog, tt.inter, tt.progEnded, tt.interEnded)
		if v.status != tt.want || !strings.Contains(v.message, tt.message) {
			t.Errorf("%s: %s %q, want %s %q", tt.name, v.status, v.message, tt.want, tt.message)
		}
		switch {
		case tt.want == "partial" && (v.fraction == nil || *v.fraction != tt.fraction):
			t.Errorf("%s: fraction %v, want %v", tt.name, v.fraction, tt.fraction)
		case tt.want != "partial" && v.fraction != nil:
			t.Errorf("%s: fraction %v, want none", tt.name, *v.fraction)
		}
	}
}

func TestFirstLineIsBounded(t *testing.T) {
	long := strings.Repeat("é", maxMessageBytes) + "\nsecond"
	got := firstLine(long, "")
	if len(got) > maxMessageBytes || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("first line of %d bytes: %d bytes, %q...", len(long), len(got), got[:8])
	}
	if got := firstLine("wrong\r\nmore", ""); got != "wrong" {
		t.Errorf("CRLF: %q", got)
	}
}

// The exchange's two ways: directly, what the program writes is what the
// interactor reads, with no copy; recorded, the same, and kept. Either
// way, once a side's ends are released and its writer closes, the other
// reads the end.
func TestExchange(t *testing.T) {
	for _, record := range []bool{false, true} {
		ex, err := newExchange(record, 8)
		if err != nil {
			t.Fatal(err)
		}
		// Stand-ins for the two sandboxes' descriptors: dups, as a
		// sandbox holds its own copies once the daemon releases its.
		progIn, progOut := dup(t, ex.program[0]), dup(t, ex.program[1])
		interIn, interOut := dup(t, ex.interactor[0]), dup(t, ex.interactor[1])
		ex.releaseProgram()
		ex.releaseInteractor()
		if _, err := progOut.WriteString("? 500\n? 250\n"); err != nil {
			t.Fatal(err)
		}
		progOut.Close()
		got, err := readAllWithin(interIn, 5*time.Second)
		if err != nil || got != "? 500\n? 250\n" {
			t.Errorf("record %v: the interactor read %q, %v", record, got, err)
		}
		interOut.WriteString(">\xff\n") // not UTF-8: the transcript carries it as base64
		interOut.Close()
		if got, err := readAllWithin(progIn, 5*time.Second); err != nil || got != ">\xff\n" {
			t.Errorf("record %v: the program read %q, %v", record, got, err)
		}
		ex.close()
		tr := ex.transcript()
		switch {
		case !record && tr != nil:
			t.Errorf("a transcript without record: %+v", tr)
		case record && (tr == nil || tr.FromProgram != "? 500\n? " || tr.FromProgramEncoding != "" || !tr.Truncated):
			t.Errorf("transcript %+v, want 8 bytes from the program as text, cut", tr)
		case record && (tr.ToProgram != "Pv8K" || tr.ToProgramEncoding != "base64"):
			t.Errorf("transcript %+v, want \">\\xff\\n\" to the program in base64", tr)
		}
		progIn.Close()
		interIn.Close()
	}
}

func dup(t *testing.T, f *os.File) *os.File {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nf *os.File
	rc.Control(func(fd uintptr) {
		nfd, err := dupCloexec(int(fd))
		if err != nil {
			t.Fatal(err)
		}
		nf = os.NewFile(uintptr(nfd), f.Name())
	})
	return nf
}

func readAllWithin(f *os.File, d time.Duration) (string, error) {
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		b, err := io.ReadAll(f)
		done <- res{b, err}
	}()
	select {
	case r := <-done:
		return string(r.b), r.err
	case <-time.After(d):
		return "", os.ErrDeadlineExceeded
	}
}

func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }
