// Package judge_test drives a real daemon through the judge's features of
// language mode: interactive tests (an interactor talking to the program
// over pipes passed into both sandboxes). The busybox suite needs only the
// test rootfs (a catalog of shell "languages" over it); the languages
// suite needs the language images (`make images`). Run it with `make
// test`: it needs root, the static binary and the busybox test rootfs.
package judge_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

var (
	sandboxdBin string
	testRootfs  string
)

func TestMain(m *testing.M) {
	sandboxdBin, testRootfs = testdaemon.RequireEnv("judge")
	os.Exit(m.Run())
}

// shellCatalog makes busybox's sh a language ("sh"), a second one ("sh2",
// its own image name) so that a request's program and interactor may
// differ in language, and a compiled one ("shc").
const shellCatalog = `
[[language]]
name = "sh"
image = "busybox"
main = "main.sh"
run = ["/bin/sh", "{main}"]

[[language]]
name = "sh2"
image = "busybox2"
main = "main.sh"
run = ["/bin/sh", "{main}"]

# "Compiled" shell: the compile refuses a source that says SYNTAX, and
# leaves prog.sh for the run.
[[language]]
name = "shc"
image = "busybox"
main = "main.sh"
compile = ["/bin/sh", "-c", "if grep -q SYNTAX {main}; then echo 'syntax error in {main}' >&2; exit 1; fi; cp {main} prog.sh"]
run = ["/bin/sh", "prog.sh"]
`

// startShell starts a daemon with the shell catalog and the busybox image
// under both names; args are more flags (--no-reuse, say).
func startShell(t *testing.T, args ...string) *testdaemon.Daemon {
	t.Helper()
	cat := filepath.Join(t.TempDir(), "catalog.toml")
	if err := os.WriteFile(cat, []byte(shellCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, append([]string{"--catalog", cat, "--concurrency", "2"}, args...)...)
	d.ImportDir("busybox", testRootfs)
	d.ImportDir("busybox2", testRootfs)
	return d
}

// fds lists the descriptors the daemon holds, by what they point to.
func fds(t *testing.T, d *testdaemon.Daemon) []string {
	t.Helper()
	dir := filepath.Join("/proc", itoa(d.Pid()), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+" -> "+target)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// isParkedEntry: a process list's line (testdaemon.ProcessesOfSandboxes)
// of a sandbox's entry, which a warm sandbox keeps between runs.
func isParkedEntry(line string) bool { return strings.Contains(line, "sandbox-entry") }

// settledFDs waits until the daemon's descriptors stay the same for a
// second (sandboxes are given back to the pool after the answer) and
// returns them.
func settledFDs(t *testing.T, d *testdaemon.Daemon) []string {
	t.Helper()
	last := fds(t, d)
	for range 20 {
		time.Sleep(time.Second)
		now := fds(t, d)
		if len(now) == len(last) {
			return now
		}
		last = now
	}
	return last
}

// noLeaks checks, once the daemon has settled, that it holds no more
// descriptors than before (pipes of the exchange, relays) and that no
// process of its sandboxes is left but the warm pool's parked entries.
func noLeaks(t *testing.T, d *testdaemon.Daemon, before []string) {
	t.Helper()
	now := fds(t, d)
	for deadline := time.Now().Add(10 * time.Second); len(now) > len(before) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now = fds(t, d)
	}
	if len(now) > len(before) {
		t.Errorf("descriptors: %d before, %d after:\nbefore %v\nafter  %v", len(before), len(now), before, now)
	}
	for _, p := range testdaemon.ProcessesOfSandboxes(d.CgroupParent) {
		if !isParkedEntry(p) {
			t.Errorf("left running: %s", p)
		}
	}
}

func execute(t *testing.T, d *testdaemon.Daemon, req *api.ExecuteRequest) *api.LanguageResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := d.Client.ExecuteLanguage(ctx, req)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(d.Log()))
	}
	return r
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

func ptr[T any](v T) *T { return &v }
