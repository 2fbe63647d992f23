package compat

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// judge0Submission is the body of POST /submissions. Times are in
// seconds, sizes in KB, as Judge0 has them.
type judge0Submission struct {
	SourceCode           string   `json:"source_code"`
	LanguageID           int      `json:"language_id"`
	Stdin                *string  `json:"stdin"`
	ExpectedOutput       *string  `json:"expected_output"`
	CPUTimeLimit         *float64 `json:"cpu_time_limit"`
	WallTimeLimit        *float64 `json:"wall_time_limit"`
	MemoryLimit          *float64 `json:"memory_limit"`
	MaxProcesses         *float64 `json:"max_processes_and_or_threads"`
	MaxFileSize          *float64 `json:"max_file_size"`
	CommandLineArguments string   `json:"command_line_arguments"`
	CompilerOptions      string   `json:"compiler_options"`
	CallbackURL          string   `json:"callback_url"`
	AdditionalFiles      string   `json:"additional_files"`
}

// translate turns a submission into a language-mode request: its source
// the main file, its expected output one test.
func (j *Judge0) translate(ctx context.Context, s *judge0Submission, encoded bool) (*api.ExecuteRequest, error) {
	lang, ok := judge0LanguageByID(s.LanguageID)
	if _, have := j.available(ctx)[s.LanguageID]; !ok || !have {
		return nil, errdefs.Invalidf("language_id: language with id %d doesn't exist", s.LanguageID)
	}
	switch {
	case s.SourceCode == "":
		return nil, errdefs.Invalidf("source_code: can't be blank")
	case s.CallbackURL != "":
		return nil, errdefs.Invalidf("callback_url: not supported; poll GET /submissions/{token} (docs/compat.md)")
	case s.AdditionalFiles != "":
		return nil, errdefs.Invalidf("additional_files: not supported (docs/compat.md)")
	}
	args, err := splitArgs(s.CommandLineArguments)
	if err != nil {
		return nil, err
	}
	opts, err := j.compilerOptions(ctx, lang.name, s.CompilerOptions)
	if err != nil {
		return nil, err
	}
	text := map[string]*string{"stdin": s.Stdin, "expected_output": s.ExpectedOutput}
	if encoded {
		for field, v := range text {
			if v != nil {
				d, err := b64(field, *v)
				if err != nil {
					return nil, err
				}
				text[field] = &d
			}
		}
	}
	file := api.File{Name: j.mainFile(lang.name), Content: s.SourceCode}
	if encoded {
		file.Encoding = "base64"
	}
	req := &api.ExecuteRequest{Language: lang.name, Files: []api.File{file}, Args: args, CompileOptions: opts, Limits: judge0Limits(s)}
	switch stdin, expected := text["stdin"], text["expected_output"]; {
	case expected != nil:
		req.Tests = []api.Test{{Stdin: deref(stdin), ExpectedStdout: *expected}}
	default:
		req.Stdin = deref(stdin)
	}
	return req, nil
}

