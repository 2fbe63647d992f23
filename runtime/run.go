package runtime

import (
	"context"
	"errors"
	"io"
	"os"
	goruntime "runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime/entry"
)

// Request is one program to run.
type Request struct {
	Args   []string
	Env    []string
	Files  []rootfs.File
	Stdin  io.Reader // nil: the program reads EOF
	Limits Limits
	// Dir is the program's working directory inside the sandbox; empty
	// means /work.
	Dir string
	// Stdout and Stderr, when set, receive the kept output as it arrives.
	Stdout, Stderr io.Writer
	// OutputRing keeps the last Limits.OutputBytes of each stream instead
	// of the first, and more output never ends the run: a detached
	// process (a server) logs for as long as it lives. Stdout and Stderr
	// then receive every byte.
	OutputRing bool
	// Started, when set, is called once the program has started: Run
	// then goes on until it ends. (Run returns an error without calling
	// it when the program could not be started.)
	Started func()
	// TTY, when set, runs the program on a pseudo-terminal of this size,
	// on the sandbox's own devpts instance: its stdin, stdout and stderr
	// are the terminal, so all its output is Stdout (ONLCR turns "\n" into
	// "\r\n", and what is typed is echoed, as on any terminal), and the end
	// of Stdin is typed as Ctrl-D (the terminal's EOF character).
	TTY *WindowSize
	// Control, when set, carries a client's signals and resizes while the
	// program runs; what waits in it when the program starts is applied
	// then, and what comes after its end is dropped.
	Control <-chan Control
	// StdinFile and StdoutFile, when set, are the program's stdin and
	// stdout instead of pipes of the run: one end of a pipe whose other
	// end another sandbox's program holds (an interactive test), handed
	// to the sandbox as a descriptor, so that the bytes go from one
	// program to the other with no copy by sandboxd. The run neither feeds
	// nor captures that stream (Stdin must be nil with StdinFile; the
	// result's stdout is empty with StdoutFile) and never closes these
	// files: the caller closes its copies once Started was called, or Run
	// returned, so that each program sees the pipe's end when the other's
	// side is gone. Not with TTY.
	StdinFile, StdoutFile *os.File
	// CPUs, when set, are the CPUs the program runs on (its affinity,
	// set by the entry before it starts): a placement, which the program
	// may change, not a limit.
	CPUs []int
	// Owner is who asked for the run (the API's user): a reusable
	// sandbox may give a run the network namespace of the last run of the
	// same owner (reuse.go), never another's. "" is nobody's: the run
	// gets a new one.
	Owner string
	// ShareNetwork runs the program of a reusable sandbox in the
	// sandbox's own network namespace, where ListenInside listens (the
	// egress proxy), instead of a new one; the sandbox then serves no
	// other run.
	ShareNetwork bool
}

// WindowSize is a terminal's size in characters.
type WindowSize struct{ Rows, Cols uint16 }

// Control is one thing a client does to a running program: a signal
// (delivered by the entry: to the terminal's foreground process group, or
// to the program's process group) or a terminal's new size (ignored
// without a terminal).
type Control struct {
	Signal unix.Signal
	Resize *WindowSize
}

// ErrUsed is returned when a sandbox is asked to run a second program.
var ErrUsed = errdefs.New(errdefs.ErrConflict, "sandbox already used: a sandbox runs one program (a reusable one, one at a time, until Recycle)")

// stopReason is why sandboxd ended a run before the program did; stopNone
// when it did not.
type stopReason int

const (
	stopNone stopReason = iota
	stopWall
	stopCPU
	stopOutput
	stopCanceled
)

