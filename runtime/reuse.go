package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime/entry"
)

// A reusable sandbox serves many runs, one at a time, of any owner. What
// libcontainer built stays: the user namespace and its id slot, the cgroup,
// the read-only root with its masks, the entry. What a run could change is
// made anew for each run, so that no run sees anything of an earlier one:
//   - namespaces: the entry clones each run's PID 1 in new mount, PID, IPC,
//     UTS and network namespaces (runtime/entry/fresh.c), which die with
//     the run's last process;
//   - /work and /tmp: new tmpfs mounts for each run (freshScratch), moved
//     into the run's mount namespace; /dev/shm and /dev/pts: new instances;
//   - /proc: the run's own, with the sandbox's masks applied again;
//   - stdin, stdout, stderr: pipes of the run's own (freshPipes);
//   - the cgroup: limits applied and accounting restarted by every run
//     (applyRunLimits), and the sandbox is reused only if, after the run,
//     its cgroup holds the entry alone (Recycle).
// A sandbox is not reused (Recycle says no, and it is destroyed) after a
// run that shared its network namespace (the egress proxy listens there),
// that did not end within endGrace of being told to, whose program could
// not start, or once it has served maxRuns runs.

// maxRuns bounds the runs of one sandbox: what the kernel keeps per
// namespace that no run can reach (the entry's own counters) is then
// renewed now and then anyway.
const maxRuns = 1000

// endGrace is how long a run's PID 1 may take to end, and the entry to
// park again, once told to.
const endGrace = 2 * time.Second

// reuseState is what a reusable sandbox keeps between runs.
type reuseState struct {
	hostUID, hostGID int
	runs             int
	// built is the sandbox's own scratch, under every run's; run is the
	// current run's, until Recycle removes it.
	built, run *rootfs.Scratch
	// spent: no further run (see the package comment above).
	spent bool
}

// runScratchDir is where a reusable sandbox's current run has its /work
// and /tmp on the host.
func (s *Sandbox) runScratchDir() string {
	return filepath.Join(s.engine.runDir, "scratch", s.id+".run")
}

// freshScratch gives the run new /work and /tmp of its own sizes, and
// makes them the sandbox's scratch until the run is collected. A session's
// run gets the session's: what persists from exec to exec.
func (s *Sandbox) freshScratch(l Limits) error {
	if s.borrowed {
		s.reuse.runs++
		return nil
	}
	if s.reuse.run != nil {
		return errors.New("runtime: the previous run's scratch is still in place")
	}
	sc, err := rootfs.NewScratch(s.runScratchDir(), s.reuse.hostUID, s.reuse.hostGID, scratchSizes(l))
	if err != nil {
		return err
	}
	s.reuse.run, s.scratch = sc, sc
	s.reuse.runs++
	return nil
}

// removeScratch removes the run's scratch and the sandbox's own.
func (r *reuseState) removeScratch(current *rootfs.Scratch) error {
	var errs []error
	if r.run != nil && r.run != current {
		errs = append(errs, r.run.Remove())
	}
	if r.built != nil && r.built != current {
		errs = append(errs, r.built.Remove())
	}
	return errors.Join(errs...)
}

// runPipes are a run's own stdin, stdout and stderr: the host's ends and
// the program's. A stream passed as a file (Request.StdinFile,
// StdoutFile) has no host end, and its program end is the caller's, which
// closeChild leaves open.
type runPipes struct {
	stdin, stdout, stderr *os.File // the host's: write, read, read (nil when passed)
	child                 [3]*os.File
	passed                [3]bool
}

