package images

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMaliciousTar imports one crafted rootfs tar per trick and checks
// that nothing outside the store changed (a sentinel directory sits beside
// it), that a refused import leaves nothing behind, and what the image
// holds when the trick is contained rather than refused.
func TestMaliciousTar(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, as in CI)")
	}
	// From a build's rootfs (STATE/tmp/build-x/rootfs) or an image's
	// (STATE/images/<hex>/rootfs), four levels up is base, where the
	// sentinel directory is.
	const up = "../../../../"
	for _, tc := range []struct {
		name string
		ents func(e *env) []ent
		opts Options
		// err is the class of the expected error, nil for success.
		err error
		// check looks at the rootfs of a successful import.
		check func(t *testing.T, e *env, root string)
	}{
		{
			name: "dotdot traversal",
			ents: func(e *env) []ent { return []ent{file(up+"sentinel/evil", "x")} },
			err:  ErrInvalid,
		},
		{
			name: "dotdot inside name",
			ents: func(e *env) []ent { return []ent{dir("a"), file("a/../../../../../sentinel/file", "x")} },
			err:  ErrInvalid,
		},
		{
			name: "absolute path is contained",
			ents: func(e *env) []ent { return []ent{file(e.sentinel+"/evil", "x"), file("/abs", "y")} },
			check: func(t *testing.T, e *env, root string) {
				mustContent(t, filepath.Join(root, e.sentinel, "evil"), "x")
				mustContent(t, filepath.Join(root, "abs"), "y")
			},
		},
		{
			// pathrs-lite won't make directories through a dangling
			// symlink: refused.
			name: "symlink then write through it, dangling in the image",
			ents: func(e *env) []ent {
				return []ent{symlink("a", e.sentinel), file("a/evil", "x")}
			},
			err: ErrInvalid,
		},
		{
			name: "symlink then write through it",
			ents: func(e *env) []ent {
				return []ent{dir(e.sentinel), symlink("a", e.sentinel), file("a/evil", "x"), file("a/file", "overwritten")}
			},
			check: func(t *testing.T, e *env, root string) {
				mustLink(t, filepath.Join(root, "a"), e.sentinel)
				// Resolved as inside the sandbox: against the image root.
				mustContent(t, filepath.Join(root, e.sentinel, "evil"), "x")
				mustContent(t, filepath.Join(root, e.sentinel, "file"), "overwritten")
			},
		},
		{
			name: "relative symlink out then write through it",
			ents: func(e *env) []ent { return []ent{dir("sentinel"), symlink("b", up+"sentinel"), file("b/evil", "x")} },
			check: func(t *testing.T, e *env, root string) {
				mustContent(t, filepath.Join(root, "sentinel", "evil"), "x")
			},
		},
		{
			name: "symlink to dotdot chain",
			ents: func(e *env) []ent {
				return []ent{
					dir("sentinel"), dir("d"), symlink("d/up", ".."), symlink("up", "d/up/d/up/../.."),
					file("d/up/d/up/up/up/sentinel/evil", "x"),
					dir("up/up/x"),
				}
			},
			check: func(t *testing.T, e *env, root string) {
				mustContent(t, filepath.Join(root, "sentinel", "evil"), "x")
				if fi, err := os.Lstat(filepath.Join(root, "up/up/x")); err == nil {
					t.Errorf("up/up/x should not exist literally: %v", fi.Mode())
				}
				mustIsDir(t, filepath.Join(root, "x"))
			},
		},
		{
			name: "symlink as last component is replaced, not followed",
			ents: func(e *env) []ent {
				return []ent{symlink("s", e.sentinel+"/file"), file("s", "mine"), symlink("t", up+"sentinel/sub"), dir("t")}
			},
			check: func(t *testing.T, e *env, root string) {
				mustContent(t, filepath.Join(root, "s"), "mine")
				mustIsDir(t, filepath.Join(root, "t"))
			},
		},
		{
			name: "hardlink outside by dotdot",
			ents: func(e *env) []ent { return []ent{hardlink("h", up+"sentinel/file")} },
			err:  ErrInvalid,
		},
		{
			name: "hardlink to host /etc/passwd",
			ents: func(e *env) []ent { return []ent{hardlink("h", "/etc/passwd")} },
			err:  ErrInvalid,
		},
		{
			name: "hardlink to absolute sentinel path",
			ents: func(e *env) []ent { return []ent{hardlink("h", e.sentinel+"/file")} },
			err:  ErrInvalid,
		},
		{
			name: "hardlink through a symlink out",
			ents: func(e *env) []ent { return []ent{symlink("s", e.sentinel), hardlink("h", "s/file")} },
			err:  ErrInvalid,
		},
		{
			name: "hardlink to /etc/passwd of the image",
			ents: func(e *env) []ent {
				return []ent{dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), hardlink("pw", "/etc/passwd")}
			},
			check: func(t *testing.T, e *env, root string) {
				a, b := mustStat(t, filepath.Join(root, "etc/passwd")), mustStat(t, filepath.Join(root, "pw"))
				if a.Ino != b.Ino || a.Nlink != 2 {
					t.Errorf("pw is not a link of the image's etc/passwd: ino %d/%d nlink %d", a.Ino, b.Ino, a.Nlink)
				}
			},
		},
		{
			name: "hardlink to a symlink links the symlink",
			ents: func(e *env) []ent { return []ent{symlink("s", e.sentinel+"/file"), hardlink("h", "s")} },
			check: func(t *testing.T, e *env, root string) {
				mustLink(t, filepath.Join(root, "h"), e.sentinel+"/file")
			},
		},
		{
			name: "whiteout outside by dotdot",
			ents: func(e *env) []ent { return []ent{file(up+".wh.sentinel", "")} },
			err:  ErrInvalid,
		},
		{
			name: "whiteout through a symlink out",
			ents: func(e *env) []ent {
				return []ent{
					symlink("a", e.base), file("a/.wh.sentinel", ""), symlink("b", e.sentinel), file("b/.wh..wh..opq", ""),
					// The image's own copy of the paths: this one goes.
					dir(e.sentinel), file(e.sentinel+"/file", "in image"), symlink("c", e.base), file("c/.wh.sentinel", ""),
				}
			},
			check: func(t *testing.T, e *env, root string) {
				mustLink(t, filepath.Join(root, "a"), e.base)
				mustIsDir(t, filepath.Join(root, e.base))
				if _, err := os.Lstat(filepath.Join(root, e.sentinel)); !os.IsNotExist(err) {
					t.Errorf("the image's copy of the sentinel should be whited out: %v", err)
				}
			},
		},
		{
			name: "device nodes and fifos are skipped",
			ents: func(e *env) []ent {
				return []ent{
					dir("dev"), {name: "dev/sda", typ: tar.TypeBlock}, {name: "dev/null", typ: tar.TypeChar},
					{name: "fifo", typ: tar.TypeFifo}, file("kept", "k"),
				}
			},
			check: func(t *testing.T, e *env, root string) {
				for _, n := range []string{"dev/sda", "dev/null", "fifo"} {
					if _, err := os.Lstat(filepath.Join(root, n)); !os.IsNotExist(err) {
						t.Errorf("%s: want absent, got %v", n, err)
					}
				}
				mustContent(t, filepath.Join(root, "kept"), "k")
			},
		},
		{
			name: "setuid and setgid are stripped",
			ents: func(e *env) []ent {
				return []ent{
					withMode(file("suid", "x"), 0o4755), withMode(file("sgid", "x"), 0o2711),
					withMode(dir("sdir"), 0o3775), withMode(dir("tmpish"), 0o1777),
				}
			},
			check: func(t *testing.T, e *env, root string) {
				for n, want := range map[string]uint32{"suid": 0o755, "sgid": 0o711, "sdir": 0o1775, "tmpish": 0o1777} {
					if got := mustStat(t, filepath.Join(root, n)).Mode & 0o7777; got != want {
						t.Errorf("%s: mode %o, want %o", n, got, want)
					}
				}
			},
		},
		{
			name: "xattrs are dropped",
			ents: func(e *env) []ent {
				f := file("cap", "x")
				f.pax = map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00", "SCHILY.xattr.user.x": "y"}
				return []ent{f}
			},
			check: func(t *testing.T, e *env, root string) {
				sz, err := unix.Llistxattr(filepath.Join(root, "cap"), nil)
				if err != nil || sz != 0 {
					t.Errorf("xattrs on cap: size %d, err %v", sz, err)
				}
			},
		},
		{
			name: "too many bytes",
			opts: Options{MaxImageBytes: 1 << 20},
			ents: func(e *env) []ent {
				return []ent{file("a", strings.Repeat("x", 600<<10)), file("b", strings.Repeat("y", 600<<10))}
			},
			err: ErrInvalid,
		},
		{
			name: "too many entries",
			opts: Options{MaxEntries: 100},
			ents: func(e *env) []ent {
				var ents []ent
				for i := 0; i < 150; i++ {
					ents = append(ents, file("f"+strings.Repeat("x", i), ""))
				}
				return ents
			},
			err: ErrInvalid,
		},
		{
			// Data of entries that are skipped is still read: it counts
			// towards the stream bound.
			name: "too much skipped data",
			opts: Options{MaxImageBytes: 1 << 20, MaxEntries: 10},
			ents: func(e *env) []ent {
				return []ent{{name: "weird", typ: 'Z', body: strings.Repeat("z", 4<<20)}}
			},
			err: ErrInvalid,
		},
		{
			name: "duplicates and replaced types",
			ents: func(e *env) []ent {
				return []ent{
					file("dup", "one"), file("dup", "two"),
					dir("d"), file("d/child", "c"), file("d", "now a file"),
					file("f", "f"), dir("f"), file("f/in", "i"),
					dir("keep"), file("keep/a", "a"), withMode(dir("keep"), 0o700),
					symlink("l", "dup"), file("l", "plain"),
					file("h", "h"), hardlink("h2", "h"), file("h", "new"),
				}
			},
			check: func(t *testing.T, e *env, root string) {
				sameLines(t, tree(t, root), []string{
					"dup = two", "d = now a file", "f dir", "f/in = i", "keep dir", "keep/a = a", "l = plain", "h = new", "h2 = h",
				})
				if got := mustStat(t, filepath.Join(root, "keep")).Mode & 0o777; got != 0o700 {
					t.Errorf("keep: mode %o, want 700", got)
				}
			},
		},
		{
			name: "mount points are made directories",
			ents: func(e *env) []ent {
				return []ent{symlink("proc", e.sentinel), file("tmp", "x"), symlink("dev", "/"), dir("work"), file("work/old", "o"), symlink("sys", "../../..")}
			},
			check: func(t *testing.T, e *env, root string) {
				for _, m := range []string{"proc", "dev", "sys", "tmp", "work"} {
					mustIsDir(t, filepath.Join(root, m))
				}
			},
		},
		{
			name: "dir entry under a file",
			ents: func(e *env) []ent { return []ent{file("x", "f"), file("x/y", "z")} },
			err:  ErrInvalid,
		},
		{
			name: "symlink loop then a file through it",
			ents: func(e *env) []ent { return []ent{symlink("la", "la"), file("la/x", "z")} },
			err:  ErrInvalid,
		},
		{
			name: "file where a directory is expected, deep",
			ents: func(e *env) []ent { return []ent{dir("a"), file("a/f", "f"), dir("a/f/sub"), file("a/f/sub/x", "z")} },
			err:  ErrInvalid,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			img, err := e.store.ImportRootfs(bg, bytes.NewReader(makeTar(t, tc.ents(e)...)), "evil")
			mustClass(t, err, tc.err)
			e.checkOutside(t)
			e.checkNoLeftovers(t)
			if err != nil {
				t.Logf("refused: %v", err)
				// The message crosses the API: it may name entries of
				// the image, never where the store keeps it.
				if strings.Contains(err.Error(), e.state) {
					t.Errorf("the error names a host path: %v", err)
				}
				if _, gerr := e.store.Get("evil"); !isNotFound(gerr) {
					t.Errorf("refused image is visible: %v", gerr)
				}
				return
			}
			if tc.check != nil {
				tc.check(t, e, img.Rootfs)
			}
		})
	}
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), ErrNotFound.Error())
}

func mustContent(t *testing.T, p, want string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s: not a regular file: %v", p, fi.Mode())
		return
	}
	data, err := os.ReadFile(p)
	if err != nil || string(data) != want {
		t.Errorf("%s: %q, %v; want %q", p, data, err, want)
	}
}

func mustLink(t *testing.T, p, want string) {
	t.Helper()
	got, err := os.Readlink(p)
	if err != nil || got != want {
		t.Errorf("%s: link %q, %v; want %q", p, got, err, want)
	}
}

func mustIsDir(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() {
		t.Errorf("%s: want a directory, got %v, %v", p, fi, err)
	}
}

func mustStat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
