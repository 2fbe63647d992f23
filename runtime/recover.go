package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/rootfs"
)

// Recovered counts what Recover removed.
type Recovered struct {
	Sandboxes, Cgroups, Scratch int
}

// Recover removes everything an earlier sandboxd with the same run dir and
// cgroup parent left behind when it died: sandbox processes, their state,
// cgroups and scratch mounts. Call it only while no other sandboxd uses the
// run dir (the daemon holds a lock on it), before building any sandbox.
func (e *Engine) Recover(ctx context.Context) (Recovered, error) {
	var rec Recovered
	var errs []error
	containers := filepath.Join(e.runDir, "containers")
	entries, _ := os.ReadDir(containers)
	for _, ent := range entries {
		if ctx.Err() != nil {
			return rec, ctx.Err()
		}
		c, err := libcontainer.Load(containers, ent.Name())
		if err == nil {
			_ = c.Signal(unix.SIGKILL)
			err = c.Destroy()
		}
		// Whatever libcontainer could not load or destroy, remove by hand;
		// the cgroups are swept below.
		if rmErr := os.RemoveAll(filepath.Join(containers, ent.Name())); rmErr != nil {
			errs = append(errs, rmErr)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("recovering sandbox %s: %w", ent.Name(), err))
		}
		rec.Sandboxes++
	}
	n, err := e.parent.RemoveStale()
	rec.Cgroups = n
	if err != nil {
		errs = append(errs, err)
	}
	scratch := filepath.Join(e.runDir, "scratch")
	entries, _ = os.ReadDir(scratch)
	for _, ent := range entries {
		if err := rootfs.OpenScratch(filepath.Join(scratch, ent.Name())).Remove(); err != nil {
			errs = append(errs, err)
			continue
		}
		rec.Scratch++
	}
	roots := filepath.Join(e.runDir, "roots")
	entries, _ = os.ReadDir(roots)
	for _, ent := range entries {
		if err := rootfs.OpenRoot(filepath.Join(roots, ent.Name())).Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	return rec, errors.Join(errs...)
}