func newRunPipes(stdinFile, stdoutFile *os.File) (*runPipes, error) {
	p := &runPipes{}
	given := [3]*os.File{stdinFile, stdoutFile, nil}
	var host [3]*os.File
	for i := range 3 {
		if given[i] != nil {
			p.child[i], p.passed[i] = given[i], true
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			p.close()
			closeFiles(host[:i]...)
			return nil, err
		}
		if i == 0 {
			host[i], p.child[i] = w, r
		} else {
			host[i], p.child[i] = r, w
		}
	}
	p.stdin, p.stdout, p.stderr = host[0], host[1], host[2]
	return p, nil
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// closeChild closes the program's ends in the host, once the entry has
// its own copies: the host then reads EOF when the run's last process is
// gone. Passed files are the caller's to close.
func (p *runPipes) closeChild() {
	for i, f := range p.child {
		if !p.passed[i] {
			closeFiles(f)
		}
	}
}

// close closes both ends, for a run that never started.
func (p *runPipes) close() {
	closeFiles(p.stdin, p.stdout, p.stderr)
	p.closeChild()
}

// freshLaunch builds what a run in fresh namespaces needs beyond its launch:
// its pipes and its /work and /tmp as detached mounts.
func (s *Sandbox) freshLaunch(p *runPipes, shareNet bool) (*entry.Fresh, func(), error) {
	work, err := detachedMount(s.scratch.WorkDir())
	if err != nil {
		return nil, nil, err
	}
	tmp, err := detachedMount(s.scratch.TmpDir())
	if err != nil {
		work.Close()
		return nil, nil, err
	}
	f := s.engine.freshMounts // a copy: the run's own descriptors go in it
	f.ShareNetwork = shareNet
	f.Stdin, f.Stdout, f.Stderr, f.Work, f.Tmp = p.child[0], p.child[1], p.child[2], work, tmp
	return &f, func() { work.Close(); tmp.Close() }, nil
}

// freshMounts is the part of every fresh run's launch that never changes.
func freshMounts() entry.Fresh {
	return entry.Fresh{
		Masked: procPaths(rootfs.MaskedPaths()), Readonly: procPaths(rootfs.ReadonlyPaths()),
		ShmOptions: rootfs.ShmOptions(), PtsOptions: rootfs.PtsOptions(),
	}
}

// procPaths keeps the paths under /proc: the run mounts its own /proc,
// while the sandbox's /sys, with its masks, is the run's too.
func procPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasPrefix(p, "/proc/") {
			out = append(out, p)
		}
	}
	return out
}

// detachedMount clones the mount at dir into a mount of no namespace
// (open_tree), which the run's PID 1 moves into its own.
func detachedMount(dir string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("runtime: open_tree %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// endFresh ends a fresh run: the entry's run PID 1 is told to exit (which
// kills every process of the run), and the entry must park again within
// endGrace; if it does not, the whole sandbox is killed and spent.
func (s *Sandbox) endFresh(x *execution, w *watched) {
	// Sent even when the program has ended: its PID 1 may still run, and
	// a parked entry skips it.
	_ = s.host.End()
	if !w.gotExit {
		select {
		case w.exit = <-x.exited:
			w.gotExit = w.exit.err == nil
		case <-time.After(endGrace):
			s.reuse.spent = true
			s.killAll()
			<-x.exited
			return
		}
	}
	parked := make(chan error, 1)
	go func() { parked <- s.host.WaitReady() }()
	select {
	case err := <-parked:
		if err != nil {
			s.reuse.spent = true
		}
	case <-time.After(endGrace):
		s.reuse.spent = true
		s.killAll()
		<-parked
	}
}

// RunID names the sandbox's current (or last) run: the sandbox's id, and
// for a reusable sandbox "-" and the run's number in it, so that each run
// has a name of its own in logs, the audit log and answers.
func (s *Sandbox) RunID() string {
	if !s.fresh {
		return s.id
	}
	return fmt.Sprintf("%s-%d", s.id, s.reuse.runs)
}

// Recycle makes a used sandbox ready for another run, of any owner, and
// reports whether it is; a sandbox it refuses must be destroyed. Call it
// after the run's files were collected, never during a run.
func (s *Sandbox) Recycle() bool {
	if !s.fresh || s.reuse.spent || s.reuse.runs >= maxRuns || !s.used.Load() {
		return false
	}
	// The entry alone: every process of the run is gone.
	if tasks, err := s.cg.Tasks(); err != nil || tasks != 1 {
		return false
	}
	if s.borrowed {
		// A session's sandbox: its /work and /tmp are the session's, and
		// its next run is the same owner's.
		s.used.Store(false)
		return true
	}
	if s.reuse.run == nil || s.reuse.run.Remove() != nil {
		return false
	}
	s.reuse.run, s.scratch = nil, s.reuse.built
	s.used.Store(false)
	return true
}
