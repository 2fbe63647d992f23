package rootfs

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/errdefs"
)

// errBadTar: a tar stream that can't be read, or holds an entry the
// sandbox may not have (a device, a hard link).
var errBadTar = errdefs.New(errdefs.ErrInvalid, "bad tar archive")

// ExtractTar unpacks a tar stream, gzip-compressed or not (told by its
// magic bytes), into the directory dir (an API path, created if missing),
// as the sandbox user. The archive is hostile: an absolute name, "..",
// a control character, a hard link, a device node or FIFO, or a symlink
// whose target is absolute or climbs out of dir stops the extraction with
// an error naming the entry (what came before stays). Setuid, setgid and
// sticky bits are dropped; the content of all files is at most maxBytes.
// Every entry is made through descriptors, below dir's, never through a
// symlink, so neither the archive nor the running program can steer one
// outside. It returns the entries made and the bytes written.
func (s *Scratch) ExtractTar(dir string, r io.Reader, maxBytes int64) (entries int, bytes int64, err error) {
	rel, root, err := s.begin(dir)
	if err != nil {
		return 0, 0, err
	}
	defer root.close()
	dfd, err := s.makeDirs(root, rel)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(dfd)
	src, err := decompressed(r)
	if err != nil {
		return 0, 0, err
	}
	x := &extractor{s: s, dirfd: dfd, top: rel, max: max(maxBytes, 0)}
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return x.entries, x.bytes, x.dirTimes()
		}
		if err != nil {
			// %v: a classified error from r must not pass as the class.
			return x.entries, x.bytes, fmt.Errorf("%w: %v", errBadTar, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.entries, x.bytes, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
}

// decompressed returns r's content, gunzipped if it starts with gzip's
// magic bytes.
func decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadTar, err)
		}
		return zr, nil
	}
	return br, nil
}

type extractor struct {
	s       *Scratch
	dirfd   int    // the extraction directory
	top     string // its ScratchPath
	max     int64
	entries int
	bytes   int64
	// dirs are the directory entries with an mtime, in tar order: set at
	// the end, since making what is inside a directory changes its mtime.
	dirs []timedDir
}

type timedDir struct {
	name  string
	mtime time.Time
}

// entry makes one archive entry, or refuses it; the caller names the
// entry in the error.
func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // defaults for later entries, which the reader applied
	}
	name, err := tarEntryName(hdr.Name)
	if err != nil {
		return fmt.Errorf("%w: the name %s", ErrBadPath, err)
	}
	refuse := func(why string) error { return fmt.Errorf("%w: %s", errBadTar, why) }
	if name == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil // "./": the extraction directory itself
		}
		return refuse("names the extraction directory itself")
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, hdr)
	case tar.TypeReg:
		return x.file(name, hdr, body)
	case tar.TypeSymlink:
		if err := checkLinkTarget(name, hdr.Linkname); err != nil {
			return fmt.Errorf("%w: symlink target %q %s", ErrBadPath, hdr.Linkname, err)
		}
		return x.symlink(name, hdr)
	case tar.TypeLink:
		return refuse("hard links are not supported")
	case tar.TypeChar, tar.TypeBlock:
		return refuse("device nodes are not allowed")
	case tar.TypeFifo:
		return refuse("FIFOs are not allowed")
	}
	return refuse(fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
}

// tarEntryName checks an entry's name as ScratchPath checks a relative
// path, after dropping what tars commonly carry: a leading "./", a
// trailing "/". "" is the extraction directory itself.
func tarEntryName(n string) (string, error) {
	switch {
	case len(n) > maxPathBytes:
		return "", fmt.Errorf("is longer than %d bytes", maxPathBytes)
	case strings.ContainsFunc(n, isControl):
		return "", errors.New("contains a control character")
	case path.IsAbs(n):
		return "", errors.New("is absolute")
	}
	n = strings.TrimSuffix(strings.TrimPrefix(n, "./"), "/")
	if n == "" || n == "." {
		return "", nil
	}
	return n, checkSegments(n)
}

