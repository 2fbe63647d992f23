package compat

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"path"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// Piston serves Piston's v2 API: GET /api/v2/runtimes and POST
// /api/v2/execute (docs/compat.md, "Piston").
type Piston struct {
	Options
	Backend Backend
}

// pistonRuntime is one entry of GET /api/v2/runtimes.
type pistonRuntime struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
	Runtime  string   `json:"runtime,omitempty"`
}

// pistonNames are the languages Piston names otherwise than the catalog;
// the catalog's name stays an alias.
var pistonNames = map[string]string{"cpp": "c++"}

// Runtimes is GET /api/v2/runtimes: every language whose image is
// available.
func (p *Piston) Runtimes(w http.ResponseWriter, r *http.Request) {
	out := []pistonRuntime{}
	for _, l := range p.Backend.Languages(r.Context()) {
		if !l.Available {
			continue
		}
		rt := pistonRuntime{Language: l.Name, Version: l.Version, Aliases: append([]string{}, l.Aliases...), Runtime: runtimeOf(l)}
		if name, ok := pistonNames[l.Name]; ok {
			rt.Language = name
			rt.Aliases = append([]string{l.Name}, removed(rt.Aliases, name)...)
		}
		out = append(out, rt)
	}
	writeJSON(w, http.StatusOK, out)
}

// runtimeOf is Piston's "runtime": the program that runs the language when
// it is not named after it (javascript: node, c: gcc), taken from the
// image's name.
func runtimeOf(l api.LanguageInfo) string {
	name, _, _ := strings.Cut(path.Base(l.Image), ":")
	if name == l.Name || name == "" {
		return ""
	}
	return name
}

func removed(list []string, v string) []string {
	out := list[:0:0]
	for _, s := range list {
		if s != v {
			out = append(out, s)
		}
	}
	return out
}

// pistonFile is a file of a Piston request.
type pistonFile struct {
	Name     string `json:"name"`
	Content  string `json:"content"`
	Encoding string `json:"encoding"`
}

// pistonRequest is the body of POST /api/v2/execute. Times are in
// milliseconds, memory in bytes; zero or negative is the default.
type pistonRequest struct {
	Language           string       `json:"language"`
	Version            string       `json:"version"`
	Files              []pistonFile `json:"files"`
	Stdin              string       `json:"stdin"`
	Args               []string     `json:"args"`
	CompileTimeout     *float64     `json:"compile_timeout"`
	RunTimeout         *float64     `json:"run_timeout"`
	CompileCPUTime     *float64     `json:"compile_cpu_time"`
	RunCPUTime         *float64     `json:"run_cpu_time"`
	CompileMemoryLimit *float64     `json:"compile_memory_limit"`
	RunMemoryLimit     *float64     `json:"run_memory_limit"`
}

// pistonStage is the "run" or "compile" of an answer.
type pistonStage struct {
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	Output   string  `json:"output"`
	Code     *int    `json:"code"`
	Signal   *string `json:"signal"`
	Message  *string `json:"message"`
	Status   *string `json:"status"`
	CPUTime  float64 `json:"cpu_time"`
	WallTime float64 `json:"wall_time"`
	Memory   int64   `json:"memory"`
}

// pistonResponse is the 200 answer of POST /api/v2/execute.
type pistonResponse struct {
	Language string       `json:"language"`
	Version  string       `json:"version"`
	Run      *pistonStage `json:"run"`
	Compile  *pistonStage `json:"compile,omitempty"`
}

// Execute is POST /api/v2/execute. Piston's clients often send no JSON
// content type (piston-client sends text/plain), so none is required.
func (p *Piston) Execute(w http.ResponseWriter, r *http.Request) {
	req, err := decodeBody[pistonRequest](w, r, p.MaxBody)
	if err == nil {
		var ereq *api.ExecuteRequest
		if ereq, err = p.translate(req); err == nil {
			var run Run
			if run, err = p.Backend.Admit(r); err == nil {
				var resp *api.LanguageResponse
				if resp, err = run(r.Context(), ereq); err == nil {
					writeJSON(w, http.StatusOK, pistonAnswer(resp))
					return
				}
			}
		}
	}
	p.Backend.Fail(w, r, err, pistonError)
}

// pistonError is Piston's error shape. Piston answers 400 to whatever it
// refuses, an unknown language or version included (our 404).
func pistonError(status int, message string) (int, any) {
	if status == http.StatusNotFound {
		status = http.StatusBadRequest
	}
	return status, map[string]string{"message": message}
}

