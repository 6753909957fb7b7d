/*
 * Unit tests for src/lib/auth.c: call tokens made and checked, every reason
 * a token is refused, and loading and generating secrets.
 */
#include "lib/common.h"
#include "lib/auth.h"
#include "lib/error.h"

#include <setjmp.h>
#include <cmocka.h>

#define SECRET "correct horse battery staple"
#define METHOD "/grove.v1.RepositoryService/CreateRepository"
#define NOW INT64_C(1700000000)

/* HMAC-SHA256(SECRET, "v1.1700000000." METHOD), from `openssl dgst -sha256 -hmac`. */
#define KNOWN_MAC "12bf9056f8b5d9e9069ee0dc9b79bff79ce361ba4f447f2e53f416b338a5d676"

static int check(const char *token, int64_t now)
{
	error_clear();
	return auth_token_check(SECRET, METHOD, token, strlen(token), now);
}

/* Asserts that token is refused with GROVE_EAUTH and reason in the message. */
static void expect_refused(const char *token, size_t len, int64_t now, const char *reason)
{
	error_clear();
	int ret = auth_token_check(SECRET, METHOD, token, len, now);
	if (ret != GROVE_EAUTH)
		fail_msg("token \"%.*s\" gave %d, want GROVE_EAUTH", (int)len, token ? token : "", ret);
	if (!strstr(error_msg(), reason))
		fail_msg("token \"%.*s\": message \"%s\" lacks \"%s\"", (int)len, token ? token : "",
			 error_msg(), reason);
}

static void test_known_answer(void **state)
{
	char tok[AUTH_TOKEN_MAX];
	auth_token_make(SECRET, METHOD, NOW, tok);
	assert_string_equal(tok, "v1.1700000000." KNOWN_MAC);
	assert_int_equal(check(tok, NOW), 0);
}

static void test_make_then_check(void **state)
{
	static const char *methods[] = { METHOD, "/grove.v1.SSHService/SSHReceivePack", "", "m" };
	static const int64_t times[] = { 0, 1, NOW, INT64_C(4102444800) };
	char tok[AUTH_TOKEN_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(times); j++) {
			auth_token_make(SECRET, methods[i], times[j], tok);
			assert_true(strlen(tok) < AUTH_TOKEN_MAX);
			assert_true(skip_prefix(tok, "v1.", NULL));
			error_clear();
			if (auth_token_check(SECRET, methods[i], tok, strlen(tok), times[j]))
				fail_msg("fresh token for \"%s\" at %lld refused: %s", methods[i],
					 (long long)times[j], error_msg());
		}
	}
}

static void test_skew_window(void **state)
{
	char tok[AUTH_TOKEN_MAX];
	auth_token_make(SECRET, METHOD, NOW, tok);
	/* Exactly AUTH_MAX_SKEW either way is still accepted. */
	assert_int_equal(check(tok, NOW + AUTH_MAX_SKEW), 0);
	assert_int_equal(check(tok, NOW - AUTH_MAX_SKEW), 0);
	/* One second more is stale: a token from the past ... */
	expect_refused(tok, strlen(tok), NOW + AUTH_MAX_SKEW + 1, "stale");
	assert_non_null(strstr(error_msg(), "-301s"));
	/* ... and one from the future. */
	expect_refused(tok, strlen(tok), NOW - AUTH_MAX_SKEW - 1, "stale");
	assert_non_null(strstr(error_msg(), "301s"));
	expect_refused(tok, strlen(tok), NOW + 86400, "stale");
	expect_refused(tok, strlen(tok), 0, "stale");
}

static void test_wrong_secret(void **state)
{
	char tok[AUTH_TOKEN_MAX];
	auth_token_make("another secret entirely", METHOD, NOW, tok);
	expect_refused(tok, strlen(tok), NOW, "wrong");
	/* A secret that is a prefix of the right one is still wrong. */
	auth_token_make("correct horse battery stapl", METHOD, NOW, tok);
	expect_refused(tok, strlen(tok), NOW, "wrong");
}

