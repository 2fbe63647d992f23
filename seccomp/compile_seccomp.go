//go:build linux && cgo && seccomp

package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Compile turns a runtime-spec filter into the classic-BPF program that
// seccomp(2) takes, using libseccomp. It is the expensive step (milliseconds
// of CPU), which is why callers go through a Compiler that does it once.
func Compile(p *specs.LinuxSeccomp) ([]byte, error) {
	if p == nil {
		return nil, errors.New("seccomp: nil profile")
	}
	defAct, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter: %w", err)
	}
	defer f.Release()
	// A call made through a foreign ABI fails like any call not allowed,
	// instead of killing the thread (libseccomp's default).
	if err := f.SetBadArchAction(defAct); err != nil {
		return nil, fmt.Errorf("seccomp: bad-arch action: %w", err)
	}
	// A binary tree of the syscall numbers instead of one long list: the
	// kernel checks and JIT-compiles it at every load, once per run of a
	// reusable sandbox, and it loaded in 0.12 ms instead of 0.39 ms here
	// (466 instructions instead of 391; docs/benchmarks.md). A call is
	// decided in a few comparisons wherever it is in the list.
	if err := f.SetOptimize(2); err != nil {
		return nil, fmt.Errorf("seccomp: optimize: %w", err)
	}
	// no_new_privs is set by the sandbox itself; the exported program must
	// not depend on libseccomp doing it.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: nnp bit: %w", err)
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native arch: %w", err)
	}
	for _, a := range p.Architectures {
		arch, err := libseccomp.GetArchFromString(archName(a))
		if err != nil {
			return nil, fmt.Errorf("seccomp: arch %s: %w", a, err)
		}
		if arch == native {
			continue // NewFilter already holds the native architecture.
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("seccomp: add arch %s: %w", a, err)
		}
	}
	for _, rule := range p.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, err
		}
		for _, name := range rule.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown to this libseccomp: it falls to the default action
			}
			if err := addRule(f, call, act, rule.Args); err != nil {
				return nil, fmt.Errorf("seccomp: rule for %s: %w", name, err)
			}
		}
	}
	return exportBPF(f)
}

// exportBPF goes through a memfd because ExportBPFMem needs libseccomp
// 2.6, and Debian 12 ships 2.5.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("sandboxd-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: memfd: %w", err)
	}
	file := os.NewFile(uintptr(fd), "sandboxd-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	prog, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	return prog, validate(prog)
}

// addRule follows the runtime-spec meaning of Args: conditions on distinct
// arguments must all hold, while several conditions on the same argument
// are alternatives (libseccomp rejects them inside one rule).
func addRule(f *libseccomp.ScmpFilter, call libseccomp.ScmpSyscall, act libseccomp.ScmpAction, args []specs.LinuxSeccompArg) error {
	if len(args) == 0 {
		return f.AddRule(call, act)
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	seen := map[uint]bool{}
	repeated := false
	for _, a := range args {
		op, err := operator(a.Op)
		if err != nil {
			return err
		}
		vals := []uint64{a.Value}
		if a.Op == specs.OpMaskedEqual {
			vals = append(vals, a.ValueTwo)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, vals...)
		if err != nil {
			return err
		}
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		conds = append(conds, c)
	}
	if !repeated {
		return f.AddRuleConditional(call, act, conds)
	}
	for _, c := range conds {
		if err := f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActErrno:
		ret := int16(1) // EPERM
		if errnoRet != nil {
			ret = int16(*errnoRet)
		}
		return libseccomp.ActErrno.SetReturnCode(ret), nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	default:
		return libseccomp.ActInvalid, fmt.Errorf("seccomp: unsupported action %q", a)
	}
}

func operator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	default:
		return libseccomp.CompareInvalid, fmt.Errorf("seccomp: unsupported operator %q", op)
	}
}

// archName maps "SCMP_ARCH_X86_64" to libseccomp's "x86_64".
func archName(a specs.Arch) string {
	names := map[specs.Arch]string{
		specs.ArchX86_64: "amd64", specs.ArchX86: "x86", specs.ArchX32: "x32",
		specs.ArchAARCH64: "arm64", specs.ArchARM: "arm", specs.ArchPPC64LE: "ppc64le",
		specs.ArchS390X: "s390x", specs.ArchRISCV64: "riscv64",
	}
	if n, ok := names[a]; ok {
		return n
	}
	return string(a)
}

// LibraryVersion identifies the libseccomp that compiled a program, so that
// a cached program is rebuilt when the library changes.
func LibraryVersion() string {
	maj, min, mic := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("libseccomp-%d.%d.%d", maj, min, mic)
}
