/*
 * The per-user limits of a sandbox's user namespace (/proc/sys/user:
 * max_inotify_instances, max_inotify_watches, max_*_namespaces...).
 *
 * Why: the kernel charges what a sandbox's users hold (inotify instances
 * and watches among them) to its user namespace and then to the
 * namespace's owner, host root, in every namespace above. A new namespace
 * starts with no limit of its own, so one sandbox could take host root's
 * whole share. Each limit is a namespace's own sysctl, writable only from
 * inside it with CAP_SYS_RESOURCE there, which a sandbox's processes never
 * have. Two ways in:
 *   - a reusable sandbox's entry holds CAP_SYS_RESOURCE from libcontainer
 *     and writes them itself at its first prepare, before any run, then
 *     drops it (userns_limits_from_env, from entry.c first_prepare);
 *   - for any other sandbox, "sandboxd sandbox-userns-limits PID
 *     NAME=VALUE..." joins the user namespace of process PID, the parked
 *     entry, in a fresh single-threaded process (setns to a user namespace
 *     refuses threads), before the Go runtime starts.
 */
#define _GNU_SOURCE
#include "userns_limits.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* write_limit writes one NAME=VALUE (modified in place); -1 with errno. */
static int write_limit(char *pair)
{
	char *eq = strchr(pair, '=');
	if (!eq || eq == pair || strchr(pair, '/') || strchr(pair, '.')) {
		errno = EINVAL;
		return -1;
	}
	*eq = '\0';
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/user/%s", pair);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = strlen(eq + 1);
	ssize_t w = write(fd, eq + 1, n);
	int saved = errno;
	close(fd);
	errno = saved;
	return w == (ssize_t)n ? 0 : -1;
}

/* drop_sys_resource takes CAP_SYS_RESOURCE out of every set of the
 * calling process, for good; the others it holds stay. */
static int drop_sys_resource(void)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_SYS_RESOURCE, 0, 0) < 0 ||
	    prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) < 0)
		return -1;
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	unsigned bit = 1u << (CAP_SYS_RESOURCE % 32);
	int word = CAP_SYS_RESOURCE / 32;
	data[word].effective &= ~bit;
	data[word].permitted &= ~bit;
	data[word].inheritable &= ~bit;
	return (int)syscall(SYS_capset, &hdr, data);
}

int userns_limits_from_env(char *err, size_t errlen)
{
	const char *v = getenv(USERNS_LIMITS_ENV);
	if (!v) {
		snprintf(err, errlen, "entry: no %s", USERNS_LIMITS_ENV);
		return -1;
	}
	char *list = strdup(v);
	if (!list) {
		snprintf(err, errlen, "entry: out of memory");
		return -1;
	}
	int rc = 0;
	for (char *save = NULL, *pair = strtok_r(list, ",", &save); pair && rc == 0;
	     pair = strtok_r(NULL, ",", &save))
		if ((rc = write_limit(pair)) < 0)
			snprintf(err, errlen, "entry: the user namespace's %s: %s", pair, strerror(errno));
	free(list);
	if (rc == 0 && drop_sys_resource() < 0) {
		snprintf(err, errlen, "entry: dropping CAP_SYS_RESOURCE: %s", strerror(errno));
		rc = -1;
	}
	unsetenv(USERNS_LIMITS_ENV);
	return rc;
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "sandbox-userns-limits: %s %s: %m\n", what, arg);
	_exit(1);
}

static void set_limits(int argc, char **argv)
{
	char path[128];
	snprintf(path, sizeof path, "/proc/%s/ns/user", argv[2]);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		die("open", path);
	if (setns(ns, CLONE_NEWUSER) < 0)
		die("setns", path);
	for (int i = 3; i < argc; i++)
		if (write_limit(argv[i]) < 0)
			die("write", argv[i]);
	_exit(0);
}

__attribute__((constructor)) static void sandboxd_userns_limits(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "sandbox-userns-limits") == 0)
		set_limits(argc, argv);
}
