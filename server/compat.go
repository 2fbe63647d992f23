package server

import (
	"context"
	"net"
	"net/http"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/compat"
	"github.com/sandboxd/sandboxd/errdefs"
)

// CompatOptions turn on the Piston and Judge0 endpoints (package compat,
// docs/compat.md).
type CompatOptions struct {
	Piston, Judge0 bool
	compat.Options
	// Anonymous bounds the callers of a compat listener without tokens
	// (CompatListener), who are all the user "anonymous".
	Anonymous UserLimits
}

// authNone is the Caller.Auth of an anonymous caller.
const authNone = "none"

// routeCompat adds the endpoints [compat] turns on, to the API's routes
// and to those of a compat listener, which serves nothing else. Runs are
// admitted, audited and counted as POST /v1/execute's (compatBackend).
func (s *Server) routeCompat(o CompatOptions) {
	s.compatMux = http.NewServeMux()
	s.anonymous = newUsers(o.Anonymous)
	b := compatBackend{s}
	if o.MaxBody == 0 {
		o.MaxBody = s.MaxBody
	}
	handle := func(pattern string, h http.HandlerFunc) {
		s.mux.HandleFunc(pattern, h)
		s.compatMux.HandleFunc(pattern, h)
	}
	if o.Piston {
		p := &compat.Piston{Options: o.Options, Backend: b}
		handle("GET /api/v2/runtimes", p.Runtimes)
		handle("POST /api/v2/execute", p.Execute)
	}
	if o.Judge0 {
		j := compat.NewJudge0(o.Options, b)
		for pattern, h := range map[string]http.HandlerFunc{
			"GET /languages": j.Languages, "GET /languages/{id}": j.Language, "GET /statuses": j.Statuses,
			"POST /submissions": j.Submit, "GET /submissions/{token}": j.Get,
			"POST /submissions/batch": j.SubmitBatch, "GET /submissions/batch": j.GetBatch,
		} {
			handle(pattern, h)
			handle(pattern+"/{$}", h) // Judge0's docs write /submissions/?base64_encoded=...
		}
	}
	s.compatMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, nil, errdefs.NotFoundf("no such endpoint on the compat listener: %s %s", r.Method, r.URL.Path))
	})
}

// routes sends a compat listener's requests to its own routes, the
// others' to the API's.
func (s *Server) routes(w http.ResponseWriter, r *http.Request) {
	if info, _ := r.Context().Value(connKey{}).(*connInfo); info != nil && info.compat && s.compatMux != nil {
		s.compatMux.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// compatBackend is compat.Backend over this server.
type compatBackend struct{ s *Server }

func (b compatBackend) Languages(ctx context.Context) []api.LanguageInfo {
	if b.s.Languages == nil {
		return nil
	}
	return b.s.Languages.List(ctx)
}

// Caller keys a caller's Judge0 tokens: the user and how it was
// identified, so that the anonymous callers never share a token space
// with a token's subject named "anonymous".
func (b compatBackend) Caller(r *http.Request) string {
	c := callerOf(r.Context())
	if c == nil {
		return "anonymous"
	}
	return c.Auth + ":" + c.User
}

// Admit takes the caller's admission as admitExecution does; the run it
// returns writes the audit line when it ends, which for a Judge0
// submission without wait is after the answer.
func (b compatBackend) Admit(r *http.Request) (compat.Run, error) {
	s := b.s
	rec := newExecRecord(r, actionExecute)
	release, err := s.usersOf(r).admit(rec.user())
	if err != nil {
		ae := classify(err)
		s.noteError(rec, ae)
		s.finish(rec, ae.status)
		return nil, &publicError{err, ae.message}
	}
	return func(ctx context.Context, req *api.ExecuteRequest) (*api.LanguageResponse, error) {
		defer release()
		out, err := s.execute(r.WithContext(ctx), rec, req, nil)
		status := http.StatusOK
		if err != nil {
			ae := classify(err)
			s.noteError(rec, ae)
			status, err = ae.status, &publicError{err, ae.message}
		}
		s.finish(rec, status)
		resp, _ := out.(*api.LanguageResponse)
		return resp, err
	}, nil
}

// Fail answers err as writeError would, in the protocol's shape.
func (b compatBackend) Fail(w http.ResponseWriter, r *http.Request, err error, shape func(int, string) (int, any)) {
	ae := classify(err)
	if ae.status >= 500 {
		b.s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	errorHeaders(w, err, ae.status)
	status, body := shape(ae.status, ae.message)
	writeJSON(w, status, body)
}

// publicError is an error as the client may read it (an internal error's
// text is the log's only), still of its class for classify.
type publicError struct {
	err error
	msg string
}

func (e *publicError) Error() string { return e.msg }
func (e *publicError) Unwrap() error { return e.err }

// CompatListener marks ln as a compat listener: its requests reach only
// the compat endpoints, and with anonymous their callers need no token
// and are the user "anonymous" (config allows that on loopback only).
func CompatListener(ln net.Listener, anonymous bool) net.Listener {
	return &compatListener{Listener: ln, anonymous: anonymous}
}

type compatListener struct {
	net.Listener
	anonymous bool
}

func (l *compatListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &compatConn{Conn: c, anonymous: l.anonymous}, nil
}

type compatConn struct {
	net.Conn
	anonymous bool
}
