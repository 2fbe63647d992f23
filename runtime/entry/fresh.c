/*
 * A reusable sandbox runs each program in namespaces of its own. The
 * sandbox libcontainer built (user namespace, cgroup, read-only root,
 * masks) stays; for every run the entry clones a child in new mount, PID,
 * IPC, UTS and network namespaces, and this file makes that child's world
 * fresh before the program exists:
 *   1. its own /proc, for its own PID namespace, with the sandbox's masks
 *      and read-only paths applied again (readonly first: a read-only bind
 *      of /proc/sys would otherwise cover the masks under it);
 *   2. /work and /tmp: tmpfs mounts the host made for this run alone and
 *      sent as detached mounts (open_tree), moved where the sandbox's own
 *      were (those are unmounted from the run's namespace first, so that
 *      its mount table is a one-run sandbox's); a session's run keeps the
 *      sandbox's, which are the session's own;
 *   3. /dev/shm and /dev/pts: new instances, empty, in place of the
 *      sandbox's;
 *   4. loopback up in its network namespace (unless the run has the
 *      sandbox's, for the egress proxy that listens there): a new one, or
 *      the last run's when the host says both runs are the same owner's
 *      (fresh_enter_net);
 *   5. every capability dropped: ambient, bounding, then the rest;
 *   6. once the run is asked for (its launch), its own pipes as stdin,
 *      stdout and stderr.
 * Steps 1-5 run ahead of the run, while the sandbox is parked (a prepared
 * run, entry.c), so that a request waits for none of them.
 * The entry holds CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_SETPCAP in the
 * sandbox's user namespace only (never the host's) for steps 1-5;
 * the program then runs with none, as the sandbox user, under no_new_privs
 * and the seccomp filter (entry.c), exactly as in a one-run sandbox.
 * Nothing of a run survives it: when this child (the run's PID 1) exits,
 * the kernel kills every process of its PID namespace, and its mounts and
 * namespaces go with the last of them.
 */
#define _GNU_SOURCE
#include "fresh.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

static int failf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int fresh_clone_flags(void)
{
	return CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
}

/* The entry's handles on network namespaces: the sandbox's own, where it
 * lives (and ListenInside listens), and the last new one a run got, which
 * the next run of the same owner may get again. Creating a network
 * namespace and tearing one down cost this machine about 0.8 ms of CPU
 * a run (docs/benchmarks.md): a judge's tests of one submission, or one
 * client's runs, pay it once. A run of another owner always gets a new
 * one: the host says which (runtime/reuse.go, netFor). */
static int sandbox_net = -1, kept_net = -1;

/* The masks go whole with MNT_DETACH; one under a read-only bind (boot_id
 * under /proc/sys) may be gone with it already, and most of the list is
 * no mount point on a given kernel: EINVAL and ENOENT are no failures. */
