/*
 * "sandboxd sandbox-userns-limits PID NAME=VALUE..." writes the per-user
 * limits of /proc/sys/user (max_inotify_instances, max_inotify_watches...)
 * of the user namespace of process PID, a sandbox's parked entry.
 *
 * Why: the kernel charges what a sandbox's users hold (inotify instances
 * and watches among them) to its user namespace and then to the
 * namespace's owner, host root, in every namespace above. A new namespace
 * starts with no limit of its own, so one sandbox could take host root's
 * whole share. Each limit is a namespace's own sysctl, writable only from
 * inside it with CAP_SYS_RESOURCE there, which a sandbox's processes never
 * have: so the host joins the namespace for a moment, in a fresh
 * single-threaded process (setns to a user namespace refuses threads),
 * before the Go runtime starts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || strchr(argv[i], '/') || strchr(argv[i], '.'))
			die("bad limit", argv[i]);
		*eq = '\0';
		snprintf(path, sizeof path, "/proc/sys/user/%s", argv[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		size_t n = strlen(eq + 1);
		if (fd < 0 || write(fd, eq + 1, n) != (ssize_t)n)
			die("write", path);
		close(fd);
	}
	_exit(0);
}

__attribute__((constructor)) static void sandboxd_userns_limits(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "sandbox-userns-limits") == 0)
		set_limits(argc, argv);
}
