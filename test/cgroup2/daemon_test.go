//go:build cgroup2vm

package cgroup2_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
	sbx "github.com/sandboxd/sandboxd/runtime"
)

// The daemon on cgroup v2: started like a systemd service with
// Delegate=yes, it answers one request of each status through its API,
// with the warm pool on, and leaves no sandbox cgroup when it stops.
func TestDaemonAPI(t *testing.T) {
	requireV2(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	sock := filepath.Join(dir, "sandboxd.sock")
	cmd := exec.Command(sandboxdBin, "serve", "--socket", sock, "--state-dir", filepath.Join(dir, "state"),
		"--run-dir", filepath.Join(dir, "run"), "--pool-size", "2", "--log-level", "warn")
	fd, err := unix.Open(launchDir(serviceDir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM) // ours, by pid
			_ = cmd.Wait()
		}
	}
	defer stop()
	c := client.New(sock)
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := c.Health(ctx)
		if err == nil {
			if h.Cgroup != "v2" {
				t.Fatalf("healthz says cgroup %q, want v2", h.Cgroup)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tarball, err := dirtar.Tar(testRootfs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(ctx, tarball, "busybox"); err != nil {
		t.Fatal(err)
	}
	lim := func(f func(*api.Limits)) *api.Limits { l := &api.Limits{}; f(l); return l }
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name   string
		cmd    []string
		limits *api.Limits
		want   sbx.Status
	}{
		{"ok", []string{"echo", "hi"}, nil, sbx.StatusOK},
		{"runtime error", []string{"/bin/sh", "-c", "exit 3"}, nil, sbx.StatusRuntimeError},
		{"wall time", []string{"sleep", "5"}, lim(func(l *api.Limits) { l.WallTimeMS = i64(500) }), sbx.StatusWallTimeLimit},
		{"cpu time", []string{"probe", "burn", "1"}, lim(func(l *api.Limits) { l.CPUTimeMS = i64(300); l.WallTimeMS = i64(20000) }), sbx.StatusTimeLimit},
		{"memory", []string{"probe", "alloc", "100"}, lim(func(l *api.Limits) { l.MemoryBytes = i64(32 << 20) }), sbx.StatusMemoryLimit},
		{"output", []string{"yes"}, lim(func(l *api.Limits) { l.OutputBytes = i64(100) }), sbx.StatusOutputLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: tt.cmd, Limits: tt.limits})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.want {
				t.Errorf("status %s, want %s: %+v", r.Status, tt.want, r.Run)
			}
			if tt.want == sbx.StatusMemoryLimit && !r.Run.OOMKilled {
				t.Error("oom_killed is false")
			}
		})
	}
	t.Run("session memory holds for the whole sandbox", func(t *testing.T) {
		sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox", Limits: lim(func(l *api.Limits) {
			l.MemoryBytes, l.TmpBytes, l.FileSizeBytes = i64(64<<20), i64(128<<20), i64(64<<20)
		})})
		if err != nil {
			t.Fatal(err)
		}
		defer c.DeleteSandbox(ctx, sb.ID)
		for _, step := range []struct {
			script string
			want   sbx.Status
		}{
			{"head -c 40000000 /dev/zero > /tmp/held", sbx.StatusOK},
			{"probe alloc 40", sbx.StatusMemoryLimit}, // 40 MB in /tmp are the sandbox's
			{"rm /tmp/held && probe alloc 40", sbx.StatusOK},
		} {
			r, err := c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", step.script}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != step.want {
				t.Errorf("%s: %s, want %s: %+v", step.script, r.Status, step.want, r.Run)
			}
		}
	})
	stop()
	left, _ := filepath.Glob(filepath.Join(serviceDir, "sandboxd", "sbx-*"))
	if len(left) != 0 {
		t.Errorf("sandbox cgroups left after the daemon stopped: %v", left)
	}
}
