//go:build cgroup2vm

// Package cgroup2_test proves sandboxd's cgroup v2 path. It runs inside the
// qemu VM that `make test-cgroup2` boots with cgroup_no_v1=all (see
// scripts/test-cgroup2.sh), through the production code: every run is a
// real `sandboxd exec --json`. The build tag keeps it out of `go test ./...`
// on hosts that are not pure cgroup v2; on such a host, built anyway, every
// test fails (never skips) with a message saying why.
package cgroup2_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	sbx "github.com/sandboxd/sandboxd/runtime"
)

const cgroupRoot = "/sys/fs/cgroup"

// noDACEnv makes the test binary a helper that drops CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH and executes its arguments: root that must obey file
// permissions, to meet a cgroup it has not been delegated.
const noDACEnv = "CGROUP2_TEST_EXEC_WITHOUT_DAC"

var (
	sandboxdBin string
	testRootfs  string
	runDir      string
	// serviceDir is the cgroup that plays sandboxd's systemd unit with
	// Delegate=yes: the tests start sandboxd in it (or, once sandboxd has
	// made it, in its supervisor leaf, like systemd's DelegateSubgroup=).
	serviceDir string
	isV2       bool
)

func TestMain(m *testing.M) {
	if os.Getenv(noDACEnv) == "1" {
		execWithoutDAC()
	}
	if os.Getenv(cgroupnsEnv) == "1" {
		execInCgroupNamespace()
	}
	sandboxdBin = os.Getenv("SANDBOXD_BIN")
	testRootfs = os.Getenv("SANDBOXD_ROOTFS")
	if sandboxdBin == "" || testRootfs == "" {
		fmt.Fprintln(os.Stderr, "cgroup2 tests need SANDBOXD_BIN and SANDBOXD_ROOTFS: run them with `make test-cgroup2`")
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "cgroup2 tests build real sandboxes and must run as root")
		os.Exit(1)
	}
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	isV2 = err == nil
	dir, err := os.MkdirTemp("", "sandboxd-cgroup2-test-")
	if err != nil {
		panic(err)
	}
	// Sandboxes in user namespaces reach their overlay roots under the
	// run dir: it must be searchable by others, as /run/sandboxd-exec is.
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	runDir = filepath.Join(dir, "run")
	if isV2 {
		serviceDir = filepath.Join(cgroupRoot, fmt.Sprintf("sandboxd-test-%d.service", os.Getpid()))
		if err := os.Mkdir(serviceDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "creating the service cgroup:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// execWithoutDAC is the noDACEnv helper; it never returns.
func execWithoutDAC() {
	runtime.LockOSThread()
	for _, c := range []uintptr{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH} {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "dropping capability:", err)
			os.Exit(126)
		}
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, noDACEnv+"=") {
			env = append(env, kv)
		}
	}
	err := unix.Exec(os.Args[1], os.Args[1:], env)
	fmt.Fprintln(os.Stderr, "exec:", err)
	os.Exit(126)
}

// requireV2 fails the test (it never skips) off a pure cgroup v2 host.
func requireV2(t *testing.T) {
	t.Helper()
	if !isV2 {
		t.Fatalf("not a cgroup v2 host: %s/cgroup.controllers is missing. These tests prove the cgroup v2 path and run in the VM of `make test-cgroup2` (booted with cgroup_no_v1=all)", cgroupRoot)
	}
}

// launchDir is where a new sandboxd process starts: the service cgroup, or
// its supervisor leaf once sandboxd has moved there (the service cgroup
// then delegates controllers and may hold no process).
func launchDir(service string) string {
	leaf := filepath.Join(service, "supervisor")
	if _, err := os.Stat(leaf); err == nil {
		return leaf
	}
	return service
}

type process struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// start starts `sandboxd exec --run-dir ... ARGS` in cgroup dir.
func start(t *testing.T, dir string, withoutDAC bool, args ...string) *process {
	t.Helper()
	full := append([]string{"exec", "--run-dir", runDir}, args...)
	cmd := exec.Command(sandboxdBin, full...)
	if withoutDAC {
		cmd = exec.Command(os.Args[0], append([]string{sandboxdBin}, full...)...)
		cmd.Env = append(os.Environ(), noDACEnv+"=1")
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening cgroup %s: %v", dir, err)
	}
	defer unix.Close(fd)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	p := &process{cmd: cmd}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sandboxd in %s: %v", dir, err)
	}
	return p
}

// wait returns sandboxd's exit code.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running sandboxd: %v", err)
	}
	return 0
}

// result decodes the one JSON object sandboxd printed.
func (p *process) result(t *testing.T) *sbx.Result {
	t.Helper()
	code := p.wait(t)
	var res sbx.Result
	dec := json.NewDecoder(bytes.NewReader(p.stdout.Bytes()))
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("sandboxd: exit %d, stdout %q, stderr %q: not one JSON object: %v", code, p.stdout.String(), p.stderr.String(), err)
	}
	if dec.More() {
		t.Fatalf("sandboxd printed more than one JSON object: %q", p.stdout.String())
	}
	if res.Status != sbx.StatusInternalError && code != res.ExitCode {
		t.Fatalf("exit code %d, result says %d", code, res.ExitCode)
	}
	return &res
}

func jsonArgs(flags []string, cmd ...string) []string {
	args := append([]string{"--json", "--rootfs", testRootfs}, flags...)
	return append(append(args, "--"), cmd...)
}

// run runs cmd with --json in the test rootfs, from the service cgroup.
func run(t *testing.T, flags []string, cmd ...string) *sbx.Result {
	t.Helper()
	requireV2(t)
	return start(t, launchDir(serviceDir), false, jsonArgs(flags, cmd...)...).result(t)
}

func wantStatus(t *testing.T, r *sbx.Result, want sbx.Status) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %q, want %q; result %+v", r.Status, want, *r)
	}
}

// waitForSandbox returns the one sandbox cgroup that appears under parent
// while p runs, once the program named comm runs in it (the limits of the
// run are written just before it starts; those of the build are only
// written once the entry is parked).
func waitForSandbox(t *testing.T, p *process, parent, comm string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		found, _ := filepath.Glob(filepath.Join(parent, "sbx-*"))
		if len(found) == 1 {
			for _, pid := range strings.Fields(read(found[0], "cgroup.procs")) {
				if read("/proc/"+pid, "comm") == comm {
					return found[0]
				}
			}
		}
		if len(found) > 1 {
			t.Fatalf("more than one sandbox cgroup under %s: %v", parent, found)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code := p.wait(t)
	t.Fatalf("no running sandbox appeared under %s (sandboxd exit %d, stderr %q)", parent, code, p.stderr.String())
	return ""
}

// read returns a cgroup file's content without the trailing newline, or
// "<error>" when it cannot be read.
func read(dir, file string) string {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimSpace(string(b))
}

// controllers returns a cgroup's subtree_control, sorted, space-separated.
func controllers(dir string) string {
	f := strings.Fields(read(dir, "cgroup.subtree_control"))
	sort.Strings(f)
	return strings.Join(f, " ")
}

// sandboxCgroups lists every sandbox cgroup on the host.
func sandboxCgroups() []string {
	var found []string
	_ = filepath.WalkDir(cgroupRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "sbx-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// newService makes a fresh cgroup for one sandboxd "service".
func newService(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(cgroupRoot, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
