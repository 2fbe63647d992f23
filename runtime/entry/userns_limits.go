package entry

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// UsernsLimitsArg is the argv[1] that makes sandboxd write the per-user
// limits of a sandbox's user namespace (userns_limits.c).
const UsernsLimitsArg = "sandbox-userns-limits"

// UsernsLimitsEnv carries a reusable sandbox's limits to its entry, which
// writes them itself (userns_limits.h).
const UsernsLimitsEnv = "SANDBOXD_USERNS_LIMITS"

// UserLimit is one file of /proc/sys/user and its value.
type UserLimit struct {
	Name  string
	Value int64
}

// pair is the limit as NAME=VALUE, the form both ways in take
// (userns_limits.c, write_limit).
func (l UserLimit) pair() string { return l.Name + "=" + strconv.FormatInt(l.Value, 10) }

// FormatUserLimits is limits as UsernsLimitsEnv's value: NAME=VALUE pairs
// joined by commas.
func FormatUserLimits(limits []UserLimit) string {
	pairs := make([]string, len(limits))
	for i, l := range limits {
		pairs[i] = l.pair()
	}
	return strings.Join(pairs, ",")
}

// SetUsernsLimits writes limits into the user namespace of process pid, from
// a short-lived copy of this binary (the sealed one, through /proc/self/exe)
// that joins the namespace before the Go runtime starts.
func SetUsernsLimits(ctx context.Context, pid int, limits []UserLimit) error {
	args := []string{UsernsLimitsArg, strconv.Itoa(pid)}
	for _, l := range limits {
		args = append(args, l.pair())
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe", args...)
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("setting the sandbox's per-user kernel limits: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
