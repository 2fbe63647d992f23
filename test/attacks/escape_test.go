package attacks_test

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// testCatalog is the suite's language catalog, on the busybox image: a
// "compiled" language whose compile step is the user's own script, so that
// the daemon reads /work back (rootfs.Collect) after hostile code ran
// there, and an interpreted one that runs the user's script.
const testCatalog = `
[[language]]
name = "shbuild"
image = "busybox"
main = "build.sh"
compile = ["/bin/sh", "{main}"]
run = ["/bin/sh", "-c", "for f in $(ls -A); do echo \"== $f\"; cat \"$f\" 2>&1 | head -c 200; echo; done"]
version_cmd = ["/bin/sh", "-c", "echo 1.0.0"]

[[language]]
name = "shrun"
image = "busybox"
main = "main.sh"
run = ["/bin/sh", "{main}"]
version_cmd = ["/bin/sh", "-c", "echo 1.0.0"]
`

// noSecret wants nothing of the sentinel's content in the output.
func noSecret(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
	if err != nil {
		return describe(r, err), false
	}
	if strings.Contains(r.Run.Stdout+r.Run.Stderr, s.secret) {
		return "HOST SECRET READ", false
	}
	return fmt.Sprintf("%s, nothing read (%s)", r.Status, clip(firstLine(r.Run.Stderr))), true
}

// sysrqExpected: /proc/sysrq-trigger is masked with /dev/null, unless the
// kernel has no sysrq at all.
func sysrqExpected() string {
	if _, err := os.Stat("/proc/sysrq-trigger"); err != nil {
		return "absent\n"
	}
	return "character special file 1:3\n"
}

func firstLine(s string) string { return strings.SplitN(strings.TrimSpace(s), "\n", 2)[0] }

