package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/runtime"
)

// compileDefaults are larger than run defaults: compilers are heavier than
// the programs they build. A language's compile_limits refine them; the
// daemon's maximums cap them.
// Compilers also write more: object files, precompiled headers, caches.
var compileDefaults = config.Limits{WallTime: "30s", CPUTime: "30s", Memory: "512MiB", Pids: 128, CPUs: 1,
	FileSize: "256MiB", Work: "512MiB", Tmp: "512MiB"}

// stageRunner adapts the server to languages.Runner.
type stageRunner struct{ s *Server }

func (r stageRunner) RunStage(ctx context.Context, st languages.Stage) (*languages.StageOutput, error) {
	out, err := r.s.RunStage(ctx, st)
	if err != nil {
		return nil, err
	}
	return out.StageOutput, nil
}

// versions remembers each image's detected toolchain version.
type versions struct {
	mu   sync.Mutex
	byID map[string]string
}

func unknownLanguage(msg string) error {
	return &apiError{http.StatusNotFound, api.CodeUnknownLanguage, msg}
}

func (s *Server) lookupLanguage(name string) (*languages.Language, error) {
	if s.Catalog == nil || len(s.Catalog.Languages) == 0 {
		return nil, unknownLanguage("no languages are configured on this daemon")
	}
	l, err := s.Catalog.Lookup(name)
	if err != nil {
		return nil, unknownLanguage(err.Error())
	}
	return l, nil
}

// imageFor returns the language's image, pulling it first when it is an
// OCI reference that is not in the store yet.
func (s *Server) imageFor(ctx context.Context, l *languages.Language) (*images.Image, error) {
	img, err := s.Images.Get(l.Image)
	if err == nil || !errors.Is(err, images.ErrNotFound) || !isRegistryRef(l.Image) {
		return img, err
	}
	return s.Images.Pull(ctx, l.Image, l.Image, nil)
}

