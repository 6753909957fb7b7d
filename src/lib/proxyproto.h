/*
 * The PROXY protocol (HAProxy's, versions 1 and 2), which a TCP load
 * balancer in front of several gates sends first on each connection to say
 * who the client really is. A gate accepts it only from the balancers'
 * addresses (gate.proxyProtocolFrom), and from them requires it: anyone else
 * could claim any address.
 *
 * The header is read byte by byte up to its end and not one byte further:
 * what follows is the client's SSH stream.
 */
#ifndef GROVE_PROXYPROTO_H
#define GROVE_PROXYPROTO_H

#include "lib/common.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107            /* the longest v1 line, CRLF included */
#define PROXY_V2_MAX (16 + 216)     /* v2 header with the largest address block we accept */

struct proxy_addr {
	bool local;       /* LOCAL (v2) or UNKNOWN (v1): a health check; keep the socket's address */
	char ip[46];      /* the client, as text */
	unsigned port;
};

/*
 * Parses a header at the start of buf: the header's length when complete,
 * 0 when more bytes are needed, GROVE_EPROTO when it is not a valid header
 * (the error says why).
 */
int proxy_parse(const uint8_t *buf, size_t len, struct proxy_addr *out);

/* Reads one header from fd, exactly; fails after timeout_ms. */
int proxy_read(int fd, int timeout_ms, struct proxy_addr *out);

/* An address range: "10.0.0.0/8", "192.0.2.7", "::1", "2001:db8::/32". */
struct cidr {
	int family;
	uint8_t addr[16];
	int bits;
};

int cidr_parse(const char *s, struct cidr *out);
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);
/* Whether sa is in any of the n ranges of list. */
bool cidr_match_any(const struct cidr *list, size_t n, const struct sockaddr *sa);

#endif
