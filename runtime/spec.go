package runtime

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime/entry"
)

// config is the sandbox's containment, one guarantee a line. The steps
// fill in an OCI spec, which specconv turns into libcontainer's config;
// the rlimits, which specconv leaves out, come last. libcontainer's init
// applies all of it before the entry runs; the entry then adds, per run,
// the seccomp filter and the run's rlimits (entry.Launch). Each step is a
// small function below that says why it is there.
func (e *Engine) config(s *Sandbox, root string, opts BuildOptions) (*configs.Config, error) {
	spec := &specs.Spec{Version: specs.Version, Process: &specs.Process{}, Linux: &specs.Linux{}}
	configureEntry(spec, opts.UID, opts.GID, s.fresh)
	if s.fresh {
		configureFreshCapabilities(spec)
	} else {
		configureNoCapabilities(spec)
	}
	configureOOMScore(spec)
	configureNamespaces(spec)
	if e.userns {
		configureUserNamespace(spec, s.ids.base)
	}
	parent := e.parent
	if opts.Workspace != nil {
		parent = opts.Workspace.cgroupParent()
	}
	l := cgroupLimits(opts.Limits)
	if s.fresh {
		// Room beside the program's pids, from the start, for the entry
		// and the prepared run's PID 1 (reuse.go).
		l.Pids += preparedTasks
	}
	configureCgroupResources(spec, l, parent, s.id)
	plan := rootfs.Plan{Rootfs: root, Scratch: s.scratch}
	configureRoot(spec, plan)
	if opts.Workspace != nil && opts.Workspace.layer != nil {
		configureBuildRoot(spec)
	}
	if err := configureScratch(spec, plan); err != nil {
		return nil, err
	}
	if opts.Workspace != nil {
		configureSessionNet(spec, opts.Workspace.net)
	}
	// specconv adds the loopback interface of a new network namespace
	// (a workspace's has it up already).
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: s.id, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("building sandbox config: %w", err)
	}
	configureRlimits(cfg, opts.Limits)
	return cfg, nil
}

// configureEntry names the sandbox's first process: sandboxd's entry, as
// the sandbox user (never root, no supplementary groups), in /work. The
// process libcontainer starts is the one Sandbox.start passes, with these
// same values: /proc/self/exe, the sealed copy of sandboxd, never a path
// the sandbox could replace.
func configureEntry(spec *specs.Spec, uid, gid int, fresh bool) {
	spec.Process.User = specs.User{UID: uint32(uid), GID: uint32(gid)}
	spec.Process.Args = entryArgs(fresh)
	spec.Process.Cwd = rootfs.WorkPath
}

// configureNoCapabilities empties every capability set and sets
// no_new_privs, so that nothing the program executes (setuid binaries,
// file capabilities) can gain a privilege. The sets must be empty, never
// nil: nil keeps every capability of root.
func configureNoCapabilities(spec *specs.Spec) {
	spec.Process.NoNewPrivileges = true
	spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: []string{}, Effective: []string{}, Permitted: []string{},
		Inheritable: []string{}, Ambient: []string{},
	}
}

// configureFreshCapabilities is configureNoCapabilities for the entry of
// a reusable sandbox: it keeps the three capabilities it needs to give each
// run namespaces, mounts and a loopback of its own (runtime/entry/fresh.c),
// in the sandbox's user namespace only, where they reach nothing of the
// host or of another sandbox, and CAP_SYS_RESOURCE there until it has set
// that namespace's own limits (entryEnv), when it drops it. They are
// ambient so that they survive the execve of the entry as the sandbox
// user; the entry drops them all, every set, in each run before the
// program exists, and no_new_privs holds.
func configureFreshCapabilities(spec *specs.Spec) {
	spec.Process.NoNewPrivileges = true
	caps := []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETPCAP", "CAP_SYS_RESOURCE"}
	spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps,
	}
}

// entryEnv is the entry's own environment; the program gets the request's.
// A reusable sandbox's entry also gets the limits of its user namespace
// (counters.go), which it writes itself before the first run: one process
// less to start for every such sandbox than the sandbox-userns-limits
// helper that writes them for the others.
func entryEnv(fresh bool) []string {
	env := []string{"PATH=/usr/bin:/bin", "GOMAXPROCS=1"}
	if fresh {
		env = append(env, entry.UsernsLimitsEnv+"="+entry.FormatUserLimits(usernsLimits(true)))
	}
	return env
}

