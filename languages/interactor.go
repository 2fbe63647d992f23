package languages

// Interactive tests (docs/judge-interactors.md): for each test, the
// program and an interactor run at once, each in a sandbox of its own,
// the program's stdout being the interactor's stdin and the other way
// round, through pipes handed to both sandboxes (exchange.go). The
// interactor reads the test's input and answer as files and gives the
// verdict by its exit code, as testlib's interactors do.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// Interactor is an interactive request's interactor, as the service
// settled it.
type Interactor struct {
	Language *Language
	Version  string // detected version of its image
	ImageID  string // its image's content, for the compile cache
	Files    []rootfs.File
	// Limits bound each of its runs; CompileLimits its compile.
	Limits        limits.Set
	CompileLimits limits.Set
	// Record asks for each test's transcript (api.Transcript): the daemon
	// then copies the exchange instead of passing the pipes directly.
	Record bool

	// args and work are its run command and /work, once compiled
	// (prepareInteractor).
	args []string
	work []rootfs.File
}

// The files the interactor finds in /work, named on its command line in
// testlib's order: `interactor input output answer`. output is testlib's
// result file, which the interactor may write and the daemon ignores.
const (
	interactorInput  = "input"
	interactorOutput = "output"
	interactorAnswer = "answer"
)

// reservedInteractorName reports whether an interactor's source may not
// take name: the daemon writes the test's files under those names.
func reservedInteractorName(name string) bool {
	return name == interactorInput || name == interactorOutput || name == interactorAnswer
}

// endGrace is how long one side of an interactive test may go on once
// the other has ended in a way that decides the test (the program failed,
// or the interactor rejected it): it gets the end of its input at once,
// so one that has not ended by then hangs, and the daemon ends it.
const endGrace = 500 * time.Millisecond

// StagesTogether is a Runner that can also run stages at the same time
// under one admission slot (execution.Core.Together): the service's is.
type StagesTogether interface {
	Together(ctx context.Context, fn func(run func(context.Context, execution.Stage) (*execution.Output, error)) error) error
}

