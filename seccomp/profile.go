// Package seccomp owns the sandbox's system-call filter: which profile it is
// built from, how it is compiled to BPF once per daemon (and cached across
// one-shot runs), and how the sandbox's entry process installs it.
package seccomp

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// alwaysDenied lists the system calls that the sandbox must never reach,
// whatever the upstream profile allows now or in a later version. They are
// removed from every allow rule after the profile is built, so a change in
// moby's profile can only make the filter stricter here. It is unexported
// so that no other package can shorten the list at run time and so widen
// every sandbox's filter; nothing may write to it.
var alwaysDenied = []string{
	"mount", "umount", "umount2", "pivot_root", "chroot",
	"unshare", "setns",
	"ptrace", "process_vm_readv", "process_vm_writev",
	"bpf", "keyctl", "add_key", "request_key",
	"perf_event_open",
	"kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"userfaultfd", "open_by_handle_at", "name_to_handle_at",
	"fsopen", "fsconfig", "fsmount", "fspick", "open_tree", "move_mount",
	"mount_setattr", "quotactl", "quotactl_fd", "lookup_dcookie",
	"acct", "swapon", "swapoff", "reboot", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64",
	"iopl", "ioperm", "create_module", "get_kernel_syms", "query_module",
	"nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old",
	"fanotify_init", "lsm_set_self_attr",
}

// personality values that do not change the execution domain: PER_LINUX (0)
// and the query value 0xffffffff. Every other value is a change and denied.
var harmlessPersonalities = []uint64{0x0, 0xffffffff}

// Profile returns the sandbox's filter in runtime-spec form: moby's default
// profile as it applies to a process with no capabilities, limited to the
// native architecture (32-bit and x32 entry points hit the default action),
// with the default action "fail with EPERM".
func Profile() (*specs.LinuxSeccomp, error) {
	// An empty capability set makes moby leave out every rule that needs a
	// capability (CAP_SYS_ADMIN's namespace clones among them).
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	prof, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		return nil, fmt.Errorf("building moby's default seccomp profile: %w", err)
	}
	if prof == nil || len(prof.Syscalls) == 0 {
		return nil, errors.New("moby's default seccomp profile is empty")
	}
	native, ok := nativeArch[goruntime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("seccomp: unsupported architecture %s", goruntime.GOARCH)
	}
	eperm := uint(1)
	out := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   []specs.Arch{native},
		// An explicit empty list: SECCOMP_FILTER_FLAG_SPEC_ALLOW must not be
		// set for untrusted code (it turns off speculative-store-bypass
		// mitigation), and nil would let a converter pick defaults.
		Flags: []specs.LinuxSeccompFlag{},
	}
	for _, rule := range prof.Syscalls {
		names := slices.DeleteFunc(withoutFcntl(rule), func(n string) bool {
			return slices.Contains(alwaysDenied, n) && rule.Action == specs.ActAllow
		})
		if len(names) == 0 {
			continue
		}
		if slices.Contains(names, "personality") && rule.Action == specs.ActAllow && !onlyHarmlessPersonality(rule) {
			names = slices.DeleteFunc(names, func(n string) bool { return n == "personality" })
			if len(names) == 0 {
				continue
			}
		}
		rule.Names = names
		out.Syscalls = append(out.Syscalls, rule)
	}
	out.Syscalls = append(out.Syscalls, fcntlRules()...)
	return out, nil
}

func onlyHarmlessPersonality(rule specs.LinuxSyscall) bool {
	if len(rule.Args) == 0 {
		return false
	}
	for _, a := range rule.Args {
		if a.Index != 0 || a.Op != specs.OpEqualTo || !slices.Contains(harmlessPersonalities, a.Value) {
			return false
		}
	}
	return true
}

var nativeArch = map[string]specs.Arch{
	"amd64":   specs.ArchX86_64,
	"arm64":   specs.ArchAARCH64,
	"386":     specs.ArchX86,
	"ppc64le": specs.ArchPPC64LE,
	"s390x":   specs.ArchS390X,
	"riscv64": specs.ArchRISCV64,
}