// isRegistryRef tells an OCI reference ("mcr.microsoft.com/dotnet/sdk:8.0")
// from a local image name ("lang/python:3"): its first path element names a
// registry host.
func isRegistryRef(ref string) bool {
	first, _, found := strings.Cut(ref, "/")
	return found && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// version returns the toolchain version of l's image, running its version
// command once per image content.
func (s *Server) version(ctx context.Context, l *languages.Language) (string, *images.Image, error) {
	img, err := s.imageFor(ctx, l)
	if err != nil {
		return "", nil, err
	}
	s.versions.mu.Lock()
	v, ok := s.versions.byID[l.Name+"\x00"+img.ID]
	s.versions.mu.Unlock()
	if ok || len(l.VersionCmd) == 0 {
		return v, img, nil
	}
	limits, err := config.Limits{WallTime: "20s", CPUTime: "20s", Memory: "512MiB", Pids: 128, CPUs: 1}.Overlay(s.Defaults)
	if err != nil {
		return "", nil, err
	}
	out, err := s.RunStage(ctx, languages.Stage{Image: l.Image, Args: l.VersionCmd, Env: l.Env, Limits: limits.Capped(s.Maximums)})
	if err != nil {
		return "", nil, fmt.Errorf("reading the version of %s: %w", l.Name, err)
	}
	v = l.ParseVersion(out.Result.Stdout + "\n" + out.Result.Stderr)
	if out.Result.Status != runtime.StatusOK || v == "" {
		// Not remembered: the next request tries again.
		return "", nil, fmt.Errorf("reading the version of %s: %s %v gave status %s and %q", l.Name, l.Image, l.VersionCmd,
			out.Result.Status, strings.TrimSpace(out.Result.Stdout+" "+out.Result.Stderr))
	}
	s.versions.mu.Lock()
	s.versions.byID[l.Name+"\x00"+img.ID] = v
	s.versions.mu.Unlock()
	return v, img, nil
}

func (s *Server) handleLanguage(w http.ResponseWriter, r *http.Request, req *api.ExecuteRequest) {
	resp, err := s.language(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.noteOutcome(r.Context(), resp.Language, resp.Status) // audit, metrics (admit.go)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) language(ctx context.Context, req *api.ExecuteRequest) (*api.LanguageResponse, error) {
	if req.Image != "" || len(req.Cmd) > 0 {
		return nil, invalid(`"image" and "cmd" belong to raw mode; a language request sends "files" and "args"`)
	}
	lang, err := s.lookupLanguage(req.Language)
	if err != nil {
		return nil, err
	}
	if len(req.Files) == 0 {
		return nil, invalid(`"files" is required in language mode; the first file is the main file`)
	}
	if req.Files[0].Name == "" {
		return nil, invalid("the main file (the first of \"files\") has an empty name")
	}
	files, err := decodeFiles(req.Files)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if int64(len(f.Data)) > s.MaxSource {
			return nil, &apiError{http.StatusRequestEntityTooLarge, api.CodeRequestTooLarge,
				fmt.Sprintf("file %q is larger than the %d-byte source limit", f.Name, s.MaxSource)}
		}
	}
	for _, a := range req.Args {
		if strings.ContainsRune(a, 0) {
			return nil, invalid(`"args" must not contain NUL characters`)
		}
	}
	if len(req.Env) > 0 {
		return nil, invalid(`"env" is not available in language mode; the catalog sets the environment`)
	}
	runBase, err := lang.Limits.Overlay(s.Defaults)
	if err != nil {
		return nil, fmt.Errorf("catalog limits of %s: %w", lang.Name, err)
	}
	runLimits, err := resolveLimits(req.Limits, runBase.Capped(s.Maximums), s.Maximums)
	if err != nil {
		return nil, err
	}
	compileBase, err := compileDefaults.Overlay(s.Defaults)
	if err == nil {
		compileBase, err = lang.CompileLimits.Overlay(compileBase)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog compile limits of %s: %w", lang.Name, err)
	}
	compileLimits, err := resolveLimits(req.CompileLimits, compileBase.Capped(s.Maximums), s.Maximums)
	if err != nil {
		return nil, err
	}
	// Lowered to the caller's token caps (admit.go) before the plan, which
	// writes the memory limit into argv ({memory}).
	runLimits, compileLimits = s.capStage(ctx, runLimits), s.capStage(ctx, compileLimits)
	version, img, err := s.version(ctx, lang)
	if err != nil {
		if errors.Is(err, images.ErrNotFound) || errors.Is(err, images.ErrUnavailable) {
			return nil, unknownLanguage(fmt.Sprintf("language %s is in the catalog but its image %s is not available", lang.Name, lang.Image))
		}
		return nil, err
	}
	if !languages.VersionMatches(req.Version, version) {
		return nil, unknownLanguage(fmt.Sprintf("%s version %q is not available; this daemon has %s %s", lang.Name, req.Version, lang.Name, version))
	}
	tests := make([]languages.Test, len(req.Tests))
	for i, t := range req.Tests {
		tests[i] = languages.Test{Stdin: t.Stdin, ExpectedStdout: t.ExpectedStdout}
	}
	started := time.Now()
	out, err := languages.Execute(ctx, stageRunner{s}, s.Cache, &languages.Request{
		Language: lang, Version: version, ImageID: img.ID, Files: files, Args: req.Args,
		Stdin: []byte(req.Stdin), Limits: runLimits, CompileLimits: compileLimits, Tests: tests,
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("language execution", "language", lang.Name, "version", version, "status", out.Status,
		"tests", len(out.Tests), "ms", time.Since(started).Milliseconds())
	return &api.LanguageResponse{
		ID: newRequestID(), Language: lang.Name, Version: version, Status: out.Status,
		Compile: out.Compile, Run: out.Run, Tests: out.Tests, Summary: out.Summary,
	}, nil
}

func (s *Server) handleLanguages(w http.ResponseWriter, r *http.Request) {
	out := []api.LanguageInfo{}
	if s.Catalog != nil {
		for _, l := range s.Catalog.Languages {
			info := api.LanguageInfo{Name: l.Name, Aliases: nonNil(l.Aliases), Image: l.Image, Compiled: l.Compiled()}
			if v, _, err := s.version(r.Context(), l); err == nil {
				info.Version, info.Available = v, true
			} else if !errors.Is(err, images.ErrNotFound) && !errors.Is(err, images.ErrUnavailable) {
				s.log.Warn("language version", "language", l.Name, "err", err)
			}
			out = append(out, info)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