// Run runs req's program in the sandbox and returns its result. A sandbox
// runs one program; destroy it afterwards, or, when it is reusable,
// Recycle it for another. An error means the program
// never ran (bad request, command not runnable) or the sandbox broke.
func (s *Sandbox) Run(ctx context.Context, req Request) (*Result, error) {
	if !s.used.CompareAndSwap(false, true) {
		return nil, ErrUsed
	}
	if len(req.Args) == 0 || req.Args[0] == "" {
		return nil, invalidf("no command given")
	}
	if err := req.Limits.Validate(); err != nil {
		return nil, err
	}
	if req.TTY != nil && (req.TTY.Rows == 0 || req.TTY.Cols == 0) {
		return nil, invalidf("a terminal needs rows and cols")
	}
	if req.TTY != nil && (req.StdinFile != nil || req.StdoutFile != nil) {
		return nil, invalidf("a terminal and passed stdin or stdout exclude each other")
	}
	if req.StdinFile != nil && req.Stdin != nil {
		return nil, invalidf("stdin is either passed as a file or fed, not both")
	}
	if err := s.applyRunLimits(req); err != nil {
		return nil, err
	}
	x, err := s.launch(req)
	if err != nil {
		return nil, err
	}
	if req.Control != nil {
		go s.relayControl(x, req.Control)
	}
	w := s.watch(ctx, x)
	return s.collect(x, w)
}

// execution is one program of a sandbox, from its launch to its result.
type execution struct {
	limits Limits
	// stops carries reasons found outside the watch loop: an overflow,
	// seen by a stream's reader.
	stops     chan stopReason
	out, errc *capture
	// exited receives the entry's report of the program's end.
	exited chan exitReport
	start  time.Time
	// term is the terminal's master, with a terminal; nil otherwise.
	term *os.File
	// ended closes when the run is being collected: control stops.
	ended chan struct{}
}

// stop records r without ever blocking a stream's reader: when the channel
// is full, reasons enough are already waiting.
func (x *execution) stop(r stopReason) {
	select {
	case x.stops <- r:
	default:
	}
}

// exitReport is the entry's report of how the program ended.
type exitReport struct {
	ws  unix.WaitStatus
	err error
}

// watched is how the watch ended: the program's end, or why sandboxd ends
// the run.
type watched struct {
	reason  stopReason
	exit    exitReport
	gotExit bool
	end     time.Time
}

// applyRunLimits gives the parked sandbox the request's limits before any
// of the program runs: /work and /tmp resized (and the request's files put
// in /work, once it has the request's size), the cgroup's limits, and
// accounting started afresh so that the result counts the program alone.
func (s *Sandbox) applyRunLimits(req Request) error {
	if s.fresh {
		if err := s.readyRun(req); err != nil {
			return err
		}
	} else if !s.borrowed && scratchSizes(req.Limits) != scratchSizes(s.built) {
		if err := s.scratch.Resize(scratchSizes(req.Limits)); err != nil {
			return err
		}
	}
	if err := s.scratch.Populate(req.Files); err != nil {
		if errors.Is(err, rootfs.ErrBadFileName) {
			return invalidf("%v", err)
		}
		return err
	}
	// The parked entry's own tasks (and a reusable sandbox's prepared
	// PID 1 of the run) count against pids.max; give the program its full
	// allowance on top of them.
	entryTasks, err := s.cg.Tasks()
	if err != nil {
		return err
	}
	if err := s.cg.Apply(cgroupLimits(req.Limits), entryTasks); err != nil {
		return err
	}
	return s.cg.StartAccounting()
}

