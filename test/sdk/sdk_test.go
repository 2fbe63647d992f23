// Package sdk_test runs the Python and TypeScript SDKs' own test suites
// (sdk/python, sdk/typescript) against a real daemon, and checks that every
// endpoint of api/openapi.yaml is in each client's table.
package sdk_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The suites' images: the test rootfs as "busybox", and the language
// images that run_code uses.
var languageRecipes = []string{"python", "node"}

// startDaemon starts a daemon with the language catalog, the busybox test
// image and the python and node images imported.
func startDaemon(t *testing.T) *testdaemon.Daemon {
	t.Helper()
	rootfs := os.Getenv("SANDBOXD_ROOTFS")
	if rootfs == "" {
		t.Fatal("SANDBOXD_ROOTFS is not set: run with `make test`")
	}
	catalog, err := filepath.Abs("../../languages/catalog.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, "--catalog", catalog, "--concurrency", "2")
	d.ImportDir("busybox", rootfs)
	for _, r := range languageRecipes {
		image, tree := languageImage(t, r)
		d.ImportDir(image, tree)
	}
	return d
}

// languageImage is a built language image's name and tree in the image
// cache (`make images` builds them). Unlike test/languages, it does not
// insist that the image was built from this checkout's recipe: the SDK
// suites need a Python and a Node, not a given build of them.
func languageImage(t *testing.T, recipe string) (image, tree string) {
	t.Helper()
	cache := os.Getenv("SANDBOXD_IMAGE_CACHE")
	if cache == "" {
		cache = "/var/cache/sandboxd/images"
	}
	name, err := os.ReadFile(filepath.Join(cache, recipe, "image"))
	tree = filepath.Join(cache, recipe, "rootfs")
	if err == nil {
		_, err = os.Stat(tree)
	}
	if err != nil {
		t.Fatalf("the %s image is not built (%v): run `make images`", recipe, err)
	}
	return strings.TrimSpace(string(name)), tree
}

// run runs a suite's command in dir with the daemon's socket in
// $SANDBOXD_SOCKET, logging its output, and fails the test when it fails.
func run(t *testing.T, ctx context.Context, d *testdaemon.Daemon, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SANDBOXD_SOCKET="+d.Socket)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s (%v):\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, d.Log())
	}
}

// TestPythonSDK: sdk/python's unittest suite passes against a real daemon.
func TestPythonSDK(t *testing.T) {
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := filepath.Abs("../../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	// -B: no __pycache__ in the checkout.
	run(t, ctx, d, dir, "python3", "-B", "-m", "unittest", "-v", "tests.test_sdk")
}
