/* Unit tests for HTTP request heads, chunked framing and Basic credentials (lib/httphead.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/error.h"
#include "lib/httphead.h"

static int parse(struct http_head *h, const char *s, int *status)
{
	size_t n = http_head_end(s, strlen(s));
	return n ? http_head_parse(h, s, n, status) : 1;
}

static void test_head_git_post(void **state)
{
	struct http_head h;
	int status;
	const char *req = "POST /web.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
			  "Authorization: Basic YWxpY2U6Z3JvdmVfeHl6\r\nContent-Type: application/x-git-upload-pack-request\r\n"
			  "Accept-Encoding: deflate, gzip\r\nContent-Encoding: gzip\r\nGit-Protocol: version=2\r\n"
			  "Content-Length: 1234\r\n\r\nBODY";
	assert_int_equal(http_head_end(req, strlen(req)), strlen(req) - 4);
	assert_int_equal(parse(&h, req, &status), 0);
	assert_string_equal(h.method, "POST");
	assert_string_equal(h.target, "/web.git/git-upload-pack");
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.content_length, 1234);
	assert_true(h.gzip);
	assert_false(h.chunked);
	assert_false(h.close);
	assert_string_equal(h.git_protocol, "version=2");
	assert_string_equal(h.authorization, "Basic YWxpY2U6Z3JvdmVfeHl6");
}

static void test_head_incomplete_and_lf(void **state)
{
	struct http_head h;
	int status;
	assert_int_equal(http_head_end("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
	/* Bare LF line ends are taken (RFC 9112 2.2). */
	assert_int_equal(parse(&h, "GET /a.git/info/refs?service=git-upload-pack HTTP/1.0\nConnection: keep-alive\n\n", &status), 0);
	assert_int_equal(h.minor, 0);
	assert_false(h.close);
	assert_int_equal(parse(&h, "GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n", &status), 0);
	assert_true(h.close);
}

