package api

import "time"

// CreateSandboxRequest is the body of POST /v1/sandboxes: a sandbox that
// lives across calls (a session). docs/api.md "Sandboxes" is its reference.
type CreateSandboxRequest struct {
	// Image, or Language and Version (the language's image and
	// environment); exactly one of Image and Language.
	Image    string `json:"image,omitempty"`
	Language string `json:"language,omitempty"`
	Version  string `json:"version,omitempty"`
	// Limits hold for the whole sandbox: memory_bytes, pids, cpus,
	// work_bytes, tmp_bytes, open_files, file_size_bytes. The per-exec
	// ones (wall_time_ms, cpu_time_ms, output_bytes) go with each exec.
	Limits        *Limits           `json:"limits,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Files         []File            `json:"files,omitempty"`
	TTLMS         *int64            `json:"ttl_ms,omitempty"`
	IdleTimeoutMS *int64            `json:"idle_timeout_ms,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	// Network lets the sandbox's programs reach the hosts it lists through
	// the daemon's egress proxy, for the sandbox's life or until a PATCH
	// changes it; absent: loopback only.
	Network *Network `json:"network,omitempty"`
}

// UpdateSandboxRequest is the body of PATCH /v1/sandboxes/{id}.
type UpdateSandboxRequest struct {
	// Network replaces the sandbox's allow-list: {"allow": []} locks it.
	Network *Network `json:"network,omitempty"`
}

// SandboxNetwork is a sandbox's egress policy now and what it did so far.
type SandboxNetwork struct {
	Allow []string `json:"allow"`
	NetworkUsage
}

// Sandbox is a session sandbox as the API shows it.
type Sandbox struct {
	ID            string            `json:"id"`
	Image         string            `json:"image"`
	Language      string            `json:"language,omitempty"`
	Version       string            `json:"version,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	ExpiresAt     time.Time         `json:"expires_at"`
	IdleTimeoutMS int64             `json:"idle_timeout_ms"`
	Limits        Limits            `json:"limits"`
	Labels        map[string]string `json:"labels"`
	// State is "running" until the sandbox ends; an ended sandbox is
	// gone from the API (404 unknown_sandbox).
	State string        `json:"state"`
	Usage *SandboxUsage `json:"usage,omitempty"`
	// Network is the sandbox's allow-list and its connections so far;
	// absent for a sandbox that never had a network.
	Network *SandboxNetwork `json:"network,omitempty"`
}

// SandboxState values.
const (
	SandboxRunning = "running"
)

// SandboxUsage is what GET /v1/sandboxes/{id} reports of a sandbox's use.
type SandboxUsage struct {
	// CPUTimeMS sums the CPU time of every exec so far.
	CPUTimeMS float64 `json:"cpu_time_ms"`
	// MemoryBytes is what the execs in flight use now; MemoryPeakBytes
	// the highest peak of any exec so far.
	MemoryBytes     int64 `json:"memory_bytes"`
	MemoryPeakBytes int64 `json:"memory_peak_bytes"`
	// WorkBytes and TmpBytes are used in /work and /tmp.
	WorkBytes int64 `json:"work_bytes"`
	TmpBytes  int64 `json:"tmp_bytes"`
	// Processes counts the tasks of the execs in flight.
	Processes   int64      `json:"processes"`
	ExecsActive int        `json:"execs_active"`
	Execs       int64      `json:"execs"`
	LastExecAt  *time.Time `json:"last_exec_at"`
}

// SandboxList is the answer of GET /v1/sandboxes.
type SandboxList struct {
	Sandboxes []Sandbox `json:"sandboxes"`
}

// SandboxExecRequest is the body of POST /v1/sandboxes/{id}/exec.
type SandboxExecRequest struct {
	Cmd   []string          `json:"cmd"`
	Stdin string            `json:"stdin,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
	// Cwd is the working directory: relative to /work, or absolute under
	// /work; empty is /work.
	Cwd string `json:"cwd,omitempty"`
	// Limits of this exec: wall_time_ms, cpu_time_ms, output_bytes.
	Limits *Limits `json:"limits,omitempty"`
	// Stream asks for the answer as NDJSON events (docs/api.md,
	// "Streaming").
	Stream bool `json:"stream,omitempty"`

	// TTY runs the program on a pseudo-terminal of Rows x Cols (0: 24 x
	// 80; at most 1000 each) instead of pipes (docs/api.md, "Terminals").
	TTY  bool `json:"tty,omitempty"`
	Rows int  `json:"rows,omitempty"`
	Cols int  `json:"cols,omitempty"`
	// Detach starts the program in the background and answers at once
	// (202) with its Exec: it runs on after the call, until it ends, is
	// killed, or the sandbox ends (docs/api.md, "Detached execs").
	Detach bool `json:"detach,omitempty"`
}

// Exec is a detached exec of a sandbox (POST .../exec with "detach",
// GET .../execs and .../execs/{exec_id}).
type Exec struct {
	ID  string   `json:"exec_id"`
	Cmd []string `json:"cmd"`
	// State is "running", "exited" (it ended by itself or at a limit) or
	// "killed" (DELETE .../execs/{exec_id} ended it).
	State     string     `json:"state"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	// Result is the same object a plain exec answers with ("run"), once
	// the exec has ended; null while it runs.
	Result *Result `json:"result"`
	// Error is set, with a null result, when the exec broke instead of
	// ending (internal_error).
	Error *ErrorDetail `json:"error,omitempty"`
}

// The states of a detached exec.
const (
	ExecRunning = "running"
	ExecExited  = "exited"
	ExecKilled  = "killed"
)

// ExecList is the answer of GET /v1/sandboxes/{id}/execs.
type ExecList struct {
	Execs []Exec `json:"execs"`
}

// FileEntry is one file in a sandbox, as the files API lists it.
type FileEntry struct {
	Path    string    `json:"path"`
	Name    string    `json:"name"`
	Type    string    `json:"type"` // file, dir, symlink, other
	Size    int64     `json:"size"`
	Mode    string    `json:"mode"` // octal, "0644"
	ModTime time.Time `json:"mtime"`
}

// FileList is the answer of GET on a directory.
type FileList struct {
	Path    string      `json:"path"`
	Entries []FileEntry `json:"entries"`
}

// ArchiveResult is the answer of PUT /v1/sandboxes/{id}/archive.
type ArchiveResult struct {
	Path    string `json:"path"`
	Entries int    `json:"entries"`
	Bytes   int64  `json:"bytes"`
}

// CodeUnknownSandbox: no sandbox of this caller has this id.
const CodeUnknownSandbox = "unknown_sandbox"

// CodeUnknownExec: the sandbox has no exec of this id (any more).
const CodeUnknownExec = "unknown_exec"

// CodeInsufficientStorage: the sandbox's /work or /tmp is full (507).
const CodeInsufficientStorage = "insufficient_storage"
