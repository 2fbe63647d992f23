package languages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// Runner runs stages in sandboxes: the execution core, with the
// request's fairness key and observer bound (see Service.runner).
type Runner interface {
	RunStage(ctx context.Context, s execution.Stage) (*execution.Output, error)
}

// Cache keeps compile outputs across requests (and restarts).
type Cache interface {
	// Get returns a cached compile. Its files are placed under dir, a
	// directory of the request's that does not exist yet, so that they
	// stay whole while the request runs, whatever the cache evicts.
	Get(key, dir string) (*CompileOutput, bool)
	// Put stores a compile. Files with a Source are taken from disk,
	// never read into memory; Put must not change them (the request's
	// runs still read them).
	Put(key string, out *CompileOutput)
}

// CompileOutput is a successful compile: its result and /work afterwards,
// as files on disk (rootfs.File.Source), so that a large output is never
// held whole in memory.
type CompileOutput struct {
	Result *api.Result
	Work   []rootfs.File
}

// Test is one input and the output it must produce.
type Test struct {
	Stdin          string `json:"stdin"`
	ExpectedStdout string `json:"expected_stdout"`
	// Name and Group label the test; Points is what it is worth.
	Name   string  `json:"name,omitempty"`
	Group  string  `json:"group,omitempty"`
	Points float64 `json:"points,omitempty"`
	// Compare holds the test's output against ExpectedStdout when the
	// request has no checker (the zero value is "lines").
	Compare Comparison `json:"-"`
	// StdinFile and ExpectedFile, when set, are host paths (a stored test
	// set's files, testsets.Handle) that replace Stdin and ExpectedStdout:
	// the input is streamed into the run and the answer read when it is
	// compared, one test at a time, so a request never holds a set whole.
	StdinFile    string `json:"-"`
	ExpectedFile string `json:"-"`
}

// TestFiles are a stored test's input and answer on the host (Call).
type TestFiles struct {
	Input, Answer string
}

// stdin sets the stage's input to the test's; done closes what it opened.
func (t *Test) stdin(st *execution.Stage) (done func(), err error) {
	if t.StdinFile == "" {
		st.Stdin, st.StdinStream = []byte(t.Stdin), nil
		return func() {}, nil
	}
	f, err := os.Open(t.StdinFile)
	if err != nil {
		return nil, fmt.Errorf("a test set's input: %w", err)
	}
	st.Stdin, st.StdinStream = nil, f
	return func() { f.Close() }, nil
}

// Expected is the output the test must produce.
func (t *Test) Expected() (string, error) {
	if t.ExpectedFile == "" {
		return t.ExpectedStdout, nil
	}
	b, err := os.ReadFile(t.ExpectedFile)
	if err != nil {
		return "", fmt.Errorf("a test set's answer: %w", err)
	}
	return string(b), nil
}

// Aux is a program of the judge's, a checker: compiled once per request
// when its language is, and run in a sandbox of its own beside each test.
type Aux struct {
	Language *Language
	Version  string
	ImageID  string
	Files    []rootfs.File
	Limits   limits.Set
	// CompileLimits bound its compile (the language's, over the
	// daemon's defaults).
	CompileLimits limits.Set
}