func escapeAttacks() []attack {
	const c = "escape"
	as := []attack{
		{class: c, name: "read a host file through /proc/1/root", expected: "nothing read",
			req: api.ExecuteRequest{Cmd: sh(`cat /proc/1/root$SENT/secret; ls /proc/1/root$SENT; cat /proc/1/root/proc/1/root$SENT/secret`)}, check: noSecret},
		{class: c, name: "read a host file through /proc/self/root", expected: "nothing read",
			req: api.ExecuteRequest{Cmd: sh(`cat /proc/self/root$SENT/secret /proc/self/root/../../..$SENT/secret`)}, check: noSecret},
		{class: c, name: "read a host file through /proc/*/cwd and /proc/*/root", expected: "nothing read",
			req: api.ExecuteRequest{Cmd: sh(`for p in /proc/[0-9]*; do cat $p/cwd$SENT/secret $p/root$SENT/secret $p/cwd/../../..$SENT/secret; done 2>/dev/null; true`)}, check: noSecret},
		{class: c, name: "read a host file by its host path", expected: "nothing read",
			req: api.ExecuteRequest{Cmd: sh(`cat $SENT/secret $SENT/sub/secret; ls -la $(dirname $SENT)`)}, check: noSecret},
		{class: c, name: "write a host file through /proc/1/root", expected: "write fails, sentinel unchanged",
			req:   api.ExecuteRequest{Cmd: sh(`echo pwned > /proc/1/root$SENT/new; echo pwned >> /proc/1/root$SENT/secret; mkdir -p $SENT && echo pwned > $SENT/secret; echo rc=$?`)},
			check: status(runtime.StatusOK, stdoutIs("rc=0\n"))}, // the last write lands in the sandbox's own (read-only) root or fails; the host check proves the sentinel unchanged
		{class: c, name: "write the daemon's state and image store by host path", expected: "fails, store unchanged",
			req:   api.ExecuteRequest{Cmd: sh(`touch $IMGROOT/bin/pwned $STATE/pwned $RUNDIR/pwned 2>&1; ls $STATE 2>&1; echo end`)},
			check: status(runtime.StatusOK, stdoutHas("No such file or directory", "end"))},
		{class: c, name: "write the image root (touch /bin, append /etc/passwd, chmod u+s)", expected: "3 refusals (EROFS or EACCES)",
			req: api.ExecuteRequest{Cmd: sh(`touch /bin/pwned; echo 'evil::0:0::/:/bin/sh' >> /etc/passwd; chmod u+s /bin/busybox; true`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				ro, perm := strings.Count(r.Run.Stderr, "Read-only file system"), strings.Count(r.Run.Stderr, "Permission denied")
				return fmt.Sprintf("%d x EROFS, %d x EACCES", ro, perm), ro+perm == 3
			})},
		{class: c, name: "crash the host through /proc/sysrq-trigger", expected: "masked (/dev/null) or absent, host up",
			req:   api.ExecuteRequest{Cmd: sh(`echo c > /proc/sysrq-trigger; echo b > /proc/sysrq-trigger; if [ -e /proc/sysrq-trigger ]; then stat -c '%F %t:%T' /proc/sysrq-trigger; else echo absent; fi`)},
			check: status(runtime.StatusOK, stdoutIs(sysrqExpected()))},
		{class: c, name: "write /proc/sys (panic, drop_caches, hostname, core_pattern)", expected: "Read-only file system x4",
			req: api.ExecuteRequest{Cmd: sh(`echo 1 > /proc/sys/kernel/panic; echo 3 > /proc/sys/vm/drop_caches; echo pwned > /proc/sys/kernel/hostname; echo '|/tmp/x' > /proc/sys/kernel/core_pattern; true`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				n := strings.Count(r.Run.Stderr, "Read-only file system")
				return fmt.Sprintf("%d x Read-only file system", n), n == 4
			})},
		{class: c, name: "write /sys (uevent_helper, THP, lo's mtu, cgroups)", expected: "Read-only file system; no cgroupfs",
			req: api.ExecuteRequest{Cmd: sh(`echo /tmp/x > /sys/kernel/uevent_helper; echo always > /sys/kernel/mm/transparent_hugepage/enabled; echo 100 > /sys/class/net/lo/mtu; ls /sys/fs/cgroup | wc -l; grep -c ' /sys sysfs ro' /proc/mounts`)},
			check: status(runtime.StatusOK, stdoutIs("0\n1\n"), func(r *api.ExecuteResponse) (string, bool) {
				n := strings.Count(r.Run.Stderr, "Read-only file system")
				return fmt.Sprintf("%d x Read-only file system", n), n == 3
			})},
		{class: c, name: "read kernel memory (/proc/kcore, /proc/kallsyms, /dev/mem)", expected: "nothing readable",
			req: api.ExecuteRequest{Cmd: sh(`echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c) kallsyms=$(cat /proc/kallsyms 2>/dev/null | wc -c) mem=$(cat /dev/mem 2>/dev/null | wc -c) devices=$(ls /dev | tr '\n' ' ')`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				out := strings.TrimSpace(r.Run.Stdout)
				return out, strings.HasPrefix(out, "kcore=0 kallsyms=0 mem=0 ") && !strings.Contains(out, "sd") && !strings.Contains(out, "mem ")
			})},
		{class: c, name: "read host facts: /proc/cmdline, boot_id, vmcoreinfo, /proc/locks, host paths in mountinfo", expected: "all empty, no host path",
			req: api.ExecuteRequest{Cmd: sh(`for f in /proc/cmdline /proc/sys/kernel/random/boot_id /sys/kernel/vmcoreinfo /proc/locks; do printf '%s=%s ' $(basename $f) $(cat $f 2>/dev/null | wc -c); done; echo; cat /proc/self/mountinfo`)},
			check: func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
				if err != nil {
					return describe(r, err), false
				}
				first, rest, _ := strings.Cut(r.Run.Stdout, "\n")
				for _, host := range []string{s.d.Dir, s.d.StateDir, s.d.RunDir, os.TempDir() + "/"} {
					if strings.Contains(rest, host) {
						return "mountinfo names " + host, false
					}
				}
				return first, first == "cmdline=0 boot_id=0 vmcoreinfo=0 locks=0 "
			}},
		{class: c, name: "run with speculative store bypass left on (Spectre v4)", expected: "never \"thread vulnerable\"",
			req: api.ExecuteRequest{Cmd: sh(`grep -i '^Specul' /proc/self/status`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				// "thread vulnerable" means the CPU could mitigate it for this
				// thread and nothing asked it to; "vulnerable" alone means the
				// CPU or kernel offers no control (as on this CI's VM).
				out := strings.Join(strings.Fields(r.Run.Stdout), " ")
				return out, strings.Contains(out, "Speculation_Store_Bypass:") && !strings.Contains(out, "thread vulnerable")
			})},
		{class: c, name: "fill /dev/shm with empty files (inodes)", expected: "ENOSPC within its inode limit",
			req:   api.ExecuteRequest{Cmd: sh(`df -i /dev/shm | tail -1 | awk '{print "inodes=" $2}'; probe files /dev/shm 100000; true`)},
			check: status(runtime.StatusOK, stdoutHas("inodes=4096", "error ENOSPC after 4095"))},
		{class: c, name: "overwrite the runtime through /proc/1/exe (runc CVE-2019-5736)", expected: "Permission denied",
			req:   api.ExecuteRequest{Cmd: sh(`echo pwned > /proc/1/exe 2>&1; cat /proc/1/exe > /dev/null 2>&1 || echo cannot-read; ls -l /proc/1/exe 2>&1 | head -1; true`)},
			check: status(runtime.StatusOK, stdoutHas("cannot-read"))},
		{class: c, name: "a leaked host descriptor (runc CVE-2024-21626)", expected: "only fds 0,1,2",
			req: api.ExecuteRequest{Cmd: prb("fds")}, check: status(runtime.StatusOK, stdoutIs("0\n1\n2\n"))},
		{class: c, name: "mknod a block device", expected: "mknod=EPERM",
			req: api.ExecuteRequest{Cmd: atk("mknod", "/tmp/sda")}, check: status(runtime.StatusOK, stdoutIs("mknod=EPERM\n"))},
		{class: c, name: "busybox mount, chroot, unshare, nsenter", expected: "all refused",
			req: api.ExecuteRequest{Cmd: sh(`mount -t tmpfs none /tmp 2>&1 && echo MOUNTED; chroot / /bin/true 2>&1 && echo CHROOTED; unshare -r true 2>&1 && echo UNSHARED; nsenter -t 1 -m true 2>&1 && echo ENTERED; echo end`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				out := r.Run.Stdout
				ok := strings.HasSuffix(out, "end\n") && !strings.Contains(out, "MOUNTED") && !strings.Contains(out, "CHROOTED") && !strings.Contains(out, "UNSHARED") && !strings.Contains(out, "ENTERED")
				return fmt.Sprintf("%d refusals", strings.Count(out, "\n")-1), ok
			})},
		{class: c, name: "setuid(0), setgid(0), setgroups", expected: "EPERM x3",
			req: api.ExecuteRequest{Cmd: atk("setuid")}, check: status(runtime.StatusOK, stdoutIs("setuid=EPERM\nsetgid=EPERM\nsetgroups=EPERM\n"))},
		{class: c, name: "setuid bit on a binary in /work", expected: "/work (the top mount there) nosuid; euid stays 65534",
			req:   api.ExecuteRequest{Cmd: sh(`cp /usr/local/bin/attack /work/s && chmod 4755 /work/s && /work/s ids; grep ' /work ' /proc/mounts | tail -1 | grep -c nosuid`)},
			check: status(runtime.StatusOK, stdoutIs("uid 65534 65534 65534\n1\n"))},
		{class: c, name: "connect to a TCP service on the host's 127.0.0.1", expected: "ECONNREFUSED, host accepts nothing",
			req: api.ExecuteRequest{Cmd: sh(`probe connect $PORT $0`)}, check: status(runtime.StatusRuntimeError, stdoutIs("error ECONNREFUSED\n"))},
		{class: c, name: "connect to the daemon's own socket by path", expected: "ENOENT",
			req: api.ExecuteRequest{Cmd: sh(`attack unixconnect $SOCK $0`)}, check: status(runtime.StatusOK, stdoutIs("connect=ENOENT\n"))},
		{class: c, name: "connect to a host abstract Unix socket", expected: "ECONNREFUSED",
			req: api.ExecuteRequest{Cmd: sh(`attack absconnect $ABS $0`)}, check: status(runtime.StatusOK, stdoutIs("connect=ECONNREFUSED\n"))},
		{class: c, name: "reach the outside network", expected: "no route (loopback only)",
			req: api.ExecuteRequest{Cmd: sh(`nc -w 1 1.1.1.1 80 </dev/null 2>&1; nc -w 1 10.0.0.1 80 </dev/null 2>&1; ls /sys/class/net`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				out := r.Run.Stdout
				return clip(strings.ReplaceAll(out, "\n", "; ")), strings.Count(out, "unreachable") == 2 && strings.HasSuffix(out, "\nlo\n")
			})},
		{class: c, name: "setuid-root binary in an imported image", expected: "store strips the bit; euid 65534",
			run: setuidImage},
		{class: c, name: "symlinks to host files left in /work for the daemon to read back", expected: "links skipped, nothing read",
			run: symlinkCollect},
		{class: c, name: "collect: links to the host sentinel, to / and through a linked directory", expected: "listed as symlinks, nothing read",
			req: api.ExecuteRequest{Cmd: sh(`ln -s $SENT/secret s; ln -s / r; ln -s $SENT d; mkdir -p real; ln -s $SENT/secret real/s; mkfifo f`),
				Collect: []string{"s", "r" + "/etc/shadow", "d/secret", "real", "f", "*", "r/*"}},
			check: collectedNothing("s", "r/etc/shadow", "d/secret")},
		{class: c, name: "collect: /work/d swapped between a directory and a link to / until the run is killed", expected: "nothing read",
			req: api.ExecuteRequest{Cmd: sh(`while :; do rm -rf d; mkdir -p d/etc; echo x > d/etc/shadow; rm -rf d; ln -s / d; done`),
				Limits: &api.Limits{WallTimeMS: ptr(int64(500))}, Collect: []string{"d/etc/shadow", "d", "d/*/*"}},
			check: collectedNothing()},
	}
	for _, sc := range []struct{ name, why string }{
		{"mount", "tmpfs"}, {"mount_bind", "bind /"}, {"umount", "/proc"}, {"pivot_root", "new root"}, {"chroot", "/tmp"},
		{"unshare_user", "CLONE_NEWUSER"}, {"unshare_mnt", "CLONE_NEWNS"}, {"unshare_net", "CLONE_NEWNET"},
		{"clone_newuser", "clone flag"}, {"setns", "into pid 1's mnt ns"}, {"ptrace_traceme", "PTRACE_TRACEME"},
		{"ptrace_attach", "attach pid 1"}, {"process_vm_readv", "read pid 1"}, {"bpf", "map create"},
		{"keyctl", "session keyring"}, {"add_key", "user key"}, {"perf_event_open", "cpu clock"},
		{"userfaultfd", "uffd"}, {"io_uring_setup", "ring"}, {"init_module", "load module"},
		{"finit_module", "load module by fd"}, {"kexec_load", "new kernel"}, {"open_by_handle_at", "shocker"},
		{"socket_raw", "AF_INET SOCK_RAW"}, {"socket_packet", "AF_PACKET"}, {"reboot", "restart"},
		{"swapon", "swap"}, {"settimeofday", "host clock"}, {"sethostname", "UTS"},
	} {
		as = append(as, sysDenied(sc.name, sc.why))
	}
	return as
}

