package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/internal/jsonbody"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// decode reads exactly one JSON object of type T from the body, refusing
// unknown fields and anything after the object.
func decode[T any](s *Server, w http.ResponseWriter, r *http.Request) (*T, error) {
	var v T
	if err := jsonbody.Decode(w, r, s.MaxBody, true, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// job is a validated raw-mode request, ready to run.
type job struct {
	copyOut execution.CopyOut
	image   string
	args    []string
	env     map[string]string
	files   []rootfs.File
	stdin   []byte
	limits  limits.Set
	tty     *runtime.WindowSize
}

func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	req, err := decode[api.ExecuteRequest](s, w, r)
	if err != nil {
		s.writeError(w, r, rec, err)
		return
	}
	var stream *eventStream
	if req.Stream {
		stream = newEventStream(w)
	}
	resp, err := s.execute(r, rec, req, stream)
	s.answer(w, r, rec, stream, resp, err)
}

// handleExecuteWS is POST /v1/execute over a WebSocket (ws.go).
func (s *Server) handleExecuteWS(w http.ResponseWriter, r *http.Request, rec *execRecord) {
	var req api.ExecuteRequest
	ws, err := s.upgrade(w, r, &req)
	if err != nil {
		s.noteError(rec, classify(err)) // answered by upgrade
		return
	}
	stream := ws.events()
	resp, err := s.execute(r.WithContext(ws.ctx), rec, &req, stream)
	s.answerWS(ws, stream, r, rec, resp, err)
}

// execute runs a request in either mode; stream, when set, gets its
// events as they happen.
func (s *Server) execute(r *http.Request, rec *execRecord, req *api.ExecuteRequest, stream *eventStream) (any, error) {
	caps, err := s.noteRequest(r, rec, req) // audit record, token caps (admit.go)
	if err != nil {
		return nil, err
	}
	if req.Language == "" {
		return s.raw(r, rec, caps, req, stream)
	}
	if s.Languages == nil {
		return nil, fmt.Errorf("%w: no languages are configured on this daemon", languages.ErrUnknown)
	}
	return s.language(r, rec, caps, req, stream)
}

// answer writes a call's answer: the plain JSON or error, or a streaming
// answer's last event.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, rec *execRecord, stream *eventStream, resp any, err error) {
	switch {
	case stream != nil && stream.begun() && err != nil:
		ae := classify(err)
		if ae.status >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		s.noteError(rec, ae)
		stream.fail(ae)
	case err != nil:
		s.writeError(w, r, rec, err)
	case stream != nil:
		stream.result(resp)
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

// raw runs a raw-mode request: one stage.
func (s *Server) raw(r *http.Request, rec *execRecord, caps limits.Partial, req *api.ExecuteRequest, stream *eventStream) (*api.ExecuteResponse, error) {
	j, err := s.plan(req)
	if err != nil {
		return nil, err
	}
	network, err := s.network(rec, req.Network)
	if err != nil {
		return nil, err
	}
	st := execution.Stage{Image: j.image, Args: j.args, Env: envList(j.env), Files: j.files, Stdin: j.stdin, CopyOut: j.copyOut,
		Limits: j.limits.Capped(caps.Over(s.Maximums)), // the caller's token caps
		TTY:    j.tty, Network: network}
	if stream != nil {
		var flush func()
		st.Stdout, st.Stderr, flush = stream.outputs()
		defer flush()
		st.StdinStream, st.Control = stream.Stdin, stream.Control
	}
	out, err := s.Core.Run(r.Context(), rec.user(), st, s.observer(r, rec))
	if err != nil {
		return nil, err
	}
	return &api.ExecuteResponse{ID: out.SandboxID, Image: out.Image, Status: out.Result.Status, Run: out.Result}, nil
}

// language runs a language-mode request through the language service.
func (s *Server) language(r *http.Request, rec *execRecord, caps limits.Partial, req *api.ExecuteRequest, stream *eventStream) (*api.LanguageResponse, error) {
	network, err := s.network(rec, req.Network)
	if err != nil {
		return nil, err
	}
	call := languages.Call{Key: rec.user(), Observer: s.observer(r, rec), Caps: caps, Network: network}
	release, err := s.useTestset(rec, req, &call) // testsets.go
	if err != nil {
		return nil, err
	}
	defer release()
	tty, err := terminalSize(req.TTY, req.Rows, req.Cols)
	if err != nil {
		return nil, err
	}
	if tty != nil && len(req.Tests) > 0 {
		return nil, invalid(`"tty" applies to the run of a request without "tests"`)
	}
	call.TTY = tty
	if stream != nil {
		call.Events, call.Stdin, call.Control = stream, stream.Stdin, stream.Control
	}
	resp, lang, err := s.Languages.Execute(r.Context(), call, req)
	if lang != nil {
		rec.noteLanguage(lang.Name)
	}
	if err != nil {
		return nil, err
	}
	resp.ID = newRequestID()
	rec.noteOutcome(resp.Status) // audit, metrics (admit.go)
	return resp, nil
}

// plan validates a raw-mode request into a job.
func (s *Server) plan(req *api.ExecuteRequest) (*job, error) {
	if req.Image == "" {
		return nil, invalid(`either "image" (with "cmd") or "language" is required`)
	}
	if req.Version != "" || len(req.Args) > 0 || req.CompileLimits != nil || len(req.CompileOptions) > 0 || len(req.Tests) > 0 {
		return nil, invalid(`"version", "args", "compile_limits", "compile_options" and "tests" belong to language mode; with "image", put everything in "cmd"`)
	}
	if req.Testset != "" || req.Compare != nil || req.Checker != nil || req.CheckerLimits != nil || len(req.Groups) > 0 ||
		req.Interactor != nil || req.InteractorLimits != nil || req.Record {
		return nil, invalid(`"testset", "compare", "checker", "checker_limits", "groups", "interactor", "interactor_limits" and "record" belong to language mode, with its tests`)
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return nil, invalid(`"cmd" is required and its first element must not be empty`)
	}
	for _, a := range req.Cmd {
		if strings.ContainsRune(a, 0) {
			return nil, invalid(`"cmd" must not contain NUL characters`)
		}
	}
	for k, v := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, invalid(fmt.Sprintf("env: invalid variable name %q (no \"=\", no NUL, not empty)", k))
		}
	}
	files, err := decodeFiles(req.Files)
	if err != nil {
		return nil, err
	}
	l, err := resolveLimits(req.Limits, s.Defaults, s.Maximums)
	if err != nil {
		return nil, err
	}
	copyOut, err := execution.ParseCopyOut(req.Collect, req.CollectBytes, s.MaxCollect)
	if err != nil {
		return nil, err
	}
	tty, err := terminalSize(req.TTY, req.Rows, req.Cols)
	if err != nil {
		return nil, err
	}
	return &job{image: req.Image, args: req.Cmd, env: req.Env, files: files, stdin: []byte(req.Stdin), limits: l, copyOut: copyOut, tty: tty}, nil
}

