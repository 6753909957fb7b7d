/*
 * Unit tests for the pkt-line framing in src/lib/pktline.c: what the parser
 * accepts and refuses at every length boundary, and that the writers produce
 * packets the parser reads back unchanged.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pktline.h"

#include <setjmp.h>
#include <cmocka.h>

/* Parses the NUL-terminated s as one packet. */
static long parse_str(const char *s, struct pkt *p)
{
	return pkt_parse(s, strlen(s), p);
}

static void test_parse_data(void **state)
{
	struct pkt p;
	const char *in = "000ahello\nrest";
	assert_int_equal(pkt_parse(in, strlen(in), &p), 10);
	assert_int_equal(p.type, PKT_DATA);
	assert_int_equal(p.len, 6);
	assert_ptr_equal(p.data, in + 4);
	assert_memory_equal(p.data, "hello\n", 6);
}

static void test_parse_empty_data(void **state)
{
	/* 0004 is a data packet with no payload, which git tolerates. */
	struct pkt p;
	assert_int_equal(parse_str("0004", &p), 4);
	assert_int_equal(p.type, PKT_DATA);
	assert_int_equal(p.len, 0);
}

static void test_parse_specials(void **state)
{
	struct pkt p;

	memset(&p, 0xaa, sizeof(p));
	assert_int_equal(parse_str("0000", &p), 4);
	assert_int_equal(p.type, PKT_FLUSH);
	assert_null(p.data);
	assert_int_equal(p.len, 0);

	memset(&p, 0xaa, sizeof(p));
	assert_int_equal(parse_str("0001", &p), 4);
	assert_int_equal(p.type, PKT_DELIM);
	assert_null(p.data);
	assert_int_equal(p.len, 0);

	memset(&p, 0xaa, sizeof(p));
	assert_int_equal(parse_str("0002", &p), 4);
	assert_int_equal(p.type, PKT_RESPONSE_END);
	assert_null(p.data);
	assert_int_equal(p.len, 0);

	/* A special packet is complete in its four bytes; what follows is the next. */
	assert_int_equal(parse_str("00000006ab", &p), 4);
	assert_int_equal(p.type, PKT_FLUSH);
}

static void test_parse_0003_rejected(void **state)
{
	struct pkt p;
	error_clear();
	assert_int_equal(parse_str("0003", &p), GROVE_EPROTO);
	assert_non_null(strstr(error_msg(), "3"));
	/* Even with bytes after it: 3 is below the header's own size. */
	assert_int_equal(parse_str("0003xxxxxxxx", &p), GROVE_EPROTO);
}

static void test_parse_short_header_is_partial(void **state)
{
	struct pkt p;
	assert_int_equal(pkt_parse("", 0, &p), 0);
	assert_int_equal(pkt_parse("0", 1, &p), 0);
	assert_int_equal(pkt_parse("00", 2, &p), 0);
	assert_int_equal(pkt_parse("000", 3, &p), 0);
	/* Length in the header is read only once all four bytes are there. */
	assert_int_equal(pkt_parse("zz", 2, &p), 0);
}

static void test_parse_partial_payload(void **state)
{
	struct pkt p;
	const char *in = "000ahello\n";
	for (size_t n = 4; n < 10; n++)
		assert_int_equal(pkt_parse(in, n, &p), 0);
	assert_int_equal(pkt_parse(in, 10, &p), 10);
	/* A header that announces the maximum needs the whole packet. */
	assert_int_equal(parse_str("fff0abc", &p), 0);
}

static void test_parse_non_hex_rejected(void **state)
{
	static const char *bad[] = { "000g", "00 4", "-004", "0x10", "+004", "zzzz", "000\n", "00G0" };
	struct pkt p;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		error_clear();
		assert_int_equal(parse_str(bad[i], &p), GROVE_EPROTO);
		assert_non_null(strstr(error_msg(), "hex"));
	}
	/* A NUL inside the header is not a digit either. */
	assert_int_equal(pkt_parse("00\0" "5x", 5, &p), GROVE_EPROTO);
}

static void test_parse_uppercase_hex(void **state)
{
	struct pkt p;
	struct strbuf sb;
	strbuf_init(&sb, 0);
	/* 0x00AB = 171: header + 167 bytes of payload. */
	assert_int_equal(strbuf_addstr(&sb, "00AB"), 0);
	for (int i = 0; i < 167; i++)
		assert_int_equal(strbuf_addch(&sb, 'x'), 0);
	assert_int_equal(pkt_parse(sb.buf, sb.len, &p), 171);
	assert_int_equal(p.type, PKT_DATA);
	assert_int_equal(p.len, 167);
	/* Same length in lowercase and mixed case. */
	sb.buf[2] = 'a';
	assert_int_equal(pkt_parse(sb.buf, sb.len, &p), 171);
	sb.buf[3] = 'B';
	sb.buf[2] = 'a';
	assert_int_equal(pkt_parse(sb.buf, sb.len, &p), 171);
	strbuf_release(&sb);
}

