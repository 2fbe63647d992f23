package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime/entry"
)

// BuildOptions are fixed for a sandbox's life.
type BuildOptions struct {
	// Rootfs is the image root, shared read-only by every sandbox of it.
	Rootfs string
	// UID and GID run the program; never 0.
	UID, GID int
	// Limits are applied at build time; a run may change them.
	Limits Limits
	// Workspace, when set, is the /work and /tmp (and the host ids) the
	// sandbox runs over instead of its own: a session's. Its sizes are the
	// workspace's, whatever Limits say, and it outlives the sandbox.
	Workspace *Workspace
}

// Sandbox is one built sandbox whose entry is parked, waiting for the one
// program it will ever run.
type Sandbox struct {
	id        string
	engine    *Engine
	container *libcontainer.Container
	scratch   *rootfs.Scratch
	// borrowed: the scratch is a workspace's; Destroy leaves it.
	borrowed bool
	// ws is the workspace it runs over, if any; held is the room it took
	// in the workspace's pids limit (Workspace.holdPids), given back once
	// its cgroup is gone.
	ws    *Workspace
	held  int64
	root  *rootfs.Root
	cg    *cgroup.Sandbox
	host  *entry.Host
	built Limits

	stdin          *os.File // write end
	stdout, stderr *os.File // read ends
	processDone    chan struct{}
	processState   *os.ProcessState

	ids  *idSlot
	lock *os.File

	used        atomic.Bool
	destroyOnce sync.Once

	// fresh: the sandbox is reusable; its entry runs each program in
	// namespaces of its own (reuse.go).
	fresh bool
	reuse reuseState
	// netns is a reusable sandbox's own network namespace (prepareFirst).
	netns      *os.File
	destroyErr error
}

// ID names the sandbox (its cgroup and state directory carry it too).
func (s *Sandbox) ID() string { return s.id }

func checkRootfs(dir string) (string, error) {
	if dir == "" {
		return "", invalidf("rootfs is not set")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", invalidf("rootfs %q: %v", dir, err)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", invalidf("rootfs %s does not exist", abs)
	case err != nil:
		return "", invalidf("rootfs %s: %v", abs, err)
	case !st.IsDir():
		return "", invalidf("rootfs %s is not a directory", abs)
	}
	return abs, nil
}

