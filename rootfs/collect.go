package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Collected is one file read back from /work after a run (a request's
// "collect"). A path that names no regular file is listed all the same:
// Missing when nothing is there, Type when it is something else.
type Collected struct {
	Name string
	Data []byte
	Size int64 // the file's size; len(Data) is less when Truncated
	Mode fs.FileMode
	// Truncated: the collect budget ran out within or before this file.
	Truncated bool
	Missing   bool
	// Type is "symlink" or "other" for a path that is not a regular file,
	// and "dir" for a directory with no regular file under it; no content
	// is read for them.
	Type string
}

// CollectLimits bound what one run may hand back.
type CollectLimits struct {
	Bytes int64 // content over all files
	Files int   // entries listed
}

// IsPattern reports whether p holds glob metacharacters (path.Match).
func IsPattern(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// CheckPattern validates a collect entry: a name as CheckName wants it
// whose glob syntax, if any, is well formed.
func CheckPattern(p string) error {
	if err := CheckName(p); err != nil {
		return err
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%w: %q is not a valid pattern", ErrBadFileName, p)
	}
	return nil
}

// CollectPaths reads the files that patterns name in /work, in the order
// of patterns (a glob's matches and a directory's files sorted). What the
// program left in /work is hostile: no symlink is ever followed (every open
// is an openat2 beneath /work with RESOLVE_NO_SYMLINKS), only regular files
// are read (a FIFO never blocks: O_NONBLOCK, then fstat), and the budget
// bounds the total.
func (s *Scratch) CollectPaths(patterns []string, lim CollectLimits) ([]Collected, error) {
	root, err := unix.Open(s.WorkDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: opening /work: %w", err)
	}
	defer unix.Close(root)
	c := &collector{root: root, left: lim.Bytes, files: lim.Files, seen: map[string]bool{}}
	for _, p := range patterns {
		if err := CheckPattern(p); err != nil {
			return nil, err
		}
		if err := c.pattern(p); err != nil {
			return nil, err
		}
	}
	return c.out, nil
}

type collector struct {
	root  int
	left  int64
	files int
	seen  map[string]bool
	out   []Collected
	// whole: the caller fails on any truncated file (Scratch.Collect).
	whole bool
}

func (c *collector) pattern(p string) error {
	if !IsPattern(p) {
		return c.literal(p)
	}
	names, err := c.walk("")
	if err != nil {
		return err
	}
	found := false
	for _, n := range names {
		if ok, _ := path.Match(p, n); ok {
			found = true
			c.file(n)
		}
	}
	if !found {
		c.add(Collected{Name: p, Missing: true})
	}
	return nil
}

// literal collects one path: a file, or every file under a directory.
func (c *collector) literal(name string) error {
	var st unix.Stat_t
	fd, err := c.open(name, unix.O_PATH)
	if err != nil {
		c.add(notOpened(name, err))
		return nil
	}
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("rootfs: collecting %q: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		c.file(name)
	case unix.S_IFDIR:
		names, err := c.walk(name)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			c.add(Collected{Name: name, Type: "dir"}) // nothing to read, but it is there
		}
		for _, n := range names {
			c.file(n)
		}
	case unix.S_IFLNK:
		c.add(Collected{Name: name, Type: "symlink"})
	default:
		c.add(Collected{Name: name, Type: "other"})
	}
	return nil
}

// notOpened lists a name that could not be opened: missing (nothing there,
// or a file where a directory was expected), a symlink on the way (ELOOP
// under RESOLVE_NO_SYMLINKS, EXDEV for a mount), or something else that
// refuses to be read (a device node on the nodev /work).
func notOpened(name string, err error) Collected {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return Collected{Name: name, Missing: true}
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return Collected{Name: name, Type: "symlink"}
	}
	return Collected{Name: name, Type: "other"}
}

// open opens name beneath /work, following no symlink at all.
func (c *collector) open(name string, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	for {
		fd, err := unix.Openat2(c.root, name, &how)
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
}

// file reads one regular file within the budget; anything else at that
// name (the program may have left a FIFO) is listed by its type.
func (c *collector) file(name string) {
	if c.seen[name] {
		return
	}
	fd, err := c.open(name, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		c.add(notOpened(name, err))
		return
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		c.add(Collected{Name: name, Type: "other"})
		return
	}
	if c.whole && st.Size() > c.left {
		// Collect wants all or nothing: a file that can't fit is not
		// read at all, so a huge output costs no memory.
		c.add(Collected{Name: name, Size: st.Size(), Mode: st.Mode().Perm(), Truncated: true})
		return
	}
	want := min(st.Size(), c.left)
	data, _ := io.ReadAll(io.LimitReader(f, want))
	c.left -= int64(len(data))
	c.add(Collected{Name: name, Data: data, Size: st.Size(), Mode: st.Mode().Perm(), Truncated: int64(len(data)) < st.Size()})
}

func (c *collector) add(x Collected) {
	if c.seen[x.Name] {
		return
	}
	c.seen[x.Name] = true
	if len(c.out) >= c.files {
		if n := len(c.out); n > 0 {
			c.out[n-1].Truncated = true
		}
		return
	}
	c.out = append(c.out, x)
}

// walk lists the regular files under dir (relative to /work; "" is /work
// itself), sorted, without following symlinks. It stops listing at a
// bound well above any budget, so a program that made millions of files
// cannot make the daemon walk them all.
func (c *collector) walk(dir string) ([]string, error) {
	var out []string
	var visit func(dir string, fd int) error
	visit = func(dir string, fd int) error {
		f := os.NewFile(uintptr(fd), dir)
		entries, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("rootfs: listing %q: %w", dir, err)
		}
		slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		for _, e := range entries {
			if len(out) >= maxWalk {
				return nil
			}
			name := path.Join(dir, e.Name())
			if CheckName(name) != nil {
				continue // a name the API could not carry
			}
			switch {
			case e.Type().IsRegular():
				out = append(out, name)
			case e.IsDir():
				sub, err := c.open(name, unix.O_RDONLY|unix.O_DIRECTORY)
				if err != nil {
					continue // replaced meanwhile: not followed
				}
				if err := visit(name, sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	start := dir
	if start == "" {
		start = "."
	}
	fd, err := c.open(start, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, nil
	}
	return out, visit(dir, fd)
}

// maxWalk bounds the names one collect looks at.
const maxWalk = 100000
