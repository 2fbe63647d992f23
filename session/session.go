// Package session runs sandboxes that live across calls. A session owns a
// workspace (its /work and /tmp, and one slot of host ids) for its whole
// life; each exec runs in fresh namespaces over that workspace, so that
// files persist while every exec's processes and accounting are its own
// and end with it (a detached exec's when it ends, at the latest with the
// session: detached.go). All its execs share the workspace's network
// namespace, so a server one runs answers the others. One sandbox is kept
// parked for the next exec (the last exec's, recycled, or one built
// ahead), so that an exec costs a launch, not a build.
//
// A session holds its image (it can't be removed under it) and counts
// against its owner's and the daemon's session quotas. The manager ends
// sessions on DELETE, at their TTL, after their idle timeout and when the
// daemon stops; what a crashed daemon leaves, the runtime's Recover
// removes at the next start, as it does for one-shot sandboxes.
package session

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// ErrUnknown: no session of this owner has this id. Another owner's
// session gets the same answer: a caller can't learn that it exists.
var ErrUnknown = errdefs.New(errdefs.ErrNotFound, "no such sandbox")

// ErrClosed: the daemon is shutting down and takes no new sandbox (503
// busy, as a full queue; the client retries against the next instance).
var ErrClosed = errdefs.New(errdefs.ErrExhausted, "the daemon is shutting down")

// QuotaError is a session refused by a quota (class errdefs.ErrExhausted;
// the API answers 429 with Retry-After).
type QuotaError struct {
	RetryAfter time.Duration
	Message    string
}

func (e *QuotaError) Error() string { return e.Message }
func (e *QuotaError) Unwrap() error { return errdefs.ErrExhausted }

// Spec is a validated request for a session.
type Spec struct {
	Owner string
	// Image is the image's name in the store; Language and Version are
	// set when the session was asked for by language.
	Image, Language, Version string
	// Env is added to the image's environment (the language's, then the
	// request's), as for one-shot runs.
	Env    []string
	Files  []rootfs.File
	Limits limits.Set
	TTL    time.Duration
	Idle   time.Duration
	Labels map[string]string
	// Network, when set, lets the session's programs out through the
	// egress proxy (network.go); nil: loopback only, until SetNetwork.
	Network *execution.Network
}

// ExecSpec is one exec in a session.
type ExecSpec struct {
	Args  []string
	Env   []string
	Stdin []byte
	// Dir is the working directory inside the sandbox (/work or below).
	Dir string
	// Limits are the session's with this exec's wall time, CPU time and
	// output cap.
	Limits limits.Set
	// StdinStream, when set, is the program's stdin instead of Stdin,
	// read while it runs.
	StdinStream io.Reader
	// Stdout and Stderr, when set, receive the kept output as it is read.
	Stdout, Stderr io.Writer
	// TTY, when set, runs the program on a pseudo-terminal of this size
	// (runtime.Request.TTY); Control carries a client's signals and
	// resizes while it runs.
	TTY     *runtime.WindowSize
	Control <-chan runtime.Control
}

// Usage is a session's use so far.
type Usage struct {
	CPUTime         time.Duration
	MemoryBytes     int64
	MemoryPeakBytes int64
	WorkBytes       int64
	TmpBytes        int64
	Processes       int64
	ExecsActive     int
	Execs           int64
	LastExec        time.Time
}

// Session is one sandbox that lives across calls.
type Session struct {
	id      string
	spec    Spec
	imgEnv  []string
	rootfs  string
	release func() // the image, held for the session's life
	ws      *runtime.Workspace
	net     *sessionNet // under mu; nil: no network
	created time.Time
	expires time.Time

	// ctx ends with the session: in-flight execs and the builder see it.
	ctx    context.Context
	cancel context.CancelFunc
	work   sync.WaitGroup // execs, builds and teardowns in flight

	mu         sync.Mutex
	lastActive time.Time
	inflight   int
	using      int // files operations in flight
	ended      bool
	// parked holds the sandbox built ahead for the next exec (capacity 1;
	// nil in it: that build failed); building: a build is under way,
	// waiting: an exec waits for it.
	parked   chan *runtime.Sandbox
	building bool
	waiting  int
	running  map[*runtime.Sandbox]struct{}
	detached registry
	execs    int64
	cpu      time.Duration
	peak     int64
	lastExec time.Time
}

// ID names the session in the API.
func (s *Session) ID() string { return s.id }

// Spec is what the session was created with.
func (s *Session) Spec() Spec { return s.spec }

// Created and Expires bound the session's life.
func (s *Session) Created() time.Time { return s.created }

// Expires is when the TTL ends it.
func (s *Session) Expires() time.Time { return s.expires }

// Scratch is the session's /work and /tmp, for the files API. Callers
// must hold the session (Manager.Use) while they use it.
func (s *Session) Scratch() *rootfs.Scratch { return s.ws.Scratch() }

// Usage reads what the session uses now and has used.
func (s *Session) Usage() Usage {
	s.mu.Lock()
	u := Usage{CPUTime: s.cpu, MemoryPeakBytes: s.peak, ExecsActive: s.inflight, Execs: s.execs, LastExec: s.lastExec}
	running := make([]*runtime.Sandbox, 0, len(s.running))
	for sb := range s.running {
		running = append(running, sb)
	}
	s.mu.Unlock()
	for _, sb := range running {
		if ru, err := sb.Usage(); err == nil {
			u.MemoryBytes += ru.MemoryBytes
			u.Processes += ru.Tasks
		}
	}
	u.WorkBytes, u.TmpBytes, _ = s.ws.Scratch().Used()
	return u
}

// ready reports whether the session is usable: created and not ending.
func (s *Session) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil && !s.ended
}

// hold keeps the session's workspace in place for a files operation.
func (s *Session) hold(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return ErrUnknown
	}
	s.lastActive = now
	s.using++
	s.work.Add(1)
	return nil
}

// unhold ends a files operation; the idle timeout counts from now.
func (s *Session) unhold(now time.Time) {
	s.mu.Lock()
	s.lastActive = now
	s.using--
	s.mu.Unlock()
	s.work.Done()
}

// due reports whether the session's TTL or idle timeout has passed, and
// which one. An exec or a files operation in flight (a long upload or
// download) keeps an idle session alive.
func (s *Session) due(now time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
		return false, ""
	case !now.Before(s.expires):
		return true, "ttl"
	case s.inflight == 0 && s.using == 0 && now.Sub(s.lastActive) >= s.spec.Idle:
		return true, "idle"
	}
	return false, ""
}