// entryArgs is the entry's command line: /proc/self/exe, the sealed copy
// of sandboxd, as the entry; a reusable sandbox's serves many runs.
func entryArgs(fresh bool) []string {
	if fresh {
		return []string{"/proc/self/exe", entry.Arg, entry.ArgFresh}
	}
	return []string{"/proc/self/exe", entry.Arg}
}

// configureOOMScore makes sandboxes the host OOM killer's first choice:
// under host memory pressure they go before any service of the host.
func configureOOMScore(spec *specs.Spec) {
	oomScore := 1000
	spec.Process.OOMScoreAdj = &oomScore
}

// configureNamespaces gives the sandbox its own view of every kernel
// resource that has a namespace: it sees only its own processes (and its
// entry is their PID 1, so they all die with it), its own SysV IPC, its own
// hostname, mounts and cgroup root. The network namespace has only a
// loopback interface, which specconv adds and libcontainer brings up:
// there is no route out, and the host's loopback is another interface.
func configureNamespaces(spec *specs.Spec) {
	spec.Hostname = "sandbox"
	spec.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	}
}

// configureUserNamespace maps the sandbox's ids 0-65535 onto its own slot
// of host ids, which no other running sandbox and no host user has: a
// process that escapes lands as nobody on the host. Files of the image
// owned by host users show as nobody and keep their host permissions, so
// what is root-only on the host stays so.
func configureUserNamespace(spec *specs.Spec, hostBase uint32) {
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostBase, Size: IDsPerSandbox}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostBase, Size: IDsPerSandbox}}
}

// configureCgroupResources puts the sandbox in its own cgroup under the
// engine's parent, with the build-time memory (swap off), CPU quota and
// pids limits; a run may lower them (cgroup.Sandbox.Apply). On cgroup v2
// an OOM kill takes the whole sandbox (see cgroup.Limits.SpecFor).
func configureCgroupResources(spec *specs.Spec, l cgroup.Limits, parent cgroup.Parent, id string) {
	spec.Linux.Resources = l.SpecFor(parent.Mode())
	spec.Linux.CgroupsPath = parent.PathFor(id)
}

// configureRoot mounts the image as a read-only root, with the sandbox's
// own /proc, /dev, /dev/shm and /sys, and the kernel paths that leak host
// state or offer attack surface masked or read-only (rootfs.Plan.ApplyRoot).
func configureRoot(spec *specs.Spec, plan rootfs.Plan) {
	plan.ApplyRoot(spec)
}

// configureBuildRoot makes an image build step's root writable: it is the
// build's own overlay (rootfs.Layer), never the image, and what the step
// writes there is the new image's layer, bounded by the layer's tmpfs.
func configureBuildRoot(spec *specs.Spec) {
	spec.Root.Readonly = false
}

// configureScratch binds the two writable areas, /work and /tmp: sized
// tmpfs mounts, so filling them costs the sandbox's memory and never host
// disk (rootfs.Plan.ApplyScratch). It comes after configureRoot, whose
// mounts it extends.
func configureScratch(spec *specs.Spec, plan rootfs.Plan) error {
	return plan.ApplyScratch(spec)
}

// configureRlimits sets the build-time rlimits, which specconv leaves to
// its caller: they hold for the entry and so for everything it starts; the
// entry lowers them to the run's values before the program runs.
func configureRlimits(cfg *configs.Config, l Limits) {
	cfg.Rlimits = rlimitConfigs(l)
}

// rlimitConfigs bounds what the cgroup does not: open files, the size of
// one file (a full tmpfs is not the only way to fail a write), the stack,
// no core files, and the rlimit half of the per-user counters' budgets
// (counters.go).
func rlimitConfigs(l Limits) []configs.Rlimit {
	return append([]configs.Rlimit{
		{Type: unix.RLIMIT_NOFILE, Hard: uint64(l.OpenFiles), Soft: uint64(l.OpenFiles)},
		{Type: unix.RLIMIT_FSIZE, Hard: uint64(l.FileSizeBytes), Soft: uint64(l.FileSizeBytes)},
		{Type: unix.RLIMIT_CORE, Hard: 0, Soft: 0},
		{Type: unix.RLIMIT_STACK, Hard: stackBytes, Soft: stackBytes},
	}, counterRlimits()...)
}

// rlimitsFor is rlimitConfigs for the entry, which sets them per run.
func rlimitsFor(l Limits) []entry.Rlimit {
	var out []entry.Rlimit
	for _, r := range rlimitConfigs(l) {
		out = append(out, entry.Rlimit{Resource: r.Type, Cur: r.Soft, Max: r.Hard})
	}
	return out
}
