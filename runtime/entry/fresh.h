/*
 * A run in fresh namespaces (fresh.c): what the entry of a reusable sandbox
 * does, in the child it clones for each run, before the run's program
 * exists. See fresh.c for why each step is there.
 */
#ifndef SANDBOXD_FRESH_H
#define SANDBOXD_FRESH_H

#include <stddef.h>

/* The descriptors the host sends with a fresh run's launch, in order. */
enum { FRESH_STDIN, FRESH_STDOUT, FRESH_STDERR, FRESH_WORK, FRESH_TMP, FRESH_NFDS };

struct fresh {
	char **masked;	     /* /proc paths hidden again on the run's own /proc */
	char **readonly;     /* /proc paths made read-only again */
	char *shm_options;   /* the run's /dev/shm tmpfs */
	char *pts_options;   /* the run's devpts instance */
	int share_net;	     /* keep the sandbox's network namespace (egress) */
	int fds[FRESH_NFDS]; /* all of them, in the order above */
};

/* fresh_clone_flags are the namespaces a run gets of its own. */
int fresh_clone_flags(const struct fresh *f);

/* fresh_setup runs in the cloned child, pid 1 of the run's PID namespace:
 * it builds the run's mounts and network, makes the run's descriptors its
 * stdio, and drops the entry's capabilities for good. On failure it
 * returns -1 with a message in err. */
int fresh_setup(const struct fresh *f, char *err, size_t errlen);

#endif