static void test_head_bad(void **state)
{
	static const struct { const char *req; int status; } bad[] = {
		{ "GET\r\n\r\n", 400 },
		{ "GET / HTTP/2.0\r\n\r\n", 505 },
		{ "GET / HTTP/1.1 \r\n\r\n", 505 },
		{ "GET x HTTP/1.1\r\n\r\n", 400 },
		{ "GET /a\x01 HTTP/1.1\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
		{ "POST / HTTP/1.1\r\nContent-Encoding: br\r\n\r\n", 415 },
		{ "POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417 },
		{ "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400 },
		{ "VERYLONGMETHOD / HTTP/1.1\r\n\r\n", 501 },
	};
	struct http_head h;
	int status;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		status = 0;
		assert_int_equal(parse(&h, bad[i].req, &status), GROVE_EPROTO);
		assert_int_equal(status, bad[i].status);
	}
}

static void test_head_limits(void **state)
{
	struct http_head h;
	int status;
	size_t size = HTTP_HEAD_MAX * 2;
	char *req = xmalloc(size);
	size_t n = (size_t)snprintf(req, size, "GET /");
	memset(req + n, 'a', HTTP_TARGET_MAX);
	snprintf(req + n + HTTP_TARGET_MAX, size - n - HTTP_TARGET_MAX, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse(&h, req, &status), GROVE_EPROTO);
	assert_int_equal(status, 414);
	n = (size_t)snprintf(req, size, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(req + n, size - n, "X-%d: y\r\n", i);
	snprintf(req + n, size - n, "\r\n");
	assert_int_equal(parse(&h, req, &status), GROVE_EPROTO);
	assert_int_equal(status, 431);
	free(req);
}

static void test_query(void **state)
{
	char v[32];
	assert_int_equal(http_query_param("/a.git/info/refs?service=git-upload-pack", "service", v, sizeof(v)), 0);
	assert_string_equal(v, "git-upload-pack");
	assert_int_equal(http_query_param("/a?x=1&service=git-receive-pack&y", "service", v, sizeof(v)), 0);
	assert_string_equal(v, "git-receive-pack");
	assert_int_equal(http_query_param("/a?services=x", "service", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(http_query_param("/a", "service", v, sizeof(v)), 0);
	assert_int_equal(http_query_param("/a?service=0123456789012345678901234567890123", "service", v, sizeof(v)),
			 GROVE_EPROTO);
}

/* Feeds s in pieces of step bytes; the body decoded into out. */
static int dechunk(const char *s, size_t step, char *out, size_t *outlen, bool *done)
{
	struct http_chunked c = { 0 };
	size_t len = strlen(s), pos = 0;
	*outlen = 0;
	while (pos < len && !c.done) {
		size_t avail = MIN(step, len - pos);
		const char *data;
		size_t dl;
		ssize_t r = http_chunked_take(&c, s + pos, avail, &data, &dl);
		if (r < 0)
			return (int)r;
		assert_true(r > 0);
		if (dl)
			memcpy(out + *outlen, data, dl);
		*outlen += dl;
		pos += (size_t)r;
	}
	*done = c.done;
	return (int)pos;
}

static void test_chunked(void **state)
{
	const char *body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
	char out[64];
	size_t n;
	bool done;
	for (size_t step = 1; step <= 8; step++) {
		assert_int_equal(dechunk(body, step, out, &n, &done), (int)strlen(body) - 4);
		assert_true(done);
		assert_int_equal(n, 23);
		assert_memory_equal(out, "Wikipedia in\r\n\r\nchunks.", 23);
	}
	assert_int_equal(dechunk("3\nabc\n0\n\n", 2, out, &n, &done), 9);
	assert_true(done);
	assert_int_equal(dechunk("3\r\nabcd\r\n0\r\n\r\n", 64, out, &n, &done), GROVE_EPROTO);
	assert_int_equal(dechunk("\r\n", 64, out, &n, &done), GROVE_EPROTO);
	assert_int_equal(dechunk("zz\r\n", 64, out, &n, &done), GROVE_EPROTO);
	assert_int_equal(dechunk("fffffffffffffffffff\r\n", 64, out, &n, &done), GROVE_EPROTO);
	assert_int_equal(dechunk("3\r\nab", 64, out, &n, &done), 5);
	assert_false(done);
}

static void test_basic(void **state)
{
	char u[64], p[64];
	assert_int_equal(http_basic_credentials("Basic YWxpY2U6Z3JvdmVfeHl6", u, sizeof(u), p, sizeof(p)), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "grove_xyz");
	/* "a:b:c": the password may hold colons. */
	assert_int_equal(http_basic_credentials("basic YTpiOmM=", u, sizeof(u), p, sizeof(p)), 0);
	assert_string_equal(u, "a");
	assert_string_equal(p, "b:c");
	assert_int_equal(http_basic_credentials("Bearer abc", u, sizeof(u), p, sizeof(p)), GROVE_EPROTO);
	assert_int_equal(http_basic_credentials("Basic YWxpY2U=", u, sizeof(u), p, sizeof(p)), GROVE_EPROTO);
	assert_int_equal(http_basic_credentials("Basic YW*p", u, sizeof(u), p, sizeof(p)), GROVE_EPROTO);
	assert_int_equal(http_basic_credentials("Basic YWx", u, sizeof(u), p, sizeof(p)), GROVE_EPROTO);
	assert_int_equal(http_basic_credentials("Basic ", u, sizeof(u), p, sizeof(p)), GROVE_EPROTO);
	assert_int_equal(http_basic_credentials("Basic YTphAGI=", u, sizeof(u), p, sizeof(p)), GROVE_EPROTO);
	assert_int_equal(http_basic_credentials("Basic YWxpY2U6Z3JvdmVfeHl6", u, 3, p, sizeof(p)), GROVE_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_git_post), cmocka_unit_test(test_head_incomplete_and_lf),
		cmocka_unit_test(test_head_bad),      cmocka_unit_test(test_head_limits),
		cmocka_unit_test(test_query),         cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_basic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
