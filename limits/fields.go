package limits

import (
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// Set is every limit of one run. Zero values are invalid: callers start
// from Defaults() or a resolved configuration.
type Set struct {
	WallTime      time.Duration // real time from start to end
	CPUTime       time.Duration // CPU time of every task in the sandbox
	MemoryBytes   int64         // cgroup memory limit; swap is off
	Pids          int64         // tasks (processes + threads) of the program
	CPUs          float64       // CPU quota in cores
	OutputBytes   int64         // per stream (stdout, stderr)
	TmpBytes      int64         // size of /tmp
	WorkBytes     int64         // size of /work
	FileSizeBytes int64         // RLIMIT_FSIZE
	OpenFiles     int64         // RLIMIT_NOFILE
}

// Field is one limit. Its exported fields name it everywhere it appears;
// its operations (unexported) convert and compare it in each unit.
type Field struct {
	API    string // name in the API's Limits and in the audit line
	Unit   string // of the API value: "ms", "bytes", "count", "cores"
	Config string // key in [defaults], [maximums] and a catalog's limits; serve flags --default-KEY and --max-KEY
	Flag   string // `sandboxd exec` flag
	Engine string // how the engine enforces it (docs/architecture.md)
	ops
}

// The table: the one list of limits. To add a limit, add its line here
// and its field to Set above, its field to api.Limits (api/types.go) and
// its row to docs/api.md, then run `go generate ./limits` to rewrite
// api/openapi.yaml's Limits (TestTableMatchesTheAPIAndItsDocs fails until
// all of them agree). A limit that needs a new kind of enforcement also
// needs its step in runtime.
//
// table is built on first use, not at package init: package inits do
// nothing but libcontainer's hook (a sandbox's init runs this binary too).
//
//go:generate go run ./internal/genopenapi ../api/openapi.yaml
var table = sync.OnceValue(func() []Field {
	return []Field{
		{"wall_time_ms", "ms", "wall_time", "wall-time", "timer in runtime.watch; SIGKILL to the sandbox's PID 1",
			duration(func(s *Set) *time.Duration { return &s.WallTime }, func(a *api.Limits) **int64 { return &a.WallTimeMS }, 10*time.Second, 60*time.Second)},
		{"cpu_time_ms", "ms", "cpu_time", "cpu-time", "cgroup CPU usage polled in runtime.watch",
			duration(func(s *Set) *time.Duration { return &s.CPUTime }, func(a *api.Limits) **int64 { return &a.CPUTimeMS }, 10*time.Second, 60*time.Second)},
		{"memory_bytes", "bytes", "memory", "memory", "cgroup memory limit, swap off",
			atLeast(size(func(s *Set) *int64 { return &s.MemoryBytes }, func(a *api.Limits) **int64 { return &a.MemoryBytes }, 128<<20, 2<<30),
				4<<20, func(v int64) string { return fmt.Sprintf("memory limit %d bytes is below the 4 MiB minimum", v) })},
		{"pids", "count", "pids", "pids", "cgroup pids limit",
			count(func(s *Set) *int64 { return &s.Pids }, func(a *api.Limits) **int64 { return &a.Pids }, 64, 1024)},
		{"cpus", "cores", "cpus", "cpus", "cgroup CPU quota",
			atLeast(cores(func(s *Set) *float64 { return &s.CPUs }, func(a *api.Limits) **float64 { return &a.CPUs }, 0.5, float64(goruntime.NumCPU())),
				0.01, func(v float64) string { return fmt.Sprintf("cpus %g is below the 0.01 minimum", v) })},
		{"output_bytes", "bytes", "output", "output-limit", "runtime capture: bytes kept per stream; more ends the run",
			size(func(s *Set) *int64 { return &s.OutputBytes }, func(a *api.Limits) **int64 { return &a.OutputBytes }, 1<<20, 16<<20)},
		{"tmp_bytes", "bytes", "tmp", "tmp-size", "size of the /tmp tmpfs",
			size(func(s *Set) *int64 { return &s.TmpBytes }, func(a *api.Limits) **int64 { return &a.TmpBytes }, 64<<20, 1<<30)},
		{"work_bytes", "bytes", "work", "work-size", "size of the /work tmpfs",
			size(func(s *Set) *int64 { return &s.WorkBytes }, func(a *api.Limits) **int64 { return &a.WorkBytes }, 64<<20, 1<<30)},
		{"file_size_bytes", "bytes", "file_size", "file-size", "RLIMIT_FSIZE",
			size(func(s *Set) *int64 { return &s.FileSizeBytes }, func(a *api.Limits) **int64 { return &a.FileSizeBytes }, 16<<20, 1<<30)},
		{"open_files", "count", "nofile", "nofile", "RLIMIT_NOFILE",
			atLeast(count(func(s *Set) *int64 { return &s.OpenFiles }, func(a *api.Limits) **int64 { return &a.OpenFiles }, 256, 4096),
				MinOpenFiles, func(v int64) string { return fmt.Sprintf("nofile %d is below the minimum of %d", v, MinOpenFiles) })},
	}
})

// fields returns the table; nothing writes it after it is built.
func fields() []Field { return table() }

// All returns a copy of the table, for docs and tests.
func All() []Field { return slices.Clone(table()) }
