// Package preflight checks, when the daemon starts, that the process has
// every privilege building sandboxes needs, so that a container run with
// too few fails at once with one line naming what is missing (and how to
// give it), never deep inside the first request. docs/deploy.md explains
// each privilege.
package preflight

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrMissing is the class of every error Check returns.
var ErrMissing = errors.New("missing privilege")

// Options says what the daemon will do.
type Options struct {
	// UserNS: sandboxes get user namespaces of their own (not no_userns).
	UserNS bool
	// ProbeDir is a directory where a tmpfs may be mounted for a moment
	// (the run dir).
	ProbeDir string
}

// Check reads the process's capabilities and mounts, tries the system
// calls an outer seccomp or AppArmor profile may deny, and returns the
// first thing missing as one line (wrapping ErrMissing), or nil.
func Check(o Options) error {
	sys, err := readSystem()
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	return check(o, sys, realProbes{dir: o.ProbeDir})
}

// system is what Check reads from /proc.
type system struct {
	capEff   uint64
	mounts   []mount
	lsmLabel string // the AppArmor (or other LSM) label, "" if none
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point, fstype string
	readOnly      bool
}

// probes are the system calls tried for real (fakes in tests).
type probes interface {
	mountTmpfs() error
	keyctl() error
	pivotRoot() error
}

func check(o Options, sys system, p probes) error {
	for _, c := range []func() error{
		func() error { return checkCaps(o, sys.capEff) },
		func() error { return checkSyscalls(p, sys.lsmLabel) },
		func() error { return checkCgroups(sys.mounts) },
		func() error { return checkProcMasks(o, sys.mounts) },
	} {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

func missing(format string, args ...any) error {
	return fmt.Errorf("%w: "+format+" (docs/deploy.md)", append([]any{ErrMissing}, args...)...)
}

// capability is one the daemon needs, and why.
type capability struct {
	bit      uint
	name     string
	why      string
	onlyUser bool // needed only with user namespaces
}

// needed are the capabilities of the smallest set docs/deploy.md gives,
// found by removing each from a working container in turn.
var needed = []capability{
	{unix.CAP_SYS_ADMIN, "SYS_ADMIN", "mounts, namespaces and pivot_root of every sandbox", false},
	{unix.CAP_SETUID, "SETUID", "the user-namespace id maps and the program's uid", false},
	{unix.CAP_SETGID, "SETGID", "the user-namespace id maps and the program's gid", false},
	{unix.CAP_CHOWN, "CHOWN", "handing each sandbox's state to its user namespace", false},
	{unix.CAP_DAC_OVERRIDE, "DAC_OVERRIDE", "reaching files the sandboxes' ids own, to clean them up", false},
	{unix.CAP_FOWNER, "FOWNER", "the files API's modes and times on files a session's ids own", false},
	{unix.CAP_SYS_CHROOT, "SYS_CHROOT", "entering each sandbox's root", false},
	{unix.CAP_NET_ADMIN, "NET_ADMIN", "bringing loopback up in a session's network namespace", false},
	{unix.CAP_SYS_PTRACE, "SYS_PTRACE", "opening the mount namespace of a sandbox in a user namespace of its own", true},
}

func checkCaps(o Options, eff uint64) error {
	for _, c := range needed {
		if c.onlyUser && !o.UserNS {
			continue
		}
		if eff&(1<<c.bit) == 0 {
			return missing("capability CAP_%s is not in the effective set (needed for %s): docker run --cap-add %s, or add it to the pod's securityContext.capabilities", c.name, c.why, c.name)
		}
	}
	return nil
}

// checkSyscalls tries what moby's default seccomp profile and Docker's
// AppArmor profile deny. Capabilities are checked first, so EPERM here is
// a filter's answer.
func checkSyscalls(p probes, label string) error {
	if err := p.mountTmpfs(); err != nil {
		switch {
		case errors.Is(err, unix.EACCES) && label != "":
			return missing("mount is denied by the LSM profile %q: run with --security-opt apparmor=unconfined (pod: appArmorProfile type Unconfined) or a profile that allows mount", label)
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOSYS):
			return missing("mount is denied by the container's seccomp profile: run with --security-opt seccomp=deploy/docker/seccomp.json")
		default:
			return fmt.Errorf("preflight: mounting a tmpfs: %w", err)
		}
	}
	for _, s := range []struct {
		name string
		try  func() error
	}{{"keyctl", p.keyctl}, {"pivot_root", p.pivotRoot}} {
		if err := s.try(); errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			return missing("%s is denied by the container's seccomp profile (libcontainer calls it for every sandbox): run with --security-opt seccomp=deploy/docker/seccomp.json", s.name)
		}
	}
	return nil
}

// checkCgroups: sandboxd creates a cgroup per sandbox below its own, so
// every cgroup hierarchy must be mounted and writable.
func checkCgroups(mounts []mount) error {
	found := false
	for _, m := range mounts {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		found = true
		if m.readOnly {
			return missing("cgroup not delegated: %s is mounted read-only; run with --cgroupns=private and CAP_SYS_ADMIN (sandboxd's image remounts its own cgroups read-write), or mount /sys/fs/cgroup read-write", m.point)
		}
	}
	if !found {
		return missing("no cgroup filesystem is mounted: mount /sys/fs/cgroup (docker run --cgroupns=private mounts the container's own)")
	}
	return nil
}

// unmasked are mounts below /proc and /sys that hosts have and that do
// not hide anything (the kernel makes them on empty directories).
var unmasked = []string{"/proc/sys/fs/binfmt_misc", "/sys/fs/", "/sys/kernel/"}

// checkProcMasks: a sandbox in a user namespace mounts its own /proc and
// /sys, which the kernel refuses while files of the daemon's /proc or
// /sys are covered by other mounts (Docker's and Kubernetes' masked and
// read-only paths). Sandboxes mask those paths again in their own /proc.
func checkProcMasks(o Options, mounts []mount) error {
	if !o.UserNS {
		return nil
	}
	for _, m := range mounts {
		if !strings.HasPrefix(m.point, "/proc/") && !strings.HasPrefix(m.point, "/sys/") {
			continue
		}
		hidden := true
		for _, u := range unmasked {
			if m.point == u || (strings.HasSuffix(u, "/") && strings.HasPrefix(m.point, u)) {
				hidden = false
			}
		}
		if hidden {
			return missing("%s is masked by a mount, so sandboxes in user namespaces cannot mount their own /proc and /sys: run with --security-opt systempaths=unconfined (pod: securityContext.procMount: Unmasked), or set no_userns = true", m.point)
		}
	}
	return nil
}

func readSystem() (system, error) {
	var sys system
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return sys, err
	}
	if sys.capEff, err = parseCapEff(string(status)); err != nil {
		return sys, err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return sys, err
	}
	sys.mounts = parseMountinfo(string(info))
	if label, err := os.ReadFile("/proc/self/attr/current"); err == nil {
		sys.lsmLabel = strings.TrimSpace(strings.TrimSuffix(string(label), "\x00"))
		if sys.lsmLabel == "unconfined" {
			sys.lsmLabel = ""
		}
	}
	return sys, nil
}

func parseCapEff(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// parseMountinfo keeps each mount's point, type and per-mount read-only
// flag (proc(5): fields 5 and 6, and the type after the " - ").
func parseMountinfo(info string) []mount {
	var out []mount
	for _, line := range strings.Split(info, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 1 {
			continue
		}
		ro := false
		for _, opt := range strings.Split(f[5], ",") {
			ro = ro || opt == "ro"
		}
		out = append(out, mount{point: unescape(f[4]), fstype: g[0], readOnly: ro})
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
