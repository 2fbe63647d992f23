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

	"github.com/sandboxd/sandboxd/cgroup"
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
}

// Engine builds sandboxes. It holds what every sandbox shares: the
// compiled seccomp filter and the resolved cgroup parent.
type Engine struct {
	runDir string
	parent cgroup.Parent
	filter []byte
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
	for _, d := range []string{runDir, filepath.Join(runDir, "containers"), filepath.Join(runDir, "scratch")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating run dir: %w", err)
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
	return &Engine{runDir: runDir, parent: parent, filter: filter}, nil
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