static void test_parse_max_boundary(void **state)
{
	struct pkt p;
	char *buf = xmalloc(PKT_MAX + 16);

	memset(buf, 'y', PKT_MAX + 16);
	/* 65520 = 0xfff0: the largest packet, accepted. */
	memcpy(buf, "fff0", 4);
	assert_int_equal(pkt_parse(buf, PKT_MAX, &p), PKT_MAX);
	assert_int_equal(p.type, PKT_DATA);
	assert_int_equal(p.len, PKT_DATA_MAX);
	assert_ptr_equal(p.data, buf + 4);
	/* One byte short of it is partial, not an error. */
	assert_int_equal(pkt_parse(buf, PKT_MAX - 1, &p), 0);

	/* 65521 and above are refused at once, before any payload arrives. */
	static const char *over[] = { "fff1", "FFF1", "ffff", "fff2" };
	for (size_t i = 0; i < ARRAY_SIZE(over); i++) {
		memcpy(buf, over[i], 4);
		error_clear();
		assert_int_equal(pkt_parse(buf, 4, &p), GROVE_EPROTO);
		assert_non_null(strstr(error_msg(), "65520"));
		assert_int_equal(pkt_parse(buf, PKT_MAX + 16, &p), GROVE_EPROTO);
	}
	free(buf);
}

static void test_parse_consecutive(void **state)
{
	const char *in = "0008one\n0008two\n000100000009three0002";
	size_t len = strlen(in), off = 0;
	struct pkt p;
	enum pkt_type want_type[] = { PKT_DATA, PKT_DATA, PKT_DELIM, PKT_FLUSH, PKT_DATA,
				      PKT_RESPONSE_END };
	const char *want_data[] = { "one\n", "two\n", NULL, NULL, "three", NULL };
	size_t i = 0;

	while (off < len) {
		long n = pkt_parse(in + off, len - off, &p);
		assert_true(n > 0);
		assert_true(i < ARRAY_SIZE(want_type));
		assert_int_equal(p.type, want_type[i]);
		if (want_data[i]) {
			assert_int_equal(p.len, strlen(want_data[i]));
			assert_memory_equal(p.data, want_data[i], p.len);
		}
		off += (size_t)n;
		i++;
	}
	assert_int_equal(i, ARRAY_SIZE(want_type));
	assert_int_equal(off, len);
}

static void test_add_basic(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(pkt_add(&sb, "hello\n", 6), 0);
	assert_string_equal(sb.buf, "000ahello\n");
	assert_int_equal(pkt_add(&sb, "", 0), 0);
	assert_string_equal(sb.buf, "000ahello\n0004");
	assert_int_equal(pkt_add_flush(&sb), 0);
	assert_string_equal(sb.buf, "000ahello\n00040000");
	/* Binary payload with a NUL passes through unchanged. */
	strbuf_reset(&sb);
	assert_int_equal(pkt_add(&sb, "a\0b", 3), 0);
	assert_int_equal(sb.len, 7);
	assert_memory_equal(sb.buf, "0007a\0b", 7);
	strbuf_release(&sb);
}

static void test_add_hex_is_lowercase(void **state)
{
	struct strbuf sb;
	char payload[0xab - 4];
	memset(payload, 'p', sizeof(payload));
	strbuf_init(&sb, 0);
	assert_int_equal(pkt_add(&sb, payload, sizeof(payload)), 0);
	assert_memory_equal(sb.buf, "00ab", 4);
	strbuf_release(&sb);
}

static void test_add_max_and_too_long(void **state)
{
	struct strbuf sb;
	struct pkt p;
	char *data = xmalloc(PKT_DATA_MAX + 1);
	memset(data, 'z', PKT_DATA_MAX + 1);
	strbuf_init(&sb, 0);

	assert_int_equal(pkt_add(&sb, data, PKT_DATA_MAX), 0);
	assert_int_equal(sb.len, PKT_MAX);
	assert_memory_equal(sb.buf, "fff0", 4);
	assert_int_equal(pkt_parse(sb.buf, sb.len, &p), PKT_MAX);
	assert_int_equal(p.len, PKT_DATA_MAX);

	strbuf_reset(&sb);
	error_clear();
	assert_int_equal(pkt_add(&sb, data, PKT_DATA_MAX + 1), GROVE_EINVAL);
	assert_int_equal(sb.len, 0);
	assert_non_null(strstr(error_msg(), "too long"));
	free(data);
	strbuf_release(&sb);
}