// setuidImage imports the test rootfs with the attack program setuid root,
// then runs it: the store must have dropped the bit, and even so the
// program must stay uid 65534.
func setuidImage(t *testing.T, s *suite, marker string) (string, bool) {
	img, err := s.d.Client.Import(context.Background(), testdaemon.Tar(t, testRootfs, func(h *tar.Header) bool {
		if h.Name == "usr/local/bin/attack" {
			h.Mode |= 0o6000
			h.Uid, h.Gid = 0, 0
		}
		return true
	}), "suid-"+marker)
	if err != nil {
		return "import: " + err.Error(), false
	}
	defer func() {
		if err := s.d.Client.RemoveImage(context.Background(), img.Name); err != nil {
			t.Errorf("remove %s: %v", img.Name, err)
		}
	}()
	r, err := s.exec(context.Background(), api.ExecuteRequest{Image: img.Name, Cmd: sh(`stat -c '%a %u' /usr/local/bin/attack; attack ids`)}, marker)
	// The owner shows as 0, or as the overflow id 65534 in a user namespace.
	seen, ok := status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
		out := r.Run.Stdout
		return clip(strings.ReplaceAll(out, "\n", ", ")), (out == "755 0\nuid 65534 65534 65534\n" || out == "755 65534\nuid 65534 65534 65534\n")
	})(s, r, err)
	return seen, ok
}

