package rootfs

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// detached is a scratch whose two tmpfs areas are mounts of the new mount
// API (fsopen, fsmount) that were never attached anywhere on the host:
// the daemon reaches them through its descriptors, and a run's PID 1
// moves them into the run's mount namespace. Nothing is mounted or
// unmounted on the host for them, so a run costs no host mount-table
// change and no RCU grace period of an unmount; the areas go when the
// last descriptor closes and the run's mount namespace has ended.
type detached struct {
	mounts [2]*os.File // /work and /tmp, in areas' order
}

// NewDetachedScratch makes both areas as detached mounts, owned by
// uid:gid. The returned scratch has no directory: WorkDir and TmpDir are
// paths through the descriptors (/proc/self/fd/N), good for as long as
// the scratch is not removed, and the files API (which resolves inside a
// directory of its own) is not for it.
func NewDetachedScratch(uid, gid int, sizes ScratchSizes) (_ *Scratch, err error) {
	if err := sizes.check(); err != nil {
		return nil, err
	}
	s := &Scratch{uid: uid, gid: gid, detached: &detached{}}
	defer func() {
		if err != nil {
			s.detached.close()
		}
	}()
	for i, a := range areas(sizes) {
		if s.detached.mounts[i], err = newTmpfs(a, uid, gid); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// area is one of the two tmpfs areas: its flags and its root's mode.
type area struct {
	name  string
	size  int64
	flags uintptr
	mode  string
}

func areas(sizes ScratchSizes) [2]area {
	return [2]area{
		// /work may hold programs the sandbox compiles and runs: exec allowed.
		{"work", sizes.WorkBytes, unix.MS_NOSUID | unix.MS_NODEV, "0755"},
		{"tmp", sizes.TmpBytes, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "1777"},
	}
}

// newTmpfs makes one detached tmpfs mount with the options mount(2)
// gets for a host scratch area.
func newTmpfs(a area, uid, gid int) (*os.File, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rootfs: fsopen tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	for _, o := range [][2]string{
		{"size", strconv.FormatInt(a.size, 10)}, {"mode", a.mode},
		{"uid", strconv.Itoa(uid)}, {"gid", strconv.Itoa(gid)},
		{"nr_inodes", strconv.FormatInt(inodesFor(a.size), 10)},
	} {
		if err := unix.FsconfigSetString(fsfd, o[0], o[1]); err != nil {
			return nil, fmt.Errorf("rootfs: tmpfs %s=%s: %w", o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("rootfs: creating the %s tmpfs: %w", a.name, err)
	}
	attrs := unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	if a.flags&unix.MS_NOEXEC != 0 {
		attrs |= unix.MOUNT_ATTR_NOEXEC
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return nil, fmt.Errorf("rootfs: fsmount of the %s tmpfs: %w", a.name, err)
	}
	return os.NewFile(uintptr(fd), a.name), nil
}

// path is where the daemon reaches area i: its descriptor's magic link.
func (d *detached) path(i int) string {
	return "/proc/self/fd/" + strconv.Itoa(int(d.mounts[i].Fd()))
}

// resize reconfigures the superblocks through the descriptors: a remount
// by path would need the mounts in the daemon's own mount namespace.
func (d *detached) resize(sizes ScratchSizes) error {
	for i, a := range areas(sizes) {
		fd, err := unix.Fspick(int(d.mounts[i].Fd()), "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
		if err != nil {
			return fmt.Errorf("rootfs: fspick %s: %w", a.name, err)
		}
		err = unix.FsconfigSetString(fd, "size", strconv.FormatInt(a.size, 10))
		if err == nil {
			err = unix.FsconfigSetString(fd, "nr_inodes", strconv.FormatInt(inodesFor(a.size), 10))
		}
		if err == nil {
			err = unix.FsconfigReconfigure(fd)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("rootfs: resizing %s: %w", a.name, err)
		}
	}
	return nil
}

// Mounts returns a detached scratch's two mounts, for a run's PID 1 to
// move into place; nil for a scratch mounted on the host. They stay the
// scratch's: the caller must not close them.
func (s *Scratch) Mounts() (work, tmp *os.File) {
	if s.detached == nil {
		return nil, nil
	}
	return s.detached.mounts[0], s.detached.mounts[1]
}

func (d *detached) close() {
	for i, f := range d.mounts {
		if f != nil {
			f.Close()
		}
		d.mounts[i] = nil
	}
}