// translate turns a Piston request into a language-mode one.
func (p *Piston) translate(req *pistonRequest) (*api.ExecuteRequest, error) {
	if req.Language == "" {
		return nil, errdefs.Invalidf("language is required as a string")
	}
	if len(req.Files) == 0 {
		return nil, errdefs.Invalidf("files is required as an array")
	}
	main := p.mainFile(req.Language)
	out := &api.ExecuteRequest{Language: req.Language, Version: pistonVersion(req.Version),
		Stdin: req.Stdin, Args: req.Args, Files: make([]api.File, len(req.Files))}
	for i, f := range req.Files {
		file, err := pistonFileOf(f, i, main)
		if err != nil {
			return nil, err
		}
		out.Files[i] = file
	}
	run := api.Limits{WallTimeMS: scaled(req.RunTimeout, 1), CPUTimeMS: scaled(req.RunCPUTime, 1), MemoryBytes: scaled(req.RunMemoryLimit, 1)}
	if run != (api.Limits{}) {
		out.Limits = &run
	}
	compile := api.Limits{WallTimeMS: scaled(req.CompileTimeout, 1), CPUTimeMS: scaled(req.CompileCPUTime, 1), MemoryBytes: scaled(req.CompileMemoryLimit, 1)}
	if compile != (api.Limits{}) {
		out.CompileLimits = &compile
	}
	return out, nil
}

// pistonFileOf is file i of a request, named and in an encoding the API
// takes (Piston also takes hex).
func pistonFileOf(f pistonFile, i int, main string) (api.File, error) {
	name := f.Name
	if name == "" {
		name = sourceName(main, i)
	}
	switch f.Encoding {
	case "", "utf8":
		return api.File{Name: name, Content: f.Content}, nil
	case "base64":
		return api.File{Name: name, Content: f.Content, Encoding: "base64"}, nil
	case "hex":
		b, err := hex.DecodeString(f.Content)
		if err != nil {
			return api.File{}, errdefs.Invalidf("files[%d].content is not valid hex", i)
		}
		return api.File{Name: name, Content: base64.StdEncoding.EncodeToString(b), Encoding: "base64"}, nil
	}
	return api.File{}, errdefs.Invalidf("files[%d].encoding %q: expected utf8, base64 or hex", i, f.Encoding)
}

// pistonVersion turns Piston's version (a semver range: "3.10.0", "3.x",
// "*") into the API's version prefix.
func pistonVersion(v string) string {
	v = strings.TrimSpace(v)
	for {
		trimmed := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(v, ".x"), ".*"), ".X")
		if trimmed == v {
			break
		}
		v = trimmed
	}
	if v == "*" || v == "x" || v == "X" || v == "latest" {
		return ""
	}
	return v
}

// pistonAnswer is a language-mode answer in Piston's shape. As Piston
// does, "run" is the compile stage when the compile failed.
func pistonAnswer(resp *api.LanguageResponse) *pistonResponse {
	out := &pistonResponse{Language: resp.Language, Version: resp.Version}
	if name, ok := pistonNames[resp.Language]; ok {
		out.Language = name
	}
	if resp.Compile != nil {
		out.Compile = pistonStageOf(resp.Compile.Result)
	}
	switch {
	case resp.Run != nil:
		out.Run = pistonStageOf(resp.Run)
	case out.Compile != nil:
		out.Run = out.Compile
	}
	return out
}

// pistonStatuses are Piston's stage statuses for ours; "ok" has none.
var pistonStatuses = map[api.Status]string{
	api.StatusTimeLimit: "TO", api.StatusWallTimeLimit: "TO", api.StatusMemoryLimit: "SG",
	api.StatusRuntimeError: "RE", api.StatusInternalError: "XX",
}

// pistonStageOf is one stage's result in Piston's shape: code is null
// when a signal ended the program; output is stdout then stderr.
func pistonStageOf(res *api.Result) *pistonStage {
	st := &pistonStage{
		Stdout: decodedOutput(res.Stdout, res.StdoutEncoding), Stderr: decodedOutput(res.Stderr, res.StderrEncoding),
		Signal: res.Signal, CPUTime: res.CPUTimeMS, WallTime: res.WallTimeMS, Memory: res.MemoryPeakBytes,
	}
	st.Output = st.Stdout + st.Stderr
	if res.Signal == nil {
		code := res.ExitCode
		st.Code = &code
	}
	status, ok := pistonStatuses[res.Status]
	switch {
	case res.Status == api.StatusOutputLimit && res.StderrTruncated:
		status, ok = "EL", true
	case res.Status == api.StatusOutputLimit:
		status, ok = "OL", true
	case res.Status == api.StatusRuntimeError && res.Signal != nil:
		status = "SG"
	}
	if ok {
		msg := pistonMessage(res)
		st.Status, st.Message = &status, &msg
	}
	return st
}

// pistonMessage explains a stage that did not end ok.
func pistonMessage(res *api.Result) string {
	switch {
	case res.Status == api.StatusInternalError && res.Error != "":
		return res.Error
	case res.Status == api.StatusRuntimeError && res.Signal != nil:
		return "killed by signal " + *res.Signal
	case res.Status == api.StatusRuntimeError:
		return "exited with a non-zero status"
	case res.Status == api.StatusInternalError:
		return "internal error"
	}
	return strings.ReplaceAll(string(res.Status), "_", " ") + " exceeded" // "memory limit exceeded"
}
