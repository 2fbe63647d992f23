package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is a sandbox's own read-only view of a shared image: an overlayfs
// mount whose only layers are the image and an empty directory. Its files
// are the image's, but its inodes are the sandbox's own, so state the
// kernel keeps per inode (flock and POSIX locks, leases, inotify) is not
// shared between sandboxes of one image, which would otherwise be a
// channel between them. Nothing is copied: the image stays shared.
type Root struct {
	dir string
}

// NewRoot mounts the overlay for image under dir (created here). ok is
// false, with no error, when the kernel has no overlayfs: the caller then
// uses the image directly and its sandboxes share lock state.
func NewRoot(dir, image string) (_ *Root, ok bool, err error) {
	r := &Root{dir: dir}
	if err := os.MkdirAll(r.empty(), 0o755); err != nil {
		return nil, false, fmt.Errorf("rootfs: %w", err)
	}
	if err := os.Mkdir(r.Path(), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, false, fmt.Errorf("rootfs: %w", err)
	}
	// Two lower layers and no upper make a read-only overlay. The layers
	// are named through descriptors: overlayfs shows its options, lowerdir
	// among them, in the sandbox's /proc/self/mountinfo, and
	// "/proc/self/fd/7" says nothing of the host's directories.
	lower, closeLower, err := openLayers(image, r.empty())
	if err != nil {
		return nil, false, err
	}
	defer closeLower()
	data := "lowerdir=" + strings.Join(lower, ":")
	if err := unix.Mount("overlay", r.Path(), "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		_ = os.RemoveAll(dir)
		if errors.Is(err, unix.ENODEV) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("rootfs: mounting the sandbox's view of %s: %w", image, err)
	}
	return r, true, nil
}

// openLayers opens each directory as an O_PATH descriptor and returns the
// /proc/self/fd names of them, with the function that closes them.
func openLayers(dirs ...string) ([]string, func(), error) {
	var fds []int
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("rootfs: opening layer %s: %w", d, err)
		}
		fds = append(fds, fd)
		names = append(names, "/proc/self/fd/"+strconv.Itoa(fd))
	}
	return names, closeAll, nil
}

// OpenRoot returns the root at dir as found on disk, for cleanup.
func OpenRoot(dir string) *Root { return &Root{dir: dir} }

// Path is the mount point: the sandbox's root directory.
func (r *Root) Path() string { return filepath.Join(r.dir, "root") }

func (r *Root) empty() string { return filepath.Join(r.dir, "empty") }

// Remove unmounts the overlay and deletes its directories.
func (r *Root) Remove() error {
	if r == nil {
		return nil
	}
	if err := unix.Unmount(r.Path(), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rootfs: unmounting %s: %w", r.Path(), err)
	}
	return os.RemoveAll(r.dir)
}
