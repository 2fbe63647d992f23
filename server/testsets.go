package server

import (
	"context"
	"io"
	"net/http"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/testsets"
)

// Testsets stores test sets; *testsets.Store is one.
type Testsets interface {
	Create(ctx context.Context, owner string, body io.Reader) (*api.Testset, error)
	Get(owner, id string) (*api.Testset, error)
	List(owner string) []api.Testset
	Delete(owner, id string) error
	Use(owner, id string) (*testsets.Handle, error)
}

// routeTestsets adds /v1/testsets. An upload and a delete are admitted
// and audited like the session calls that change something.
func (s *Server) routeTestsets() {
	s.mux.HandleFunc("POST /v1/testsets", s.admitExecution(actionTestsetCreate, s.handleCreateTestset))
	s.mux.HandleFunc("GET /v1/testsets", s.handleListTestsets)
	s.mux.HandleFunc("GET /v1/testsets/{id}", s.handleGetTestset)
	s.mux.HandleFunc("DELETE /v1/testsets/{id}", s.admitExecution(actionTestsetDelete, s.handleDeleteTestset))
}

// handleCreateTestset takes the archive as the body, whatever its
// Content-Type: the store tells a zip, a tar and a gzipped tar by their
// first bytes, and bounds the body by [testsets] max_bytes, not max_body.
func (s *Server) handleCreateTestset(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	set, err := s.Testsets.Create(r.Context(), rec.user(), r.Body)
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	writeJSON(w, http.StatusCreated, set)
}

func (s *Server) handleListTestsets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.TestsetList{Testsets: s.Testsets.List(owner(r))})
}

func (s *Server) handleGetTestset(w http.ResponseWriter, r *http.Request) {
	set, err := s.Testsets.Get(owner(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, set)
}

func (s *Server) handleDeleteTestset(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	if err := s.Testsets.Delete(rec.user(), r.PathValue("id")); err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// useTestset makes a language request with "testset" run the caller's
// set: its tests in req, their files in call. release lets the set go
// once the request has ended.
func (s *Server) useTestset(rec *execRecord, req *api.ExecuteRequest, call *languages.Call) (release func(), err error) {
	if req.Testset == "" {
		return func() {}, nil
	}
	if s.Testsets == nil {
		return nil, testsets.ErrUnknown
	}
	h, err := s.Testsets.Use(rec.user(), req.Testset)
	if err != nil {
		return nil, err
	}
	files, err := h.Apply(req)
	if err != nil {
		h.Release()
		return nil, err
	}
	call.TestFiles = make([]languages.TestFiles, len(files))
	for i, f := range files {
		call.TestFiles[i] = languages.TestFiles{Input: f.Input, Answer: f.Answer}
	}
	return h.Release, nil
}