// prepareInteractor compiles the interactor once for the request (or
// takes its compile from the cache), and settles its run command. The
// returned function removes its compile's output once the request ends.
func prepareInteractor(ctx context.Context, r Runner, cache Cache, req *Request) (func(), error) {
	it := req.Interactor
	lang := it.Language
	files := slices.Clone(it.Files)
	if lang.CodePrefix != "" && len(files) > 0 {
		files[0].Data = append([]byte(lang.CodePrefix), files[0].Data...)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	it.args = Expand(lang.Run, Vars{Main: names[0], Files: lang.Sources(names), MemoryBytes: it.Limits.MemoryBytes})
	it.work = files
	if !lang.Compiled() {
		return func() {}, nil
	}
	tmp, err := os.MkdirTemp(req.ArtifactDir, "interactor-")
	if err != nil {
		return nil, fmt.Errorf("interactor: a directory for its compile: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	sub := &Request{Language: lang, Version: it.Version, ImageID: it.ImageID, CompileLimits: it.CompileLimits,
		MaxArtifact: req.MaxArtifact}
	args := Expand(lang.Compile, Vars{Main: names[0], Files: lang.Sources(names), MemoryBytes: it.CompileLimits.MemoryBytes})
	var out Outcome
	work, err := compile(ctx, r, cache, sub, args, files, tmp, &out)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("interactor: %w", err)
	}
	if out.Status == StatusCompileError {
		cleanup()
		return nil, &InteractorCompileError{Result: out.Compile.Result}
	}
	it.work = work
	return cleanup, nil
}

// InteractorCompileError is an interactor whose compile failed: the
// request's fault, never the program's (class errdefs.ErrInvalid, a 400
// invalid_request naming the compiler's complaint).
type InteractorCompileError struct{ Result *api.Result }

func (e *InteractorCompileError) Error() string {
	msg := strings.TrimSpace(e.Result.Stderr + "\n" + e.Result.Stdout)
	if len(msg) > 2000 {
		msg = msg[:2000] + "..."
	}
	return fmt.Sprintf(`"interactor" does not compile (%s, exit code %d): %s`, e.Result.Status, e.Result.ExitCode, msg)
}

func (e *InteractorCompileError) Unwrap() error { return errdefs.ErrInvalid }

// stage is the interactor's run for test t.
func (it *Interactor) stage(t Test) execution.Stage {
	files := append(slices.Clone(it.work),
		rootfs.File{Name: interactorInput, Data: []byte(t.Stdin), Mode: 0o644},
		rootfs.File{Name: interactorAnswer, Data: []byte(t.ExpectedStdout), Mode: 0o644})
	args := append(slices.Clone(it.args), interactorInput, interactorOutput, interactorAnswer)
	return execution.Stage{Image: it.Language.Image, Args: args, Env: it.Language.Env, Files: files, Limits: it.Limits}
}

// runInteractive runs test t (the index-th) of an interactive request:
// stage is the program's run (its stdin is replaced by the exchange).
func runInteractive(ctx context.Context, r Runner, req *Request, index int, t Test, stage execution.Stage) (api.TestResult, error) {
	tg, ok := r.(StagesTogether)
	if !ok {
		return api.TestResult{}, errors.New("interactor: this runner cannot run two stages at once")
	}
	ex, err := newExchange(req.Interactor.Record, req.Limits.OutputBytes)
	if err != nil {
		return api.TestResult{}, fmt.Errorf("interactor: %w", err)
	}
	defer ex.close()
	prog := stage
	prog.Stdin, prog.StdinStream = nil, nil
	prog.StdinFile, prog.StdoutFile, prog.Started = ex.program[0], ex.program[1], ex.releaseProgram
	inter := req.Interactor.stage(t)
	inter.StdinFile, inter.StdoutFile, inter.Started = ex.interactor[0], ex.interactor[1], ex.releaseInteractor
	var p pair
	err = tg.Together(ctx, func(run func(context.Context, execution.Stage) (*execution.Output, error)) error {
		p.run(ctx, run, req.Events, index, prog, inter, ex)
		return nil
	})
	if err == nil {
		err = errors.Join(p.progErr, p.interErr)
	}
	if err != nil {
		return api.TestResult{}, fmt.Errorf("test %d: %w", index, err)
	}
	p.noteEnded()
	v := interactiveVerdict(p.prog.Result, p.inter.Result, p.progEnded, p.interEnded)
	tr := api.TestResult{Status: v.status, Run: p.prog.Result, Interactor: p.inter.Result, Message: v.message, Points: v.fraction}
	if req.Interactor.Record {
		ex.close()
		tr.Transcript = ex.transcript()
	}
	return tr, nil
}

// pair is one interactive test's two runs.
type pair struct {
	prog, inter       *execution.Output
	progErr, interErr error
	// progEnded and interEnded: the daemon ended that side, the other
	// having decided the test (endGrace).
	progEnded, interEnded bool
}

// run runs the program and the interactor at once. Each side's host
// copies of its pipe ends are closed as soon as it runs (or failed to
// start), so that each sees the other's end as the end of its input.
// When the program fails, or the interactor rejects it, the test is
// decided: the other side is ended after endGrace.
func (p *pair) run(ctx context.Context, run func(context.Context, execution.Stage) (*execution.Output, error),
	events Events, index int, prog, inter execution.Stage, ex *exchange) {
	pctx, endProg := context.WithCancel(ctx)
	defer endProg()
	ictx, endInter := context.WithCancel(ctx)
	defer endInter()
	if events != nil {
		events.Stage("test", index)
		var flush func()
		prog.Stdout, prog.Stderr, flush = events.Output()
		defer flush()
	}
	progDone, interDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(progDone)
		p.prog, p.progErr = run(pctx, prog)
		ex.releaseProgram()
	}()
	go func() {
		defer close(interDone)
		p.inter, p.interErr = run(ictx, inter)
		ex.releaseInteractor()
	}()
	select {
	case <-progDone:
		if p.progErr != nil || p.prog.Result.Status != runtime.StatusOK {
			p.interEnded = endWithin(interDone, endInter)
		}
		<-interDone
	case <-interDone:
		if p.interErr != nil || interactorVerdict(p.inter.Result).status != StatusAccepted {
			p.progEnded = endWithin(progDone, endProg)
		}
		<-progDone
	}
}

// endWithin waits endGrace for done, then ends that side; it reports
// whether it had to.
func endWithin(done <-chan struct{}, end func()) bool {
	t := time.NewTimer(endGrace)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		end()
		<-done
		return true
	}
}

// noteEnded keeps the marks of the sides the daemon ended only where
// that is what ended them (a run canceled is an internal_error of the
// runtime's), and says so in their results.
func (p *pair) noteEnded() {
	mark := func(r *api.Result, ended *bool, why string) {
		*ended = *ended && r.Status == runtime.StatusInternalError
		if *ended {
			r.Error = why
		}
	}
	mark(p.prog.Result, &p.progEnded, "ended by the daemon: the interactor had rejected the program")
	mark(p.inter.Result, &p.interEnded, "ended by the daemon: the program had failed")
}

