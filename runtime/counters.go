package runtime

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime/entry"
)

// The kernel keeps some counters per user, and charges a user namespace's
// to its owner in every namespace above. sandboxd creates sandboxes' user
// namespaces as host root, so without a budget of their own, one sandbox
// could take host root's whole share of these and leave nothing to the
// host or to other sandboxes. Each sandbox gets a fixed budget of each, set
// by two mechanisms:
//   - rlimits, for the counters the kernel checks against the task's
//     rlimit at every level (queued signals, POSIX message-queue bytes);
//   - its user namespace's own /proc/sys/user limits, for those it checks
//     against each namespace's limit (inotify instances and watches), set
//     before any program runs: by a reusable sandbox's entry itself, by a
//     helper process from the host for any other sandbox once it is parked.
//
// Parked sandboxes hold none, so the most sandboxes can hold at once is
// concurrency × budget; docs say how that compares with the host's limits.
const (
	// SigPendingBudget is RLIMIT_SIGPENDING: queued signals.
	SigPendingBudget = 1024
	// MsgQueueBudget is RLIMIT_MSGQUEUE: bytes of POSIX message queues (a
	// queue of the default 10 × 8 KiB takes about 81 KiB of it).
	MsgQueueBudget = 128 << 10
	// InotifyInstancesBudget and InotifyWatchesBudget bound inotify.
	InotifyInstancesBudget = 16
	InotifyWatchesBudget   = 8192
)

// counterRlimits are the rlimit half of the budgets.
func counterRlimits() []configs.Rlimit {
	return []configs.Rlimit{
		{Type: unix.RLIMIT_SIGPENDING, Hard: SigPendingBudget, Soft: SigPendingBudget},
		{Type: unix.RLIMIT_MSGQUEUE, Hard: MsgQueueBudget, Soft: MsgQueueBudget},
	}
}

// usernsLimits are the user namespace's half. The namespace limits are
// zero: seccomp already refuses every way to make a namespace, and this
// holds even if a filter bug let one through. A reusable sandbox's entry
// makes each run's mount, PID, IPC, UTS and network namespaces
// (runtime/entry/fresh.c): it gets a few of those kinds (a run's network
// namespace is freed by the kernel after the run, asynchronously), still
// no user or cgroup namespace; its programs still can't make any.
func usernsLimits(fresh bool) []entry.UserLimit {
	made := int64(0)
	if fresh {
		made = freshNamespaces
	}
	return []entry.UserLimit{
		{Name: "max_inotify_instances", Value: InotifyInstancesBudget},
		{Name: "max_inotify_watches", Value: InotifyWatchesBudget},
		{Name: "max_user_namespaces", Value: 0},
		{Name: "max_mnt_namespaces", Value: made},
		{Name: "max_pid_namespaces", Value: made},
		{Name: "max_net_namespaces", Value: made},
		{Name: "max_ipc_namespaces", Value: made},
		{Name: "max_uts_namespaces", Value: made},
		{Name: "max_cgroup_namespaces", Value: 0},
	}
}

// freshNamespaces bounds each kind of namespace a reusable sandbox holds.
const freshNamespaces = 64

// limitCounters sets the user-namespace half for a parked sandbox whose
// entry is process pid. Without a user namespace of their own, sandboxes'
// counters are those of their host user, and there is nothing to set; a
// reusable sandbox's entry sets them itself before its first run
// (entryEnv).
func (s *Sandbox) limitCounters(ctx context.Context, pid int) error {
	if !s.engine.userns || s.fresh {
		return nil
	}
	return entry.SetUsernsLimits(ctx, pid, usernsLimits(false))
}

// CounterWarnings says which of the host's per-user limits (and its
// pseudo-terminals) n sandboxes running at once could take more than half of, at their full budgets (a
// daemon logs them at start: the host's limits are the operator's to raise).
func CounterWarnings(n int) []string {
	var warn []string
	check := func(name string, host uint64, budget int) {
		if host > 0 && uint64(n)*uint64(budget) > host/2 {
			warn = append(warn, fmt.Sprintf("%d sandboxes at once may hold %d of host root's %d %s: raise the host's limit or lower concurrency",
				n, uint64(n)*uint64(budget), host, name))
		}
	}
	for _, r := range []struct {
		name     string
		resource int
		budget   int
	}{{"queued signals (RLIMIT_SIGPENDING)", unix.RLIMIT_SIGPENDING, SigPendingBudget},
		{"message-queue bytes (RLIMIT_MSGQUEUE)", unix.RLIMIT_MSGQUEUE, MsgQueueBudget}} {
		var lim unix.Rlimit
		if unix.Getrlimit(r.resource, &lim) == nil {
			check(r.name, lim.Cur, r.budget)
		}
	}
	for _, f := range []struct {
		file   string
		budget int
	}{{"max_user_instances", InotifyInstancesBudget}, {"max_user_watches", InotifyWatchesBudget}} {
		b, err := os.ReadFile("/proc/sys/fs/inotify/" + f.file)
		if v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && perr == nil {
			check("inotify "+f.file, v, f.budget)
		}
	}
	// Every devpts instance but the host's shares kernel.pty.max beyond
	// kernel.pty.reserve; a sandbox takes at most rootfs.PtyMax of them.
	if ptyMax, ok := readUint("/proc/sys/kernel/pty/max"); ok {
		if reserve, ok := readUint("/proc/sys/kernel/pty/reserve"); ok && ptyMax > reserve {
			check("pseudo-terminals (kernel.pty.max beyond kernel.pty.reserve)", ptyMax-reserve, rootfs.PtyMax)
		}
	}
	return warn
}

func readUint(file string) (uint64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}
