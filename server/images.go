package server

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/images"
)

func toAPIImage(img *images.Image) api.Image {
	c := img.Config
	return api.Image{
		Name: img.Name, ID: img.ID, SizeBytes: img.SizeBytes, Created: img.Created, Source: img.Source,
		Config: api.ImageConfig{Env: nonNil(c.Env), WorkingDir: c.WorkingDir, User: c.User,
			Entrypoint: nonNil(c.Entrypoint), Cmd: nonNil(c.Cmd)},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) handleListImages(w http.ResponseWriter, r *http.Request) {
	list, err := s.Images.List()
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	out := make([]api.Image, 0, len(list))
	for i := range list {
		out = append(out, toAPIImage(&list[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetImage(w http.ResponseWriter, r *http.Request) {
	img, err := s.Images.Get(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIImage(img))
}

func (s *Server) handleRemoveImage(w http.ResponseWriter, r *http.Request) {
	img, _ := s.Images.Get(r.PathValue("name"))
	if err := s.Images.Remove(r.PathValue("name")); err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	// Sandboxes parked on the removed image must not serve a later image
	// of the same name.
	if s.Dropped != nil && img != nil {
		if _, err := s.Images.Get(img.Name); err != nil {
			s.Dropped(img.Rootfs)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	req, err := decode[api.PullRequest](s, w, r)
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	if req.Ref == "" {
		s.writeError(w, r, nil, invalid(`"ref" is required`))
		return
	}
	if r.Header.Get("Accept") == ndjson {
		s.pullStreaming(w, r, req)
		return
	}
	img, err := s.Images.Pull(r.Context(), req.Ref, req.Name, nil)
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	s.log.Info("image pulled", "ref", req.Ref, "name", img.Name, "id", img.ID, "size", img.SizeBytes)
	writeJSON(w, http.StatusOK, toAPIImage(img))
}

const ndjson = "application/x-ndjson"

// pullStreaming answers a pull as newline-delimited JSON: progress lines
// while layers download, then one line with the image or the error (the
// status line went out with the first byte, so errors travel in-band).
func (s *Server) pullStreaming(w http.ResponseWriter, r *http.Request, req *api.PullRequest) {
	w.Header().Set("Content-Type", ndjson)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	emit := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v)
		if flusher != nil {
			flusher.Flush()
		}
	}
	last := time.Time{}
	img, err := s.Images.Pull(r.Context(), req.Ref, req.Name, func(done, total int64) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || done == total {
			last = now
			emit(api.PullEvent{Progress: &api.PullProgress{Done: done, Total: total}})
		}
	})
	if err != nil {
		// The status line (200) went out with the first byte: countPulls
		// can't see this failure, so it is counted here.
		s.metrics.pullFailures.Inc()
		ae := classify(err)
		emit(api.PullEvent{Error: &api.ErrorDetail{Code: ae.code, Message: ae.message}})
		return
	}
	s.log.Info("image pulled", "ref", req.Ref, "name", img.Name, "id", img.ID, "size", img.SizeBytes)
	out := toAPIImage(img)
	emit(api.PullEvent{Image: &out})
}

// handleImport takes a tar stream: a `docker save` archive, an OCI layout,
// or a plain rootfs (optionally gzip-compressed). Image tars can be large:
// the body limit here is the store's own size limit, not MaxBody.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		s.writeError(w, r, nil, invalid(`query parameter "name" is required`))
		return
	}
	img, err := s.Images.Import(r.Context(), r.Body, name)
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	s.log.Info("image imported", "name", img.Name, "id", img.ID, "size", img.SizeBytes)
	writeJSON(w, http.StatusOK, toAPIImage(img))
}

func (s *Server) handleLanguages(w http.ResponseWriter, r *http.Request) {
	out := []api.LanguageInfo{}
	if s.Languages != nil {
		out = s.Languages.List(r.Context())
	}
	writeJSON(w, http.StatusOK, out)
}