// Terminal sizes: the default, and the bound of each side (a size is only
// a number the program reads, but a sane one).
const (
	defaultRows, defaultCols = 24, 80
	maxTerminalSide          = 1000
)

// terminalSize is a request's terminal: nil without "tty"; 0 rows or cols
// is the default.
func terminalSize(tty bool, rows, cols int) (*runtime.WindowSize, error) {
	if !tty {
		if rows != 0 || cols != 0 {
			return nil, invalid(`"rows" and "cols" need "tty": true`)
		}
		return nil, nil
	}
	if rows == 0 {
		rows = defaultRows
	}
	if cols == 0 {
		cols = defaultCols
	}
	if rows < 1 || rows > maxTerminalSide || cols < 1 || cols > maxTerminalSide {
		return nil, invalid(fmt.Sprintf(`"rows" and "cols" must be between 1 and %d`, maxTerminalSide))
	}
	return &runtime.WindowSize{Rows: uint16(rows), Cols: uint16(cols)}, nil
}

func decodeFiles(in []api.File) ([]rootfs.File, error) { return execution.DecodeFiles(in) }

// resolveLimits lays the request's limits over the defaults and refuses any
// that is not positive or is above the configured maximum.
func resolveLimits(req *api.Limits, defaults, maximums limits.Set) (limits.Set, error) {
	p, err := limits.FromAPI(req, "limits")
	if err != nil {
		return defaults, err
	}
	return limits.Resolve(p, defaults, maximums, "limits")
}

func envList(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}
