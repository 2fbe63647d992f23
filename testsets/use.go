package testsets

import (
	stdbase64 "encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// Handle is a set held by a running request: its files stay on disk
// until Release, whatever a DELETE does meanwhile.
type Handle struct {
	s    *Store
	st   *stored
	once sync.Once
}

// TestFiles are where one test's input and answer are on the host.
type TestFiles struct {
	Input, Answer string
}

// Use holds owner's set id for a request; the caller calls Release.
func (s *Store) Use(owner, id string) (*Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.lookup(owner, id)
	if err != nil {
		return nil, err
	}
	st.refs++
	return &Handle{s: s, st: st}, nil
}

// Release lets the set go; a set deleted while held is removed now.
func (h *Handle) Release() {
	h.once.Do(func() {
		s := h.s
		s.mu.Lock()
		defer s.mu.Unlock()
		h.st.refs--
		if h.st.refs == 0 && h.st.gone {
			if err := s.remove(h.st); err != nil {
				s.log.Warn("removing a deleted test set", "id", h.st.Testset.ID, "err", err)
			}
		}
	})
}

// Apply makes req run the set: its tests (names, groups, points and
// comparisons; the inputs and answers stay on disk, returned as paths in
// the tests' order), and what the request does not set itself of the
// set's comparison, groups, checker or interactor and their limits. A
// request's own checker or interactor replaces the set's program, with
// its limits; its checker_limits or interactor_limits alone lower or
// raise those of the set's program.
func (h *Handle) Apply(req *api.ExecuteRequest) ([]TestFiles, error) {
	if len(req.Tests) > 0 {
		return nil, errdefs.Invalidf(`"testset" and "tests" exclude each other: a request runs a stored set or its own tests`)
	}
	set := h.st.Testset
	files := make([]TestFiles, len(set.Tests))
	req.Tests = make([]api.Test, len(set.Tests))
	for i, t := range set.Tests {
		req.Tests[i] = api.Test{Name: t.Name, Group: t.Group, Points: t.Points, Compare: t.Compare}
		files[i] = TestFiles{Input: h.path(t.Name + extIn), Answer: h.path(t.Name + extAns)}
	}
	if req.Compare == nil {
		req.Compare = set.Compare
	}
	if req.Groups == nil {
		req.Groups = set.Groups
	}
	if req.Checker != nil || req.Interactor != nil {
		return files, nil
	}
	var err error
	if req.Checker, err = h.program(set.Checker); err != nil {
		return nil, err
	}
	if req.Interactor, err = h.program(set.Interactor); err != nil {
		return nil, err
	}
	if req.Checker != nil && req.CheckerLimits == nil {
		req.CheckerLimits = set.CheckerLimits
	}
	if req.Interactor != nil && req.InteractorLimits == nil {
		req.InteractorLimits = set.InteractorLimits
	}
	return files, nil
}

func (h *Handle) path(name string) string { return filepath.Join(h.st.dir, "files", name) }

// program reads a checker's or interactor's sources (small: the request
// checks them against max_source as it checks its own).
func (h *Handle) program(p *api.TestsetProgram) (*api.Program, error) {
	if p == nil {
		return nil, nil
	}
	out := &api.Program{Language: p.Language, Version: p.Version}
	for _, name := range p.Files {
		data, err := os.ReadFile(h.path(name))
		if err != nil {
			return nil, fmt.Errorf("testsets: %w", err)
		}
		f := api.File{Name: name, Content: string(data)}
		if !utf8.Valid(data) {
			f = api.File{Name: name, Content: base64(data), Encoding: "base64"}
		}
		out.Files = append(out.Files, f)
	}
	return out, nil
}

func base64(b []byte) string { return stdbase64.StdEncoding.EncodeToString(b) }
