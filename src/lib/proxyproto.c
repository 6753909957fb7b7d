/* The PROXY protocol, versions 1 and 2: see proxyproto.h. */
#include "lib/proxyproto.h"
#include "lib/error.h"

#include <arpa/inet.h>
#include <poll.h>

static const uint8_t v2sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* "PROXY TCP4 src dst sport dport\r\n" or "PROXY UNKNOWN …\r\n". */
static int parse_v1(const uint8_t *buf, size_t len, struct proxy_addr *out)
{
	char line[PROXY_V1_MAX + 1], *f[7], *save = NULL;
	const uint8_t *crlf = NULL;
	int n = 0;
	unsigned char tmp[16];

	for (size_t i = 0; i + 1 < len && i + 1 < PROXY_V1_MAX; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n') {
			crlf = buf + i;
			break;
		}
	if (!crlf) {
		if (len >= PROXY_V1_MAX)
			return error_set(GROVE_EPROTO, "PROXY v1 line longer than %d bytes", PROXY_V1_MAX);
		for (size_t i = 0; i < len; i++)
			if (buf[i] == '\0' || (buf[i] == '\n'))
				return error_set(GROVE_EPROTO, "PROXY v1 line holds a NUL or a bare LF");
		return 0;
	}
	memcpy(line, buf, (size_t)(crlf - buf));
	line[crlf - buf] = '\0';
	/* Up to one field too many, to see that there is one. */
	for (char *t = strtok_r(line, " ", &save); t && n < 7; t = n < 7 ? strtok_r(NULL, " ", &save) : NULL)
		f[n++] = t;
	if (n < 2 || strcmp(f[0], "PROXY"))
		return error_set(GROVE_EPROTO, "not a PROXY v1 line");
	memset(out, 0, sizeof(*out));
	if (!strcmp(f[1], "UNKNOWN")) {
		out->local = true;
		return (int)(crlf - buf) + 2;
	}
	if (n != 6 || (strcmp(f[1], "TCP4") && strcmp(f[1], "TCP6")))
		return error_set(GROVE_EPROTO, "PROXY v1 line is not \"PROXY TCP4|TCP6 SRC DST SPORT DPORT\"");
	int af = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (inet_pton(af, f[2], tmp) != 1 || inet_pton(af, f[3], tmp) != 1)
		return error_set(GROVE_EPROTO, "PROXY v1 addresses are not %s addresses", f[1]);
	for (int k = 4; k < 6; k++) {
		char *end;
		long p = strtol(f[k], &end, 10);
		if (*end || end == f[k] || p < 0 || p > 65535 || (f[k][0] == '0' && f[k][1]))
			return error_set(GROVE_EPROTO, "PROXY v1 port \"%.8s\" is not 0-65535", f[k]);
		if (k == 4)
			out->port = (unsigned)p;
	}
	strlcpy_(out->ip, f[2], sizeof(out->ip));
	return (int)(crlf - buf) + 2;
}

static int parse_v2(const uint8_t *buf, size_t len, struct proxy_addr *out)
{
	size_t alen, total;
	int cmd, fam;

	if (len < 16)
		return 0;
	if ((buf[12] >> 4) != 2)
		return error_set(GROVE_EPROTO, "PROXY v2 header has version %d", buf[12] >> 4);
	cmd = buf[12] & 0x0f;
	fam = buf[13];
	alen = ((size_t)buf[14] << 8) | buf[15];
	if (alen > PROXY_V2_MAX - 16)
		return error_set(GROVE_EPROTO, "PROXY v2 address block of %zu bytes is too long", alen);
	total = 16 + alen;
	if (len < total)
		return 0;
	memset(out, 0, sizeof(*out));
	if (cmd == 0) {          /* LOCAL: the balancer's own check */
		out->local = true;
		return (int)total;
	}
	if (cmd != 1)
		return error_set(GROVE_EPROTO, "PROXY v2 command %d is neither LOCAL nor PROXY", cmd);
	if (fam == 0x11 || fam == 0x12) {          /* TCP or UDP over IPv4 */
		if (alen < 12)
			return error_set(GROVE_EPROTO, "PROXY v2 IPv4 address block is %zu bytes, not 12", alen);
		inet_ntop(AF_INET, buf + 16, out->ip, sizeof(out->ip));
		out->port = ((unsigned)buf[24] << 8) | buf[25];
	} else if (fam == 0x21 || fam == 0x22) {   /* over IPv6 */
		if (alen < 36)
			return error_set(GROVE_EPROTO, "PROXY v2 IPv6 address block is %zu bytes, not 36", alen);
		inet_ntop(AF_INET6, buf + 16, out->ip, sizeof(out->ip));
		out->port = ((unsigned)buf[48] << 8) | buf[49];
	} else if (fam == 0x00) {
		out->local = true;                 /* UNSPEC: no address to take */
	} else {
		return error_set(GROVE_EPROTO, "PROXY v2 address family 0x%02x is not TCP over IPv4 or IPv6", fam);
	}
	return (int)total;
}

