package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Layer is an image build's writable layer: the upper and work
// directories of an overlay over the image, on a tmpfs of their own whose
// size bounds what a build can add (its pages are charged to the memory
// cgroup of the build's sandbox that writes them, so never host disk).
// Every sandbox of the build mounts its root as that overlay, writable, in
// turn: what one step installs, the next sees, and at the end the upper
// directory is the new layer (images.Store.Derive).
//
// The build runs as the sandbox user, never root, and the image's
// directories belong to host ids its user namespace does not map: it
// could write nowhere. So every directory of the image is made in the
// upper directory first, with the image's mode, owned by the sandbox
// user's host ids; overlayfs takes a directory's owner from its upper
// copy and merges its entries with the image's. Files of the image stay
// the image's: a step replaces one (rename, unlink) but can't write into
// it. The layer's owners are rewritten to root when it is stored.
type Layer struct {
	dir string
}

// NewLayer mounts a tmpfs of size bytes at dir (created here) and seeds
// its upper directory with image's directories owned by uid and gid (host
// ids). On error nothing is left.
func NewLayer(dir, image string, size int64, uid, gid int) (_ *Layer, err error) {
	l := &Layer{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	defer func() {
		if err != nil {
			_ = l.Remove()
		}
	}()
	data := fmt.Sprintf("size=%d,mode=0700,nr_inodes=%d", size, inodesFor(size))
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return nil, fmt.Errorf("rootfs: mounting the build layer's tmpfs: %w", err)
	}
	if err := os.Mkdir(l.work(), 0o700); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if err := seedDirs(image, l.Upper(), uid, gid); err != nil {
		return nil, err
	}
	return l, nil
}

// seedDirs makes every directory of image under upper, with its mode,
// owned by uid and gid. Symbolic links are not followed.
func seedDirs(image, upper string, uid, gid int) error {
	return filepath.WalkDir(image, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("rootfs: seeding the build layer: %w", err)
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("rootfs: seeding the build layer: %w", err)
		}
		rel, _ := filepath.Rel(image, path)
		target := filepath.Join(upper, rel)
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("rootfs: seeding the build layer: %w", err)
		}
		if err := os.Lchown(target, uid, gid); err != nil {
			return fmt.Errorf("rootfs: seeding the build layer: %w", err)
		}
		// Chmod after chown: chown clears the set-id bits.
		return os.Chmod(target, info.Mode().Perm()|info.Mode()&(fs.ModeSticky|fs.ModeSetgid))
	})
}

// OpenLayer returns the layer at dir as found on disk, for cleanup.
func OpenLayer(dir string) *Layer { return &Layer{dir: dir} }

// Upper is the overlay's upper directory: the build's changes.
func (l *Layer) Upper() string { return filepath.Join(l.dir, "upper") }

func (l *Layer) work() string { return filepath.Join(l.dir, "work") }

// Remove unmounts the tmpfs and deletes its directory; safe on a partly
// made or removed layer.
func (l *Layer) Remove() error {
	if l == nil {
		return nil
	}
	if err := unix.Unmount(l.dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rootfs: unmounting %s: %w", l.dir, err)
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("rootfs: removing %s: %w", l.dir, err)
	}
	return nil
}

// NewLayeredRoot mounts a writable overlay of image with l as its upper
// layer under dir (created here): a build step's root. One such root at a
// time may use a layer (overlayfs refuses a work directory in use).
func NewLayeredRoot(dir, image string, l *Layer) (_ *Root, err error) {
	r := &Root{dir: dir}
	if err := os.MkdirAll(r.Path(), 0o755); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	names, closeAll, err := openLayers(image, l.Upper(), l.work())
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer closeAll()
	data := "lowerdir=" + names[0] + ",upperdir=" + names[1] + ",workdir=" + names[2]
	if err := unix.Mount("overlay", r.Path(), "overlay", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("rootfs: mounting the build's root over %s: %w", filepath.Base(strings.TrimSuffix(image, "/rootfs")), err)
	}
	return r, nil
}
