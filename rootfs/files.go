package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/errdefs"
)

// File is one file to put into /work before the program starts. Its
// content is Data, or, when Source is set, the host file Source names.
type File struct {
	// Name is a relative, slash-separated path inside /work.
	Name string
	Data []byte
	// Source is the host path of a regular file the daemon owns (a
	// compile's output, on disk under the daemon's state dir), copied into
	// /work in bounded chunks, so that large outputs are never held whole
	// in memory. Data is ignored when Source is set. Size is its size when
	// it was written (informational: the copy takes what is there).
	Source string
	Size   int64
	// Mode holds the permission bits; 0 means 0644. Setuid, setgid and
	// sticky bits are dropped.
	Mode fs.FileMode
}

// ErrBadFileName is returned for names that are empty, absolute, contain
// ".." or NUL, or would land outside /work.
var ErrBadFileName = errdefs.New(errdefs.ErrInvalid, "bad file name")

// MaxNameBytes bounds a whole name; a segment is bounded by the kernel's
// NAME_MAX (255).
const MaxNameBytes = 1024

// CheckName validates a file name for /work: a relative, slash-separated
// path whose segments are not empty, "." or "..", with no NUL and no
// control character (U+0000-U+001F, U+007F: names end up in logs and
// terminals).
func CheckName(name string) error {
	switch {
	case name == "" || name == ".":
		return fmt.Errorf("%w: empty", ErrBadFileName)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadFileName, MaxNameBytes)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("%w: %q contains NUL", ErrBadFileName, name)
	case strings.ContainsFunc(name, isControl):
		return fmt.Errorf("%w: %q contains a control character", ErrBadFileName, name)
	case path.IsAbs(name):
		return fmt.Errorf("%w: %q is absolute", ErrBadFileName, name)
	}
	// The same segment rules as a files-API path (rootfs/paths.go).
	if err := checkSegments(name); err != nil {
		return fmt.Errorf("%w: %q %s", ErrBadFileName, name, err)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Populate writes files into the scratch's /work, owned by the sandbox
// user. It runs before any sandboxed code, but still resolves every path
// inside /work so that a name can never reach outside it.
func (s *Scratch) Populate(files []File) error {
	root := s.WorkDir()
	for _, f := range files {
		if err := CheckName(f.Name); err != nil {
			return err
		}
		target, err := securejoin.SecureJoin(root, f.Name)
		if err != nil {
			return fmt.Errorf("rootfs: resolving %q: %w", f.Name, err)
		}
		if err := s.mkdirs(root, filepath.Dir(target)); err != nil {
			return populateError(f.Name, err)
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		write := func(w io.Writer) error { _, err := w.Write(f.Data); return err }
		if f.Source != "" {
			write = func(w io.Writer) error { return copyFrom(w, f.Source) }
		}
		if err := s.writeFile(target, mode, write); err != nil {
			return populateError(f.Name, err)
		}
	}
	return nil
}

// ErrWorkFull: a request's files (or a compile's output) need more of
// /work than its work_bytes gives, in bytes or in inodes (which follow
// from its size). It is the request's doing, so 413, not a 500.
var ErrWorkFull = errdefs.New(errdefs.ErrTooLarge, "the files do not fit in /work (work_bytes)")

// populateError classes a failure to write a file into /work. The
// message names the file as the request does, never the host path.
func populateError(name string, err error) error {
	var src *SourceError
	if errors.As(err, &src) {
		return fmt.Errorf("rootfs: writing %q: %w", name, err)
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %q did not fit", ErrWorkFull, name)
	}
	return fmt.Errorf("rootfs: writing %q: %w", name, err)
}

// writeFile creates target and fills it with write. It holds
// syscall.ForkLock (shared) while the file is open for writing: a process
// forked meanwhile (sandboxd starting another sandbox) would hold a copy
// of the descriptor until its own execve, and the sandbox's execve of this
// file, if it is a program, would fail with ETXTBSY (golang/go#22315).
// A large Source holds it for the length of the copy: forks wait that
// long, which is cheaper than a program that cannot start.
func (s *Scratch) writeFile(target string, mode os.FileMode, write func(io.Writer) error) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Open(target, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode))
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(fd), target)
	werr := write(file)
	cerr := file.Chown(s.uid, s.gid)
	return errors.Join(werr, cerr, file.Close())
}

// copyFrom copies the host file src into w with io.Copy (a bounded
// buffer, or copy_file_range in the kernel). src is the daemon's own, but
// it is opened as carefully as anything else: no symlink followed, no
// FIFO waited on, regular files only. Read errors are wrapped apart from
// write errors, so that only the write side can be ENOSPC in /work.
func copyFrom(w io.Writer, src string) error {
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &SourceError{Err: err}
	}
	f := os.NewFile(uintptr(fd), src)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return &SourceError{Err: errors.Join(err, errors.New("not a regular file"))}
	}
	// In the kernel (copy_file_range, sendfile) or through io.Copy's
	// 32 KiB buffer: bounded either way.
	_, err = io.Copy(w, f)
	return err
}

