// Package daemon_test drives a real `sandboxd serve` over its Unix socket:
// every error code, concurrency, disconnects, crash recovery, images and the
// OpenAPI schema. Run it with `make test` (it needs root, the static binary
// and the busybox test rootfs).
package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
)

var (
	sandboxdBin string
	testRootfs  string
)

func TestMain(m *testing.M) {
	sandboxdBin = os.Getenv("SANDBOXD_BIN")
	testRootfs = os.Getenv("SANDBOXD_ROOTFS")
	if sandboxdBin == "" || testRootfs == "" || os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "daemon tests need root, SANDBOXD_BIN and SANDBOXD_ROOTFS: run them with `make test`")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// daemon is one `sandboxd serve` under test.
type daemon struct {
	t                          *testing.T
	dir, socket, state, runDir string
	cgroupParent               string
	cmd                        *exec.Cmd
	log                        *syncBuffer
	client                     *client.Client
	args                       []string
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDaemon starts a daemon in fresh directories, with extra flags.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	// Sandboxes in user namespaces must be able to reach the image store.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	d := &daemon{
		t: t, dir: dir, socket: filepath.Join(dir, "sandboxd.sock"),
		state: filepath.Join(dir, "state"), runDir: filepath.Join(dir, "run"),
		cgroupParent: "sandboxd-test-" + filepath.Base(dir),
		args:         args,
	}
	d.start()
	t.Cleanup(func() {
		d.stop()
		removeCgroupParent(d.cgroupParent)
	})
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	args := append([]string{"serve", "--socket", d.socket, "--state-dir", d.state, "--run-dir", d.runDir,
		"--cgroup-parent", d.cgroupParent, "--log-level", "debug"}, d.args...)
	d.cmd = exec.Command(sandboxdBin, args...)
	d.log = &syncBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.client = client.New(d.socket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.client.Health(ctx)
		cancel()
		var apiErr *client.Error
		if err == nil || errors.As(err, &apiErr) { // an API error (401 under --require-auth) is an answer too
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon did not come up: %v\n%s", err, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
		d.t.Errorf("daemon did not stop on SIGTERM\n%s", d.log.String())
	}
}

// kill sends SIGKILL to the daemon (only ours, by pid).
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
}

// importRootfs tars dir and imports it as name.
func (d *daemon) importRootfs(name, dir string) *api.Image {
	d.t.Helper()
	img, err := d.client.Import(context.Background(), tarDir(d.t, dir), name)
	if err != nil {
		d.t.Fatalf("import %s: %v\n%s", name, err, d.log.String())
	}
	return img
}

func tarDir(t *testing.T, dir string) io.Reader {
	t.Helper()
	r, err := dirtar.Tar(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exec runs cmd in image through the API.
func (d *daemon) exec(ctx context.Context, req *api.ExecuteRequest) (*api.ExecuteResponse, error) {
	return d.client.Execute(ctx, req)
}

func removeCgroupParent(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	mem, _ := filepath.Glob("/sys/fs/cgroup/memory/*/*/" + parent)
	for _, d := range append(dirs, mem...) {
		_ = os.Remove(d)
	}
}

// leftovers lists what a daemon's sandboxes may leave: cgroups under its
// parent, mounts under its run dir, sandbox state and scratch directories.
func leftovers(t *testing.T, d *daemon) []string {
	t.Helper()
	var out []string
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + d.cgroupParent + "/sbx-*")
	cg2, _ := filepath.Glob("/sys/fs/cgroup/memory/*/*/" + d.cgroupParent + "/sbx-*")
	out = append(out, cg...)
	out = append(out, cg2...)
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, d.runDir) {
			out = append(out, "mount: "+l)
		}
	}
	for _, sub := range []string{"containers", "scratch"} {
		entries, _ := os.ReadDir(filepath.Join(d.runDir, sub))
		for _, e := range entries {
			out = append(out, filepath.Join(sub, e.Name()))
		}
	}
	return out
}

func hostProcessesWith(marker string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && strings.Contains(string(cmdline), marker) {
			found = append(found, d+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
