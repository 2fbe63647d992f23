/*
 * The sandbox's entry: pid 1 of the sandbox, started by libcontainer's init
 * as "/proc/self/exe sandbox-entry" once every namespace, mount, cgroup and
 * credential is in place. It is C, run from an ELF constructor before the Go
 * runtime starts (as libcontainer's own nsexec is), because it runs once per
 * sandbox and stays resident while the program runs: this way it starts in
 * a fraction of a millisecond, holds ~100 KiB instead of a Go heap, and is
 * one task instead of a Go runtime's handful.
 *
 * Protocol on fd 3 (a Unix stream socket; see protocol.go for the format):
 *   entry -> host  'R'                 parked
 *   host  -> entry 'L' launch          argv, envp, cwd, rlimits, BPF filter
 *   entry -> host  'S' pid | 'F' text  started, or could not start; with a
 *                                      terminal, 'S' carries its master (SCM_RIGHTS)
 *   host  -> entry 'K' signal number   deliver a client's signal (any number of times)
 *   host  -> entry 'E'                 end the run now (and everything it started)
 *   entry -> host  'X' wait status     the program ended; from a prepared
 *                                      run's PID 1: and every other process
 *                                      of the run is gone, its stdio closed
 * argv and envp are handed to execve unchanged: nothing here parses them.
 *
 * 'L' may name the CPUs the program runs on (its affinity, a placement).
 * A one-run entry's 'L' may carry the program's stdin and stdout
 * (SCM_RIGHTS, announced by its stdio word): one end of a pipe to another
 * sandbox, dup'ed onto the program's descriptors 0 and 1, never kept.
 *
 * Started as "sandbox-entry fresh", the entry serves many runs, each in
 * namespaces of its own (fresh.c), and prepares each run before it is
 * asked for:
 *   entry -> host  'R'                 parked, nothing prepared
 *   host  -> entry 'N' prepare         /proc masks, mount options, network,
 *                                      BPF filter; the run's /work and /tmp
 *                                      as detached mounts (SCM_RIGHTS), or
 *                                      none to keep the sandbox's
 *   run   -> host  'P' | 'F' text      the run's PID 1 is ready, or not
 *   host  -> run   'L' launch          as above, with the run's pipes
 *                                      (SCM_RIGHTS) and no filter; or 'E':
 *                                      the prepared run is not wanted
 * and so on as above, the run's PID 1 speaking for it. On 'N' the entry
 * clones the run's PID 1 in new namespaces, which builds the run's world,
 * drops every capability and loads the filter before it says 'P'; once
 * that child and with it every process of the run is gone, the entry says
 * 'R' again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fresh.h"
#include "userns_limits.h"

#define CTL_FD 3
/* The most descriptors a host message carries: a prepare's two mounts, a
 * launch's three pipes. */
#define MAX_RIGHTS 4
#define MAX_MESSAGE (64u << 20)
#define EXIT_NO_LAUNCH 125
#define EXIT_NOT_RUNNABLE 127

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_msg(char type, const void *payload, uint32_t n)
{
	unsigned char hdr[5] = {(unsigned char)type, n >> 24, n >> 16, n >> 8, n};
	if (write_all(CTL_FD, hdr, sizeof hdr) < 0)
		return -1;
	return n ? write_all(CTL_FD, payload, n) : 0;
}

/* send_started sends 'S' with the pid and, when term >= 0, the terminal's
 * master as SCM_RIGHTS: the host reads this one message with recvmsg. */
static int send_started(uint32_t pid, int term)
{
	unsigned char msg[9] = {'S', 0, 0, 0, 4, pid >> 24, pid >> 16, pid >> 8, pid};
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (term >= 0) {
		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof ctl.b;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &term, sizeof term);
	}
	ssize_t w;
	do
		w = sendmsg(CTL_FD, &mh, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -1;
	/* The descriptor went with the first byte; the rest is plain bytes. */
	return write_all(CTL_FD, msg + w, sizeof msg - (size_t)w);
}

