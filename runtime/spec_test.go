package runtime

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/rootfs"
)

// The containment steps produce, in libcontainer's own terms, what
// SECURITY.md promises. No sandbox is built: this needs no root.
func TestConfigContainment(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run(map[bool]string{false: "without user namespace", true: "with user namespace"}[userns], func(t *testing.T) {
			e := &Engine{runDir: "/run/sandboxd", userns: userns}
			s := &Sandbox{id: "sbx-test", ids: &idSlot{base: 1 << 30}, scratch: rootfs.OpenScratch("/run/sandboxd/scratch/sbx-test")}
			opts := BuildOptions{Rootfs: "/images/x", UID: 65534, GID: 65534, Limits: DefaultLimits()}
			cfg, err := e.config(s, "/run/sandboxd/roots/sbx-test/root", opts)
			if err != nil {
				t.Fatal(err)
			}
			checkNoPrivileges(t, cfg)
			checkNamespaces(t, cfg, userns)
			checkFilesystem(t, cfg)
			checkResources(t, cfg, opts.Limits)
		})
	}
}

// A reusable sandbox's cgroup has room, beside the program's pids, for
// the entry and the prepared run's PID 1 from the start: the first run is
// prepared before any limit of a request is applied.
func TestConfigReusableHasRoomForItsPreparedRun(t *testing.T) {
	e := &Engine{runDir: "/run/sandboxd", userns: true}
	s := &Sandbox{id: "sbx-test", ids: &idSlot{base: 1 << 30}, scratch: rootfs.OpenScratch("/run/sandboxd/scratch/sbx-test"), fresh: true}
	opts := BuildOptions{Rootfs: "/images/x", UID: 65534, GID: 65534, Limits: DefaultLimits()}
	cfg, err := e.config(s, "/run/sandboxd/roots/sbx-test/root", opts)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Cgroups.Resources.PidsLimit; p == nil || *p != opts.Limits.Pids+preparedTasks {
		t.Errorf("pids %v, want %d + %d", p, opts.Limits.Pids, preparedTasks)
	}
}

