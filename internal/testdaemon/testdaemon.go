// Package testdaemon starts a real `sandboxd serve` for tests, in private
// directories, and tears it down with everything it made. Tests need root,
// and SANDBOXD_BIN naming the static binary (`make test` sets it).
package testdaemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
)

// Daemon is one running `sandboxd serve`.
type Daemon struct {
	t            *testing.T
	Dir, Socket  string
	CgroupParent string
	Client       *client.Client
	cmd          *exec.Cmd
	log          *buffer
}

type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Log returns what the daemon logged so far.
func (d *Daemon) Log() string {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	return d.log.buf.String()
}

// Start runs the daemon from SANDBOXD_BIN with extra flags and waits until
// it answers. It is stopped (SIGTERM) when the test ends.
func Start(t *testing.T, args ...string) *Daemon {
	t.Helper()
	bin := os.Getenv("SANDBOXD_BIN")
	if bin == "" || os.Geteuid() != 0 {
		t.Fatal("needs root and SANDBOXD_BIN: run with `make test`")
	}
	dir := t.TempDir()
	// Sandboxes in user namespaces must be able to reach the image store.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &Daemon{t: t, Dir: dir, Socket: filepath.Join(dir, "sandboxd.sock"),
		CgroupParent: fmt.Sprintf("sandboxd-test-%d-%s", os.Getpid(), filepath.Base(filepath.Dir(dir))), log: &buffer{}}
	full := append([]string{"serve", "--socket", d.Socket, "--state-dir", filepath.Join(dir, "state"),
		"--run-dir", filepath.Join(dir, "run"), "--cgroup-parent", d.CgroupParent}, args...)
	d.cmd = exec.Command(bin, full...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.Client = client.New(d.Socket)
	t.Cleanup(d.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.Client.Health(ctx)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			t.Fatalf("daemon did not come up: %v\n%s", err, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM, waits, and removes the daemon's cgroup parent.
func (d *Daemon) Stop() {
	if d.cmd.Process != nil && d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = d.cmd.Process.Kill() // ours, by pid
			<-done
			d.t.Errorf("daemon did not stop on SIGTERM\n%s", d.Log())
		}
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + d.CgroupParent)
	mem, _ := filepath.Glob("/sys/fs/cgroup/memory/*/*/" + d.CgroupParent)
	for _, dir := range append(dirs, mem...) {
		_ = os.Remove(dir)
	}
}

// ImportDir imports the directory tree dir as image name.
func (d *Daemon) ImportDir(name, dir string) *api.Image {
	d.t.Helper()
	stream := dirtar.Stream(dir)
	defer stream.Close()
	img, err := d.Client.Import(context.Background(), stream, name)
	if err != nil {
		d.t.Fatalf("import %s from %s: %v\n%s", name, dir, err, d.Log())
	}
	return img
}
