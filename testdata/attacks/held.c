/*
 * held: the attacks behind the rows that round 2 of hardening (issue 19)
 * found held, kept in the suite so that they stay held. Each prints one
 * line, "NAME=OK|ERRNO" (or NAME=VALUE), and exits 0; a syscall the filter
 * kills ends the program by SIGSYS instead. Extra trailing arguments are
 * ignored (the suite's marker).
 *
 *   held int80            getpid through the 32-bit entry point (int $0x80)
 *   held x32              getpid through the x32 entry point (nr | 0x40000000)
 *   held pidfd_getfd      pidfd_open(1), then pidfd_getfd of PID 1's fd 0
 *   held kcmp             kcmp(self, 1, KCMP_FILE, 0, 0)
 *   held proc1            open PID 1's environ, fd/, maps and mem
 *   held inotify PATH     an inotify watch on PATH for 2 s, then prints events=N
 *   held mqueue NAME      mq_open(NAME) without O_CREAT
 *   held mqhold NAME MS   mq_open(NAME, O_CREAT), then sleep MS
 *   held mincore PATH     maps PATH and counts the pages mincore says are resident: resident=N/M
 *   held ptys             opens /dev/ptmx until it fails (at most 1000): ptys=N ERRNO
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

static const char *errname(int e) {
	const char *name = e ? strerrorname_np(e) : "OK";
	return name ? name : "OTHER";
}

static void report(const char *name, long rc) {
	printf("%s=%s\n", name, rc < 0 ? errname(errno) : "OK");
	fflush(stdout);
}

static long int80_getpid(void) {
	long ret;
	// The kernel zeroes r8-r11 on a compat entry from 64-bit code.
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static int proc1(void) {
	const char *files[] = {"/proc/1/environ", "/proc/1/fd/0", "/proc/1/maps", "/proc/1/mem"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		int fd = open(files[i], O_RDONLY);
		report(files[i], fd);
		if (fd >= 0) close(fd);
	}
	return 0;
}

static int watch(const char *path) {
	int fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0 || inotify_add_watch(fd, path, IN_ALL_EVENTS) < 0) {
		report("inotify", -1);
		return 0;
	}
	int events = 0;
	char buf[4096];
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 2;
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (left <= 0) break;
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, (int)left) > 0) {
			ssize_t n = read(fd, buf, sizeof buf);
			for (char *q = buf; n > 0 && q < buf + n;) {
				struct inotify_event *e = (struct inotify_event *)q;
				events++;
				q += sizeof *e + e->len;
			}
		}
	}
	printf("events=%d\n", events);
	return 0;
}

static int resident(const char *path) {
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		report("open", -1);
		return 0;
	}
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = (st.st_size + page - 1) / page;
	void *m = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	unsigned char *vec = malloc(pages);
	if (m == MAP_FAILED || !vec || mincore(m, st.st_size, vec) < 0) {
		report("mincore", -1);
		return 0;
	}
	size_t n = 0;
	for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
	printf("resident=%zu/%zu\n", n, pages);
	return 0;
}

int main(int argc, char **argv) {
	const char *cmd = argc > 1 ? argv[1] : "", *a2 = argc > 2 ? argv[2] : "";
	if (!strcmp(cmd, "int80")) { report("int80", int80_getpid()); return 0; }
	if (!strcmp(cmd, "x32")) { report("x32", syscall(0x40000000L | SYS_getpid)); return 0; }
	if (!strcmp(cmd, "pidfd_getfd")) {
		long pidfd = syscall(SYS_pidfd_open, 1, 0);
		report("pidfd_open", pidfd);
		report("pidfd_getfd", pidfd < 0 ? pidfd : syscall(SYS_pidfd_getfd, pidfd, 0, 0));
		return 0;
	}
	if (!strcmp(cmd, "kcmp")) { report("kcmp", syscall(SYS_kcmp, getpid(), 1, 0 /* KCMP_FILE */, 0, 0)); return 0; }
	if (!strcmp(cmd, "proc1")) return proc1();
	if (!strcmp(cmd, "inotify")) return watch(a2);
	if (!strcmp(cmd, "mqueue")) { report("mq_open", mq_open(a2, O_RDONLY)); return 0; }
	if (!strcmp(cmd, "mqhold") && argc > 3) {
		struct mq_attr attr = {0, 4, 64, 0};
		mqd_t q = mq_open(a2, O_CREAT | O_RDWR, 0666, &attr);
		report("mq_open", q);
		struct timespec ts = {atol(argv[3]) / 1000, (atol(argv[3]) % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR);
		return 0;
	}
	if (!strcmp(cmd, "mincore")) return resident(a2);
	if (!strcmp(cmd, "ptys")) {
		int n = 0;
		while (n < 1000 && open("/dev/ptmx", O_RDWR | O_NOCTTY) >= 0)
			n++;
		printf("ptys=%d %s\n", n, n < 1000 ? errname(errno) : "NONE");
		return 0;
	}
	fprintf(stderr, "held: unknown command %s\n", cmd);
	return 2;
}
