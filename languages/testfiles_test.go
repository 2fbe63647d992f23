package languages

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/rootfs"
)

// streamRunner "runs" by echoing stdin as the sandbox would get it: the
// stream when there is one, and remembers whether any stage held an
// input in memory.
type streamRunner struct{ inMemory int }

func (f *streamRunner) RunStage(_ context.Context, s execution.Stage) (*execution.Output, error) {
	in := string(s.Stdin)
	if s.StdinStream != nil {
		b, err := io.ReadAll(s.StdinStream)
		if err != nil {
			return nil, err
		}
		in = string(b)
	} else if len(s.Stdin) > 0 {
		f.inMemory++
	}
	return &execution.Output{Result: &api.Result{Status: api.StatusOK, Stdout: in}}, nil
}

// A stored test's input is streamed from its file into the run and its
// answer read from its file, test by test; a missing file is an error
// of the request, not a verdict.
func TestTestsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := strings.Repeat("x", 1<<20) + "\n"
	tests := []Test{
		{StdinFile: write("1.in", big), ExpectedFile: write("1.ans", big)},
		{StdinFile: write("2.in", "two\n"), ExpectedFile: write("2.ans", "three\n")},
		{Stdin: "inline\n", ExpectedStdout: "inline\n"},
	}
	f := &streamRunner{}
	interp := &Language{Name: "sh", Image: "busybox", Main: "main.sh", Run: []string{"sh", "{main}"}}
	req := &Request{Language: interp, Files: []rootfs.File{{Name: "main.sh"}}, Tests: tests}
	out, err := Execute(context.Background(), f, mapCache{}, req)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{out.Tests[0].Status, out.Tests[1].Status, out.Tests[2].Status}
	if strings.Join(got, " ") != "accepted wrong_answer accepted" || f.inMemory != 1 {
		t.Fatalf("statuses %v, %d inputs in memory (want the inline one only)", got, f.inMemory)
	}
	req.Tests = []Test{{StdinFile: filepath.Join(dir, "gone.in"), ExpectedFile: filepath.Join(dir, "1.ans")}}
	if _, err := Execute(context.Background(), f, mapCache{}, req); err == nil || !strings.Contains(err.Error(), "a test set's input") {
		t.Errorf("a missing input: %v", err)
	}
	req.Tests = []Test{{StdinFile: filepath.Join(dir, "2.in"), ExpectedFile: filepath.Join(dir, "gone.ans")}}
	if _, err := Execute(context.Background(), f, mapCache{}, req); err == nil || !strings.Contains(err.Error(), "a test set's answer") {
		t.Errorf("a missing answer: %v", err)
	}
}
