package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// StalePrefix is the name prefix of every sandbox cgroup.
const StalePrefix = "sbx-"

// parentDirs returns the parent's directory in every hierarchy that holds
// sandbox cgroups.
func (p Parent) parentDirs() ([]string, error) {
	if p.mode.Unified() {
		return []string{filepath.Join(unifiedRoot, p.path)}, nil
	}
	own, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup: reading own cgroup: %w", err)
	}
	mounts, err := cgroups.GetCgroupMounts(true)
	if err != nil {
		return nil, fmt.Errorf("cgroup: listing hierarchies: %w", err)
	}
	under := func(mountpoint, root, ownPath string) string {
		if filepath.IsAbs(p.path) {
			return filepath.Join(mountpoint, p.path)
		}
		rel := strings.TrimPrefix(ownPath, root)
		return filepath.Join(mountpoint, rel, p.path)
	}
	var dirs []string
	for _, m := range mounts {
		if len(m.Subsystems) == 0 {
			continue
		}
		s := m.Subsystems[0]
		ownPath, ok := own[s]
		if !ok {
			ownPath, ok = own["name="+s]
		}
		if ok {
			dirs = append(dirs, under(m.Mountpoint, m.Root, ownPath))
		}
	}
	if p.mode == Hybrid {
		if ownPath, ok := own[""]; ok {
			dirs = append(dirs, under(filepath.Join(unifiedRoot, "unified"), "/", ownPath))
		}
	}
	return dirs, nil
}

// RemoveStale kills the processes of every sandbox cgroup under the parent
// and removes the cgroups. It is for a daemon starting after a crash, while
// it is the only sandboxd using this parent: every such cgroup is then a
// leftover. It returns how many cgroup directories it removed.
func (p Parent) RemoveStale() (int, error) {
	return p.remove(StalePrefix + "*")
}

// RemoveSandbox removes the cgroup of one dead sandbox, in every hierarchy.
func (p Parent) RemoveSandbox(id string) error {
	_, err := p.remove(id)
	return err
}

func (p Parent) remove(pattern string) (int, error) {
	dirs, err := p.parentDirs()
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, parent := range dirs {
		stale, _ := filepath.Glob(filepath.Join(parent, pattern))
		for _, dir := range stale {
			if err := removeTree(dir); err != nil {
				errs = append(errs, err)
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// removeTree kills every process in dir and below, then removes the
// directories bottom-up. The processes are a dead sandbox's own.
func removeTree(dir string) error {
	// cgroup.kill (v2, Linux 5.14+) kills the whole subtree atomically.
	_ = cgroups.WriteFile(dir, "cgroup.kill", "1")
	var subdirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			subdirs = append(subdirs, p)
		}
		return nil
	})
	deadline := time.Now().Add(2 * time.Second)
	for i := len(subdirs) - 1; i >= 0; i-- {
		d := subdirs[i]
		for {
			pids, _ := cgroups.GetPids(d)
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cgroup: removing stale %s: %w", d, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// RemoveIfEmpty removes the parent's own directories, in every hierarchy,
// when no sandbox cgroup is left in them; a directory still in use stays.
// A daemon calls it when it stops, so that it leaves no empty cgroups.
func (p Parent) RemoveIfEmpty() {
	dirs, err := p.parentDirs()
	if err != nil {
		return
	}
	for _, d := range dirs {
		_ = unix.Rmdir(d) // EBUSY or ENOTEMPTY: not ours to clear
	}
}

// DirsOf returns where a parent configured as configured lies in every
// hierarchy, seen from this process's cgroups, without creating or
// preparing anything: for tools and tests that inspect a daemon's cgroups
// from outside.
func DirsOf(configured string) ([]string, error) {
	mode := DetectMode()
	p := Parent{mode: mode, path: path.Clean(configured)}
	if mode.Unified() && !path.IsAbs(configured) {
		own, err := ownV2Path()
		if err != nil {
			return nil, err
		}
		p.path = path.Join(own, configured)
	}
	return p.parentDirs()
}
