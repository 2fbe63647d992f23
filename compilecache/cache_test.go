package compilecache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/languages"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

func key(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// into is a request's directory for a hit's files, not made yet.
func into(t *testing.T) string { return filepath.Join(t.TempDir(), "cached") }

func output(n int) *languages.CompileOutput {
	return &languages.CompileOutput{
		Result: &runtime.Result{Status: runtime.StatusOK},
		Work:   []rootfs.File{{Name: "main", Data: make([]byte, n), Mode: 0o755}},
	}
}

func TestPutGetSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Put(key("a"), output(100))
	c2, err := Open(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c2.Get(key("a"), into(t))
	if !ok || len(got.Work) != 1 || got.Work[0].Mode != 0o755 || got.Work[0].Size != 100 {
		t.Fatalf("after reopen: %v %+v", ok, got)
	}
	if b, err := os.ReadFile(got.Work[0].Source); err != nil || len(b) != 100 {
		t.Fatalf("the hit's file: %d bytes, %v", len(b), err)
	}
	if _, ok := c2.Get(key("b"), into(t)); ok {
		t.Fatal("hit for a key never stored")
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c, err := Open(t.TempDir(), 1500, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Put(key("a"), output(600))
	time.Sleep(5 * time.Millisecond)
	c.Put(key("b"), output(600))
	time.Sleep(5 * time.Millisecond)
	c.Get(key("a"), into(t)) // a is now more recent than b
	time.Sleep(5 * time.Millisecond)
	c.Put(key("c"), output(600))
	if _, ok := c.Get(key("b"), into(t)); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(key(k), into(t)); !ok {
			t.Errorf("%s was evicted", k)
		}
	}
	if _, total := c.Stats(); total > 1500 {
		t.Errorf("total %d over the limit", total)
	}
}

func TestCorruptEntryIsDropped(t *testing.T) {
	dir := t.TempDir()
	c, _ := Open(dir, 1<<20, nil)
	c.Put(key("a"), output(10))
	os.WriteFile(filepath.Join(dir, key("a"), "result.json"), []byte("{not json"), 0o600)
	if _, ok := c.Get(key("a"), into(t)); ok {
		t.Fatal("a corrupt entry was returned")
	}
	if n, _ := c.Stats(); n != 0 {
		t.Fatalf("%d entries after dropping the corrupt one", n)
	}
}

// diskBytes is what the cache's directory holds in file data.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLargeEntriesKeepTheCap: entries near or over the cap never leave
// more than it on disk (the artifacts of big compiles are the ones that
// would fill it), counting what is stored beside the files.
func TestLargeEntriesKeepTheCap(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name  string
		sizes []int
		keep  []bool // which entries are still there at the end
	}{
		{"one over the cap is not stored", []int{limit + 1}, []bool{false}},
		{"one of exactly the cap", []int{limit}, []bool{true}},
		{"two that together pass the cap", []int{700 << 10, 700 << 10}, []bool{false, true}},
		{"a large one evicts the oldest until it fits", []int{100 << 10, 100 << 10, 900 << 10}, []bool{false, true, true}},
		{"an oversized one leaves the others", []int{300 << 10, 2 * limit}, []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Open(dir, limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range tc.sizes {
				c.Put(key(tc.name+string(rune('a'+i))), output(n))
				time.Sleep(2 * time.Millisecond)
			}
			for i := range tc.sizes {
				if _, ok := c.Get(key(tc.name+string(rune('a'+i))), into(t)); ok != tc.keep[i] {
					t.Errorf("entry %d (%d bytes): kept %v, want %v", i, tc.sizes[i], ok, tc.keep[i])
				}
			}
			// The files' data is bounded by the cap; what the cache stores
			// beside them (the result) is small and bounded per entry.
			if got := diskBytes(t, dir); got > limit+8<<10 {
				t.Errorf("%d bytes on disk, over the %d-byte cap", got, limit)
			}
		})
	}
}

// artifact writes a compile's output as rootfs.Scratch.CollectInto leaves
// it: files on disk in a request's directory, named by Source.
func artifact(t *testing.T, dir string, files map[string]string) *languages.CompileOutput {
	t.Helper()
	out := &languages.CompileOutput{Result: &runtime.Result{Status: runtime.StatusOK}}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
			t.Fatal(err)
		}
		out.Work = append(out.Work, rootfs.File{Name: name, Source: p, Size: int64(len(content)), Mode: 0o700})
	}
	return out
}