// verdict is an interactive test's outcome.
type verdict struct {
	status, message string
	// fraction is the share of the test's points that a partial verdict
	// (testlib's exit code 7) earned.
	fraction *float64
}

// interactiveVerdict decides a test from the program's run and the
// interactor's (docs/judge-interactors.md, "Verdicts"):
//  1. the program's limits (time, memory, output) and sandboxd's own
//     failures come first;
//  2. then the interactor's rejection (wrong answer, presentation error,
//     partial, or its own failure, checker_error), also over a program that
//     crashed or exited non-zero: once the interactor has ended, the
//     program's next read or write fails (EOF, SIGPIPE), so such a crash
//     is the rejection's consequence;
//  3. then the program's runtime error;
//  4. else accepted.
//
// An interactor the daemon ended (the program had failed) gives no
// verdict; a program the daemon ended (the interactor had rejected it)
// gets the interactor's.
func interactiveVerdict(prog, inter *api.Result, progEnded, interEnded bool) verdict {
	iv := interactorVerdict(inter)
	switch {
	case progEnded:
		return iv
	case prog.Status != runtime.StatusOK && prog.Status != runtime.StatusRuntimeError:
		return verdict{status: string(prog.Status), message: iv.message}
	case interEnded:
		return verdict{status: string(prog.Status)}
	case iv.status != StatusAccepted:
		return iv
	case prog.Status != runtime.StatusOK:
		return verdict{status: string(prog.Status), message: iv.message}
	default:
		return iv
	}
}

// interactorVerdict reads the interactor's exit code as testlib's.
func interactorVerdict(r *api.Result) verdict {
	v := verdict{message: firstLine(r.Stderr)}
	switch {
	case r.Status == runtime.StatusOK:
		v.status = StatusAccepted
	case r.Status != runtime.StatusRuntimeError || r.Signal != nil:
		v.status = api.StatusCheckerError
		if v.message == "" {
			v.message = fmt.Sprintf("the interactor ended with %s", r.Status)
		}
	case r.ExitCode == 1:
		v.status = StatusWrongAnswer
	case r.ExitCode == 2:
		v.status = api.StatusPresentationError
	case r.ExitCode == 7:
		v.status = api.StatusPartial
		f, ok := pointsFraction(v.message)
		if !ok {
			v.status = api.StatusCheckerError
			v.message = fmt.Sprintf("the interactor exited 7 (partial) without points on its stderr's first line: %q", v.message)
			break
		}
		v.fraction = &f
	default:
		v.status = api.StatusCheckerError
		if v.message == "" {
			v.message = fmt.Sprintf("the interactor exited %d", r.ExitCode)
		}
	}
	return v
}

// pointsFraction reads the first number of line, after an optional word
// "points": a share of the test's points, between 0 and 1.
func pointsFraction(line string) (float64, bool) {
	fields := strings.Fields(line)
	if len(fields) > 0 && strings.EqualFold(fields[0], "points") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return 0, false
	}
	return f, true
}

// maxMessage bounds a test's message: the interactor's first line.
const maxMessage = 1024

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	line = strings.TrimRight(line, "\r")
	if len(line) > maxMessage {
		line = strings.ToValidUTF8(line[:maxMessage], "")
	}
	return line
}

// interactiveSize is what an interactive test's result keeps beyond the
// program's outputs: the interactor's and the transcript (outputBudget).
func interactiveSize(tr *api.TestResult) int64 {
	var n int64
	if r := tr.Interactor; r != nil {
		n += int64(len(r.Stdout) + len(r.Stderr))
	}
	if t := tr.Transcript; t != nil {
		n += int64(len(t.ToProgram) + len(t.FromProgram))
	}
	return n
}

// dropInteractive drops them, with the program's outputs.
func dropInteractive(tr *api.TestResult) {
	if r := tr.Interactor; r != nil {
		r.Stdout, r.Stderr, r.StdoutEncoding, r.StderrEncoding = "", "", "", ""
	}
	tr.Transcript = nil
}

// together is the core as runner.Together needs it: *execution.Core.
type together interface {
	Together(ctx context.Context, key string, obs execution.Observer,
		fn func(run func(context.Context, execution.Stage) (*execution.Output, error)) error) error
}

