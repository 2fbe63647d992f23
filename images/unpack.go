package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// budget bounds what one image may unpack, over all its layers, so that a
// tar bomb fails cleanly instead of filling the disk: the bytes of file
// content written, the number of tar entries, and the bytes of tar stream
// read (a bomb can also be made of entries whose data is skipped).
type budget struct {
	maxBytes   int64
	maxEntries int
	maxStream  int64

	bytes   int64
	entries int
	stream  int64
}

func newBudget(maxBytes int64, maxEntries int) *budget {
	// Headers and padding take at most ~2 KiB per entry beyond the file
	// data in a sane archive; long PAX names would be the exception.
	return &budget{maxBytes: maxBytes, maxEntries: maxEntries, maxStream: maxBytes + int64(maxEntries)*2048 + 1<<20}
}

func (b *budget) entry(name string) error {
	b.entries++
	if b.entries > b.maxEntries {
		return invalidf("image has more than %d entries (at %q)", b.maxEntries, name)
	}
	return nil
}

func (b *budget) file(name string, size int64) error {
	if size < 0 || b.bytes+size > b.maxBytes {
		return invalidf("image is larger than %d bytes (at %q, %d bytes)", b.maxBytes, name, size)
	}
	b.bytes += size
	return nil
}

// limitedReader counts the tar stream against the budget and stops
// reading once the context is done.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	b   *budget
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if left := l.b.maxStream - l.b.stream; int64(len(p)) > left+1 {
		p = p[:left+1]
	}
	n, err := l.r.Read(p)
	l.b.stream += int64(n)
	if l.b.stream > l.b.maxStream {
		return n, invalidf("layer streams exceed %d bytes", l.b.maxStream)
	}
	return n, err
}

// unpacker applies layer tars to one rootfs directory. Every path is
// resolved inside the root by pathrs-lite (openat2 RESOLVE_IN_ROOT, or its
// userspace emulation): a symlink an earlier entry left in a parent
// position resolves as it would inside the sandbox, against the image
// root, never the host's. The last component is never followed: existing
// entries are unlinked and new ones created with O_EXCL|O_NOFOLLOW or the
// *at calls that don't follow.
//
// What is kept of an entry: regular files, directories, symlinks and hard
// links (to a file already in the image), with owner, permission bits
// (setuid and setgid dropped; the sticky bit kept on directories) and
// file mtimes. Dropped: device nodes and fifos (the sandbox gets its own
// /dev), and all xattrs, including security.capability and user.*: no
// sandbox program needs them, and file capabilities must not come from an
// image.
type unpacker struct {
	root   *os.File // the rootfs directory
	budget *budget
	log    *slog.Logger
	// chown is false when not running as root (tests by hand): owners are
	// then left as they are.
	chown bool
}

func newUnpacker(rootfs string, b *budget, log *slog.Logger) (*unpacker, error) {
	root, err := os.OpenFile(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &unpacker{root: root, budget: b, log: log, chown: os.Geteuid() == 0}, nil
}

func (u *unpacker) Close() error { return u.root.Close() }

// applyLayer unpacks one layer tar, honouring whiteouts against what the
// earlier layers left. It reads r until the end of the tar archive only;
// the caller drains the rest if it hashes the stream.
func (u *unpacker) applyLayer(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	// Paths (and their parents) this layer put in place: an opaque marker
	// hides what lower layers had in its directory, not the siblings the
	// same layer already wrote before the marker came in tar order.
	thisLayer := map[string]struct{}{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return streamError("reading layer", err)
		}
		if err := u.budget.entry(hdr.Name); err != nil {
			return err
		}
		p, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if p == "." {
			// The image root stays root-owned 0755 whatever the tar says:
			// it is the sandbox's "/".
			continue
		}
		dir, base := path.Dir(p), path.Base(p)
		switch kind, target := classifyWhiteout(base); kind {
		case whiteoutFile:
			if err := u.whiteout(dir, target); err != nil {
				return entryError(hdr.Name, err)
			}
			continue
		case whiteoutDir:
			if err := u.opaque(dir, thisLayer); err != nil {
				return entryError(hdr.Name, err)
			}
			continue
		case whiteoutSkip:
			continue
		}
		if err := u.apply(tr, hdr, p, dir, base); err != nil {
			return entryError(hdr.Name, err)
		}
		for q := p; q != "."; q = path.Dir(q) {
			if _, ok := thisLayer[q]; ok {
				break
			}
			thisLayer[q] = struct{}{}
		}
	}
}

// apply puts one non-whiteout entry in place.
func (u *unpacker) apply(tr *tar.Reader, hdr *tar.Header, p, dir, base string) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		u.log.Debug("skipping device node or fifo", "name", hdr.Name)
		return nil
	default:
		u.log.Debug("skipping tar entry of unsupported type", "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	parent, err := u.mkdirParent(dir)
	if err != nil {
		return err
	}
	defer parent.Close()
	pfd := int(parent.Fd())

	if hdr.Typeflag == tar.TypeDir {
		return u.mkdir(pfd, base, hdr)
	}
	if err := removeAt(pfd, base); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		if u.chown {
			if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown: %w", err)
			}
		}
		return u.setTimes(pfd, base, hdr)
	case tar.TypeLink:
		return u.link(pfd, p, base, hdr)
	default:
		return u.writeFile(tr, pfd, p, base, hdr)
	}
}

