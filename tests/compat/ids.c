/* What a process is allowed, for the compatibility test: its ids and
 * effective capabilities ("ids"), whether it may bind a TCP port
 * ("bind PORT"), and whether it may ping 127.0.0.1 the way iputils' ping
 * does without privileges, over an ICMP datagram socket ("ping").
 * Installed three times in the test image: plain, set-uid root, and with
 * the file capability cap_net_raw+ep. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <arpa/inet.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int ids(void)
{
	char line[256];
	const char *eff = "?";
	FILE *status = fopen("/proc/self/status", "r");
	if (!status) {
		perror("/proc/self/status");
		return 1;
	}
	while (fgets(line, sizeof line, status))
		if (strncmp(line, "CapEff:\t", 8) == 0) {
			line[strcspn(line, "\n")] = 0;
			eff = line + 8;
			break;
		}
	printf("uid=%d euid=%d capeff=%s\n", (int)getuid(), (int)geteuid(), eff);
	return 0;
}

static int bind_port(const char *port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		printf("bind %s: %s\n", port, strerror(errno));
		return 1;
	}
	printf("bound %s\n", port);
	return 0;
}

static int ping(void)
{
	struct sockaddr_in to = {.sin_family = AF_INET};
	struct icmphdr echo = {.type = ICMP_ECHO, .un.echo.sequence = htons(1)};
	struct timeval wait = {.tv_sec = 5};
	char reply[256];
	int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0) {
		printf("ping socket: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
	/* The kernel fills in the identifier and the checksum. */
	if (sendto(fd, &echo, sizeof echo, 0, (struct sockaddr *)&to, sizeof to) < 0 ||
	    recv(fd, reply, sizeof reply, 0) < (ssize_t)sizeof echo) {
		printf("ping: %s\n", strerror(errno));
		return 1;
	}
	printf("pong type %d\n", ((struct icmphdr *)reply)->type);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "ids") == 0)
		return ids();
	if (argc == 2 && strcmp(argv[1], "ping") == 0)
		return ping();
	if (argc == 3 && strcmp(argv[1], "bind") == 0)
		return bind_port(argv[2]);
	fprintf(stderr, "usage: ids ids | ids ping | ids bind PORT\n");
	return 2;
}
