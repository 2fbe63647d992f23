package entry

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/seccomp"
)

// Exit codes of the entry itself when it could not run the program.
const (
	exitNoLaunch    = 125 // the host went away before sending a program
	exitNotRunnable = 127
)

// Main runs the entry. It never returns. It is pid 1 of the sandbox's PID
// namespace: it starts the program as a child rather than becoming it, so
// that the program gets ordinary signal semantics (pid 1 ignores signals it
// has no handler for) and orphans have a reaper.
func Main() {
	// Non-dumpable: the program, which runs under the same uid, can then
	// neither ptrace the entry nor open its /proc/1/{mem,fd,exe}.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// Catch (not ignore: ignored dispositions survive execve) the signals
	// the program could send to pid 1, so they can't end the entry early.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE, unix.SIGALRM, unix.SIGVTALRM, unix.SIGPROF)
	go func() {
		for range sigs {
		}
	}()

	unix.CloseOnExec(ControlFD)
	ctl := os.NewFile(ControlFD, "control")
	if err := writeMsg(ctl, msgReady, nil); err != nil {
		os.Exit(exitNoLaunch)
	}
	t, payload, err := readMsg(bufio.NewReader(ctl))
	if err != nil || t != msgLaunch {
		os.Exit(exitNoLaunch)
	}
	fail := func(err error) {
		_ = writeMsg(ctl, msgFailed, []byte(err.Error()))
		os.Exit(exitNotRunnable)
	}
	l, err := UnmarshalLaunch(payload)
	if err != nil {
		fail(err)
	}
	for _, r := range l.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			fail(errors.New("setting resource limit: " + err.Error()))
		}
	}
	path, err := lookPath(l.Args[0], l.Env, l.Dir)
	if err != nil {
		fail(err)
	}
	if err := seccomp.Install(l.Filter); err != nil {
		fail(err)
	}
	pid, err := syscall.ForkExec(path, l.Args, &syscall.ProcAttr{
		Dir:   l.Dir,
		Env:   l.Env,
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fail(errors.New(l.Args[0] + ": " + describeExecError(err)))
	}
	var pidBuf [4]byte
	binary.BigEndian.PutUint32(pidBuf[:], uint32(pid))
	_ = writeMsg(ctl, msgStarted, pidBuf[:])
	os.Exit(reap(ctl, pid))
}

// reap waits for the program, collecting orphans meanwhile, reports its
// wait status and returns the exit code the entry ends with. Once the entry
// exits, the kernel kills whatever else is left in the PID namespace.
func reap(ctl *os.File, pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return exitNotRunnable
		}
		if got != pid {
			continue
		}
		var buf [4]byte
		binary.BigEndian.PutUint32(buf[:], uint32(ws))
		_ = writeMsg(ctl, msgExited, buf[:])
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

func describeExecError(err error) string {
	switch {
	case errors.Is(err, unix.ENOENT):
		return "no such file in the sandbox"
	case errors.Is(err, unix.EACCES):
		return "permission denied (not executable, or on a noexec mount)"
	case errors.Is(err, unix.ENOEXEC):
		return "not an executable format"
	}
	return err.Error()
}

// lookPath resolves a command name against PATH from the program's own
// environment, inside the sandbox's filesystem.
func lookPath(name string, env []string, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", errors.New(name + ": " + describeExecError(err))
		}
		return name, nil
	}
	pathEnv := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", errors.New(name + ": command not found in the sandbox's PATH")
}

func executable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EACCES
	}
	return unix.Access(p, unix.X_OK)
}
