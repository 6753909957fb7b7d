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

/*
 * Resumes seen (advertised or not) from second, fed in pieces of step
 * bytes: the feed must say want, and the client get expect (NULL: nothing
 * checked but want).
 */
static void check_resume(const struct strbuf *seen, bool advertised, const struct strbuf *second, size_t step,
			 int want, const struct strbuf *expect)
{
	struct pkt_resume r;
	struct strbuf out = STRBUF_INIT;

	assert_int_equal(pkt_resume_init(&r, seen->buf ? seen->buf : "", seen->len, advertised), 0);
	assert_int_equal(feed_all(&r, second, step, &out), want);
	if (expect) {
		assert_int_equal(out.len, expect->len);
		if (expect->len)
			assert_memory_equal(out.buf, expect->buf, expect->len);
	}
	pkt_resume_release(&r);
	strbuf_release(&out);
}

struct bufs {
	struct strbuf seen, second, expect;
};

static int bufs_setup(void **state)
{
	*state = xcalloc(1, sizeof(struct bufs));
	return 0;
}

static int bufs_teardown(void **state)
{
	struct bufs *b = *state;
	strbuf_release(&b->seen);
	strbuf_release(&b->second);
	strbuf_release(&b->expect);
	free(b);
	return 0;
}

static void test_same_run_again(void **state)
{
	struct bufs *b = *state;

	add_adv(&b->seen, OID1);
	add_band2(&b->seen, "pre-receive: checking\n");
	add_band2(&b->seen, "Resolving deltas: 40%\r");
	add_adv(&b->second, OID1);
	add_band2(&b->second, "pre-receive: checking\n");
	add_band2(&b->second, "Resolving deltas: 100%\n");
	pkt_add_sideband(&b->second, 1, "0017ok refs/heads/main\n0000", 27);
	pkt_add_flush(&b->second);
	/* The client gets only what it had not: the new progress and the report. */
	add_band2(&b->expect, "Resolving deltas: 100%\n");
	pkt_add_sideband(&b->expect, 1, "0017ok refs/heads/main\n0000", 27);
	pkt_add_flush(&b->expect);
	for (size_t step = 1; step <= b->second.len; step = step * 2 + 1)
		check_resume(&b->seen, true, &b->second, step, 0, &b->expect);
}

static void test_message_twice_in_second_run_goes_out_once_more(void **state)
{
	struct bufs *b = *state;

	add_adv(&b->seen, OID1);
	add_band2(&b->seen, "hello\n");
	add_adv(&b->second, OID1);
	add_band2(&b->second, "hello\n");
	add_band2(&b->second, "hello\n");
	add_band2(&b->expect, "hello\n");
	check_resume(&b->seen, true, &b->second, 7, 0, &b->expect);
}

static void test_other_refs_refused(void **state)
{
	struct bufs *b = *state;

	add_adv(&b->seen, OID1);
	add_adv(&b->second, OID3);
	check_resume(&b->seen, true, &b->second, 5, GROVE_EPRECOND, &b->expect);
}

static void test_cut_inside_a_packet_refused(void **state)
{
	struct bufs *b = *state;
	struct pkt_resume r;

	add_adv(&b->seen, OID1);
	add_band2(&b->seen, "Resolving deltas: 40%\r");
	assert_int_equal(pkt_resume_init(&r, b->seen.buf, b->seen.len - 3, true), GROVE_EPRECOND);
	pkt_resume_release(&r);
	assert_int_equal(pkt_resume_init(&r, b->seen.buf, b->seen.len - 3, false), GROVE_EPRECOND);
	pkt_resume_release(&r);
}

static void test_part_of_the_advertisement_seen(void **state)
{
	struct bufs *b = *state;

	add_adv(&b->second, OID1);
	add_band2(&b->second, "hello\n");
	/* The client got 30 bytes, in the middle of the first ref's packet. */
	strbuf_add(&b->seen, b->second.buf, 30);
	strbuf_add(&b->expect, b->second.buf + 30, b->second.len - 30);
	check_resume(&b->seen, true, &b->second, 11, 0, &b->expect);
}

static void test_nothing_seen(void **state)
{
	struct bufs *b = *state;

	add_adv(&b->second, OID1);
	add_adv(&b->expect, OID1);
	check_resume(&b->seen, true, &b->second, 3, 0, &b->expect);
}

/* Smart HTTP: no advertisement, the answer's packets only. */
static void test_stateless(void **state)
{
	struct bufs *b = *state;

	add_band2(&b->seen, "Unpacking objects: 10%\r");
	add_band2(&b->second, "Unpacking objects: 10%\r");
	add_band2(&b->second, "Unpacking objects: 100%\n");
	add_band2(&b->expect, "Unpacking objects: 100%\n");
	check_resume(&b->seen, false, &b->second, 4, 0, &b->expect);
}

/* Not pkt-lines after the advertisement: the rest goes out as it comes. */
static void test_garbage_passes_through(void **state)
{
	struct bufs *b = *state;

	add_adv(&b->seen, OID1);
	add_adv(&b->second, OID1);
	strbuf_addstr(&b->second, "zzzz not a packet");
	strbuf_addstr(&b->expect, "zzzz not a packet");
	check_resume(&b->seen, true, &b->second, 2, 0, &b->expect);
}

#define T(name) cmocka_unit_test_setup_teardown(name, bufs_setup, bufs_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_same_run_again),
		T(test_message_twice_in_second_run_goes_out_once_more),
		T(test_other_refs_refused),
		T(test_cut_inside_a_packet_refused),
		T(test_part_of_the_advertisement_seen),
		T(test_nothing_seen),
		T(test_stateless),
		T(test_garbage_passes_through),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
