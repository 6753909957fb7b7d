/*
 * libFuzzer target for src/lib/pktline.c. The input is read as a stream of
 * packets, consumed one by one the way a server reads a client; every packet
 * the parser returns must lie inside the input. Then the input is written as
 * a data packet and as side-band packets, and parsing them back must give
 * the same bytes.
 */
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

static void parse_stream(const char *buf, size_t size)
{
	size_t off = 0;
	while (off < size) {
		struct pkt p;
		size_t left = size - off;
		long n = pkt_parse(buf + off, left, &p);
		if (n < 0) {
			if (n != GROVE_EPROTO)
				abort();
			return;
		}
		if (n == 0) {
			/* Partial: only when the header or the announced packet is cut off. */
			if (left >= 4) {
				int len = 0;
				for (int i = 0; i < 4; i++)
					len = len * 16 + hexval(buf[off + i]);
				if ((size_t)len <= left || len > PKT_MAX)
					abort();
			}
			return;
		}
		if ((size_t)n > left || n > PKT_MAX || n < 4)
			abort();
		if (p.type == PKT_DATA) {
			if (p.data != buf + off + 4 || p.len != (size_t)n - 4)
				abort();
			/* Touch every byte, so ASan sees any overrun. */
			volatile char sink = 0;
			for (size_t i = 0; i < p.len; i++)
				sink ^= p.data[i];
			(void)sink;
		} else if (n != 4 || p.data || p.len) {
			abort();
		}
		off += (size_t)n;
	}
}

static void roundtrip(const uint8_t *data, size_t size)
{
	struct strbuf sb, back;
	struct pkt p;
	size_t plen = MIN(size, (size_t)PKT_DATA_MAX);

	strbuf_init(&sb, PKT_MAX);
	if (pkt_add(&sb, data, plen) || sb.len != plen + 4)
		abort();
	if (pkt_parse(sb.buf, sb.len, &p) != (long)(plen + 4) || p.type != PKT_DATA || p.len != plen ||
	    memcmp(p.data, data, plen))
		abort();
	/* One byte less is always partial. */
	if (pkt_parse(sb.buf, sb.len - 1, &p) != 0)
		abort();
	strbuf_release(&sb);

	/* Side-band: any length, split into packets and joined again. */
	int band = size ? 1 + data[0] % 3 : 1;
	size_t off = 0;
	strbuf_init(&sb, 0);
	strbuf_init(&back, 0);
	if (pkt_add_sideband(&sb, band, data, size))
		abort();
	while (off < sb.len) {
		long n = pkt_parse(sb.buf + off, sb.len - off, &p);
		if (n <= 0 || p.type != PKT_DATA || p.len < 2 || p.data[0] != band)
			abort();
		if (strbuf_add(&back, p.data + 1, p.len - 1))
			abort();
		off += (size_t)n;
	}
	if (back.len != size || (size && memcmp(back.buf, data, size)))
		abort();
	strbuf_release(&sb);
	strbuf_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_stream((const char *)data, size);
	roundtrip(data, size);
	return 0;
}