// Build creates a sandbox and parks its entry. On error nothing is left.
func (e *Engine) Build(ctx context.Context, opts BuildOptions) (_ *Sandbox, err error) {
	root, err := checkRootfs(opts.Rootfs)
	if err != nil {
		return nil, err
	}
	if opts.UID <= 0 || opts.GID <= 0 {
		return nil, invalidf("the sandbox user must not be root (uid %d, gid %d)", opts.UID, opts.GID)
	}
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	s := &Sandbox{id: newID(), engine: e, built: opts.Limits, processDone: make(chan struct{}),
		fresh: e.reuse && (opts.Workspace == nil || opts.Workspace.layer == nil)}
	// Held from before anything of the sandbox exists until Destroy has
	// removed all of it: a free lock marks a dead owner's leftovers.
	if s.lock, err = newLock(filepath.Join(e.runDir, "locks"), s.id); err != nil {
		return nil, fmt.Errorf("sandbox lock: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.Destroy()
		}
	}()
	if err := s.makeScratch(opts); err != nil {
		return nil, err
	}
	if root, err = s.mountRoot(root, opts.Workspace); err != nil {
		return nil, err
	}
	cfg, err := e.config(s, root, opts)
	if err != nil {
		return nil, err
	}
	s.container, err = libcontainer.Create(filepath.Join(e.runDir, "containers"), s.id, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating sandbox: %w", err)
	}
	if err := s.startEntry(ctx, opts); err != nil {
		return nil, err
	}
	state, err := s.container.State()
	if err != nil {
		return nil, fmt.Errorf("reading sandbox state: %w", err)
	}
	if err := s.limitCounters(ctx, state.InitProcessPid); err != nil {
		return nil, err
	}
	s.cg, err = cgroup.Open(e.parent.Mode(), cfg.Cgroups, state.CgroupPaths)
	if err != nil {
		return nil, err
	}
	if s.fresh {
		if err := s.prepareFirst(opts.Limits, state.InitProcessPid); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ErrPidsInUse is a sandbox that could not start in a workspace because
// the workspace's running programs hold nearly all of its pids.
var ErrPidsInUse = errdefs.New(errdefs.ErrExhausted, "the sandbox's pids limit is reached by the programs it runs: no room to start another until one ends")

// initTasks is about the most tasks libcontainer's init holds at once
// while a sandbox starts (nsexec's processes, then the Go runtime's
// threads), none of which the workspace's pids limit makes room for.
const initTasks = 8

// startEntry starts the sandbox's entry and waits until it is ready. In a
// workspace with less room left in its pids limit than the start needs,
// a failure is that limit's (ErrPidsInUse), not sandboxd's.
func (s *Sandbox) startEntry(ctx context.Context, opts BuildOptions) error {
	err := s.start(opts)
	if err == nil {
		err = s.waitReady(ctx)
	}
	if err != nil && s.ws != nil {
		if free, ferr := s.ws.group.PidsFree(); ferr == nil && free < initTasks {
			return fmt.Errorf("%w (%v)", ErrPidsInUse, err)
		}
	}
	return err
}

// prepareFirst prepares a reusable sandbox's first run (reuse.go; its
// cgroup has room for the run's PID 1, Engine.config). Before that, it
// holds on to the sandbox's own network namespace, where the entry (pid,
// on the host) is now: from a run's prepare until that run's PID 1 is
// gone, the entry is in the run's, and ListenInside must never follow it
// there. (A session's sandbox never leaves the session's, where its runs
// stay.)
func (s *Sandbox) prepareFirst(l Limits, pid int) error {
	if !s.borrowed {
		var err error
		if s.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil {
			return fmt.Errorf("the sandbox's network namespace: %w", err)
		}
	}
	s.reuse.sizes = scratchSizes(l)
	return s.prepare(s.nextNet())
}

// makeScratch gives the sandbox its /work and /tmp: the workspace's, when
// it runs over one, or its own, over its own slot of host ids.
func (s *Sandbox) makeScratch(opts BuildOptions) error {
	if w := opts.Workspace; w != nil {
		if w.engine != s.engine {
			return invalidf("workspace %s belongs to another engine", w.id)
		}
		s.scratch, s.borrowed, s.ws = w.scratch, true, w
		// Its entry, and a reusable sandbox's prepared run, are in the
		// workspace's cgroup before any program is.
		s.held = 1
		if s.fresh {
			s.held = preparedTasks
		}
		if err := w.holdPids(s.held); err != nil {
			s.held = 0
			return err
		}
		if w.ids != nil {
			// The workspace's slot, without its lock: releasing it is the
			// workspace's business, not this sandbox's.
			s.ids = &idSlot{base: w.ids.base}
		}
		return nil
	}
	hostUID, hostGID, err := s.mapIDs(opts.UID, opts.GID)
	if err != nil {
		return err
	}
	s.reuse.hostUID, s.reuse.hostGID = hostUID, hostGID
	s.scratch, err = rootfs.NewScratch(filepath.Join(s.engine.runDir, "scratch", s.id), hostUID, hostGID, scratchSizes(opts.Limits))
	s.reuse.built = s.scratch
	return err
}

// mapIDs returns the host ids of the sandbox user. In a user namespace
// they are the user's ids inside plus the base of a slot of host ids the
// sandbox takes for its life.
func (s *Sandbox) mapIDs(uid, gid int) (hostUID, hostGID int, err error) {
	if !s.engine.userns {
		return uid, gid, nil
	}
	if uid >= IDsPerSandbox || gid >= IDsPerSandbox {
		return 0, 0, invalidf("uid and gid must be below %d inside a user namespace", IDsPerSandbox)
	}
	if s.ids, err = s.engine.allocSlot(); err != nil {
		return 0, 0, err
	}
	return int(s.ids.base) + uid, int(s.ids.base) + gid, nil
}

// mountRoot returns the directory to use as the sandbox's root: its own
// overlay of the image (its own inodes over the shared files, see
// rootfs.Root), or the image itself on a kernel without overlayfs.
func (s *Sandbox) mountRoot(image string, w *Workspace) (string, error) {
	e := s.engine
	if w != nil && w.layer != nil {
		return s.mountLayeredRoot(image, w)
	}
	r, ok, err := rootfs.NewRoot(filepath.Join(e.runDir, "roots", s.id), image)
	switch {
	case err != nil:
		return "", err
	case ok:
		s.root = r
		// libcontainer prepares the root from inside the user namespace:
		// every directory on the way must be searchable. Under the run
		// dir, that is the same for every sandbox: checked once.
		return r.Path(), e.rootsReachable()
	case e.userns:
		// The same for the image itself, when there is no overlay.
		return image, traversable(image)
	}
	return image, nil
}

// waitReady waits until the entry reports it is parked, or ctx ends.
func (s *Sandbox) waitReady(ctx context.Context) error {
	ready := make(chan error, 1)
	go func() { ready <- s.host.WaitReady() }()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("sandbox did not come up: %w%s", err, s.earlyStderr())
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// earlyStderr returns what the sandbox wrote to stderr before it was
// ready: libcontainer's and the entry's own complaints, never user output.
func (s *Sandbox) earlyStderr() string {
	s.waitProcess(time.Second)
	_ = s.stderr.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(s.stderr, buf)
	if n == 0 {
		return ""
	}
	return ": " + strings.TrimSpace(string(buf[:n]))
}

// start launches libcontainer's init, which sets the sandbox up and execs
// the entry (sandboxd itself, through /proc/self/exe: the sealed copy
// libcontainer runs, never a path the sandbox could replace).
func (s *Sandbox) start(opts BuildOptions) error {
	host, child, err := entry.NewPair()
	if err != nil {
		return err
	}
	s.host = host
	defer child.Close()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stdinR.Close()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stdoutW.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stderrW.Close()
	s.stdin, s.stdout, s.stderr = stdinW, stdoutR, stderrR

	process := &libcontainer.Process{
		Args:       entryArgs(s.fresh),
		Env:        entryEnv(s.fresh),
		UID:        opts.UID,
		GID:        opts.GID,
		Cwd:        rootfs.WorkPath,
		Stdin:      stdinR,
		Stdout:     stdoutW,
		Stderr:     stderrW,
		ExtraFiles: []*os.File{child},
		Init:       true,
	}
	if err := s.container.Run(process); err != nil {
		return fmt.Errorf("starting sandbox: %w", err)
	}
	go func() {
		st, _ := process.Wait()
		s.processState = st
		close(s.processDone)
	}()
	return nil
}

// killAll ends every process of the sandbox: killing the entry (pid 1 of its
// PID namespace) makes the kernel kill all the others.
func (s *Sandbox) killAll() {
	_ = s.container.Signal(unix.SIGKILL)
}

func (s *Sandbox) waitProcess(d time.Duration) {
	select {
	case <-s.processDone:
	case <-time.After(d):
	}
}

// Destroy kills whatever runs in the sandbox and removes its cgroup,
// state and scratch mounts. It may be called more than once.
func (s *Sandbox) Destroy() error {
	s.destroyOnce.Do(func() {
		var errs []error
		if s.host != nil {
			_ = s.host.Close()
		}
		if s.container != nil {
			s.killAll()
			if s.processDone != nil && s.stdin != nil {
				s.waitProcess(5 * time.Second)
			}
			if err := s.container.Destroy(); err != nil {
				errs = append(errs, fmt.Errorf("destroying sandbox %s: %w", s.id, err))
			}
		}
		if s.cg != nil {
			s.cg.Close()
		}
		if s.held != 0 {
			errs = append(errs, s.ws.holdPids(-s.held))
		}
		for _, f := range []*os.File{s.stdin, s.stdout, s.stderr, s.netns} {
			if f != nil {
				_ = f.Close()
			}
		}
		if s.scratch != nil && !s.borrowed {
			if err := s.scratch.Remove(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.reuse.removeScratch(s.scratch); err != nil {
			errs = append(errs, err)
		}
		if err := s.root.Remove(); err != nil {
			errs = append(errs, err)
		}
		// Only now, with every process gone, may another sandbox get these ids.
		s.ids.release()
		if len(errs) == 0 && s.lock != nil {
			os.Remove(filepath.Join(s.engine.runDir, "locks", s.id))
		}
		if s.lock != nil {
			s.lock.Close() // on error the file stays: the next start reaps it
		}
		s.destroyErr = errors.Join(errs...)
	})
	return s.destroyErr
}

// CollectWork returns the regular files the run left in /work, at most
// maxBytes in all. Call it after Run and before Destroy.
func (s *Sandbox) CollectWork(maxBytes int64) ([]rootfs.File, error) {
	return s.scratch.Collect(maxBytes)
}

// CollectWorkInto copies the regular files the run left in /work into
// dir, a host directory of the daemon's, at most maxBytes in all (see
// rootfs.Scratch.CollectInto). Call it after Run and before Destroy.
func (s *Sandbox) CollectWorkInto(dir string, maxBytes int64) ([]rootfs.File, error) {
	return s.scratch.CollectInto(dir, maxBytes)
}

// CollectPaths reads back what patterns name in /work (see
// rootfs.Scratch.CollectPaths). Call it after Run and before Destroy.
func (s *Sandbox) CollectPaths(patterns []string, lim rootfs.CollectLimits) ([]rootfs.Collected, error) {
	return s.scratch.CollectPaths(patterns, lim)
}

// Usage is what a running sandbox holds now.
type Usage struct {
	// Tasks counts the program's tasks (threads included), the entry's
	// own not among them.
	Tasks       int64
	MemoryBytes int64
}

// Usage reads the sandbox's cgroup: for a session's in-flight execs.
func (s *Sandbox) Usage() (Usage, error) {
	if s.cg == nil {
		return Usage{}, nil
	}
	tasks, err := s.cg.Tasks()
	if err != nil {
		return Usage{}, err
	}
	mem, err := s.cg.MemoryCurrent()
	return Usage{Tasks: max(tasks-1, 0), MemoryBytes: mem}, err
}

// mountLayeredRoot mounts a build step's root: writable, over the build
// workspace's layer (rootfs.NewLayeredRoot).
func (s *Sandbox) mountLayeredRoot(image string, w *Workspace) (string, error) {
	if image != w.image {
		return "", invalidf("a build workspace's sandboxes must be built over its image")
	}
	r, err := rootfs.NewLayeredRoot(filepath.Join(s.engine.runDir, "roots", s.id), image, w.layer)
	if err != nil {
		return "", err
	}
	s.root = r
	return r.Path(), s.engine.rootsReachable()
}
