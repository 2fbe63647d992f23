package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/limits"
)

// FuzzOverlay lays arbitrary language limits over the defaults: what it
// accepts validates, and every size and duration it parsed is positive.
func FuzzOverlay(f *testing.F) {
	f.Add("10s", "5s", "128MiB", int64(64), 0.5, "1MiB", "64MiB", "64MiB", "16MiB", uint64(256))
	f.Add("", "", "", int64(0), 0.0, "", "", "", "", uint64(0))
	f.Add("-1s", "0", "-5MiB", int64(-1), -0.5, "0", "1e3", "x", "8EiB", uint64(1))
	f.Add("2562047h", "1ns", "1", int64(1<<62), 1e308, "1", "1", "1", "1", uint64(1<<63))
	base, err := Default().Resolve()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, wall, cpu, mem string, pids int64, cpus float64, out, tmp, work, fsize string, nofile uint64) {
		// An empty string or a zero leaves the key out, as a catalog entry
		// that does not name it.
		l := Limits{}
		for k, v := range map[string]string{"wall_time": wall, "cpu_time": cpu, "memory": mem, "output": out, "tmp": tmp, "work": work, "file_size": fsize} {
			if v != "" {
				l[k] = v
			}
		}
		for k, v := range map[string]any{"pids": pids, "cpus": cpus, "nofile": int64(nofile)} {
			if v != int64(0) && v != 0.0 {
				l[k] = v
			}
		}
		got, err := l.Over(base.Defaults)
		if err != nil {
			return
		}
		checkValid(t, got)
	})
}

func checkValid(t *testing.T, l limits.Set) {
	t.Helper()
	if err := l.Validate(); err != nil {
		t.Fatalf("accepted limits do not validate: %v (%+v)", err, l)
	}
	if l.WallTime <= 0 || l.CPUTime <= 0 || l.MemoryBytes <= 0 || l.OutputBytes <= 0 || l.TmpBytes <= 0 || l.WorkBytes <= 0 || l.FileSizeBytes <= 0 {
		t.Fatalf("accepted a limit that is not positive: %+v", l)
	}
}

// FuzzLoadResolve reads arbitrary TOML as a configuration file: Load and
// Resolve never panic, and a configuration they accept has valid defaults
// within valid maximums.
func FuzzLoadResolve(f *testing.F) {
	f.Add("concurrency = 4\n[defaults]\nmemory = \"64MiB\"\nwall_time = \"5s\"\n")
	f.Add("[maximums]\nmemory = \"1KiB\"\n")
	f.Add("max_body = \"-1\"\n")
	f.Add("bogus = 1\n")
	f.Add("[defaults]\npids = -3\ncpus = nan\n")
	f.Add("[defaults]\ncpus = inf\n[maximums]\ncpus = inf\n")
	f.Add("socket_mode = \"0777777\"\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			return
		}
		r, err := cfg.Resolve()
		if err != nil {
			return
		}
		checkValid(t, r.Defaults)
		checkValid(t, r.Maximums)
		if err := r.Defaults.Within(r.Maximums); err != nil {
			t.Fatalf("defaults above maximums accepted: %v", err)
		}
		if r.MaxBody <= 0 || r.SocketMode > 0o777 || r.Concurrency <= 0 {
			t.Fatalf("accepted max_body %d, socket mode %o, concurrency %d", r.MaxBody, r.SocketMode, r.Concurrency)
		}
	})
}
