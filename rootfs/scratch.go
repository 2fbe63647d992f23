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
	// detached, when set, holds the two areas instead of dir
	// (NewDetachedScratch).
	detached *detached
}

// ScratchSizes are the sizes of the two areas.
type ScratchSizes struct {
	WorkBytes, TmpBytes int64
}

func (z ScratchSizes) check() error {
	if z.WorkBytes <= 0 || z.TmpBytes <= 0 {
		return errors.New("rootfs: scratch sizes must be greater than zero")
	}
	return nil
}

// NewScratch creates dir and mounts both areas under it, owned by uid:gid.
// On error nothing is left mounted.
func NewScratch(dir string, uid, gid int, sizes ScratchSizes) (_ *Scratch, err error) {
	if err := sizes.check(); err != nil {
		return nil, err
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
	for _, a := range areas(sizes) {
		if err := s.mount(a); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// WorkDir is the host path of /work.
func (s *Scratch) WorkDir() string {
	if s.detached != nil {
		return s.detached.path(0)
	}
	return filepath.Join(s.dir, "work")
}

// TmpDir is the host path of /tmp.
func (s *Scratch) TmpDir() string {
	if s.detached != nil {
		return s.detached.path(1)
	}
	return filepath.Join(s.dir, "tmp")
}

func (s *Scratch) mount(a area) error {
	target := filepath.Join(s.dir, a.name)
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("rootfs: %w", err)
	}
	data := fmt.Sprintf("size=%d,mode=%s,uid=%d,gid=%d,nr_inodes=%d", a.size, a.mode, s.uid, s.gid, inodesFor(a.size))
	if err := unix.Mount("tmpfs", target, "tmpfs", a.flags, data); err != nil {
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
	if s.detached != nil {
		return s.detached.resize(sizes)
	}
	for _, a := range areas(sizes) {
		dir := filepath.Join(s.dir, a.name)
		data := fmt.Sprintf("size=%d,nr_inodes=%d", a.size, inodesFor(a.size))
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|a.flags, data); err != nil {
			return fmt.Errorf("rootfs: resizing %s: %w", dir, err)
		}
	}
	return nil
}

// Remove unmounts both areas and deletes the directory; a detached
// scratch's descriptors are closed. It is safe to call on a partly built
// or already removed scratch.
func (s *Scratch) Remove() error {
	if s.detached != nil {
		s.detached.close()
		return nil
	}
	var errs []error
	for _, d := range []string{s.WorkDir(), s.TmpDir()} {
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rootfs: unmounting %s: %w", d, err))
		}
	}
	if len(errs) == 0 {
		// Only now is it safe to delete: nothing of a tmpfs remains below.
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("rootfs: removing %s: %w", s.dir, err))
		}
	}
	return errors.Join(errs...)
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
