/*
 * probe: a hostile and inspecting program for sandboxd's tests. It runs
 * inside a sandbox and reports what the sandbox let it do. Built static so
 * it runs in the busybox test rootfs.
 *
 *   probe syscalls          try every syscall the filter must deny; print NAME=ERRNO
 *   probe alloc MIB         allocate and touch MIB MiB, then print "allocated"
 *   probe burn THREADS      spin THREADS threads forever
 *   probe burnfor MS        spin one thread for MS ms of wall time, then exit 0
 *   probe fds               print the open file descriptors, one per line
 *   probe daemon MARKER     setsid + double fork; the grandchild sleeps with MARKER in argv
 *   probe forkbomb          fork until it fails; print "fork failed after N"
 *   probe write PATH BYTES  write BYTES to PATH; print "wrote N" or "error ERRNO"
 *   probe files DIR COUNT   create COUNT empty files in DIR; print "created N" or "error ERRNO after N"
 *   probe connect PORT      TCP connect to 127.0.0.1:PORT; print "connected" or "error ERRNO"
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// errname is the errno's symbolic name (glibc >= 2.32), as the tests
// compare them.
static const char *errname(int e) {
	const char *name = e ? strerrorname_np(e) : "OK";
	return name ? name : "OTHER";
}

static void report(const char *name, long rc) {
	printf("%s=%s\n", name, rc == -1 ? errname(errno) : "OK");
}

static int child_fn(void *arg) { (void)arg; _exit(0); }

static int do_syscalls(void) {
	char buf[64];
	struct iovec iov = {buf, sizeof buf};
	static char stack[65536];
	report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
	report("umount2", umount2("/proc", MNT_DETACH));
	report("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
	report("chroot", chroot("/tmp"));
	report("unshare", unshare(CLONE_NEWUSER));
	report("unshare_ns", unshare(CLONE_NEWNS));
	report("setns", setns(0, 0));
	report("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
	report("process_vm_readv", process_vm_readv(1, &iov, 1, &iov, 1, 0));
	report("bpf", syscall(SYS_bpf, BPF_PROG_LOAD, NULL, 0));
	report("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
	report("add_key", syscall(SYS_add_key, "user", "x", "y", 1, -3));
	report("request_key", syscall(SYS_request_key, "user", "x", NULL, 0));
	struct perf_event_attr pa = {0};
	pa.size = sizeof pa;
	report("perf_event_open", syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0));
	report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	report("init_module", syscall(SYS_init_module, NULL, 0, ""));
	report("finit_module", syscall(SYS_finit_module, 0, "", 0));
	report("delete_module", syscall(SYS_delete_module, "x", 0));
	report("io_uring_setup", syscall(SYS_io_uring_setup, 1, buf));
	report("userfaultfd", syscall(SYS_userfaultfd, 0));
	report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, buf, 0));
	report("personality", personality(PER_LINUX32));
	long pid = clone(child_fn, stack + sizeof stack, CLONE_NEWNS | SIGCHLD, NULL);
	report("clone_newns", pid);
	pid = clone(child_fn, stack + sizeof stack, CLONE_NEWUSER | SIGCHLD, NULL);
	report("clone_newuser", pid);
	pid = clone(child_fn, stack + sizeof stack, CLONE_NEWNET | SIGCHLD, NULL);
	report("clone_newnet", pid);
	report("socket_packet", socket(AF_PACKET, SOCK_RAW, 0));
	report("socket_raw", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
	return 0;
}

static void *spin(void *arg) { (void)arg; for (volatile unsigned long i = 0;; i++); return NULL; }

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2) { fprintf(stderr, "usage: probe CMD ...\n"); return 2; }
	const char *cmd = argv[1];
	if (!strcmp(cmd, "syscalls")) return do_syscalls();
	if (!strcmp(cmd, "alloc") && argc > 2) {
		size_t n = (size_t)atol(argv[2]) << 20;
		char *p = malloc(n);
		if (!p) { printf("malloc failed\n"); return 1; }
		for (size_t i = 0; i < n; i += 4096) p[i] = 1;
		printf("allocated\n");
		return 0;
	}
	if (!strcmp(cmd, "burn") && argc > 2) {
		int n = atoi(argv[2]);
		for (int i = 1; i < n; i++) { pthread_t t; pthread_create(&t, NULL, spin, NULL); }
		spin(NULL);
	}
	if (!strcmp(cmd, "burnfor") && argc > 2) {
		double end = now_ms() + atof(argv[2]);
		while (now_ms() < end);
		return 0;
	}
	if (!strcmp(cmd, "fds")) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
			printf("%s\n", e->d_name);
		}
		return 0;
	}
	if (!strcmp(cmd, "daemon") && argc > 2) {
		if (fork() == 0) {
			setsid();
			if (fork() == 0) {
				char *args[] = {"sleep", "1000", argv[2], NULL};
				close(0); close(1); close(2);
				execv("/bin/sleep", args);
				_exit(1);
			}
			_exit(0);
		}
		wait(NULL);
		printf("daemonized\n");
		return 0;
	}
	if (!strcmp(cmd, "forkbomb")) {
		long n = 0;
		for (;;) {
			pid_t p = fork();
			if (p == 0) { pause(); _exit(0); }
			if (p < 0) { printf("fork failed after %ld\n", n); return 0; }
			n++;
		}
	}
	if (!strcmp(cmd, "write") && argc > 3) {
		signal(SIGXFSZ, SIG_IGN);
		long want = atol(argv[3]), done = 0;
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) { printf("error %s\n", errname(errno)); return 1; }
		static char chunk[65536];
		while (done < want) {
			long k = want - done < (long)sizeof chunk ? want - done : (long)sizeof chunk;
			long w = write(fd, chunk, k);
			if (w < 0) { printf("error %s after %ld\n", errno == ENOSPC ? "ENOSPC" : errno == EFBIG ? "EFBIG" : errname(errno), done); return 1; }
			done += w;
		}
		printf("wrote %ld\n", done);
		return 0;
	}
	if (!strcmp(cmd, "files") && argc > 3) {
		long want = atol(argv[3]), done = 0;
		char path[4096];
		for (; done < want; done++) {
			snprintf(path, sizeof path, "%s/f%ld", argv[2], done);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0) { printf("error %s after %ld\n", errno == ENOSPC ? "ENOSPC" : errname(errno), done); return 1; }
			close(fd);
		}
		printf("created %ld\n", done);
		return 0;
	}
	if (!strcmp(cmd, "connect") && argc > 2) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) { printf("connected\n"); return 0; }
		printf("error %s\n", errno == ECONNREFUSED ? "ECONNREFUSED" : errno == ENETUNREACH ? "ENETUNREACH" : errname(errno));
		return 1;
	}
	fprintf(stderr, "probe: unknown command %s\n", cmd);
	return 2;
}
