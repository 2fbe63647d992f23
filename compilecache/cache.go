// Package compilecache keeps compile outputs on disk, so that an identical
// compile (language, image, command, limits, sources) runs once. It is a
// bounded LRU: the least recently used entries go first when the total
// passes the limit. Entries survive restarts.
package compilecache

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/languages"
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
		info, err := de.Info()
		if err != nil {
			continue
		}
		key := name[:max(len(name)-len(".json"), 0)]
		if filepath.Ext(name) != ".json" || !keyRE.MatchString(key) {
			os.Remove(filepath.Join(dir, name)) // a temp file of an interrupted write
			continue
		}
		c.entries[key] = &entry{size: info.Size(), used: info.ModTime()}
		c.total += info.Size()
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key+".json") }

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
	data, err := os.ReadFile(c.path(key))
	if err != nil {
		c.drop(key)
		return nil, false
	}
	var out languages.CompileOutput
	if err := json.Unmarshal(data, &out); err != nil || out.Result == nil {
		c.log.Warn("compile cache: dropping a corrupt entry", "key", key)
		c.drop(key)
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(c.path(key), now, now) // LRU order survives restarts
	return &out, true
}

// Put stores a compile output; failures only cost a future recompile.
func (c *Cache) Put(key string, out *languages.CompileOutput) {
	if !keyRE.MatchString(key) {
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		return
	}
	if int64(len(data)) > c.maxBytes {
		return
	}
	tmp, err := os.CreateTemp(c.dir, "tmp-*")
	if err != nil {
		c.log.Warn("compile cache: write failed", "err", err)
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		c.log.Warn("compile cache: write failed", "err", err)
		return
	}
	if err := os.Rename(tmp.Name(), c.path(key)); err != nil {
		os.Remove(tmp.Name())
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.total -= old.size
	}
	c.entries[key] = &entry{size: int64(len(data)), used: time.Now()}
	c.total += int64(len(data))
	c.evictLocked()
}

func (c *Cache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.total -= e.size
		delete(c.entries, key)
	}
	os.Remove(c.path(key))
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
		os.Remove(c.path(k))
	}
}

// Stats reports the number of entries and their total size.
func (c *Cache) Stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.total
}
