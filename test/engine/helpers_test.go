// Package engine_test checks every guarantee of `sandboxd exec` by running
// real programs in real sandboxes and reading the evidence from inside.
// It needs root and is driven by `make test`, which builds the static
// binary and the busybox test rootfs (with the probe program).
package engine_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

var (
	sandboxdBin string
	testRootfs  string
	runDir      string
	// cgroupParent keeps this suite's sandboxes apart from any other
	// sandboxd on the machine, so that counting them means something.
	cgroupParent = fmt.Sprintf("sandboxd-engine-test-%d", os.Getpid())
)

func TestMain(m *testing.M) {
	sandboxdBin, testRootfs = testdaemon.RequireEnv("engine")
	dir, err := os.MkdirTemp("", "sandboxd-engine-test-")
	if err != nil {
		panic(err)
	}
	// Sandboxes in user namespaces must be able to reach their scratch dirs.
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	runDir = filepath.Join(dir, "run")
	code := m.Run()
	os.RemoveAll(dir)
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroupParent)
	mem, _ := filepath.Glob("/sys/fs/cgroup/memory/*/*/" + cgroupParent)
	for _, d := range append(dirs, mem...) {
		os.Remove(d)
	}
	os.Exit(code)
}

type execOutcome struct {
	code           int
	stdout, stderr string
}

// sandboxd runs `sandboxd exec` with args (flags, "--", command).
func sandboxd(t *testing.T, stdin []byte, args ...string) execOutcome {
	t.Helper()
	full := append([]string{"exec", "--run-dir", runDir}, args...)
	if !slices.Contains(args, "--cgroup-parent") {
		full = append([]string{"exec", "--run-dir", runDir, "--cgroup-parent", cgroupParent}, args...)
	}
	cmd := exec.Command(sandboxdBin, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running sandboxd: %v", err)
	}
	return execOutcome{code: code, stdout: out.String(), stderr: errb.String()}
}

// run executes cmd in the test rootfs with --json and extra flags, and
// decodes the one JSON object it prints.
func run(t *testing.T, flags []string, cmd ...string) *runtime.Result {
	t.Helper()
	args := append([]string{"--json", "--rootfs", testRootfs}, flags...)
	args = append(append(args, "--"), cmd...)
	o := sandboxd(t, nil, args...)
	var res runtime.Result
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("sandboxd %v: exit %d, stdout %q, stderr %q: not one JSON object: %v", cmd, o.code, o.stdout, o.stderr, err)
	}
	if dec.More() {
		t.Fatalf("sandboxd printed more than one JSON object: %q", o.stdout)
	}
	if res.Status != runtime.StatusInternalError && o.code != res.ExitCode {
		t.Fatalf("exit code %d, result says %d", o.code, res.ExitCode)
	}
	return &res
}

func sh(t *testing.T, flags []string, script string) *runtime.Result {
	t.Helper()
	return run(t, flags, "/bin/sh", "-c", script)
}

func wantStatus(t *testing.T, r *runtime.Result, want runtime.Status) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %q, want %q; result %+v", r.Status, want, *r)
	}
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}
