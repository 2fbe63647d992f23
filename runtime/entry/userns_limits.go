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

// UserLimit is one file of /proc/sys/user and its value.
type UserLimit struct {
	Name  string
	Value int64
}

// SetUsernsLimits writes limits into the user namespace of process pid, from
// a short-lived copy of this binary (the sealed one, through /proc/self/exe)
// that joins the namespace before the Go runtime starts.
func SetUsernsLimits(ctx context.Context, pid int, limits []UserLimit) error {
	args := []string{UsernsLimitsArg, strconv.Itoa(pid)}
	for _, l := range limits {
		args = append(args, l.Name+"="+strconv.FormatInt(l.Value, 10))
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe", args...)
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("setting the sandbox's per-user kernel limits: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