// Request is a validated language-mode request.
type Request struct {
	Language      *Language
	Version       string // detected version of the image
	ImageID       string // identifies the image's content, for the compile cache
	Files         []rootfs.File
	Args          []string
	Stdin         []byte
	Limits        limits.Set
	CompileLimits limits.Set
	// CompileOptions are the caller's, for the compile command (Vars).
	CompileOptions []string
	Tests          []Test
	// Checker, when set, judges each test's output instead of its
	// Compare (checker.go).
	Checker *Aux
	// Groups are the tests' groups, declared or named by a test (groups.go);
	// Scored asks for points: some test has a group or points.
	Groups []GroupRule
	Scored bool
	// CopyOut is read back after the run, or after each test's run.
	CopyOut execution.CopyOut
	// OutputBudget bounds the bytes of output and files that the tests'
	// results keep in all (0: no bound). Once it is spent, later tests
	// keep their status and figures but not their outputs, so a request's
	// memory does not grow with its number of tests.
	OutputBudget int64
	// MaxArtifact bounds the compile's output, which the daemon copies
	// back to disk and caches (0: the compile's work_bytes alone).
	MaxArtifact int64
	// ArtifactDir is where the compile's output waits, on disk, for the
	// runs: each request takes a directory of its own there and removes it
	// when it ends ("": the system's temporary directory).
	ArtifactDir string
	// StdinStream, when set, is the run's stdin instead of Stdin, read
	// while it runs (an interactive client's input); tests have their own.
	StdinStream io.Reader
	// TTY and Control are the run's terminal and a client's signals and
	// resizes (execution.Stage); never with tests.
	TTY     *runtime.WindowSize
	Control <-chan runtime.Control
	// Events, when set, is told each stage as it starts and gets its
	// output as it is read (a streaming answer).
	Events Events
	// Pool is shared by all requests in progress: what the tests' results
	// keep comes out of it too, until the plan ends (nil: no shared
	// bound).
	Pool *OutputPool
	// Interactor, when set, talks to the program over its stdin and
	// stdout in every test (interactor.go); never without tests.
	Interactor *Interactor
	// Network is the run's and each test's egress (nil: loopback only).
	// The compile never has one: its output is cached for every request
	// of the same source, so it must not depend on what one caller's
	// network gave it.
	Network *execution.Network
}

// Outcome is what a plan produced. Stages that did not run are nil.
type Outcome struct {
	Status  string             `json:"status"`
	Compile *api.CompileResult `json:"compile"`
	// CheckerCompile is the checker's compile, when it has one.
	CheckerCompile *api.CompileResult `json:"checker_compile,omitempty"`
	Run            *api.Result        `json:"run"`
	Tests          []api.TestResult   `json:"tests"`
	// Summary counts the tests per status.
	Summary map[string]int `json:"summary,omitempty"`
	// Groups, Score and MaxScore are set when the request is scored.
	Groups   []api.GroupResult `json:"groups,omitempty"`
	Score    *float64          `json:"score,omitempty"`
	MaxScore *float64          `json:"max_score,omitempty"`
}

// Statuses a plan adds to the engine's.
const (
	StatusCompileError = api.StatusCompileError
	StatusAccepted     = api.StatusAccepted
	StatusWrongAnswer  = api.StatusWrongAnswer
)

