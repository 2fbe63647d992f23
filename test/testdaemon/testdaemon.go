// Package testdaemon is test support, not production code: it runs a
// real `sandboxd serve` in private directories for the suites and benchmarks that drive it from outside, and tears it
// down with everything it made. Launch is for programs (the soak); Start
// and StartWith wrap it for tests, which need root and SANDBOXD_BIN naming
// the static binary (`make test` sets it).
package testdaemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
)

// Config says how to run one daemon.
type Config struct {
	// Bin is the sandboxd binary; empty means $SANDBOXD_BIN.
	Bin string
	// Dir holds the daemon's state and run directories (and its socket,
	// unless Socket is set). It must exist.
	Dir string
	// Socket overrides the socket path.
	Socket string
	// CgroupParent is the daemon's --cgroup-parent; empty means one named
	// after Dir, so that daemons never share a parent.
	CgroupParent string
	// LogLevel is the daemon's --log-level; empty means debug.
	LogLevel string
	// Args are more flags for `sandboxd serve`.
	Args []string
	// Env is more of the daemon's environment, after this process's.
	Env []string
	// UpTimeout bounds the wait for the first answer; zero means 15 s.
	UpTimeout time.Duration
	// Images are in the daemon's store when it first answers: hard links
	// to seeds (seed.go), or imported through the API where the seeds are
	// on another filesystem than Dir.
	Images []Image
}

// Daemon is one `sandboxd serve`, started and stopped by its owner.
type Daemon struct {
	Dir, Socket, StateDir, RunDir, CgroupParent string
	Client                                      *client.Client

	bin, logLevel string
	args, env     []string
	upTimeout     time.Duration
	cmd           *exec.Cmd
	log           *SyncBuffer
	t             testing.TB // set by Start and StartWith, for the helpers that fail a test
}

// SyncBuffer collects a process's output while others read it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Launch starts a daemon as cfg says and waits until it answers.
func Launch(cfg Config) (*Daemon, error) {
	if cfg.Bin == "" {
		cfg.Bin = os.Getenv("SANDBOXD_BIN")
	}
	if cfg.Bin == "" {
		return nil, errors.New("no sandboxd binary: set SANDBOXD_BIN (`make test` does)")
	}
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Dir: cfg.Dir, Socket: cfg.Socket, StateDir: filepath.Join(cfg.Dir, "state"),
		RunDir: filepath.Join(cfg.Dir, "run"), CgroupParent: cfg.CgroupParent,
		bin: bin, logLevel: cfg.LogLevel, args: cfg.Args, env: cfg.Env, upTimeout: cfg.UpTimeout}
	if d.Socket == "" {
		d.Socket = filepath.Join(cfg.Dir, "sandboxd.sock")
	}
	if d.CgroupParent == "" {
		d.CgroupParent = "sandboxd-test-" + strings.Trim(strings.ReplaceAll(cfg.Dir, "/", "-"), "-")
	}
	if d.logLevel == "" {
		d.logLevel = "debug"
	}
	if d.upTimeout == 0 {
		d.upTimeout = 15 * time.Second
	}
	d.Client = client.New(d.Socket)
	importAfter := cfg.Images
	if len(cfg.Images) > 0 {
		err := linkImages(bin, d.StateDir, cfg.Images)
		if err == nil {
			importAfter = nil
		} else if !errors.Is(err, errCrossDevice) {
			return nil, err
		}
	}
	if err := d.Restart(); err != nil {
		return nil, err
	}
	for _, img := range importAfter {
		if _, err := d.Import(context.Background(), img.Name, img.Dir); err != nil {
			_ = d.Close()
			return nil, err
		}
	}
	return d, nil
}

