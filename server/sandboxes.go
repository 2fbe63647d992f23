package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/session"
)

// Sessions runs sandboxes that live across calls; *session.Manager is one.
type Sessions interface {
	Create(spec session.Spec) (*session.Session, error)
	Get(owner, id string) (*session.Session, error)
	List(owner string) []*session.Session
	Delete(owner, id string) error
	Exec(ctx context.Context, owner, id string, x session.ExecSpec) (*session.ExecResult, error)
	Use(owner, id string) (*session.Session, func(), error)
	Stats() session.Stats
	// Detached execs (execs.go).
	Detach(ctx context.Context, owner, id string, x session.ExecSpec) (*session.Detached, error)
	Execs(owner, id string) ([]*session.Detached, error)
	DetachedExec(owner, id, execID string) (*session.Detached, error)
	// SetNetwork changes a session's egress policy (PATCH).
	SetNetwork(owner, id string, allow []string, n *execution.Network) (*session.NetworkState, error)
}

// SessionTimes are the lifetimes a session may ask for.
type SessionTimes struct {
	TTL, MaxTTL, Idle time.Duration
}

// Labels are bounded: they are stored for the sandbox's life and listed.
const (
	maxLabels          = 32
	maxLabelKeyBytes   = 63
	maxLabelValueBytes = 256
)

// perExec are the limits of one exec; the others hold for the sandbox.
var perExec = []string{"wall_time_ms", "cpu_time_ms", "output_bytes"}

// owner is whose sandboxes a request may see: its caller.
func owner(r *http.Request) string {
	if c := callerOf(r.Context()); c != nil {
		return c.User
	}
	return "anonymous"
}

func (s *Server) handleCreateSandbox(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	req, err := decode[api.CreateSandboxRequest](s, w, r)
	if err == nil {
		var sess *session.Session
		if sess, err = s.createSandbox(r, rec, req); err == nil {
			writeJSON(w, http.StatusCreated, sandboxToAPI(sess, false))
			return
		}
	}
	s.writeError(w, r, rec, err)
}

// createSandbox validates a create request into a session spec and makes it.
func (s *Server) createSandbox(r *http.Request, rec *execRecord, req *api.CreateSandboxRequest) (*session.Session, error) {
	caps, err := s.noteRequest(r, rec, &api.ExecuteRequest{Image: req.Image, Language: req.Language, Files: req.Files, Limits: req.Limits})
	if err != nil {
		return nil, err
	}
	spec := session.Spec{Owner: rec.user(), Image: req.Image, Labels: req.Labels}
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	if err := checkLabels(req.Labels); err != nil {
		return nil, err
	}
	if err := checkEnv(req.Env); err != nil {
		return nil, err
	}
	if spec.Files, err = decodeFiles(req.Files); err != nil {
		return nil, err
	}
	if spec.TTL, spec.Idle, err = s.sessionTimes(req); err != nil {
		return nil, err
	}
	base, err := s.sessionBase(r.Context(), rec, req, &spec)
	if err != nil {
		return nil, err
	}
	if spec.Limits, err = resolveLimits(req.Limits, base.Over(s.Defaults).Capped(s.Maximums), s.Maximums); err != nil {
		return nil, err
	}
	spec.Limits = spec.Limits.Capped(caps.Over(s.Maximums))
	spec.Env = append(spec.Env, envList(req.Env)...)
	if spec.Network, err = s.network(rec, req.Network); err != nil {
		return nil, err
	}
	sess, err := s.Sessions.Create(spec)
	if err != nil {
		return nil, err
	}
	rec.noteSandbox(sess.ID(), sess.Spec().Image, spec.Limits)
	return sess, nil
}

// sessionBase settles the image (and, by language, the environment); it
// returns the language's catalog limits, to lay over the defaults.
func (s *Server) sessionBase(ctx context.Context, rec *execRecord, req *api.CreateSandboxRequest, spec *session.Spec) (limits.Partial, error) {
	switch {
	case (req.Image == "") == (req.Language == ""):
		return limits.Partial{}, invalid(`exactly one of "image" and "language" is required`)
	case req.Image != "" && req.Version != "":
		return limits.Partial{}, invalid(`"version" goes with "language", not with "image"`)
	case req.Image != "":
		return limits.Partial{}, nil
	case s.Languages == nil:
		return limits.Partial{}, fmt.Errorf("%w: no languages are configured on this daemon", languages.ErrUnknown)
	}
	base, err := s.Languages.SessionBase(ctx, rec.user(), req.Language, req.Version)
	if err != nil {
		return limits.Partial{}, err
	}
	rec.noteLanguage(base.Name)
	spec.Image, spec.Language, spec.Version, spec.Env = base.Image, base.Name, base.Version, append([]string{}, base.Env...)
	return base.Limits, nil
}

