package daemon_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

// The daemon serves on a socket handed over by its parent, as systemd's
// socket activation does (LISTEN_FDS=1, LISTEN_PID = the daemon's pid, the
// socket on fd 3). It neither creates its own socket nor removes the
// handed-over one.
func TestSocketActivation(t *testing.T) {
	dir := t.TempDir()
	// Sandboxes in user namespaces must be able to reach the image store.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	activated := filepath.Join(dir, "activated.sock")
	ln, err := net.Listen("unix", activated)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	f, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	own := filepath.Join(dir, "own.sock")
	// sh sets LISTEN_PID to its own pid, which exec hands to sandboxd.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, sandboxdBin, "serve",
		"--socket", own, "--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"),
		"--cgroup-parent", "sandboxd-test-"+filepath.Base(dir))
	cmd.ExtraFiles = []*os.File{f}
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d := &daemon{t: t, cmd: cmd, log: log, cgroupParent: "sandboxd-test-" + filepath.Base(dir)}
	t.Cleanup(func() { d.stop(); removeCgroupParent(d.cgroupParent) })

	c := client.New(activated)
	waitUntil(t, "the daemon to answer on the activated socket", 10*time.Second, func() bool {
		_, err := c.Health(context.Background())
		return err == nil
	})
	// The log comes through a pipe: it may lag behind the answer.
	waitUntil(t, "socket activation in the log", 5*time.Second, func() bool {
		return strings.Contains(log.String(), "socket activation")
	})
	if _, err := os.Stat(own); err == nil {
		t.Errorf("the daemon made its own socket %s as well", own)
	}
	d.stop()
	if _, err := os.Stat(activated); err != nil {
		t.Errorf("the handed-over socket is gone after the daemon stopped: %v", err)
	}
}