// launch starts reading the program's output and feeding its input, then
// hands the program to the entry, with the run's rlimits and the seccomp
// filter. The wall time starts here.
func (s *Sandbox) launch(req Request) (*execution, error) {
	x := &execution{limits: req.Limits, stops: make(chan stopReason, 4), exited: make(chan exitReport, 1), ended: make(chan struct{})}
	x.out = newCapture(req.Limits.OutputBytes, req.Stdout, func() { x.stop(stopOutput) })
	x.errc = newCapture(req.Limits.OutputBytes, req.Stderr, func() { x.stop(stopOutput) })
	if req.OutputRing {
		x.out.ring, x.out.last.Limit = true, req.Limits.OutputBytes
		x.errc.ring, x.errc.last.Limit = true, req.Limits.OutputBytes
	}
	l := &entry.Launch{Args: req.Args, Env: req.Env, Dir: req.Dir, Rlimits: rlimitsFor(req.Limits), CPUs: req.CPUs}
	if l.Env == nil {
		l.Env = []string{}
	}
	if l.Dir == "" {
		l.Dir = rootfs.WorkPath
	}
	stdin, stdout, stderr := s.stdin, s.stdout, s.stderr
	release := func() {}
	if s.fresh {
		p, err := newRunPipes(req.StdinFile, req.StdoutFile)
		if err != nil {
			s.reuse.spent = true // its prepared run waits for a launch
			return nil, err
		}
		// The prepared run loaded the filter already.
		l.Pipes = &entry.Pipes{Stdin: p.child[0], Stdout: p.child[1], Stderr: p.child[2]}
		stdin, stdout, stderr = p.stdin, p.stdout, p.stderr
		release = p.closeChild
	} else {
		l.Filter, l.Stdin, l.Stdout = s.engine.filter, req.StdinFile, req.StdoutFile
	}
	go x.errc.run(stderr)
	if req.TTY != nil {
		l.Rows, l.Cols = req.TTY.Rows, req.TTY.Cols
		// The program's stdio is the terminal: the entry's stdin pipe
		// ends here, and only the entry could write to its stdout.
		_ = stdin.Close()
		if s.fresh {
			_ = stdout.Close()
		}
	} else {
		x.out.start(stdout, req.StdoutFile != nil)
		startFeed(stdin, req.Stdin, req.StdinFile != nil)
	}
	x.start = time.Now()
	_, term, err := s.host.Start(l)
	release()
	if err != nil {
		s.reuse.spent = true
		return nil, err
	}
	if term != nil {
		// Output and input both go through the master; the capture
		// closes it at the end, which also ends a blocked feed.
		x.term = term
		go x.out.run(term)
		go feedTerminal(term, req.Stdin)
	}
	if req.Started != nil {
		req.Started()
	}
	go func() {
		ws, err := s.host.Wait()
		x.exited <- exitReport{ws, err}
	}()
	return x, nil
}

// relayControl applies a client's signals and resizes until the run ends.
func (s *Sandbox) relayControl(x *execution, ctl <-chan Control) {
	for {
		select {
		case <-x.ended:
			return
		case c, ok := <-ctl:
			if !ok {
				return
			}
			if c.Signal != 0 {
				// Fails only once the entry is gone: the run is ending.
				_ = s.host.Signal(c.Signal)
			}
			if c.Resize != nil && x.term != nil {
				resizeTerminal(x.term, *c.Resize)
			}
		}
	}
}

// resizeTerminal sets the terminal's size; the kernel sends SIGWINCH to
// its foreground group. Through the raw descriptor: Fd() would make the
// master blocking and so unclosable under a pending read.
func resizeTerminal(term *os.File, size WindowSize) {
	rc, err := term.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols})
	})
}

// watch waits for the first of: the program's end, an output overflow, the
// wall-time limit, the CPU-time limit, ctx's cancellation. The CPU time is
// read from the cgroup at the earliest moment the limit could be reached,
// and again after every read short of it.
func (s *Sandbox) watch(ctx context.Context, x *execution) watched {
	wall := time.NewTimer(x.limits.WallTime)
	defer wall.Stop()
	cpuCheck := time.NewTimer(s.nextCPUCheck(x.limits, 0))
	defer cpuCheck.Stop()
	for {
		select {
		case ex := <-x.exited:
			return watched{exit: ex, gotExit: true, end: time.Now()}
		case reason := <-x.stops:
			return watched{reason: reason, end: time.Now()}
		case <-wall.C:
			return watched{reason: stopWall, end: time.Now()}
		case <-cpuCheck.C:
			used, err := s.cg.CPUTime()
			if err == nil && used >= x.limits.CPUTime {
				return watched{reason: stopCPU, end: time.Now()}
			}
			cpuCheck.Reset(s.nextCPUCheck(x.limits, used))
		case <-ctx.Done():
			return watched{reason: stopCanceled, end: time.Now()}
		}
	}
}