int proxy_parse(const uint8_t *buf, size_t len, struct proxy_addr *out)
{
	size_t k = MIN(len, sizeof(v2sig));
	if (!memcmp(buf, v2sig, k))
		return len < sizeof(v2sig) ? 0 : parse_v2(buf, len, out);
	k = MIN(len, (size_t)6);
	if (!memcmp(buf, "PROXY ", k))
		return len < 6 ? 0 : parse_v1(buf, len, out);
	return error_set(GROVE_EPROTO, "the connection does not start with a PROXY protocol header");
}

int proxy_read(int fd, int timeout_ms, struct proxy_addr *out)
{
	uint8_t buf[PROXY_V2_MAX] = {0};   /* proxy_parse compares even when len is 0 */
	size_t len = 0, want = 1;
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int r = proxy_parse(buf, len, out);
		if (r != 0)
			return r < 0 ? r : 0;
		/* v2 tells its length at byte 16: read the rest in one go, never past it. */
		want = 1;
		if (len >= 16 && !memcmp(buf, v2sig, sizeof(v2sig)))
			want = 16 + (((size_t)buf[14] << 8) | buf[15]) - len;
		else if (len < 16 && len >= sizeof(v2sig) && !memcmp(buf, v2sig, sizeof(v2sig)))
			want = 16 - len;
		if (len + want > sizeof(buf))
			return error_set(GROVE_EPROTO, "PROXY header longer than %zu bytes", sizeof(buf));
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return error_set(GROVE_ETIMEOUT, "no complete PROXY header within %d ms", timeout_ms);
		ssize_t n = read(fd, buf + len, want);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return error_set(GROVE_EPROTO, "the connection ended inside the PROXY header");
		len += (size_t)n;
	}
}

int cidr_parse(const char *s, struct cidr *out)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host))
		return error_set(GROVE_EINVAL, "\"%.64s\" is not an address or ADDRESS/BITS", s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return error_set(GROVE_EINVAL, "\"%.64s\" is not an IPv4 or IPv6 address", host);
	}
	out->bits = max;
	if (slash) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || b < 0 || b > max)
			return error_set(GROVE_EINVAL, "\"%.64s\": the prefix length must be 0 to %d", s, max);
		out->bits = (int)b;
	}
	return 0;
}

bool cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const uint8_t *a;
	uint8_t v4mapped[16];
	int bits = c->bits;

	if (sa->sa_family == AF_INET && c->family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (c->family == AF_INET) {
			/* ::ffff:a.b.c.d against an IPv4 range. */
			static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
			if (memcmp(a, prefix, 12))
				return false;
			memcpy(v4mapped, a + 12, 4);
			a = v4mapped;
		}
	} else {
		return false;
	}
	for (int i = 0; bits > 0; i++, bits -= 8) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((a[i] & mask) != (c->addr[i] & mask))
			return false;
	}
	return true;
}

bool cidr_match_any(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&list[i], sa))
			return true;
	return false;
}
