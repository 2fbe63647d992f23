// Package server is sandboxd's HTTP API: it decodes and validates requests,
// admits them through the queue, runs them in sandboxes and answers with
// JSON. docs/api.md is its reference; api/openapi.yaml its schema.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/queue"
)

// Host reports how the sandboxes nest in the host's cgroups (healthz);
// *runtime.Engine is one.
type Host interface {
	CgroupMode() cgroup.Mode
	CgroupParent() string
}

// Images is the image store as the API uses it; *images.Store is one.
type Images interface {
	Get(name string) (*images.Image, error)
	List() ([]images.Image, error)
	Remove(name string) error
	Pull(ctx context.Context, ref, name string, progress images.Progress) (*images.Image, error)
	Import(ctx context.Context, r io.Reader, name string) (*images.Image, error)
}

// Stages runs stages: the execution core.
type Stages interface {
	Run(ctx context.Context, key string, st execution.Stage, obs execution.Observer) (*execution.Output, error)
}

// Languages runs language mode; *languages.Service is one.
type Languages interface {
	Execute(ctx context.Context, call languages.Call, req *api.ExecuteRequest) (*api.LanguageResponse, *languages.Language, error)
	List(ctx context.Context) []api.LanguageInfo
	SessionBase(ctx context.Context, key, name, version string) (*languages.Base, error)
}

// Options configure a Server.
type Options struct {
	Core      Stages
	Languages Languages // nil: language mode is off
	Host      Host
	Images    Images
	Queue     *queue.Queue
	// Parked counts the warm pool's sandboxes (metrics); nil: none.
	Parked func() int
	// Dropped is called with the rootfs of a removed image, so that
	// sandboxes parked on it go too; nil: nothing to drop.
	Dropped  func(rootfs string)
	Slots    int
	QueueLen int
	Defaults limits.Set
	Maximums limits.Set
	MaxBody  int64
	// MaxCollect bounds a request's collect_bytes.
	MaxCollect int64
	Logger     *slog.Logger
	Version    string
	// Access says who may call (nil: anyone who reaches the listener);
	// UserLimits bound each user's executions; Audit gets one line per
	// execution request (nil: none). See auth.go, admit.go, metrics.go.
	Access     *Access
	UserLimits UserLimits
	Audit      *audit.Log
	// Sessions runs sandboxes that live across calls (nil: the
	// /v1/sandboxes endpoints answer 404); SessionTimes bound their lives.
	Sessions     Sessions
	SessionTimes SessionTimes
	// Egress checks requests' "network" (nil: refused with 400).
	Egress Egress
	// Builder builds images from recipes (nil: POST /v1/images/build
	// answers 404); BuildLimits and BuildLayerBytes bound each build.
	Builder         Builder
	BuildLimits     limits.Set
	BuildLayerBytes int64
	// Forwarding passes calls for other daemons' sessions to them
	// (forward.go; nil: every session is this daemon's).
	Forwarding *Forwarding
	// Ready reports whether the daemon can take work (GET /v1/readyz,
	// health.go): nil when it can, else what it waits for. nil: always.
	Ready func() error
	// Compat turns on the Piston and Judge0 endpoints (compat.go); nil:
	// none.
	Compat *CompatOptions
	// Testsets stores test sets (testsets.go; nil: /v1/testsets answers
	// 404 and a request's "testset" is unknown_testset).
	Testsets Testsets
}

// Server serves the API.
type Server struct {
	Options
	log     *slog.Logger
	mux     *http.ServeMux
	users   *users
	metrics *metrics
	// compatMux serves a compat listener; anonymous admits its callers
	// without tokens (compat.go).
	compatMux *http.ServeMux
	anonymous *users
}

