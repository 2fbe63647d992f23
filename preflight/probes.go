package preflight

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// realProbes try the calls for real, harmlessly.
type realProbes struct{ dir string }

// mountTmpfs mounts a tiny tmpfs on a fresh directory of dir and removes
// both: what every sandbox's /work and /tmp take.
func (p realProbes) mountTmpfs() error {
	d, err := os.MkdirTemp(p.dir, ".preflight-")
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	defer os.Remove(d)
	if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k"); err != nil {
		return err
	}
	return unix.Unmount(d, unix.MNT_DETACH)
}

// keyctl asks for the session keyring's id without creating one.
func (realProbes) keyctl() error {
	_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	return err
}

// pivotRoot with empty paths: the kernel answers ENOENT once past its
// permission check; a seccomp filter answers EPERM before.
func (realProbes) pivotRoot() error { return unix.PivotRoot("", "") }