static void put_u32(unsigned char *b, uint32_t v)
{
	b[0] = v >> 24, b[1] = v >> 16, b[2] = v >> 8, b[3] = v;
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	send_msg('F', msg, (uint32_t)n);
	_exit(EXIT_NOT_RUNNABLE);
}

struct reader {
	const unsigned char *p;
	size_t left;
};

/* set_batch moves this process between SCHED_BATCH (on) and SCHED_OTHER
 * (off), both at nice 0: a batch task never preempts the one running when
 * it wakes. A reusable sandbox's entry and its prepared run do their work
 * (the next run's namespaces and mounts, a run's teardown) while another
 * sandbox's program runs; as batch tasks they wait for that program to
 * block or for the scheduler's tick instead of taking its CPU, and run at
 * once where a CPU is idle. The run's PID 1 is SCHED_OTHER again from its
 * launch on, so the program runs as it always did
 * (TestProgramRunsAtTheNormalSchedulingPolicy). Both policies are
 * unprivileged, and the filter allows the call: a program may set either
 * one for itself, so a failure here could change how fast it runs, never
 * what it may do. */
static void set_batch(int on)
{
	struct sched_param param = {0};
	(void)sched_setscheduler(0, on ? SCHED_BATCH : SCHED_OTHER, &param);
}

static uint64_t rd_u64(struct reader *r)
{
	if (r->left < 8)
		fail("entry: truncated launch message");
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | r->p[i];
	r->p += 8, r->left -= 8;
	return v;
}

/* rd_bytes returns a NUL-terminated copy; len receives the length. */
static char *rd_bytes(struct reader *r, size_t *len)
{
	uint64_t n = rd_u64(r);
	if (n > r->left)
		fail("entry: truncated launch message");
	char *s = malloc(n + 1);
	if (!s)
		fail("entry: out of memory");
	memcpy(s, r->p, n);
	s[n] = 0;
	r->p += n, r->left -= n;
	if (len)
		*len = n;
	return s;
}

static char **rd_strings(struct reader *r, const char *what)
{
	uint64_t n = rd_u64(r);
	if (n > r->left / 8)
		fail("entry: truncated launch message");
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		fail("entry: out of memory");
	for (uint64_t i = 0; i < n; i++) {
		size_t len;
		v[i] = rd_bytes(r, &len);
		if (strlen(v[i]) != len)
			fail("%s contains a NUL byte", what);
	}
	return v;
}

static const char *describe(int err)
{
	switch (err) {
	case ENOENT:
		return "no such file in the sandbox";
	case EACCES:
		return "permission denied (not executable, or on a noexec mount)";
	case ENOEXEC:
		return "not an executable format";
	default:
		return strerror(err);
	}
}

static int is_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EACCES;
	return access(path, X_OK) < 0 ? -errno : 0;
}

/* resolve finds a command the way a shell would, with the program's PATH. */
static char *resolve(const char *name, char **envp)
{
	if (strchr(name, '/')) {
		int rc = is_executable(name);
		if (rc < 0)
			fail("%s: %s", name, describe(-rc));
		return strdup(name);
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	size_t nlen = strlen(name);
	const char *dir = path;
	for (;;) {
		const char *end = strchrnul(dir, ':');
		size_t dlen = (size_t)(end - dir);
		char *cand = malloc(dlen + nlen + 3);
		if (!cand)
			fail("entry: out of memory");
		if (dlen == 0)
			strcpy(cand, ".");
		else
			memcpy(cand, dir, dlen), cand[dlen] = 0;
		strcat(cand, "/");
		strcat(cand, name);
		if (is_executable(cand) == 0)
			return cand;
		free(cand);
		if (!*end)
			break;
		dir = end + 1;
	}
	fail("%s: command not found in the sandbox's PATH", name);
}

static void ignore_signal(int sig)
{
	(void)sig;
}

/* SIGCHLD wakes the wait loop through this pipe (both ends non-blocking). */
static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int sig)
{
	int saved = errno;
	(void)sig;
	(void)!write(sigchld_pipe[1], "c", 1);
	errno = saved;
}

