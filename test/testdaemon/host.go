package testdaemon

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/internal/dirtar"
)

// Tar tars dir for an import; edit, when set, may change each header (and
// returns false to leave the entry out).
func Tar(t testing.TB, dir string, edit func(*tar.Header) bool) io.Reader {
	t.Helper()
	r, err := dirtar.Tar(dir, edit)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// HTTPClient talks HTTP over the Unix socket at socket, for requests the
// Go client does not make (malformed ones among them).
func HTTPClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
}

// ProcessesWith lists host processes whose argv contains marker, as
// "/proc/PID: argv".
func ProcessesWith(marker string) []string {
	return processes(func(dir string) bool {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		return err == nil && strings.Contains(string(cmdline), marker)
	})
}

// ProcessesOfSandboxes lists host processes in a sandbox cgroup under the
// parent named parent, whatever their argv, as "/proc/PID: argv".
func ProcessesOfSandboxes(parent string) []string {
	return processes(func(dir string) bool {
		cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
		return err == nil && strings.Contains(string(cg), parent+"/"+cgroup.StalePrefix)
	})
}

func processes(match func(procDir string) bool) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if match(d) {
			cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
			found = append(found, d+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// WaitUntil polls cond until it holds, failing the test after d.
func WaitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RequireEnv returns $SANDBOXD_BIN and $SANDBOXD_ROOTFS for a suite's
// TestMain, or exits with one line saying how to run it: these suites
// build real sandboxes, as root, and never skip.
func RequireEnv(suite string) (bin, rootfs string) {
	bin, rootfs = os.Getenv("SANDBOXD_BIN"), os.Getenv("SANDBOXD_ROOTFS")
	if bin == "" || rootfs == "" || os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "%s tests need root, SANDBOXD_BIN and SANDBOXD_ROOTFS: run them with `make test`\n", suite)
		os.Exit(1)
	}
	return bin, rootfs
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// daemon's --listen tcp://127.0.0.1:PORT.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