// Restart starts the daemon again, with the same directories and flags,
// after Kill or Stop, and waits until it answers. Its log starts afresh.
func (d *Daemon) Restart() error {
	if d.Running() {
		return errors.New("testdaemon: the daemon is still running")
	}
	args := append([]string{"serve", "--socket", d.Socket, "--state-dir", d.StateDir, "--run-dir", d.RunDir,
		"--cgroup-parent", d.CgroupParent, "--log-level", d.logLevel}, d.args...)
	d.cmd = exec.Command(d.bin, args...)
	if d.env != nil {
		d.cmd.Env = append(os.Environ(), d.env...)
	}
	d.log = &SyncBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(d.upTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.Client.Health(ctx)
		cancel()
		var apiErr *client.Error
		if err == nil || errors.As(err, &apiErr) { // an API error (401 under --require-auth) is an answer too
			return nil
		}
		if time.Now().After(deadline) || exitedEarly(d.cmd) {
			d.Kill()
			return fmt.Errorf("the daemon did not come up: %v\n%s", err, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitedEarly reports whether cmd's process is gone or a zombie, and
// stays so: the daemon re-executes itself at start (runtime.ReexecSealed),
// and when Go runs that execve on a thread other than the main one, the
// kernel shows the thread group's leader as a zombie for an instant while
// the executing thread takes its pid over. One look would take that
// instant for a dead daemon (CI saw it: "did not come up" after 0.1 s with
// an empty log).
func exitedEarly(cmd *exec.Cmd) bool {
	for look := 0; look < 3; look++ {
		if look > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if err != nil {
			return true
		}
		i := bytes.LastIndexByte(stat, ')')
		if !(i > 0 && i+2 < len(stat) && stat[i+2] == 'Z') {
			return false
		}
	}
	return true
}

// Log returns what the daemon logged since it was last started.
func (d *Daemon) Log() string { return d.log.String() }

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Running reports whether the daemon was started and not yet waited for.
func (d *Daemon) Running() bool {
	return d.cmd != nil && d.cmd.Process != nil && d.cmd.ProcessState == nil
}

// Stop sends SIGTERM and waits; a daemon that is still there after the
// grace timeout is killed, and Stop says so.
func (d *Daemon) Stop(grace time.Duration) error {
	if !d.Running() {
		return nil
	}
	return Terminate(d.cmd, grace)
}

// Close stops the daemon (SIGTERM, a minute at most) and removes its parent
// cgroups, for programs that launched it; tests get this from StartWith.
// A daemon that had to be killed leaves its mounts and cgroups behind: it
// is started once more, so that its recovery removes them, and stopped.
func (d *Daemon) Close() error {
	err := d.Stop(time.Minute)
	if left := d.Leftovers(); len(left) > 0 && d.cmd != nil {
		if rerr := d.Restart(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restarting to clean up: %w", rerr))
		} else {
			err = errors.Join(err, d.Stop(time.Minute))
		}
		if left := d.Leftovers(); len(left) > 0 {
			err = errors.Join(err, fmt.Errorf("left on the host: %s", strings.Join(left, "; ")))
		}
	}
	RemoveCgroupParent(d.CgroupParent)
	return err
}

// Terminate sends SIGTERM to cmd's process (ours, by pid) and waits for it,
// killing it after grace; it fails when it had to kill.
func Terminate(cmd *exec.Cmd, grace time.Duration) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("pid %d did not stop within %v of SIGTERM", cmd.Process.Pid, grace)
	}
}

// Kill sends SIGKILL to the daemon (ours, by pid) and waits for it.
func (d *Daemon) Kill() {
	if d.Running() {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	}
}

// Import imports the directory tree dir as image name.
func (d *Daemon) Import(ctx context.Context, name, dir string) (*api.Image, error) {
	stream := dirtar.Stream(dir)
	defer stream.Close()
	img, err := d.Client.Import(ctx, stream, name)
	if err != nil {
		return nil, fmt.Errorf("import %s from %s: %w", name, dir, err)
	}
	return img, nil
}

// CgroupDirs lists the daemon's parent cgroup in every hierarchy.
func (d *Daemon) CgroupDirs() []string { return CgroupDirs(d.CgroupParent) }

// CgroupDirs lists where a daemon started by this process with
// --cgroup-parent parent keeps its sandboxes, in every hierarchy.
func CgroupDirs(parent string) []string {
	dirs, err := cgroup.DirsOf(parent)
	if err != nil {
		return nil
	}
	return dirs
}

// RemoveCgroupParent removes a stopped daemon's parent cgroups if they
// are empty (the daemon removes them itself when it stops cleanly).
func RemoveCgroupParent(parent string) {
	for _, dir := range CgroupDirs(parent) {
		_ = os.Remove(dir)
	}
}

// Leftovers lists what the daemon's sandboxes hold on the host: their
// cgroups ("cgroup: " paths), mounts under its sandbox state directory
// ("mount: " lines of mountinfo) and state and scratch directories ("dir: "
// paths); once the daemon has stopped, also the state directory's own
// tmpfs, if it is still mounted. A stopped daemon must leave none; a
// running one, its warm pool at most.
func (d *Daemon) Leftovers() []string {
	var out []string
	for _, dir := range d.CgroupDirs() {
		cg, _ := filepath.Glob(filepath.Join(dir, cgroup.StalePrefix+"*"))
		for _, c := range cg {
			out = append(out, "cgroup: "+c)
		}
	}
	state := d.SandboxStateDir()
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (strings.HasPrefix(f[4], state+"/") || (f[4] == state && !d.Running())) {
			out = append(out, "mount: "+l)
		}
	}
	for _, sub := range []string{"containers", "scratch", "netns"} {
		entries, _ := os.ReadDir(filepath.Join(state, sub))
		for _, e := range entries {
			out = append(out, "dir: "+filepath.Join(state, sub, e.Name()))
		}
	}
	return out
}

// SandboxStateDir is where the daemon keeps sandbox state (libcontainer's
// state, scratch and root mount points): "sandboxes" in its run dir.
func (d *Daemon) SandboxStateDir() string { return filepath.Join(d.RunDir, "sandboxes") }

var sandboxIDRE = regexp.MustCompile(cgroup.StalePrefix + `[0-9a-f]+`)

// SandboxID returns the first sandbox id that line names, or "".
func SandboxID(line string) string { return sandboxIDRE.FindString(line) }

// SandboxIDs returns the sandbox ids that lines (leftovers, process
// lists) name.
func SandboxIDs(lines []string) map[string]bool {
	ids := map[string]bool{}
	for _, l := range lines {
		if id := SandboxID(l); id != "" {
			ids[id] = true
		}
	}
	return ids
}

// Start runs a daemon for test t in a fresh directory, with extra flags,
// and stops it when the test ends.
func Start(t testing.TB, args ...string) *Daemon {
	t.Helper()
	return StartWith(t, Config{Args: args})
}

// StartWith runs a daemon for test t as cfg says; an empty cfg.Dir means a
// fresh temporary directory. The daemon is stopped (SIGTERM) when the test
// ends, and the test fails if it does not stop within a minute.
func StartWith(t testing.TB, cfg Config) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 || (cfg.Bin == "" && os.Getenv("SANDBOXD_BIN") == "") {
		t.Fatal("needs root and SANDBOXD_BIN: run with `make test`")
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
		OpenPath(t, cfg.Dir)
	}
	d, err := Launch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.t = t
	t.Cleanup(func() {
		if !d.Running() && len(d.Leftovers()) > 0 {
			// Killed and never restarted (a test that stopped midway): a
			// new instance's recovery removes what the killed one left,
			// rather than leaving mounts and processes on the host.
			if err := d.Restart(); err != nil {
				t.Errorf("restarting the daemon to clean up: %v", err)
			}
		}
		if err := d.Close(); err != nil {
			t.Errorf("%v\n%s", err, d.Log())
		}
	})
	return d
}

// OpenPath makes dir and every directory above it up to the temporary
// directory searchable by others: sandboxes in user namespaces must reach
// the image store under it.
func OpenPath(t testing.TB, dir string) {
	t.Helper()
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// ImportDir imports the directory tree dir as image name, failing the test
// on error.
func (d *Daemon) ImportDir(name, dir string) *api.Image {
	d.t.Helper()
	img, err := d.Import(context.Background(), name, dir)
	if err != nil {
		d.t.Fatalf("%v\n%s", err, d.Log())
	}
	return img
}

// MustRestart is Restart for tests.
func (d *Daemon) MustRestart() {
	d.t.Helper()
	if err := d.Restart(); err != nil {
		d.t.Fatal(err)
	}
}
