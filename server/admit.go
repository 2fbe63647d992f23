package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/limits"
)

// UserLimits bound each user's executions.
type UserLimits struct {
	// Rate is the sustained requests per second per user (0: no limit);
	// Burst how many may come at once.
	Rate  float64
	Burst int
	// MaxConcurrent is the executions one user may have running or
	// waiting at once (0: no limit beyond the queue's).
	MaxConcurrent int
}

// rateLimitedError is a request refused by its user's limits: of class
// errdefs.ErrExhausted, answered 429 with its Retry-After.
type rateLimitedError struct {
	retryAfter time.Duration
	message    string
}

func (e *rateLimitedError) Error() string { return "rate limited: " + e.message }
func (e *rateLimitedError) Unwrap() error { return errdefs.ErrExhausted }

type userState struct {
	lim      *rate.Limiter
	inflight int
}

// users holds each user's rate limiter and count of executions in flight.
type users struct {
	UserLimits
	mu sync.Mutex
	m  map[string]*userState
}

func newUsers(l UserLimits) *users {
	if l.Burst <= 0 {
		l.Burst = 1
	}
	return &users{UserLimits: l, m: map[string]*userState{}}
}

// admit counts one execution of user in, or refuses it. The returned
// function counts it out.
func (u *users) admit(user string) (func(), error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if len(u.m) > 1024 {
		u.sweepLocked(now)
	}
	st := u.m[user]
	if st == nil {
		st = &userState{}
		if u.Rate > 0 {
			st.lim = rate.NewLimiter(rate.Limit(u.Rate), u.Burst)
		}
		u.m[user] = st
	}
	if u.MaxConcurrent > 0 && st.inflight >= u.MaxConcurrent {
		return nil, &rateLimitedError{time.Second, fmt.Sprintf("this user already has %d executions in flight; retry later", st.inflight)}
	}
	if st.lim != nil {
		res := st.lim.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			return nil, &rateLimitedError{d, "too many requests from this user; retry later"}
		}
	}
	st.inflight++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			st.inflight--
			u.mu.Unlock()
		})
	}, nil
}

// sweepLocked forgets users with nothing in flight and a full bucket:
// forgetting them changes nothing.
func (u *users) sweepLocked(now time.Time) {
	for k, st := range u.m {
		if st.inflight == 0 && (st.lim == nil || st.lim.TokensAt(now) >= float64(u.Burst)) {
			delete(u.m, k)
		}
	}
}

func retryAfterSeconds(d time.Duration) string {
	return fmt.Sprint(max(1, int64(math.Ceil(d.Seconds()))))
}

// execRecord follows one execution request from admission to its answer,
// for the audit log and the metrics. A request may run several stages
// (language mode: compile, then runs): times add up, the memory peak is the
// largest, the limits are those of the last stage. It is handed to the
// handler and, as the core's Observer, to every stage: never through a
// context.
type execRecord struct {
	mu       sync.Mutex
	rec      audit.Record
	stages   int
	outcome  string // the request's status once it has one
	language string // as the request named it (audit)
	langName string // the catalog's name for it, once known (metrics label)
	errAPI   *apiError
	detached bool // a detached exec was started (202)
}

// user is the request's fairness key: its caller.
func (x *execRecord) user() string { return x.rec.User }

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// admitExecution wraps POST /v1/execute and the session sandbox calls that
// change something (create, exec, write, delete): the user's concurrency
// and rate limits (429), then, whatever the outcome, one audit line with
// action, and the execution count for the two that run programs.
func (s *Server) admitExecution(action string, next func(http.ResponseWriter, *http.Request, *execRecord)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := newExecRecord(r, action)
		sw := &statusWriter{ResponseWriter: w}
		defer func() { s.finish(rec, sw.status) }()
		release, err := s.usersOf(r).admit(rec.user())
		if err != nil {
			s.writeError(sw, r, rec, err)
			return
		}
		defer release()
		next(sw, r, rec)
	}
}

