package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/rootfs"
)

// Recovered counts what Recover removed.
type Recovered struct {
	Sandboxes, Cgroups int
}

// Recover removes everything an earlier sandboxd with the same run dir and
// cgroup parent left behind when it died: sandbox processes, their state,
// cgroups and scratch mounts. Call it only while no other sandboxd uses the
// run dir (the daemon holds a lock on it), before building any sandbox.
func (e *Engine) Recover(ctx context.Context) (Recovered, error) {
	var rec Recovered
	var errs []error
	ids := map[string]bool{}
	for _, sub := range []string{"containers", "scratch", "roots", "locks", "layers", netnsDir} {
		entries, _ := os.ReadDir(filepath.Join(e.runDir, sub))
		for _, ent := range entries {
			if !strings.HasPrefix(ent.Name(), ".") {
				ids[ent.Name()] = true
			}
		}
	}
	for id := range ids {
		if ctx.Err() != nil {
			return rec, ctx.Err()
		}
		if err := e.removeSandbox(id); err != nil {
			errs = append(errs, err)
		}
		os.Remove(filepath.Join(e.runDir, "locks", id))
		rec.Sandboxes++
	}
	n, err := e.parent.RemoveStale()
	rec.Cgroups = n
	if err != nil {
		errs = append(errs, err)
	}
	return rec, errors.Join(errs...)
}

// RemoveCgroupParent removes the empty parent cgroup sandboxes nested in,
// for a daemon that stops with none left.
func (e *Engine) RemoveCgroupParent() { e.parent.RemoveIfEmpty() }

// ReapDead removes the sandboxes whose owner died: a sandbox's owner holds
// the lock on locks/<id> from before anything of the sandbox exists until
// its last trace is gone, so a lock anyone can take marks a leftover. This
// is what cleans up after a killed `sandboxd exec`, safely beside other
// ones running. (A daemon, owning its run dir, uses Recover instead.)
func (e *Engine) ReapDead() {
	dir := filepath.Join(e.runDir, "locks")
	entries, _ := os.ReadDir(dir)
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), ".") {
			continue // a lock still being made (see newLock)
		}
		lock, err := tryLock(filepath.Join(dir, ent.Name()))
		if err != nil {
			continue // alive, or unreadable: leave it
		}
		if e.removeSandbox(ent.Name()) == nil {
			os.Remove(lock.Name())
		}
		lock.Close()
	}
}

// removeSandbox kills and removes what exists of one sandbox: its processes
// and libcontainer state, its cgroup, its scratch mounts and its root.
func (e *Engine) removeSandbox(id string) error {
	var errs []error
	containers := filepath.Join(e.runDir, "containers")
	if c, err := libcontainer.Load(containers, id); err == nil {
		_ = c.Signal(unix.SIGKILL)
		if err := c.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", id, err))
		}
	}
	// Whatever libcontainer could not load or destroy goes by hand.
	errs = append(errs, os.RemoveAll(filepath.Join(containers, id)),
		e.parent.RemoveSandbox(id),
		rootfs.OpenScratch(filepath.Join(e.runDir, "scratch", id)).Remove(),
		rootfs.OpenRoot(filepath.Join(e.runDir, "roots", id)).Remove(),
		removeNetnsDir(e.netnsPath(id)),
		rootfs.OpenLayer(e.layerPath(id)).Remove())
	return errors.Join(errs...)
}

// newLock makes dir/name already locked: it is locked under a temporary
// name and renamed into place, so that no reaper can take it first.
func newLock(dir, name string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".new-")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(f.Name(), final); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// tryLock opens path and takes its lock without waiting.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
