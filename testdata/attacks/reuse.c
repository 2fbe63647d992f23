/*
 * reuse: the C halves of the reuse attacks (test/attacks/reuse_test.go):
 * owner A plants state a sandbox could keep from one run to the next, owner
 * B looks for it in a later (or concurrent) run. Each prints one line per
 * step, "NAME=OK|ERRNO" or values, so that B's output can be compared with
 * that of a run no A came before. Extra trailing arguments are ignored (the
 * suite's marker).
 *
 *   reuse pids                 print "pid=P child=C": its own pid and that of
 *                              the first child it forks (a fresh PID namespace
 *                              always gives the same two)
 *   reuse forks N              fork N children one after another (each exits at
 *                              once), then print "forked N last=PID"
 *   reuse holdtcp PORT MS      listen on 127.0.0.1:PORT, print "listening", sleep MS
 *   reuse bindtcp PORT         bind 127.0.0.1:PORT (no SO_REUSEADDR): "bind=OK|ERRNO"
 *   reuse timewait PORT        connect to itself on 127.0.0.1:PORT and close the
 *                              server's side first: its socket stays in TIME_WAIT,
 *                              in the network namespace, for a minute ("closed=OK")
 *   reuse bindabs NAME         bind the abstract Unix socket @NAME: "bind=OK|ERRNO"
 *   reuse setxattr VALUE PATH...  user.reuse=VALUE on each PATH: "PATH=OK|ERRNO"
 *   reuse getxattr PATH...     "PATH=VALUE", or "PATH=ERRNO" (ENODATA: none)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e) {
	const char *name = e ? strerrorname_np(e) : "OK";
	return name ? name : "OTHER";
}

static void report(const char *name, long rc) {
	printf("%s=%s\n", name, rc < 0 ? errname(errno) : "OK");
}

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR);
}

static pid_t fork_and_reap(void) {
	pid_t p = fork();
	if (p == 0) _exit(0);
	if (p > 0) waitpid(p, NULL, 0);
	return p;
}

static int tcp(int port, struct sockaddr_in *a) {
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return socket(AF_INET, SOCK_STREAM, 0);
}

static int bind_abstract(const char *name) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	if (n > sizeof a.sun_path - 1) n = sizeof a.sun_path - 1;
	memcpy(a.sun_path + 1, name, n);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0) return -1;
	return bind(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *cmd = argc > 1 ? argv[1] : "", *a2 = argc > 2 ? argv[2] : "";
	if (!strcmp(cmd, "pids")) {
		pid_t self = getpid(), child = fork_and_reap();
		printf("pid=%d child=%d\n", (int)self, (int)child);
		return 0;
	}
	if (!strcmp(cmd, "forks")) {
		long n = atol(a2), i = 0;
		pid_t last = 0;
		for (; i < n && last >= 0; i++) last = fork_and_reap();
		printf("forked %ld last=%d\n", last < 0 ? i - 1 : i, (int)last);
		return 0;
	}
	if (!strcmp(cmd, "holdtcp") || !strcmp(cmd, "bindtcp")) {
		struct sockaddr_in a;
		int s = tcp(atoi(a2), &a);
		long rc = bind(s, (struct sockaddr *)&a, sizeof a);
		if (!strcmp(cmd, "bindtcp")) { report("bind", rc); return 0; }
		if (rc < 0 || listen(s, 8) < 0) { report("listen", -1); return 1; }
		printf("listening\n");
		sleep_ms(argc > 3 ? atol(argv[3]) : 0);
		return 0;
	}
	if (!strcmp(cmd, "timewait")) {
		struct sockaddr_in a;
		int l = tcp(atoi(a2), &a), c = socket(AF_INET, SOCK_STREAM, 0), s = -1;
		long rc = bind(l, (struct sockaddr *)&a, sizeof a);
		if (rc == 0) rc = listen(l, 1);
		if (rc == 0) rc = connect(c, (struct sockaddr *)&a, sizeof a);
		if (rc == 0) rc = s = accept(l, NULL, NULL);
		if (rc >= 0) {
			char b;
			close(s);		    /* the server's FIN first */
			rc = read(c, &b, 1);	    /* 0: the client saw it */
			close(c);		    /* the client's FIN: the server's side is in TIME_WAIT */
			sleep_ms(50);
		}
		report("closed", rc < 0 ? -1 : 0);
		return 0;
	}
	if (!strcmp(cmd, "bindabs")) { report("bind", bind_abstract(a2)); return 0; }
	if (!strcmp(cmd, "setxattr")) {
		for (int i = 3; i < argc && argv[i][0] == '/'; i++)
			report(argv[i], setxattr(argv[i], "user.reuse", a2, strlen(a2), 0));
		return 0;
	}
	if (!strcmp(cmd, "getxattr")) {
		for (int i = 2; i < argc && argv[i][0] == '/'; i++) {
			char v[256];
			ssize_t n = getxattr(argv[i], "user.reuse", v, sizeof v - 1);
			if (n < 0) printf("%s=%s\n", argv[i], errname(errno));
			else printf("%s=%.*s\n", argv[i], (int)n, v);
		}
		return 0;
	}
	fprintf(stderr, "reuse: unknown command %s\n", cmd);
	return 2;
}
