package rootfs

// The files API of a long-lived sandbox. The scratch areas belong to a
// program that runs while these functions do and races them: between two
// system calls any directory may become a symlink to "/", any file a FIFO.
// So nothing here checks a path and then opens it by name: every path is
// resolved by openat2 from a handle on the scratch dir, with
// RESOLVE_IN_ROOT (the sandbox's own view: its "/work/x" and "/etc" both
// resolve inside the scratch dir, and "/etc" there is nothing) and, unless
// the caller asks to follow symlinks, RESOLVE_NO_SYMLINKS. Everything after
// that acts on the descriptors it got (fstat, mkdirat, unlinkat, fchown).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/errdefs"
)

// EntryType is what a path names.
type EntryType string

// The entry types; "other" is a FIFO, socket or device node.
const (
	EntryFile    EntryType = "file"
	EntryDir     EntryType = "dir"
	EntrySymlink EntryType = "symlink"
	EntryOther   EntryType = "other"
)

// Entry describes one file of a scratch area.
type Entry struct {
	Path    string // the API path, "/work/a/b"
	Name    string // the last segment
	Type    EntryType
	Size    int64 // a file's size, a symlink's target length; 0 otherwise
	Mode    fs.FileMode
	ModTime time.Time
}

// Errors of the files API; each is wrapped with the path it is about.
var (
	ErrNotFound   = errdefs.New(errdefs.ErrNotFound, "no such file or directory")
	ErrSymlink    = errdefs.New(errdefs.ErrInvalid, "is a symbolic link (not followed)")
	ErrNotRegular = errdefs.New(errdefs.ErrInvalid, "not a regular file or directory")
	ErrIsDir      = errdefs.New(errdefs.ErrInvalid, "is a directory")
	ErrNotDir     = errdefs.New(errdefs.ErrInvalid, "not a directory")
	ErrNotEmpty   = errdefs.New(errdefs.ErrConflict, "directory not empty")
	ErrNoSpace    = errdefs.New(errdefs.ErrNoSpace, "no space left in the sandbox")
)

var (
	errTooBig    = errdefs.New(errdefs.ErrTooLarge, "content over the size limit")
	errTooMany   = errdefs.New(errdefs.ErrTooLarge, "too many entries")
	errTooDeep   = errdefs.New(errdefs.ErrTooLarge, "directory tree too deep")
	errBusy      = errdefs.New(errdefs.ErrConflict, "file is busy (being executed)")
	errOutside   = errdefs.New(errdefs.ErrNotFound, "resolves outside /work and /tmp")
	errKeptAdded = errdefs.New(errdefs.ErrConflict, "directory keeps being refilled")
)

// maxDepth bounds how deep a walk descends: each level holds a descriptor
// open, and a program can nest directories far deeper than any path.
const maxDepth = 512

// Stat describes what p names, without following a final symlink unless
// follow.
func (s *Scratch) Stat(p string, follow bool) (Entry, error) {
	rel, root, err := s.begin(p)
	if err != nil {
		return Entry{}, err
	}
	defer root.close()
	// O_PATH opens nothing: a FIFO or device is looked at, not opened.
	fd, st, err := root.open(rel, unix.O_PATH, follow)
	if err != nil {
		return Entry{}, err
	}
	unix.Close(fd)
	return entryOf(APIPath(rel), &st), nil
}

// OpenFile opens the regular file p for reading. A directory is ErrIsDir
// (callers then List), a symlink ErrSymlink unless follow, a FIFO, device
// or socket ErrNotRegular. The file is at offset 0 and Entry.Size is its
// size at open time; the program may still be writing it, so a caller
// sending it should send Size bytes (reads never block, and end at the
// current end of file).
func (s *Scratch) OpenFile(p string, follow bool) (*os.File, Entry, error) {
	rel, root, err := s.begin(p)
	if err != nil {
		return nil, Entry{}, err
	}
	defer root.close()
	api := APIPath(rel)
	// Look through an O_PATH handle first, so that anything but a regular
	// file is refused without ever having been opened.
	fd, st, err := root.open(rel, unix.O_PATH, follow)
	if err != nil {
		return nil, Entry{}, err
	}
	unix.Close(fd)
	if err := notRegular(api, &st); err != nil {
		return nil, Entry{}, err
	}
	// The path is resolved again and may name a FIFO by now: O_NONBLOCK
	// keeps that open from waiting for a writer, and fstat refuses it.
	fd, st, err = root.open(rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, follow)
	if err != nil {
		return nil, Entry{}, err
	}
	if err := notRegular(api, &st); err != nil {
		unix.Close(fd)
		return nil, Entry{}, err
	}
	// A regular file never blocks; a blocking descriptor keeps os.File
	// from trying to register it with the poller.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, Entry{}, fmt.Errorf("rootfs: %s: %w", api, err)
	}
	return os.NewFile(uintptr(fd), api), entryOf(api, &st), nil
}

