package runtime

import (
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
)

// Limits are everything a run may use: the one limits model's Set
// (package limits), which the engine enforces in the steps of spec.go and
// in Run.
type Limits = limits.Set

// DefaultLimits are the production settings of the design sandboxd
// replaces: 128 MiB, half a core, 10 s, a 64 MiB /tmp.
func DefaultLimits() Limits { return limits.Defaults() }

// ErrInvalid marks errors caused by the caller's input (a bad limit, a
// missing rootfs): it is errdefs.ErrInvalid, which the API maps to 400 and
// the CLI to exit code 125.
var ErrInvalid = errdefs.ErrInvalid

func invalidf(format string, args ...any) error { return errdefs.Invalidf(format, args...) }

func cgroupLimits(l Limits) cgroup.Limits {
	return cgroup.Limits{MemoryBytes: l.MemoryBytes, CPUs: l.CPUs, Pids: l.Pids}
}

func scratchSizes(l Limits) rootfs.ScratchSizes {
	return rootfs.ScratchSizes{WorkBytes: l.WorkBytes, TmpBytes: l.TmpBytes}
}

// stackBytes is RLIMIT_STACK: glibc's usual 8 MiB. It is no limit of the
// model (nothing asks to change it); the memory limit bounds it anyway.
const stackBytes = 8 << 20
