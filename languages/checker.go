package languages

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/rootfs"
)

// The files a checker or an interactor gets in /work, named on its
// command line in this order, as testlib's take them: `checker input
// output answer`. A checker's output is the program's; an interactor's is
// testlib's result file, which it may write and the daemon ignores.
const (
	fileInput  = "input"
	fileOutput = "output"
	fileAnswer = "answer"
)

var checkerFiles = []string{fileInput, fileOutput, fileAnswer}

// testFiles are test t's input and answer as files of a checker's or an
// interactor's /work: a stored set's come from disk, never read into
// memory here.
func testFiles(t Test) (input, answer rootfs.File) {
	return rootfs.File{Name: fileInput, Data: []byte(t.Stdin), Source: t.StdinFile, Mode: 0o444},
		rootfs.File{Name: fileAnswer, Data: []byte(t.ExpectedStdout), Source: t.ExpectedFile, Mode: 0o444}
}

// testlib's exit codes (docs/judge.md, "Checkers").
const (
	exitAccepted          = 0
	exitWrongAnswer       = 1
	exitPresentationError = 2
	exitFail              = 3
	exitPoints            = 7
	maxMessageBytes       = 1024
)

// Statuses the judge adds.
const (
	StatusPresentationError = api.StatusPresentationError
	StatusCheckerError      = api.StatusCheckerError
	StatusPartial           = api.StatusPartial
	StatusSkipped           = api.StatusSkipped
)

// judge gives each test its verdict: the run's status when it did not end
// ok, else the checker's or the comparison's.
type judge struct {
	r       Runner
	req     *Request
	checker *execution.Stage // nil: the tests' comparisons
}

// checkerStage compiles the request's checker, when its language is
// compiled, and returns the stage each test's check starts from. A
// checker that does not compile gives a nil stage and its compile's
// result: the request's checker_error.
func checkerStage(ctx context.Context, r Runner, cache Cache, req *Request, dir string) (*execution.Stage, *api.CompileResult, error) {
	c := req.Checker
	b := build{lang: c.Language, version: c.Version, imageID: c.ImageID, files: c.Files, limits: c.CompileLimits,
		maxArtifact: req.MaxArtifact}
	work, compiled, err := b.compile(ctx, r, cache, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("checker: %w", err)
	}
	if compiled != nil && compiled.Status != api.StatusOK {
		return nil, compiled, nil
	}
	return &execution.Stage{Image: c.Language.Image, Args: b.runArgs(c.Limits, checkerFiles), Env: c.Language.Env,
		Files: work, Limits: c.Limits}, compiled, nil
}

// verdict sets tr's status (and message and points fraction) from its run.
func (j *judge) verdict(ctx context.Context, t Test, tr *api.TestResult) error {
	res := tr.Run
	if res.Status != api.StatusOK {
		tr.Status = string(res.Status)
		return nil
	}
	got := res.Stdout
	if res.StdoutEncoding == "base64" {
		raw, err := base64.StdEncoding.DecodeString(res.Stdout)
		if err != nil {
			return fmt.Errorf("the run's stdout: %w", err)
		}
		got = string(raw)
	}
	if j.checker == nil {
		want, err := t.Expected()
		if err != nil {
			return err
		}
		tr.Status = StatusWrongAnswer
		if t.Compare.Match(got, want) {
			tr.Status = StatusAccepted
		}
		return nil
	}
	return j.check(ctx, t, got, tr)
}

// check runs the checker on the test's input, the program's output and
// the expected answer, and reads its verdict.
func (j *judge) check(ctx context.Context, t Test, got string, tr *api.TestResult) error {
	st := *j.checker
	input, answer := testFiles(t)
	st.Files = append(st.Files[:len(st.Files):len(st.Files)], input,
		rootfs.File{Name: fileOutput, Data: []byte(got), Mode: 0o444}, answer)
	so, err := j.r.RunStage(ctx, st)
	if err != nil {
		return fmt.Errorf("checker: %w", tooBigToRun(j.req.Checker.Language, err))
	}
	tr.Checker = so.Result
	tr.Status, tr.Message = readVerdict(so.Result, "checker")
	return nil
}

// readVerdict turns a checker's or an interactor's run (who) into a
// test's status and message, with testlib's exit codes. Anything but an
// exit with one of those codes (a crash, a limit, another code) is that
// program's failure, never the contestant's.
func readVerdict(res *api.Result, who string) (status, message string) {
	message = firstLine(res.Stderr, res.StderrEncoding)
	if res.Signal != nil || (res.Status != api.StatusOK && res.Status != api.StatusRuntimeError) {
		return StatusCheckerError, fmt.Sprintf("the %s ended with %s: %s", who, res.Status, message)
	}
	switch res.ExitCode {
	case exitAccepted:
		return StatusAccepted, message
	case exitWrongAnswer:
		return StatusWrongAnswer, message
	case exitPresentationError:
		return StatusPresentationError, message
	case exitPoints:
		if _, ok := pointsFraction(message); ok {
			return StatusPartial, message
		}
		return StatusCheckerError, fmt.Sprintf("the %s exited 7 without a fraction from 0 to 1 first on stderr: %s", who, message)
	case exitFail:
		return StatusCheckerError, message
	}
	return StatusCheckerError, fmt.Sprintf("the %s exited %d, not one of testlib's codes: %s", who, res.ExitCode, message)
}

// pointsFraction reads a partial verdict's fraction of the test's points:
// the first number of the checker's message, after an optional "points"
// (testlib's quitp writes "points 0.5 ...").
func pointsFraction(message string) (float64, bool) {
	fields := strings.Fields(message)
	if len(fields) > 0 && strings.EqualFold(fields[0], "points") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return 0, false
	}
	return v, true
}

// firstLine is the first line of a stream, at most maxMessageBytes of it
// (a checker's stderr may be anything).
func firstLine(s, encoding string) string {
	if encoding == "base64" {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return ""
		}
		s = strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	line, _, _ := strings.Cut(s, "\n")
	line = strings.TrimRight(line, "\r")
	if len(line) > maxMessageBytes {
		line = strings.ToValidUTF8(line[:maxMessageBytes], "")
	}
	return line
}

// checkerFileClash refuses a checker's or an interactor's sources named
// like the files each test gives it (the same three names).
func checkerFileClash(files []rootfs.File) error {
	for _, f := range files {
		for _, n := range checkerFiles {
			if filepath.Clean(f.Name) == n {
				return fmt.Errorf("a file must not be named %q: each test gives its own %s", n, strings.Join(checkerFiles, ", "))
			}
		}
	}
	return nil
}
