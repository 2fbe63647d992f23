package engine_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// uidMap parses /proc/self/uid_map output: "inside outside count".
func uidMap(t *testing.T, out string) (inside, outside, count int) {
	t.Helper()
	f := strings.Fields(lines(out)[0])
	if len(f) != 3 {
		t.Fatalf("uid_map %q", out)
	}
	inside, _ = strconv.Atoi(f[0])
	outside, _ = strconv.Atoi(f[1])
	count, _ = strconv.Atoi(f[2])
	return
}

func TestUserNamespaceMapsOntoAnUnprivilegedRange(t *testing.T) {
	r := run(t, nil, "cat", "/proc/self/uid_map", "/proc/self/gid_map")
	wantStatus(t, r, runtime.StatusOK)
	for _, l := range lines(r.Stdout) {
		in, out, n := uidMap(t, l)
		if in != 0 || n != runtime.IDsPerSandbox || out < runtime.IDsPerSandbox {
			t.Errorf("map %q: want 0 -> a host range above the host's own users, %d ids", l, runtime.IDsPerSandbox)
		}
	}
	off := run(t, []string{"--no-userns"}, "cat", "/proc/self/uid_map")
	if _, out, _ := uidMap(t, off.Stdout); out != 0 {
		t.Errorf("--no-userns still maps: %q", off.Stdout)
	}
}

// Root-only files of the image stay unreadable inside, although the
// sandbox shares the image read-only.
func TestRootOnlyImageFilesStayUnreadable(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "rootfs")
	// The image root must be reachable from the sandbox's user namespace.
	os.Chmod(tmp, 0o755)
	os.Chmod(filepath.Dir(tmp), 0o755)
	if out, err := exec.Command("cp", "-a", testRootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(root, "etc", "secret"), []byte("root only\n"), 0o600)
	os.WriteFile(filepath.Join(root, "etc", "public"), []byte("everyone\n"), 0o644)
	o := sandboxd(t, nil, "--json", "--rootfs", root, "--", "/bin/sh", "-c", "cat /etc/public; cat /etc/secret 2>&1 | sed 's/.*: //'")
	if !strings.Contains(o.stdout, `"stdout":"everyone\nPermission denied\n"`) {
		t.Errorf("got %s %s", o.stdout, o.stderr)
	}
}

// Two sandboxes running at the same time map onto different host ids, so a
// file one of them owns is out of the other's reach even where the host
// would share a path: checked by reading A's file on the host as B's id.
func TestConcurrentSandboxesHaveDistinctHostIDs(t *testing.T) {
	a := exec.Command(sandboxdBin, "exec", "--run-dir", runDir, "--cgroup-parent", cgroupParent, "--json",
		"--rootfs", testRootfs, "--", "/bin/sh", "-c", "umask 077; echo private > secret; sleep 3")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Wait()
	// A run's /work is a mount of no host path: the file is reached
	// through the root of one of A's processes.
	var secret string
	deadline := time.Now().Add(3 * time.Second)
	for secret == "" && time.Now().Before(deadline) {
		for _, pid := range testdaemon.Descendants(a.Process.Pid) {
			if p := fmt.Sprintf("/proc/%d/root/work/secret", pid); fileExists(p) {
				secret = p
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if secret == "" {
		t.Fatal("sandbox A did not write its file")
	}
	st, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	aUID := int(st.Sys().(*syscall.Stat_t).Uid)
	b := run(t, nil, "cat", "/proc/self/uid_map")
	_, bBase, _ := uidMap(t, b.Stdout)
	bUID := bBase + 65534
	if aUID == bUID || aUID < runtime.IDsPerSandbox {
		t.Fatalf("A runs as host uid %d, B as %d: want distinct unprivileged ids", aUID, bUID)
	}
	// The reader gets /work as a descriptor (which it may traverse, being
	// its own): only the file's own owner and mode decide.
	work, err := os.OpenFile(filepath.Dir(secret), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer work.Close()
	read := func(uid int) (string, error) {
		cmd := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid),
			"--clear-groups", "cat", "/proc/self/fd/3/secret")
		cmd.ExtraFiles = []*os.File{work}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := read(aUID); err != nil || out != "private\n" {
		t.Fatalf("control: A's own id cannot read its file: %v %q", err, out)
	}
	if out, err := read(bUID); err == nil {
		t.Errorf("B's host id %d read A's file: %q", bUID, out)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
