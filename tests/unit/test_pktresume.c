/*
 * Unit tests for src/lib/pktresume.c: a second run's output, fed in pieces
 * of every size, gives the client exactly what it had not had; an
 * advertisement that changed, or a first run cut inside a packet, is
 * refused.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pktline.h"
#include "lib/pktresume.h"

#include <setjmp.h>
#include <cmocka.h>

/* An advertisement of two refs, as receive-pack sends it. */
static void add_adv(struct strbuf *sb, const char *main_oid)
{
	pkt_addf(sb, "%s refs/heads/main%creport-status side-band-64k\n", main_oid, 0);
	pkt_addf(sb, "%s refs/tags/v1\n", "2222222222222222222222222222222222222222");
	pkt_add_flush(sb);
}

static void add_band2(struct strbuf *sb, const char *msg)
{
	pkt_add_sideband(sb, 2, msg, strlen(msg));
}

#define OID1 "1111111111111111111111111111111111111111"
#define OID3 "3333333333333333333333333333333333333333"

/* Feeds second in pieces of step bytes; out gets what goes to the client. */
static int feed_all(struct pkt_resume *r, const struct strbuf *second, size_t step, struct strbuf *out)
{
	int ret = 0;
	for (size_t o = 0; o < second->len && !ret; o += step)
		ret = pkt_resume_feed(r, second->buf + o, MIN(step, second->len - o), out);
	return ret ? ret : pkt_resume_end(r, out);
}

static void test_same_run_again(void **state)
{
	struct strbuf seen = STRBUF_INIT, second = STRBUF_INIT, expect = STRBUF_INIT;

	add_adv(&seen, OID1);
	add_band2(&seen, "pre-receive: checking\n");
	add_band2(&seen, "Resolving deltas: 40%\r");
	add_adv(&second, OID1);
	add_band2(&second, "pre-receive: checking\n");
	add_band2(&second, "Resolving deltas: 100%\n");
	pkt_add_sideband(&second, 1, "0017ok refs/heads/main\n0000", 27);
	pkt_add_flush(&second);
	/* The client gets only what it had not: the new progress and the report. */
	add_band2(&expect, "Resolving deltas: 100%\n");
	pkt_add_sideband(&expect, 1, "0017ok refs/heads/main\n0000", 27);
	pkt_add_flush(&expect);
	for (size_t step = 1; step <= second.len; step = step * 2 + 1) {
		struct pkt_resume r;
		struct strbuf out = STRBUF_INIT;
		assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len, true), 0);
		assert_int_equal(feed_all(&r, &second, step, &out), 0);
		assert_int_equal(out.len, expect.len);
		assert_memory_equal(out.buf, expect.buf, expect.len);
		pkt_resume_release(&r);
		strbuf_release(&out);
	}
	strbuf_release(&seen);
	strbuf_release(&second);
	strbuf_release(&expect);
}

static void test_message_twice_in_second_run_goes_out_once_more(void **state)
{
	struct strbuf seen = STRBUF_INIT, second = STRBUF_INIT, expect = STRBUF_INIT, out = STRBUF_INIT;
	struct pkt_resume r;

	add_adv(&seen, OID1);
	add_band2(&seen, "hello\n");
	add_adv(&second, OID1);
	add_band2(&second, "hello\n");
	add_band2(&second, "hello\n");
	add_band2(&expect, "hello\n");
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len, true), 0);
	assert_int_equal(feed_all(&r, &second, 7, &out), 0);
	assert_int_equal(out.len, expect.len);
	assert_memory_equal(out.buf, expect.buf, expect.len);
	pkt_resume_release(&r);
	strbuf_release(&seen);
	strbuf_release(&second);
	strbuf_release(&expect);
	strbuf_release(&out);
}

static void test_other_refs_refused(void **state)
{
	struct strbuf seen = STRBUF_INIT, second = STRBUF_INIT, out = STRBUF_INIT;
	struct pkt_resume r;

	add_adv(&seen, OID1);
	add_adv(&second, OID3);
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len, true), 0);
	assert_int_equal(feed_all(&r, &second, 5, &out), GROVE_EPRECOND);
	assert_int_equal(out.len, 0);
	pkt_resume_release(&r);
	strbuf_release(&seen);
	strbuf_release(&second);
	strbuf_release(&out);
}