// checkLinkTarget refuses a symlink target that is absolute or climbs
// above the extraction directory. The kernel resolves "a/.." through a,
// so if a were itself a link to ".", "a/../.." would climb a level more
// than it reads: ".." is allowed only as a leading run, which climbs the
// link's real parent directories (made below the extraction directory,
// never through a link), and no more of them than there are.
func checkLinkTarget(name, target string) error {
	switch {
	case target == "":
		return errors.New("is empty")
	case len(target) >= maxPathBytes:
		return fmt.Errorf("is longer than %d bytes", maxPathBytes-1)
	case strings.ContainsFunc(target, isControl):
		return errors.New("contains a control character")
	case path.IsAbs(target):
		return errors.New("is absolute")
	}
	up, named := 0, false
	for seg := range strings.SplitSeq(target, "/") {
		switch {
		case seg == ".." && named:
			return errors.New(`has ".." after a name`)
		case seg == "..":
			up++
		case seg != "" && seg != ".":
			named = true
		}
	}
	if up > strings.Count(name, "/") {
		return errors.New("escapes the directory")
	}
	return nil
}

func (x *extractor) api(name string) string { return APIPath(path.Join(x.top, name)) }

// parent opens the directory an entry goes in, making it as needed, and
// returns it with the entry's last segment.
func (x *extractor) parent(name string) (int, string, error) {
	dir, base := path.Split(name)
	var segs []string
	if dir != "" {
		segs = strings.Split(strings.TrimSuffix(dir, "/"), "/")
	}
	fd, err := x.s.mkdirsAt(x.dirfd, x.top, segs)
	return fd, base, err
}

func (x *extractor) dir(name string, hdr *tar.Header) error {
	fd, err := x.s.mkdirsAt(x.dirfd, x.top, strings.Split(name, "/"))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	perm := uint32(hdr.Mode & 0o777)
	if perm == 0 {
		perm = 0o755
	}
	if err := x.s.own(fd, perm); err != nil {
		return mapErr(x.api(name), err)
	}
	if !hdr.ModTime.IsZero() {
		x.dirs = append(x.dirs, timedDir{name, hdr.ModTime})
	}
	x.entries++
	return nil
}

// setTime gives the entry base of the directory pfd the tar's mtime.
// Never through a link the program may have put there meanwhile; on what
// it may have put there instead, harmless.
func (x *extractor) setTime(pfd int, base, name string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return mapErr(x.api(name), err)
	}
	return nil
}

// dirTimes sets the directories' mtimes, deepest last-listed first, so
// that setting one does not disturb another.
func (x *extractor) dirTimes() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		pfd, base, err := x.parent(d.name)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", d.name, err)
		}
		err = x.setTime(pfd, base, d.name, d.mtime)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", d.name, err)
		}
	}
	return nil
}

func (x *extractor) file(name string, hdr *tar.Header, body io.Reader) error {
	left := x.max - x.bytes
	if hdr.Size > left {
		return fmt.Errorf("%s: %w (over %d bytes in all)", x.api(name), errTooBig, x.max)
	}
	pfd, base, err := x.parent(name)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	// Perm drops setuid, setgid and sticky bits.
	_, n, err := x.s.createFile(pfd, base, x.api(name), body, fs.FileMode(hdr.Mode).Perm(), left)
	x.bytes += n
	if err != nil {
		return err
	}
	if !hdr.ModTime.IsZero() {
		// The tar's mtime, for tools that compare times (make).
		if err := x.setTime(pfd, base, name, hdr.ModTime); err != nil {
			return err
		}
	}
	x.entries++
	return nil
}

