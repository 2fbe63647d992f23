package runtime

import (
	"cmp"
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

// limitField is one limit of Limits, under the name the config file and
// error messages use. The table below is the one list of limits that
// Validate, Capped and Within walk, so a new limit is added in one place.
type limitField struct {
	name     string
	positive func(l *Limits) bool
	above    func(l, max *Limits) bool
	lower    func(l, max *Limits)
	value    func(l *Limits) any
}

func field[T cmp.Ordered](name string, at func(*Limits) *T) limitField {
	var zero T
	return limitField{
		name:     name,
		positive: func(l *Limits) bool { return *at(l) > zero },
		above:    func(l, max *Limits) bool { return *at(l) > *at(max) },
		lower:    func(l, max *Limits) { *at(l) = min(*at(l), *at(max)) },
		value:    func(l *Limits) any { return *at(l) },
	}
}

// limitFields lists every limit that has a maximum. StackBytes has none:
// it is set by the catalog only, and 0 means the default.
var limitFields = []limitField{
	field("wall_time", func(l *Limits) *time.Duration { return &l.WallTime }),
	field("cpu_time", func(l *Limits) *time.Duration { return &l.CPUTime }),
	field("memory", func(l *Limits) *int64 { return &l.MemoryBytes }),
	field("pids", func(l *Limits) *int64 { return &l.Pids }),
	field("cpus", func(l *Limits) *float64 { return &l.CPUs }),
	field("output", func(l *Limits) *int64 { return &l.OutputBytes }),
	field("tmp", func(l *Limits) *int64 { return &l.TmpBytes }),
	field("work", func(l *Limits) *int64 { return &l.WorkBytes }),
	field("file_size", func(l *Limits) *int64 { return &l.FileSizeBytes }),
	field("nofile", func(l *Limits) *uint64 { return &l.OpenFiles }),
}

// Validate checks that every limit is set and sane.
func (l Limits) Validate() error {
	if err := l.cgroup().Validate(); err != nil {
		return invalidf("%v", err)
	}
	for _, f := range limitFields {
		if !f.positive(&l) {
			return invalidf("%s must be greater than zero", f.name)
		}
	}
	if l.StackBytes < 0 {
		return invalidf("stack must not be negative")
	}
	if l.OpenFiles < 16 {
		return invalidf("nofile %d is below the minimum of 16", l.OpenFiles)
	}
	return nil
}

// Within returns an error naming the first limit of l above max's, or nil.
func (l Limits) Within(max Limits) error {
	for _, f := range limitFields {
		if f.above(&l, &max) {
			return invalidf("%s %v is above the maximum %v", f.name, f.value(&l), f.value(&max))
		}
	}
	return nil
}

// Capped returns l with every limit above max's lowered to it.
func (l Limits) Capped(max Limits) Limits {
	for _, f := range limitFields {
		f.lower(&l, &max)
	}
	return l
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
