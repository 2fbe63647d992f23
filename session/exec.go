package session

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
)

// beginExec counts an exec in, within the session's limit of concurrent
// execs; it fails once the session has ended.
func (s *Session) beginExec(max int, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
		return ErrUnknown
	case s.inflight >= max:
		return &QuotaError{RetryAfter: time.Second,
			Message: fmt.Sprintf("this sandbox already runs %d execs (max_execs_per_sandbox); retry when one ends", s.inflight)}
	}
	s.inflight++
	s.lastActive = now
	s.work.Add(1)
	return nil
}

func (s *Session) endExec(now time.Time) {
	s.mu.Lock()
	s.inflight--
	s.lastActive = now
	s.mu.Unlock()
	s.work.Done()
}

// buildOptions are the same for every sandbox of the session.
func (s *Session) buildOptions(uid, gid int) runtime.BuildOptions {
	return runtime.BuildOptions{Rootfs: s.rootfs, UID: uid, GID: gid, Limits: s.spec.Limits, Workspace: s.ws}
}

// sandbox returns the sandbox for an exec: the parked one; or the one
// being built, when no other exec waits for it (it is further along than
// a new build would be); or a new one.
func (m *Manager) sandbox(ctx context.Context, s *Session) (*runtime.Sandbox, error) {
	select {
	case sb := <-s.parked:
		if sb != nil {
			return sb, nil
		}
	default:
		s.mu.Lock()
		wait := s.building && s.waiting == 0
		if wait {
			s.waiting++
		}
		s.mu.Unlock()
		if wait {
			sb, err := s.awaitBuild(ctx)
			if sb != nil || err != nil {
				return sb, err
			}
		}
	}
	sb, err := m.o.Engine.Build(ctx, s.buildOptions(m.o.UID, m.o.GID))
	if err != nil {
		return nil, fmt.Errorf("building sandbox: %w", err)
	}
	return sb, nil
}

// awaitBuild waits for the background build; nil, nil when it failed.
func (s *Session) awaitBuild(ctx context.Context) (*runtime.Sandbox, error) {
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}()
	select {
	case sb := <-s.parked:
		return sb, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refill builds the next exec's sandbox in the background, unless one is
// parked or being built, or the session has ended. Its result goes to
// s.parked, nil when the build failed (a waiting exec then builds its own).
func (m *Manager) refill(s *Session) {
	s.mu.Lock()
	if s.ended || len(s.parked) > 0 || s.building {
		s.mu.Unlock()
		return
	}
	s.building = true
	s.work.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.work.Done()
		sb, err := m.o.Engine.Build(s.ctx, s.buildOptions(m.o.UID, m.o.GID))
		if err != nil && s.ctx.Err() == nil {
			m.log.Warn("building a session's next sandbox", "session", s.id, "err", err)
		}
		s.mu.Lock()
		s.building = false
		if !s.ended {
			s.parked <- sb // never blocks: one builder, and the slot was empty
			sb = nil
		}
		s.mu.Unlock()
		if sb != nil {
			m.destroy(s, sb)
		}
	}()
}

// Exec runs one program in the session owner's sandbox id: a fresh
// sandbox over the session's workspace, in the owner's admission line.
// Every process of the exec is gone when it returns.
func (m *Manager) Exec(ctx context.Context, owner, id string, x ExecSpec) (*ExecResult, error) {
	s, err := m.Get(owner, id)
	if err != nil {
		return nil, err
	}
	if err := s.beginExec(m.o.MaxExecs, time.Now()); err != nil {
		return nil, err
	}
	defer func() { s.endExec(time.Now()) }()
	// The exec ends with the request or with the session (DELETE, TTL),
	// also while it waits for an admission slot: the session's end waits
	// for its execs.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	res, err := m.exec(runCtx, s, x)
	if s.ctx.Err() != nil && ctx.Err() == nil {
		// Cut by the session's end, not by the caller (Run then reports
		// a cancelled run as internal_error): the sandbox is gone, which
		// is what the caller is told. An exec that ended just before is
		// told the same; its sandbox is gone all the same.
		return nil, fmt.Errorf("sandbox %s ended during the exec: %w", id, ErrUnknown)
	}
	return res, err
}

// ExecResult is an exec's result and how long it waited for its slot.
type ExecResult struct {
	Result    *api.Result
	QueueWait time.Duration
}

// exec admits and runs one exec of s in a fresh sandbox.
func (m *Manager) exec(ctx context.Context, s *Session, x ExecSpec) (*ExecResult, error) {
	queued := time.Now()
	slot, err := m.o.Slots.Acquire(ctx, s.spec.Owner)
	if err != nil {
		return nil, err
	}
	defer slot()
	wait := time.Since(queued)
	sb, err := m.sandbox(ctx, s)
	if err != nil {
		return nil, err
	}
	s.track(sb, true)
	res, err := sb.Run(ctx, runtime.Request{
		Args: x.Args, Env: m.execEnv(s, x),
		Stdin: x.stdin(), Limits: x.Limits, Dir: x.Dir, Stdout: x.Stdout, Stderr: x.Stderr,
		TTY: x.TTY, Control: x.Control,
	})
	// Run has ended every process of the exec. A reusable sandbox serves
	// the session's next exec; any other is torn down (cgroup, mounts,
	// namespaces) off the answer path.
	s.track(sb, false)
	if !sb.Recycle() || !s.park(sb) {
		m.destroy(s, sb)
	}
	// The next exec's sandbox is built now, not while this one ran: on a
	// small machine its ~15 ms of CPU would slow the run it waits behind.
	m.refill(s)
	if err != nil {
		return nil, err
	}
	s.account(res)
	return &ExecResult{Result: res, QueueWait: wait}, nil
}

// park keeps a recycled sandbox for the session's next exec, when the
// session goes on and nothing is parked or being built (whose result the
// slot is kept for).
func (s *Session) park(sb *runtime.Sandbox) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.building || len(s.parked) > 0 {
		return false
	}
	s.parked <- sb
	return true
}

// track adds sb to (or drops it from) the execs whose usage GET reports.
func (s *Session) track(sb *runtime.Sandbox, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[*runtime.Sandbox]struct{}{}
	}
	if on {
		s.running[sb] = struct{}{}
	} else {
		delete(s.running, sb)
	}
}

func (s *Session) account(r *api.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.execs++
	s.cpu += time.Duration(r.CPUTimeMS * float64(time.Millisecond))
	s.peak = max(s.peak, r.MemoryPeakBytes)
	s.lastExec = time.Now()
}

// destroy tears sb down in the background; the session's end waits for it.
func (m *Manager) destroy(s *Session, sb *runtime.Sandbox) {
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		if err := sb.Destroy(); err != nil {
			m.log.Error("destroying a session's sandbox", "session", s.id, "sandbox", sb.ID(), "err", err)
		}
	}()
}

// stdin is the program's standard input: the stream, or the bytes.
func (x *ExecSpec) stdin() io.Reader {
	if x.StdinStream != nil {
		return x.StdinStream
	}
	return bytes.NewReader(x.Stdin)
}
