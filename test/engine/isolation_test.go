package engine_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/runtime"
)

func statusField(t *testing.T, status, key string) string {
	t.Helper()
	for _, l := range lines(status) {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return ""
}

func TestPrivilegesAreDropped(t *testing.T) {
	r := run(t, nil, "cat", "/proc/self/status")
	wantStatus(t, r, runtime.StatusOK)
	for key, want := range map[string]string{
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
		"NoNewPrivs": "1", "Seccomp": "2",
	} {
		if got := statusField(t, r.Stdout, key); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	for _, key := range []string{"Uid", "Gid"} {
		for _, id := range strings.Fields(statusField(t, r.Stdout, key)) {
			if id != "65534" {
				t.Errorf("%s has %s, want 65534 everywhere (real, effective, saved, fs)", key, id)
			}
		}
	}
	if g := statusField(t, r.Stdout, "Groups"); g != "" {
		t.Errorf("supplementary groups %q, want none", g)
	}
}

// The entry and a prepared run's PID 1 wait as SCHED_BATCH (entry.c
// set_batch); the program must run as any process does: SCHED_OTHER
// (policy 0) at nice 0.
func TestProgramRunsAtTheNormalSchedulingPolicy(t *testing.T) {
	r := run(t, nil, "cat", "/proc/self/stat")
	wantStatus(t, r, runtime.StatusOK)
	_, rest, ok := strings.Cut(r.Stdout, ") ")
	if !ok {
		t.Fatalf("/proc/self/stat: %q", r.Stdout)
	}
	f := strings.Fields(rest) // f[0] is field 3 of proc(5)
	if len(f) < 39 {
		t.Fatalf("/proc/self/stat has %d fields after the name: %q", len(f), r.Stdout)
	}
	for _, c := range []struct {
		name  string
		field int
		want  string
	}{{"nice", 19, "0"}, {"policy", 41, "0"}} {
		if got := f[c.field-3]; got != c.want {
			t.Errorf("%s (field %d) = %s, want %s", c.name, c.field, got, c.want)
		}
	}
}

func TestUserFlag(t *testing.T) {
	r := sh(t, []string{"--user", "1234:2345"}, "id -u; id -g; stat -c %u:%g /work")
	wantStatus(t, r, runtime.StatusOK)
	if r.Stdout != "1234\n2345\n1234:2345\n" {
		t.Errorf("got %q, want uid 1234, gid 2345 owning /work", r.Stdout)
	}
}

// Every syscall the filter must deny fails with EPERM from real code.
func TestSeccompDeniesDangerousSyscalls(t *testing.T) {
	r := run(t, nil, "probe", "syscalls")
	wantStatus(t, r, runtime.StatusOK)
	want := []string{
		"mount", "umount2", "pivot_root", "chroot", "unshare", "unshare_ns", "setns", "ptrace",
		"process_vm_readv", "bpf", "keyctl", "add_key", "request_key", "perf_event_open",
		"kexec_load", "init_module", "finit_module", "delete_module", "io_uring_setup",
		"userfaultfd", "open_by_handle_at", "personality", "clone_newns", "clone_newuser",
		"clone_newnet", "socket_packet", "socket_raw",
	}
	got := map[string]string{}
	for _, l := range lines(r.Stdout) {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	for _, name := range want {
		if got[name] != "EPERM" {
			t.Errorf("%s: %q, want EPERM", name, got[name])
		}
	}
}

func nsInode(t *testing.T, path string) string {
	t.Helper()
	link, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

func TestNamespacesAreNew(t *testing.T) {
	kinds := []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"}
	script := ""
	for _, k := range kinds {
		script += "readlink /proc/self/ns/" + k + ";"
	}
	r := sh(t, nil, script+"hostname; ls /sys/class/net; ls /proc | grep -c '^[0-9]'")
	wantStatus(t, r, runtime.StatusOK)
	out := lines(r.Stdout)
	for i, k := range kinds {
		if host := nsInode(t, "/proc/self/ns/"+k); out[i] == host {
			t.Errorf("%s namespace is the host's (%s)", k, host)
		}
	}
	if host, _ := os.Hostname(); out[len(kinds)] != "sandbox" || host == "sandbox" {
		t.Errorf("hostname %q, want \"sandbox\"", out[len(kinds)])
	}
	if out[len(kinds)+1] != "lo" || len(out) != len(kinds)+3 {
		t.Errorf("interfaces %v, want only lo", out[len(kinds)+1:len(out)-1])
	}
	// The entry, the shell, ls and grep: no host process is visible.
	if n, _ := strconv.Atoi(out[len(out)-1]); n > 6 {
		t.Errorf("%d processes visible in /proc, want only the sandbox's own", n)
	}
}

// A service on the host's loopback is unreachable: the sandbox has its own.
func TestHostLoopbackIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	r := run(t, nil, "probe", "connect", strconv.Itoa(port))
	if r.Stdout != "error ECONNREFUSED\n" {
		t.Errorf("connect to host port %d from the sandbox: %q, want ECONNREFUSED", port, r.Stdout)
	}
	select {
	case <-accepted:
		t.Error("the host listener accepted a connection from the sandbox")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestFilesystem(t *testing.T) {
	tests := []struct {
		name   string
		flags  []string
		script string
		want   string
	}{
		{"root is read-only", nil, "touch /bin/x 2>&1; touch /etc/x 2>&1; mkdir /newdir 2>&1", "touch: /bin/x: Read-only file system\ntouch: /etc/x: Read-only file system\nmkdir: can't create directory '/newdir': Read-only file system\n"},
		{"cwd is /work, owned by the sandbox user", nil, "pwd; stat -c '%u:%g %a' /work", "/work\n65534:65534 755\n"},
		{"/work is writable and executable", nil, "printf '#!/bin/sh\\necho ran\\n' > s.sh && chmod +x s.sh && ./s.sh && rm s.sh && echo removed", "ran\nremoved\n"},
		{"/tmp is writable but not executable", nil, "printf '#!/bin/sh\\necho ran\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && echo written; /tmp/s.sh 2>&1 | sed 's/.*: //'", "written\nPermission denied\n"},
		// The last line of a mount point is its top mount, the one a path
		// reaches: a reused sandbox's run mounts its own over the
		// sandbox's.
		{"mount options", nil, "for m in /dev/shm /tmp /work; do grep \" $m \" /proc/mounts | tail -1 | awk '{print $2, $3}'; done; for m in /work /tmp /dev/shm; do top=$(grep \" $m \" /proc/mounts | tail -1); case $top in *nosuid*) case $top in *nodev*) echo $m nosuid,nodev;; esac;; esac; done", "/dev/shm tmpfs\n/tmp tmpfs\n/work tmpfs\n/work nosuid,nodev\n/tmp nosuid,nodev\n/dev/shm nosuid,nodev\n"},
		{"filling /work gives ENOSPC", []string{"--work-size", "1MiB"}, "probe write /work/fill 4194304", "error ENOSPC after 1048576\n"},
		{"filling /tmp gives ENOSPC", []string{"--tmp-size", "1MiB"}, "probe write /tmp/fill 4194304", "error ENOSPC after 1048576\n"},
		{"/dev/shm is size-limited", []string{"--file-size", "64MiB"}, "probe write /dev/shm/fill 33554432", "error ENOSPC after 16777216\n"},
		// 4096 inodes for its 16 MiB, the tmpfs root among them.
		{"/dev/shm is inode-limited", nil, "probe files /dev/shm 8192", "error ENOSPC after 4095\n"},
		{"RLIMIT_FSIZE", []string{"--file-size", "100KiB"}, "probe write /work/big 1048576", "error EFBIG after 102400\n"},
		{"rlimits", []string{"--nofile", "64"}, "ulimit -n; ulimit -c; ulimit -s", "64\n0\n8192\n"},
		{"/dev holds only the safe devices", nil, "ls -l /dev | grep '^c' | awk '{print $NF}' | sort | tr '\\n' ' '", "full null random tty urandom zero "},
		{"masked /proc paths", nil, "cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys 2>/dev/null | wc -c; ls /sys/firmware | wc -l", "0\n0\n0\n"},
		{"/proc/sysrq-trigger and /proc/sys can't be written", nil, "echo h > /proc/sysrq-trigger 2>/dev/null || echo denied; echo x > /proc/sys/kernel/hostname 2>/dev/null || echo denied", "denied\ndenied\n"},
		{"/sys is read-only", nil, "echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null || echo denied", "denied\n"},
		{"/proc/1/root does not lead to the host", nil, "ls /proc/1/root/ 2>&1 | head -1 | sed 's/.*: //'", "Permission denied\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sh(t, tt.flags, tt.script)
			if r.Stdout != tt.want {
				t.Errorf("got %q, want %q (stderr %q, status %s)", r.Stdout, tt.want, r.Stderr, r.Status)
			}
		})
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	r := run(t, []string{"--pids", "16"}, "probe", "forkbomb")
	wantStatus(t, r, runtime.StatusOK)
	var n int
	if _, err := fmt.Sscanf(r.Stdout, "fork failed after %d", &n); err != nil || n >= 16 || n < 10 {
		t.Errorf("got %q, want a fork failure after 10..15 children", r.Stdout)
	}
}

func hostProcessesWith(t *testing.T, marker string) []string {
	t.Helper()
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && strings.Contains(string(cmdline), marker) {
			found = append(found, d)
		}
	}
	return found
}

// A double-forked, setsid'd background child is gone when exec returns.
func TestNothingSurvivesTheRun(t *testing.T) {
	marker := fmt.Sprintf("survivor-%d", time.Now().UnixNano())
	r := run(t, nil, "probe", "daemon", marker)
	wantStatus(t, r, runtime.StatusOK)
	if r.Stdout != "daemonized\n" {
		t.Fatalf("probe daemon: %q", r.Stdout)
	}
	if procs := hostProcessesWith(t, marker); len(procs) != 0 {
		t.Errorf("processes left behind after the run: %v", procs)
	}
}

// Nothing of the caller leaks in: only fds 0-2, only the given environment.
func TestOnlyStdioAndGivenEnvironment(t *testing.T) {
	r := run(t, nil, "probe", "fds")
	if r.Stdout != "0\n1\n2\n" {
		t.Errorf("open fds %q, want 0 1 2 only", r.Stdout)
	}
	t.Setenv("SANDBOXD_SECRET", "leak")
	r = run(t, []string{"--env", "FOO=bar", "--env", "EMPTY="}, "env")
	got := lines(r.Stdout)
	slices.Sort(got)
	want := []string{"EMPTY=", "FOO=bar", "HOME=/work", "PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=/tmp"}
	if !slices.Equal(got, want) {
		t.Errorf("environment %q, want %q", got, want)
	}
}

func TestFilesAndStdin(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.sh"), []byte("#!/bin/sh\necho beta\n"), 0o755)
	stdin := filepath.Join(t.TempDir(), "in")
	os.WriteFile(stdin, []byte("from stdin\n"), 0o644)
	r := sh(t, []string{"--files", src, "--stdin", stdin},
		"cat a.txt; ./sub/b.sh; cat; stat -c '%u:%g' a.txt sub sub/b.sh; rm a.txt && echo deleted")
	wantStatus(t, r, runtime.StatusOK)
	want := "alpha\nbeta\nfrom stdin\n65534:65534\n65534:65534\n65534:65534\ndeleted\n"
	if r.Stdout != want {
		t.Errorf("got %q, want %q", r.Stdout, want)
	}
}

// Without --json, output passes through and the exit code is the program's.
func TestPassThrough(t *testing.T) {
	o := sandboxd(t, nil, "--rootfs", testRootfs, "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7")
	if o.code != 7 || o.stdout != "out\n" || o.stderr != "err\n" {
		t.Errorf("got code %d stdout %q stderr %q", o.code, o.stdout, o.stderr)
	}
	o = sandboxd(t, nil, "--rootfs", testRootfs, "--", "/bin/sh", "-c", "kill -KILL $$")
	if o.code != 137 {
		t.Errorf("killed by SIGKILL: exit %d, want 137", o.code)
	}
	o = sandboxd(t, nil, "--rootfs", testRootfs, "--wall-time", "200ms", "--", "sleep", "5")
	if o.code != 137 || o.stderr != "sandboxd exec: wall_time_limit\n" {
		t.Errorf("wall limit: exit %d, stderr %q", o.code, o.stderr)
	}
}
