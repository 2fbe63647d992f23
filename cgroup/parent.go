package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/errdefs"
)

// DefaultParentName is the child of sandboxd's own cgroup that holds its
// sandboxes when no parent is configured.
const DefaultParentName = "sandboxd"

// supervisorLeaf is where sandboxd moves itself on cgroup v2, so that its
// own cgroup has no processes and may delegate controllers to sandboxes
// (v2's "no internal processes" rule).
const supervisorLeaf = "supervisor"

// v2Controllers are the controllers a sandbox needs; only these are enabled
// in subtree_control on the way down.
var v2Controllers = []string{"cpu", "memory", "pids"}

// ErrNotDelegated means the parent cgroup exists but sandboxd may not create
// or configure cgroups under it.
var ErrNotDelegated = errdefs.New(errdefs.ErrUnavailable, "cgroup parent is not writable or not delegated")

// Parent is where sandbox cgroups are created.
type Parent struct {
	mode Mode
	// path is the cgroupsPath prefix handed to libcontainer. On v1 and
	// hybrid hosts a relative path is resolved by libcontainer per
	// controller, relative to sandboxd's own cgroup in that controller;
	// an absolute path names the same place in every hierarchy. On v2 it
	// is always absolute (from the unified root).
	path string
}

// Mode returns the host mode the parent was resolved for.
func (p Parent) Mode() Mode { return p.mode }

// String returns the parent path as configured (for logs and errors).
func (p Parent) String() string { return p.path }

// PathFor returns the cgroupsPath of the sandbox with the given id.
func (p Parent) PathFor(id string) string { return path.Join(p.path, id) }

// ResolveParent picks the parent for sandboxes. An empty configured value
// means "a child of the cgroup sandboxd runs in". On cgroup v2 the parent is
// prepared at once: sandboxd moves itself into a leaf, and the controllers
// sandboxes need are enabled down to the parent; on v1 libcontainer creates
// what is missing when the first sandbox starts.
func ResolveParent(configured string) (Parent, error) {
	mode := DetectMode()
	if configured != "" && (strings.Contains(configured, "..") || strings.ContainsRune(configured, 0)) {
		return Parent{}, fmt.Errorf("cgroup parent %q: must not contain \"..\"", configured)
	}
	if !mode.Unified() {
		p := configured
		if p == "" {
			p = DefaultParentName
		}
		return Parent{mode: mode, path: path.Clean(p)}, checkV1(p)
	}
	own, err := ownV2Path()
	if err != nil {
		return Parent{}, err
	}
	var parent string
	switch {
	case configured == "":
		parent = path.Join(own, DefaultParentName)
	case path.IsAbs(configured):
		parent = path.Clean(configured)
	default:
		parent = path.Join(own, configured)
	}
	if err := prepareV2(own, parent); err != nil {
		return Parent{}, err
	}
	return Parent{mode: mode, path: parent}, nil
}

func checkV1(p string) error {
	// The memory hierarchy is the one every sandbox needs; if sandboxd can
	// write there, it can write in the others it owns too.
	base, err := v1Base("memory", p)
	if err != nil {
		return err
	}
	for dir := base; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			if err := unix.Access(dir, unix.W_OK); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrNotDelegated, dir, err)
			}
			return nil
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

// v1Base returns where the parent lands in one v1 hierarchy.
func v1Base(subsystem, p string) (string, error) {
	if path.IsAbs(p) {
		mnt, err := cgroups.FindCgroupMountpoint("", subsystem)
		if err != nil {
			return "", fmt.Errorf("cgroup: %s controller not mounted: %w", subsystem, err)
		}
		return filepath.Join(mnt, p), nil
	}
	own, err := cgroups.GetOwnCgroupPath(subsystem)
	if err != nil {
		return "", fmt.Errorf("cgroup: own %s cgroup: %w", subsystem, err)
	}
	return filepath.Join(own, p), nil
}

func ownV2Path() (string, error) {
	m, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup: reading own cgroup: %w", err)
	}
	own, ok := m[""]
	if !ok {
		return "", errors.New("cgroup: no unified entry in /proc/self/cgroup")
	}
	// Once moved into the supervisor leaf, the subtree root is its parent.
	if path.Base(own) == supervisorLeaf {
		own = path.Dir(own)
	}
	return own, nil
}

const unifiedRoot = "/sys/fs/cgroup"