// contents reads a hit's files from where Get placed them.
func contents(t *testing.T, out *languages.CompileOutput, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, f := range out.Work {
		if f.Data != nil || !strings.HasPrefix(f.Source, dir+"/") {
			t.Errorf("%s: %d bytes of data, source %q outside %s", f.Name, len(f.Data), f.Source, dir)
		}
		b, err := os.ReadFile(f.Source)
		if err != nil {
			t.Fatal(err)
		}
		got[f.Name] = string(b)
	}
	return got
}

// Files with a Source go into the cache from disk and come out on disk,
// in the request's directory: the request's own copy can go when it ends.
func TestSourceFilesPutGet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		src   string // where the request's copy is: "" a temp dir on the cache's filesystem
	}{
		{"one file", map[string]string{"a.out": "bin"}, ""},
		{"nested and empty", map[string]string{"a.out": "bin", "lib/x/y.so": "so", "empty": ""}, ""},
		{"across filesystems (a copy, not a link)", map[string]string{"a.out": strings.Repeat("b", 100<<10)}, "/dev/shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(t.TempDir(), 1<<20, nil)
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.MkdirTemp(tc.src, "request-")
			if err != nil {
				t.Fatal(err)
			}
			c.Put(key(tc.name), artifact(t, src, tc.files))
			if err := os.RemoveAll(src); err != nil { // the first request ended
				t.Fatal(err)
			}
			dir := into(t)
			got, ok := c.Get(key(tc.name), dir)
			if !ok {
				t.Fatal("miss")
			}
			if g := contents(t, got, dir); !maps.Equal(g, tc.files) {
				t.Errorf("got %q, want %q", g, tc.files)
			}
			if _, total := c.Stats(); total != int64(len(strings.Join(slices.Collect(maps.Values(tc.files)), ""))) {
				t.Errorf("total %d", total)
			}
		})
	}
}

// An entry evicted while a request runs from its files: the request's
// files stay whole (they are its links, not the entry's names).
func TestEvictionWhileFilesInUse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		evict func(c *Cache, t *testing.T)
	}{
		{"by larger entries", func(c *Cache, t *testing.T) {
			for i := range 3 {
				c.Put(key(fmt.Sprint("other", i)), artifact(t, t.TempDir(), map[string]string{"o": strings.Repeat("o", 600)}))
			}
		}},
		{"replaced under the same key", func(c *Cache, t *testing.T) {
			c.Put(key("a"), artifact(t, t.TempDir(), map[string]string{"a.out": "new"}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(t.TempDir(), 1000, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"a.out": strings.Repeat("a", 600)}
			c.Put(key("a"), artifact(t, t.TempDir(), want))
			dir := into(t)
			got, ok := c.Get(key("a"), dir)
			if !ok {
				t.Fatal("miss")
			}
			time.Sleep(2 * time.Millisecond)
			tc.evict(c, t)
			if g := contents(t, got, dir); !maps.Equal(g, want) {
				t.Errorf("after the eviction the request reads %q", g)
			}
		})
	}
}

// Gets and Puts at once: every hit's files are whole.
func TestConcurrentGetsSeeWholeEntries(t *testing.T) {
	c, err := Open(t.TempDir(), 4000, nil)
	if err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("z", 1000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := key(fmt.Sprint(i % 8))
				if g%2 == 0 {
					c.Put(k, artifact(t, t.TempDir(), map[string]string{"a/b": content, "c": content}))
					continue
				}
				dir := into(t)
				if out, ok := c.Get(k, dir); ok {
					if g := contents(t, out, dir); g["a/b"] != content || g["c"] != content || len(g) != 2 {
						t.Errorf("a hit with %d files, not whole", len(g))
					}
				}
			}
		}()
	}
	wg.Wait()
}
