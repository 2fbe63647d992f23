/*
 * attack: hostile programs for sandboxd's adversarial suite (test/attacks).
 * Each subcommand tries one thing a sandbox must not allow, or holds a
 * resource another sandbox then tries to reach, and prints what happened on
 * one line ("NAME=ERRNO", "... failed after N", ...). Built static, copied
 * into the busybox test rootfs beside the probe. Extra trailing arguments
 * are ignored, so the suite can add a marker to every argv.
 *
 *   attack sys NAME            one forbidden syscall; prints NAME=OK|EPERM|...
 *   attack cpufor MS           spin until the process used MS ms of CPU time, then exit 0
 *   attack threads             create threads until it fails
 *   attack flood BYTES         BYTES to stdout and stderr at once (two processes)
 *   attack vfork MS            a vfork child that pauses; the parent waits in vfork
 *   attack shmhold KEY MS      SysV shm segment KEY with "held" in it, then sleep
 *   attack shmfind KEY         shmget(KEY) without IPC_CREAT
 *   attack msghold KEY MS      SysV message queue KEY, then sleep
 *   attack msgfind KEY         msgget(KEY) without IPC_CREAT
 *   attack semhold KEY MS / semfind KEY   the same for semaphores
 *   attack abshold NAME MS     listen on the abstract Unix socket @NAME
 *   attack absconnect NAME     connect to @NAME
 *   attack unixconnect PATH    connect to a Unix socket by path
 *   attack lockhold PATH MS    flock(LOCK_EX) PATH (opened read-only), then sleep
 *   attack locktry PATH        flock(LOCK_EX|LOCK_NB) PATH
 *   attack fcntlhold PATH MS / fcntltry PATH   the same with a POSIX read lock / write-lock probe
 *   attack fcntlmany PATH N MS  N POSIX locks on distinct byte ranges of PATH; prints "locked=N",
 *                              creates PATH.taken, then sleeps MS
 *   attack ptraceall           PTRACE_ATTACH every visible pid but its own
 *   attack killall SIG         kill(pid, SIG) for pids 1..4194304 that exist, and kill(-1)
 *   attack ids                 print ruid euid suid
 *   attack setuid              setuid(0), setgid(0), setgroups
 *   attack mknod PATH          mknod a block device
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/ptrace.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
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

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR);
}

static int child_fn(void *arg) { (void)arg; _exit(0); }

static int do_sys(const char *n) {
	char buf[256] = {0};
	struct iovec iov = {buf, sizeof buf};
	static char stack[65536];
	long rc = -1;
	errno = ENOSYS;
	if (!strcmp(n, "mount")) rc = mount("none", "/tmp", "tmpfs", 0, NULL);
	else if (!strcmp(n, "mount_bind")) rc = mount("/", "/tmp", NULL, MS_BIND, NULL);
	else if (!strcmp(n, "umount")) rc = umount2("/proc", MNT_DETACH);
	else if (!strcmp(n, "pivot_root")) rc = syscall(SYS_pivot_root, "/tmp", "/tmp");
	else if (!strcmp(n, "chroot")) rc = chroot("/tmp");
	else if (!strcmp(n, "unshare_user")) rc = unshare(CLONE_NEWUSER);
	else if (!strcmp(n, "unshare_mnt")) rc = unshare(CLONE_NEWNS);
	else if (!strcmp(n, "unshare_net")) rc = unshare(CLONE_NEWNET);
	else if (!strcmp(n, "clone_newuser")) rc = clone(child_fn, stack + sizeof stack, CLONE_NEWUSER | SIGCHLD, NULL);
	else if (!strcmp(n, "setns")) {
		int fd = open("/proc/1/ns/mnt", O_RDONLY);
		rc = setns(fd < 0 ? 0 : fd, 0);
	}
	else if (!strcmp(n, "ptrace_traceme")) rc = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	else if (!strcmp(n, "ptrace_attach")) rc = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
	else if (!strcmp(n, "process_vm_readv")) rc = process_vm_readv(1, &iov, 1, &iov, 1, 0);
	else if (!strcmp(n, "bpf")) {
		union bpf_attr a;
		memset(&a, 0, sizeof a);
		a.map_type = BPF_MAP_TYPE_ARRAY; a.key_size = 4; a.value_size = 4; a.max_entries = 1;
		rc = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
	}
	else if (!strcmp(n, "keyctl")) rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0, 0, 0);
	else if (!strcmp(n, "add_key")) rc = syscall(SYS_add_key, "user", "x", "y", 1, -3);
	else if (!strcmp(n, "perf_event_open")) {
		struct perf_event_attr pa;
		memset(&pa, 0, sizeof pa);
		pa.size = sizeof pa; pa.type = PERF_TYPE_SOFTWARE; pa.config = PERF_COUNT_SW_CPU_CLOCK;
		rc = syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
	}
	else if (!strcmp(n, "userfaultfd")) rc = syscall(SYS_userfaultfd, O_CLOEXEC);
	else if (!strcmp(n, "io_uring_setup")) rc = syscall(SYS_io_uring_setup, 4, buf);
	else if (!strcmp(n, "init_module")) rc = syscall(SYS_init_module, buf, sizeof buf, "");
	else if (!strcmp(n, "finit_module")) {
		int fd = open("/bin/busybox", O_RDONLY);
		rc = syscall(SYS_finit_module, fd, "", 0);
	}
	else if (!strcmp(n, "kexec_load")) rc = syscall(SYS_kexec_load, 0, 0, NULL, 0);
	else if (!strcmp(n, "open_by_handle_at")) rc = syscall(SYS_open_by_handle_at, AT_FDCWD, buf, 0);
	else if (!strcmp(n, "socket_raw")) rc = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	else if (!strcmp(n, "socket_packet")) rc = socket(AF_PACKET, SOCK_RAW, 0);
	else if (!strcmp(n, "reboot")) rc = syscall(SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc, NULL);
	else if (!strcmp(n, "swapon")) rc = syscall(SYS_swapon, "/tmp", 0);
	else if (!strcmp(n, "settimeofday")) { struct timespec ts = {0, 0}; rc = clock_settime(CLOCK_REALTIME, &ts); }
	else if (!strcmp(n, "sethostname")) rc = sethostname("pwned", 5);
	else { fprintf(stderr, "attack: unknown syscall %s\n", n); return 2; }
	report(n, rc);
	return 0;
}

static void *idle(void *arg) { (void)arg; for (;;) pause(); return NULL; }

static int do_threads(void) {
	long n = 0;
	for (;;) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 65536);
		int e = pthread_create(&t, &a, idle, NULL);
		if (e) { printf("threads failed after %ld: %s\n", n, errname(e)); return 0; }
		n++;
	}
}

static int do_flood(long bytes) {
	static char chunk[65536];
	memset(chunk, 'x', sizeof chunk);
	pid_t p = fork();
	int fd = p == 0 ? 2 : 1;
	for (long done = 0; done < bytes;) {
		long w = write(fd, chunk, sizeof chunk);
		if (w <= 0) break;
		done += w;
	}
	if (p > 0) waitpid(p, NULL, 0);
	return 0;
}

static int do_vfork(long ms) {
	/* The child shares the parent's memory and the parent is blocked in
	 * vfork until the child execs or exits: the child pauses instead. */
	pid_t p = vfork();
	if (p == 0) { for (;;) pause(); }
	printf("vfork returned\n");
	sleep_ms(ms);
	return 0;
}