// collect kills what is left of the sandbox, waits for the entry's last
// word and for both streams to drain (output written before the kill is
// kept), and builds the result.
func (s *Sandbox) collect(x *execution, w watched) (*Result, error) {
	close(x.ended)
	if s.fresh {
		// The run ends, not the sandbox: it may serve another (Recycle).
		s.endFresh(x, &w)
	} else {
		s.killAll()
		if !w.gotExit {
			// The entry may have reported just before the kill.
			select {
			case w.exit = <-x.exited:
				w.gotExit = w.exit.err == nil
			case <-time.After(50 * time.Millisecond):
			}
		}
		s.waitProcess(5 * time.Second)
	}
	x.out.waitDone(2 * time.Second)
	x.errc.waitDone(2 * time.Second)
	if w.reason == stopNone {
		// An output overflow found while draining still counts.
		select {
		case w.reason = <-x.stops:
		default:
		}
	}
	return s.result(x.limits, w.reason, w.exit.ws, w.gotExit && w.exit.err == nil, w.end.Sub(x.start), x.out, x.errc)
}

// nextCPUCheck returns when the CPU limit could be reached at the earliest,
// given the quota: polling sooner would only cost the host CPU.
func (s *Sandbox) nextCPUCheck(l Limits, used time.Duration) time.Duration {
	rate := min(l.CPUs, float64(goruntime.NumCPU()))
	d := time.Duration(float64(l.CPUTime-used) / rate)
	return max(d, 5*time.Millisecond)
}

func (s *Sandbox) result(l Limits, reason stopReason, ws unix.WaitStatus, haveStatus bool, wall time.Duration, out, errc *capture) (*Result, error) {
	r := &Result{WallTimeMS: ms(wall)}
	stdout, outTrunc := out.result()
	stderr, errTrunc := errc.result()
	r.Stdout, r.StdoutEncoding = api.EncodeOutput(stdout)
	r.Stderr, r.StderrEncoding = api.EncodeOutput(stderr)
	r.StdoutTruncated, r.StderrTruncated = outTrunc, errTrunc

	var statErr error
	cpu, err := s.cg.CPUTime()
	statErr = errors.Join(statErr, err)
	r.CPUTimeMS = ms(cpu)
	r.MemoryPeakBytes, err = s.cg.MemoryPeak()
	statErr = errors.Join(statErr, err)
	ooms, err := s.cg.OOMKills()
	statErr = errors.Join(statErr, err)
	r.OOMKilled = ooms > 0

	r.ExitCode, r.Signal = exitStatus(ws, haveStatus)
	r.Status, r.Error = decideStatus(observed{
		accountingErr: statErr,
		stop:          reason,
		oomKilled:     r.OOMKilled,
		truncated:     outTrunc || errTrunc,
		cpuUsed:       cpu,
		cpuLimit:      l.CPUTime,
		exitCode:      r.ExitCode,
		signaled:      r.Signal != nil,
	})
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// startFeed feeds the program's stdin, unless it was passed: then the
// entry's own stdin (a one-run sandbox's) is closed, and a fresh run has
// no pipe for it.
func startFeed(w *os.File, r io.Reader, passed bool) {
	switch {
	case !passed:
		go feedStdin(w, r)
	case w != nil:
		_ = w.Close()
	}
}

func feedStdin(w *os.File, r io.Reader) {
	defer w.Close()
	if r != nil {
		// Fails with EPIPE once the sandbox is gone; that's the end of it.
		_, _ = io.Copy(w, r)
	}
}

// feedTerminal types the input into the terminal; its end is Ctrl-D, the
// terminal's end of file (closing the master would hang the terminal up).
func feedTerminal(term *os.File, r io.Reader) {
	if r == nil {
		return
	}
	if _, err := io.Copy(term, r); err == nil {
		_, _ = term.Write([]byte{4})
	}
}

func (c *capture) waitDone(d time.Duration) {
	select {
	case <-c.done:
	case <-time.After(d):
	}
}
