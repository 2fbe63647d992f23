package rootfs

import (
	"errors"
	"fmt"
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

// File is one file to put into /work before the program starts.
type File struct {
	// Name is a relative, slash-separated path inside /work.
	Name string
	Data []byte
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
		if err := s.writeFile(target, f.Data, mode); err != nil {
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
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %q did not fit", ErrWorkFull, name)
	}
	return fmt.Errorf("rootfs: writing %q: %w", name, err)
}

// writeFile creates target with data. It holds syscall.ForkLock (shared)
// while the file is open for writing: a process forked meanwhile (sandboxd
// starting another sandbox) would hold a copy of the descriptor until its
// own execve, and the sandbox's execve of this file, if it is a program,
// would fail with ETXTBSY (golang/go#22315).
func (s *Scratch) writeFile(target string, data []byte, mode os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Open(target, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode))
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(fd), target)
	_, werr := file.Write(data)
	cerr := file.Chown(s.uid, s.gid)
	return errors.Join(werr, cerr, file.Close())
}

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
