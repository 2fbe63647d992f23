package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// sandboxStateName is the run dir's subdirectory where the engine keeps
// sandbox state: libcontainer's state, the scratch and root mount points,
// the user-namespace slot and sandbox locks, the seccomp cache.
const sandboxStateName = "sandboxes"

// sandboxStateDir returns the engine's state directory, on tmpfs. Every
// sandbox creates and removes its state there; on a journaling disk
// filesystem that costs about 2 ms per sandbox. Under systemd the run dir
// is on tmpfs already (/run); elsewhere the daemon mounts a tmpfs of its
// own there, once, and unmounts it when it stops. A daemon that crashed
// leaves it mounted, and the next one reuses it (recovery empties it).
func sandboxStateDir(runDir string, log *slog.Logger) (dir string, release func(), err error) {
	dir = filepath.Join(runDir, sandboxStateName)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	onTmpfs := func(p string) (bool, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			return false, fmt.Errorf("statfs %s: %w", p, err)
		}
		return st.Type == unix.TMPFS_MAGIC, nil
	}
	parentTmpfs, err := onTmpfs(runDir)
	if err != nil {
		return "", nil, err
	}
	if parentTmpfs {
		return dir, func() {}, nil
	}
	mounted, err := onTmpfs(dir)
	if err != nil {
		return "", nil, err
	}
	if !mounted {
		// Small: it holds state files and mount points, never user data
		// (each sandbox's /work and /tmp are tmpfs mounts of their own).
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711,size=64m"); err != nil {
			return "", nil, fmt.Errorf("mounting a tmpfs for sandbox state on %s: %w", dir, err)
		}
		log.Info("sandbox state on a tmpfs of its own", "dir", dir)
	}
	return dir, func() {
		if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			log.Warn("unmounting the sandbox state tmpfs; the next start reuses it", "dir", dir, "err", err)
		}
	}, nil
}