// A reusable sandbox's entry holds exactly the capabilities it needs in
// its user namespace, CAP_SYS_RESOURCE only to write that namespace's
// limits, which come with it in its environment (and nothing else does).
func TestConfigReusableEntry(t *testing.T) {
	e := &Engine{runDir: "/run/sandboxd", userns: true}
	s := &Sandbox{id: "sbx-test", ids: &idSlot{base: 1 << 30}, scratch: rootfs.OpenScratch("/run/sandboxd/scratch/sbx-test"), fresh: true}
	cfg, err := e.config(s, "/run/sandboxd/roots/sbx-test/root", BuildOptions{Rootfs: "/images/x", UID: 65534, GID: 65534, Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETPCAP", "CAP_SYS_RESOURCE"}
	c := cfg.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "ambient": c.Ambient} {
		if !slices.Equal(set, want) {
			t.Errorf("%s capabilities %v, want %v", name, set, want)
		}
	}
	if !cfg.NoNewPrivileges {
		t.Error("no_new_privs is not set")
	}
	limits := "SANDBOXD_USERNS_LIMITS=max_inotify_instances=16,max_inotify_watches=8192,max_user_namespaces=0," +
		"max_mnt_namespaces=64,max_pid_namespaces=64,max_net_namespaces=64,max_ipc_namespaces=64,max_uts_namespaces=64,max_cgroup_namespaces=0"
	for _, tt := range []struct {
		fresh bool
		want  []string
	}{
		{true, []string{"PATH=/usr/bin:/bin", "GOMAXPROCS=1", limits}},
		{false, []string{"PATH=/usr/bin:/bin", "GOMAXPROCS=1"}},
	} {
		if got := entryEnv(tt.fresh); !slices.Equal(got, tt.want) {
			t.Errorf("reusable %v: entry environment %q, want %q", tt.fresh, got, tt.want)
		}
	}
}

func checkNoPrivileges(t *testing.T, cfg *configs.Config) {
	t.Helper()
	c := cfg.Capabilities
	if c == nil {
		t.Fatal("capabilities are nil: the sandbox would keep every capability of root")
	}
	for name, set := range map[string][]string{
		"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted,
		"inheritable": c.Inheritable, "ambient": c.Ambient,
	} {
		if set == nil || len(set) != 0 {
			t.Errorf("%s capabilities %v, want an empty set", name, set)
		}
	}
	if !cfg.NoNewPrivileges {
		t.Error("no_new_privs is not set")
	}
}

func checkNamespaces(t *testing.T, cfg *configs.Config, userns bool) {
	t.Helper()
	for _, ns := range []configs.NamespaceType{configs.NEWPID, configs.NEWNET, configs.NEWIPC, configs.NEWUTS, configs.NEWNS, configs.NEWCGROUP} {
		if !cfg.Namespaces.IsPrivate(ns) {
			t.Errorf("no new %s namespace", ns)
		}
	}
	if len(cfg.Networks) != 1 || cfg.Networks[0].Type != "loopback" {
		t.Errorf("networks %+v, want loopback only", cfg.Networks)
	}
	if cfg.Hostname != "sandbox" {
		t.Errorf("hostname %q", cfg.Hostname)
	}
	want := []configs.IDMap(nil)
	if userns {
		want = []configs.IDMap{{ContainerID: 0, HostID: 1 << 30, Size: IDsPerSandbox}}
	}
	if cfg.Namespaces.IsPrivate(configs.NEWUSER) != userns || !slices.Equal(cfg.UIDMappings, want) || !slices.Equal(cfg.GIDMappings, want) {
		t.Errorf("user namespace %v, uid map %v, gid map %v; want %v, %v", cfg.Namespaces.IsPrivate(configs.NEWUSER), cfg.UIDMappings, cfg.GIDMappings, userns, want)
	}
}

func checkFilesystem(t *testing.T, cfg *configs.Config) {
	t.Helper()
	if !cfg.Readonlyfs || cfg.RootPropagation != unix.MS_PRIVATE {
		t.Errorf("root read-only %v, propagation %#x; want read-only and private", cfg.Readonlyfs, cfg.RootPropagation)
	}
	if !slices.Contains(cfg.MaskPaths, "/proc/kcore") || !slices.Contains(cfg.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v, read-only %v", cfg.MaskPaths, cfg.ReadonlyPaths)
	}
	var dests []string
	for _, m := range cfg.Mounts {
		dests = append(dests, m.Destination)
		nosuid := m.Flags&unix.MS_NOSUID != 0
		noexec := m.Flags&unix.MS_NOEXEC != 0
		if !nosuid || (m.Destination == rootfs.TmpPath && !noexec) || (m.Destination == rootfs.WorkPath && noexec) {
			t.Errorf("%s mounted with flags %#x", m.Destination, m.Flags)
		}
	}
	if want := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", rootfs.WorkPath, rootfs.TmpPath}; !slices.Equal(dests, want) {
		t.Errorf("mounts %v, want %v", dests, want)
	}
	// /dev/pts is a devpts instance of the sandbox's own, with a bound.
	pts := slices.IndexFunc(cfg.Mounts, func(m *configs.Mount) bool { return m.Destination == "/dev/pts" })
	if pts >= 0 {
		data := strings.Split(cfg.Mounts[pts].Data, ",")
		for _, want := range []string{"newinstance", "ptmxmode=0666", fmt.Sprintf("max=%d", rootfs.PtyMax)} {
			if cfg.Mounts[pts].Device != "devpts" || !slices.Contains(data, want) {
				t.Errorf("/dev/pts: %s mount, data %q; want devpts with %s", cfg.Mounts[pts].Device, cfg.Mounts[pts].Data, want)
			}
		}
	}
	// /dev/shm is the one tmpfs libcontainer mounts: its size and inode
	// limits are in the mount's data (/work and /tmp are sandboxd's own
	// host mounts, bound in; rootfs.NewScratch sizes them).
	shm := slices.IndexFunc(cfg.Mounts, func(m *configs.Mount) bool { return m.Destination == "/dev/shm" })
	if shm < 0 {
		return
	}
	data := strings.Split(cfg.Mounts[shm].Data, ",")
	for _, want := range []string{"size=16777216", "nr_inodes=4096"} {
		if !slices.Contains(data, want) {
			t.Errorf("/dev/shm mount data %q, want %s among it", cfg.Mounts[shm].Data, want)
		}
	}
}

func checkResources(t *testing.T, cfg *configs.Config, l Limits) {
	t.Helper()
	if cfg.OomScoreAdj == nil || *cfg.OomScoreAdj != 1000 {
		t.Errorf("oom_score_adj %v, want 1000", cfg.OomScoreAdj)
	}
	r := cfg.Cgroups.Resources
	if r.Memory != l.MemoryBytes || r.MemorySwap != l.MemoryBytes || r.PidsLimit == nil || *r.PidsLimit != l.Pids {
		t.Errorf("memory %d, memory+swap %d, pids %v; want %d, %d, %d", r.Memory, r.MemorySwap, r.PidsLimit, l.MemoryBytes, l.MemoryBytes, l.Pids)
	}
	if !slices.Equal(cfg.Rlimits, rlimitConfigs(l)) {
		t.Errorf("rlimits %+v", cfg.Rlimits)
	}
	core := slices.IndexFunc(cfg.Rlimits, func(r configs.Rlimit) bool { return r.Type == unix.RLIMIT_CORE })
	if core < 0 || cfg.Rlimits[core].Hard != 0 {
		t.Errorf("RLIMIT_CORE %+v, want 0", cfg.Rlimits)
	}
}
