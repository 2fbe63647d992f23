// Package api holds the JSON shapes of sandboxd's HTTP API, shared by the
// server and the Go client. docs/api.md documents them and
// api/openapi.yaml describes them; a test checks the server against it.
package api

import (
	"bytes"
	"encoding/json"
	"time"
)

// Version is the API's path prefix.
const Version = "v1"

// File is one file of a request, placed in /work.
type File struct {
	Name     string `json:"name"`
	Content  string `json:"content"`
	Encoding string `json:"encoding,omitempty"` // "utf8" (default) or "base64"
}

// Limits are a request's limits; a nil field takes the daemon's default.
// package limits holds the one table that names, converts and checks them.
type Limits struct {
	WallTimeMS    *int64   `json:"wall_time_ms,omitempty"`
	CPUTimeMS     *int64   `json:"cpu_time_ms,omitempty"`
	MemoryBytes   *int64   `json:"memory_bytes,omitempty"`
	Pids          *int64   `json:"pids,omitempty"`
	OutputBytes   *int64   `json:"output_bytes,omitempty"`
	TmpBytes      *int64   `json:"tmp_bytes,omitempty"`
	WorkBytes     *int64   `json:"work_bytes,omitempty"`
	FileSizeBytes *int64   `json:"file_size_bytes,omitempty"`
	CPUs          *float64 `json:"cpus,omitempty"`
	OpenFiles     *int64   `json:"open_files,omitempty"`
}

