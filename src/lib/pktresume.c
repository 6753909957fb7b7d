/*
 * Resuming git's output from a second run of the same command: see
 * pktresume.h.
 */
#include "lib/pktresume.h"
#include "lib/error.h"
#include "lib/pktline.h"

int pkt_resume_init(struct pkt_resume *r, const char *seen, size_t len, bool advertised)
{
	size_t off = 0;
	struct pkt p;
	long n = 0;

	memset(r, 0, sizeof(*r));
	r->seen = seen;
	r->seen_len = len;
	r->adv_whole = !advertised;
	strbuf_init(&r->pending, PKT_MAX);
	while (advertised && off < len && (n = pkt_parse(seen + off, len - off, &p)) > 0) {
		off += (size_t)n;
		if (p.type == PKT_FLUSH) {
			r->adv_whole = true;
			break;
		}
	}
	if (n < 0)
		return error_set(GROVE_EPRECOND, "what the client was sent is not pkt-lines");
	/* The client has part of the advertisement: the second run's goes on from there. */
	if (!r->adv_whole)
		off = len;
	r->adv_len = r->cursor = off;
	for (; off < len; off += (size_t)n)
		if ((n = pkt_parse(seen + off, len - off, &p)) <= 0)
			return error_set(GROVE_EPRECOND, "%s", n ? "what the client was sent is not pkt-lines"
							 : "the client was sent part of a packet");
	return 0;
}

/* One whole packet of the second run: out, unless the client has it (at or
 * after the cursor, which then moves past it). */
static int resume_packet(struct pkt_resume *r, const char *data, size_t n, struct strbuf *out)
{
	struct pkt p;
	long m;

	for (size_t o = r->cursor; o < r->seen_len; o += (size_t)m) {
		m = pkt_parse(r->seen + o, r->seen_len - o, &p);   /* whole packets (init) */
		if ((size_t)m == n && !memcmp(r->seen + o, data, n)) {
			r->cursor = o + (size_t)m;
			return 0;
		}
	}
	return strbuf_add(out, data, n);
}

/* The length of the packet whose four-digit header is at hdr, or 0 if it is not one. */
static size_t packet_size(const char *hdr)
{
	char hex[5] = { hdr[0], hdr[1], hdr[2], hdr[3], 0 };
	struct pkt p;
	long n = pkt_parse(hdr, 4, &p);

	if (n < 0)
		return 0;
	return n == 4 ? 4 : (size_t)strtoul(hex, NULL, 16);   /* parsed: valid hex, at most PKT_MAX */
}

/* Takes bytes of a packet cut between two pieces into pending (*used says
 * how many); once it is whole, it is resumed like any other. */
static int gather(struct pkt_resume *r, const char *p, size_t len, size_t *used, struct strbuf *out)
{
	size_t need = r->pending.len < 4 ? 4 : packet_size(r->pending.buf);
	int ret;

	*used = MIN(len, need - r->pending.len);
	if ((ret = strbuf_add(&r->pending, p, *used)) || r->pending.len < 4)
		return ret;
	if (!(need = packet_size(r->pending.buf))) {
		r->passthrough = true;   /* not pkt-lines: nothing to match */
		ret = strbuf_add(out, r->pending.buf, r->pending.len);
		strbuf_reset(&r->pending);
	} else if (r->pending.len == need) {
		ret = resume_packet(r, r->pending.buf, r->pending.len, out);
		strbuf_reset(&r->pending);
	}
	return ret;
}

int pkt_resume_feed(struct pkt_resume *r, const void *data, size_t len, struct strbuf *out)
{
	const char *p = data;
	struct pkt pk;
	int ret = 0;

	if (r->matched < r->adv_len) {
		size_t n = MIN(len, r->adv_len - r->matched);
		if (memcmp(p, r->seen + r->matched, n))
			return error_set(GROVE_EPRECOND, "the second run advertised other refs than the first");
		r->matched += n;
		p += n;
		len -= n;
		if (r->matched == r->adv_len && !r->adv_whole)
			r->passthrough = true;
	}
	while (len && !ret && !r->passthrough) {
		size_t used = 0;
		long n = r->pending.len ? 0 : pkt_parse(p, len, &pk);
		if (n > 0) {
			ret = resume_packet(r, p, (size_t)n, out);
			used = (size_t)n;
		} else if (n < 0) {
			r->passthrough = true;   /* not pkt-lines: nothing to match */
		} else {
			ret = gather(r, p, len, &used, out);
		}
		p += used;
		len -= used;
	}
	if (!ret && r->passthrough && len)
		ret = strbuf_add(out, p, len);
	return ret;
}

int pkt_resume_end(struct pkt_resume *r, struct strbuf *out)
{
	int ret = strbuf_add(out, r->pending.buf, r->pending.len);
	strbuf_reset(&r->pending);
	return ret;
}

void pkt_resume_release(struct pkt_resume *r)
{
	strbuf_release(&r->pending);
}
