/*
 * Unit tests for lib/crc32c and lib/packcache: an entry written is served
 * whole; one damaged, cut short, of another format or too old never is,
 * and is removed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/crc32c.h"
#include "lib/error.h"
#include "lib/packcache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <utime.h>

static void test_crc32c_vectors(void **state)
{
	static const char nine[] = "123456789";
	unsigned char zeros[32] = { 0 }, big[1000];

	/* The check value of CRC-32C (RFC 3720, B.4's). */
	assert_int_equal(crc32c(0, nine, 9), 0xe3069283u);
	assert_int_equal(crc32c(0, zeros, 32), 0x8a9136aau);
	assert_int_equal(crc32c(0, "", 0), 0);
	/* In pieces as in one go, at every alignment. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	uint32_t whole = crc32c(0, big, sizeof(big));
	for (size_t cut = 0; cut < 20; cut++)
		assert_int_equal(crc32c(crc32c(0, big, cut), big + cut, sizeof(big) - cut), whole);
	assert_int_not_equal(crc32c(0, big + 1, sizeof(big) - 1), whole);
}

/* A bit at a time, from the definition: what the fast paths must match. */
static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

/* Long enough for the three-lane path (192 KiB a round), at lengths that
 * end inside a round, on a round's edge and between words, from odd starts. */
static void test_crc32c_long(void **state)
{
	enum { ROUND = 3 << 16 };
	static const size_t lens[] = { ROUND - 1, ROUND, ROUND + 1, 2 * ROUND + 8, 3 * ROUND + 7, 100003 };
	size_t max = 3 * ROUND + 7 + 3;
	unsigned char *big = malloc(max);
	uint32_t x = 12345;

	assert_non_null(big);
	for (size_t i = 0; i < max; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (unsigned char)(x >> 16);
	}
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		for (size_t off = 0; off < 3; off++) {
			uint32_t want = crc_bitwise(big + off, lens[i]);
			assert_int_equal(crc32c(0, big + off, lens[i]), want);
			assert_int_equal(crc32c(crc32c(0, big + off, 5), big + off + 5, lens[i] - 5), want);
		}
	memset(big, 0, max);
	assert_int_equal(crc32c(0, big, max), crc_bitwise(big, max));
	free(big);
}

struct fixture {
	char dir[64];
	struct packcache pc;
	char key[PACKCACHE_KEY_HEX + 1];
	char path[2400];
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *const argv[] = { "pack-objects", "--stdout", NULL };
	snprintf(f->dir, sizeof(f->dir), "/tmp/grove-test-pc-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->pc.dir, sizeof(f->pc.dir), "%s/c", f->dir);
	f->pc.max_bytes = 1 << 20;
	f->pc.max_age = 300;
	packcache_key("/repo.git", argv, "want x\n", 7, f->key);
	snprintf(f->path, sizeof(f->path), "%s/%.2s/%s", f->pc.dir, f->key, f->key);
	*state = f;
	return packcache_prepare(&f->pc);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

/* Writes an entry of n bytes (a pattern) for the fixture's key. */
static void put(struct fixture *f, size_t n)
{
	struct packcache_writer w;
	unsigned char buf[4096];
	int fd = -1;
	assert_int_equal(packcache_writer_start(&f->pc, &w), 0);
	for (size_t off = 0; off < n;) {
		size_t k = MIN(sizeof(buf), n - off);
		for (size_t i = 0; i < k; i++)
			buf[i] = (unsigned char)((off + i) * 31);
		packcache_writer_add(&w, buf, k);
		off += k;
	}
	assert_int_equal(packcache_writer_finish(&f->pc, &w, f->key, &fd), 0);
	assert_true(fd >= 0);
	close(fd);
}

static int open_entry(struct fixture *f, uint64_t *len)
{
	int fd = -1;
	int r = packcache_open(&f->pc, f->key, &fd, len);
	if (fd >= 0)
		close(fd);
	return r;
}

static void test_whole_entry_served(void **state)
{
	struct fixture *f = *state;
	uint64_t len = 0;
	assert_int_equal(open_entry(f, &len), 0);
	put(f, 100000);
	assert_int_equal(open_entry(f, &len), 1);
	assert_int_equal(len, 100000);
	/* An empty pack is an entry too. */
	put(f, 0);
	assert_int_equal(open_entry(f, &len), 1);
	assert_int_equal(len, 0);
}

/* Changes the byte at off (from the end if negative) of the fixture's entry. */
static void damage(struct fixture *f, off_t off)
{
	struct stat st;
	unsigned char b;
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (off < 0)
		off += st.st_size;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_damaged_entry_dropped(void **state)
{
	struct fixture *f = *state;
	uint64_t len;
	struct stat st;

	/* A byte of the pack, of its length, of its CRC. */
	static const off_t where[] = { 0, 50000, 99999, -16, -1 };
	for (size_t i = 0; i < ARRAY_SIZE(where); i++) {
		put(f, 100000);
		damage(f, where[i]);
		assert_int_equal(open_entry(f, &len), 0);
		assert_int_equal(stat(f->path, &st), -1);
	}
	/* Cut short. */
	put(f, 100000);
	assert_int_equal(truncate(f->path, 60000), 0);
	assert_int_equal(open_entry(f, &len), 0);
	assert_int_equal(stat(f->path, &st), -1);
	/* The first format's magic (SHA-256 after it): made again, not read. */
	put(f, 100000);
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pwrite(fd, "GROVEPC1", 8, st.st_size - 24), 8);
	close(fd);
	assert_int_equal(open_entry(f, &len), 0);
}

static void test_old_entry_dropped(void **state)
{
	struct fixture *f = *state;
	struct utimbuf t = { .actime = time(NULL) - 1000, .modtime = time(NULL) - 1000 };
	uint64_t len;
	put(f, 1000);
	assert_int_equal(utime(f->path, &t), 0);
	assert_int_equal(open_entry(f, &len), 0);
	/* Too big for the cache: served once by the writer, not kept. */
	put(f, (1 << 20) + 1);
	assert_int_equal(open_entry(f, &len), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_long),
		cmocka_unit_test_setup_teardown(test_whole_entry_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_entry_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_entry_dropped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
