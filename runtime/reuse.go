package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
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
//   - /work and /tmp: new tmpfs mounts for each run (prepare), moved into
//     the run's mount namespace; /dev/shm and /dev/pts: new instances;
//   - /proc: the run's own, with the sandbox's masks applied again;
//   - stdin, stdout, stderr: pipes of the run's own (newRunPipes);
//   - the cgroup: limits applied and accounting restarted by every run
//     (applyRunLimits), and the sandbox is reused only if, after the run,
//     its cgroup holds the entry alone (Recycle).
// A sandbox is not reused (Recycle says no, and it is destroyed) after a
// run that shared its network namespace (the egress proxy listens there),
// that did not end within endGrace of being told to, whose program could
// not start, or once it has served maxRuns runs.
//
// Each run is prepared before it is asked for: once the sandbox is built,
// and again as soon as Recycle has taken the last run back, the host makes
// the next run's /work and /tmp and the entry clones its PID 1, which
// builds the run's namespaces and mounts, drops every capability and loads
// the filter, then waits (entry.c, start_fresh). A request then pays only
// for its own files, its limits and the start of its program (readyRun).
// The prepared PID 1 holds nothing of any run: until its launch it has no
// pipes, runs no code of a user's, and has an empty /work and /tmp of its
// own; a request that needs another network ends it and prepares anew.
//
// A run's network namespace is new, unless the last run that got a new one
// was the same owner's (Request.Owner): then the entry gives it that one
// again (entry.NetKeep), and the creation and teardown of a namespace,
// about 0.8 ms of CPU here, are paid once for a judge's tests of one
// submission, or a client's runs, instead of once a run. Nothing of the
// network a run can change outlives it but what the kernel keeps per
// namespace (loopback's counters, connections still closing): a run of
// another owner never sees it, as it always gets a new one (netFor), and
// the entry gives a new one to the same owner too when the kept one still
// holds a TCP socket (a connection closing in TIME_WAIT would keep its
// port from the next run's bind for a minute; fresh.c, net_is_quiet).

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
	// current (or prepared) run's, until Recycle removes it.
	built, run *rootfs.Scratch
	// sizes are those of run's scratch: the next run is prepared with
	// the last one's, which the same client mostly asks again.
	sizes rootfs.ScratchSizes
	// prepared: the entry was asked to prepare the next run (prepare);
	// preparedNet is that run's network namespace.
	prepared    bool
	preparedNet entry.NetMode
	// netOwner owns the network namespace the entry keeps (the last run
	// that got a new one); "" when none or no known owner's.
	netOwner string
	// spent: no further run (see the package comment above).
	spent bool
	// parkPending: the last run's result went out before its PID 1 was
	// gone (endFresh); the entry has yet to park again.
	parkPending bool
}

// preparedTasks are what a parked reusable sandbox holds in its cgroup:
// its entry and the next run's prepared PID 1.
const preparedTasks = 2

// prepare asks the entry to prepare the next run: with new /work and /tmp
// of the last run's sizes, which become the sandbox's scratch until the
// run is collected; a session's run keeps the session's, what persists
// from exec to exec. readyRun waits for the entry's answer.
func (s *Sandbox) prepare(net entry.NetMode) error {
	var work, tmp *os.File
	if !s.borrowed {
		if s.reuse.run != nil {
			return errors.New("runtime: the previous run's scratch is still in place")
		}
		// Detached mounts: nothing to mount or unmount on the host, and
		// the daemon keeps them (files in, collect) through descriptors.
		sc, err := rootfs.NewDetachedScratch(s.reuse.hostUID, s.reuse.hostGID, s.reuse.sizes)
		if err != nil {
			return err
		}
		s.reuse.run, s.scratch = sc, sc
		work, tmp = sc.Mounts()
	}
	if err := s.host.Prepare(s.engine.prepares[net], work, tmp); err != nil {
		return err
	}
	if net == entry.NetNew {
		s.reuse.netOwner = "" // the entry keeps the new one, nobody's yet
	}
	s.reuse.prepared, s.reuse.preparedNet = true, net
	return nil
}

// netFor is the network namespace the request's run gets.
func (s *Sandbox) netFor(req Request) entry.NetMode {
	switch {
	case req.ShareNetwork || s.borrowed:
		// A session's runs share its network namespace by design: the
		// sandbox was built in it, and every run is its owner's.
		return entry.NetShare
	case req.Owner != "" && req.Owner == s.reuse.netOwner:
		return entry.NetKeep
	}
	return entry.NetNew
}

// nextNet is the network namespace the next run is prepared with, before
// its owner is known: the kept one if any, on the bet that the next run is
// the same owner's (if not, readyRun prepares another).
func (s *Sandbox) nextNet() entry.NetMode {
	switch {
	case s.borrowed:
		return entry.NetShare
	case s.reuse.netOwner != "":
		return entry.NetKeep
	}
	return entry.NetNew
}

