/*
 * counters: takes as much as it can, up to a cap each, of the kernel
 * counters that Linux keeps per user (test/attacks, hardening round 2):
 * inotify instances and watches, queued real-time signals, POSIX message
 * queues. Run in a sandbox it tries to starve host root and other sandboxes;
 * run on the host it checks that host root still gets its share.
 *
 *   counters DIR HOLD_MS INSTANCES WATCHES SIGNALS QUEUES [marker...]
 *
 * It watches 1024 files it makes in DIR, prints one line
 * "inotify_instances=N inotify_watches=N sigpending=N mqueues=N", then, if
 * HOLD_MS > 0, creates DIR/taken and holds everything for HOLD_MS.
 * Each message queue holds 4 messages of 4 KiB (about 16.3 KiB of
 * RLIMIT_MSGQUEUE).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILES 1024

static long take_inotify(const char *dir, long max_instances, long max_watches, long *watches)
{
	char path[4096];
	for (int i = 0; i < FILES; i++) {
		snprintf(path, sizeof path, "%s/f%d", dir, i);
		int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	long instances = 0;
	*watches = 0;
	int full = 0;
	while (instances < max_instances) {
		int fd = inotify_init1(IN_CLOEXEC);
		if (fd < 0)
			break;
		instances++;
		for (int i = 0; i < FILES && !full; i++) {
			if (*watches >= max_watches) {
				full = 1;
				break;
			}
			snprintf(path, sizeof path, "%s/f%d", dir, i);
			if (inotify_add_watch(fd, path, IN_MODIFY) < 0)
				full = 1;
			else
				(*watches)++;
		}
	}
	return instances;
}

static long take_signals(long max)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	long n = 0;
	union sigval v = {.sival_int = 0};
	while (n < max && sigqueue(getpid(), SIGRTMIN, v) == 0)
		n++;
	return n;
}

static long take_queues(long max)
{
	struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 4096};
	char name[64];
	long n = 0;
	while (n < max) {
		snprintf(name, sizeof name, "/counters-%d-%ld", (int)getpid(), n);
		mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
		if (q == (mqd_t)-1)
			break;
		mq_unlink(name); /* the descriptor keeps it; nothing outlives us */
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: counters DIR HOLD_MS INSTANCES WATCHES SIGNALS QUEUES\n");
		return 2;
	}
	const char *dir = argv[1];
	long hold = atol(argv[2]);
	mkdir(dir, 0700);
	long watches;
	long instances = take_inotify(dir, atol(argv[3]), atol(argv[4]), &watches);
	long signals = take_signals(atol(argv[5]));
	long queues = take_queues(atol(argv[6]));
	printf("inotify_instances=%ld inotify_watches=%ld sigpending=%ld mqueues=%ld\n", instances, watches, signals, queues);
	fflush(stdout);
	if (hold > 0) {
		char path[4096];
		snprintf(path, sizeof path, "%s/taken", dir);
		int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		struct timespec ts = {.tv_sec = hold / 1000, .tv_nsec = (hold % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	return 0;
}
