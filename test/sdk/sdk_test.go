// Package sdk_test runs the Python and TypeScript SDKs' own test suites
// (sdk/python, sdk/typescript) against a real daemon, and checks that every
// endpoint of api/openapi.yaml is in each client's table.
package sdk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The suites' images: the test rootfs as "busybox", and the language
// images that run_code uses.
var languageRecipes = []string{"python", "node"}

// tcpSecret signs the tokens of the suites' TCP clients.
const tcpSecret = "sandboxd-sdk-test-secret-0123456789abcdef"

// suiteDaemon is the daemon the suites run against, and the environment
// that tells them where it is: $SANDBOXD_SOCKET, its Unix socket (no token
// needed), and $SANDBOXD_URL with $SANDBOXD_TEST_TOKEN, its TCP listener
// and a JWT for the user "sdk-tcp" (not $SANDBOXD_TOKEN, which the SDKs
// would send on the socket too).
type suiteDaemon struct {
	*testdaemon.Daemon
	env []string
}

// startDaemon starts a daemon on a Unix socket and a loopback TCP port,
// with the language catalog, the busybox test image and the python and
// node images imported.
func startDaemon(t *testing.T) *suiteDaemon {
	t.Helper()
	rootfs := os.Getenv("SANDBOXD_ROOTFS")
	if rootfs == "" {
		t.Fatal("SANDBOXD_ROOTFS is not set: run with `make test`")
	}
	catalog, err := filepath.Abs("../../languages/catalog.toml")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(secret, []byte(tcpSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testdaemon.FreePort(t))
	d := testdaemon.StartWith(t, testdaemon.Config{
		Args: []string{"--catalog", catalog, "--concurrency", "2", "--listen", "unix://", "--listen", "tcp://" + addr,
			"--jwt-secret-file", secret, "--jwt-issuer", "sdk-test", "--jwt-audience", "sandboxd"},
		Images: testdaemon.LanguageImages(t, languageRecipes...),
	})
	d.ImportDir("busybox", rootfs)
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "sdk-tcp", "iss": "sdk-test",
		"aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(tcpSecret))
	if err != nil {
		t.Fatal(err)
	}
	return &suiteDaemon{d, []string{"SANDBOXD_SOCKET=" + d.Socket, "SANDBOXD_URL=http://" + addr, "SANDBOXD_TEST_TOKEN=" + token}}
}

// run runs a suite's command in dir with the daemon's environment,
// logging its output, and fails the test when it fails.
func run(t *testing.T, ctx context.Context, d *suiteDaemon, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), d.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s (%v):\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, d.Log())
	}
}

// TestSDKs: sdk/python's unittest suite and sdk/typescript's node:test
// suite pass against one real daemon (the image imports cost most of the
// time, so the suites share it).
func TestSDKs(t *testing.T) {
	d := startDaemon(t)
	t.Run("python", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir, err := filepath.Abs("../../sdk/python")
		if err != nil {
			t.Fatal(err)
		}
		// -B: no __pycache__ in the checkout.
		run(t, ctx, d, dir, "python3", "-B", "-m", "unittest", "-v", "tests.test_sdk")
	})
	t.Run("readme", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		checkReadmePython(t, ctx, d)
	})
	t.Run("typescript", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := typescriptBuild(t, ctx)
		run(t, ctx, d, dir, "node", "--test", "--test-reporter=spec", "test/")
	})
}

// npmCache holds the SDK's dev dependencies, outside the checkout and kept
// across runs: one directory per package-lock.json content, made once with
// `npm ci`.
const npmCache = "/var/cache/sandboxd/npm"

// typescriptBuild copies sdk/typescript (its sources, tests and manifests)
// into a temporary directory, links its node_modules from the cache and
// builds it with tsc, leaving nothing in the checkout; it returns the
// directory.
func typescriptBuild(t *testing.T, ctx context.Context) string {
	t.Helper()
	src, err := filepath.Abs("../../sdk/typescript")
	if err != nil {
		t.Fatal(err)
	}
	modules := npmModules(t, ctx, src)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	for _, leftover := range []string{"node_modules", "dist"} { // from a developer's own npm install
		if err := os.RemoveAll(filepath.Join(dir, leftover)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(modules, ".bin", "tsc"), "-p", ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
	return dir
}

// npmModules returns the node_modules directory of sdk/typescript's
// package-lock.json in the cache, installing it with `npm ci` when it is
// not there yet (into a temporary directory renamed into place, so that a
// run that stops midway leaves nothing half made).
func npmModules(t *testing.T, ctx context.Context, src string) string {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	dir := filepath.Join(npmCache, "sdk-typescript-"+hex.EncodeToString(sum[:8]))
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, ".package-lock.json")); err == nil {
		return modules
	}
	if err := os.MkdirAll(npmCache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(npmCache, ".sdk-typescript-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(tmp, f), data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	t.Logf("npm ci: %v", time.Since(start).Round(time.Millisecond))
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, ".package-lock.json")); err != nil {
		t.Fatal(fmt.Errorf("npm ci left no node_modules: %w", err))
	}
	return modules
}

// isNotEmpty: another run renamed its install into place first.
func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && errors.Is(le.Err, syscall.ENOTEMPTY)
}

// checkReadmePython runs the README's Python quick start (the python block
// of "From Python and TypeScript") against the test daemon instead of
// `make run`'s, and checks that it prints what the README says.
func checkReadmePython(t *testing.T, ctx context.Context, d *suiteDaemon) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "### From Python and TypeScript\n")
	_, code, ok := strings.Cut(section, "```python\n")
	code, _, ok2 := strings.Cut(code, "```")
	const demoSocket = ".cache/demo/sandboxd.sock"
	if !ok || !ok2 || !strings.Contains(code, demoSocket) {
		t.Fatalf("the README's quick start has no python block using %s", demoSocket)
	}
	if n := strings.Count(strings.TrimSpace(code), "\n") + 1; n != 3 {
		t.Errorf("the README's Python quick start is %d lines, not three", n)
	}
	sdk, err := filepath.Abs("../../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "python3", "-B", "-c", strings.ReplaceAll(code, demoSocket, d.Socket))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+sdk)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "42\n\n" {
		t.Fatalf("the README's Python quick start printed %q (%v), want \"42\\n\\n\" (print adds a newline to stdout's)", out, err)
	}
}