// Execute compiles once (or takes the compile from the cache), then runs
// the program once, or once per test, each in a fresh sandbox.
func Execute(ctx context.Context, r Runner, cache Cache, req *Request) (*Outcome, error) {
	lang := req.Language
	files := slices.Clone(req.Files)
	if lang.CodePrefix != "" && len(files) > 0 {
		files[0].Data = append([]byte(lang.CodePrefix), files[0].Data...)
	}
	// Compile outputs go to disk and stay there, read by each run's
	// Populate, until the request ends, whichever way it ends.
	tmp, err := os.MkdirTemp(req.ArtifactDir, "request-")
	if err != nil {
		return nil, fmt.Errorf("compile: a directory for its output: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := &Outcome{}
	main := build{lang: lang, version: req.Version, imageID: req.ImageID, files: files, limits: req.CompileLimits,
		options: req.CompileOptions, maxArtifact: req.MaxArtifact, events: req.Events}
	runFiles, compiled, err := main.compile(ctx, r, cache, filepath.Join(tmp, "program"))
	out.Compile = compiled
	if err != nil || (compiled != nil && compiled.Status != api.StatusOK) {
		if err == nil {
			out.Status = StatusCompileError
		}
		return out, err
	}
	stage := execution.Stage{Image: lang.Image, Args: main.runArgs(req.Limits, req.Args), Env: lang.Env, Files: runFiles,
		Limits: req.Limits, CopyOut: req.CopyOut, Network: req.Network}
	if len(req.Tests) == 0 {
		stage.Stdin, stage.StdinStream = req.Stdin, req.StdinStream
		stage.TTY, stage.Control = req.TTY, req.Control
		so, err := runStage(ctx, r, req.Events, "run", 0, stage)
		if err != nil {
			return nil, fmt.Errorf("run: %w", tooBigToRun(lang, err))
		}
		out.Run, out.Status = so.Result, string(so.Result.Status)
		return out, nil
	}
	if req.Interactor != nil {
		cleanup, compiled, err := prepareInteractor(ctx, r, cache, req, filepath.Join(tmp, "interactor"))
		if err != nil {
			return nil, err
		}
		defer cleanup()
		if compiled != nil && compiled.Status != api.StatusOK {
			out.CheckerCompile, out.Status = compiled, StatusCheckerError
			return out, nil
		}
		out.CheckerCompile = compiled
	}
	j := &judge{r: r, req: req}
	if req.Checker != nil {
		if j.checker, out.CheckerCompile, err = checkerStage(ctx, r, cache, req, filepath.Join(tmp, "checker")); err != nil {
			return nil, err
		}
		if j.checker == nil {
			out.Status = StatusCheckerError
			return out, nil
		}
	}
	if err := runTests(ctx, j, stage, out); err != nil {
		return nil, err
	}
	return out, nil
}

// runTests runs the tests in order, each in a fresh sandbox, skipping
// those their groups rule out, and sets the outcome's tests, summary,
// groups and score.
func runTests(ctx context.Context, j *judge, stage execution.Stage, out *Outcome) error {
	req := j.req
	out.Tests = make([]api.TestResult, 0, len(req.Tests))
	out.Summary = map[string]int{}
	budget := newOutputBudget(req)
	defer budget.release()
	score := newScorer(req)
	for i, t := range req.Tests {
		tr := api.TestResult{Name: t.Name, Group: t.Group, Status: StatusSkipped}
		if !score.skip(t) {
			if err := j.run(ctx, i, t, stage, &tr); err != nil {
				return err
			}
			budget.keep(&tr)
		}
		score.record(i, t, &tr)
		out.Tests = append(out.Tests, tr)
		out.Summary[tr.Status]++
	}
	out.Status = overallStatus(out.Tests)
	score.finish(out)
	return nil
}

// run runs test i and gives it its verdict: with the interactor, or
// alone and then judged.
func (j *judge) run(ctx context.Context, i int, t Test, stage execution.Stage, tr *api.TestResult) error {
	req := j.req
	if req.Interactor != nil {
		res, err := runInteractive(ctx, j.r, req, i, t, stage)
		if err != nil {
			return tooBigToRun(req.Language, err)
		}
		// The points are the scorer's to give (groups.go), from the
		// fraction the message carries.
		res.Name, res.Group, res.Points = tr.Name, tr.Group, nil
		*tr = res
		return nil
	}
	closeStdin, err := t.stdin(&stage)
	if err != nil {
		return fmt.Errorf("test %d: %w", i, err)
	}
	so, err := runStage(ctx, j.r, req.Events, "test", i, stage)
	closeStdin()
	if err != nil {
		return fmt.Errorf("test %d: %w", i, tooBigToRun(req.Language, err))
	}
	tr.Run = so.Result
	if err := j.verdict(ctx, t, tr); err != nil {
		return fmt.Errorf("test %d: %w", i, err)
	}
	return nil
}

// overallStatus: a checker's failure first (the judge's fault, whatever
// the program did), then the first test that was not accepted.
func overallStatus(tests []api.TestResult) string {
	status := StatusAccepted
	for _, tr := range tests {
		switch {
		case tr.Status == StatusCheckerError:
			return StatusCheckerError
		case status == StatusAccepted && tr.Status != StatusAccepted && tr.Status != StatusSkipped:
			status = tr.Status
		}
	}
	return status
}

// build is one program to compile: the submission or a checker.
type build struct {
	lang        *Language
	version     string
	imageID     string
	files       []rootfs.File
	limits      limits.Set
	options     []string
	maxArtifact int64
	events      Events // the submission's compile is a stage of the stream; a checker's is not
}

// args is the compile command.
func (b build) args() []string {
	return Expand(b.lang.Compile, Vars{Main: b.files[0].Name, Files: b.lang.Sources(b.names()), MemoryBytes: b.limits.MemoryBytes,
		Options: b.options})
}

// runArgs is the run command under the run's limits, with extra
// arguments after it.
func (b build) runArgs(run limits.Set, extra []string) []string {
	return append(Expand(b.lang.Run, Vars{Main: b.files[0].Name, Files: b.lang.Sources(b.names()), MemoryBytes: run.MemoryBytes}), extra...)
}

func (b build) names() []string {
	names := make([]string, len(b.files))
	for i, f := range b.files {
		names[i] = f.Name
	}
	return names
}

// compile takes the compile from the cache, or runs it, collecting its
// output into dir; it returns the files of the runs' /work (the sources
// themselves for a language that is not compiled) and the compile's
// result. A compile that failed has a status other than ok and no files.
func (b build) compile(ctx context.Context, r Runner, cache Cache, dir string) ([]rootfs.File, *api.CompileResult, error) {
	if !b.lang.Compiled() {
		return b.files, nil, nil
	}
	args := b.args()
	key := b.key(args)
	if hit, ok := cache.Get(key, filepath.Join(dir, "cached")); ok {
		return hit.Work, &api.CompileResult{Result: hit.Result, Cached: true}, nil
	}
	so, err := runStage(ctx, r, b.events, "compile", 0, execution.Stage{Image: b.lang.Image, Args: args, Env: b.lang.Env,
		Files: b.files, Limits: b.limits, CollectWork: true, CollectWorkBytes: b.maxArtifact,
		CollectWorkDir: filepath.Join(dir, "work")})
	if errors.Is(err, rootfs.ErrTooLarge) {
		return nil, nil, fmt.Errorf("compile: what the compile left in /work is larger than %d bytes "+
			"(max_artifact_bytes, or the compile's work_bytes): %w", b.artifactBytes(), err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("compile: %w", err)
	}
	if so.Result.Status != api.StatusOK {
		return nil, &api.CompileResult{Result: so.Result}, nil
	}
	cache.Put(key, &CompileOutput{Result: so.Result, Work: so.Work})
	return so.Work, &api.CompileResult{Result: so.Result}, nil
}

// key identifies a compile: the same language, image content, command,
// environment, limits and sources give the same output.
func (b build) key(args []string) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(b.lang.Name)
	field(b.imageID)
	field(b.version)
	field(strings.Join(args, "\x00"))
	field(strings.Join(b.lang.Env, "\x00"))
	field(fmt.Sprintf("%+v", b.limits))
	for _, f := range b.files {
		field(f.Name)
		field(string(f.Data))
		field(f.Mode.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tooBigToRun says what did not fit when a compiled language's run could
// not be given its /work: the compile's output, which the request's files
// alone did not show.
func tooBigToRun(lang *Language, err error) error {
	if lang.Compiled() && errors.Is(err, rootfs.ErrWorkFull) {
		return fmt.Errorf("the compile's output does not fit in the run's /work (raise limits.work_bytes): %w", err)
	}
	return err
}

// CompileBytes is the most of the compile's /work that is read back.
func (r *Request) CompileBytes() int64 {
	return build{limits: r.CompileLimits, maxArtifact: r.MaxArtifact}.artifactBytes()
}

func (b build) artifactBytes() int64 {
	if b.maxArtifact > 0 {
		return min(b.maxArtifact, b.limits.WorkBytes)
	}
	return b.limits.WorkBytes
}

// Events follow a request's stages as they run: a streaming answer.
type Events interface {
	// Stage is told a stage is starting: "compile", "run" or "test" with
	// the test's index (0 otherwise).
	Stage(name string, index int)
	// Output gives the writers of the stage's two streams; flush sends
	// what they hold back once the stage has ended.
	Output() (stdout, stderr io.Writer, flush func())
}

// runStage runs one stage, telling events about it when there are any.
func runStage(ctx context.Context, r Runner, events Events, name string, index int, st execution.Stage) (*execution.Output, error) {
	if events == nil {
		return r.RunStage(ctx, st)
	}
	events.Stage(name, index)
	var flush func()
	st.Stdout, st.Stderr, flush = events.Output()
	defer flush()
	return r.RunStage(ctx, st)
}