// symlinkCollect runs a "compile" that leaves symlinks to host paths (and
// to the sandbox's own /proc/1/root), a symlinked directory, a fifo and
// one regular file in /work; the daemon collects /work for the run stage.
func symlinkCollect(t *testing.T, s *suite, marker string) (string, bool) {
	script := fmt.Sprintf(`
ln -s %[1]s/secret leak-host
ln -s /proc/1/root%[1]s/secret leak-proc
ln -s %[1]s leakdir
ln -s / rootdir
mkfifo fifo
echo real > real.txt
`, s.sentinel)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := s.d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "shbuild", Files: []api.File{{Name: "build.sh", Content: script}}})
	if err != nil {
		return "error " + err.Error(), false
	}
	if r.Run == nil {
		return fmt.Sprintf("status %s, no run (compile %+v)", r.Status, r.Compile), false
	}
	out := r.Run.Stdout + r.Run.Stderr
	if strings.Contains(out, s.secret) {
		return "HOST SECRET READ through /work", false
	}
	var names []string
	for _, l := range lines(r.Run.Stdout) {
		if n, ok := strings.CutPrefix(l, "== "); ok {
			names = append(names, n)
		}
	}
	got := strings.Join(names, ",")
	// build.sh is the source; real.txt the compile's only regular output.
	return fmt.Sprintf("%s, run sees %s", r.Status, got), r.Status == "ok" && got == "build.sh,real.txt"
}

// collectedNothing wants no host content among the files the daemon read
// back after the run, and the named ones listed as symlinks.
func collectedNothing(links ...string) func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
	return func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
		if err != nil {
			return describe(r, err), false
		}
		types := map[string]string{}
		for _, f := range r.Run.Files {
			if strings.Contains(f.Content, s.secret) || strings.Contains(f.Content, "root:") {
				return "HOST FILE READ through " + f.Name, false
			}
			types[f.Name] = f.Type
		}
		for _, l := range links {
			if types[l] != "symlink" {
				return fmt.Sprintf("%s listed as %q, not as a symlink", l, types[l]), false
			}
		}
		return fmt.Sprintf("%s, %d entries, nothing read", r.Status, len(r.Run.Files)), true
	}
}
