/* Unit tests for the bounded gzip inflater of smart HTTP request bodies (lib/gunzip.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/error.h"
#include "lib/gunzip.h"

/* text, gzipped into out: its length. */
static size_t gz(const char *text, size_t len, char *out, size_t size)
{
	z_stream z = { 0 };
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)text;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)size;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t n = size - z.avail_out;
	deflateEnd(&z);
	return n;
}

/* Feeds in, step bytes at a time, into out: what inflated, or an error. */
static ssize_t feed(struct gunzip *g, const char *in, size_t len, size_t step, char *out, size_t size)
{
	size_t made = 0;
	for (size_t pos = 0; pos < len;) {
		size_t piece = MIN(step, len - pos), left = piece;
		const char *p = in + pos;
		while (left) {
			ssize_t n = gunzip_take(g, &p, &left, out + made, MIN(size - made, (size_t)5));
			if (n < 0)
				return n;
			made += (size_t)n;
			if (!n && left == piece)
				return GROVE_EINTERNAL;   /* took nothing, made nothing: stuck */
			piece = left;
		}
		pos = (size_t)(p - in);
	}
	return (ssize_t)made;
}

static void test_roundtrip_in_pieces(void **state)
{
	const char *text = "0032have 0000000000000000000000000000000000000000\n0009done\n0000";
	char z[256], out[256];
	size_t zl = gz(text, strlen(text), z, sizeof(z));
	for (size_t step = 1; step <= zl; step += 7) {
		struct gunzip g;
		assert_int_equal(gunzip_init(&g, 1000), 0);
		assert_int_equal(feed(&g, z, zl, step, out, sizeof(out)), (ssize_t)strlen(text));
		assert_true(g.end);
		assert_memory_equal(out, text, strlen(text));
		gunzip_release(&g);
	}
}

static void test_bomb_stops_at_max(void **state)
{
	static char text[1 << 20], z[1 << 16], out[1 << 20];
	memset(text, '0', sizeof(text));
	size_t zl = gz(text, sizeof(text), z, sizeof(z));
	struct gunzip g;
	assert_true(zl < 4096);
	assert_int_equal(gunzip_init(&g, 65536), 0);
	assert_int_equal(feed(&g, z, zl, zl, out, sizeof(out)), GROVE_ETOOBIG);
	assert_true(g.total <= 65536 + 5);
	gunzip_release(&g);
}

static void test_malformed_and_trailing(void **state)
{
	char z[256], out[256];
	struct gunzip g;
	assert_int_equal(gunzip_init(&g, 1000), 0);
	assert_int_equal(feed(&g, "not gzip at all", 15, 15, out, sizeof(out)), GROVE_EPROTO);
	gunzip_release(&g);

	size_t zl = gz("abc", 3, z, sizeof(z));
	memcpy(z + zl, "junk", 4);
	assert_int_equal(gunzip_init(&g, 1000), 0);
	assert_int_equal(feed(&g, z, zl + 4, zl + 4, out, sizeof(out)), GROVE_EPROTO);
	gunzip_release(&g);

	/* Cut short: no error from the inflater, but not at its end either. */
	assert_int_equal(gunzip_init(&g, 1000), 0);
	assert_true(feed(&g, z, zl - 3, zl - 3, out, sizeof(out)) >= 0);
	assert_false(g.end);
	gunzip_release(&g);
	gunzip_release(&g);   /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_in_pieces),
		cmocka_unit_test(test_bomb_stops_at_max),
		cmocka_unit_test(test_malformed_and_trailing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
