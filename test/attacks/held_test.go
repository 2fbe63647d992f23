package attacks_test

import (
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
)

// The attacks behind the rows that hardening round 2 (issue 19) found
// held: they are cheap, and they keep those rows true. The programs are
// testdata/attacks/held.c.

func held(args ...string) []string { return append(append([]string{"held"}, args...), "@M@") }

// noCompatSyscall: a syscall through the 32-bit entry point must not run:
// the filter knows only the native architecture, so it is refused, or the
// kernel refuses the entry itself (this machine's answers int $0x80 from
// 64-bit code with SIGSEGV).
func noCompatSyscall(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
	if err != nil {
		return describe(r, err), false
	}
	out := strings.TrimSpace(r.Run.Stdout)
	switch {
	case strings.HasSuffix(out, "=OK"):
		return "THE SYSCALL RAN: " + out, false
	case r.Run.Signal != nil:
		sig := *r.Run.Signal
		return "killed by " + sig, r.Status == runtime.StatusRuntimeError && (sig == "SIGSYS" || sig == "SIGSEGV")
	}
	return out, out == "int80=EPERM" || out == "int80=ENOSYS"
}

// allResident: mincore on an image file says every page is resident,
// whatever the page cache holds. The kernel lies so to a caller that
// cannot write the file, which closes the page-cache side channel between
// sandboxes that share an image.
func allResident(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
	if err != nil {
		return describe(r, err), false
	}
	var n, m int
	if _, serr := fmt.Sscanf(r.Run.Stdout, "resident=%d/%d", &n, &m); serr != nil {
		return clip(r.Run.Stdout + r.Run.Stderr), false
	}
	return strings.TrimSpace(r.Run.Stdout), m > 0 && n == m
}

func heldAttacks() []attack {
	const e, c = "escape", "cross"
	return []attack{
		{class: e, name: "a syscall through the 32-bit entry point (int $0x80)", expected: "refused: EPERM, SIGSYS or SIGSEGV",
			req: api.ExecuteRequest{Cmd: held("int80")}, check: noCompatSyscall},
		{class: e, name: "a syscall through the x32 entry point", expected: "x32=EPERM",
			req: api.ExecuteRequest{Cmd: held("x32")}, check: status(runtime.StatusOK, stdoutIs("x32=EPERM\n"))},
		{class: e, name: "take PID 1's descriptors (pidfd_getfd) and compare them (kcmp)", expected: "pidfd_getfd=EPERM, kcmp=EPERM",
			req:   api.ExecuteRequest{Cmd: sh(`held pidfd_getfd $0; held kcmp $0`)},
			check: status(runtime.StatusOK, stdoutIs("pidfd_open=OK\npidfd_getfd=EPERM\nkcmp=EPERM\n"))},
		{class: e, name: "read PID 1's environ, fds, maps and memory", expected: "EACCES",
			req:   api.ExecuteRequest{Cmd: held("proc1")},
			check: status(runtime.StatusOK, stdoutIs("/proc/1/environ=EACCES\n/proc/1/fd/0=EACCES\n/proc/1/maps=EACCES\n/proc/1/mem=EACCES\n"))},
		{class: c, name: "open another sandbox's POSIX message queue", expected: "mq_open=ENOENT",
			run: pair(api.ExecuteRequest{Cmd: holder(`held mqhold /sbx-cross-q 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: held("mqueue", "/sbx-cross-q")},
				both("mq_open=OK\n", "mq_open=ENOENT\n"))},
		// A sees its own read of the file (open, access, close: 3 events),
		// and nothing of B's reads of the same image file.
		{class: c, name: "watch (inotify) a shared image file that another sandbox reads", expected: "events=3: only A's own",
			run: pair(api.ExecuteRequest{Cmd: holder(`held inotify /etc/passwd $0 & (sleep 1.5; cat /etc/passwd >/dev/null) & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: sh(`cat /etc/passwd /etc/passwd /etc/passwd >/dev/null; echo read`)},
				both("events=3\n", "read\n"))},
		{class: c, name: "page-cache oracle: mincore on a shared image file", expected: "every page reported resident",
			req: api.ExecuteRequest{Cmd: held("mincore", "/bin/busybox")}, check: allResident},
		// The sandbox's devpts instance has max=16 (rootfs.PtyMax): it
		// cannot use up the host's kernel.pty.max; on a terminal, its own
		// pty is one of the 16.
		{class: e, name: "exhaust the host's pseudo-terminals: open /dev/ptmx until it fails", expected: "ptys=16 ENOSPC",
			req: api.ExecuteRequest{Cmd: held("ptys")}, check: status(runtime.StatusOK, stdoutIs("ptys=16 ENOSPC\n"))},
		{class: e, name: "exhaust the host's pseudo-terminals from a terminal run", expected: "ptys=15 ENOSPC",
			req: api.ExecuteRequest{Cmd: held("ptys"), TTY: true}, check: status(runtime.StatusOK, stdoutIs("ptys=15 ENOSPC\r\n"))},
		{class: c, name: "see another sandbox's terminal in /dev/pts", expected: "B sees only its own ptmx; A its own pts 0",
			run: pair(api.ExecuteRequest{Cmd: holder(`:`, `ls /dev/pts | tr '\n' ' '`), TTY: true},
				api.ExecuteRequest{Cmd: sh(`ls /dev/pts | tr '\n' ' '; test -e /dev/pts/0 || echo no-pts-0`)},
				both("0 ptmx ", "ptmx no-pts-0\n"))},
	}
}
