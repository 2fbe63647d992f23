package api

// Status says how a run ended. docs/result.md documents each.
type Status string

// The statuses, in the order in which they take precedence when several
// apply (an OOM kill explains a later crash, not the other way round).
const (
	StatusMemoryLimit   Status = "memory_limit"
	StatusOutputLimit   Status = "output_limit"
	StatusTimeLimit     Status = "time_limit"
	StatusWallTimeLimit Status = "wall_time_limit"
	StatusRuntimeError  Status = "runtime_error"
	StatusOK            Status = "ok"
	StatusInternalError Status = "internal_error"
)

// Statuses a language-mode request adds to a run's.
const (
	StatusCompileError = "compile_error"
	StatusAccepted     = "accepted"
	StatusWrongAnswer  = "wrong_answer"
	// A checker's verdicts (docs/judge.md): testlib's exit codes 2 and 7,
	// and a checker that failed (exit 3, a crash, a limit): never the
	// program's fault.
	StatusPresentationError = "presentation_error"
	StatusPartial           = "partial"
	StatusCheckerError      = "checker_error"
	// StatusSkipped is a test that did not run: its group stopped, or a
	// group it depends on was not accepted.
	StatusSkipped = "skipped"
)

// Result is the outcome of one run, as the CLI prints it with --json and the
// API returns it for every stage (docs/result.md).
type Result struct {
	Status Status `json:"status"`
	// ExitCode is the program's exit status, or 128+N when signal N ended it.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that ended the program ("SIGSEGV"), or null.
	Signal *string `json:"signal"`
	Stdout string  `json:"stdout"`
	Stderr string  `json:"stderr"`
	// StdoutEncoding is "base64" when stdout was not valid UTF-8; absent
	// otherwise. Likewise StderrEncoding.
	StdoutEncoding  string  `json:"stdout_encoding,omitempty"`
	StderrEncoding  string  `json:"stderr_encoding,omitempty"`
	StdoutTruncated bool    `json:"stdout_truncated"`
	StderrTruncated bool    `json:"stderr_truncated"`
	CPUTimeMS       float64 `json:"cpu_time_ms"`
	WallTimeMS      float64 `json:"wall_time_ms"`
	MemoryPeakBytes int64   `json:"memory_peak_bytes"`
	OOMKilled       bool    `json:"oom_killed"`
	// Error explains an internal_error; it is absent for every other status.
	Error string `json:"error,omitempty"`
	// Files are what the request's "collect" named, read after the run;
	// absent when it named nothing.
	Files []OutputFile `json:"files,omitempty"`
	// Network is what the run did through the egress proxy; absent when
	// the request had no network policy.
	Network *NetworkUsage `json:"network,omitempty"`
}

// NetworkUsage counts a run's connections through the egress proxy.
type NetworkUsage struct {
	// Connections made to remote hosts.
	Connections int64 `json:"connections"`
	// BytesIn came from remote hosts; BytesOut went to them.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Denied are requests the proxy refused (host, address, caps,
	// malformed).
	Denied int64 `json:"denied"`
}

// OutputFile is one file read back from /work after a run. A path that
// names no regular file is listed with Missing or Type, and no content.
type OutputFile struct {
	Name     string `json:"name"`
	Content  string `json:"content"`
	Encoding string `json:"encoding,omitempty"` // "base64" when the content is not UTF-8
	Size     int64  `json:"size"`               // the file's size, even when truncated
	Mode     string `json:"mode,omitempty"`     // permission bits, octal ("0644")
	// Truncated: the collect budget (collect_bytes, or the entry count)
	// ran out within this file or before it.
	Truncated bool `json:"truncated,omitempty"`
	// Missing: nothing is at this path, or no file matches this glob.
	Missing bool `json:"missing,omitempty"`
	// Type is "symlink" (never read through) or "other" (a FIFO, a device
	// node) for a path that is not a regular file, and "dir" for a
	// directory with no regular file under it.
	Type string `json:"type,omitempty"`
}

// CompileResult is the compile stage's result plus whether it came from
// the compile cache.
type CompileResult struct {
	*Result
	Cached bool `json:"cached"`
}

// TestResult is one test's outcome: its status (accepted, wrong_answer, or
// the run's own status when it did not end ok) and the run's result.
type TestResult struct {
	Status string  `json:"status"`
	Run    *Result `json:"run"`
	// Name and Group are the test's; Points what it earned of MaxPoints
	// (present when the request has groups or points).
	Name      string   `json:"name,omitempty"`
	Group     string   `json:"group,omitempty"`
	Points    *float64 `json:"points,omitempty"`
	MaxPoints *float64 `json:"max_points,omitempty"`
	// Message is the checker's or interactor's first line of stderr.
	Message string `json:"message,omitempty"`
	// Checker and Interactor are their runs' results.
	Checker    *Result `json:"checker,omitempty"`
	Interactor *Result `json:"interactor,omitempty"`
	// Transcript is an interactive test's exchange, when "record" asked.
	Transcript *Transcript `json:"transcript,omitempty"`
	// OutputDropped is true when the run's stdout, stderr and files were
	// dropped because the request's earlier tests had used up
	// max_response_bytes (or those of all requests in progress,
	// max_pending_output_bytes); its status and figures stand.
	OutputDropped bool `json:"output_dropped,omitempty"`
}

// Transcript is what went each way between a program and its
// interactor, capped at the run's output_bytes each.
type Transcript struct {
	ToProgram   string `json:"to_program"`
	FromProgram string `json:"from_program"`
	// ToProgramEncoding is "base64" when what went to the program was
	// not valid UTF-8; absent otherwise. Likewise FromProgramEncoding.
	ToProgramEncoding   string `json:"to_program_encoding,omitempty"`
	FromProgramEncoding string `json:"from_program_encoding,omitempty"`
	Truncated           bool   `json:"truncated,omitempty"`
}
