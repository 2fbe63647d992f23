package server

import (
	"context"
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
	"github.com/sandboxd/sandboxd/runtime"
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

// rateLimitedError is a request refused by its user's limits.
type rateLimitedError struct {
	retryAfter time.Duration
	message    string
}

func (e *rateLimitedError) Error() string { return "rate limited: " + e.message }

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
// largest, the limits are those of the last stage.
type execRecord struct {
	mu       sync.Mutex
	rec      audit.Record
	stages   int
	outcome  string // the request's status once it has one
	language string // as the request named it (audit)
	langName string // the catalog's name for it, once known (metrics label)
	errAPI   *apiError
}

type recordKey struct{}

func recordOf(ctx context.Context) *execRecord {
	r, _ := ctx.Value(recordKey{}).(*execRecord)
	return r
}

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

// admitExecution wraps POST /v1/execute: the user's concurrency and rate
// limits (429), then, whatever the outcome, one audit line and the
// execution count.
func (s *Server) admitExecution(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r.Context())
		if c == nil {
			c = &Caller{User: "anonymous"}
		}
		rec := &execRecord{rec: audit.Record{
			Time: time.Now().UTC(), RequestID: requestIDOf(r.Context()),
			User: c.User, Auth: c.Auth, Transport: c.Transport, Remote: c.Remote, Files: []audit.File{},
		}}
		if c.Peer != nil {
			uid, pid := c.Peer.UID, c.Peer.PID
			rec.rec.PeerUID, rec.rec.PeerPID = &uid, &pid
		}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), recordKey{}, rec))
		defer func() { s.finish(rec, sw.status) }()
		release, err := s.users.admit(c.User)
		if err != nil {
			s.writeError(sw, r, err)
			return
		}
		defer release()
		next(sw, r)
	}
}

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
			s.metrics.executions.WithLabelValues(lang, string(runtime.StatusInternalError)).Inc()
		}
	case x.outcome != "":
		rec.Status = x.outcome
		s.metrics.executions.WithLabelValues(lang, x.outcome).Inc()
	default:
		rec.Status = "canceled" // the client went away before an answer
	}
	s.Audit.Write(rec)
}

// limitHit names the limit that ended a run, if one did.
func limitHit(st runtime.Status) string {
	switch st {
	case runtime.StatusTimeLimit:
		return "cpu_time"
	case runtime.StatusWallTimeLimit:
		return "wall_time"
	case runtime.StatusMemoryLimit:
		return "memory"
	case runtime.StatusOutputLimit:
		return "output"
	}
	return ""
}

// noteRequest is called with every decoded execution request: it refuses
// limits above the caller's token caps and records what the audit log
// keeps of the request (hashes and sizes, never contents).
func (s *Server) noteRequest(r *http.Request, req *api.ExecuteRequest) error {
	if c := callerOf(r.Context()); c != nil && c.Limits != nil {
		if err := checkCaps(req.Limits, c.Limits, "limits"); err != nil {
			return err
		}
		if err := checkCaps(req.CompileLimits, c.Limits, "compile_limits"); err != nil {
			return err
		}
	}
	x := recordOf(r.Context())
	if x == nil {
		return nil
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
	return nil
}

// checkCaps refuses a requested limit above the token's cap.
func checkCaps(asked, caps *api.Limits, field string) error {
	capped := requestLimits(caps)
	for i, a := range requestLimits(asked) {
		if a.above(capped[i]) {
			return invalid(fmt.Sprintf("%s.%s is above the maximum allowed for this caller", field, a.name))
		}
	}
	return nil
}

// capStage lowers a stage's limits to the caller's token caps (limits that
// came from defaults or the catalog; explicit asks were checked already).
// Each mode calls it once, where its limits are settled: raw mode in
// execute, language mode before its plan.
func (s *Server) capStage(ctx context.Context, l runtime.Limits) runtime.Limits {
	c := callerOf(ctx)
	if c == nil || c.Limits == nil {
		return l
	}
	caps := s.Maximums
	for _, f := range requestLimits(c.Limits) {
		f.applyTo(&caps)
	}
	return l.Capped(caps)
}

// observeStage records a finished run: the histograms, and the request's
// audit record. A raw-mode request's status is its one run's.
func (s *Server) observeStage(ctx context.Context, sandboxID, image string, wait time.Duration, l runtime.Limits, res *runtime.Result) {
	s.metrics.observeRun(res, wait)
	x := recordOf(ctx)
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	rec := &x.rec
	if x.stages == 0 {
		rec.ExitCode, rec.MemoryPeakBytes = new(int), new(int64)
		rec.WallTimeMS, rec.CPUTimeMS, rec.QueueMS = new(float64), new(float64), new(float64)
	}
	x.stages++
	rec.SandboxID, rec.Image = sandboxID, image
	*rec.ExitCode = res.ExitCode
	*rec.WallTimeMS += res.WallTimeMS
	*rec.CPUTimeMS += res.CPUTimeMS
	*rec.QueueMS += float64(wait.Microseconds()) / 1000
	*rec.MemoryPeakBytes = max(*rec.MemoryPeakBytes, res.MemoryPeakBytes)
	if hit := limitHit(res.Status); hit != "" {
		rec.LimitHit = hit
	}
	rec.Limits = &audit.Limits{
		WallTimeMS: l.WallTime.Milliseconds(), CPUTimeMS: l.CPUTime.Milliseconds(), MemoryBytes: l.MemoryBytes,
		Pids: l.Pids, CPUs: l.CPUs, OutputBytes: l.OutputBytes, TmpBytes: l.TmpBytes, WorkBytes: l.WorkBytes,
		FileSizeBytes: l.FileSizeBytes,
	}
	if x.language == "" {
		x.outcome = string(res.Status)
	}
}

// noteOutcome records a language-mode request's language (the catalog's
// name) and overall status.
func (s *Server) noteOutcome(ctx context.Context, language, status string) {
	if x := recordOf(ctx); x != nil {
		x.mu.Lock()
		x.langName, x.outcome = language, status
		x.mu.Unlock()
	}
}
