package cgroup

import (
	"fmt"
	"math"
	"path"
	"strconv"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
	"github.com/opencontainers/cgroups/manager"
)

// Group is a cgroup that holds the cgroups of several sandboxes and bounds
// them together: a session's, whose execs each run in a sandbox of their
// own but must share the session's memory, CPU and pids. Each sandbox
// keeps its own cgroup (its limits, its accounting, its OOM kill) below
// the group, and the kernel charges everything to the group as well.
type Group struct {
	parent Parent // where the group lies
	// id is its name under parent. It bears StalePrefix, so that a crashed
	// daemon's groups are removed with its sandboxes' (RemoveStale).
	id  string
	mgr cgroups.Manager
}

// NewGroup makes the group id under p with the limits l. Its pids limit
// starts at l.Pids: SetPids adds room for the tasks that sandboxd keeps in
// the group's sandboxes (their entries) as they come and go, so that the
// programs get exactly l.Pids in all. On error nothing is left.
func (p Parent) NewGroup(id string, l Limits) (_ *Group, err error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	cfg := &cgroups.Cgroup{Path: p.PathFor(id), Resources: &cgroups.Resources{SkipDevices: true}}
	l.apply(cfg.Resources, 0)
	g := &Group{parent: p, id: id}
	if g.mgr, err = manager.New(cfg); err != nil {
		return nil, fmt.Errorf("cgroup: group %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			_ = g.Remove()
		}
	}()
	// pid -1: make the directories only; the group holds no process of
	// its own (v2's rule for a cgroup whose children have controllers).
	if err := g.mgr.Apply(-1); err != nil {
		return nil, fmt.Errorf("cgroup: making group %s: %w", id, err)
	}
	if err := g.mgr.Set(cfg.Resources); err != nil {
		return nil, fmt.Errorf("cgroup: limiting group %s: %w", id, err)
	}
	if !p.mode.Unified() {
		// As for a sandbox (Sandbox.limitTCP): v1 counts TCP buffers only
		// under a limit of their own.
		if err := cgroups.WriteFile(g.mgr.Path("memory"), "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)); err != nil {
			return nil, fmt.Errorf("cgroup: limiting group %s's TCP buffers: %w", id, err)
		}
	}
	return g, nil
}

// SetPids sets the group's pids limit.
func (g *Group) SetPids(max int64) error {
	if err := cgroups.WriteFile(g.pidsDir(), "pids.max", strconv.FormatInt(max, 10)); err != nil {
		return fmt.Errorf("cgroup: group %s's pids limit: %w", g.id, err)
	}
	return nil
}

// PidsFree is how many more tasks the group's pids limit allows now
// (math.MaxInt64 without a limit). pids.events would name refusals, but
// v1 counts them in the refused task's own cgroup, not in the group
// whose limit refused.
func (g *Group) PidsFree() (int64, error) {
	limit, err := fscommon.GetCgroupParamInt(g.pidsDir(), "pids.max")
	if err != nil {
		return 0, fmt.Errorf("cgroup: group %s's pids.max: %w", g.id, err)
	}
	current, err := fscommon.GetCgroupParamInt(g.pidsDir(), "pids.current")
	if err != nil {
		return 0, fmt.Errorf("cgroup: group %s's pids.current: %w", g.id, err)
	}
	if limit == math.MaxInt64 {
		return limit, nil
	}
	return limit - current, nil
}

// pidsDir is where the group's pids files are.
func (g *Group) pidsDir() string {
	if g.parent.mode.Unified() {
		return g.mgr.Path("")
	}
	return g.mgr.Path("pids")
}

// Parent is where the group's sandboxes nest.
func (g *Group) Parent() Parent {
	return Parent{mode: g.parent.mode, path: path.Join(g.parent.path, g.id)}
}

// Remove kills what is left in the group and removes it in every
// hierarchy. Call it once its sandboxes are destroyed.
func (g *Group) Remove() error { return g.parent.RemoveSandbox(g.id) }
