package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

func apiErrorBody(code, msg string) api.ErrorBody {
	return api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}}
}

// decode reads exactly one JSON object of type T from the body, refusing
// unknown fields and anything after the object.
func decode[T any](s *Server, w http.ResponseWriter, r *http.Request) (*T, error) {
	body := http.MaxBytesReader(w, r.Body, s.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var v T
	if err := dec.Decode(&v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, invalid("malformed JSON body: " + err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, invalid("malformed JSON body: data after the object")
	}
	return &v, nil
}

// job is a validated request, ready to run.
type job struct {
	image  string
	args   []string
	env    map[string]string
	files  []rootfs.File
	stdin  []byte
	limits runtime.Limits
}

func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request) {
	req, err := decode[api.ExecuteRequest](s, w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.noteRequest(r, req); err != nil { // audit record, token caps (admit.go)
		s.writeError(w, r, err)
		return
	}
	if req.Language != "" {
		s.handleLanguage(w, r, req)
		return
	}
	j, err := s.plan(req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.execute(r, j)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// plan validates a raw-mode request into a job. (Language mode will plan a
// compile stage and runs here as well.)
func (s *Server) plan(req *api.ExecuteRequest) (*job, error) {
	if req.Image == "" {
		return nil, invalid(`either "image" (with "cmd") or "language" is required`)
	}
	if req.Version != "" || len(req.Args) > 0 || req.CompileLimits != nil || len(req.Tests) > 0 {
		return nil, invalid(`"version", "args", "compile_limits" and "tests" belong to language mode; with "image", put everything in "cmd"`)
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
	limits, err := resolveLimits(req.Limits, s.Defaults, s.Maximums)
	if err != nil {
		return nil, err
	}
	return &job{image: req.Image, args: req.Cmd, env: req.Env, files: files, stdin: []byte(req.Stdin), limits: limits}, nil
}

func decodeFiles(in []api.File) ([]rootfs.File, error) {
	seen := map[string]bool{}
	out := make([]rootfs.File, 0, len(in))
	for i, f := range in {
		if strings.Contains(f.Name, "/") || f.Name == ".." {
			return nil, invalid(fmt.Sprintf("files[%d]: name %q must not contain \"/\" or be \"..\"", i, f.Name))
		}
		if err := rootfs.CheckName(f.Name); err != nil {
			return nil, invalid(fmt.Sprintf("files[%d]: %v", i, err))
		}
		if seen[f.Name] {
			return nil, invalid(fmt.Sprintf("files[%d]: duplicate name %q", i, f.Name))
		}
		seen[f.Name] = true
		var data []byte
		switch f.Encoding {
		case "", "utf8":
			data = []byte(f.Content)
		case "base64":
			var err error
			if data, err = base64.StdEncoding.DecodeString(f.Content); err != nil {
				return nil, invalid(fmt.Sprintf("files[%d]: content is not valid base64", i))
			}
		default:
			return nil, invalid(fmt.Sprintf("files[%d]: encoding %q: expected utf8 or base64", i, f.Encoding))
		}
		out = append(out, rootfs.File{Name: f.Name, Data: data, Mode: 0o644})
	}
	return out, nil
}

// requestLimit is one limit a request (or a token's caps) may set, under
// its API name; absent when both pointers are nil.
type requestLimit struct {
	name  string
	n     *int64
	f     *float64
	apply func(l *runtime.Limits, n int64, f float64)
}

// requestLimits is the one list of the API's limit fields: resolving a
// request, checking it against a token's caps and lowering a stage to
// those caps all walk it.
func requestLimits(req *api.Limits) []requestLimit {
	if req == nil {
		req = &api.Limits{}
	}
	// Clamped so that an absurd token cap cannot overflow a Duration.
	ms := func(v int64) time.Duration { return time.Duration(min(v, maxMillis)) * time.Millisecond }
	return []requestLimit{
		{"wall_time_ms", req.WallTimeMS, nil, func(l *runtime.Limits, v int64, _ float64) { l.WallTime = ms(v) }},
		{"cpu_time_ms", req.CPUTimeMS, nil, func(l *runtime.Limits, v int64, _ float64) { l.CPUTime = ms(v) }},
		{"memory_bytes", req.MemoryBytes, nil, func(l *runtime.Limits, v int64, _ float64) { l.MemoryBytes = v }},
		{"pids", req.Pids, nil, func(l *runtime.Limits, v int64, _ float64) { l.Pids = v }},
		{"cpus", nil, req.CPUs, func(l *runtime.Limits, _ int64, f float64) { l.CPUs = f }},
		{"output_bytes", req.OutputBytes, nil, func(l *runtime.Limits, v int64, _ float64) { l.OutputBytes = v }},
		{"tmp_bytes", req.TmpBytes, nil, func(l *runtime.Limits, v int64, _ float64) { l.TmpBytes = v }},
		{"work_bytes", req.WorkBytes, nil, func(l *runtime.Limits, v int64, _ float64) { l.WorkBytes = v }},
		{"file_size_bytes", req.FileSizeBytes, nil, func(l *runtime.Limits, v int64, _ float64) { l.FileSizeBytes = v }},
	}
}

func (r requestLimit) present() bool { return r.n != nil || r.f != nil }

func (r requestLimit) positive() bool { return (r.n != nil && *r.n > 0) || (r.f != nil && *r.f > 0) }

// above reports whether r is set and above c, when c is set.
func (r requestLimit) above(c requestLimit) bool {
	return (r.n != nil && c.n != nil && *r.n > *c.n) || (r.f != nil && c.f != nil && *r.f > *c.f)
}

// applyTo sets r's value in l, if r is present.
func (r requestLimit) applyTo(l *runtime.Limits) {
	switch {
	case r.n != nil:
		r.apply(l, *r.n, 0)
	case r.f != nil:
		r.apply(l, 0, *r.f)
	}
}

// maxMillis bounds the time limits before they are converted, so that no
// value overflows a time.Duration.
const maxMillis = int64(24 * time.Hour / time.Millisecond)

// resolveLimits lays the request's limits over the defaults and refuses any
// that is not positive or is above the configured maximum.
func resolveLimits(req *api.Limits, defaults, maximums runtime.Limits) (runtime.Limits, error) {
	l := defaults
	if req == nil {
		return l, nil
	}
	for _, f := range requestLimits(req) {
		if !f.present() {
			continue
		}
		if !f.positive() {
			return l, invalid(fmt.Sprintf("limits.%s must be greater than zero", f.name))
		}
		if strings.HasSuffix(f.name, "_ms") && *f.n > maxMillis {
			return l, invalid(fmt.Sprintf("limits.%s is above the configured maximum", f.name))
		}
		f.applyTo(&l)
	}
	if req.WallTimeMS != nil && req.CPUTimeMS == nil {
		// As with `sandboxd exec`: the CPU limit follows the wall limit.
		l.CPUTime = min(l.WallTime, maximums.CPUTime)
	}
	if err := l.Within(maximums); err != nil {
		return l, invalid("limits: " + err.Error())
	}
	if err := l.Validate(); err != nil {
		return l, invalid("limits: " + err.Error())
	}
	return l, nil
}

// environment builds the program's environment: the image's (PATH among
// it), sandboxd's HOME and TMPDIR, then env (the language's or the
// request's, already sorted), later entries overriding earlier ones.
func environment(img *images.Image, env []string) []string {
	out := []string{}
	hasPath := false
	for _, kv := range img.Config.Env {
		if strings.HasPrefix(kv, "PATH=") {
			hasPath = true
		}
		out = append(out, kv)
	}
	if !hasPath {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	out = append(out, "HOME=/work", "TMPDIR=/tmp")
	return dedupeEnv(append(out, env...))
}

// dedupeEnv keeps the last value of each variable, in first-seen order.
func dedupeEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := env[:0:0]
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}

func (s *Server) execute(r *http.Request, j *job) (*api.ExecuteResponse, error) {
	out, err := s.RunStage(r.Context(), languages.Stage{
		Image: j.image, Args: j.args, Env: envList(j.env), Files: j.files, Stdin: j.stdin,
		Limits: s.capStage(r.Context(), j.limits), // the caller's token caps (admit.go)
	})
	if err != nil {
		return nil, err
	}
	return &api.ExecuteResponse{ID: out.id, Image: out.image, Status: out.Result.Status, Run: out.Result}, nil
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

// stageOutput adds to a stage's output what the raw-mode answer needs.
type stageOutput struct {
	*languages.StageOutput
	id, image string
}

// RunStage runs one stage in a fresh sandbox: it holds the image, waits for
// a slot, builds the sandbox, runs, collects /work if asked, and destroys
// the sandbox whatever happens. The request context ends the run when the
// client goes away.
func (s *Server) RunStage(ctx context.Context, st languages.Stage) (*stageOutput, error) {
	img, release, err := s.Images.Acquire(st.Image)
	if err != nil {
		if errors.Is(err, images.ErrNotFound) || errors.Is(err, images.ErrInvalid) {
			return nil, &apiError{http.StatusNotFound, "unknown_image", fmt.Sprintf("image %q is not in the store (see GET /v1/images)", st.Image)}
		}
		return nil, err
	}
	defer release()
	queued := time.Now()
	slot, err := s.Queue.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer slot()
	wait := time.Since(queued)

	sb, err := s.Sandboxes.Build(ctx, runtime.BuildOptions{Rootfs: img.Rootfs, UID: s.UID, GID: s.GID, Limits: st.Limits})
	if err != nil {
		return nil, fmt.Errorf("building sandbox: %w", err)
	}
	// Tearing down (cgroup removal, network namespace, unmounts) happens
	// after the answer, off the request path; shutdown waits for it.
	defer s.destroyLater(sb)
	res, err := sb.Run(ctx, runtime.Request{
		Args: st.Args, Env: environment(img, st.Env), Files: st.Files,
		Stdin: bytes.NewReader(st.Stdin), Limits: st.Limits,
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("execution", "id", sb.ID(), "image", img.Name, "status", res.Status,
		"wall_ms", res.WallTimeMS, "cpu_ms", res.CPUTimeMS, "memory_peak", res.MemoryPeakBytes,
		"queue_ms", wait.Milliseconds(), "request", requestIDOf(ctx))
	s.observeStage(ctx, sb.ID(), img.Name, wait, st.Limits, res) // metrics, audit (admit.go)
	out := &stageOutput{StageOutput: &languages.StageOutput{Result: res}, id: sb.ID(), image: img.Name}
	if st.Collect && res.Status == runtime.StatusOK {
		if out.Work, err = sb.CollectWork(st.Limits.WorkBytes); err != nil {
			return nil, fmt.Errorf("collecting compile output: %w", err)
		}
	}
	return out, nil
}
