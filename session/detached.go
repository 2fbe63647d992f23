package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/runtime"
)

// A detached exec is a program of a session that outlives the call that
// started it: a server, a watcher. It runs like any exec, in a fresh
// sandbox over the session's workspace, and counts among the session's
// execs in flight (max_execs_per_sandbox) until it ends; it holds an
// admission slot only while its sandbox is obtained and its program
// started, not while it runs, since the session's cgroup group bounds
// what it uses. It ends by
// itself, when killed (Kill), at its wall or CPU time, or with the
// session: its context is the session's.

// The states of a detached exec.
const (
	ExecRunning = "running"
	ExecExited  = "exited" // ended by itself or at a limit: see its result
	ExecKilled  = "killed" // ended by Kill
)

// KeptEnded is how many ended detached execs a session keeps, with their
// results, for GET; older ones are forgotten (404 unknown_exec).
const KeptEnded = 16

// ErrUnknownExec: the session has no (or no longer any) exec of this id.
var ErrUnknownExec = errdefs.New(errdefs.ErrNotFound, "no such exec in this sandbox")

// Detached is one detached exec.
type Detached struct {
	id      string
	cmd     []string
	started time.Time
	cancel  context.CancelFunc
	done    chan struct{} // closed once it has ended and its result is set
	// stdin is the program's input: open until a client closes it.
	stdin *stdinPipe
	// launched: the program started (its call answers 202).
	launched atomic.Bool
	// control carries attached clients' signals to the program.
	control chan runtime.Control

	mu     sync.Mutex
	state  string
	ended  time.Time
	result *api.Result
	failed error // the exec broke (no result)
	kill   bool

	out *outputs
}

// ExecInfo is a detached exec's state, as GET shows it.
type ExecInfo struct {
	ID        string
	Cmd       []string
	State     string
	StartedAt time.Time
	EndedAt   time.Time // zero while it runs
	// Result is set once it has ended (nil while running, and when it
	// broke: Err says why).
	Result *api.Result
	Err    error
}

// ID names the exec in the API.
func (d *Detached) ID() string { return d.id }

// Info returns its state now.
func (d *Detached) Info() ExecInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ExecInfo{ID: d.id, Cmd: d.cmd, State: d.state, StartedAt: d.started, EndedAt: d.ended, Result: d.result, Err: d.failed}
}

// Control takes an attached client's signals for the program (the
// program's process group gets them, as in an interactive run); a send
// must not block: the channel holds a few.
func (d *Detached) Control() chan runtime.Control { return d.control }

// Done is closed when the exec has ended.
func (d *Detached) Done() <-chan struct{} { return d.done }

// WriteStdin hands data to the program once it reads (through its 64
// KiB pipe), or fails when ctx ends, stdin is closed or the exec has
// ended.
func (d *Detached) WriteStdin(ctx context.Context, data []byte) error {
	return d.stdin.write(ctx, data)
}

// CloseStdin gives the program end of file.
func (d *Detached) CloseStdin() { d.stdin.close() }

// Attach subscribes to the exec's output: what is kept so far, then
// every later chunk. Call Detach on it when done.
func (d *Detached) Attach() *Attachment { return d.out.attach() }