// newExecRecord starts the record of one request by its caller.
func newExecRecord(r *http.Request, action string) *execRecord {
	c := callerOf(r.Context())
	if c == nil {
		c = &Caller{User: "anonymous"}
	}
	rec := &execRecord{rec: audit.Record{
		Time: time.Now().UTC(), RequestID: requestIDOf(r.Context()), Action: action,
		User: c.User, Auth: c.Auth, Transport: c.Transport, Remote: c.Remote, Files: []audit.File{},
	}}
	if c.Peer != nil {
		uid, pid := c.Peer.UID, c.Peer.PID
		rec.rec.PeerUID, rec.rec.PeerPID = &uid, &pid
	}
	return rec
}

// usersOf is the limits that admit r's caller: the anonymous callers of
// a compat listener without tokens have their own (compat.go).
func (s *Server) usersOf(r *http.Request) *users {
	if c := callerOf(r.Context()); c != nil && c.Auth == authNone && s.anonymous != nil {
		return s.anonymous
	}
	return s.users
}

// The audit actions.
const (
	actionExecute = "execute"
	actionCreate  = "sandbox.create"
	actionExec    = "sandbox.exec"
	actionWrite   = "sandbox.write"
	actionDelete  = "sandbox.delete"
	actionUpdate  = "sandbox.update"
	actionKill    = "sandbox.kill"
	actionAttach  = "sandbox.attach"
	// Test sets (testsets.go).
	actionTestsetCreate = "testset.create"
	actionTestsetDelete = "testset.delete"
)

// finish writes the audit line and counts the execution.
func (s *Server) finish(x *execRecord, httpStatus int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	rec := &x.rec
	rec.HTTPStatus = httpStatus
	rec.Language = x.language
	// The label is never the request's own string (unbounded): "raw", the
	// catalog's name, or "unknown" for a language request that failed
	// before its language was resolved.
	lang := x.langName
	switch {
	case x.language == "":
		lang = "raw"
	case lang == "":
		lang = "unknown"
	}
	switch {
	case x.errAPI != nil:
		rec.Status = x.errAPI.code
		if x.errAPI.status == http.StatusInternalServerError {
			s.metrics.executions.WithLabelValues(lang, string(api.StatusInternalError)).Inc()
		}
	case x.detached && httpStatus < 400:
		rec.Status = "detached" // its result is the exec's, not this call's
	case x.outcome != "":
		rec.Status = x.outcome
		s.metrics.executions.WithLabelValues(lang, x.outcome).Inc()
	case rec.Action != actionExecute && rec.Action != actionExec && httpStatus < 400:
		rec.Status = "ok" // a session call that runs no program
	default:
		rec.Status = "canceled" // the client went away before an answer
	}
	s.Audit.Write(rec)
}

// limitHit names the limit that ended a run, if one did.
func limitHit(st api.Status) string {
	switch st {
	case api.StatusTimeLimit:
		return "cpu_time"
	case api.StatusWallTimeLimit:
		return "wall_time"
	case api.StatusMemoryLimit:
		return "memory"
	case api.StatusOutputLimit:
		return "output"
	}
	return ""
}