// ExecuteRequest is the body of POST /v1/execute. Raw mode sets Image and
// Cmd; language mode sets Language (and Version, Args, CompileLimits,
// Tests). The two modes exclude each other.
type ExecuteRequest struct {
	Image  string            `json:"image,omitempty"`
	Cmd    []string          `json:"cmd,omitempty"`
	Files  []File            `json:"files,omitempty"`
	Stdin  string            `json:"stdin,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	Limits *Limits           `json:"limits,omitempty"`

	Language      string   `json:"language,omitempty"`
	Version       string   `json:"version,omitempty"`
	Args          []string `json:"args,omitempty"`
	CompileLimits *Limits  `json:"compile_limits,omitempty"`
	// CompileOptions are added to a compiled language's compile command,
	// after the catalog's options and before the source files.
	CompileOptions []string `json:"compile_options,omitempty"`
	Tests          []Test   `json:"tests,omitempty"`

	// Judging (docs/judge.md). Compare is the tests' default comparison
	// ("lines" when absent); Checker, when set, replaces it for every
	// test; Interactor talks to the program over its stdin and stdout;
	// Groups declare the tests' groups; Testset runs a stored test set's
	// tests instead of Tests.
	Compare          *Compare `json:"compare,omitempty"`
	Checker          *Program `json:"checker,omitempty"`
	CheckerLimits    *Limits  `json:"checker_limits,omitempty"`
	Interactor       *Program `json:"interactor,omitempty"`
	InteractorLimits *Limits  `json:"interactor_limits,omitempty"`
	// Record asks for an interactive test's transcript (both directions).
	Record  bool    `json:"record,omitempty"`
	Groups  []Group `json:"groups,omitempty"`
	Testset string  `json:"testset,omitempty"`

	// Collect lists paths or globs relative to /work that are read back
	// after the run (each test's run in language mode), within
	// CollectBytes in all; they come back in the result's Files.
	Collect      []string `json:"collect,omitempty"`
	CollectBytes *int64   `json:"collect_bytes,omitempty"`

	// Stream asks for the answer as NDJSON events, the output as it is
	// read (docs/api.md, "Streaming").
	Stream bool `json:"stream,omitempty"`

	// TTY runs the program on a pseudo-terminal of Rows x Cols (0: 24 x
	// 80; at most 1000 each) instead of pipes (docs/api.md, "Terminals").
	TTY  bool `json:"tty,omitempty"`
	Rows int  `json:"rows,omitempty"`
	Cols int  `json:"cols,omitempty"`

	// Network lets the program reach the hosts it lists through the
	// daemon's egress proxy (docs/api.md, "Network"); absent: loopback
	// only.
	Network *Network `json:"network,omitempty"`
}

// Network is a request's egress policy.
type Network struct {
	// Allow lists host, host:port or *.domain[:port] entries, each within
	// the daemon's [network] allowed list. Empty: no host.
	Allow []string `json:"allow"`
}

// Test is one input of a language-mode request and the output it must give.
type Test struct {
	Stdin          string `json:"stdin"`
	ExpectedStdout string `json:"expected_stdout"`
	// Name labels the test in its result (a test set's file name).
	Name string `json:"name,omitempty"`
	// Compare overrides the request's comparison for this test.
	Compare *Compare `json:"compare,omitempty"`
	// Group names the test's group (see Groups); Points is what the test
	// is worth (default 1).
	Group  string   `json:"group,omitempty"`
	Points *float64 `json:"points,omitempty"`
}

// Comparison modes (docs/judge.md).
const (
	CompareLines          = "lines"
	CompareExact          = "exact"
	CompareTokens         = "tokens"
	CompareFloat          = "float"
	CompareUnorderedLines = "unordered_lines"
)

// Compare is how a test's output is compared with its expected output:
// in JSON either a mode's name ("tokens") or an object.
type Compare struct {
	Mode string `json:"mode"`
	// CaseInsensitive compares letters without regard to case.
	CaseInsensitive bool `json:"case_insensitive,omitempty"`
	// AbsTol and RelTol are float's tolerances (default 1e-6 each): two
	// numbers match when |a-b| <= abs_tol or |a-b| <= rel_tol*|b|.
	AbsTol *float64 `json:"abs_tol,omitempty"`
	RelTol *float64 `json:"rel_tol,omitempty"`
}

// UnmarshalJSON takes a mode's name as well as the object.
func (c *Compare) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &c.Mode)
	}
	type plain Compare
	return decodeStrict(b, (*plain)(c))
}

// Program is a checker's or an interactor's source: a language of the
// catalog and its files, the first being the main file.
type Program struct {
	Language string `json:"language"`
	Version  string `json:"version,omitempty"`
	Files    []File `json:"files"`
}

// Group declares a group of tests. Tests of a group run in order; with
// StopOnFailure (the default) the group's tests after its first failure
// are skipped. DependsOn names groups, declared before it, that must be
// accepted in full, or the whole group is skipped.
type Group struct {
	Name          string   `json:"name"`
	StopOnFailure *bool    `json:"stop_on_failure,omitempty"`
	DependsOn     []string `json:"depends_on,omitempty"`
}

// LanguageResponse is the 200 answer in language mode. Stages that did not
// run are null: compile for interpreted languages and after a cache miss
// never; run when tests were given or the compile failed; tests when none
// were given.
type LanguageResponse struct {
	ID       string         `json:"id"`
	Language string         `json:"language"`
	Version  string         `json:"version"`
	Status   string         `json:"status"`
	Compile  *CompileResult `json:"compile"`
	// CheckerCompile is the checker's compile, when the request has a
	// checker in a compiled language.
	CheckerCompile *CompileResult `json:"checker_compile,omitempty"`
	Run            *Result        `json:"run"`
	Tests          []TestResult   `json:"tests"`
	Summary        map[string]int `json:"summary,omitempty"`
	// Groups and Score are present when tests carry groups or points:
	// each group's outcome, and the points earned over the points
	// possible.
	Groups   []GroupResult `json:"groups,omitempty"`
	Score    *float64      `json:"score,omitempty"`
	MaxScore *float64      `json:"max_score,omitempty"`
}

// GroupResult is one group's outcome: accepted when every test was,
// skipped when none ran, else its first failing test's status.
type GroupResult struct {
	Name     string  `json:"name"`
	Status   string  `json:"status"`
	Score    float64 `json:"score"`
	MaxScore float64 `json:"max_score"`
	// Tests and Skipped are indexes into the response's tests.
	Tests   []int `json:"tests"`
	Skipped []int `json:"skipped"`
}

// LanguageInfo describes one language of GET /v1/languages.
type LanguageInfo struct {
	Name     string   `json:"name"`
	Aliases  []string `json:"aliases"`
	Version  string   `json:"version"`
	Image    string   `json:"image"`
	Compiled bool     `json:"compiled"`
	// Main is the conventional name of the main file (main.py,
	// Main.java), for clients that name it for their user (MCP's run_code).
	Main string `json:"main"`
	// Available is false when the image is not in the store and could not
	// be pulled; Version is then empty.
	Available bool `json:"available"`
}

// ExecuteResponse is returned with 200 for every outcome of the program.
type ExecuteResponse struct {
	ID     string  `json:"id"`
	Image  string  `json:"image"`
	Status Status  `json:"status"`
	Run    *Result `json:"run"`
}

// Error codes, each with one HTTP status (see server/errors.go).
const (
	CodeInvalidRequest  = "invalid_request"
	CodeUnknownImage    = "unknown_image"
	CodeUnknownLanguage = "unknown_language"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeRequestTooLarge = "request_too_large"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeRateLimited     = "rate_limited"
	CodeBusy            = "busy"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal_error"
)

// ErrorBody is the body of every non-2xx response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Image describes a stored image.
type Image struct {
	Name      string      `json:"name"`
	ID        string      `json:"id"`
	SizeBytes int64       `json:"size_bytes"`
	Created   time.Time   `json:"created"`
	Source    string      `json:"source"`
	Config    ImageConfig `json:"config"`
}

// ImageConfig is what sandboxd uses of the image's own configuration.
type ImageConfig struct {
	Env        []string `json:"env"`
	WorkingDir string   `json:"working_dir"`
	User       string   `json:"user"`
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
}

// PullRequest is the body of POST /v1/images/pull.
type PullRequest struct {
	Ref  string `json:"ref"`
	Name string `json:"name,omitempty"`
}

// PullEvent is one line of a streamed pull (Accept: application/x-ndjson):
// progress while downloading, then exactly one of Image or Error.
type PullEvent struct {
	Progress *PullProgress `json:"progress,omitempty"`
	Image    *Image        `json:"image,omitempty"`
	Error    *ErrorDetail  `json:"error,omitempty"`
}

// PullProgress counts compressed layer bytes fetched so far.
type PullProgress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Health is the body of GET /v1/healthz.
type Health struct {
	Status       string `json:"status"`
	Cgroup       string `json:"cgroup"`
	CgroupParent string `json:"cgroup_parent"`
	Running      int    `json:"running"`
	Queued       int    `json:"queued"`
	Capacity     int    `json:"capacity"`
	QueueLength  int    `json:"queue_length"`
	Images       int    `json:"images"`
}

// Readiness is the body of GET /v1/readyz: Status "ready" (200), or
// "not_ready" (503) with Reason, what the daemon still waits for (the
// images of [images] preload).
type Readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// VersionInfo is the body of GET /v1/version.
type VersionInfo struct {
	Version      string `json:"version"`
	API          string `json:"api"`
	Go           string `json:"go"`
	Libcontainer string `json:"libcontainer"`
	Libseccomp   string `json:"libseccomp"`
}

// BuildRequest is the body of POST /v1/images/build: an image made from
// an image in the store by running commands over it (docs/api.md,
// "Image builds").
type BuildRequest struct {
	// Name is the new image's name[:tag]; From the parent's.
	Name string `json:"name"`
	From string `json:"from"`
	// Run are the steps, argv lists run in order in /work; each must exit
	// 0 for the build to go on.
	Run [][]string `json:"run"`
	// Env is given to every step and recorded in the new image.
	Env map[string]string `json:"env,omitempty"`
	// Network is the steps' egress, as in POST /v1/execute.
	Network *Network `json:"network,omitempty"`
	// Limits lower the daemon's [build.limits].
	Limits *Limits `json:"limits,omitempty"`
}

// decodeStrict decodes b into v, refusing unknown fields as the server
// does for whole bodies.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
