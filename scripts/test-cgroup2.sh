#!/bin/sh
# Proves sandboxd's cgroup v2 path on any host: boots Debian 12's kernel in
# qemu (TCG: no KVM needed) with cgroup_no_v1=all, from an initramfs that
# holds the static sandboxd, the static cgroup2 test binary
# (test/cgroup2, build tag cgroup2vm) and the busybox test rootfs, runs the
# tests there and reads their verdict from the serial console.
#
#   scripts/test-cgroup2.sh BIN ROOTFS     (make test-cgroup2 passes both)
#
# Environment: GO (go), TAGS (Go build tags of sandboxd), CACHE_DIR
# (.cache/cgroup2), TIMEOUT (600 s for one boot of the VM), QEMU_MEM (1024).
# The kernel package is fetched once through apt and kept in CACHE_DIR.
# Exits 0 only if the VM printed its result line with 0 failures.
set -eu

bin=${1:?usage: test-cgroup2.sh BIN ROOTFS}
rootfs=${2:?usage: test-cgroup2.sh BIN ROOTFS}
GO=${GO:-go}
TAGS=${TAGS:-seccomp netgo osusergo urfave_cli_no_docs}
cache=${CACHE_DIR:-.cache/cgroup2}
timeout=${TIMEOUT:-600}
mem=${QEMU_MEM:-1024}
busybox=/bin/busybox

