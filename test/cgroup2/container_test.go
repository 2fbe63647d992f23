//go:build cgroup2vm

package cgroup2_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
)

// cgroupnsEnv makes the test binary a helper that does what a container
// runtime does on a cgroup v2 node before it starts the container's
// process: a cgroup namespace rooted at the cgroup it was started in, a
// mount namespace, the cgroup2 filesystem mounted anew (showing that
// cgroup as its root); then it executes its arguments.
const cgroupnsEnv = "CGROUP2_TEST_EXEC_IN_CGROUPNS"

// execInCgroupNamespace is the cgroupnsEnv helper; it never returns.
func execInCgroupNamespace() {
	runtime.LockOSThread() // the namespaces are this thread's, and exec keeps them
	steps := []struct {
		what string
		do   func() error
	}{
		{"unshare", func() error { return unix.Unshare(unix.CLONE_NEWCGROUP | unix.CLONE_NEWNS) }},
		{"private mounts", func() error { return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") }},
		{"unmount cgroup2", func() error { return unix.Unmount(cgroupRoot, unix.MNT_DETACH) }},
		{"mount cgroup2", func() error { return unix.Mount("cgroup2", cgroupRoot, "cgroup2", 0, "") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			fmt.Fprintf(os.Stderr, "cgroupns helper: %s: %v\n", s.what, err)
			os.Exit(126)
		}
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, cgroupnsEnv+"=") {
			env = append(env, kv)
		}
	}
	err := unix.Exec(os.Args[1], os.Args[1:], env)
	fmt.Fprintln(os.Stderr, "exec:", err)
	os.Exit(126)
}

// The daemon as in a container on a cgroup v2 node: its cgroup is the
// root of its cgroup namespace ("/" in /proc/self/cgroup), not the host's
// root. sandboxd moves itself into a supervisor leaf of it and nests its
// sandboxes in a sibling, as in a delegated systemd unit, and limits hold.
func TestDaemonInACgroupNamespace(t *testing.T) {
	requireV2(t)
	ctr := filepath.Join(cgroupRoot, fmt.Sprintf("container-%d", os.Getpid()))
	if err := os.Mkdir(ctr, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() { // the daemon removes its sandboxes' parent; the rest is ours
		os.Remove(filepath.Join(ctr, "supervisor"))
		os.Remove(ctr)
	}()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	sock := filepath.Join(dir, "sandboxd.sock")
	cmd := exec.Command(os.Args[0], sandboxdBin, "serve", "--socket", sock, "--state-dir", filepath.Join(dir, "state"),
		"--run-dir", filepath.Join(dir, "run"), "--pool-size", "1", "--log-level", "warn")
	cmd.Env = append(os.Environ(), cgroupnsEnv+"=1")
	fd, err := unix.Open(ctr, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // ours, by pid
		<-exited
		if left, _ := filepath.Glob(filepath.Join(ctr, "sandboxd", "sbx-*")); len(left) != 0 {
			t.Errorf("sandbox cgroups left: %v", left)
		}
	}()
	c := client.New(sock)
	ctx := context.Background()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := c.Health(ctx)
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			exited <- werr // for the deferred stop
			t.Fatalf("the daemon exited: %v", werr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not come up: %v", err)
		}
	}
	if own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid)); strings.TrimSpace(string(own)) != "0::"+strings.TrimPrefix(ctr, cgroupRoot)+"/supervisor" {
		t.Errorf("the daemon is in %q, want the supervisor leaf of %s", own, ctr)
	}
	tarball, err := dirtar.Tar(testRootfs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(ctx, tarball, "busybox"); err != nil {
		t.Fatal(err)
	}
	mem := int64(32 << 20)
	for _, tt := range []struct {
		cmd    []string
		limits *api.Limits
		want   api.Status
	}{
		{[]string{"/bin/sh", "-c", "cat /proc/self/cgroup"}, nil, api.StatusOK},
		{[]string{"probe", "alloc", "100"}, &api.Limits{MemoryBytes: &mem}, api.StatusMemoryLimit},
	} {
		r, err := c.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: tt.cmd, Limits: tt.limits})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tt.want {
			t.Errorf("%v: status %s, want %s: %+v", tt.cmd, r.Status, tt.want, r.Run)
		}
	}
}
