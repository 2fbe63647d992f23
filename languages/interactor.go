package languages

// Interactive tests (docs/judge.md, "Interactors"): for each test, the
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
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// Interactor is an interactive request's interactor, as the service
// settled it: a program of the judge's, like a checker (Aux).
type Interactor struct {
	Aux
	// Record asks for each test's transcript (api.Transcript): the daemon
	// then copies the exchange instead of passing the pipes directly.
	Record bool

	// args and work are its run command (with the test's files named) and
	// /work, once compiled
	// (prepareInteractor).
	args []string
	work []rootfs.File
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
// takes its compile from the cache) into dir, and settles its run
// command. A compile that failed comes back with its result and no error:
// the request's checker_error. The returned function removes what the
// compile left once the request ends.
func prepareInteractor(ctx context.Context, r Runner, cache Cache, req *Request, dir string) (func(), *api.CompileResult, error) {
	it := req.Interactor
	b := build{lang: it.Language, version: it.Version, imageID: it.ImageID, files: it.Files, limits: it.CompileLimits,
		maxArtifact: req.MaxArtifact}
	work, compiled, err := b.compile(ctx, r, cache, dir)
	cleanup := func() { os.RemoveAll(dir) }
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("interactor: %w", err)
	}
	it.args, it.work = b.runArgs(it.Limits, checkerFiles), work
	return cleanup, compiled, nil
}

// stage is the interactor's run for test t.
func (it *Interactor) stage(t Test) execution.Stage {
	input, answer := testFiles(t)
	files := append(slices.Clone(it.work), input, answer)
	return execution.Stage{Image: it.Language.Image, Args: it.args, Env: it.Language.Env, Files: files, Limits: it.Limits}
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
// interactor's (docs/judge.md, Interactors, "Verdicts"):
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

// interactorVerdict reads the interactor's exit code as testlib's, as a
// checker's is read.
func interactorVerdict(r *api.Result) verdict {
	status, message := readVerdict(r, "interactor")
	v := verdict{status: status, message: message}
	if f, ok := pointsFraction(message); ok && status == StatusPartial {
		v.fraction = &f
	}
	return v
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
	aux, err := s.auxProgram(ctx, call, "interactor", req.Interactor, req.InteractorLimits)
	if err != nil {
		return nil, err
	}
	return &Interactor{Aux: *aux, Record: req.Record}, nil
}
