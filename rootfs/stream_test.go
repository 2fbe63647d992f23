package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// hostFile writes content to a new file of the test's, as the daemon's
// artifact directory would hold it.
func hostFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifact")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPopulateFromSource(t *testing.T) {
	big := strings.Repeat("z", 3<<20) // more than io.Copy's buffer, less than /work
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(hostFile(t, "secret"), link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		work    int64 // /work's size; 0: a plain directory
		file    File
		want    string // the content in /work, when it worked
		wantErr error  // nil: it works; errAny: any error but ErrWorkFull
	}{
		{"small", 0, File{Name: "a.out", Source: hostFile(t, "bin"), Mode: 0o755}, "bin", nil},
		{"in a subdirectory, larger than a buffer", 0, File{Name: "out/lib.so", Source: hostFile(t, big)}, big, nil},
		{"Source wins over Data", 0, File{Name: "x", Data: []byte("data"), Source: hostFile(t, "source")}, "source", nil},
		{"a missing source is the daemon's", 0, File{Name: "x", Source: filepath.Join(t.TempDir(), "gone")}, "", errAny},
		{"a symlinked source is not followed", 0, File{Name: "x", Source: link}, "", errAny},
		{"a FIFO source does not block", 0, File{Name: "x", Source: fifo}, "", errAny},
		{"larger than /work", 1 << 20, File{Name: "big", Source: hostFile(t, big)}, "", ErrWorkFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Scratch{dir: t.TempDir(), uid: os.Getuid(), gid: os.Getgid()}
			if tc.work > 0 {
				s = newScratch(t)
			} else if err := os.Mkdir(s.WorkDir(), 0o755); err != nil {
				t.Fatal(err)
			}
			var err error
			within(t, "Populate", func() { err = s.Populate([]File{tc.file}) })
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatal(err)
			case tc.wantErr == errAny && (err == nil || errors.Is(err, ErrWorkFull)):
				t.Fatalf("got %v, want an error that is not ErrWorkFull", err)
			case tc.wantErr == ErrWorkFull && !errors.Is(err, ErrWorkFull):
				t.Fatalf("got %v, want ErrWorkFull", err)
			case tc.wantErr != nil:
				if err != nil && strings.Contains(err.Error(), s.dir) {
					t.Errorf("the error names the host's /work: %v", err)
				}
				return
			}
			p := filepath.Join(s.WorkDir(), tc.file.Name)
			got, err := os.ReadFile(p)
			if err != nil || string(got) != tc.want {
				t.Fatalf("read back %d bytes, %v", len(got), err)
			}
			info, _ := os.Stat(p)
			if tc.file.Mode != 0 && info.Mode().Perm() != tc.file.Mode {
				t.Errorf("mode %v, want %v", info.Mode().Perm(), tc.file.Mode)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestCollectInto(t *testing.T) {
	for _, tc := range []struct {
		name    string
		budget  int64
		huge    bool // a sparse 1 TiB file in /work: reading it would hang the test
		want    []string
		wantErr error
	}{
		{"regular files only: no symlink, no FIFO", 1 << 20, false,
			[]string{"a.txt=A", "big=" + strings.Repeat("x", 100), "out/b.csv=1,2\n", "out/sub/c.bin=\xff\x00", "realdir/x=inside"}, nil},
		{"exactly the budget", 1 + 100 + 4 + 2 + 6, false, nil, nil},
		{"one byte short is all or nothing", 1 + 100 + 4 + 2 + 6 - 1, false, nil, ErrTooLarge},
		{"a file over the budget is not read", 1 << 20, true, nil, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := collectDir(t)
			if tc.huge {
				f, err := os.Create(filepath.Join(s.WorkDir(), "huge"))
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(1 << 40); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			dir := t.TempDir()
			var got []File
			var err error
			within(t, "CollectInto", func() { got, err = s.CollectInto(dir, tc.budget) })
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				// Not even opened for the copy: no trace of it in dir.
				if _, err := os.Stat(filepath.Join(dir, "huge")); !os.IsNotExist(err) {
					t.Errorf("the file over the budget was copied: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range got {
				if f.Data != nil || !strings.HasPrefix(f.Source, dir+"/") || f.Mode != 0o640 {
					t.Errorf("%s: data %d bytes, source %q, mode %v", f.Name, len(f.Data), f.Source, f.Mode)
				}
				b, err := os.ReadFile(f.Source)
				if err != nil || int64(len(b)) != f.Size {
					t.Errorf("%s: %d bytes of %d: %v", f.Name, len(b), f.Size, err)
				}
				names = append(names, f.Name+"="+string(b))
			}
			if tc.want != nil && !slices.Equal(names, tc.want) {
				t.Errorf("collected %q\nwant %q", names, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(dir, "leak")); !os.IsNotExist(err) {
				t.Errorf("the symlink to a host file was copied: %v", err)
			}
		})
	}
}

// The files CollectInto leaves feed Populate: a compile's output reaches
// the next sandbox's /work whole, with its mode.
func TestCollectIntoThenPopulate(t *testing.T) {
	s := collectDir(t)
	got, err := s.CollectInto(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	next := &Scratch{dir: t.TempDir(), uid: os.Getuid(), gid: os.Getgid()}
	if err := os.Mkdir(next.WorkDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := next.Populate(got); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(next.WorkDir(), "out/sub/c.bin"))
	if err != nil || string(b) != "\xff\x00" {
		t.Fatalf("%q %v", b, err)
	}
}
