package mcp_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// npmCache is where the client's npm modules are installed: outside the
// checkout, reused while the committed lock file is unchanged.
// $SANDBOXD_NPM_CACHE overrides its parent.
func npmCache() string {
	if d := os.Getenv("SANDBOXD_NPM_CACHE"); d != "" {
		return filepath.Join(d, "mcp-sdk")
	}
	return "/var/cache/sandboxd/npm/mcp-sdk"
}

// clientDir installs the test client (client/: package.json, its lock and
// client.mjs) into the cache with `npm ci`, unless the cache already holds
// this lock's install, and returns the directory to run client.mjs in.
// A lock on the directory keeps two test processes from installing at
// once.
func clientDir(t *testing.T) string {
	t.Helper()
	dir := npmCache()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)

	lock := readFile(t, "client/package-lock.json")
	installed, _ := os.ReadFile(filepath.Join(dir, "installed.lock"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil || !bytes.Equal(installed, lock) {
		for _, name := range []string{"package.json", "package-lock.json"} {
			writeFile(t, filepath.Join(dir, name), readFile(t, "client/"+name))
		}
		_ = os.Remove(filepath.Join(dir, "installed.lock"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
		writeFile(t, filepath.Join(dir, "installed.lock"), lock)
		t.Logf("installed the MCP SDK into %s in %v", dir, time.Since(start).Round(time.Millisecond))
	}
	// The script goes beside node_modules, where Node's ESM resolution
	// finds the SDK; it is copied every time, so edits take effect.
	writeFile(t, filepath.Join(dir, "client.mjs"), readFile(t, "client/client.mjs"))
	return dir
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