// unprepare ends a prepared run that the request cannot use, and takes its
// scratch back.
func (s *Sandbox) unprepare() error {
	s.reuse.prepared = false
	// Its PID 1 says it is ready first; only then does it read the 'E'.
	if err := s.waitPrepared(); err != nil {
		return err
	}
	if err := s.host.End(); err != nil {
		return err
	}
	if err := s.waitParked(); err != nil {
		return err
	}
	return s.dropRunScratch()
}

// dropRunScratch closes the last run's scratch (whose mounts end with the
// run's mount namespace and these descriptors): the sandbox's own is its
// scratch again.
func (s *Sandbox) dropRunScratch() error {
	if s.borrowed || s.reuse.run == nil {
		return nil
	}
	if err := s.reuse.run.Remove(); err != nil {
		return err
	}
	s.reuse.run, s.scratch = nil, s.reuse.built
	return nil
}

// readyRun gives the request a prepared run: the one waiting if it fits
// (else a new one), with its scratch resized to the request's sizes. Any
// failure leaves the sandbox spent.
func (s *Sandbox) readyRun(req Request) error {
	net := s.netFor(req)
	if err := s.takePrepared(net); err != nil {
		s.reuse.spent = true
		return err
	}
	if s.reuse.preparedNet == entry.NetNew {
		s.reuse.netOwner = req.Owner
	}
	s.reuse.runs++
	// The egress proxy listens in the sandbox's network: no other run
	// may share it after this one.
	s.reuse.spent = s.reuse.spent || req.ShareNetwork
	if want := scratchSizes(req.Limits); !s.borrowed && want != s.reuse.sizes {
		if err := s.scratch.Resize(want); err != nil {
			s.reuse.spent = true
			return err
		}
		s.reuse.sizes = want
	}
	return nil
}

// takePrepared waits until a run with a network namespace fit for net is
// prepared: a new one serves any run but a shared one's.
func (s *Sandbox) takePrepared(net entry.NetMode) error {
	fits := s.reuse.preparedNet == net || (s.reuse.preparedNet == entry.NetNew && net == entry.NetKeep)
	if s.reuse.prepared && !fits {
		if err := s.unprepare(); err != nil {
			return err
		}
	}
	if !s.reuse.prepared {
		if err := s.prepare(net); err != nil {
			return err
		}
	}
	s.reuse.prepared = false
	return s.waitPrepared()
}

// waitPrepared waits for the entry's answer to prepare, within endGrace;
// without one, the whole sandbox is killed.
func (s *Sandbox) waitPrepared() error {
	if err := s.withinGrace(s.host.WaitPrepared, "prepare the run"); err != nil {
		// Not the request's fault, whatever the entry said.
		return fmt.Errorf("runtime: preparing the run: %v: %w", err, errdefs.ErrInternal)
	}
	return nil
}

// withinGrace waits for the entry's answer that wait reads, for endGrace
// at most; past that, the whole sandbox is killed (which ends the wait).
func (s *Sandbox) withinGrace(wait func() error, what string) error {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(endGrace):
		s.killAll()
		<-done
		return fmt.Errorf("runtime: the sandbox did not %s within %v", what, endGrace)
	}
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

// prepareMessages encodes a run's prepare for each network mode: all the
// rest is the same for every run of every sandbox.
func prepareMessages(filter []byte) [entry.NetModes][]byte {
	var msgs [entry.NetModes][]byte
	for net := range entry.NetModes {
		p := entry.Prepare{
			Masked: procPaths(rootfs.MaskedPaths()), Readonly: procPaths(rootfs.ReadonlyPaths()),
			ShmOptions: rootfs.ShmOptions(), PtsOptions: rootfs.PtsOptions(), Net: net, Filter: filter,
		}
		msgs[net] = p.Marshal()
	}
	return msgs
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

// endFresh ends a fresh run: the entry's run PID 1 is told to exit (which
// kills every process of the run). Its 'X' says that every process of the
// run but itself is gone already and the run's stdio closed (entry.c,
// wait_program): the result need not wait for that PID 1's exit and its
// namespaces' teardown, which Recycle waits for (parkPending). Without an
// 'X', the entry must park again within endGrace; if it does not, the
// whole sandbox is killed and spent.
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
	if w.gotExit {
		s.reuse.parkPending = true
		return
	}
	if s.waitParked() != nil {
		s.reuse.spent = true
	}
}

// waitParked waits until the entry is parked again, within endGrace; if it
// is not, the whole sandbox is killed.
func (s *Sandbox) waitParked() error {
	return s.withinGrace(s.host.WaitReady, "park")
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
	if s.reuse.parkPending {
		if s.waitParked() != nil {
			s.reuse.spent = true
			return false
		}
		s.reuse.parkPending = false
	}
	// The entry alone: every process of the run is gone.
	if tasks, err := s.cg.Tasks(); err != nil || tasks != 1 {
		return false
	}
	// A session's sandbox keeps its /work and /tmp (the session's), and
	// its next run is the same owner's, in the session's network.
	if (!s.borrowed && s.reuse.run == nil) || s.dropRunScratch() != nil {
		return false
	}
	if s.prepare(s.nextNet()) != nil {
		return false
	}
	s.used.Store(false)
	return true
}