/* open_terminal makes the program's pseudo-terminal, on the sandbox's own
 * devpts instance (/dev/ptmx is a link to /dev/pts/ptmx), before the filter
 * goes on: the master stays with the entry (and goes to the host), the
 * slave becomes the program's stdin, stdout and stderr. */
static void open_terminal(uint64_t rows, uint64_t cols, int *master, int *slave)
{
	int unlock = 0;
	*master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0)
		fail("entry: opening the terminal (/dev/ptmx): %s", strerror(errno));
	if (ioctl(*master, TIOCSPTLCK, &unlock) < 0)
		fail("entry: unlocking the terminal: %s", strerror(errno));
	/* TIOCGPTPEER opens this master's own slave, never a path that
	 * could name another. */
	*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		fail("entry: opening the terminal's slave: %s", strerror(errno));
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	if (ioctl(*master, TIOCSWINSZ, &ws) < 0)
		fail("entry: setting the terminal's size: %s", strerror(errno));
}

/* exec_program runs in the vfork'ed child, on the entry's memory until
 * execve: it only makes system calls, and reports a failure in *exec_err.
 * On a terminal, the program leads a new session whose controlling
 * terminal it is (so Ctrl-C reaches its foreground group); otherwise it
 * leads its own process group, so that a client's signal reaches what it
 * started too (before the entry runs again: vfork suspends it until then). */
__attribute__((noreturn)) static void exec_program(const char *path, char **argv, char **envp, int slave,
						   const int stdio[2], volatile int *exec_err)
{
	int ok = 1;
	/* Passed descriptors are close-on-exec; their dups on 0 and 1 are not. */
	for (int fd = 0; fd < 2; fd++)
		if (ok && stdio[fd] >= 0)
			ok = dup2(stdio[fd], fd) == fd;
	if (ok && slave >= 0) {
		ok = setsid() >= 0 && ioctl(slave, TIOCSCTTY, 0) >= 0;
		for (int fd = 0; ok && fd < 3; fd++)
			ok = dup2(slave, fd) == fd;
	} else if (ok) {
		ok = setpgid(0, 0) == 0;
	}
	if (ok)
		execve(path, argv, envp);
	*exec_err = errno ? errno : EINVAL;
	_exit(EXIT_NOT_RUNNABLE);
}

/* deliver sends a client's signal: on a terminal to its foreground process
 * group (as the line discipline does for Ctrl-C), otherwise to the
 * program's process group, or to the program alone if it left it. */
static void deliver(int sig, pid_t pid, int master)
{
	if (sig <= 0 || sig >= 65)
		return;
	pid_t pgrp = 0;
	if (master >= 0 && ioctl(master, TIOCGPGRP, &pgrp) == 0 && pgrp > 0 && kill(-pgrp, sig) == 0)
		return;
	if (kill(-pid, sig) < 0)
		kill(pid, sig);
}

/* read_control reads one host message during the run. The host sends 'K'
 * and, to end the run, 'E'; that, anything else, or the socket's end
 * (sandboxd crashed or was killed) ends the run at once instead of letting
 * it run on unwatched: this process is the PID 1 of the run's processes. */
static void read_control(pid_t pid, int master)
{
	unsigned char hdr[5], word[4];
	if (read_all(CTL_FD, hdr, sizeof hdr) < 0)
		_exit(128 + SIGKILL);
	uint32_t n = (uint32_t)hdr[1] << 24 | hdr[2] << 16 | hdr[3] << 8 | hdr[4];
	if (hdr[0] != 'K' || n != 4 || read_all(CTL_FD, word, 4) < 0)
		_exit(128 + SIGKILL);
	deliver((int)((uint32_t)word[0] << 24 | word[1] << 16 | word[2] << 8 | word[3]), pid, master);
}