say() { echo "test-cgroup2: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$bin" ] || die "$bin missing (make build)"
[ -x "$rootfs/usr/local/bin/probe" ] || die "$rootfs has no probe (make .cache/rootfs/busybox-test)"
[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
mkdir -p "$cache"

# 1. The kernel: the newest Debian 12 linux-image-6.1.0-N-amd64, fetched
# once. Only /boot/vmlinuz-* and the overlayfs module are kept; the kernel
# has what the VM needs built in (tmpfs, proc, sysfs, devtmpfs, cgroup2,
# serial console, initramfs gzip). overlayfs is a module there, and
# sandboxd gives each sandbox its own overlay of the image: the VM loads
# it, so that it runs the production path.
kernel="$cache/vmlinuz"
overlay="$cache/overlay.ko"
if [ ! -s "$kernel" ] || [ ! -s "$overlay" ]; then
	pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | cut -d' ' -f1 | sort -V | tail -n1)
	if [ -z "$pkg" ]; then
		say "no linux-image-6.1.0-*-amd64 in the apt lists; running apt-get update"
		apt-get update -qq >/dev/null
		pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -n1)
	fi
	[ -n "$pkg" ] || die "no linux-image-6.1.0-*-amd64 package found"
	say "fetching $pkg"
	dl="$cache/download"
	rm -rf "$dl" && mkdir -p "$dl"
	# apt's _apt user must be able to write there, or apt warns.
	chmod 777 "$dl"
	(cd "$dl" && apt-get download -q "$pkg" >/dev/null 2>&1) || (cd "$dl" && apt-get download "$pkg")
	dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -x -C "$dl" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/fs/overlayfs/overlay.ko'
	cp "$dl"/lib/modules/*/kernel/fs/overlayfs/overlay.ko "$overlay"
	cp "$dl"/boot/vmlinuz-* "$kernel.tmp"
	echo "$pkg" > "$cache/kernel-package"
	mv "$kernel.tmp" "$kernel"
	rm -rf "$dl"
fi
say "kernel: $(cat "$cache/kernel-package" 2>/dev/null || echo "$kernel")"

# What one run builds lives in its own directory, so that two runs on one
# host (two checkouts, two CI jobs) never boot each other's half-written
# initramfs. Only the kernel is shared.
work=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 2. The test binary: static, like sandboxd, since the VM has no libc.
testbin="$work/cgroup2.test"
say "building the cgroup2 test binary"
CGO_ENABLED=1 "$GO" test -c -tags "$TAGS cgroup2vm" \
	-ldflags "-linkmode external -extldflags -static" -o "$testbin" ./test/cgroup2

# 3. The initramfs.
stage="$work/initramfs"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/run" "$stage/tmp" "$stage/newroot"
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
done
ln -s bin "$stage/sbin"
cp "$bin" "$stage/sandboxd"
cp "$testbin" "$stage/cgroup2.test"
cp "$overlay" "$stage/overlay.ko"
cp -a "$rootfs" "$stage/rootfs"
# The kernel opens /dev/console before running /init.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
cat > "$stage/init" <<'INIT'
#!/bin/sh
# Stage 1, on the initramfs itself: pivot_root(2) refuses to work there,
# and libcontainer needs it, so copy everything to a tmpfs and switch_root.
if [ ! -e /.stage2 ]; then
	mount -t tmpfs -o mode=0755 tmpfs /newroot
	for f in /*; do
		case $f in /newroot|/proc|/sys|/dev) ;; *) cp -a "$f" /newroot/ ;; esac
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev
	touch /newroot/.stage2
	exec switch_root /newroot /init
fi
# Stage 2: a minimal pure cgroup v2 host, mounted as systemd mounts it.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
ln -s /proc/self/fd /dev/fd 2>/dev/null
echo 60 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
insmod /overlay.ko || echo "CGROUP2-VM: could not load overlay.ko"
grep -qw overlay /proc/filesystems && echo "CGROUP2-VM: overlayfs loaded"
# What systemd does on a v2 host before starting units.
echo "+cpu +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
echo "CGROUP2-VM: kernel $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
# The output goes to the console as it comes, so that a hang shows where
# it stopped. A watchdog inside the VM dumps what every task is blocked on
# (SysRq w) and the test's goroutines (SIGQUIT) well before the host's
# timeout kills the VM: go test's own -timeout cannot fire if the test
# process is stuck in the kernel.
SANDBOXD_BIN=/sandboxd SANDBOXD_ROOTFS=/rootfs /cgroup2.test -test.v -test.count=1 -test.timeout=5m > /tmp/test.out 2>&1 &
testpid=$!
tail -f /tmp/test.out &
tailpid=$!
(
	sleep 400
	echo "CGROUP2-VM: watchdog: the tests run longer than 400s; blocked tasks and goroutines follow"
	echo 1 > /proc/sys/kernel/sysrq
	echo w > /proc/sysrq-trigger
	kill -QUIT $testpid
	sleep 20
	dmesg | tail -n 200
	kill -KILL $testpid
) &
dogpid=$!
wait $testpid
rc=$?
kill $dogpid 2>/dev/null
sleep 1
kill $tailpid 2>/dev/null
echo "CGROUP2-VM: test binary exit status $rc"
awk -v rc="$rc" '
	/^ *--- (PASS|FAIL|SKIP): / {
		top = ($0 ~ /^---/)
		name = $3; verdict = $2; sub(":", "", verdict)
		if (verdict == "SKIP") verdict = "FAIL (skipped)"
		printf "CGROUP2-TEST: %s%s %s\n", (top ? "" : "  "), name, verdict
		if (top) { if (verdict == "PASS") pass++; else fail++ }
	}
	END {
		if (rc != 0 && fail == 0) fail = 1
		if (pass + fail == 0) fail = 1
		printf "CGROUP2-RESULT: %d passed, %d failed\n", pass, fail
	}' /tmp/test.out
sync
poweroff -f
INIT
chmod 755 "$stage/init"
say "packing the initramfs"
(cd "$stage" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$work/initramfs.cpio.gz"
rm -rf "$stage"

# 4. Boot. TCG only: nested KVM hangs on some hosts, and -cpu host needs
# KVM. The console is the VM's only output, kept in console.log.
# A VM that hangs with no verdict (no CGROUP2-RESULT line) is booted once
# more: on a busy host, TCG has been seen to stall a boot for good (CI
# once saw no output at all for 900 s after the controllers line, and 8
# boots in a row passed on the same machine afterwards). The console of
# the stalled boot is kept beside the log. A failed test never retries.
boot() {
	say "booting (TCG, -m $mem, -smp 2, timeout ${timeout}s); console in $cache/console.log"
	{
		rc=0
		timeout --foreground -k 10 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
			-display none -nodefaults -no-reboot -serial stdio \
			-kernel "$kernel" -initrd "$work/initramfs.cpio.gz" \
			-append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet" </dev/null 2>&1 || rc=$?
		echo "$rc" > "$work/qemu.rc"
	} | tr -d '\r' | tee "$work/console.log"
	qemu_rc=$(cat "$work/qemu.rc" 2>/dev/null || echo 1)
}
boot
if ! grep -qa '^CGROUP2-RESULT: ' "$work/console.log"; then
	cp "$work/console.log" "$cache/console.stalled.log"
	say "the VM gave no verdict (qemu status $qemu_rc; console in $cache/console.stalled.log): booting once more"
	boot
fi
# The last boot's console stays as console.log for whoever reads the error.
cp "$work/console.log" "$cache/console.log"
log="$cache/console.log"

# 5. The verdict.
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	die "timeout: the VM ran longer than ${timeout}s (see $log)"
fi
if grep -q "Kernel panic" "$log"; then
	die "the VM's kernel panicked (see $log)"
fi
result=$(grep -a '^CGROUP2-RESULT: ' "$log" | tail -n1)
if [ -z "$result" ]; then
	die "no CGROUP2-RESULT line: the VM timed out after ${timeout}s or died (see $log)"
fi
say "tests:"
grep -a '^CGROUP2-TEST: ' "$log" | sed 's/^CGROUP2-TEST: /  /' >&2
say "${result#CGROUP2-RESULT: }"
case $result in
*" 0 failed")
	[ "$qemu_rc" = 0 ] || die "qemu exited with status $qemu_rc"
	;;
*) exit 1 ;;
esac