// List lists the directory p, sorted by name; recursive adds everything
// below, depth first, never following a symlink below p. Past maxEntries
// entries (maxEntries <= 0 means the collector's bound, 100000) it is an
// error of class ErrTooLarge rather than a silently short list.
func (s *Scratch) List(p string, recursive, follow bool, maxEntries int) ([]Entry, error) {
	rel, root, err := s.begin(p)
	if err != nil {
		return nil, err
	}
	defer root.close()
	fd, err := root.openDir(rel, follow)
	if err != nil {
		return nil, err
	}
	if maxEntries <= 0 {
		maxEntries = maxWalk
	}
	var out []Entry
	w := walker{top: rel, recursive: recursive, left: maxEntries,
		visit: func(_ int, _, sub string, st *unix.Stat_t) error {
			out = append(out, entryOf(APIPath(path.Join(rel, sub)), st))
			return nil
		}}
	if err := w.walk(fd, "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// WriteFile creates or replaces the regular file p with r's content, at
// most maxBytes of it, making missing parent directories. Mode keeps the
// permission bits only; 0 means 0644. On any failure after the file was
// created (a full area, too much content, a broken upload) the partial
// file is removed.
func (s *Scratch) WriteFile(p string, r io.Reader, mode fs.FileMode, maxBytes int64) (Entry, error) {
	rel, root, err := s.begin(p)
	if err != nil {
		return Entry{}, err
	}
	defer root.close()
	api := APIPath(rel)
	if !strings.Contains(rel, "/") {
		return Entry{}, fmt.Errorf("%s: %w", api, ErrIsDir)
	}
	dir, base := path.Split(rel)
	pfd, err := s.makeDirs(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return Entry{}, err
	}
	defer unix.Close(pfd)
	st, _, err := s.createFile(pfd, base, api, r, mode, maxBytes)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(api, &st), nil
}

// RemovePath removes a file, a symlink (never its target) or an empty
// directory; recursive removes a whole tree. /work and /tmp themselves
// can't be removed.
func (s *Scratch) RemovePath(p string, recursive bool) error {
	rel, root, err := s.begin(p)
	if err != nil {
		return err
	}
	defer root.close()
	api := APIPath(rel)
	if !strings.Contains(rel, "/") {
		return fmt.Errorf("%w: %s itself can't be removed", ErrBadPath, api)
	}
	dir, base := path.Split(rel)
	pfd, err := root.openDirPath(strings.TrimSuffix(dir, "/"), false)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	// unlinkat without AT_REMOVEDIR removes whatever non-directory is
	// there, following nothing; only a directory makes it fail (EISDIR).
	err = unix.Unlinkat(pfd, base, 0)
	if !errors.Is(err, unix.EISDIR) {
		return mapErr(api, err)
	}
	if recursive {
		return mapErr(api, removeTree(pfd, base, 0))
	}
	return mapErr(api, unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR))
}

// removeTree removes the directory name below dirfd and all it holds,
// through descriptors only. The program may add files meanwhile: a few
// rounds are tried, then it gives up rather than race forever.
func removeTree(dirfd int, name string, depth int) error {
	for round := 0; ; round++ {
		err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			return err
		}
		switch {
		case round == 8:
			return errKeptAdded
		case depth >= maxDepth:
			return errTooDeep
		}
		fd, err := openBelow(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		if err := emptyDir(fd, depth); err != nil {
			return err
		}
	}
}

// emptyDir removes everything in the directory fd, which it closes.
func emptyDir(fd int, depth int) error {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		err := unix.Unlinkat(fd, n, 0)
		if errors.Is(err, unix.EISDIR) {
			err = removeTree(fd, n, depth+1)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

// begin maps p and opens the scratch dir, the start of every operation.
func (s *Scratch) begin(p string) (string, *scratchRoot, error) {
	rel, err := ScratchPath(p)
	if err != nil {
		return "", nil, err
	}
	root, err := s.openRoot()
	if err != nil {
		return "", nil, err
	}
	return rel, root, nil
}

// scratchRoot is a handle on the scratch dir, which holds exactly work and
// tmp, and the devices of those two mounts.
type scratchRoot struct {
	fd   int
	devs [2]uint64
}

func (s *Scratch) openRoot() (*scratchRoot, error) {
	if s.detached != nil {
		return nil, errors.New("rootfs: a detached scratch has no directory to resolve in")
	}
	// s.dir and its two entries are the daemon's: the sandbox sees only
	// what is inside the mounts, so a plain open is safe here.
	fd, err := unix.Open(s.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: opening scratch dir: %w", err)
	}
	r := &scratchRoot{fd: fd}
	for i, name := range []string{"work", "tmp"} {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("rootfs: scratch dir: %w", err)
		}
		r.devs[i] = st.Dev
	}
	return r, nil
}

func (r *scratchRoot) close() { unix.Close(r.fd) }

// open resolves rel (a ScratchPath) inside the scratch dir and fstats what
// it got. Without follow no symlink is crossed at all and a final one is
// opened itself (with O_PATH) or refused (ELOOP). With follow, symlinks
// resolve as in the sandbox, and the device check refuses what lands on
// the scratch dir itself (a link to "/"), which is not the sandbox's.
func (r *scratchRoot) open(rel string, flags uint64, follow bool) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	resolve := uint64(unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS)
	if !follow {
		flags |= unix.O_NOFOLLOW
		resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	api := APIPath(rel)
	fd, err := openat2(r.fd, rel, flags, 0, resolve)
	if err != nil {
		return -1, st, mapErr(api, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, mapErr(api, err)
	}
	if st.Dev != r.devs[0] && st.Dev != r.devs[1] {
		unix.Close(fd)
		return -1, st, fmt.Errorf("%s: %w", api, errOutside)
	}
	return fd, st, nil
}

// openDirPath opens the directory rel as an O_PATH handle, a base for
// *at calls. The fstat tells a final symlink (ErrSymlink) and a file
// (ErrNotDir) apart, which O_DIRECTORY alone would not.
func (r *scratchRoot) openDirPath(rel string, follow bool) (int, error) {
	fd, st, err := r.open(rel, unix.O_PATH, follow)
	if err != nil {
		return -1, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fd, nil
	case unix.S_IFLNK:
		err = ErrSymlink
	default:
		err = ErrNotDir
	}
	unix.Close(fd)
	return -1, fmt.Errorf("%s: %w", APIPath(rel), err)
}

// openDir opens the directory rel for reading: "." below its O_PATH
// handle, so rel is not resolved a second time.
func (r *scratchRoot) openDir(rel string, follow bool) (int, error) {
	fd, err := r.openDirPath(rel, follow)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	dfd, err := openBelow(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, mapErr(APIPath(rel), err)
	}
	return dfd, nil
}

// openBelow opens the single name in the directory dirfd, following no
// symlink and crossing no mount.
func openBelow(dirfd int, name string, flags, mode uint64) (int, error) {
	return openat2(dirfd, name, flags|unix.O_NOFOLLOW, mode,
		unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_NO_XDEV)
}

// openat2 retries what the kernel asks to retry: EAGAIN when a rename
// raced a resolution confined to a root. A program renaming in a loop
// must not keep the daemon here, so the retries are bounded.
func openat2(dirfd int, name string, flags, mode, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolve}
	var err error
	for range 64 {
		var fd int
		fd, err = unix.Openat2(dirfd, name, &how)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}
	return -1, err
}

// mapErr puts a system call's error into the files API's classes, naming
// api, the path it is about. Errors that mean "the sandbox's own doing"
// get a class; the rest are the daemon's failures.
func mapErr(api string, err error) error {
	if err == nil {
		return nil
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		if errdefs.Class(err) != errdefs.ErrInternal {
			return prefixed(api, err)
		}
		return fmt.Errorf("rootfs: %s: %w", api, err)
	}
	switch errno {
	case unix.ENOENT:
		return fmt.Errorf("%s: %w", api, ErrNotFound)
	case unix.ELOOP:
		return fmt.Errorf("%s: %w", api, ErrSymlink)
	case unix.ENOTDIR:
		return fmt.Errorf("%s: %w", api, ErrNotDir)
	case unix.EISDIR:
		return fmt.Errorf("%s: %w", api, ErrIsDir)
	case unix.ENXIO, unix.ENODEV, unix.EXDEV:
		return fmt.Errorf("%s: %w", api, ErrNotRegular)
	case unix.ENOTEMPTY, unix.EEXIST:
		return fmt.Errorf("%s: %w", api, ErrNotEmpty)
	case unix.ENOSPC, unix.EDQUOT:
		return fmt.Errorf("%s: %w", api, ErrNoSpace)
	case unix.ENAMETOOLONG:
		return fmt.Errorf("%w: %s is too long", ErrBadPath, api)
	case unix.ETXTBSY:
		return fmt.Errorf("%s: %w", api, errBusy)
	}
	return fmt.Errorf("rootfs: %s: %w", api, err)
}

// prefixed names api in an already classified error (or passes nil).
func prefixed(api string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", api, err)
}

// notRegular is nil for a regular file and the API's error otherwise.
func notRegular(api string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFDIR:
		return fmt.Errorf("%s: %w", api, ErrIsDir)
	case unix.S_IFLNK:
		return fmt.Errorf("%s: %w", api, ErrSymlink)
	}
	return fmt.Errorf("%s: %w", api, ErrNotRegular)
}

func entryOf(api string, st *unix.Stat_t) Entry {
	e := Entry{Path: api, Name: path.Base(api), Size: st.Size,
		Mode: fs.FileMode(st.Mode & 0o777), ModTime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = EntryFile
	case unix.S_IFLNK:
		e.Type = EntrySymlink
	case unix.S_IFDIR:
		e.Type, e.Size = EntryDir, 0
	default:
		e.Type, e.Size = EntryOther, 0
	}
	return e
}

// walker visits a directory tree through descriptors only.
type walker struct {
	top       string // the start's ScratchPath, for messages
	recursive bool
	left      int // entries still allowed; negative means unbounded
	// visit is called for each entry: dirfd is its directory, name its
	// name there, rel its path relative to the start.
	visit func(dirfd int, name, rel string, st *unix.Stat_t) error
}

// walk visits the directory fd (which it closes), whose path relative to
// the start is rel, sorted by name and depth first. Subdirectories are
// opened below fd, never through a symlink: a directory the program swaps
// for a link meanwhile is simply not descended into.
func (w *walker) walk(fd int, rel string, depth int) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := w.names(f)
	if err != nil {
		return prefixed(APIPath(path.Join(w.top, rel)), err)
	}
	for _, name := range names {
		var st unix.Stat_t
		sub := path.Join(rel, name)
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return mapErr(APIPath(path.Join(w.top, sub)), err)
		}
		if err := w.visit(fd, name, sub, &st); err != nil {
			return err
		}
		if !w.recursive || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if depth+1 >= maxDepth {
			return fmt.Errorf("%s: %w (over %d levels)", APIPath(path.Join(w.top, sub)), errTooDeep, maxDepth)
		}
		cfd, err := openBelow(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			if replaced(err) {
				continue
			}
			return mapErr(APIPath(path.Join(w.top, sub)), err)
		}
		if err := w.walk(cfd, sub, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// names reads a directory's names, sorted, in batches so that a directory
// of a million files is refused once over the budget, not read whole.
func (w *walker) names(f *os.File) ([]string, error) {
	var names []string
	for {
		batch, err := f.Readdirnames(1024)
		names = append(names, batch...)
		if w.left >= 0 && len(names) > w.left {
			return nil, errTooMany
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if w.left >= 0 {
		w.left -= len(names)
	}
	slices.Sort(names)
	return names, nil
}

// replaced reports an error that means the program changed the entry
// between the listing and the open: it is gone, or now a symlink, a
// non-directory, or (for a file) something that refuses to open.
func replaced(err error) bool {
	for _, e := range []error{unix.ENOENT, unix.ELOOP, unix.ENOTDIR, unix.EXDEV, unix.ENXIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// makeDirs opens the directory rel (a ScratchPath), creating what is
// missing below /work or /tmp.
func (s *Scratch) makeDirs(root *scratchRoot, rel string) (int, error) {
	top, rest, _ := strings.Cut(rel, "/")
	fd, _, err := root.open(top, unix.O_RDONLY|unix.O_DIRECTORY, false)
	if err != nil || rest == "" {
		return fd, err
	}
	defer unix.Close(fd)
	return s.mkdirsAt(fd, top, strings.Split(rest, "/"))
}

// mkdirsAt walks segs down from the directory dirfd (left open), whose
// ScratchPath is rel, and returns the last directory, open. What is
// missing is made with mkdirat and given to the sandbox user, mode 0755;
// what exists is left as the program made it, and is opened below its
// parent's descriptor without following a symlink: a link the program put
// there (to "/", say) is ErrSymlink, never a way out.
func (s *Scratch) mkdirsAt(dirfd int, rel string, segs []string) (int, error) {
	fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("rootfs: %s: %w", APIPath(rel), err)
	}
	for _, seg := range segs {
		rel = path.Join(rel, seg)
		err := unix.Mkdirat(fd, seg, 0o755)
		created := err == nil
		if err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, mapErr(APIPath(rel), err)
		}
		next, err := openBelow(fd, seg, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if errors.Is(err, unix.ENOTDIR) && isSymlink(fd, seg) {
			err = unix.ELOOP // O_DIRECTORY says ENOTDIR first; say what it is
		}
		unix.Close(fd)
		if err != nil {
			return -1, mapErr(APIPath(rel), err)
		}
		fd = next
		if created {
			// If the program swapped in a directory of its own meanwhile,
			// this gives the sandbox user what it already owns.
			if err := s.own(fd, 0o755); err != nil {
				unix.Close(fd)
				return -1, mapErr(APIPath(rel), err)
			}
		}
	}
	return fd, nil
}

// isSymlink reports whether name in dirfd is a symlink, for messages.
func isSymlink(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// own gives the open file fd to the sandbox user with mode perm. The
// chmod comes after the chown, which would clear setuid bits (and the
// mode, umask aside, is then exactly perm).
func (s *Scratch) own(fd int, perm uint32) error {
	if err := unix.Fchown(fd, s.uid, s.gid); err != nil {
		return err
	}
	return unix.Fchmod(fd, perm)
}

// createFile creates or replaces the regular file name in the directory
// dirfd with r's content, at most limit bytes; api names it in errors. It
// returns the file's final stat and the bytes written. On failure after
// the open, the partial file is removed.
//
// syscall.ForkLock is not held while the file is open (unlike Populate's
// writeFile): the content comes at a client's pace, and holding it would
// stall every fork in the daemon. The cost is that a process forked
// meanwhile holds the descriptor until its execve, a window long closed
// by the time a client that got the answer runs the file.
func (s *Scratch) createFile(dirfd int, name, api string, r io.Reader, mode fs.FileMode, limit int64) (unix.Stat_t, int64, error) {
	var st unix.Stat_t
	perm := uint32(mode.Perm())
	if perm == 0 {
		perm = 0o644
	}
	// Look first: a directory, symlink, FIFO, device or socket there is
	// refused without having been opened.
	switch err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		if err := notRegular(api, &st); err != nil {
			return st, 0, err
		}
	case !errors.Is(err, unix.ENOENT):
		return st, 0, mapErr(api, err)
	}
	// Something else may be there by now: O_NOFOLLOW refuses a symlink,
	// O_NONBLOCK makes a FIFO fail (ENXIO) or open at once, and fstat
	// refuses all but a regular file before anything is written.
	fd, err := openBelow(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_NONBLOCK|unix.O_NOCTTY, 0o600)
	if err != nil {
		return st, 0, mapErr(api, err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, 0, mapErr(api, err)
	}
	if err := notRegular(api, &st); err != nil {
		return st, 0, err
	}
	n, err := s.fill(fd, r, perm, limit)
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	if err != nil {
		removeIfSame(dirfd, name, &st)
		return st, n, mapErr(api, err)
	}
	return st, n, nil
}

// fill gives the regular file fd to the sandbox user, empties it and
// writes r's content into it, at most limit bytes.
func (s *Scratch) fill(fd int, r io.Reader, perm uint32, limit int64) (int64, error) {
	limit = max(limit, 0)
	if err := s.own(fd, perm); err != nil {
		return 0, err
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, rerr := r.Read(buf)
		if int64(k) > limit-n {
			return n, fmt.Errorf("%w (over %d bytes)", errTooBig, limit)
		}
		if err := writeAll(fd, buf[:k]); err != nil {
			return n, err
		}
		n += int64(k)
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("reading the content: %w", rerr)
		}
	}
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		k, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if k == 0 {
			return io.ErrShortWrite
		}
		b = b[k:]
	}
	return nil
}

// removeIfSame unlinks name in dirfd if it is still the file st describes,
// the partial file a failed write leaves; if the program replaced it
// meanwhile, what is there now is the program's.
func removeIfSame(dirfd int, name string, st *unix.Stat_t) {
	var cur unix.Stat_t
	if unix.Fstatat(dirfd, name, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil && cur.Dev == st.Dev && cur.Ino == st.Ino {
		_ = unix.Unlinkat(dirfd, name, 0)
	}
}