/* report_exit says 'X' with the program's status and ends this process. */
__attribute__((noreturn)) static void report_exit(int status)
{
	unsigned char word[4];
	put_u32(word, (uint32_t)status);
	send_msg('X', word, 4);
	_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

/* wait_program reaps orphans until the program itself ends; when the entry
 * exits, the kernel kills whatever is left in the PID namespace.
 *
 * sweep (a prepared run's PID 1, pid 1 of the run's own PID namespace):
 * once the program has ended, every other process of the run is killed
 * and reaped, and the run's stdio closed, before 'X'. The host may then
 * answer at once: nothing of the run is left but this process, which
 * exits right after (its namespaces torn down while the answer goes
 * out), and the entry parks again only once it is gone. */
__attribute__((noreturn)) static void wait_program(pid_t pid, int master, int sweep)
{
	int status = 0, ended = 0;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = CTL_FD, .events = POLLIN}, {.fd = sigchld_pipe[0], .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			_exit(EXIT_NOT_RUNNABLE);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			read_control(pid, master);
		if (pfd[1].revents & POLLIN) {
			char drain[64];
			while (read(sigchld_pipe[0], drain, sizeof drain) > 0)
				;
		}
		for (;;) {
			int st;
			pid_t w = waitpid(-1, &st, WNOHANG);
			if (w < 0 && errno == EINTR)
				continue;
			if (w == pid) {
				status = st;
				ended = 1;
			}
			/* Again after every reaped process: one that forked while
			 * the last kill went round is killed too. */
			if (w > 0 && ended && sweep)
				kill(-1, SIGKILL);
			if (w > 0)
				continue;
			if (ended && (!sweep || (w < 0 && errno == ECHILD))) {
				if (sweep) {
					for (int fd = 0; fd < 3; fd++)
						close(fd);
					set_batch(1); /* its exit tears the run down */
				}
				report_exit(status);
			}
			break;
		}
	}
}

/* start_program starts the program with vfork: the entry is suspended
 * until the child has exec'ed or exited, and copies no page tables (a
 * fork here cost about 1 ms of the run's start; measured in
 * docs/benchmarks.md). It returns once execve has succeeded, and fails
 * (reporting 'F') if it did not: the child leaves execve's errno in
 * exec_err, memory the two share until then. */
static pid_t start_program(const char *path, char **argv, char **envp, int slave, const int stdio[2])
{
	volatile int exec_err = 0;
	pid_t pid = vfork();
	if (pid < 0)
		fail("entry: fork: %s", strerror(errno));
	if (pid == 0)
		exec_program(path, argv, envp, slave, stdio, &exec_err);
	if (exec_err != 0) {
		waitpid(pid, NULL, 0);
		fail("%s: %s", argv[0], describe(exec_err));
	}
	return pid;
}

#define MAX_RLIMITS 32
#define MAX_CPUS 1024

struct launch {
	char **argv, **envp, *dir, *filter;
	size_t flen;
	uint64_t rows, cols; /* a terminal of this size; 0: pipes */
	int nlimits;
	struct {
		int res;
		struct rlimit rl;
	} limits[MAX_RLIMITS];
	/* is_fresh: a prepared run's launch, with its pipes; the run's PID 1
	 * has loaded the filter already. */
	int is_fresh;
	int pipes[FRESH_NPIPES];
	/* A one-run entry's passed stdin and stdout; -1: the entry's own. */
	int stdio[2];
	/* The CPUs the program may run on; ncpus 0: wherever. */
	cpu_set_t cpus;
	int ncpus;
};

#define PASS_STDIN 1
#define PASS_STDOUT 2

/* take_passed keeps the descriptors that came with a one-run entry's
 * launch as the program's stdin and stdout, as its stdio word says. */
static void take_passed(struct launch *l, uint64_t mask, const int *fds, int nfds)
{
	int want = (mask & PASS_STDIN ? 1 : 0) + (mask & PASS_STDOUT ? 1 : 0);
	if (mask & ~(uint64_t)(PASS_STDIN | PASS_STDOUT) || nfds != want)
		fail("entry: launch carried %d descriptors for stdio word %llu", nfds, (unsigned long long)mask);
	int i = 0;
	if (mask & PASS_STDIN)
		l->stdio[0] = fds[i++];
	if (mask & PASS_STDOUT)
		l->stdio[1] = fds[i++];
}

/* read_header reads the 5-byte header of the host's next message; in fresh
 * mode through recvmsg, where the run's descriptors arrive with its first
 * byte. */
