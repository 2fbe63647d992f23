package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// collectDir lays out a /work the way a hostile program could leave it.
func collectDir(t *testing.T) *Scratch {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	secret := filepath.Join(dir, "secret")
	for _, d := range []string{"work/out/sub", "work/realdir", "work/empty/sub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"secret": "host secret", "work/a.txt": "A", "work/out/b.csv": "1,2\n",
		"work/out/sub/c.bin": "\xff\x00", "work/big": strings.Repeat("x", 100), "work/realdir/x": "inside"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"work/leak": secret, "work/rel": "../secret", "work/dirlink": filepath.Dir(secret),
		"work/inlink": "a.txt", "work/out/up": ".."}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(work, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return OpenScratch(dir)
}

func TestCollectPaths(t *testing.T) {
	s := collectDir(t)
	cases := []struct {
		name     string
		patterns []string
		limits   CollectLimits
		want     string // name=content or name:flags, space-separated
	}{
		{"a file", []string{"a.txt"}, CollectLimits{1 << 20, 100}, "a.txt=A"},
		{"a directory, recursively and sorted", []string{"out"}, CollectLimits{1 << 20, 100}, "out/b.csv=1,2\n out/sub/c.bin=\xff\x00"},
		{"a glob", []string{"*.txt", "out/*.csv"}, CollectLimits{1 << 20, 100}, "a.txt=A out/b.csv=1,2\n"},
		{"missing", []string{"nope", "*.nope", "a.txt/x"}, CollectLimits{1 << 20, 100}, "nope:missing *.nope:missing a.txt/x:missing"},
		{"symlinks are never read through", []string{"leak", "rel", "inlink", "dirlink/secret", "out/up/secret"}, CollectLimits{1 << 20, 100},
			"leak:symlink rel:symlink inlink:symlink dirlink/secret:symlink out/up/secret:symlink"},
		{"a FIFO does not block", []string{"fifo"}, CollectLimits{1 << 20, 100}, "fifo:other"},
		{"a directory without files", []string{"empty"}, CollectLimits{1 << 20, 100}, "empty:dir"},
		{"globs skip links and FIFOs", []string{"*"}, CollectLimits{1 << 20, 100}, "a.txt=A big=" + strings.Repeat("x", 100)},
		{"the byte budget truncates", []string{"big", "a.txt"}, CollectLimits{60, 100}, "big=" + strings.Repeat("x", 60) + ":truncated a.txt=:truncated"},
		{"the file budget stops the list", []string{"a.txt", "big", "out"}, CollectLimits{1 << 20, 2}, "a.txt=A big=" + strings.Repeat("x", 100) + ":truncated"},
		{"each file once", []string{"a.txt", "*.txt"}, CollectLimits{1 << 20, 100}, "a.txt=A"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			var got []Collected
			var err error
			go func() { got, err = s.CollectPaths(c.patterns, c.limits); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("collect hangs")
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, f := range got {
				p := f.Name
				switch {
				case f.Missing:
					p += ":missing"
				case f.Type != "":
					p += ":" + f.Type
				default:
					p += "=" + string(f.Data)
				}
				if f.Truncated && f.Type == "" && !f.Missing {
					p += ":truncated"
				}
				if strings.Contains(string(f.Data), "host secret") {
					t.Fatalf("read the host's file through %s", f.Name)
				}
				parts = append(parts, p)
			}
			if g := strings.Join(parts, " "); g != c.want {
				t.Fatalf("got  %q\nwant %q", g, c.want)
			}
		})
	}
}

func TestCollectRefusesBadPatterns(t *testing.T) {
	s := collectDir(t)
	for _, p := range []string{"../secret", "/etc/passwd", "a\x01b", "[", "a//b", "./a.txt", ""} {
		if _, err := s.CollectPaths([]string{p}, CollectLimits{1 << 20, 100}); err == nil {
			t.Errorf("%q: collected", p)
		}
	}
}