// New returns a server; Handler gives its routes.
func New(o Options) *Server {
	s := &Server{Options: o, log: o.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.users = newUsers(o.UserLimits)
	s.metrics = newMetrics(s)
	s.mux.HandleFunc("POST /v1/execute", s.admitExecution(actionExecute, s.handleExecute))
	s.mux.HandleFunc("GET /v1/execute/ws", s.admitExecution(actionExecute, s.handleExecuteWS))
	s.mux.HandleFunc("GET /v1/images", s.handleListImages)
	s.mux.HandleFunc("POST /v1/images/pull", s.countPulls(s.handlePull))
	s.mux.HandleFunc("POST /v1/images/import", s.handleImport)
	if o.Builder != nil {
		s.mux.HandleFunc("POST /v1/images/build", s.admitExecution(actionBuild, s.handleBuild))
	}
	s.mux.HandleFunc("GET /v1/images/{name...}", s.handleGetImage)
	s.mux.HandleFunc("DELETE /v1/images/{name...}", s.handleRemoveImage)
	s.mux.HandleFunc("GET /v1/languages", s.handleLanguages)
	if o.Sessions != nil {
		s.routeSandboxes()
	}
	if o.Testsets != nil {
		s.routeTestsets() // testsets.go
	}
	s.routeMCP() // mcp.go
	if o.Compat != nil {
		s.routeCompat(*o.Compat)
	}
	s.mux.HandleFunc("GET /v1/healthz", s.handleHealth)
	s.mux.HandleFunc("GET /v1/readyz", s.handleReady)
	s.mux.HandleFunc("GET /v1/version", s.handleVersion)
	s.mux.Handle("GET /metrics", s.MetricsHandler())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, nil, errdefs.NotFoundf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Handler returns the API's HTTP handler.
// Every request gets an id; one standing for a request whose framing was
// refused (framing.go) is answered 400 before its caller is identified,
// then the caller is identified (or refused).
func (s *Server) Handler() http.Handler {
	var routes http.Handler = http.HandlerFunc(s.routes) // compat.go
	if s.Forwarding != nil {
		routes = newForwarder(s, s.Forwarding).wrap(routes)
	}
	return s.recoverPanics(withRequestID(s.refuseBadFraming(s.refuseUncleanPaths(s.authenticate(routes)))))
}

// refuseUncleanPaths answers 400 to a path with "." or ".." segments or
// an empty one ("//"). ServeMux would answer those with a redirect to the
// cleaned path, and a client that follows it would send a PUT or DELETE
// meant for a file to another resource: /v1/sandboxes/x/files/../.. is
// /v1/sandboxes. Checked on the escaped path, as ServeMux cleans it; an
// encoded %2E%2E or %2F reaches the files API, which resolves paths
// inside the sandbox.
func (s *Server) refuseUncleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(r.URL.EscapedPath(), "/")
		for i, seg := range segs {
			interior := i > 0 && i < len(segs)-1
			if seg == "." || seg == ".." || (seg == "" && interior) {
				s.writeError(w, r, nil, invalid(fmt.Sprintf("URL path %q has a \".\", \"..\" or empty segment", r.URL.EscapedPath())))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a handler panic into a 500 instead of a dropped
// connection; the stack goes to the log, never to the client.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", v)
				s.metrics.internal.Inc()
				writeJSON(w, http.StatusInternalServerError, apiErrorBody(classify(errdefs.ErrInternal)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

// routeSandboxes adds the session sandbox endpoints (sandboxes.go,
// files.go). The calls that change something are admitted and audited
// like executions; reads are not.
func (s *Server) routeSandboxes() {
	s.mux.HandleFunc("POST /v1/sandboxes", s.admitExecution(actionCreate, s.handleCreateSandbox))
	s.mux.HandleFunc("GET /v1/sandboxes", s.handleListSandboxes)
	s.mux.HandleFunc("GET /v1/sandboxes/{id}", s.handleGetSandbox)
	s.mux.HandleFunc("PATCH /v1/sandboxes/{id}", s.admitExecution(actionUpdate, s.handleUpdateSandbox))
	s.mux.HandleFunc("DELETE /v1/sandboxes/{id}", s.admitExecution(actionDelete, s.handleDeleteSandbox))
	s.mux.HandleFunc("POST /v1/sandboxes/{id}/exec", s.admitExecution(actionExec, s.handleSandboxExec))
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/exec/ws", s.admitExecution(actionExec, s.handleSandboxExecWS))
	s.routeExecs()
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/files", s.handleGetFile)
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/files/{path...}", s.handleGetFile)
	s.mux.HandleFunc("PUT /v1/sandboxes/{id}/files/{path...}", s.admitExecution(actionWrite, s.handlePutFile))
	s.mux.HandleFunc("DELETE /v1/sandboxes/{id}/files/{path...}", s.admitExecution(actionWrite, s.handleDeleteFile))
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/archive", s.handleGetArchive)
	s.mux.HandleFunc("PUT /v1/sandboxes/{id}/archive", s.admitExecution(actionWrite, s.handlePutArchive))
}
