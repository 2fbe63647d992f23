package images

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// fuzzCanary is an absolute path that seed tars aim at; no import may
// create it.
const fuzzCanary = "/tmp/sandboxd-fuzz-canary"

// FuzzImportRootfs feeds arbitrary bytes to a rootfs import (plain,
// gzip or zstd tar) in a fresh store with a sentinel directory beside it.
// Whatever the input, the import either fails or makes an image, and
// nothing outside the store's directory is written: not the sentinel,
// not the canary path.
func FuzzImportRootfs(f *testing.F) {
	const up = "../../../../"
	seeds := [][]ent{
		{dir("bin"), file("bin/busybox", "x"), symlink("bin/sh", "busybox")},
		{file(up+"sentinel/evil", "x")},
		{dir("a"), file("a/../../../../../sentinel/file", "x")},
		{file(fuzzCanary, "x"), file("/abs", "y")},
		{symlink("link", up+"sentinel"), file("link/evil", "x")},
		{symlink("link", "/tmp"), file("link/sandboxd-fuzz-canary", "x")},
		{symlink("d", "."), symlink("d/e", up), file("d/e/sentinel/evil", "x")},
		{file("f", "x"), hardlink("h", up+"sentinel/file")},
		{file("f", "x"), hardlink("h", fuzzCanary)},
		{withMode(file("suid", "x"), 0o4755), {name: "dev", typ: '3'}, {name: "fifo", typ: '6'}},
		{dir("w"), file("w/.wh..wh..opq", ""), file("w/.wh.x", "")},
		{{name: "x", pax: map[string]string{"path": up + "sentinel/pax"}}},
	}
	for _, s := range seeds {
		data := makeTar(f, s...)
		f.Add(data)
		f.Add(gzipped(f, data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEnv(t, Options{MaxImageBytes: 1 << 20, MaxEntries: 1000})
		img, err := e.store.ImportRootfs(context.Background(), bytes.NewReader(data), "fuzz")
		e.checkOutside(t)
		if _, err := os.Lstat(fuzzCanary); err == nil {
			_ = os.RemoveAll(fuzzCanary)
			t.Fatalf("the import wrote %s outside the store", fuzzCanary)
		}
		if err == nil && img == nil {
			t.Fatal("no error and no image")
		}
		if err != nil {
			e.checkNoLeftovers(t)
		}
	})
}
