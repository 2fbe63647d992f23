// Package compilecache keeps compile outputs on disk, so that an identical
// compile (language, image, command, limits, sources) runs once. It is a
// bounded LRU: the least recently used entries go first when the total
// passes the limit. Entries survive restarts.
//
// An entry is a directory named by its key: result.json (the compile's
// result) and files/, the compile's /work as plain files, so that a hit
// costs reading them, not decoding them.
package compilecache

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/rootfs"
)

var keyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

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
		if !de.IsDir() || !keyRE.MatchString(name) {
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

// Get returns a cached compile, marking it used.
func (c *Cache) Get(key string) (*languages.CompileOutput, bool) {
	if !keyRE.MatchString(key) {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok {
		e.used = time.Now()
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	out, err := c.read(key)
	if err != nil {
		c.log.Warn("compile cache: dropping an unreadable entry", "key", key, "err", err)
		c.drop(key)
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(c.path(key), "result.json"), now, now) // LRU order survives restarts
	return out, true
}

func (c *Cache) read(key string) (*languages.CompileOutput, error) {
	data, err := os.ReadFile(filepath.Join(c.path(key), "result.json"))
	if err != nil {
		return nil, err
	}
	var out languages.CompileOutput
	if err := json.Unmarshal(data, &out.Result); err != nil || out.Result == nil {
		return nil, errors.New("corrupt result.json")
	}
	if out.Work, err = rootfs.FilesFromDir(filepath.Join(c.path(key), "files")); err != nil {
		return nil, err
	}
	return &out, nil
}

// Put stores a compile output; failures only cost a future recompile.
func (c *Cache) Put(key string, out *languages.CompileOutput) {
	if !keyRE.MatchString(key) || out == nil || out.Result == nil {
		return
	}
	var size int64
	for _, f := range out.Work {
		size += int64(len(f.Data))
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
	c.mu.Lock()
	defer c.mu.Unlock()
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
