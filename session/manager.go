package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/runtime"
)

// Engine is what sessions need of the runtime; *runtime.Engine is one.
type Engine interface {
	NewWorkspace(o runtime.WorkspaceOptions) (*runtime.Workspace, error)
	Build(ctx context.Context, opts runtime.BuildOptions) (*runtime.Sandbox, error)
}

// Options configure a Manager. Zero quotas take the documented defaults.
type Options struct {
	Engine Engine
	Images execution.Images
	// Slots is the admission line one-shot runs use too: an exec takes a
	// slot, in its owner's fairness line, like any stage.
	Slots execution.Slots
	// UID and GID run every program; never 0.
	UID, GID int
	// MaxPerUser (default 8) and MaxSessions (0: no count, only memory)
	// bound how many sessions may exist; Memory (default 4 GiB) bounds the
	// sum of their memory limits.
	MaxPerUser, MaxSessions int
	Memory                  int64
	// MaxExecs bounds the execs in flight in one session (default 4).
	MaxExecs int
	// Egress serves the sessions that have a network; nil refuses them.
	Egress *egress.Proxy
	Logger *slog.Logger
	// Node names this daemon among its peers (a Kubernetes pod name);
	// every session id it makes ends with it, so that any peer can tell
	// where a session lives (OwnerOf). Empty: ids name no node.
	Node string
}

// Defaults of Options' quotas.
const (
	DefaultMaxPerUser = 8
	DefaultMemory     = 4 << 30
	DefaultMaxExecs   = 4
	// ReapEvery is how often the reaper looks for sessions past their TTL
	// or idle timeout: they end within this much of their time.
	ReapEvery = 200 * time.Millisecond
)

// Stats count sessions for the metrics.
type Stats struct {
	Active                    int
	Created, Expired, Deleted uint64
}

// Manager holds every session of the daemon.
type Manager struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session
	closed   bool
	stats    Stats
}

// New returns a manager; Run reaps its sessions, Close ends them all.
func New(o Options) *Manager {
	if o.MaxPerUser <= 0 {
		o.MaxPerUser = DefaultMaxPerUser
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.MaxExecs <= 0 {
		o.MaxExecs = DefaultMaxExecs
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, log: log, sessions: map[string]*Session{}}
}

// Stats returns the counts so far.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.Active = len(m.sessions)
	return st
}

// admit checks the quotas for a new session of owner using mem bytes.
func (m *Manager) admit(owner string, mem int64) error {
	if m.closed {
		return ErrClosed
	}
	mine, total := 0, int64(0)
	for _, s := range m.sessions {
		if s.spec.Owner == owner {
			mine++
		}
		total += s.spec.Limits.MemoryBytes
	}
	switch {
	case mine >= m.o.MaxPerUser:
		return &QuotaError{RetryAfter: 10 * time.Second,
			Message: fmt.Sprintf("this user already has %d sandboxes (max_sessions_per_user); delete one first", mine)}
	case m.o.MaxSessions > 0 && len(m.sessions) >= m.o.MaxSessions:
		return &QuotaError{RetryAfter: 10 * time.Second,
			Message: fmt.Sprintf("the daemon already holds %d sandboxes (max_sessions)", len(m.sessions))}
	case total+mem > m.o.Memory:
		return &QuotaError{RetryAfter: 10 * time.Second,
			Message: fmt.Sprintf("the sandboxes' memory limits would exceed session_memory (%d of %d bytes in use)", total, m.o.Memory)}
	}
	return nil
}

