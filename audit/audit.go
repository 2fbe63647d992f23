// Package audit writes sandboxd's audit trail: one JSON line per execution
// request. Lines go through a bounded buffer to a single writer goroutine,
// so an execution never waits on the disk: when the buffer is full the line
// is dropped and counted, and a failing write (a full disk) is counted and
// logged, never fatal.
package audit

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File is one file of a request: its name, size and SHA-256, never its content.
type File struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Record is one line of the audit log. It never holds the code, the
// command line or the stdin: only their hashes and sizes.
type Record struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// Action is what the request did: "execute", or on a session sandbox
	// "sandbox.create", "sandbox.exec", "sandbox.write" (a file or an
	// archive put), "sandbox.delete"; or "network.connect", one line per
	// connection a sandbox made or tried through the egress proxy.
	Action string `json:"action"`
	// Path and Bytes describe a sandbox.write: where, and how much.
	Path       string  `json:"path,omitempty"`
	Bytes      *int64  `json:"bytes,omitempty"`
	SandboxID  string  `json:"sandbox_id,omitempty"`
	ExecID     string  `json:"exec_id,omitempty"` // a detached exec's (sandbox.exec_end)
	User       string  `json:"user"`
	Auth       string  `json:"auth"`      // "jwt", "peer", or "none" (a compat listener's anonymous callers)
	Transport  string  `json:"transport"` // "unix" or "tcp"
	PeerUID    *uint32 `json:"peer_uid"`  // null over TCP
	PeerPID    *int32  `json:"peer_pid"`
	Remote     string  `json:"remote,omitempty"` // TCP peer address
	Language   string  `json:"language,omitempty"`
	Image      string  `json:"image,omitempty"`
	Files      []File  `json:"files"`
	StdinBytes int     `json:"stdin_bytes"`
	// Limits are the last stage's limits under their API names and units
	// (package limits makes them).
	Limits     map[string]any `json:"limits,omitempty"`
	HTTPStatus int            `json:"http_status"`
	// Status is the run's status (ok, time_limit, ...) when it ran, else
	// the API error code that refused it (busy, rate_limited, ...).
	Status          string   `json:"status"`
	LimitHit        string   `json:"limit_hit,omitempty"` // wall_time, cpu_time, memory, output
	ExitCode        *int     `json:"exit_code,omitempty"`
	WallTimeMS      *float64 `json:"wall_time_ms,omitempty"`
	CPUTimeMS       *float64 `json:"cpu_time_ms,omitempty"`
	MemoryPeakBytes *int64   `json:"memory_peak_bytes,omitempty"`
	QueueMS         *float64 `json:"queue_ms,omitempty"`
	// Connection is a "network.connect" line's: one connection through
	// the egress proxy, never its content.
	Connection *Connection `json:"connection,omitempty"`
}

// Connection is one connection of a sandbox through the egress proxy.
type Connection struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Verdict  string `json:"verdict"`
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
}

// Log is an audit log. A nil *Log discards everything.
type Log struct {
	out     io.Writer
	closer  io.Closer
	lines   chan []byte
	done    chan struct{}
	log     *slog.Logger
	dropped atomic.Uint64
	failed  atomic.Uint64
	once    sync.Once
	mu      sync.RWMutex // guards closed against Write after Close
	closed  bool
	// OnDrop, when set, is called for each dropped or failed line (metrics).
	OnDrop func(reason string)
}

// Open opens path for appending (created 0640, its directory 0750 if
// missing), or stdout for "-".
func Open(path string, buffer int, log *slog.Logger) (*Log, error) {
	var w io.Writer = os.Stdout
	var c io.Closer = nopCloser{}
	if path != "-" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, err
		}
		w, c = f, f
	}
	return New(w, c, buffer, log), nil
}

// New returns a log writing to w; closer is closed by Close.
func New(w io.Writer, closer io.Closer, buffer int, log *slog.Logger) *Log {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &Log{out: w, closer: closer, lines: make(chan []byte, max(buffer, 1)), done: make(chan struct{}), log: log}
	go l.writer()
	return l
}

// Write queues r; it never blocks.
func (l *Log) Write(r *Record) {
	if l == nil {
		return
	}
	line, err := json.Marshal(r)
	if err != nil {
		l.drop("encode")
		return
	}
	line = append(line, '\n')
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.drop("closed")
		return
	}
	select {
	case l.lines <- line:
	default:
		l.drop("full")
	}
}

func (l *Log) drop(reason string) {
	l.dropped.Add(1)
	if l.OnDrop != nil {
		l.OnDrop(reason)
	}
}

// Dropped reports the lines lost: buffer full, or write failures.
func (l *Log) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load() + l.failed.Load()
}

func (l *Log) writer() {
	defer close(l.done)
	var lastWarn time.Time
	for line := range l.lines {
		if _, err := l.out.Write(line); err != nil {
			l.failed.Add(1)
			if l.OnDrop != nil {
				l.OnDrop("write")
			}
			if time.Since(lastWarn) > time.Minute {
				lastWarn = time.Now()
				l.log.Error("audit log write failed; lines are being lost", "err", err, "lost", l.Dropped())
			}
		}
	}
}

// Close writes what is buffered (waiting at most timeout) and closes the file.
func (l *Log) Close(timeout time.Duration) {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.lines)
		l.mu.Unlock()
		select {
		case <-l.done:
		case <-time.After(timeout):
			l.log.Warn("audit log: buffered lines not written in time")
		}
		_ = l.closer.Close()
	})
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
