// Package daemon_test drives a real `sandboxd serve` over its Unix socket:
// every error code, concurrency, disconnects, crash recovery, images and the
// OpenAPI schema. Run it with `make test` (it needs root, the static binary
// and the busybox test rootfs).
package daemon_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/dirtar"
	"github.com/sandboxd/sandboxd/internal/testdaemon"
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

// stopDaemon stops d now (SIGTERM), failing the test if it does not stop.
func stopDaemon(t *testing.T, d *testdaemon.Daemon) {
	t.Helper()
	if err := d.Stop(time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
}

func tarDir(t *testing.T, dir string) io.Reader {
	t.Helper()
	r, err := dirtar.Tar(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
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