// sessionTimes resolves ttl_ms and idle_timeout_ms.
func (s *Server) sessionTimes(req *api.CreateSandboxRequest) (ttl, idle time.Duration, err error) {
	ttl, idle = s.SessionTimes.TTL, s.SessionTimes.Idle
	if req.TTLMS != nil {
		ttl = time.Duration(*req.TTLMS) * time.Millisecond
		if *req.TTLMS <= 0 || ttl > s.SessionTimes.MaxTTL {
			return 0, 0, invalid(fmt.Sprintf("ttl_ms must be between 1 and %d (max_session_ttl)", s.SessionTimes.MaxTTL.Milliseconds()))
		}
	}
	if req.IdleTimeoutMS != nil {
		idle = time.Duration(*req.IdleTimeoutMS) * time.Millisecond
		if *req.IdleTimeoutMS <= 0 || idle > s.SessionTimes.MaxTTL {
			return 0, 0, invalid(fmt.Sprintf("idle_timeout_ms must be between 1 and %d (max_session_ttl)", s.SessionTimes.MaxTTL.Milliseconds()))
		}
	}
	return ttl, idle, nil
}

func checkLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return invalid(fmt.Sprintf("labels: at most %d", maxLabels))
	}
	for k, v := range labels {
		if k == "" || len(k) > maxLabelKeyBytes || len(v) > maxLabelValueBytes ||
			strings.ContainsFunc(k+v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return invalid(fmt.Sprintf("labels: %q: keys are 1-%d bytes, values at most %d, no control characters",
				k, maxLabelKeyBytes, maxLabelValueBytes))
		}
	}
	return nil
}

func checkEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return invalid(fmt.Sprintf("env: invalid variable name %q (no \"=\", no NUL, not empty)", k))
		}
	}
	return nil
}

