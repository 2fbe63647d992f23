package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The README's quick start, as a new user would follow it: `make run`, then
// the one curl line it shows.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var curl string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "curl --unix-socket") {
			curl = strings.TrimSpace(line)
			break
		}
	}
	if curl == "" {
		t.Fatal("the README shows no curl line")
	}
	const readmeSocket = ".cache/demo/sandboxd.sock"
	if !strings.Contains(curl, readmeSocket) {
		t.Fatalf("the README's curl line does not use %s: %s", readmeSocket, curl)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (make test installs it)")
	}
	demo := t.TempDir()
	// Sandboxes in user namespaces must be able to reach the image store.
	os.Chmod(demo, 0o755)
	os.Chmod(filepath.Dir(demo), 0o755)
	mk := exec.Command("make", "run")
	mk.Dir = "../.."
	mk.Env = append(os.Environ(), "SANDBOXD_DEMO_DIR="+demo)
	mk.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &testdaemon.SyncBuffer{}
	mk.Stdout, mk.Stderr = out, out
	if err := mk.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-mk.Process.Pid, syscall.SIGTERM) // our own process group
		done := make(chan error, 1)
		go func() { done <- mk.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-mk.Process.Pid, syscall.SIGKILL)
		}
		testdaemon.RemoveCgroupParent("sandboxd")
	}()
	socket := filepath.Join(demo, "sandboxd.sock")
	exited := make(chan struct{})
	go func() {
		for {
			if p, err := os.FindProcess(mk.Process.Pid); err != nil || p.Signal(syscall.Signal(0)) != nil {
				close(exited)
				return
			}
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", mk.Process.Pid)); err != nil || strings.Contains(string(st), ") Z ") {
				close(exited)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	deadline := time.After(600 * time.Second)
	for !strings.Contains(out.String(), "sandboxd is running") {
		select {
		case <-exited:
			t.Fatalf("make run ended before serving:\n%s", out.String())
		case <-deadline:
			t.Fatalf("make run did not serve within 10 minutes:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(curl, readmeSocket, socket))
	body, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", curl, err, out.String())
	}
	var resp api.ExecuteResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("curl printed %q: %v", body, err)
	}
	if resp.Status != "ok" || resp.Run.Stdout != "hello from sandbox\n" {
		t.Fatalf("curl got %s", body)
	}
}