// noteRequest is called with every decoded execution request: it refuses
// limits above the caller's token caps, returns those caps, and records
// what the audit log keeps of the request (hashes and sizes, never
// contents).
func (s *Server) noteRequest(r *http.Request, x *execRecord, req *api.ExecuteRequest) (limits.Partial, error) {
	var caps limits.Partial
	if c := callerOf(r.Context()); c != nil && c.Limits != nil {
		caps = limits.CapsFromAPI(c.Limits)
		if err := checkCaps(req.Limits, caps, "limits"); err != nil {
			return caps, err
		}
		if err := checkCaps(req.CompileLimits, caps, "compile_limits"); err != nil {
			return caps, err
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.language, x.rec.Image = req.Language, req.Image
	files, _ := decodeFiles(req.Files) // a bad request fails right after this
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		x.rec.Files = append(x.rec.Files, audit.File{Name: f.Name, Size: len(f.Data), SHA256: hex.EncodeToString(sum[:])})
	}
	x.rec.StdinBytes = len(req.Stdin)
	for _, t := range req.Tests {
		x.rec.StdinBytes += len(t.Stdin)
	}
	return caps, nil
}

// checkCaps refuses a requested limit above the token's cap.
func checkCaps(asked *api.Limits, caps limits.Partial, field string) error {
	if name := limits.CapsFromAPI(asked).AboveCap(caps); name != "" {
		return invalid(fmt.Sprintf("%s.%s is above the maximum allowed for this caller", field, name))
	}
	return nil
}

// stageObserver records each finished stage of one request: the
// histograms, the log line and the request's audit record.
type stageObserver struct {
	s         *Server
	x         *execRecord
	requestID string
}

func (s *Server) observer(r *http.Request, x *execRecord) execution.Observer {
	return stageObserver{s: s, x: x, requestID: requestIDOf(r.Context())}
}

// StageDone implements execution.Observer. A raw-mode request's status is
// its one run's.
func (o stageObserver) StageDone(st *execution.Stage, out *execution.Output) {
	res := out.Result
	o.s.metrics.observeRun(res, out.QueueWait)
	o.s.log.Info("execution", "id", out.SandboxID, "image", out.Image, "status", res.Status,
		"wall_ms", res.WallTimeMS, "cpu_ms", res.CPUTimeMS, "memory_peak", res.MemoryPeakBytes,
		"queue_ms", out.QueueWait.Milliseconds(), "request", o.requestID)
	x := o.x
	x.mu.Lock()
	defer x.mu.Unlock()
	rec := &x.rec
	if x.stages == 0 {
		rec.ExitCode, rec.MemoryPeakBytes = new(int), new(int64)
		rec.WallTimeMS, rec.CPUTimeMS, rec.QueueMS = new(float64), new(float64), new(float64)
	}
	x.stages++
	rec.SandboxID, rec.Image = out.SandboxID, out.Image
	*rec.ExitCode = res.ExitCode
	*rec.WallTimeMS += res.WallTimeMS
	*rec.CPUTimeMS += res.CPUTimeMS
	*rec.QueueMS += float64(out.QueueWait.Microseconds()) / 1000
	*rec.MemoryPeakBytes = max(*rec.MemoryPeakBytes, res.MemoryPeakBytes)
	if hit := limitHit(res.Status); hit != "" {
		rec.LimitHit = hit
	}
	rec.Limits = st.Limits.Audit()
	if x.language == "" {
		x.outcome = string(res.Status)
	}
}

// noteLanguage records the catalog's name of a request's language.
func (x *execRecord) noteLanguage(name string) {
	x.mu.Lock()
	x.langName = name
	x.mu.Unlock()
}

// noteOutcome records a language-mode request's overall status.
func (x *execRecord) noteOutcome(status string) {
	x.mu.Lock()
	x.outcome = status
	x.mu.Unlock()
}

// noteSandbox records the session sandbox a call is about.
func (x *execRecord) noteSandbox(id, image string, l limits.Set) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rec.SandboxID = id
	if image != "" {
		x.rec.Image = image
	}
	if l != (limits.Set{}) {
		x.rec.Limits = l.Audit()
	}
}

// noteExec records a session exec's result, as StageDone does a stage's.
// language is the session's (the catalog's name), "" for an image.
func (x *execRecord) noteExec(image, language string, l limits.Set, res *api.Result, wait time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.language, x.langName = language, language
	rec := &x.rec
	rec.Image, rec.Limits = image, l.Audit()
	code, peak, wall, cpu := res.ExitCode, res.MemoryPeakBytes, res.WallTimeMS, res.CPUTimeMS
	rec.ExitCode, rec.MemoryPeakBytes, rec.WallTimeMS, rec.CPUTimeMS = &code, &peak, &wall, &cpu
	queue := float64(wait.Microseconds()) / 1000
	rec.QueueMS = &queue
	rec.LimitHit = limitHit(res.Status)
	x.outcome = string(res.Status)
}

// noteDetached records a detached exec's start: it has no result yet.
func (x *execRecord) noteDetached(image, language string, l limits.Set) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.language, x.langName, x.detached = language, language, true
	x.rec.Image, x.rec.Limits = image, l.Audit()
}

// noteWrite records what a files call wrote (never its content).
func (x *execRecord) noteWrite(id, path string, n int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rec.SandboxID, x.rec.Path, x.rec.Bytes = id, path, &n
}
