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
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The daemon serves on a socket handed over by its parent, as systemd's
// socket activation does (LISTEN_FDS=1, LISTEN_PID = the daemon's pid, the
// socket on fd 3). It neither creates its own socket nor removes the
// handed-over one.
func TestSocketActivation(t *testing.T) {
	dir := t.TempDir()
	testdaemon.OpenPath(t, dir)
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
	parent := "sandboxd-test-" + filepath.Base(dir)
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, sandboxdBin, "serve",
		"--socket", own, "--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"),
		"--cgroup-parent", parent)
	cmd.ExtraFiles = []*os.File{f}
	log := &testdaemon.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := testdaemon.Terminate(cmd, time.Minute); err != nil {
				t.Errorf("%v\n%s", err, log.String())
			}
			testdaemon.RemoveCgroupParent(parent)
		}
	}
	t.Cleanup(stop)

	c := client.New(activated)
	testdaemon.WaitUntil(t, "the daemon to answer on the activated socket", 10*time.Second, func() bool {
		_, err := c.Health(context.Background())
		return err == nil
	})
	// The log comes through a pipe: it may lag behind the answer.
	testdaemon.WaitUntil(t, "socket activation in the log", 5*time.Second, func() bool {
		return strings.Contains(log.String(), "socket activation")
	})
	if _, err := os.Stat(own); err == nil {
		t.Errorf("the daemon made its own socket %s as well", own)
	}
	stop()
	if _, err := os.Stat(activated); err != nil {
		t.Errorf("the handed-over socket is gone after the daemon stopped: %v", err)
	}
}
