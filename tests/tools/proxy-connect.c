/*
 * proxy-connect HOST PORT v1|v2|garbage SRC_IP SRC_PORT: an ssh ProxyCommand
 * that plays a TCP load balancer speaking the PROXY protocol — it connects
 * to HOST:PORT, sends a header naming SRC_IP:SRC_PORT as the client (or,
 * with "garbage", a line that is not one), then relays stdin and stdout.
 * For the gate's end-to-end tests.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tool.h"

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	unsigned char hdr[64];
	size_t hl = 0;
	int s;

	if (argc != 6) {
		fprintf(stderr, "usage: proxy-connect HOST PORT v1|v2|garbage SRC_IP SRC_PORT\n");
		return 2;
	}
	if (getaddrinfo(argv[1], argv[2], &hints, &ai))
		return 1;
	s = socket(ai->ai_family, SOCK_STREAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen))
		return 1;
	if (!strcmp(argv[3], "v1")) {
		hl = (size_t)snprintf((char *)hdr, sizeof(hdr), "PROXY TCP4 %s 127.0.0.1 %s %s\r\n", argv[4], argv[5], argv[2]);
	} else if (!strcmp(argv[3], "v2")) {
		static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
		unsigned sport = (unsigned)atoi(argv[5]), dport = (unsigned)atoi(argv[2]);
		memcpy(hdr, sig, 12);
		hdr[12] = 0x21;   /* v2, PROXY */
		hdr[13] = 0x11;   /* TCP over IPv4 */
		hdr[14] = 0;
		hdr[15] = 12;
		inet_pton(AF_INET, argv[4], hdr + 16);
		inet_pton(AF_INET, "127.0.0.1", hdr + 20);
		hdr[24] = (unsigned char)(sport >> 8);
		hdr[25] = (unsigned char)sport;
		hdr[26] = (unsigned char)(dport >> 8);
		hdr[27] = (unsigned char)dport;
		hl = 28;
	} else {
		hl = (size_t)snprintf((char *)hdr, sizeof(hdr), "PROXY TCP4 not-an-address\r\n");
	}
	if (write_all(s, hdr, hl))
		return 1;
	struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = s, .events = POLLIN } };
	char buf[65536];
	for (;;) {
		if (poll(p, 2, -1) < 0)
			return 1;
		if (p[0].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				shutdown(s, SHUT_WR);
				p[0].fd = -1;
			} else if (write_all(s, buf, (size_t)n)) {
				return 1;
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(s, buf, sizeof(buf));
			if (n <= 0)
				return 0;
			if (write_all(1, buf, (size_t)n))
				return 1;
		}
	}
}
