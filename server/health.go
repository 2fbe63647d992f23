package server

import (
	"net/http"
	goruntime "runtime"
	"runtime/debug"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/seccomp"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	running, queued := s.Queue.Stats()
	n := 0
	if list, err := s.Images.List(); err == nil {
		n = len(list)
	}
	writeJSON(w, http.StatusOK, api.Health{
		Status: "ok", Cgroup: string(s.Host.CgroupMode()), CgroupParent: s.Host.CgroupParent(),
		Running: running, Queued: queued, Capacity: s.Slots, QueueLength: s.QueueLen, Images: n,
	})
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	v := api.VersionInfo{Version: s.Version, API: api.Version, Go: goruntime.Version(), Libseccomp: seccomp.LibraryVersion()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/opencontainers/runc" {
				v.Libcontainer = dep.Version
			}
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// handleReady answers the readiness probe: 200 once the daemon can take
// work, 503 while it can't (Options.Ready). Liveness is /v1/healthz.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, api.Readiness{Status: "not_ready", Reason: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, api.Readiness{Status: "ready"})
}

// OpsHandler serves the operations port (metrics_listen), without
// authentication: GET /metrics, and the probes /v1/healthz and
// /v1/readyz, so that a kubelet probes a daemon whose API needs a token.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.MetricsHandler())
	mux.HandleFunc("GET /v1/healthz", s.handleHealth)
	mux.HandleFunc("GET /v1/readyz", s.handleReady)
	return mux
}
