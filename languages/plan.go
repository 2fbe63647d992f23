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
	Run     *api.Result        `json:"run"`
	Tests   []api.TestResult   `json:"tests"`
	// Summary counts the tests per status.
	Summary map[string]int `json:"summary,omitempty"`
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
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	main := names[0]
	out := &Outcome{}
	runFiles := files
	if lang.Compiled() {
		// The compile's output goes to disk and stays there, read by each
		// run's Populate, until the request ends, whichever way it ends.
		tmp, err := os.MkdirTemp(req.ArtifactDir, "request-")
		if err != nil {
			return nil, fmt.Errorf("compile: a directory for its output: %w", err)
		}
		defer os.RemoveAll(tmp)
		compileArgs := Expand(lang.Compile, Vars{Main: main, Files: lang.Sources(names), MemoryBytes: req.CompileLimits.MemoryBytes,
			Options: req.CompileOptions})
		if runFiles, err = compile(ctx, r, cache, req, compileArgs, files, tmp, out); err != nil {
			return nil, err
		}
		if out.Status != "" {
			return out, nil
		}
	}
	runArgs := append(Expand(lang.Run, Vars{Main: main, Files: lang.Sources(names), MemoryBytes: req.Limits.MemoryBytes}), req.Args...)
	stage := execution.Stage{Image: lang.Image, Args: runArgs, Env: lang.Env, Files: runFiles, Limits: req.Limits, CopyOut: req.CopyOut,
		Network: req.Network}
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
		cleanup, err := prepareInteractor(ctx, r, cache, req)
		if err != nil {
			return nil, err
		}
		defer cleanup()
	}
	out.Tests = make([]api.TestResult, 0, len(req.Tests))
	out.Summary = map[string]int{}
	budget := newOutputBudget(req)
	defer budget.release()
	for _, t := range req.Tests {
		var tr api.TestResult
		if req.Interactor != nil {
			var err error
			if tr, err = runInteractive(ctx, r, req, len(out.Tests), t, stage); err != nil {
				return nil, tooBigToRun(lang, err)
			}
		} else {
			stage.Stdin = []byte(t.Stdin)
			so, err := runStage(ctx, r, req.Events, "test", len(out.Tests), stage)
			if err != nil {
				return nil, fmt.Errorf("test %d: %w", len(out.Tests), tooBigToRun(lang, err))
			}
			status := string(so.Result.Status)
			if so.Result.Status == api.StatusOK {
				status = StatusWrongAnswer
				if so.Result.StdoutEncoding == "" && OutputMatches(so.Result.Stdout, t.ExpectedStdout) {
					status = StatusAccepted
				}
			}
			tr = api.TestResult{Status: status, Run: so.Result}
		}
		status := tr.Status
		budget.keep(&tr)
		out.Tests = append(out.Tests, tr)
		out.Summary[status]++
		if out.Status == "" && status != StatusAccepted {
			out.Status = status
		}
	}
	if out.Status == "" {
		out.Status = StatusAccepted
	}
	return out, nil
}

// compile takes the compile from the cache, or runs it, collecting its
// output into tmp; it returns the files of the runs' /work. A compile that
// failed sets out.Status (compile_error) and returns no files.
func compile(ctx context.Context, r Runner, cache Cache, req *Request, args []string, files []rootfs.File,
	tmp string, out *Outcome) ([]rootfs.File, error) {
	lang := req.Language
	key := compileKey(req, args, files)
	if hit, ok := cache.Get(key, filepath.Join(tmp, "cached")); ok {
		out.Compile = &api.CompileResult{Result: hit.Result, Cached: true}
		return hit.Work, nil
	}
	so, err := runStage(ctx, r, req.Events, "compile", 0, execution.Stage{Image: lang.Image, Args: args, Env: lang.Env, Files: files,
		Limits: req.CompileLimits, CollectWork: true, CollectWorkBytes: req.MaxArtifact,
		CollectWorkDir: filepath.Join(tmp, "work")})
	if errors.Is(err, rootfs.ErrTooLarge) {
		return nil, fmt.Errorf("compile: what the compile left in /work is larger than %d bytes "+
			"(max_artifact_bytes, or the compile's work_bytes): %w", req.CompileBytes(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	out.Compile = &api.CompileResult{Result: so.Result}
	if so.Result.Status != api.StatusOK {
		out.Status = StatusCompileError
		return nil, nil
	}
	cache.Put(key, &CompileOutput{Result: so.Result, Work: so.Work})
	return so.Work, nil
}

// compileKey identifies a compile: the same language, image content,
// command, environment, limits and sources give the same output.
func compileKey(req *Request, args []string, files []rootfs.File) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(req.Language.Name)
	field(req.ImageID)
	field(req.Version)
	field(strings.Join(args, "\x00"))
	field(strings.Join(req.Language.Env, "\x00"))
	field(fmt.Sprintf("%+v", req.CompileLimits))
	for _, f := range files {
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
	if r.MaxArtifact > 0 {
		return min(r.MaxArtifact, r.CompileLimits.WorkBytes)
	}
	return r.CompileLimits.WorkBytes
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