static void test_add_respects_strbuf_max(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 10);
	assert_int_equal(pkt_add(&sb, "abcdef", 6), 0);   /* 10 bytes: exactly full */
	assert_int_equal(pkt_add(&sb, "x", 1), GROVE_ETOOBIG);
	/* A refused packet leaves nothing half-written behind. */
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "000aabcdef");
	assert_int_equal(pkt_add_flush(&sb), GROVE_ETOOBIG);
	assert_int_equal(sb.len, 10);
	strbuf_release(&sb);
}

static void test_addf(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(pkt_addf(&sb, "want %s %d\n", "abc", 42), 0);
	assert_string_equal(sb.buf, "0010want abc 42\n");

	/* Exactly the largest payload is fine; one more byte is refused. */
	char *big = xmalloc(PKT_DATA_MAX + 2);
	memset(big, 'q', PKT_DATA_MAX + 1);
	big[PKT_DATA_MAX + 1] = '\0';
	strbuf_reset(&sb);
	assert_int_equal(pkt_addf(&sb, "%s", big + 1), 0);
	assert_int_equal(sb.len, PKT_MAX);
	strbuf_reset(&sb);
	assert_int_equal(pkt_addf(&sb, "%s", big), GROVE_EINVAL);
	assert_int_equal(sb.len, 0);
	free(big);
	strbuf_release(&sb);
}

static void test_sideband_small(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(pkt_add_sideband(&sb, 2, "progress\n", 9), 0);
	assert_int_equal(sb.len, 4 + 1 + 9);
	assert_memory_equal(sb.buf, "000e\002progress\n", 14);
	strbuf_reset(&sb);
	assert_int_equal(pkt_add_sideband(&sb, 1, "P", 1), 0);
	assert_memory_equal(sb.buf, "0006\001P", 6);
	strbuf_reset(&sb);
	assert_int_equal(pkt_add_sideband(&sb, 3, "err", 3), 0);
	assert_memory_equal(sb.buf, "0008\003err", 8);
	/* Nothing to send: no packet at all. */
	strbuf_reset(&sb);
	assert_int_equal(pkt_add_sideband(&sb, 1, "", 0), 0);
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
}

static void test_sideband_bad_band(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(pkt_add_sideband(&sb, 0, "x", 1), GROVE_EINVAL);
	assert_int_equal(pkt_add_sideband(&sb, 4, "x", 1), GROVE_EINVAL);
	assert_int_equal(pkt_add_sideband(&sb, -1, "x", 1), GROVE_EINVAL);
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
}

static void test_sideband_split(void **state)
{
	/* Two and a half packets' worth, with a pattern to check the order. */
	size_t total = 2 * (PKT_DATA_MAX - 1) + 1000;
	unsigned char *data = xmalloc(total);
	struct strbuf sb, back;
	struct pkt p;
	size_t off = 0;
	int packets = 0;

	for (size_t i = 0; i < total; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	strbuf_init(&sb, 0);
	strbuf_init(&back, 0);
	assert_int_equal(pkt_add_sideband(&sb, 1, data, total), 0);
	while (off < sb.len) {
		long n = pkt_parse(sb.buf + off, sb.len - off, &p);
		assert_true(n > 0);
		assert_true(n <= PKT_MAX);
		assert_int_equal(p.type, PKT_DATA);
		assert_true(p.len >= 2);
		assert_int_equal((unsigned char)p.data[0], 1);
		assert_int_equal(strbuf_add(&back, p.data + 1, p.len - 1), 0);
		off += (size_t)n;
		packets++;
	}
	assert_int_equal(packets, 3);
	assert_int_equal(back.len, total);
	assert_memory_equal(back.buf, data, total);
	/* The first packets are full-sized. */
	assert_memory_equal(sb.buf, "fff0", 4);
	free(data);
	strbuf_release(&sb);
	strbuf_release(&back);
}

static void test_roundtrip_lengths(void **state)
{
	static const size_t lens[] = { 0, 1, 2, 3, 4, 5, 15, 16, 255, 256, 4095, 4096, 65515, PKT_DATA_MAX };
	char *data = xmalloc(PKT_DATA_MAX);
	struct strbuf sb;
	struct pkt p;

	for (size_t i = 0; i < PKT_DATA_MAX; i++)
		data[i] = (char)(i % 253);
	strbuf_init(&sb, 0);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		strbuf_reset(&sb);
		assert_int_equal(pkt_add(&sb, data, lens[i]), 0);
		assert_int_equal(sb.len, lens[i] + 4);
		/* Every shorter prefix is partial. */
		assert_int_equal(pkt_parse(sb.buf, sb.len - 1, &p), 0);
		assert_int_equal(pkt_parse(sb.buf, sb.len, &p), (long)(lens[i] + 4));
		assert_int_equal(p.type, PKT_DATA);
		assert_int_equal(p.len, lens[i]);
		assert_memory_equal(p.data, data, lens[i]);
	}
	free(data);
	strbuf_release(&sb);
}

