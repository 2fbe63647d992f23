package runtime

import (
	"encoding/base64"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Status says how a run ended. The API returns it unchanged.
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

// Result is the outcome of one run, as the CLI prints it with --json and the
// API returns it for every stage.
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
}

// encodeOutput returns data as a JSON-safe string and its encoding: UTF-8
// text is kept as it is, anything else is base64 so no byte is altered.
func encodeOutput(data []byte) (text, encoding string) {
	if utf8.Valid(data) {
		return string(data), ""
	}
	return base64.StdEncoding.EncodeToString(data), "base64"
}

// SignalName returns the conventional name of a signal ("SIGKILL").
func SignalName(sig unix.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return "SIG" + sig.String()
}