// prepareV2 makes parent usable for sandboxes while obeying v2's rule that a
// cgroup with controllers enabled for children holds no processes itself.
func prepareV2(own, parent string) error {
	ownDir := filepath.Join(unifiedRoot, own)
	parentDir := filepath.Join(unifiedRoot, parent)
	inOwn := within(parent, own)
	if err := unix.Access(ownDir, unix.W_OK); err != nil && inOwn {
		return fmt.Errorf("%w: %s (under systemd, set Delegate=yes on sandboxd's unit): %v", ErrNotDelegated, ownDir, err)
	}
	// The host's root cgroup may hold processes and is never emptied; the
	// root of a cgroup namespace (a container's own cgroup, seen as "/")
	// is an ordinary cgroup, bound by the "no internal processes" rule.
	if inOwn && (own != "/" || !isHostRoot(ownDir)) {
		if err := moveSelfToLeaf(ownDir); err != nil {
			return err
		}
	}
	// Enable controllers from the topmost ancestor we own down to parent.
	start := own
	if !inOwn {
		start = path.Dir(parent)
	}
	if err := os.MkdirAll(parentDir, 0o755); err != nil {
		return fmt.Errorf("%w: creating %s: %v", ErrNotDelegated, parentDir, err)
	}
	rel, _ := filepath.Rel(start, parent)
	dir := filepath.Join(unifiedRoot, start)
	for _, part := range append([]string{""}, strings.Split(rel, "/")...) {
		dir = filepath.Join(dir, part)
		if err := enableControllers(dir); err != nil {
			return err
		}
	}
	recordBaseline(parentDir)
	return nil
}

// libcontainer's cgroup v2 driver enables every controller the host has
// (cpuset, io, hugetlb, rdma, misc...) in cgroup.subtree_control of every
// cgroup from the unified root down to a new sandbox's parent, whatever
// the sandbox uses. That reaches cgroups sandboxd does not own (the root,
// systemd's slices) and gives sandboxes controllers they never need. So
// sandboxd records subtree_control on that path once it has enabled what
// it needs, and takes back what libcontainer added after each sandbox is
// created (trimControllers). The record is per process.
var (
	baselineMu sync.Mutex
	baseline   = map[string][]string{}
)

func recordBaseline(parentDir string) {
	baselineMu.Lock()
	defer baselineMu.Unlock()
	for dir := parentDir; ; dir = filepath.Dir(dir) {
		enabled, err := cgroups.ReadFile(dir, "cgroup.subtree_control")
		if err == nil {
			baseline[dir] = strings.Fields(enabled)
		}
		if dir == unifiedRoot || !strings.HasPrefix(dir, unifiedRoot+"/") {
			return
		}
	}
}

// trimControllers disables, from dir up to the unified root, the
// controllers that were not enabled when the parent was prepared. It
// works bottom-up, since a controller cannot be disabled in a cgroup whose
// children delegate it further. Failures are left alone: a controller
// that another cgroup started to use in the meantime stays enabled.
func trimControllers(dir string) {
	baselineMu.Lock()
	defer baselineMu.Unlock()
	for ; strings.HasPrefix(dir, unifiedRoot); dir = filepath.Dir(dir) {
		want, ok := baseline[dir]
		if ok {
			enabled, err := cgroups.ReadFile(dir, "cgroup.subtree_control")
			if err != nil {
				return
			}
			var drop []string
			for _, c := range strings.Fields(enabled) {
				if !contains(want, c) {
					drop = append(drop, "-"+c)
				}
			}
			if len(drop) > 0 {
				_ = cgroups.WriteFile(dir, "cgroup.subtree_control", strings.Join(drop, " "))
			}
		}
		if dir == unifiedRoot {
			return
		}
	}
}

// within reports whether cgroup p is dir or below it.
// isHostRoot reports whether dir is the host's root cgroup: only the true
// root lacks cgroup.type (and the other per-cgroup core files), whatever a
// cgroup namespace shows as "/".
func isHostRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.type"))
	return errors.Is(err, os.ErrNotExist)
}

func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

func moveSelfToLeaf(ownDir string) error {
	procs, err := cgroups.GetPids(ownDir)
	if err != nil {
		return fmt.Errorf("cgroup: reading %s: %w", ownDir, err)
	}
	if len(procs) == 0 {
		return nil
	}
	leaf := filepath.Join(ownDir, supervisorLeaf)
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		return fmt.Errorf("%w: creating %s: %v", ErrNotDelegated, leaf, err)
	}
	// Every process of our own cgroup is ours (our threads, our helpers).
	for _, pid := range procs {
		if err := cgroups.WriteFile(leaf, "cgroup.procs", strconv.Itoa(pid)); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("%w: moving pid %d into %s: %v", ErrNotDelegated, pid, leaf, err)
		}
	}
	return nil
}

func enableControllers(dir string) error {
	avail, err := cgroups.ReadFile(dir, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotDelegated, dir, err)
	}
	have := strings.Fields(avail)
	enabled, _ := cgroups.ReadFile(dir, "cgroup.subtree_control")
	var add []string
	for _, c := range v2Controllers {
		if contains(have, c) && !contains(strings.Fields(enabled), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := cgroups.WriteFile(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
		return fmt.Errorf("%w: enabling %v in %s: %v", ErrNotDelegated, add, dir, err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
