package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Byte-range file locks (fcntl F_SETLK, F_SETLKW, F_OFD_SETLK,
// F_OFD_SETLKW) are kernel memory that no cgroup counts (file_lock_cache is
// not memcg-accounted on current kernels), and nothing bounds how many one
// process holds: every distinct byte range of every open file is one more
// lock, so a sandbox held 800,000 of them (146 MiB) under a 3 MiB memory
// peak. The kernel has no per-user or per-cgroup cap (RLIMIT_LOCKS is not
// enforced), and a filter cannot see the range, which sits in user memory.
//
// So the filter answers these four commands with success and does nothing:
// locks are not kept, as with NFS's nolock or SQLite's unix-none VFS. Of
// the choices, this one breaks least: SQLite, Java's FileChannel.lock and
// Python's fcntl.lockf keep working (refusing with ENOLCK would fail every
// SQLite database in /work), and a sandbox's files are its own, so a lock
// never had anything outside it to exclude. What is lost is mutual
// exclusion through these locks between processes of one sandbox. flock(2)
// still works for that: it takes one lock per open file, bounded by open
// files and pids. F_GETLK and F_OFD_GETLK run and see no byte-range lock.
var fakedLockCmds = []uint64{unix.F_SETLK, unix.F_SETLKW, unix.F_OFD_SETLK, unix.F_OFD_SETLKW}

// allowedFcntlCmds are the other fcntl commands (every one Linux 6.12
// knows); an unknown command fails with EPERM.
var allowedFcntlCmds = []uint64{
	unix.F_DUPFD, unix.F_GETFD, unix.F_SETFD, unix.F_GETFL, unix.F_SETFL, unix.F_GETLK,
	unix.F_SETOWN, unix.F_GETOWN, unix.F_SETSIG, unix.F_GETSIG, unix.F_SETOWN_EX, unix.F_GETOWN_EX,
	17, // F_GETOWNER_UIDS
	unix.F_OFD_GETLK,
	unix.F_SETLEASE, unix.F_GETLEASE, unix.F_NOTIFY,
	1027, 1028, // F_DUPFD_QUERY, F_CREATED_QUERY (Linux 6.10, 6.12)
	1029, // F_CANCELLK
	unix.F_DUPFD_CLOEXEC, unix.F_SETPIPE_SZ, unix.F_GETPIPE_SZ,
	unix.F_ADD_SEALS, unix.F_GET_SEALS,
	1035, 1036, 1037, 1038, // F_GET_RW_HINT, F_SET_RW_HINT, F_GET_FILE_RW_HINT, F_SET_FILE_RW_HINT
}

// cmdIs matches fcntl's command among values. The kernel takes the
// command as a 32-bit int, so only the low 32 bits are compared: a command
// with garbage above them is the same command to the kernel, and must be to
// the filter.
func cmdIs(values []uint64) []specs.LinuxSeccompArg {
	var args []specs.LinuxSeccompArg
	for _, v := range values {
		args = append(args, specs.LinuxSeccompArg{Index: 1, Op: specs.OpMaskedEqual, Value: 0xffffffff, ValueTwo: v})
	}
	return args
}

// fcntlRules replaces moby's unconditional fcntl rule: allowed commands
// run, lock-taking ones succeed without effect (see fakedLockCmds).
func fcntlRules() []specs.LinuxSyscall {
	zero := uint(0)
	return []specs.LinuxSyscall{
		{Names: []string{"fcntl"}, Action: specs.ActAllow, Args: cmdIs(allowedFcntlCmds)},
		{Names: []string{"fcntl"}, Action: specs.ActErrno, ErrnoRet: &zero, Args: cmdIs(fakedLockCmds)},
	}
}

// withoutFcntl drops fcntl from an unconditional allow rule's names.
func withoutFcntl(rule specs.LinuxSyscall) []string {
	if rule.Action != specs.ActAllow || len(rule.Args) != 0 {
		return rule.Names
	}
	return slices.DeleteFunc(slices.Clone(rule.Names), func(n string) bool { return n == "fcntl" })
}
