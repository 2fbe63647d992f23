// Package daemon_test drives a real `sandboxd serve` over its Unix socket:
// every error code, concurrency, disconnects, crash recovery, images and the
// OpenAPI schema. Run it with `make test` (it needs root, the static binary
// and the busybox test rootfs).
package daemon_test

import (
	"os"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

var (
	sandboxdBin string
	testRootfs  string
)

func TestMain(m *testing.M) {
	sandboxdBin, testRootfs = testdaemon.RequireEnv("daemon")
	os.Exit(m.Run())
}

// stopDaemon stops d now (SIGTERM), failing the test if it does not stop.
func stopDaemon(t *testing.T, d *testdaemon.Daemon) {
	t.Helper()
	if err := d.Stop(time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
}