// symlink makes a symlink with a checked target, replacing a file or link
// of that name (as tar does) but never a directory.
func (x *extractor) symlink(name string, hdr *tar.Header) error {
	target := hdr.Linkname
	pfd, base, err := x.parent(name)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	err = unix.Symlinkat(target, pfd, base)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			// unlinkat without AT_REMOVEDIR fails on a directory (EISDIR).
			err = unix.Unlinkat(pfd, base, 0)
		}
		if err == nil {
			err = unix.Symlinkat(target, pfd, base)
		}
	}
	if err == nil {
		// If the program replaced the link meanwhile, this gives the
		// sandbox user what is there, which it could make anyway.
		err = unix.Fchownat(pfd, base, x.s.uid, x.s.gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return mapErr(x.api(name), err)
	}
	if !hdr.ModTime.IsZero() {
		if err := x.setTime(pfd, base, name, hdr.ModTime); err != nil {
			return err
		}
	}
	x.entries++
	return nil
}

// WriteTar writes the directory or single file p as an uncompressed tar,
// names relative to p (a single file is named by its last segment).
// Symlinks are stored as symlinks, never followed; FIFOs, devices and
// sockets are skipped. Files are read through descriptors opened below
// their directory's; one that shrinks while read is padded with zeros so
// the archive stays well formed.
func (s *Scratch) WriteTar(p string, w io.Writer) error {
	rel, root, err := s.begin(p)
	if err != nil {
		return err
	}
	defer root.close()
	tw := tar.NewWriter(w)
	if err := tarPath(root, rel, tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("rootfs: writing tar: %w", err)
	}
	return nil
}

func tarPath(root *scratchRoot, rel string, tw *tar.Writer) error {
	// Resolve once, looking without opening; a symlink on the way is
	// refused here, a final one is archived as itself below.
	fd, st, err := root.open(rel, unix.O_PATH, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		dfd, err := openBelow(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return mapErr(APIPath(rel), err)
		}
		w := walker{top: rel, recursive: true, left: -1,
			visit: func(dirfd int, name, sub string, st *unix.Stat_t) error {
				return tarEntry(tw, dirfd, name, sub, st)
			}}
		return w.walk(dfd, "", 0)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFLNK {
		return fmt.Errorf("%s: %w", APIPath(rel), ErrNotRegular)
	}
	// A single file or symlink (never /work or /tmp, which are
	// directories): its entry is made from its parent, as in a tree.
	dir, base := path.Split(rel)
	pfd, err := root.openDirPath(strings.TrimSuffix(dir, "/"), false)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return mapErr(APIPath(rel), err)
	}
	return tarEntry(tw, pfd, base, base, &st)
}

// tarEntry writes the entry name of the directory dirfd, as tarName.
func tarEntry(tw *tar.Writer, dirfd int, name, tarName string, st *unix.Stat_t) error {
	hdr := &tar.Header{Name: tarName, Mode: int64(st.Mode & 0o777), ModTime: time.Unix(st.Mtim.Sec, 0)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, tarName+"/"
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if replaced(err) || errors.Is(err, unix.EINVAL) {
			return nil // gone, or no longer a symlink, since listed
		}
		if err != nil {
			return fmt.Errorf("rootfs: reading symlink %s: %w", tarName, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
	case unix.S_IFREG:
		return tarFile(tw, dirfd, name, hdr)
	default:
		return nil // a FIFO, socket or device: no content to give
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("rootfs: writing tar: %w", err)
	}
	return nil
}

// tarFile writes a regular file's entry, its header from the fstat of
// the descriptor that is read, so both describe the same file.
func tarFile(tw *tar.Writer, dirfd int, name string, hdr *tar.Header) error {
	// O_NONBLOCK: the program may have put a FIFO there since the listing.
	fd, err := openBelow(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if replaced(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rootfs: opening %s: %w", hdr.Name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil // replaced by something without content
	}
	_ = unix.SetNonblock(fd, false) // a regular file: see OpenFile
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	hdr.Mode, hdr.ModTime = int64(st.Mode&0o777), time.Unix(st.Mtim.Sec, 0)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("rootfs: writing tar: %w", err)
	}
	n, err := io.Copy(tw, io.LimitReader(f, st.Size))
	if err == nil && n < st.Size {
		// Shrunk while read: zeros keep the entry the size its header says.
		_, err = io.CopyN(tw, zeros{}, st.Size-n)
	}
	if err != nil {
		return fmt.Errorf("rootfs: writing tar: %s: %w", hdr.Name, err)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