static int unix_sock(const char *name, int abstract, struct sockaddr_un *a, socklen_t *len) {
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	size_t n = strlen(name);
	if (n > sizeof a->sun_path - 2) n = sizeof a->sun_path - 2;
	memcpy(a->sun_path + (abstract ? 1 : 0), name, n);
	*len = offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 1 : 0);
	return socket(AF_UNIX, SOCK_STREAM, 0);
}

static int ptrace_all(void) {
	DIR *d = opendir("/proc");
	struct dirent *e;
	int tried = 0, ok = 0;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || pid == getpid()) continue;
		tried++;
		if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0) { ok++; printf("attached %d\n", pid); }
		else printf("pid %d: %s\n", pid, errname(errno));
	}
	printf("ptrace attached %d of %d\n", ok, tried);
	return 0;
}

static int kill_all(int sig) {
	long ok = 0;
	for (pid_t pid = 2; pid < 1 << 16; pid++) {
		if (pid == getpid()) continue;
		if (kill(pid, sig) == 0) ok++;
	}
	printf("kill(-1)=%s signalled %ld\n", kill(-1, sig) == 0 ? "OK" : errname(errno), ok);
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2) { fprintf(stderr, "usage: attack CMD ...\n"); return 2; }
	const char *cmd = argv[1];
	const char *a2 = argc > 2 ? argv[2] : "";
	long a3 = argc > 3 ? atol(argv[3]) : 0;
	if (!strcmp(cmd, "sys") && argc > 2) return do_sys(a2);
	if (!strcmp(cmd, "threads")) return do_threads();
	if (!strcmp(cmd, "cpufor") && argc > 2) {
		double want = atof(a2) / 1e3;
		struct timespec ts;
		do {
			for (volatile int i = 0; i < 100000; i++);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		} while (ts.tv_sec + ts.tv_nsec / 1e9 < want);
		printf("used %.0f ms\n", want * 1e3);
		return 0;
	}
	if (!strcmp(cmd, "flood") && argc > 2) return do_flood(atol(a2));
	if (!strcmp(cmd, "vfork") && argc > 2) return do_vfork(atol(a2));
	if (!strcmp(cmd, "shmhold")) {
		int id = shmget(atoi(a2), 4096, IPC_CREAT | 0666);
		if (id < 0) { printf("shmget=%s\n", errname(errno)); return 1; }
		char *p = shmat(id, NULL, 0);
		strcpy(p, "held");
		printf("holding shm\n");
		sleep_ms(a3);
		printf("still %s\n", p);
		return 0;
	}
	if (!strcmp(cmd, "shmfind")) { report("shmget", shmget(atoi(a2), 0, 0)); return 0; }
	if (!strcmp(cmd, "msghold")) {
		int id = msgget(atoi(a2), IPC_CREAT | 0666);
		if (id < 0) { printf("msgget=%s\n", errname(errno)); return 1; }
		printf("holding msg\n");
		sleep_ms(a3);
		return 0;
	}
	if (!strcmp(cmd, "msgfind")) { report("msgget", msgget(atoi(a2), 0)); return 0; }
	if (!strcmp(cmd, "semhold")) {
		int id = semget(atoi(a2), 1, IPC_CREAT | 0666);
		if (id < 0) { printf("semget=%s\n", errname(errno)); return 1; }
		printf("holding sem\n");
		sleep_ms(a3);
		return 0;
	}
	if (!strcmp(cmd, "semfind")) { report("semget", semget(atoi(a2), 0, 0)); return 0; }
	if (!strcmp(cmd, "abshold") || !strcmp(cmd, "absconnect") || !strcmp(cmd, "unixconnect")) {
		struct sockaddr_un a;
		socklen_t len;
		int abstract = strcmp(cmd, "unixconnect") != 0;
		int s = unix_sock(a2, abstract, &a, &len);
		if (!strcmp(cmd, "abshold")) {
			if (bind(s, (struct sockaddr *)&a, len) || listen(s, 8)) { printf("listen=%s\n", errname(errno)); return 1; }
			printf("listening\n");
			sleep_ms(a3);
			return 0;
		}
		report("connect", connect(s, (struct sockaddr *)&a, len));
		return 0;
	}
	if (!strcmp(cmd, "lockhold") || !strcmp(cmd, "locktry")) {
		int fd = open(a2, O_RDONLY);
		if (fd < 0) { printf("open=%s\n", errname(errno)); return 1; }
		if (!strcmp(cmd, "lockhold")) {
			report("flock", flock(fd, LOCK_EX));
			sleep_ms(a3);
			return 0;
		}
		int rc = flock(fd, LOCK_EX | LOCK_NB);
		printf("flock=%s\n", rc == 0 ? "OK" : errno == EWOULDBLOCK ? "EWOULDBLOCK" : errname(errno));
		return 0;
	}
	if (!strcmp(cmd, "fcntlmany")) {
		int fd = open(a2, O_RDWR | O_CREAT, 0600);
		if (fd < 0) { printf("open=%s\n", errname(errno)); return 1; }
		long n = 0;
		for (; n < a3; n++) {
			struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2 * n, .l_len = 1};
			if (fcntl(fd, F_SETLK, &fl) < 0) { printf("fcntl=%s ", errname(errno)); break; }
		}
		printf("locked=%ld\n", n);
		char taken[4096];
		snprintf(taken, sizeof taken, "%s.taken", a2);
		close(open(taken, O_CREAT | O_WRONLY, 0600));
		sleep_ms(argc > 4 ? atol(argv[4]) : 0);
		return 0;
	}
	if (!strcmp(cmd, "fcntlhold") || !strcmp(cmd, "fcntltry")) {
		int fd = open(a2, O_RDONLY);
		if (fd < 0) { printf("open=%s\n", errname(errno)); return 1; }
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
		if (!strcmp(cmd, "fcntlhold")) {
			report("fcntl_rdlck", fcntl(fd, F_SETLK, &fl));
			sleep_ms(a3);
			return 0;
		}
		/* A read-only fd can't take a write lock, but F_GETLK asks whether
		 * one would conflict, and with whom. */
		fl.l_type = F_WRLCK;
		if (fcntl(fd, F_GETLK, &fl) < 0) { printf("getlk=%s\n", errname(errno)); return 0; }
		if (fl.l_type == F_UNLCK) printf("getlk=UNLOCKED\n");
		else printf("getlk=HELD_BY_%d\n", (int)fl.l_pid);
		return 0;
	}
	if (!strcmp(cmd, "ptraceall")) return ptrace_all();
	if (!strcmp(cmd, "killall")) return kill_all(atoi(a2));
	if (!strcmp(cmd, "ids")) {
		uid_t r, e, s;
		getresuid(&r, &e, &s);
		printf("uid %d %d %d\n", r, e, s);
		return 0;
	}
	if (!strcmp(cmd, "setuid")) {
		report("setuid", setuid(0));
		report("setgid", setgid(0));
		gid_t g = 0;
		report("setgroups", setgroups(1, &g));
		return 0;
	}
	if (!strcmp(cmd, "mknod") && argc > 2) { report("mknod", mknod(a2, S_IFBLK | 0666, makedev(8, 0))); return 0; }
	fprintf(stderr, "attack: unknown command %s\n", cmd);
	return 2;
}
