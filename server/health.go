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
