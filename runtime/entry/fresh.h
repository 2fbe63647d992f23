/*
 * A run in fresh namespaces (fresh.c): what the entry of a reusable sandbox
 * does, in the child it clones for each run, before the run's program
 * exists. See fresh.c for why each step is there.
 */
#ifndef SANDBOXD_FRESH_H
#define SANDBOXD_FRESH_H

#include <stddef.h>

/* The detached mounts the host may send with a run's 'N' (prepare), in
 * order; a run of a session sandbox gets none and keeps the sandbox's own
 * /work and /tmp, which are the session's. */
enum { FRESH_WORK, FRESH_TMP, FRESH_NMOUNTS };

/* The network namespace a run gets (its prepare's network word). */
enum {
	FRESH_NET_NEW,	 /* a new one, which the entry keeps after the run */
	FRESH_NET_SHARE, /* the sandbox's own (an egress proxy's, a session's) */
	FRESH_NET_KEEP,	 /* the one the entry kept: the last run's, the same owner's */
	FRESH_NET_MODES
};

/* The run's pipes, which come later, with its 'L' (launch). */
enum { FRESH_NPIPES = 3 };

struct fresh {
	char **masked;		      /* /proc paths hidden again on the run's own /proc */
	char **readonly;	      /* /proc paths made read-only again */
	char *shm_options;	      /* the run's /dev/shm tmpfs */
	char *pts_options;	      /* the run's devpts instance */
	int net;		      /* FRESH_NET_* */
	int mounts[FRESH_NMOUNTS];    /* the run's /work and /tmp; -1: keep the sandbox's */
	char *filter;		      /* the seccomp program, loaded before the launch */
	size_t flen;
};

/* fresh_clone_flags are the namespaces a run gets of its own; its network
 * namespace is the one the entry is in at the clone (fresh_enter_net). */
int fresh_clone_flags(void);

/* fresh_unmask_sandbox_proc takes the masks and read-only binds off the
 * sandbox's own /proc, before the first run (entry.c, first_prepare). No
 * run ever sees that /proc: each mounts one of its own over it, with the
 * masks again (the kernel lets a user namespace mount a procfs only where
 * one is fully visible already, so the sandbox's itself stays). Each
 * run's mount namespace, a copy of the sandbox's, is then 16 mounts
 * smaller to make and to tear down (on this host's kernel). Returns -1
 * with errno set. */
int fresh_unmask_sandbox_proc(const struct fresh *f);

/* fresh_enter_net puts the entry, from the run's clone until its PID 1 is
 * gone (entry.c waits for it there), in the network namespace the run
 * gets; fresh_leave_net takes it back to the sandbox's own. They return
 * -1 with a message in err on failure. */
int fresh_enter_net(const struct fresh *f, char *err, size_t errlen);
int fresh_leave_net(const struct fresh *f, char *err, size_t errlen);

/* fresh_setup runs in the cloned child, pid 1 of the run's PID namespace,
 * before the run is asked for: it builds the run's mounts and network and
 * drops the entry's capabilities for good. On failure it returns -1 with a
 * message in err. */
int fresh_setup(const struct fresh *f, char *err, size_t errlen);

/* fresh_take_stdio makes the run's pipes (from its launch) its stdin,
 * stdout and stderr, and closes the received copies. */
int fresh_take_stdio(const int pipes[FRESH_NPIPES], char *err, size_t errlen);

#endif
