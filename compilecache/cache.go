// Package compilecache keeps compile outputs on disk, so that an identical
// compile (language, image, command, limits, sources) runs once. It is a
// bounded LRU: the least recently used entries go first when the total
// passes the limit. Entries survive restarts.
//
// An entry is a directory named by its key: result.json (the compile's
// result) and files/, the compile's /work as plain files. Files come in
// and go out as hard links (Put from the request's copy, Get into the
// next request's directory), so a hit costs neither reading nor copying,
// and no artifact is ever held whole in memory.
package compilecache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/rootfs"
)

// Compiled on first use: a regexp built at package init costs every
// start of the binary (libcontainer's init among them) its compile.
var keyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// Cache is an on-disk LRU of compile outputs. It implements
// languages.Cache.
type Cache struct {
	dir      string
	maxBytes int64
	log      *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	total   int64
}

type entry struct {
	size int64
	used time.Time
}

// Open loads the index of dir (creating it) with a total size limit.
func Open(dir string, maxBytes int64, log *slog.Logger) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{dir: dir, maxBytes: maxBytes, log: log, entries: map[string]*entry{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || !keyRE().MatchString(name) {
			os.RemoveAll(filepath.Join(dir, name)) // an interrupted write, or an older format
			continue
		}
		info, err := os.Stat(filepath.Join(dir, name, "result.json"))
		if err != nil {
			os.RemoveAll(filepath.Join(dir, name))
			continue
		}
		size := dirSize(filepath.Join(dir, name))
		c.entries[name] = &entry{size: size, used: info.ModTime()}
		c.total += size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key) }

// Get returns a cached compile, marking it used. Its files are
// hard-linked into dir (copied when dir is on another filesystem), which
// Get creates, and the Files name those links: an eviction that removes
// the entry while a request runs removes only the entry's names, never the
// content the request's runs read. Nothing is read into memory.
func (c *Cache) Get(key, dir string) (*languages.CompileOutput, bool) {
	if !keyRE().MatchString(key) {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	var out *languages.CompileOutput
	var err error
	if ok {
		e.used = time.Now()
		// Under the lock: evictions hold it too, so the entry is whole
		// while it is linked; links cost no copy (the same filesystem).
		out, err = c.read(key, dir)
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if err != nil {
		c.log.Warn("compile cache: dropping an unreadable entry", "key", key, "err", err)
		c.drop(key)
		os.RemoveAll(dir) // what was linked before the failure
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(c.path(key), "result.json"), now, now) // LRU order survives restarts
	return out, true
}

func (c *Cache) read(key, dir string) (*languages.CompileOutput, error) {
	data, err := os.ReadFile(filepath.Join(c.path(key), "result.json"))
	if err != nil {
		return nil, err
	}
	var out languages.CompileOutput
	if err := json.Unmarshal(data, &out.Result); err != nil || out.Result == nil {
		return nil, errors.New("corrupt result.json")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if out.Work, err = linkFiles(filepath.Join(c.path(key), "files"), dir); err != nil {
		return nil, err
	}
	return &out, nil
}

// linkFiles links the regular files under src into dst, at the same
// names, as Files with Source set. The entry is the cache's own, but
// anything that is not a regular file or a directory is refused.
func linkFiles(src, dst string) ([]rootfs.File, error) {
	var out []rootfs.File
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, _ := filepath.Rel(src, p)
		name := filepath.ToSlash(rel)
		if err := rootfs.CheckName(name); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		if err := linkOrCopy(p, target); err != nil {
			return err
		}
		out = append(out, rootfs.File{Name: name, Source: target, Size: info.Size(), Mode: info.Mode().Perm()})
		return nil
	})
	return out, err
}

// linkOrCopy makes dst a hard link to src, or, across filesystems, a copy
// through a bounded buffer. Neither side is ever written again: the link
// shares its content safely.
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return errors.Join(err, fmt.Errorf("%s: not a regular file", src))
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, info.Mode().Perm()|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Chmod(info.Mode().Perm()|0o600), out.Close())
}

// Put stores a compile output; failures only cost a future recompile.
// Files with a Source are linked into the entry (copied across
// filesystems), never read into memory.
func (c *Cache) Put(key string, out *languages.CompileOutput) {
	if !keyRE().MatchString(key) || out == nil || out.Result == nil {
		return
	}
	var size int64
	for _, f := range out.Work {
		if f.Source != "" {
			size += f.Size
		} else {
			size += int64(len(f.Data))
		}
	}
	if size > c.maxBytes {
		return
	}
	tmp, err := os.MkdirTemp(c.dir, "tmp-")
	if err != nil {
		c.log.Warn("compile cache: write failed", "err", err)
		return
	}
	if err := write(tmp, out); err != nil {
		os.RemoveAll(tmp)
		c.log.Warn("compile cache: write failed", "err", err)
		return
	}
	// What is on disk, not what was announced: the cap holds either way.
	size = dirSize(filepath.Join(tmp, "files"))
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.maxBytes {
		os.RemoveAll(tmp)
		return
	}
	if old, ok := c.entries[key]; ok {
		c.total -= old.size
		os.RemoveAll(c.path(key))
	}
	if err := os.Rename(tmp, c.path(key)); err != nil {
		os.RemoveAll(tmp)
		delete(c.entries, key)
		return
	}
	c.entries[key] = &entry{size: size, used: time.Now()}
	c.total += size
	c.evictLocked()
}

func write(dir string, out *languages.CompileOutput) error {
	for _, f := range out.Work {
		if err := rootfs.CheckName(f.Name); err != nil {
			return err
		}
		p := filepath.Join(dir, "files", filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if f.Source != "" {
			// The request's copy keeps its mode (perm|0600, see
			// rootfs.Scratch.CollectInto): a chmod here would change it.
			if err := linkOrCopy(f.Source, p); err != nil {
				return err
			}
			continue
		}
		if err := os.WriteFile(p, f.Data, f.Mode.Perm()|0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, f.Mode.Perm()|0o600); err != nil {
			return err
		}
	}
	data, err := json.Marshal(out.Result)
	if err != nil {
		return err
	}
	// result.json last: an entry without it is incomplete and dropped.
	return os.WriteFile(filepath.Join(dir, "result.json"), data, 0o600)
}

func (c *Cache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.total -= e.size
		delete(c.entries, key)
	}
	os.RemoveAll(c.path(key))
}

func (c *Cache) evictLocked() {
	if c.total <= c.maxBytes {
		return
	}
	keys := make([]string, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.entries[keys[i]].used.Before(c.entries[keys[j]].used) })
	for _, k := range keys {
		if c.total <= c.maxBytes {
			return
		}
		c.total -= c.entries[k].size
		delete(c.entries, k)
		os.RemoveAll(c.path(k))
	}
}

// Stats reports the number of entries and their total size.
func (c *Cache) Stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.total
}
