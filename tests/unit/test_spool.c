/*
 * Unit tests for src/lib/spool.c: bytes pass through a spool to a pipe
 * whole and in order, the writer is never more than max_lag ahead, a
 * reader that goes away ends the writes, a detach gives the descriptor
 * back after what was spooled, a stop closes it at once.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/spool.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};

static void *sink_main(void *arg)
{
	struct sink *k = arg;
	for (;;) {
		if (k->len == k->cap) {
			k->cap = k->cap ? 2 * k->cap : 1 << 16;
			k->buf = xrealloc(k->buf, k->cap);
		}
		ssize_t n = read(k->fd, k->buf + k->len, k->cap - k->len);
		if (n <= 0)
			break;
		k->len += (size_t)n;
	}
	close(k->fd);
	return NULL;
}

static char dir[] = "/tmp/grove-spool-test-XXXXXX";

static int setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return rmdir(dir);
}

static void fill(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((i * 2654435761u + seed) >> 13);
}

static void test_pass_through(void **state)
{
	enum { TOTAL = 5 << 20, LAG = 1 << 20 };
	char *data = xmalloc(TOTAL);
	struct sink k = { 0 };
	struct spool sp;
	pthread_t t;
	int p[2];

	fill(data, TOTAL, 7);
	assert_int_equal(pipe(p), 0);
	k.fd = p[0];
	assert_int_equal(pthread_create(&t, NULL, sink_main, &k), 0);
	assert_int_equal(spool_start(&sp, dir, p[1], LAG), 0);
	for (size_t off = 0, len = 1; off < TOTAL; off += len, len = len * 3 % 200003 + 1) {
		len = MIN(len, TOTAL - off);
		assert_int_equal(spool_write(&sp, data + off, len), 0);
		pthread_mutex_lock(&sp.mu);
		/* It waited for room before it wrote. */
		assert_true(sp.written - sp.fed < LAG + len);
		pthread_mutex_unlock(&sp.mu);
	}
	spool_end(&sp);
	spool_finish(&sp);
	pthread_join(t, NULL);
	assert_int_equal(k.len, TOTAL);
	assert_memory_equal(k.buf, data, TOTAL);
	free(k.buf);
	free(data);
}

static void test_reader_gone(void **state)
{
	char chunk[4096];
	struct spool sp;
	int p[2], ret = 0;

	memset(chunk, 'x', sizeof(chunk));
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	assert_int_equal(spool_start(&sp, dir, p[1], 64 << 10), 0);
	/* The feeder's first write fails; the lag bound makes the writer see it. */
	for (int i = 0; i < 1000 && !ret; i++)
		ret = spool_write(&sp, chunk, sizeof(chunk));
	assert_int_equal(ret, GROVE_ECANCELLED);
	spool_end(&sp);
	spool_finish(&sp);
}

static void test_detach(void **state)
{
	struct sink k = { 0 };
	struct spool sp;
	pthread_t t;
	int p[2];

	assert_int_equal(pipe(p), 0);
	k.fd = p[0];
	assert_int_equal(pthread_create(&t, NULL, sink_main, &k), 0);
	assert_int_equal(spool_start(&sp, dir, p[1], 1 << 20), 0);
	assert_int_equal(spool_write(&sp, "spooled ", 8), 0);
	int out = spool_detach(&sp);
	assert_int_equal(out, p[1]);
	spool_finish(&sp);
	assert_int_equal(write(out, "direct", 6), 6);
	close(out);
	pthread_join(t, NULL);
	assert_int_equal(k.len, 14);
	assert_memory_equal(k.buf, "spooled direct", 14);
	free(k.buf);
}

static void test_stop(void **state)
{
	struct sink k = { 0 };
	struct spool sp;
	pthread_t t;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(spool_start(&sp, dir, p[1], 1 << 20), 0);
	spool_stop(&sp);
	spool_finish(&sp);
	/* The write end is closed: the reader sees the end, and nothing. */
	k.fd = p[0];
	assert_int_equal(pthread_create(&t, NULL, sink_main, &k), 0);
	pthread_join(t, NULL);
	assert_int_equal(k.len, 0);
	free(k.buf);
}

static void test_no_dir(void **state)
{
	struct spool sp;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(spool_start(&sp, "/nonexistent/grove-spool", p[1], 1 << 20), GROVE_EIO);
	assert_non_null(strstr(error_msg(), "cannot make a spool file"));
	/* Not taken: the caller still writes to it. */
	assert_int_equal(write(p[1], "x", 1), 1);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_through), cmocka_unit_test(test_reader_gone), cmocka_unit_test(test_detach),
		cmocka_unit_test(test_stop),         cmocka_unit_test(test_no_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