// Create makes a session: its workspace with the initial files, held
// image and quotas, and its first sandbox building in the background. It
// answers before that sandbox is ready; the first exec waits for it.
func (m *Manager) Create(spec Spec) (_ *Session, err error) {
	img, release, err := m.o.Images.Acquire(spec.Image)
	if err != nil {
		if errors.Is(err, images.ErrNotFound) {
			return nil, &execution.UnknownImageError{Name: spec.Image}
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	now := time.Now()
	s := &Session{id: newID(m.o.Node), spec: spec, imgEnv: img.Config.Env, rootfs: img.Rootfs, release: sync.OnceFunc(release),
		created: now, expires: now.Add(spec.TTL), lastActive: now, parked: make(chan *runtime.Sandbox, 1)}
	s.spec.Image = img.Name
	m.mu.Lock()
	if err := m.admit(spec.Owner, spec.Limits.MemoryBytes); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	// Reserved before the slow part, so that concurrent creates can't
	// overrun the quotas; the workspace is filled in below.
	m.sessions[s.id] = s
	m.mu.Unlock()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := m.prepare(s); err != nil {
		m.mu.Lock()
		delete(m.sessions, s.id)
		m.mu.Unlock()
		s.cancel()
		s.release()
		return nil, err
	}
	m.mu.Lock()
	m.stats.Created++
	m.mu.Unlock()
	m.refill(s)
	return s, nil
}

// prepare makes the workspace and puts the initial files in it.
func (m *Manager) prepare(s *Session) error {
	ws, err := m.o.Engine.NewWorkspace(runtime.WorkspaceOptions{UID: m.o.UID, GID: m.o.GID,
		Limits: s.spec.Limits})
	if err != nil {
		return fmt.Errorf("creating the sandbox's workspace: %w", err)
	}
	if err := ws.Scratch().Populate(s.spec.Files); err != nil {
		_ = ws.Remove()
		return fmt.Errorf("writing the initial files: %w", err)
	}
	var net *sessionNet
	if s.spec.Network != nil {
		if net, err = m.startNetwork(s, ws, s.spec.Network); err != nil {
			_ = ws.Remove()
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		// The daemon began shutting down meanwhile, and end() found no
		// workspace to remove.
		net.stop()
		_ = ws.Remove()
		return ErrClosed
	}
	s.ws, s.net = ws, net
	return nil
}

// Get returns owner's session id. Any other owner's, a missing or an
// ending one are all ErrUnknown.
func (m *Manager) Get(owner, id string) (*Session, error) {
	m.mu.Lock()
	s, ok := m.sessions[id]
	m.mu.Unlock()
	if !ok || s.spec.Owner != owner || !s.ready() {
		return nil, ErrUnknown
	}
	return s, nil
}

// Use returns owner's session id for a files operation, marked active;
// done must be called when the operation ends, and the session's
// workspace stays until it is.
func (m *Manager) Use(owner, id string) (s *Session, done func(), err error) {
	if s, err = m.Get(owner, id); err != nil {
		return nil, nil, err
	}
	if err := s.hold(time.Now()); err != nil {
		return nil, nil, err
	}
	return s, func() { s.unhold(time.Now()) }, nil
}

// List returns owner's sessions, oldest first.
func (m *Manager) List(owner string) []*Session {
	m.mu.Lock()
	var out []*Session
	for _, s := range m.sessions {
		if s.spec.Owner == owner && s.ready() {
			out = append(out, s)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *Session) int { return a.created.Compare(b.created) })
	return out
}

// Delete ends owner's session id. When it returns, every process, mount,
// cgroup and file of the session is gone.
func (m *Manager) Delete(owner, id string) error {
	s, err := m.Get(owner, id)
	if err != nil {
		return err
	}
	return m.end(s, "deleted")
}

// end removes s from the manager and tears it down: in-flight execs are
// cancelled (they answer ErrUnknown, 404 unknown_sandbox, as any later
// call), then every sandbox and the workspace go.
func (m *Manager) end(s *Session, why string) error {
	m.mu.Lock()
	if _, ok := m.sessions[s.id]; !ok {
		m.mu.Unlock()
		return ErrUnknown // another caller is ending it
	}
	delete(m.sessions, s.id)
	switch why {
	case "deleted":
		m.stats.Deleted++
	case "ttl", "idle":
		m.stats.Expired++
	}
	m.mu.Unlock()

	s.mu.Lock()
	s.ended = true
	ws := s.ws
	s.mu.Unlock()
	s.cancel()
	var errs []error
	select {
	case sb := <-s.parked:
		if sb != nil {
			errs = append(errs, sb.Destroy())
		}
	default:
	}
	// Every exec, build and teardown of the session is over after Wait:
	// no process runs under the workspace's ids any more.
	s.work.Wait()
	s.mu.Lock()
	net := s.net
	s.net = nil
	s.mu.Unlock()
	net.stop()
	if ws != nil {
		errs = append(errs, ws.Remove())
	}
	s.release()
	m.log.Info("sandbox ended", "session", s.id, "user", s.spec.Owner, "why", why)
	return errors.Join(errs...)
}

// Run ends sessions past their TTL or idle timeout until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(ReapEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.reap(now)
		}
	}
}

func (m *Manager) reap(now time.Time) {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		if due, why := s.due(now); due {
			go func() {
				if err := m.end(s, why); err != nil && !errors.Is(err, ErrUnknown) {
					m.log.Error("ending an expired sandbox", "session", s.id, "err", err)
				}
			}()
		}
	}
}

// Close ends every session (the daemon is stopping) and refuses new ones.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() {
			if err := m.end(s, "shutdown"); err != nil && !errors.Is(err, ErrUnknown) {
				m.log.Error("ending a sandbox at shutdown", "session", s.id, "err", err)
			}
		})
	}
	wg.Wait()
}

// newID returns "sb-" and 24 hex digits, then "." and node when there is
// one: the random part first, so that OwnerOf splits at the first dot
// whatever dots the node's name has.
func newID(node string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	id := "sb-" + hex.EncodeToString(b)
	if node != "" {
		id += "." + node
	}
	return id
}

// OwnerOf returns the node a session id names (see newID), or "" for an
// id that names none.
func OwnerOf(id string) string {
	rest, ok := strings.CutPrefix(id, "sb-")
	if !ok {
		return ""
	}
	_, node, _ := strings.Cut(rest, ".")
	return node
}
