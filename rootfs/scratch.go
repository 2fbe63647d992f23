package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Scratch is the pair of host-side tmpfs mounts behind a sandbox's /work
// and /tmp. Being tmpfs, filling them costs memory (charged to the writer's
// cgroup) and never host disk; being sized mounts, a full one gives ENOSPC.
type Scratch struct {
	dir      string
	uid, gid int
}

// ScratchSizes are the sizes of the two areas.
type ScratchSizes struct {
	WorkBytes, TmpBytes int64
}

// NewScratch creates dir, or takes it as Unmount left it, and mounts both
// areas under it, owned by uid:gid. On error nothing is left mounted.
func NewScratch(dir string, uid, gid int, sizes ScratchSizes) (_ *Scratch, err error) {
	if sizes.WorkBytes <= 0 || sizes.TmpBytes <= 0 {
		return nil, errors.New("rootfs: scratch sizes must be greater than zero")
	}
	s := &Scratch{dir: dir, uid: uid, gid: gid}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rootfs: creating scratch dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.Remove()
		}
	}()
	// /work may hold programs the sandbox compiles and runs: exec allowed.
	if err := s.mount(s.WorkDir(), sizes.WorkBytes, unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return nil, err
	}
	if err := s.mount(s.TmpDir(), sizes.TmpBytes, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return nil, err
	}
	return s, nil
}

// WorkDir is the host path of /work.
func (s *Scratch) WorkDir() string { return filepath.Join(s.dir, "work") }

// TmpDir is the host path of /tmp.
func (s *Scratch) TmpDir() string { return filepath.Join(s.dir, "tmp") }

func (s *Scratch) mount(target string, size int64, flags uintptr) error {
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("rootfs: %w", err)
	}
	mode := "0755"
	if target == s.TmpDir() {
		mode = "1777"
	}
	data := fmt.Sprintf("size=%d,mode=%s,uid=%d,gid=%d,nr_inodes=%d", size, mode, s.uid, s.gid, inodesFor(size))
	if err := unix.Mount("tmpfs", target, "tmpfs", flags, data); err != nil {
		return fmt.Errorf("rootfs: mounting tmpfs at %s: %w", target, err)
	}
	return nil
}

// inodesFor bounds inodes too, so a sandbox can't exhaust kernel memory with
// millions of empty files in a "64 MiB" tmpfs: one inode per 4 KiB, at
// least 1024.
func inodesFor(size int64) int64 { return max(size/4096, 1024) }

// Resize changes the sizes of both areas; used when a sandbox built ahead of
// time is given a request's limits.
func (s *Scratch) Resize(sizes ScratchSizes) error {
	for _, m := range []struct {
		dir   string
		size  int64
		flags uintptr
		mode  string
	}{
		{s.WorkDir(), sizes.WorkBytes, unix.MS_NOSUID | unix.MS_NODEV, "0755"},
		{s.TmpDir(), sizes.TmpBytes, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "1777"},
	} {
		data := fmt.Sprintf("size=%d,nr_inodes=%d", m.size, inodesFor(m.size))
		if err := unix.Mount("", m.dir, "", unix.MS_REMOUNT|m.flags, data); err != nil {
			return fmt.Errorf("rootfs: resizing %s: %w", m.dir, err)
		}
	}
	return nil
}

// Unmount unmounts both areas and keeps the directory, with its two empty
// mount points, for the next NewScratch at the same place: a reusable
// sandbox mounts a new pair there for every run, and making and deleting
// three directories each time cost as much as a mount. It is safe to call
// on a partly built or already unmounted scratch.
func (s *Scratch) Unmount() error {
	var errs []error
	for _, d := range []string{s.WorkDir(), s.TmpDir()} {
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rootfs: unmounting %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// Remove unmounts both areas and deletes the directory. It is safe to call
// on a partly built or already removed scratch.
func (s *Scratch) Remove() error {
	if err := s.Unmount(); err != nil {
		return err
	}
	// Only now is it safe to delete: nothing of a tmpfs remains below.
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("rootfs: removing %s: %w", s.dir, err)
	}
	return nil
}

// OpenScratch returns the scratch area at dir as found on disk, for
// removing what a crashed sandboxd left.
func OpenScratch(dir string) *Scratch { return &Scratch{dir: dir} }

// Used returns the bytes in use in /work and /tmp (tmpfs counts pages).
func (s *Scratch) Used() (work, tmp int64, err error) {
	var out [2]int64
	for i, d := range []string{s.WorkDir(), s.TmpDir()} {
		var st unix.Statfs_t
		if err := unix.Statfs(d, &st); err != nil {
			return 0, 0, fmt.Errorf("rootfs: statfs %s: %w", d, err)
		}
		out[i] = int64(st.Blocks-st.Bfree) * st.Bsize
	}
	return out[0], out[1], nil
}