// SourceError is a File's Source that could not be read: the daemon's
// fault, never the request's (it is not ErrWorkFull).
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "reading the artifact's host file: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

func (s *Scratch) mkdirs(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		if err := unix.Mkdir(cur, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("rootfs: mkdir %s: %w", rel, err)
		}
		if err := unix.Lchown(cur, s.uid, s.gid); err != nil {
			return fmt.Errorf("rootfs: chown %s: %w", rel, err)
		}
	}
	return nil
}

// FilesFromDir reads the regular files under dir (recursively) as Files,
// keeping their permission bits. Symlinks and special files are refused:
// the caller asked for files to be copied, not for links into its host.
func FilesFromDir(dir string) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files and directories can be copied into /work", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, File{Name: filepath.ToSlash(rel), Data: data, Mode: info.Mode().Perm()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading --files: %w", err)
	}
	return out, nil
}

// ErrTooLarge is returned by Collect when /work holds more than allowed.
var ErrTooLarge = errdefs.New(errdefs.ErrTooLarge, "work directory holds more than the allowed size")

// Collect reads back the regular files in /work (recursively), for a
// compile stage whose output the next stages need. It is the collector of
// CollectPaths over all of /work (what the program left is hostile: no
// symlink followed, no FIFO opened blocking), but all or nothing: past
// maxBytes, or past the files a walk lists, it is ErrTooLarge.
func (s *Scratch) Collect(maxBytes int64) ([]File, error) {
	root, err := unix.Open(s.WorkDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: opening /work: %w", err)
	}
	defer unix.Close(root)
	c := &collector{root: root, left: maxBytes, files: maxWalk, seen: map[string]bool{}, whole: true}
	names, err := c.walk("")
	if err != nil {
		return nil, err
	}
	if len(names) >= maxWalk {
		return nil, ErrTooLarge
	}
	var out []File
	for _, n := range names {
		c.file(n)
		if k := len(c.out); k > 0 && c.out[k-1].Truncated {
			return nil, ErrTooLarge
		}
	}
	for _, f := range c.out {
		switch {
		case f.Truncated:
			return nil, ErrTooLarge
		case f.Missing || f.Type != "":
			continue // replaced meanwhile, or not a regular file: skipped
		}
		out = append(out, File{Name: f.Name, Data: f.Data, Mode: f.Mode})
	}
	return out, nil
}

// CollectInto copies the regular files in /work (recursively) into dir, a
// directory of the daemon's, for a compile whose output the next stages
// need. It is Collect's walk, opening and all-or-nothing budget (past
// maxBytes it is ErrTooLarge, and a file that cannot fit is not read at
// all), but the content goes file to file in bounded chunks, never whole
// into memory: the Files returned name their copies in Source. On error
// dir may hold part of the output; the caller removes it.
func (s *Scratch) CollectInto(dir string, maxBytes int64) ([]File, error) {
	root, err := unix.Open(s.WorkDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: opening /work: %w", err)
	}
	defer unix.Close(root)
	c := &collector{root: root, left: maxBytes, files: maxWalk, seen: map[string]bool{}, whole: true}
	names, err := c.walk("")
	if err != nil {
		return nil, err
	}
	if len(names) >= maxWalk {
		return nil, ErrTooLarge
	}
	out := make([]File, 0, len(names))
	for _, n := range names {
		f, ok, err := c.copyInto(dir, n)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// copyInto copies one regular file of /work to the same name under dir.
// Anything else at that name now (replaced by a symlink or a FIFO since
// the walk) is skipped, as Collect skips it. The names come from the walk
// (CheckName holds: no "..", no absolute path) and every directory under
// dir is one this function made, so the copy lands inside dir.
func (c *collector) copyInto(dir, name string) (File, bool, error) {
	fd, err := c.open(name, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return File{}, false, nil
	}
	src := os.NewFile(uintptr(fd), name)
	defer src.Close()
	st, err := src.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return File{}, false, nil
	}
	if st.Size() > c.left {
		return File{}, false, ErrTooLarge // not read at all
	}
	target := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return File{}, false, fmt.Errorf("rootfs: copying %q out of /work: %w", name, err)
	}
	// The host copy keeps the program's permission bits (a compile cache
	// that links it keeps them too), always readable and writable by the
	// daemon alone; dir is the daemon's and closed to others.
	perm := st.Mode().Perm()
	dst, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm|0o600)
	if err != nil {
		return File{}, false, fmt.Errorf("rootfs: copying %q out of /work: %w", name, err)
	}
	// The file cannot grow (the run's processes are gone), but the copy
	// is bounded by the budget all the same.
	n, err := io.Copy(dst, io.LimitReader(src, c.left+1))
	err = errors.Join(err, dst.Chmod(perm|0o600), dst.Close())
	if err != nil {
		return File{}, false, fmt.Errorf("rootfs: copying %q out of /work: %w", name, err)
	}
	if n > c.left {
		return File{}, false, ErrTooLarge
	}
	c.left -= n
	return File{Name: name, Source: target, Size: n, Mode: perm}, true, nil
}
