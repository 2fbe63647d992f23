//go:build container

// Package container_test runs sandboxd's image (make image) under Docker
// with the smallest set of privileges (deploy/docker.RunFlags, not
// --privileged) and runs the daemon suite's core checks against its
// socket: every status, the isolation evidence read from inside a
// sandbox, a session, a start refused for a missing privilege, then a
// graceful stop and nothing left on the host. `make test-container` runs
// it (build tag "container"; it needs dockerd).
package container_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/deploy/docker"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// imageName is what `make image` tags by default (IMAGE_NAME:IMAGE_TAG).
const imageName = "sandboxd:dev"

func dockerCmd(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := dockerCmd(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runFlags are docker.RunFlags with the seccomp profile's path made
// absolute, less the flags drop names (for the preflight cases).
func runFlags(t *testing.T, drop ...string) []string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
next:
	for _, f := range docker.RunFlags {
		for _, d := range drop {
			if f == d {
				continue next
			}
		}
		out = append(out, strings.Replace(f, "seccomp=deploy/", "seccomp="+root+"/deploy/", 1))
	}
	return out
}

// container is one sandboxd container of the test, its socket's host
// directory and what it holds on the host while it runs.
type container struct {
	name, id, sockDir string
	client            *client.Client
	pid               string   // the entrypoint's pid on the host
	cgroups           []string // its cgroup directories on the host
	merged            string   // its root's overlay mount
	volumes           []string
}

func TestMain(m *testing.M) {
	img := os.Getenv("SANDBOXD_CONTAINER_IMAGE")
	if img == "" || os.Getenv("SANDBOXD_ROOTFS") == "" {
		fmt.Fprintln(os.Stderr, "SANDBOXD_CONTAINER_IMAGE (make image's tarball) and SANDBOXD_ROOTFS are required: run make test-container")
		os.Exit(2)
	}
	if out, err := dockerCmd("load", "-i", img); err != nil {
		fmt.Fprintf(os.Stderr, "docker load %s: %v\n%s\n", img, err, out)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// start runs the image detached with RunFlags and the socket's directory
// bind-mounted from the host, and waits until the entrypoint has imported
// busybox.
func start(t *testing.T) *container {
	t.Helper()
	c := &container{name: fmt.Sprintf("sandboxd-test-%d", time.Now().UnixNano())}
	var err error
	if c.sockDir, err = os.MkdirTemp("", "sandboxd-container-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(c.sockDir) })
	args := append([]string{"run", "-d", "--name", c.name}, runFlags(t)...)
	args = append(args, "-v", c.sockDir+":/run/sandboxd", imageName)
	c.id = mustDocker(t, args...)
	// Whatever happens, the container goes (stop first, for the daemon's
	// graceful end); the test's own stop has removed it already.
	t.Cleanup(func() { dockerCmd("rm", "-f", "-v", c.id) })
	c.client = client.New(filepath.Join(c.sockDir, "sandboxd.sock"))
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := c.client.Image(context.Background(), "busybox"); err == nil {
			break
		}
		if running, _ := dockerCmd("inspect", "-f", "{{.State.Running}}", c.id); running != "true" || time.Now().After(deadline) {
			logs, _ := dockerCmd("logs", c.id)
			t.Fatalf("the container did not serve busybox (running: %s)\n%s", running, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.pid = mustDocker(t, "inspect", "-f", "{{.State.Pid}}", c.id)
	c.merged = mustDocker(t, "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", c.id)
	c.volumes = strings.Fields(mustDocker(t, "inspect", "-f", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}", c.id))
	c.cgroups = hostCgroups(t, c.pid)
	return c
}

// hostCgroups lists the cgroup directories of a host process, one per
// hierarchy, as the host sees them.
func hostCgroups(t *testing.T, pid string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[2] == "/" {
			continue
		}
		ctrl := strings.TrimPrefix(strings.SplitN(f[1], ",", 2)[0], "name=")
		if ctrl == "" {
			ctrl = "unified"
		}
		dir := filepath.Join("/sys/fs/cgroup", ctrl, f[2])
		if _, err := os.Stat(dir); err == nil {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("no cgroup directory of pid %s found on the host", pid)
	}
	return dirs
}

func TestInContainer(t *testing.T) {
	c := start(t)
	img := testdaemon.Tar(t, os.Getenv("SANDBOXD_ROOTFS"), nil)
	if _, err := c.client.Import(context.Background(), img, "busybox-test"); err != nil {
		t.Fatal(err)
	}
	t.Run("statuses", func(t *testing.T) { checkStatuses(t, c.client) })
	t.Run("isolation evidence", func(t *testing.T) { checkIsolation(t, c) })
	t.Run("session", func(t *testing.T) { checkSession(t, c.client) })
	if t.Failed() {
		logs, _ := dockerCmd("logs", c.id)
		t.Logf("the daemon's log:\n%s", logs)
	}
	t.Run("graceful stop leaves nothing on the host", func(t *testing.T) { stopAndCheckHost(t, c) })
}

// A container given less than RunFlags stops at once, with one line that
// names the missing privilege (package preflight), and a failing status.
func TestMissingPrivilegeStopsTheStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop string
		want string
	}{
		{"no SYS_PTRACE", "--cap-add=SYS_PTRACE", "missing privilege: capability CAP_SYS_PTRACE"},
		{"masked /proc", "--security-opt=systempaths=unconfined", "is masked by a mount"},
		{"Docker's default seccomp profile", "--security-opt=seccomp=deploy/docker/seccomp.json", "is denied by the container's seccomp profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			args := append(append([]string{"run", "--rm"}, runFlags(t, tc.drop)...), imageName)
			out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("the container ran on (or succeeded): %v\n%s", err, out)
			}
			var lines []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "missing privilege") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("want one line with %q, got:\n%s", tc.want, out)
			}
		})
	}
}