// Kill ends the exec and waits until it has ended or ctx ends.
func (d *Detached) Kill(ctx context.Context) error {
	d.mu.Lock()
	if d.state == ExecRunning {
		d.kill = true
	}
	d.mu.Unlock()
	d.cancel()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish records how the exec ended and wakes its waiters.
func (d *Detached) finish(res *api.Result, err error) {
	d.out.close()
	d.stdin.end() // the runtime's feeder, blocked on a read, ends
	d.mu.Lock()
	d.ended, d.failed, d.state = time.Now(), err, ExecExited
	if d.kill && res != nil && res.Status == api.StatusInternalError {
		// The run was cancelled (runtime: "run canceled"): that was the
		// kill, which SIGKILLed the program. (One that ended by itself
		// just before keeps its own result.)
		sig := "SIGKILL"
		d.state = ExecKilled
		res.Status, res.Error, res.Signal, res.ExitCode = api.StatusRuntimeError, "", &sig, 128+9
	}
	d.result = res
	d.mu.Unlock()
	close(d.done)
}

// registry is a session's detached execs: every running one and the last
// KeptEnded ended ones, oldest first.
type registry struct {
	list []*Detached
}

func (r *registry) add(d *Detached) { r.list = append(r.list, d) }

// prune forgets the oldest ended execs beyond KeptEnded.
func (r *registry) prune() {
	ended := 0
	for _, d := range r.list {
		if d.isEnded() {
			ended++
		}
	}
	kept := r.list[:0]
	for _, d := range r.list {
		if ended > KeptEnded && d.isEnded() {
			ended--
			continue
		}
		kept = append(kept, d)
	}
	clear(r.list[len(kept):])
	r.list = kept
}

func (r *registry) get(id string) *Detached {
	for _, d := range r.list {
		if d.id == id {
			return d
		}
	}
	return nil
}

func (d *Detached) isEnded() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Detach starts x in the owner's session id and returns once the
// program has started (or could not be): its sandbox is obtained and the
// program launched within ctx, holding an admission slot meanwhile; then
// it runs on, past ctx, until it ends, is killed, or the session ends.
func (m *Manager) Detach(ctx context.Context, owner, id string, x ExecSpec) (*Detached, error) {
	s, err := m.Get(owner, id)
	if err != nil {
		return nil, err
	}
	if err := s.beginExec(m.o.MaxExecs, time.Now()); err != nil {
		return nil, err
	}
	release, sb, err := m.detachedSandbox(ctx, s)
	if err != nil {
		s.endExec(time.Now())
		return nil, err
	}
	defer release()
	runCtx, cancel := context.WithCancel(s.ctx)
	in := newStdinPipe()
	d := &Detached{id: newExecID(), cmd: x.Args, started: time.Now(), cancel: cancel, done: make(chan struct{}),
		stdin: in, state: ExecRunning, out: newOutputs(x.Limits.OutputBytes, runCtx.Done()),
		control: make(chan runtime.Control, 4)}
	var stdin io.Reader = in
	if len(x.Stdin) > 0 {
		stdin = io.MultiReader(x.stdin(), in)
	}
	started := make(chan error, 1)
	go m.runDetached(runCtx, s, sb, d, started, runtime.Request{
		Args: x.Args, Env: m.execEnv(s, x),
		Stdin: stdin, Limits: x.Limits, Dir: x.Dir, OutputRing: true,
		Stdout: d.out.writer(false), Stderr: d.out.writer(true), Control: d.control,
		Started: func() { d.launched.Store(true); started <- nil },
	})
	if err := <-started; err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.detached.add(d)
	s.mu.Unlock()
	// The next exec's sandbox is built now: this one runs on, and the
	// next exec would otherwise wait for a build of its own.
	m.refill(s)
	return d, nil
}

// detachedSandbox gets the sandbox of a detached exec, in an admission
// slot of the owner's line; release frees the slot, once the program is
// launched.
func (m *Manager) detachedSandbox(ctx context.Context, s *Session) (release func(), _ *runtime.Sandbox, _ error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	slot, err := m.o.Slots.Acquire(ctx, s.spec.Owner)
	if err != nil {
		return nil, nil, err
	}
	sb, err := m.sandbox(ctx, s)
	if s.ctx.Err() != nil {
		if sb != nil {
			m.destroy(s, sb)
		}
		err = fmt.Errorf("sandbox %s ended: %w", s.id, ErrUnknown)
	}
	if err != nil {
		slot()
		return nil, nil, err
	}
	return slot, sb, nil
}

// runDetached runs d to its end, then tears its sandbox down as exec
// does. started gets nil once the program has started, or the error that
// kept it from starting (d is then dropped: its call answers the error).
func (m *Manager) runDetached(ctx context.Context, s *Session, sb *runtime.Sandbox, d *Detached, started chan<- error, req runtime.Request) {
	defer s.endExec(time.Now())
	defer d.cancel()
	s.track(sb, true)
	res, err := sb.Run(ctx, req)
	// A stream's reader still handing a chunk to a stalled client lets go.
	d.cancel()
	s.track(sb, false)
	m.destroy(s, sb)
	m.refill(s)
	if err != nil && !d.launched.Load() {
		d.finish(nil, err)
		started <- err
		return
	}
	if err == nil {
		s.account(res)
	}
	d.finish(res, err)
	s.mu.Lock()
	s.detached.prune()
	s.mu.Unlock()
}

// Execs lists owner's session id's detached execs, oldest first.
func (m *Manager) Execs(owner, id string) ([]*Detached, error) {
	s, err := m.Get(owner, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Detached{}, s.detached.list...), nil
}

// DetachedExec returns one detached exec of owner's session id.
func (m *Manager) DetachedExec(owner, id, execID string) (*Detached, error) {
	s, err := m.Get(owner, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.detached.get(execID); d != nil {
		return d, nil
	}
	return nil, ErrUnknownExec
}

func newExecID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "ex-" + hex.EncodeToString(b)
}