static void test_wrong_method(void **state)
{
	char tok[AUTH_TOKEN_MAX];
	auth_token_make(SECRET, "/grove.v1.RepositoryService/RemoveRepository", NOW, tok);
	expect_refused(tok, strlen(tok), NOW, "wrong");
	auth_token_make(SECRET, METHOD "x", NOW, tok);
	expect_refused(tok, strlen(tok), NOW, "wrong");
}

static void test_tampered(void **state)
{
	char tok[AUTH_TOKEN_MAX];
	auth_token_make(SECRET, METHOD, NOW, tok);

	/* Another time with the old MAC. */
	char *moved = xasprintf("v1.1700000001.%s", KNOWN_MAC);
	expect_refused(moved, strlen(moved), NOW, "wrong");
	free(moved);

	/* Each flipped hex digit of the MAC is noticed. */
	size_t len = strlen(tok);
	for (size_t i = len - 64; i < len; i++) {
		char saved = tok[i];
		tok[i] = saved == '0' ? '1' : '0';
		expect_refused(tok, len, NOW, "wrong");
		tok[i] = saved;
	}
	/* The same MAC in uppercase is not the token that was made. */
	for (size_t i = len - 64; i < len; i++)
		if (tok[i] >= 'a' && tok[i] <= 'f')
			tok[i] = (char)(tok[i] - 'a' + 'A');
	expect_refused(tok, len, NOW, "wrong");
}

static void test_missing(void **state)
{
	expect_refused(NULL, 0, NOW, "missing");
	expect_refused("", 0, NOW, "missing");
	assert_non_null(strstr(error_msg(), AUTH_METADATA_KEY));
	/* A token of length 0 is missing even if the pointer has bytes. */
	expect_refused("v1.1700000000." KNOWN_MAC, 0, NOW, "missing");
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"x",
		"v1",
		"v1.",
		"v1..",
		"v2.1700000000." KNOWN_MAC,
		"V1.1700000000." KNOWN_MAC,
		"1700000000." KNOWN_MAC,                 /* no version */
		"v1." KNOWN_MAC,                         /* no time */
		"v1.1700000000",                         /* no MAC */
		"v1.1700000000.",
		"v1.1700000000." KNOWN_MAC "0",          /* extra bytes */
		"v1.1700000000." KNOWN_MAC ".",
		"v1.1700000000..12bf9056f8b5d9e9069ee0dc9b79bff79ce361ba4f447f2e53f416b338a5d676",
		"v1.17000x0000." KNOWN_MAC,
		"v1.abc." KNOWN_MAC,
		"v1.99999999999999999999." KNOWN_MAC,    /* out of range */
		/* Signs and blanks are not digits: only the canonical form is taken. */
		"v1.+1700000000." KNOWN_MAC,
		"v1. 1700000000." KNOWN_MAC,
		"v1.-1." KNOWN_MAC,
		"v1.-9223372036854775808." KNOWN_MAC,
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refused(bad[i], strlen(bad[i]), NOW, "malformed");

	/* A MAC one digit short (the last digit dropped). */
	char tok[AUTH_TOKEN_MAX];
	auth_token_make(SECRET, METHOD, NOW, tok);
	expect_refused(tok, strlen(tok) - 1, NOW, "malformed");

	/* "unknown version" says which part is wrong. */
	expect_refused("v2.1.x", 6, NOW, "version");
}

static void test_embedded_nul(void **state)
{
	char tok[AUTH_TOKEN_MAX + 8];
	auth_token_make(SECRET, METHOD, NOW, tok);
	size_t len = strlen(tok);
	/* The valid token followed by a NUL and more: token_len covers all of it. */
	tok[len] = '\0';
	memcpy(tok + len + 1, "abc", 3);
	expect_refused(tok, len + 4, NOW, "malformed");
	/* A NUL inside the MAC. */
	auth_token_make(SECRET, METHOD, NOW, tok);
	tok[len - 10] = '\0';
	expect_refused(tok, len, NOW, "malformed");
	/* A lone NUL. */
	expect_refused("\0", 1, NOW, "malformed");
}

