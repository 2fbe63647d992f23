/*
 * tcpbuf: fills loopback TCP buffers (test/attacks, hardening round 2).
 * It opens up to PAIRS connections to itself on 127.0.0.1, never reads
 * them, and writes to each without blocking until the kernel refuses; it
 * prints "queued=BYTES pairs=N". The bytes sit in socket buffers, kernel
 * memory that a memory cgroup must count.
 *
 *   tcpbuf PAIRS [marker...]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int pairs = argc > 1 ? atoi(argv[1]) : 100;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1024) || getsockname(l, (struct sockaddr *)&a, &len)) {
		printf("listen=%d\n", errno);
		return 1;
	}
	static char buf[1 << 16];
	long long queued = 0;
	int n = 0;
	for (; n < pairs; n++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) || accept(l, NULL, NULL) < 0)
			break;
		fcntl(c, F_SETFL, O_NONBLOCK);
		for (;;) {
			ssize_t w = write(c, buf, sizeof buf);
			if (w <= 0)
				break;
			queued += w;
		}
	}
	printf("queued=%lld pairs=%d\n", queued, n);
	return 0;
}
