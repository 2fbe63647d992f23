package languages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// Stage is one sandboxed run of a plan.
type Stage struct {
	Image  string
	Args   []string
	Env    []string
	Files  []rootfs.File
	Stdin  []byte
	Limits runtime.Limits
	// Collect asks for the files left in /work (the compile's output).
	Collect bool
}

// StageOutput is what a stage produced.
type StageOutput struct {
	Result *runtime.Result
	Work   []rootfs.File
}

// Runner runs stages in sandboxes; the server provides it.
type Runner interface {
	RunStage(ctx context.Context, s Stage) (*StageOutput, error)
}

// Cache keeps compile outputs across requests (and restarts).
type Cache interface {
	Get(key string) (*CompileOutput, bool)
	Put(key string, out *CompileOutput)
}

// CompileOutput is a successful compile: its result and /work afterwards.
type CompileOutput struct {
	Result *runtime.Result
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
	Limits        runtime.Limits
	CompileLimits runtime.Limits
	Tests         []Test
}

// CompileResult is the compile stage's result plus whether it came from
// the cache.
type CompileResult struct {
	*runtime.Result
	Cached bool `json:"cached"`
}

// TestResult is one test's outcome: its status (accepted, wrong_answer, or
// the run's own status when it did not end ok) and the run's result.
type TestResult struct {
	Status string          `json:"status"`
	Run    *runtime.Result `json:"run"`
}

// Outcome is what a plan produced. Stages that did not run are nil.
type Outcome struct {
	Status  string          `json:"status"`
	Compile *CompileResult  `json:"compile"`
	Run     *runtime.Result `json:"run"`
	Tests   []TestResult    `json:"tests"`
	// Summary counts the tests per status.
	Summary map[string]int `json:"summary,omitempty"`
}

// Statuses a plan adds to the engine's.
const (
	StatusCompileError = "compile_error"
	StatusAccepted     = "accepted"
	StatusWrongAnswer  = "wrong_answer"
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
		compileArgs := Expand(lang.Compile, Vars{Main: main, Files: lang.Sources(names), MemoryBytes: req.CompileLimits.MemoryBytes})
		key := compileKey(req, compileArgs, files)
		if hit, ok := cache.Get(key); ok {
			out.Compile = &CompileResult{Result: hit.Result, Cached: true}
			runFiles = hit.Work
		} else {
			so, err := r.RunStage(ctx, Stage{Image: lang.Image, Args: compileArgs, Env: lang.Env, Files: files,
				Limits: req.CompileLimits, Collect: true})
			if err != nil {
				return nil, fmt.Errorf("compile: %w", err)
			}
			out.Compile = &CompileResult{Result: so.Result}
			if so.Result.Status != runtime.StatusOK {
				out.Status = StatusCompileError
				return out, nil
			}
			cache.Put(key, &CompileOutput{Result: so.Result, Work: so.Work})
			runFiles = so.Work
		}
	}
	runArgs := append(Expand(lang.Run, Vars{Main: main, Files: lang.Sources(names), MemoryBytes: req.Limits.MemoryBytes}), req.Args...)
	stage := Stage{Image: lang.Image, Args: runArgs, Env: lang.Env, Files: runFiles, Limits: req.Limits}
	if len(req.Tests) == 0 {
		stage.Stdin = req.Stdin
		so, err := r.RunStage(ctx, stage)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		out.Run, out.Status = so.Result, string(so.Result.Status)
		return out, nil
	}
	out.Tests = make([]TestResult, 0, len(req.Tests))
	out.Summary = map[string]int{}
	for _, t := range req.Tests {
		stage.Stdin = []byte(t.Stdin)
		so, err := r.RunStage(ctx, stage)
		if err != nil {
			return nil, fmt.Errorf("test %d: %w", len(out.Tests), err)
		}
		status := string(so.Result.Status)
		if so.Result.Status == runtime.StatusOK {
			status = StatusWrongAnswer
			if so.Result.StdoutEncoding == "" && OutputMatches(so.Result.Stdout, t.ExpectedStdout) {
				status = StatusAccepted
			}
		}
		out.Tests = append(out.Tests, TestResult{Status: status, Run: so.Result})
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
