package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenFilesReadEachTimeAnew(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := plainFiles()
	defer o.close()
	cases := []struct {
		name, file, content, key string
		want                     uint64
		wantErr                  string
	}{
		{name: "number", file: "pids.current", content: "3\n", want: 3},
		{name: "same file, new content", file: "pids.current", content: "12\n", want: 12},
		{name: "keyed", file: "memory.oom_control", content: "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", key: "oom_kill", want: 4},
		{name: "keyed, changed", file: "memory.oom_control", content: "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", key: "oom_kill", want: 7},
		{name: "key missing", file: "memory.events", content: "low 0\nhigh 0\n", key: "oom_kill", wantErr: `no "oom_kill"`},
		{name: "not a number", file: "cpuacct.usage", content: "x\n", wantErr: "invalid syntax"},
		{name: "too long", file: "big", content: strings.Repeat("1", 600), wantErr: "longer than"},
		{name: "absent", file: "absent", wantErr: "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.content != "" {
				write(c.file, c.content)
			}
			var got uint64
			var err error
			if c.key != "" {
				got, err = o.keyed(dir, c.file, c.key)
			} else {
				got, err = o.uint(dir, c.file)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %d, %v; want an error with %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %d, %v; want %d", got, err, c.want)
			}
		})
	}
	if n := len(o.files); n != 5 {
		t.Errorf("%d files open, want one per file read (5)", n)
	}
}

func TestOpenFilesWriteThenRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "memory.max_usage_in_bytes"), []byte("4096\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := plainFiles()
	if err := o.write(dir, "memory.max_usage_in_bytes", "0\n"); err != nil {
		t.Fatal(err)
	}
	// A regular file keeps the rest; cgroupfs would give the new peak.
	if got, err := o.read(dir, "memory.max_usage_in_bytes"); err != nil || string(got) != "0\n96\n" {
		t.Fatalf("read %q, %v after writing at offset 0", got, err)
	}
	o.close()
	if o.files != nil {
		t.Fatal("close kept the files")
	}
}

// plainFiles opens files anywhere, where a test can write them.
func plainFiles() *openFiles {
	return &openFiles{open: func(dir, name string, flags int) (*os.File, error) {
		return os.OpenFile(filepath.Join(dir, name), flags, 0)
	}}
}