// mkdirParent returns a handle to the entry's parent directory, creating
// missing directories (0755, root-owned, like Docker) inside the root.
func (u *unpacker) mkdirParent(dir string) (*os.File, error) {
	if dir == "." {
		return u.reopenRoot()
	}
	f, err := pathrs.MkdirAllHandle(u.root, dir, 0o755)
	if err != nil {
		return nil, fmt.Errorf("parent directory %q: %w", dir, err)
	}
	return f, nil
}

// openParent returns a handle to an existing directory inside the root,
// or an error wrapping ENOENT.
func (u *unpacker) openParent(dir string) (*os.File, error) {
	if dir == "." {
		return u.reopenRoot()
	}
	return pathrs.OpenatInRoot(u.root, dir)
}

func (u *unpacker) reopenRoot() (*os.File, error) {
	fd, err := unix.Openat(int(u.root.Fd()), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), u.root.Name()), nil
}

// perm keeps the permission bits and, for directories, the sticky bit;
// setuid and setgid never make it into an image.
func perm(hdr *tar.Header, dir bool) uint32 {
	m := uint32(hdr.Mode) & 0o777
	if dir {
		m |= uint32(hdr.Mode) & unix.S_ISVTX
	}
	return m
}

func (u *unpacker) mkdir(pfd int, base string, hdr *tar.Header) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// A directory again (a later layer, or a duplicate): keep its
		// contents, take the new owner and mode.
	case err == nil:
		if err := removeAt(pfd, base); err != nil {
			return err
		}
		fallthrough
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	default:
		return fmt.Errorf("stat: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	return u.setOwnerMode(fd, hdr, true)
}

func (u *unpacker) setOwnerMode(fd int, hdr *tar.Header, dir bool) error {
	if u.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	// After chown, which would clear setuid anyway; perm drops it too.
	if err := unix.Fchmod(fd, perm(hdr, dir)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

func (u *unpacker) setTimes(pfd int, base string, hdr *tar.Header) error {
	ts := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	if hdr.ModTime.IsZero() {
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (u *unpacker) writeFile(tr *tar.Reader, pfd int, p, base string, hdr *tar.Header) error {
	if err := u.budget.file(p, hdr.Size); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	n, err := io.Copy(f, tr)
	if err != nil {
		return streamError("file data", err)
	}
	if n != hdr.Size {
		return invalidf("short file data: %d of %d bytes", n, hdr.Size)
	}
	if err := u.setOwnerMode(fd, hdr, false); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return u.setTimes(pfd, base, hdr)
}

// link makes a hard link to a file already in the image. The target is
// resolved inside the root like any other path, and its last component
// is not followed (linkat without AT_SYMLINK_FOLLOW links a symlink
// itself), so a link can only ever share an inode of this image.
func (u *unpacker) link(pfd int, p, base string, hdr *tar.Header) error {
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil {
		return err
	}
	if target == "." {
		return invalidf("hard link to the image root")
	}
	if target == p {
		return invalidf("hard link to itself")
	}
	tparent, err := u.openParent(path.Dir(target))
	if err != nil {
		return invalidf("hard link target %q is not in the image: %v", hdr.Linkname, err)
	}
	defer tparent.Close()
	tfd, tbase := int(tparent.Fd()), path.Base(target)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return invalidf("hard link target %q is not in the image: %v", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return invalidf("hard link to directory %q", hdr.Linkname)
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	return nil
}

// whiteout removes dir/target as left by lower layers.
func (u *unpacker) whiteout(dir, target string) error {
	parent, err := u.openParent(dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing there to hide
	}
	if err != nil {
		return err
	}
	defer parent.Close()
	return removeAt(int(parent.Fd()), target)
}

// opaque empties dir of everything this layer did not put there itself.
func (u *unpacker) opaque(dir string, thisLayer map[string]struct{}) error {
	parent, err := u.openParent(dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		child := n
		if dir != "." {
			child = dir + "/" + n
		}
		if _, ok := thisLayer[child]; ok {
			continue
		}
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	return nil
}

// removeAt removes name in the directory dirfd, recursively if it is a
// directory, never following a symlink. A missing name is no error.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EISDIR):
		return removeAllAt(dirfd, name)
	}
	return fmt.Errorf("remove %q: %w", name, err)
}

func removeAllAt(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", name, err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %q: %w", name, err)
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	return nil
}

// entryError names the entry in err and classes it: the filesystem
// refusing what the entry asks (ENOTDIR, ELOOP, EEXIST, EXDEV, ...) means
// a bad layer; running out of space or I/O errors are ours.
func entryError(name string, err error) error {
	if err == nil || classed(err) {
		return err
	}
	for _, e := range []error{unix.ENOSPC, unix.EDQUOT, unix.EIO, unix.EROFS, unix.ENOMEM, unix.EMFILE, unix.ENFILE} {
		if errors.Is(err, e) {
			return fmt.Errorf("tar entry %q: %w", name, err)
		}
	}
	return fmt.Errorf("%w: tar entry %q: %w", ErrInvalid, name, err)
}