func (s *Server) handleListSandboxes(w http.ResponseWriter, r *http.Request) {
	out := api.SandboxList{Sandboxes: []api.Sandbox{}}
	for _, sess := range s.Sessions.List(owner(r)) {
		out.Sandboxes = append(out.Sandboxes, sandboxToAPI(sess, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetSandbox(w http.ResponseWriter, r *http.Request) {
	sess, err := s.Sessions.Get(owner(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, sandboxToAPI(sess, true))
}

// handleUpdateSandbox changes what may change while a sandbox lives: its
// network policy (install, then lock).
func (s *Server) handleUpdateSandbox(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	id := r.PathValue("id")
	rec.noteSandbox(id, "", zeroLimits)
	req, err := decode[api.UpdateSandboxRequest](s, w, r)
	if err == nil && req.Network == nil {
		err = invalid(`"network" is required: it is the only field a sandbox can change`)
	}
	var n *execution.Network
	if err == nil {
		n, err = s.network(rec, req.Network)
	}
	if err == nil {
		_, err = s.Sessions.SetNetwork(rec.user(), id, req.Network.Allow, n)
	}
	var sess *session.Session
	if err == nil {
		sess, err = s.Sessions.Get(rec.user(), id)
	}
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	writeJSON(w, http.StatusOK, sandboxToAPI(sess, true))
}

func networkToAPI(n *session.NetworkState) *api.SandboxNetwork {
	if n == nil {
		return nil
	}
	return &api.SandboxNetwork{Allow: n.Allow, NetworkUsage: n.Usage}
}

func (s *Server) handleDeleteSandbox(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	id := r.PathValue("id")
	rec.noteSandbox(id, "", zeroLimits)
	if err := s.Sessions.Delete(rec.user(), id); err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSandboxExec(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	rec.noteSandbox(r.PathValue("id"), "", zeroLimits)
	req, err := decode[api.SandboxExecRequest](s, w, r)
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	if req.Detach {
		s.detach(w, r, rec, req)
		return
	}
	var stream *eventStream
	if req.Stream {
		stream = newEventStream(w)
	}
	resp, err := s.sandboxExec(r, rec, req, stream)
	s.answer(w, r, rec, stream, resp, err)
}

// handleSandboxExecWS is a session exec over a WebSocket (ws.go).
func (s *Server) handleSandboxExecWS(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	rec.noteSandbox(r.PathValue("id"), "", zeroLimits)
	var req api.SandboxExecRequest
	ws, err := s.upgrade(w, r, &req)
	if err != nil {
		s.noteError(rec, classify(err)) // answered by upgrade
		return
	}
	stream := ws.events()
	resp, err := s.sandboxExec(r.WithContext(ws.ctx), rec, &req, stream)
	s.answerWS(ws, stream, r, rec, resp, err)
}

// sandboxExec runs an exec in a session; stream, when set, gets its
// events as they happen and may carry its stdin.
func (s *Server) sandboxExec(r *http.Request, rec *execRecord, req *api.SandboxExecRequest, stream *eventStream) (any, error) {
	id := r.PathValue("id")
	sess, err := s.Sessions.Get(rec.user(), id)
	if err != nil {
		return nil, err
	}
	x, err := s.execSpec(r, rec, sess, req)
	if err != nil {
		return nil, err
	}
	flush := func() {}
	if stream != nil {
		x.Stdout, x.Stderr, flush = stream.outputs()
		x.StdinStream, x.Control = stream.Stdin, stream.Control
	}
	out, err := s.Sessions.Exec(r.Context(), rec.user(), id, x)
	flush()
	if err != nil {
		return nil, err
	}
	res := out.Result
	rec.noteExec(sess.Spec().Image, sess.Spec().Language, x.Limits, res, out.QueueWait)
	s.metrics.observeRun(res, out.QueueWait)
	return api.ExecuteResponse{ID: id, Image: sess.Spec().Image, Status: res.Status, Run: res}, nil
}

// execSpec validates an exec request against its session.
func (s *Server) execSpec(r *http.Request, rec *execRecord, sess *session.Session, req *api.SandboxExecRequest) (session.ExecSpec, error) {
	var x session.ExecSpec
	if _, err := s.noteRequest(r, rec, &api.ExecuteRequest{Stdin: req.Stdin, Limits: req.Limits}); err != nil {
		return x, err
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return x, invalid(`"cmd" is required and its first element must not be empty`)
	}
	for _, a := range req.Cmd {
		if strings.ContainsRune(a, 0) {
			return x, invalid(`"cmd" must not contain NUL characters`)
		}
	}
	if err := checkEnv(req.Env); err != nil {
		return x, err
	}
	p, err := limits.FromAPI(req.Limits, "limits")
	if err != nil {
		return x, err
	}
	for _, f := range limits.All() {
		if p.Has(f.API) && !containsString(perExec, f.API) {
			return x, invalid(fmt.Sprintf("limits.%s holds for the whole sandbox and is set when it is created; an exec may set %s",
				f.API, strings.Join(perExec, ", ")))
		}
	}
	if x.Limits, err = limits.Resolve(p, sess.Spec().Limits, s.Maximums, "limits"); err != nil {
		return x, err
	}
	if x.Dir, err = execDir(req.Cwd); err != nil {
		return x, err
	}
	if x.TTY, err = terminalSize(req.TTY, req.Rows, req.Cols); err != nil {
		return x, err
	}
	x.Args, x.Env, x.Stdin = req.Cmd, envList(req.Env), []byte(req.Stdin)
	return x, nil
}

// execDir turns a cwd into the path inside the sandbox; it must be /work
// or below.
func execDir(cwd string) (string, error) {
	rel, err := rootfs.ScratchPath(cwd)
	if err != nil {
		return "", invalid(fmt.Sprintf("cwd: %v", err))
	}
	if rel != "work" && !strings.HasPrefix(rel, "work/") {
		return "", invalid(`cwd must be /work or a directory under it`)
	}
	return rootfs.APIPath(rel), nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sandboxToAPI(sess *session.Session, usage bool) api.Sandbox {
	sp := sess.Spec()
	out := api.Sandbox{
		ID: sess.ID(), Image: sp.Image, Language: sp.Language, Version: sp.Version,
		CreatedAt: sess.Created().UTC(), ExpiresAt: sess.Expires().UTC(), IdleTimeoutMS: sp.Idle.Milliseconds(),
		Limits: limits.ToAPI(sp.Limits), Labels: sp.Labels, State: api.SandboxRunning,
		Network: networkToAPI(sess.Network()),
	}
	if usage {
		u := sess.Usage()
		out.Usage = &api.SandboxUsage{
			CPUTimeMS: float64(u.CPUTime.Microseconds()) / 1000, MemoryBytes: u.MemoryBytes, MemoryPeakBytes: u.MemoryPeakBytes,
			WorkBytes: u.WorkBytes, TmpBytes: u.TmpBytes, Processes: u.Processes, ExecsActive: u.ExecsActive, Execs: u.Execs,
		}
		if !u.LastExec.IsZero() {
			t := u.LastExec.UTC()
			out.Usage.LastExecAt = &t
		}
	}
	return out
}