static int read_header(unsigned char hdr[5], int *fds, int *nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(MAX_RIGHTS * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = hdr, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
	ssize_t r;
	do
		r = recvmsg(CTL_FD, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		return -1;
	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (*nfds + n > MAX_RIGHTS)
				return -1; /* MSG_CTRUNC would have cut them anyway */
			memcpy(fds + *nfds, CMSG_DATA(c), (size_t)n * sizeof(int));
			*nfds += n;
		}
	return read_all(CTL_FD, hdr + 1, 4);
}

static uint32_t msg_len(const unsigned char hdr[5])
{
	return (uint32_t)hdr[1] << 24 | hdr[2] << 16 | hdr[3] << 8 | hdr[4];
}

/* read_body reads a message's payload of n bytes. */
static unsigned char *read_body(uint32_t n)
{
	if (n > MAX_MESSAGE)
		fail("entry: message too large");
	unsigned char *buf = malloc(n ? n : 1);
	if (!buf || read_all(CTL_FD, buf, n) < 0)
		fail("entry: reading a message");
	return buf;
}

static int valid_filter(size_t flen)
{
	return flen > 0 && flen % sizeof(struct sock_filter) == 0 && flen / sizeof(struct sock_filter) <= 0xffff;
}

/* read_prepare reads the 'N' that asks the parked entry of a reusable
 * sandbox to prepare its next run. An 'E' that crossed the end of the last
 * run's program asks for nothing any more: skipped. */
static void read_prepare(struct fresh *f)
{
	unsigned char hdr[5];
	int fds[MAX_RIGHTS], nfds = 0;
	memset(f, 0, sizeof *f);
	do
		if (read_header(hdr, fds, &nfds) < 0)
			_exit(EXIT_NO_LAUNCH); /* the host went away: nothing to run */
	while (hdr[0] == 'E' && msg_len(hdr) == 0 && nfds == 0);
	if (hdr[0] != 'N')
		_exit(EXIT_NO_LAUNCH);
	if (nfds != 0 && nfds != FRESH_NMOUNTS)
		fail("entry: prepare carried %d descriptors", nfds);
	for (int i = 0; i < FRESH_NMOUNTS; i++)
		f->mounts[i] = nfds ? fds[i] : -1;
	unsigned char *buf = read_body(msg_len(hdr));
	struct reader r = {buf, msg_len(hdr)};
	f->masked = rd_strings(&r, "a masked path");
	f->readonly = rd_strings(&r, "a read-only path");
	f->shm_options = rd_bytes(&r, NULL);
	f->pts_options = rd_bytes(&r, NULL);
	uint64_t net = rd_u64(&r);
	if (net >= FRESH_NET_MODES)
		fail("entry: malformed network word");
	f->net = (int)net;
	f->filter = rd_bytes(&r, &f->flen);
	free(buf);
	if (r.left != 0)
		fail("entry: trailing bytes in prepare message");
	if (!valid_filter(f->flen))
		fail("entry: malformed seccomp program");
}

/* read_launch reads the 'L' message; the run's rlimits are set by
 * apply_rlimits, in the process that runs the program. */
static void read_launch(struct launch *l, int fresh_mode)
{
	unsigned char hdr[5];
	int fds[MAX_RIGHTS], nfds = 0;
	memset(l, 0, sizeof *l);
	/* A prepared run's 'E' (or the host's end): the run is not wanted. */
	if (read_header(hdr, fds, &nfds) < 0 || hdr[0] != 'L')
		_exit(EXIT_NO_LAUNCH);
	if (fresh_mode && nfds != FRESH_NPIPES)
		fail("entry: launch carried %d descriptors", nfds);
	l->stdio[0] = l->stdio[1] = -1;
	uint32_t n = msg_len(hdr);
	unsigned char *buf = read_body(n);

	struct reader r = {buf, n};
	l->argv = rd_strings(&r, "an argument");
	l->envp = rd_strings(&r, "the environment");
	l->dir = rd_bytes(&r, NULL);
	uint64_t nlimits = rd_u64(&r);
	if (nlimits > r.left / 24 || nlimits > MAX_RLIMITS)
		fail("entry: truncated launch message");
	l->nlimits = (int)nlimits;
	for (uint64_t i = 0; i < nlimits; i++) {
		l->limits[i].res = (int)rd_u64(&r);
		l->limits[i].rl.rlim_cur = rd_u64(&r);
		l->limits[i].rl.rlim_max = rd_u64(&r);
	}
	l->filter = rd_bytes(&r, &l->flen);
	l->rows = rd_u64(&r);
	l->cols = rd_u64(&r);
	uint64_t mask = rd_u64(&r);
	uint64_t ncpus = rd_u64(&r);
	if (ncpus > MAX_CPUS || ncpus > r.left / 8)
		fail("entry: truncated launch message");
	CPU_ZERO(&l->cpus);
	for (uint64_t i = 0; i < ncpus; i++) {
		uint64_t cpu = rd_u64(&r);
		if (cpu < CPU_SETSIZE)
			CPU_SET((int)cpu, &l->cpus), l->ncpus++;
	}
	if (fresh_mode && mask != 0)
		fail("entry: a fresh run passes its stdio as its pipes");
	if (!fresh_mode)
		take_passed(l, mask, fds, nfds);
	if (fresh_mode) {
		l->is_fresh = 1;
		memcpy(l->pipes, fds, sizeof l->pipes);
	}
	free(buf);
	if (r.left != 0)
		fail("entry: trailing bytes in launch message");
	if (!l->argv[0] || !l->argv[0][0])
		fail("entry: empty command");
	/* A prepared run loaded its filter with the prepare. */
	if (fresh_mode ? l->flen != 0 : !valid_filter(l->flen))
		fail("entry: malformed seccomp program");
	if ((l->rows == 0) != (l->cols == 0) || l->rows > 0xffff || l->cols > 0xffff)
		fail("entry: malformed terminal size");
}

static void apply_rlimits(const struct launch *l)
{
	for (int i = 0; i < l->nlimits; i++)
		if (setrlimit(l->limits[i].res, &l->limits[i].rl) < 0)
			fail("setting resource limit %d: %s", l->limits[i].res, strerror(errno));
}

static void free_strings(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* free_prepare frees what read_prepare allocated and closes its mounts
 * (the run's PID 1 has its own copies): the entry of a reusable sandbox
 * reads thousands of them. */
static void free_prepare(struct fresh *f)
{
	free_strings(f->masked);
	free_strings(f->readonly);
	free(f->shm_options);
	free(f->pts_options);
	free(f->filter);
	for (int i = 0; i < FRESH_NMOUNTS; i++)
		if (f->mounts[i] >= 0)
			close(f->mounts[i]);
}

static void run_program(struct launch *l);

static void entry_setup(void)
{
	/* Non-dumpable: the program, under the same uid, can neither ptrace
	 * the entry nor open its /proc/1/{mem,fd,exe}. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	fcntl(CTL_FD, F_SETFD, FD_CLOEXEC);
	/* pid 1 only gets the signals it handles. Catch (not ignore: an
	 * ignored disposition would survive execve into the program) the ones
	 * the program could send, so they can't end the entry early. */
	static const int caught[] = {SIGTERM, SIGINT,  SIGHUP,    SIGQUIT, SIGUSR1,
				     SIGUSR2, SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF};
	struct sigaction sa = {.sa_handler = ignore_signal, .sa_flags = SA_RESTART};
	for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++)
		sigaction(caught[i], &sa, NULL);
}

static void run_entry(void)
{
	entry_setup();
	if (send_msg('R', NULL, 0) < 0)
		_exit(EXIT_NO_LAUNCH);
	struct launch l;
	read_launch(&l, 0);
	apply_rlimits(&l);
	run_program(&l);
}

static void lock_down(const char *filter, size_t flen);

/* start_fresh runs in the clone: the run's PID 1. It builds the run's
 * world and locks itself down as the program will be, says 'P', and only
 * then waits for the run's launch: a request waits for none of it. */
__attribute__((noreturn)) static void start_fresh(struct fresh *f)
{
	char err[512];
	if (fresh_setup(f, err, sizeof err) < 0)
		fail("%s", err);
	for (int i = 0; i < FRESH_NMOUNTS; i++)
		if (f->mounts[i] >= 0)
			close(f->mounts[i]);
	lock_down(f->filter, f->flen);
	if (send_msg('P', NULL, 0) < 0)
		_exit(EXIT_NO_LAUNCH);
	struct launch l;
	read_launch(&l, 1);
	set_batch(0);
	if (fresh_take_stdio(l.pipes, err, sizeof err) < 0)
		fail("%s", err);
	apply_rlimits(&l);
	run_program(&l);
	_exit(EXIT_NOT_RUNNABLE);
}

/* run_stack is the stack the run's PID 1 runs on. That PID 1 is cloned
 * with CLONE_VM | CLONE_VFORK: it runs in the entry's memory, on a stack
 * of its own, while the entry waits (as it did for it anyway) until it is
 * gone. Copying the entry's page tables for it, the copy-on-write faults
 * of each page it then writes, and freeing it all as it exits cost about
 * a seventh of the entry's and run PID 1's CPU per run (docs/throughput.md).
 * Nothing is shared that a run could reach: the PID 1 is non-dumpable
 * (the memory's flag, PR_SET_DUMPABLE in entry_setup), so neither the
 * program nor anything it starts may ptrace it or open its /proc/1/mem;
 * its descriptors, signal handlers, credentials, capabilities, filter,
 * namespaces and root are its own (no CLONE_FILES, CLONE_SIGHAND or
 * CLONE_FS). What it allocates it frees once its program has started
 * (run_program), and the program gets memory of its own at execve. The
 * one stack serves every run: one PID 1 at a time, below a guard page. */
#define RUN_STACK_SIZE (1 << 20)
static char *run_stack(void)
{
	static char *top;
	if (!top) {
		long page = sysconf(_SC_PAGESIZE);
		char *base = mmap(NULL, RUN_STACK_SIZE + (size_t)page, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (base == MAP_FAILED || mprotect(base, (size_t)page, PROT_NONE) < 0)
			fail("entry: the run's stack: %s", strerror(errno));
		top = base + (size_t)page + RUN_STACK_SIZE;
	}
	return top;
}

static int start_fresh_on_stack(void *f)
{
	start_fresh(f);
}

/* first_prepare sets up the sandbox itself once, before the first run is
 * cloned: the masks off its own /proc (fresh.c), then the user
 * namespace's limits through /proc/sys, which those masks kept read-only
 * (userns_limits.c). No program runs before either. */
static void first_prepare(const struct fresh *f)
{
	char err[512];
	if (fresh_unmask_sandbox_proc(f) < 0)
		fail("entry: unmasking the sandbox's own /proc: %s", strerror(errno));
	if (userns_limits_from_env(err, sizeof err) < 0)
		fail("%s", err);
}

/* run_fresh_entry serves runs until the host goes away: each run in a
 * clone with namespaces of its own; 'R' again only once the clone, and so
 * every process of the run, is gone. */
__attribute__((noreturn)) static void run_fresh_entry(void)
{
	int first = 1;
	entry_setup();
	set_batch(1);
	for (;;) {
		if (send_msg('R', NULL, 0) < 0)
			_exit(EXIT_NO_LAUNCH);
		struct fresh f;
		char err[512];
		read_prepare(&f);
		if (first) {
			first_prepare(&f);
			first = 0;
		}
		if (fresh_enter_net(&f, err, sizeof err) < 0)
			fail("%s", err);
		/* Returns once the run's PID 1 is gone (CLONE_VFORK), or is
		 * exiting: see run_stack. */
		pid_t pid = clone(start_fresh_on_stack, run_stack(), fresh_clone_flags() | CLONE_VM | CLONE_VFORK | SIGCHLD, &f);
		if (pid < 0)
			fail("entry: new namespaces for the run: %s", strerror(errno));
		/* Back before anything else: a failure here ends the sandbox
		 * (fail exits), never leaves the entry in a run's network. */
		if (fresh_leave_net(&f, err, sizeof err) < 0)
			fail("%s", err);
		free_prepare(&f);
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
}

/* lock_down puts the program's restrictions on this process, to be
 * inherited by everything it starts: the last step before any of the
 * program's code exists. */
static void lock_down(const char *filter, size_t flen)
{
	/* Speculative store bypass and indirect branch speculation are
	 * turned off for the program and all it starts (inherited across fork
	 * and execve; FORCE means the program cannot turn them back on).
	 * Kernels since 5.16 no longer tie this to seccomp by default. ENXIO
	 * or EINVAL means the CPU is not affected or the kernel's mitigation
	 * mode leaves no choice: nothing to do then. */
	static const int spec[] = {PR_SPEC_STORE_BYPASS, PR_SPEC_INDIRECT_BRANCH};
	for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
		if (prctl(PR_SET_SPECULATION_CTRL, spec[i], PR_SPEC_FORCE_DISABLE, 0, 0) < 0 &&
		    errno != ENXIO && errno != EINVAL && errno != EPERM)
			fail("disabling speculation (%d): %s", spec[i], strerror(errno));

	/* The filter goes on after everything that needs more than the
	 * program may do (mounts, capabilities), and before any of the
	 * program's code exists: in a one-run entry just before the program
	 * starts, in a prepared run's PID 1 before it waits for its launch
	 * (what it does after, the program may do too). no_new_privs is
	 * already set by libcontainer; setting it again costs nothing. */
	struct sock_fprog prog = {
		.len = (unsigned short)(flen / sizeof(struct sock_filter)),
		.filter = (struct sock_filter *)filter,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) < 0)
		fail("installing the seccomp filter: %s", strerror(errno));
}

static void run_program(struct launch *l0)
{
	struct launch l = *l0;
	if (chdir(l.dir) < 0)
		fail("%s: %s", l.dir, strerror(errno));
	char *path = resolve(l.argv[0], l.envp);
	int master = -1, slave = -1;
	if (l.rows)
		open_terminal(l.rows, l.cols, &master, &slave);
	/* A prepared run (start_fresh) is locked down already. */
	if (!l.is_fresh)
		lock_down(l.filter, l.flen);

	if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fail("entry: pipe: %s", strerror(errno));
	struct sigaction chld = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
	sigaction(SIGCHLD, &chld, NULL);

	if (l.rows && (l.stdio[0] >= 0 || l.stdio[1] >= 0))
		fail("entry: a terminal and passed stdio exclude each other");
	/* A placement, not a limit: a CPU outside the sandbox's set is no
	 * failure, the program then runs wherever the kernel puts it. */
	if (l.ncpus > 0)
		sched_setaffinity(0, sizeof l.cpus, &l.cpus);
	pid_t pid = start_program(path, l.argv, l.envp, slave, l.stdio);
	if (slave >= 0)
		close(slave); /* the terminal hangs up when the program's side closes */
	/* The program has its copies; the other sandbox must see the pipe's
	 * end when the program's side closes, not when the entry exits. */
	for (int fd = 0; fd < 2; fd++)
		if (l.stdio[fd] >= 0)
			close(l.stdio[fd]);
	/* The program has its own copies now. A prepared run's PID 1 runs in
	 * the entry's memory (run_stack): nothing of the launch may stay. */
	free(path);
	free_strings(l.argv);
	free_strings(l.envp);
	free(l.dir);
	free(l.filter);
	if (send_started((uint32_t)pid, master) < 0)
		_exit(128 + SIGKILL);
	/* The entry keeps its copy of the master to find the terminal's
	 * foreground group for a client's signal. */
	wait_program(pid, master, l.is_fresh);
}

/* Runs before the Go runtime in every start of the binary; it takes over
 * only when the binary was started as the sandbox entry. glibc passes
 * argc and argv to constructors. */
__attribute__((constructor)) static void sandboxd_entry(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "sandbox-entry") == 0 && strcmp(argv[2], "fresh") == 0)
		run_fresh_entry();
	if (argc >= 2 && strcmp(argv[1], "sandbox-entry") == 0)
		run_entry();
}
