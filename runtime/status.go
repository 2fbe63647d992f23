package runtime

import (
	"time"

	"golang.org/x/sys/unix"
)

// observed are the plain facts of a finished run that decide its status:
// what sandboxd saw, with no sandbox, cgroup or process behind them, so the
// decision can be tested on its own.
type observed struct {
	// accountingErr is the failure to read the cgroup's accounting, if any.
	accountingErr error
	// stop is why sandboxd ended the run, or stopNone if the program did.
	stop stopReason
	// oomKilled: the kernel's OOM killer killed a process of the sandbox.
	oomKilled bool
	// truncated: stdout or stderr passed the output limit.
	truncated bool
	// cpuUsed is the cgroup's CPU time; cpuLimit the run's limit.
	cpuUsed, cpuLimit time.Duration
	// exitCode and signaled describe how the program ended (exitStatus).
	exitCode int
	signaled bool
}

// decideStatus returns the run's status and, for internal_error only, why.
// When several statuses apply, the first case wins: sandboxd's own failures
// first (without accounting no limit can be judged, and a canceled run has
// no verdict), then the limits, the most fundamental first, since an OOM
// kill explains a later crash, timeout or flood, not the other way round.
func decideStatus(o observed) (Status, string) {
	switch {
	case o.accountingErr != nil:
		return StatusInternalError, "reading sandbox accounting: " + o.accountingErr.Error()
	case o.stop == stopCanceled:
		return StatusInternalError, "run canceled"
	case o.oomKilled:
		return StatusMemoryLimit, ""
	case o.stop == stopOutput || o.truncated:
		return StatusOutputLimit, ""
	// The cgroup is read once more after the kill: a limit passed between
	// two polls still counts, even if the program ended first.
	case o.stop == stopCPU || o.cpuUsed >= o.cpuLimit:
		return StatusTimeLimit, ""
	case o.stop == stopWall:
		return StatusWallTimeLimit, ""
	case o.signaled || o.exitCode != 0:
		return StatusRuntimeError, ""
	default:
		return StatusOK, ""
	}
}

// exitStatus turns the entry's report of the program's wait status into
// the result's exit code and signal name. Without a report, sandboxd killed
// the sandbox for a limit before the entry could send one: that is SIGKILL.
func exitStatus(ws unix.WaitStatus, reported bool) (code int, signal *string) {
	sig := unix.SIGKILL
	switch {
	case reported && ws.Signaled():
		sig = ws.Signal()
	case reported:
		return ws.ExitStatus(), nil
	}
	name := SignalName(sig)
	return 128 + int(sig), &name
}
