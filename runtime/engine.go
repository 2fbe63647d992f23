// Package runtime is the sandbox lifecycle: it builds a sandbox (cgroup,
// namespaces, mounts, a parked entry process), runs one program in it,
// watches its limits, collects its result and destroys it. Building and
// running are separate steps so that sandboxes can be built ahead of time.
package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/runtime/entry"
	"github.com/sandboxd/sandboxd/seccomp"
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	// RunDir holds per-sandbox state: libcontainer's state, the scratch
	// tmpfs mounts and the seccomp cache. It should be on tmpfs.
	RunDir string
	// CgroupParent is where sandbox cgroups nest; empty means a child of
	// sandboxd's own cgroup.
	CgroupParent string
	// NoUserNamespace turns off the per-sandbox user namespace (on by
	// default: each sandbox maps its ids onto its own slice of IDs).
	NoUserNamespace bool
	// IDs is the host id range for user namespaces; the zero value means
	// /etc/subuid's entry for "sandboxd", else DefaultIDRange.
	IDs IDRange
	// NoReuse builds one-run sandboxes only. By default a sandbox built
	// without a workspace, in its own user namespace, is reusable: it runs
	// each program in namespaces of its own (reuse.go), and may serve
	// another run once one ends.
	NoReuse bool
}

// Engine builds sandboxes. It holds what every sandbox shares: the
// compiled seccomp filter and the resolved cgroup parent.
type Engine struct {
	runDir string
	parent cgroup.Parent
	filter []byte
	userns bool
	reuse  bool
	ids    IDRange
	// prepares are the prepare messages of a reusable sandbox's runs, by
	// network mode: the rest (the /proc masks, /dev/shm and /dev/pts, the
	// filter) is the same for every run, so each is encoded once.
	prepares [entry.NetModes][]byte

	// rootsOK remembers, once per engine, whether sandboxes' overlay roots
	// under the run dir can be reached from their user namespaces.
	rootsOnce sync.Once
	rootsErr  error
}

// rootsReachable checks the way to the run dir's roots, once.
func (e *Engine) rootsReachable() error {
	e.rootsOnce.Do(func() {
		if e.userns {
			e.rootsErr = traversable(filepath.Join(e.runDir, "roots"))
		}
	})
	return e.rootsErr
}

// NewEngine prepares the run dir, the cgroup parent and the filter.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("sandboxd must run as root to build sandboxes")
	}
	if cfg.RunDir == "" {
		return nil, invalidf("run dir is not set")
	}
	runDir, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, invalidf("run dir %q: %v", cfg.RunDir, err)
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{runDir, 0o711}, {filepath.Join(runDir, "containers"), 0o700}, {filepath.Join(runDir, "scratch"), 0o700},
		{filepath.Join(runDir, "roots"), 0o711}, {filepath.Join(runDir, "locks"), 0o700},
		{filepath.Join(runDir, netnsDir), 0o700}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("creating run dir: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("creating run dir: %w", err)
		}
	}
	ids := cfg.IDs
	if !cfg.NoUserNamespace && ids == (IDRange{}) {
		sub, ok, err := SubIDRange()
		if err != nil {
			return nil, err
		}
		ids = DefaultIDRange
		if ok {
			ids = sub
		}
	}
	if !cfg.NoUserNamespace {
		if err := ids.check(); err != nil {
			return nil, err
		}
	}
	parent, err := cgroup.ResolveParent(cfg.CgroupParent)
	if err != nil {
		return nil, err
	}
	filter, err := seccomp.NewCompiler(filepath.Join(runDir, "seccomp")).Program()
	if err != nil {
		return nil, err
	}
	// Reuse needs a user namespace per sandbox (the entry's capabilities
	// must be the sandbox's alone) and a memory peak each run can reset.
	reuse := !cfg.NoUserNamespace && !cfg.NoReuse && parent.PeakResets()
	return &Engine{runDir: runDir, parent: parent, filter: filter, userns: !cfg.NoUserNamespace,
		reuse: reuse, ids: ids, prepares: prepareMessages(filter)}, nil
}

// CheckReachable reports whether image roots under dir can be reached
// from sandboxes' user namespaces (a daemon checks its image store at
// start, instead of failing every run later).
func (e *Engine) CheckReachable(dir string) error {
	if !e.userns {
		return nil
	}
	return traversable(dir)
}

// Reuses reports whether sandboxes built without a workspace are reusable
// (reuse.go).
func (e *Engine) Reuses() bool { return e.reuse }

// UserNamespaces reports whether sandboxes get their own user namespace.
func (e *Engine) UserNamespaces() bool { return e.userns }

// traversable checks that a sandbox's mapped root can reach dir (the image
// root, which libcontainer prepares from inside the user namespace): every
// directory on the way must be searchable by others.
func traversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (mode %o): sandboxes in user namespaces could not reach %s; use chmod o+x or another directory", d, st.Mode().Perm(), dir)
		}
		if d == "/" {
			return nil
		}
	}
}

// CgroupMode reports the host's cgroup mode.
func (e *Engine) CgroupMode() cgroup.Mode { return e.parent.Mode() }

// CgroupParent reports where sandbox cgroups nest.
func (e *Engine) CgroupParent() string { return e.parent.String() }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sbx-" + hex.EncodeToString(b[:])
}