// Together runs fn under one admission slot of the call's
// (execution.Core.Together).
func (r runner) Together(ctx context.Context, fn func(run func(context.Context, execution.Stage) (*execution.Output, error)) error) error {
	t, ok := r.s.(together)
	if !ok {
		return errors.New("interactor: the execution core cannot run two stages at once")
	}
	return t.Together(ctx, r.call.Key, r.call.Observer, fn)
}

// interactor checks and settles a request's interactor: nil without one.
// "interactor" needs tests, and excludes a checker and a terminal; its
// language, version and files are checked as the program's are.
func (s *Service) interactor(ctx context.Context, call Call, req *api.ExecuteRequest) (*Interactor, error) {
	if req.Interactor == nil {
		switch {
		case req.InteractorLimits != nil:
			return nil, errdefs.Invalidf(`"interactor_limits" needs "interactor"`)
		case req.Record:
			return nil, errdefs.Invalidf(`"record" needs "interactor"`)
		}
		return nil, nil
	}
	switch {
	case len(req.Tests) == 0 && req.Testset == "":
		return nil, errdefs.Invalidf(`"interactor" needs "tests": it talks to the program in each test`)
	case req.Checker != nil:
		return nil, errdefs.Invalidf(`"interactor" and "checker" exclude each other: the interactor gives the verdict`)
	case req.TTY || call.TTY != nil:
		return nil, errdefs.Invalidf(`"interactor" and "tty" exclude each other: the program's stdin and stdout are the interactor's`)
	}
	p := req.Interactor
	lang, err := s.lookup(p.Language)
	if err != nil {
		return nil, fmt.Errorf("interactor: %w", err)
	}
	files, err := s.interactorFiles(p)
	if err != nil {
		return nil, err
	}
	version, img, err := s.version(ctx, call.Key, lang)
	if err != nil {
		if errors.Is(err, images.ErrNotFound) || errors.Is(err, images.ErrUnavailable) {
			return nil, unavailable("interactor: language %s is in the catalog but its image %s is not available", lang.Name, lang.Image)
		}
		return nil, err
	}
	if !VersionMatches(p.Version, version) {
		return nil, fmt.Errorf("%w: interactor: %s version %q is not available; this daemon has %s %s",
			ErrUnknown, lang.Name, p.Version, lang.Name, version)
	}
	run, compile, err := s.interactorLimits(call, lang, req.InteractorLimits)
	if err != nil {
		return nil, err
	}
	return &Interactor{Language: lang, Version: version, ImageID: img.ID, Files: files, Limits: run, CompileLimits: compile,
		Record: req.Record}, nil
}

// interactorFiles checks the interactor's files as the program's are; the
// names of the test's files are taken.
func (s *Service) interactorFiles(p *api.Program) ([]rootfs.File, error) {
	if len(p.Files) == 0 || p.Files[0].Name == "" {
		return nil, errdefs.Invalidf(`"interactor": "files" is required; the first file, with a name, is the main file`)
	}
	files, err := execution.DecodeFiles(p.Files)
	if err != nil {
		return nil, fmt.Errorf("interactor: %w", err)
	}
	for _, f := range files {
		if int64(len(f.Data)) > s.MaxSource {
			return nil, errdefs.Newf(errdefs.ErrTooLarge, "interactor: file %q is larger than the %d-byte source limit", f.Name, s.MaxSource)
		}
		if reservedInteractorName(f.Name) {
			return nil, errdefs.Invalidf(`"interactor": a file may not be named %q: the test's %s, %s and %s take those names`,
				f.Name, interactorInput, interactorOutput, interactorAnswer)
		}
	}
	return files, nil
}

// interactorLimits settles the interactor's run limits as the program's
// are settled (the daemon's defaults, its language's, interactor_limits,
// the maximums, the caller's caps), and its compile's from the defaults.
func (s *Service) interactorLimits(call Call, lang *Language, ask *api.Limits) (run, compile limits.Set, err error) {
	caps := call.Caps.Over(s.Maximums)
	runAsk, err := limits.FromAPI(ask, "interactor_limits")
	if err != nil {
		return run, compile, err
	}
	runBase := lang.RunLimits().Over(s.Defaults).Capped(s.Maximums)
	if run, err = limits.Resolve(runAsk, runBase, s.Maximums, "interactor_limits"); err != nil {
		return run, compile, err
	}
	compileBase := compileDefaults().Then(lang.BuildLimits()).Over(s.Defaults).Capped(s.Maximums)
	if compile, err = limits.Resolve(limits.Partial{}, compileBase, s.Maximums, "interactor's compile"); err != nil {
		return run, compile, err
	}
	return run.Capped(caps), compile.Capped(caps), nil
}
