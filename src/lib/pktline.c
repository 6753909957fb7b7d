/* pkt-line framing: see pktline.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pktline.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long pkt_parse(const char *buf, size_t len, struct pkt *out)
{
	int n = 0;
	if (len < 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		int v = hexval(buf[i]);
		if (v < 0)
			return error_set(GROVE_EPROTO, "bad pkt-line length: not four hex digits");
		n = n * 16 + v;
	}
	out->data = NULL;
	out->len = 0;
	switch (n) {
	case 0: out->type = PKT_FLUSH; return 4;
	case 1: out->type = PKT_DELIM; return 4;
	case 2: out->type = PKT_RESPONSE_END; return 4;
	case 3: return error_set(GROVE_EPROTO, "bad pkt-line length 3");
	}
	if (n > PKT_MAX)
		return error_set(GROVE_EPROTO, "pkt-line length %d exceeds the maximum of %d", n, PKT_MAX);
	if (len < (size_t)n)
		return 0;
	out->type = PKT_DATA;
	out->data = buf + 4;
	out->len = (size_t)n - 4;
	return n;
}

int pkt_add(struct strbuf *sb, const void *data, size_t len)
{
	char hdr[5];
	int ret;
	if (len > PKT_DATA_MAX)
		return error_set(GROVE_EINVAL, "pkt-line payload of %zu bytes is too long", len);
	snprintf(hdr, sizeof(hdr), "%04zx", len + 4);
	ret = strbuf_grow(sb, len + 4);
	if (ret)
		return ret;
	strbuf_add(sb, hdr, 4);
	return strbuf_add(sb, data, len);
}

int pkt_addf(struct strbuf *sb, const char *fmt, ...)
{
	char buf[PKT_DATA_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n > PKT_DATA_MAX)
		return error_set(GROVE_EINVAL, "pkt-line payload is too long");
	return pkt_add(sb, buf, (size_t)n);
}

int pkt_add_flush(struct strbuf *sb)
{
	return strbuf_add(sb, "0000", 4);
}

int pkt_add_sideband(struct strbuf *sb, int band, const void *data, size_t len)
{
	const char *p = data;
	char chunk[PKT_DATA_MAX];
	if (band < 1 || band > 3)
		return error_set(GROVE_EINVAL, "side-band %d does not exist", band);
	while (len) {
		size_t n = MIN(len, sizeof(chunk) - 1);
		chunk[0] = (char)band;
		memcpy(chunk + 1, p, n);
		int ret = pkt_add(sb, chunk, n + 1);
		if (ret)
			return ret;
		p += n;
		len -= n;
	}
	return 0;
}

void push_head_init(struct push_head *ph, char *buf)
{
	memset(ph, 0, sizeof(*ph));
	ph->buf = buf;
	ph->flushes = 1;
}

/* Whether the capability list of a first command line names push-options. */
static bool asks_push_options(const char *data, size_t len)
{
	const char *nul = memchr(data, '\0', len);
	if (!nul)
		return false;
	for (const char *p = nul + 1, *end = data + len; p < end;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *e = sp ? sp : end;
		size_t n = (size_t)(e - p);
		while (n && (p[n - 1] == '\n'))
			n--;
		if (n == strlen("push-options") && !memcmp(p, "push-options", n))
			return true;
		p = e + 1;
	}
	return false;
}

void push_head_feed(struct push_head *ph, const void *data, size_t len)
{
	const char *in = data;
	while (len && !ph->done && !ph->failed && !ph->too_big) {
		size_t take = MIN(len, (size_t)PKT_MAX - ph->have);
		size_t pos = 0;
		memcpy(ph->buf + ph->have, in, take);
		ph->have += take;
		in += take;
		len -= take;
		for (;;) {
			struct pkt p;
			long r = pkt_parse(ph->buf + pos, ph->have - pos, &p);
			if (r < 0) {
				ph->failed = true;
				return;
			}
			if (r == 0)
				break;
			if (p.type == PKT_DATA && !ph->first_seen) {
				ph->first_seen = true;
				if (asks_push_options(p.data, p.len))
					ph->flushes = 2;
			}
			pos += (size_t)r;
			/* The ref list and push options, which every replica's git
			 * holds in memory whole: bounded, unlike a pack, by count;
			 * checked per packet, however the bytes came in. */
			if (ph->max_head && ph->consumed + pos > ph->max_head) {
				ph->too_big = true;
				return;
			}
			if (p.type == PKT_FLUSH && --ph->flushes == 0) {
				ph->done = true;
				ph->hdr_len = ph->consumed + pos;
				return;
			}
		}
		/* A packet is never longer than PKT_MAX: what is left fits. */
		memmove(ph->buf, ph->buf + pos, ph->have - pos);
		ph->have -= pos;
		ph->consumed += pos;
		if (ph->max_head && ph->consumed + ph->have > ph->max_head) {
			ph->too_big = true;
			return;
		}
	}
}