static void test_too_long(void **state)
{
	char *big = xmalloc(4096);
	memset(big, '1', 4096);
	memcpy(big, "v1.", 3);
	expect_refused(big, 4096, NOW, "malformed");
	/* A huge length is rejected without reading past the limit. */
	expect_refused(big, AUTH_TOKEN_MAX, NOW, "malformed");
	free(big);
}

/* Writes text to a new temp file; returns its malloc'd path. */
static char *temp_file(const char *text, size_t len)
{
	char *path = xstrdup("/tmp/grove-test-secret.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static void test_secret_load(void **state)
{
	struct {
		const char *text;
		const char *want;   /* NULL: refused */
	} cases[] = {
		{ "0123456789abcdef0123\n", "0123456789abcdef0123" },
		{ "0123456789abcdef0123", "0123456789abcdef0123" },
		{ "0123456789abcdef\r\nsecond line that is also long\n", "0123456789abcdef" },
		{ "first-line-secret!!\nsecond\n", "first-line-secret!!" },
		{ "0123456789abcdef", "0123456789abcdef" },   /* exactly 16 */
		{ "0123456789abcde\n", NULL },                /* 15 */
		{ "short\n", NULL },
		{ "", NULL },
		{ "\n0123456789abcdef0123\n", NULL },         /* the first line is empty */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *path = temp_file(cases[i].text, strlen(cases[i].text));
		char *out = (char *)"sentinel";
		error_clear();
		int ret = auth_secret_load(path, &out);
		if (cases[i].want) {
			if (ret)
				fail_msg("case %zu refused: %s", i, error_msg());
			assert_string_equal(out, cases[i].want);
			free(out);
		} else {
			assert_int_equal(ret, GROVE_EINVAL);
			assert_null(out);
			assert_non_null(strstr(error_msg(), "16"));
			assert_non_null(strstr(error_msg(), path));
		}
		unlink(path);
		free(path);
	}
}

static void test_secret_load_missing(void **state)
{
	char *out = (char *)"sentinel";
	error_clear();
	assert_int_equal(auth_secret_load("/nonexistent/grove/secret", &out), GROVE_ENOTFOUND);
	assert_null(out);
	assert_non_null(strstr(error_msg(), "/nonexistent/grove/secret"));
}

static void test_secret_load_then_tokens(void **state)
{
	/* A loaded secret makes the same tokens as the literal one. */
	char *path = temp_file(SECRET "\n", strlen(SECRET) + 1);
	char *secret = NULL;
	char tok[AUTH_TOKEN_MAX];
	assert_int_equal(auth_secret_load(path, &secret), 0);
	auth_token_make(secret, METHOD, NOW, tok);
	assert_string_equal(tok, "v1.1700000000." KNOWN_MAC);
	free(secret);
	unlink(path);
	free(path);
}

static void test_secret_generate(void **state)
{
	char *a = auth_secret_generate();
	char *b = auth_secret_generate();
	assert_int_equal(strlen(a), 64);
	assert_int_equal(strlen(b), 64);
	for (int i = 0; i < 64; i++) {
		assert_non_null(strchr("0123456789abcdef", a[i]));
		assert_non_null(strchr("0123456789abcdef", b[i]));
	}
	assert_string_not_equal(a, b);
	/* A generated secret is good for tokens. */
	char tok[AUTH_TOKEN_MAX];
	auth_token_make(a, METHOD, NOW, tok);
	assert_int_equal(auth_token_check(a, METHOD, tok, strlen(tok), NOW), 0);
	assert_int_equal(auth_token_check(b, METHOD, tok, strlen(tok), NOW), GROVE_EAUTH);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_make_then_check),
		cmocka_unit_test(test_skew_window),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_wrong_method),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_secret_load),
		cmocka_unit_test(test_secret_load_missing),
		cmocka_unit_test(test_secret_load_then_tokens),
		cmocka_unit_test(test_secret_generate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
