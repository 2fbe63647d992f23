package runtime

import (
	"errors"
	"fmt"
	"time"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/rootfs"
)

// Limits are everything a run may use. Zero values are invalid: callers
// start from DefaultLimits and change what they need.
type Limits struct {
	MemoryBytes   int64         // cgroup memory limit; swap is off
	CPUs          float64       // CPU quota in cores
	Pids          int64         // tasks (processes + threads) of the program
	WallTime      time.Duration // real time from start to end
	CPUTime       time.Duration // CPU time of every task in the sandbox
	OutputBytes   int64         // per stream (stdout, stderr)
	TmpBytes      int64         // size of /tmp
	WorkBytes     int64         // size of /work
	FileSizeBytes int64         // RLIMIT_FSIZE
	OpenFiles     uint64        // RLIMIT_NOFILE
	StackBytes    int64         // RLIMIT_STACK; 0 means 8 MiB
}

// DefaultLimits are the production settings of the design sandboxd
// replaces: 128 MiB, half a core, 10 s, a 64 MiB /tmp.
func DefaultLimits() Limits {
	return Limits{
		MemoryBytes:   128 << 20,
		CPUs:          0.5,
		Pids:          64,
		WallTime:      10 * time.Second,
		CPUTime:       10 * time.Second,
		OutputBytes:   1 << 20,
		TmpBytes:      64 << 20,
		WorkBytes:     64 << 20,
		FileSizeBytes: 16 << 20,
		OpenFiles:     256,
	}
}

// ErrInvalid marks errors caused by the caller's input (a bad limit, a
// missing rootfs); the API maps it to 400 and the CLI to exit code 125.
var ErrInvalid = errors.New("invalid")

// invalidError reads as its message alone and matches ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Validate checks that every limit is set and sane.
func (l Limits) Validate() error {
	if err := l.cgroup().Validate(); err != nil {
		return invalidf("%v", err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"wall time", l.WallTime > 0},
		{"cpu time", l.CPUTime > 0},
		{"output limit", l.OutputBytes > 0},
		{"tmp size", l.TmpBytes > 0},
		{"work size", l.WorkBytes > 0},
		{"file size", l.FileSizeBytes > 0},
		{"nofile", l.OpenFiles > 0},
		{"stack", l.StackBytes >= 0},
	}
	for _, c := range checks {
		if !c.ok {
			return invalidf("%s must be greater than zero", c.name)
		}
	}
	if l.OpenFiles < 16 {
		return invalidf("nofile %d is below the minimum of 16", l.OpenFiles)
	}
	return nil
}

func (l Limits) cgroup() cgroup.Limits {
	return cgroup.Limits{MemoryBytes: l.MemoryBytes, CPUs: l.CPUs, Pids: l.Pids}
}

func (l Limits) scratch() rootfs.ScratchSizes {
	return rootfs.ScratchSizes{WorkBytes: l.WorkBytes, TmpBytes: l.TmpBytes}
}

func (l Limits) stack() uint64 {
	if l.StackBytes > 0 {
		return uint64(l.StackBytes)
	}
	return 8 << 20
}