// compilerOptions splits compiler_options as command_line_arguments are
// split; as in Judge0, a language that compiles nothing ignores them.
func (j *Judge0) compilerOptions(ctx context.Context, name, options string) ([]string, error) {
	if options == "" {
		return nil, nil
	}
	for _, l := range j.Backend.Languages(ctx) {
		if l.Name == name && !l.Compiled {
			return nil, nil
		}
	}
	opts, err := splitArgs(options)
	if err != nil {
		return nil, errdefs.Invalidf("compiler_options: %v", err)
	}
	return opts, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// judge0Limits are a submission's run limits (Judge0's apply to the run,
// not the compile).
func judge0Limits(s *judge0Submission) *api.Limits {
	l := api.Limits{CPUTimeMS: scaled(s.CPUTimeLimit, 1000), WallTimeMS: scaled(s.WallTimeLimit, 1000),
		MemoryBytes: scaled(s.MemoryLimit, 1024), Pids: scaled(s.MaxProcesses, 1), FileSizeBytes: scaled(s.MaxFileSize, 1024)}
	if l == (api.Limits{}) {
		return nil
	}
	return &l
}

// Judge0's status ids.
const (
	judge0InQueue       = 1
	judge0Processing    = 2
	judge0Accepted      = 3
	judge0WrongAnswer   = 4
	judge0TimeLimit     = 5
	judge0CompileError  = 6
	judge0SIGSEGV       = 7
	judge0SIGXFSZ       = 8
	judge0SIGFPE        = 9
	judge0SIGABRT       = 10
	judge0NZEC          = 11
	judge0OtherRuntime  = 12
	judge0InternalError = 13
)

var judge0Descriptions = []string{"In Queue", "Processing", "Accepted", "Wrong Answer", "Time Limit Exceeded",
	"Compilation Error", "Runtime Error (SIGSEGV)", "Runtime Error (SIGXFSZ)", "Runtime Error (SIGFPE)",
	"Runtime Error (SIGABRT)", "Runtime Error (NZEC)", "Runtime Error (Other)", "Internal Error", "Exec Format Error"}

type judge0Status struct {
	ID          int    `json:"id"`
	Description string `json:"description"`
}

func statusOf(id int) judge0Status { return judge0Status{id, judge0Descriptions[id-1]} }

// judge0Result is a submission's answer. Strings hold bytes, which need
// not be UTF-8: render encodes them.
type judge0Result struct {
	Token                                  string
	Stdout, Stderr, CompileOutput, Message *string
	Time, WallTime                         *string
	Memory                                 *int64
	ExitCode, ExitSignal                   *int
	Status                                 judge0Status
}

// size is what the store counts of a result.
func (r *judge0Result) size() int64 {
	n := int64(256)
	for _, s := range []*string{r.Stdout, r.Stderr, r.CompileOutput, r.Message} {
		if s != nil {
			n += int64(len(*s))
		}
	}
	return n
}

// resultOf maps a language-mode answer onto Judge0's: a failed compile is
// Compilation Error; otherwise the run's (or the one test's) status.
func resultOf(resp *api.LanguageResponse) *judge0Result {
	out := &judge0Result{}
	if c := resp.Compile; c != nil && c.Result != nil {
		out.CompileOutput = nonEmpty(decodedOutput(c.Stdout, c.StdoutEncoding) + decodedOutput(c.Stderr, c.StderrEncoding))
	}
	run, verdict := resp.Run, ""
	if len(resp.Tests) > 0 {
		run, verdict = resp.Tests[0].Run, resp.Tests[0].Status
	}
	if resp.Status == api.StatusCompileError || run == nil {
		out.Status = statusOf(judge0CompileError)
		return out
	}
	out.Stdout = nonEmpty(decodedOutput(run.Stdout, run.StdoutEncoding))
	out.Stderr = nonEmpty(decodedOutput(run.Stderr, run.StderrEncoding))
	out.Time, out.WallTime = ptr(seconds(run.CPUTimeMS)), ptr(seconds(run.WallTimeMS))
	out.Memory = ptr(run.MemoryPeakBytes / 1024)
	if run.Signal != nil {
		out.ExitSignal = ptr(run.ExitCode - 128)
	} else {
		out.ExitCode = ptr(run.ExitCode)
	}
	id, msg := runStatus(run, verdict)
	out.Status, out.Message = statusOf(id), nonEmpty(msg)
	return out
}

func seconds(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// runStatus is Judge0's status id and message for a run.
func runStatus(run *api.Result, verdict string) (int, string) {
	signals := map[string]int{"SIGSEGV": judge0SIGSEGV, "SIGXFSZ": judge0SIGXFSZ, "SIGFPE": judge0SIGFPE, "SIGABRT": judge0SIGABRT}
	switch run.Status {
	case api.StatusOK:
		if verdict == api.StatusWrongAnswer {
			return judge0WrongAnswer, ""
		}
		return judge0Accepted, ""
	case api.StatusTimeLimit, api.StatusWallTimeLimit:
		return judge0TimeLimit, "Time limit exceeded"
	case api.StatusOutputLimit:
		return judge0SIGXFSZ, "Output limit exceeded"
	case api.StatusMemoryLimit:
		return judge0OtherRuntime, "Memory limit exceeded"
	case api.StatusRuntimeError:
		if run.Signal == nil {
			return judge0NZEC, fmt.Sprintf("Exited with error status %d", run.ExitCode)
		}
		msg := fmt.Sprintf("Caught fatal signal %d", run.ExitCode-128)
		if id, ok := signals[*run.Signal]; ok {
			return id, msg
		}
		return judge0OtherRuntime, msg
	}
	return judge0InternalError, run.Error
}

// judge0DefaultFields are the fields Judge0 answers without "fields".
var judge0DefaultFields = []string{"stdout", "time", "memory", "stderr", "token", "compile_output", "message", "status"}

// render is the result as Judge0 answers it: the fields asked for, the
// texts in base64 when asked, or an error when a text is not UTF-8 and
// base64 was not asked for (Judge0's answer too).
func (r *judge0Result) render(q judge0Query) (map[string]any, error) {
	texts := map[string]*string{"stdout": r.Stdout, "stderr": r.Stderr, "compile_output": r.CompileOutput, "message": r.Message}
	all := map[string]any{"token": r.Token, "time": r.Time, "wall_time": r.WallTime, "memory": r.Memory,
		"exit_code": r.ExitCode, "exit_signal": r.ExitSignal, "status": r.Status, "status_id": r.Status.ID}
	for name, t := range texts {
		switch {
		case t == nil:
			all[name] = nil
		case q.base64:
			all[name] = base64.StdEncoding.EncodeToString([]byte(*t))
		case !utf8.ValidString(*t):
			return nil, errdefs.Invalidf("some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter")
		default:
			all[name] = *t
		}
	}
	fields := q.fields
	if fields == nil {
		fields = judge0DefaultFields
	}
	if slices.Contains(fields, "*") {
		return all, nil
	}
	out := map[string]any{}
	for _, f := range fields {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}