int fresh_unmask_sandbox_proc(const struct fresh *f)
{
	char **lists[] = {f->masked, f->readonly};
	for (int l = 0; l < 2; l++)
		for (char **p = lists[l]; *p; p++)
			if (umount2(*p, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
				return -1;
	return 0;
}

/* read_small reads a small /proc file whole, NUL-terminated; -1 on error. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

/* net_is_quiet reports whether the network namespace the entry is in holds
 * no TCP socket: none open (none can be listening, with no process), none
 * of an earlier run still closing (TIME_WAIT would keep its port from a
 * bind for up to a minute). From the namespace's own counters in
 * /proc/net/sockstat and sockstat6, not /proc/net/tcp, whose reading walks
 * the host's whole connection table (about 1.5 ms of CPU here). Counters
 * that cannot be read count as not quiet. */
static int net_is_quiet(void)
{
	char buf[1024];
	int inuse = -1, tw = -1, inuse6 = 0;
	if (read_small("/proc/self/net/sockstat", buf, sizeof buf) < 0)
		return 0;
	const char *tcp = strstr(buf, "\nTCP: ");
	if (!tcp || sscanf(tcp, "\nTCP: inuse %d orphan %*d tw %d", &inuse, &tw) != 2)
		return 0;
	if (read_small("/proc/self/net/sockstat6", buf, sizeof buf) >= 0) {
		const char *tcp6 = strstr(buf, "TCP6: ");
		if (!tcp6 || sscanf(tcp6, "TCP6: inuse %d", &inuse6) != 1)
			return 0;
	} else if (errno != ENOENT) {
		return 0; /* ENOENT: no IPv6 in this kernel */
	}
	return inuse == 0 && tw == 0 && inuse6 == 0;
}

int fresh_enter_net(const struct fresh *f, char *err, size_t errlen)
{
	if (sandbox_net < 0 && (sandbox_net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		return failf(err, errlen, "entry: the sandbox's network namespace: %s", strerror(errno));
	switch (f->net) {
	case FRESH_NET_SHARE:
		return 0;
	case FRESH_NET_KEEP:
		if (kept_net < 0)
			return failf(err, errlen, "entry: no network namespace kept from an earlier run");
		if (setns(kept_net, CLONE_NEWNET) < 0)
			return failf(err, errlen, "entry: the kept network namespace: %s", strerror(errno));
		if (net_is_quiet())
			return 0;
		break; /* a new one after all: unshared from the kept one */
	}
	if (unshare(CLONE_NEWNET) < 0)
		return failf(err, errlen, "entry: a network namespace for the run: %s", strerror(errno));
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failf(err, errlen, "entry: the run's network namespace: %s", strerror(errno));
	if (kept_net >= 0)
		close(kept_net); /* the last run's goes once nothing is in it */
	kept_net = fd;
	return 0;
}

int fresh_leave_net(const struct fresh *f, char *err, size_t errlen)
{
	if (f->net != FRESH_NET_SHARE && setns(sandbox_net, CLONE_NEWNET) < 0)
		return failf(err, errlen, "entry: back to the sandbox's network namespace: %s", strerror(errno));
	return 0;
}

static const unsigned long proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

/* What a masked path is in a new /proc: the same for every run on one
 * kernel, so looked up in the first run's only (each lookup in /proc costs
 * a path walk, and most of the list is absent here). The cache is in the
 * entry's memory, which its runs' PID 1s share (entry.c, run_stack). */
enum { MASK_ABSENT = 1, MASK_DIR, MASK_FILE };
#define MASK_CACHE 64
static struct {
	char *path;
	int kind;
} mask_cache[MASK_CACHE];

static int masked_kind(const char *path)
{
	int i = 0;
	for (; i < MASK_CACHE && mask_cache[i].path; i++)
		if (strcmp(mask_cache[i].path, path) == 0)
			return mask_cache[i].kind;
	struct stat st;
	int kind = stat(path, &st) < 0 ? MASK_ABSENT : S_ISDIR(st.st_mode) ? MASK_DIR : MASK_FILE;
	/* Only what was found for sure is kept: an error other than ENOENT
	 * is asked again next time. */
	if (i < MASK_CACHE && (kind != MASK_ABSENT || errno == ENOENT) && (mask_cache[i].path = strdup(path)))
		mask_cache[i].kind = kind;
	return kind;
}

/* mount_proc gives the run a /proc of its own PID namespace, then hides
 * again what the sandbox's /proc hides. */
static int mount_proc(const struct fresh *f, char *err, size_t errlen)
{
	if (mount("proc", "/proc", "proc", proc_flags, NULL) < 0)
		return failf(err, errlen, "entry: mounting the run's /proc: %s", strerror(errno));
	for (char **p = f->readonly; *p; p++) {
		if (mount(*p, *p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return failf(err, errlen, "entry: read-only %s: %s", *p, strerror(errno));
		}
		if (mount(NULL, *p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC | proc_flags, NULL) < 0)
			return failf(err, errlen, "entry: read-only %s: %s", *p, strerror(errno));
	}
	for (char **p = f->masked; *p; p++) {
		int kind = masked_kind(*p);
		if (kind == MASK_ABSENT)
			continue; /* not on this kernel: nothing to hide */
		int rc = kind == MASK_DIR ? mount("tmpfs", *p, "tmpfs", MS_RDONLY | proc_flags, "size=0")
					  : mount("/dev/null", *p, NULL, MS_BIND, NULL);
		if (rc < 0)
			return failf(err, errlen, "entry: masking %s: %s", *p, strerror(errno));
	}
	return 0;
}

/* mount_scratch moves the host's detached mounts for this run over /work
 * and /tmp (a session's run keeps the sandbox's), and mounts new /dev/shm
 * and /dev/pts instances. Each goes on top of the sandbox's own, which no
 * run ever writes to, like the run's /proc over the sandbox's: a covered
 * mount cannot be reached by any path, and nothing of the run holds it
 * open (PID 1 enters /work only after). Not unmounting the sandbox's
 * first spares four synchronous RCU grace periods a run: the run's mount
 * namespace ends in one. */
static int mount_scratch(const struct fresh *f, char *err, size_t errlen)
{
	static const char *const where[] = {[FRESH_WORK] = "/work", [FRESH_TMP] = "/tmp"};
	for (int i = 0; i < FRESH_NMOUNTS; i++)
		if (f->mounts[i] >= 0 &&
		    syscall(SYS_move_mount, f->mounts[i], "", AT_FDCWD, where[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return failf(err, errlen, "entry: mounting the run's %s: %s", where[i], strerror(errno));
	if (mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f->shm_options) < 0)
		return failf(err, errlen, "entry: mounting the run's /dev/shm: %s", strerror(errno));
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, f->pts_options) < 0)
		return failf(err, errlen, "entry: mounting the run's /dev/pts: %s", strerror(errno));
	return 0;
}

/* loopback_up: a new network namespace has only lo, and it is down. */
static int loopback_up(char *err, size_t errlen)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return failf(err, errlen, "entry: socket: %s", strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	int saved = errno;
	close(s);
	return rc < 0 ? failf(err, errlen, "entry: loopback up: %s", strerror(saved)) : 0;
}

int fresh_take_stdio(const int pipes[FRESH_NPIPES], char *err, size_t errlen)
{
	for (int i = 0; i < FRESH_NPIPES; i++)
		if (dup2(pipes[i], i) != i)
			return failf(err, errlen, "entry: stdio: %s", strerror(errno));
	for (int i = 0; i < FRESH_NPIPES; i++)
		if (pipes[i] > 2)
			close(pipes[i]);
	return 0;
}

/* drop_capabilities leaves the child none, in any set, for good. */
static int drop_capabilities(char *err, size_t errlen)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return failf(err, errlen, "entry: clearing ambient capabilities: %s", strerror(errno));
	/* Reading the bounding set first spares a drop (and its audit of
	 * CAP_SETPCAP) for each of the many it no longer holds. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			return failf(err, errlen, "entry: dropping capability %d: %s", cap, strerror(errno));
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return failf(err, errlen, "entry: dropping capabilities: %s", strerror(errno));
	return 0;
}

int fresh_setup(const struct fresh *f, char *err, size_t errlen)
{
	if (mount_proc(f, err, errlen) < 0 || mount_scratch(f, err, errlen) < 0)
		return -1;
	if (f->net != FRESH_NET_SHARE && loopback_up(err, errlen) < 0)
		return -1;
	return drop_capabilities(err, errlen);
}
