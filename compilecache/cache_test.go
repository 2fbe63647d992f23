package compilecache

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
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
	got, ok := c2.Get(key("a"))
	if !ok || len(got.Work) != 1 || got.Work[0].Mode != 0o755 || len(got.Work[0].Data) != 100 {
		t.Fatalf("after reopen: %v %+v", ok, got)
	}
	if _, ok := c2.Get(key("b")); ok {
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
	c.Get(key("a")) // a is now more recent than b
	time.Sleep(5 * time.Millisecond)
	c.Put(key("c"), output(600))
	if _, ok := c.Get(key("b")); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(key(k)); !ok {
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
	if _, ok := c.Get(key("a")); ok {
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
				if _, ok := c.Get(key(tc.name + string(rune('a'+i)))); ok != tc.keep[i] {
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