/* A push as git sends it: commands, [push options], then the pack. */
static void build_push(struct strbuf *sb, bool options)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %s refs/heads/main%creport-status side-band-64k%s agent=git/2.39.5\n",
			 "0000000000000000000000000000000000000000", "1111111111111111111111111111111111111111", '\0',
			 options ? " push-options" : "");
	pkt_add(sb, line, (size_t)n);
	pkt_add(sb, "refs/heads/x is here too\n", 25);
	pkt_add_flush(sb);
	if (options) {
		pkt_add(sb, "ci.skip", 7);
		pkt_add_flush(sb);
	}
}

static void test_push_head(void **state)
{
	static char buf[PKT_MAX];
	for (int options = 0; options < 2; options++) {
		struct strbuf sb = STRBUF_INIT;
		struct push_head ph;
		build_push(&sb, options);
		size_t hdr = sb.len;
		strbuf_add(&sb, "PACK\0\0\0\2\0\0\0\1", 12);
		/* At once, and one byte at a time: the same answer. */
		push_head_init(&ph, buf);
		push_head_feed(&ph, sb.buf, sb.len);
		assert_true(ph.done);
		assert_int_equal(ph.hdr_len, hdr);
		push_head_init(&ph, buf);
		for (size_t i = 0; i < sb.len; i++)
			push_head_feed(&ph, sb.buf + i, 1);
		assert_true(ph.done);
		assert_int_equal(ph.hdr_len, hdr);
		/* Before the last flush: not known yet. */
		push_head_init(&ph, buf);
		push_head_feed(&ph, sb.buf, hdr - 1);
		assert_false(ph.done);
		assert_false(ph.failed);
		strbuf_release(&sb);
	}
	/* Not pkt-lines: given up, never a made-up length. */
	struct push_head ph;
	push_head_init(&ph, buf);
	push_head_feed(&ph, "PACK\0\0\0\2", 8);
	assert_true(ph.failed);
	assert_false(ph.done);
}

static void test_push_head_bounded(void **state)
{
	static char buf[PKT_MAX];
	struct strbuf sb = STRBUF_INIT;
	struct push_head ph;
	build_push(&sb, 0);
	/* Within the bound: the end is found as without one. */
	push_head_init(&ph, buf);
	ph.max_head = sb.len;
	push_head_feed(&ph, sb.buf, sb.len);
	assert_true(ph.done);
	assert_false(ph.too_big);
	/* Past it, before the last flush: too big, one byte at a time or
	 * all at once (the whole list in one read). */
	push_head_init(&ph, buf);
	ph.max_head = 40;
	for (size_t i = 0; i < sb.len; i++)
		push_head_feed(&ph, sb.buf + i, 1);
	assert_true(ph.too_big);
	assert_false(ph.done);
	push_head_init(&ph, buf);
	ph.max_head = sb.len - 1;
	push_head_feed(&ph, sb.buf, sb.len);
	assert_true(ph.too_big);
	assert_false(ph.done);
	strbuf_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_data),
		cmocka_unit_test(test_parse_empty_data),
		cmocka_unit_test(test_parse_specials),
		cmocka_unit_test(test_parse_0003_rejected),
		cmocka_unit_test(test_parse_short_header_is_partial),
		cmocka_unit_test(test_parse_partial_payload),
		cmocka_unit_test(test_parse_non_hex_rejected),
		cmocka_unit_test(test_parse_uppercase_hex),
		cmocka_unit_test(test_parse_max_boundary),
		cmocka_unit_test(test_parse_consecutive),
		cmocka_unit_test(test_add_basic),
		cmocka_unit_test(test_add_hex_is_lowercase),
		cmocka_unit_test(test_add_max_and_too_long),
		cmocka_unit_test(test_add_respects_strbuf_max),
		cmocka_unit_test(test_addf),
		cmocka_unit_test(test_sideband_small),
		cmocka_unit_test(test_sideband_bad_band),
		cmocka_unit_test(test_sideband_split),
		cmocka_unit_test(test_roundtrip_lengths),
		cmocka_unit_test(test_push_head),
		cmocka_unit_test(test_push_head_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