static void test_cut_inside_a_packet_refused(void **state)
{
	struct strbuf seen = STRBUF_INIT;
	struct pkt_resume r;

	add_adv(&seen, OID1);
	add_band2(&seen, "Resolving deltas: 40%\r");
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len - 3, true), GROVE_EPRECOND);
	pkt_resume_release(&r);
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len - 3, false), GROVE_EPRECOND);
	pkt_resume_release(&r);
	strbuf_release(&seen);
}

static void test_part_of_the_advertisement_seen(void **state)
{
	struct strbuf seen = STRBUF_INIT, second = STRBUF_INIT, out = STRBUF_INIT;
	struct pkt_resume r;

	add_adv(&second, OID1);
	add_band2(&second, "hello\n");
	/* The client got 30 bytes, in the middle of the first ref's packet. */
	strbuf_add(&seen, second.buf, 30);
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len, true), 0);
	assert_int_equal(feed_all(&r, &second, 11, &out), 0);
	assert_int_equal(out.len, second.len - 30);
	assert_memory_equal(out.buf, second.buf + 30, out.len);
	pkt_resume_release(&r);
	strbuf_release(&seen);
	strbuf_release(&second);
	strbuf_release(&out);
}

static void test_nothing_seen(void **state)
{
	struct strbuf second = STRBUF_INIT, out = STRBUF_INIT;
	struct pkt_resume r;

	add_adv(&second, OID1);
	assert_int_equal(pkt_resume_init(&r, "", 0, true), 0);
	assert_int_equal(feed_all(&r, &second, 3, &out), 0);
	assert_int_equal(out.len, second.len);
	assert_memory_equal(out.buf, second.buf, out.len);
	pkt_resume_release(&r);
	strbuf_release(&second);
	strbuf_release(&out);
}

/* Smart HTTP: no advertisement, the answer's packets only. */
static void test_stateless(void **state)
{
	struct strbuf seen = STRBUF_INIT, second = STRBUF_INIT, expect = STRBUF_INIT, out = STRBUF_INIT;
	struct pkt_resume r;

	add_band2(&seen, "Unpacking objects: 10%\r");
	add_band2(&second, "Unpacking objects: 10%\r");
	add_band2(&second, "Unpacking objects: 100%\n");
	add_band2(&expect, "Unpacking objects: 100%\n");
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len, false), 0);
	assert_int_equal(feed_all(&r, &second, 4, &out), 0);
	assert_int_equal(out.len, expect.len);
	assert_memory_equal(out.buf, expect.buf, expect.len);
	pkt_resume_release(&r);
	strbuf_release(&seen);
	strbuf_release(&second);
	strbuf_release(&expect);
	strbuf_release(&out);
}

/* Not pkt-lines after the advertisement: the rest goes out as it comes. */
static void test_garbage_passes_through(void **state)
{
	struct strbuf seen = STRBUF_INIT, second = STRBUF_INIT, out = STRBUF_INIT;
	struct pkt_resume r;

	add_adv(&seen, OID1);
	add_adv(&second, OID1);
	strbuf_addstr(&second, "zzzz not a packet");
	assert_int_equal(pkt_resume_init(&r, seen.buf, seen.len, true), 0);
	assert_int_equal(feed_all(&r, &second, 2, &out), 0);
	assert_int_equal(out.len, strlen("zzzz not a packet"));
	assert_memory_equal(out.buf, "zzzz not a packet", out.len);
	pkt_resume_release(&r);
	strbuf_release(&seen);
	strbuf_release(&second);
	strbuf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_run_again),
		cmocka_unit_test(test_message_twice_in_second_run_goes_out_once_more),
		cmocka_unit_test(test_other_refs_refused),
		cmocka_unit_test(test_cut_inside_a_packet_refused),
		cmocka_unit_test(test_part_of_the_advertisement_seen),
		cmocka_unit_test(test_nothing_seen),
		cmocka_unit_test(test_stateless),
		cmocka_unit_test(test_garbage_passes_through),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
