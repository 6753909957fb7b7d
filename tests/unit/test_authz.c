/*
 * Unit tests for the gate's platform integrations: src/gate/authz.c (the
 * authorization API's answer parser and the shared answer cache) and
 * src/gate/archive.c (signed archive URLs). libgrove.a holds only src/lib,
 * so the modules are compiled into this test directly.
 */
#include "../../src/gate/authz.c"
#include "../../src/gate/metrics.c"
#include "../../src/gate/archive.c"

#include <setjmp.h>
#include <cmocka.h>

#define SECRET "0123456789abcdef0123456789abcdef"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

static int parse(const char *s, struct authz_answer *a)
{
	return authz_parse_answer(s, strlen(s), a);
}

static void test_parse_answers(void **state)
{
	struct authz_answer a;
	(void)state;
	assert_int_equal(parse("{\"allowed\":true,\"user\":\"alice\"}", &a), 0);
	assert_true(a.allowed);
	assert_string_equal(a.user, "alice");
	assert_int_equal(parse("{\"allowed\":false,\"message\":\"no\\nway\\u0007\"}", &a), 0);
	assert_false(a.allowed);
	/* shown on one line: control characters become spaces */
	assert_string_equal(a.message, "no way ");
	assert_int_equal(parse("{\"allowed\":false,\"user\":null}", &a), 0);
	assert_int_equal(parse("{\"allowed\":\"yes\",\"user\":\"alice\"}", &a), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "\"allowed\""));
	assert_int_equal(parse("{\"allowed\":true}", &a), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "names no \"user\""));
	assert_int_equal(parse("{\"allowed\":true,\"user\":\"al ice\"}", &a), GROVE_EINVAL);
	assert_int_equal(parse("{\"allowed\":true,\"user\":\"x';DROP TABLE users;--\"}", &a), GROVE_EINVAL);
	assert_int_equal(parse("{\"allowed\":true,\"user\":1}", &a), GROVE_EINVAL);
	assert_int_equal(parse("[true]", &a), GROVE_EINVAL);
	assert_int_equal(parse("{\"allowed\":true,\"allowed\":false,\"user\":\"a\"}", &a), GROVE_EINVAL);
	assert_int_equal(parse("", &a), GROVE_EINVAL);
	assert_int_equal(authz_parse_answer("{\"allowed\":true,\"user\":\"a\"}", 5, &a), GROVE_EINVAL);
	/* a long message is cut, not overflowed */
	char big[2000];
	int n = snprintf(big, sizeof(big), "{\"allowed\":false,\"message\":\"");
	memset(big + n, 'x', 1000);
	strlcpy_(big + n + 1000, "\"}", sizeof(big) - (size_t)n - 1000);
	assert_int_equal(parse(big, &a), 0);
	assert_int_equal(strlen(a.message), AUTHZ_MESSAGE_MAX);
}

static struct authz *cache_of(int ttl, int entries)
{
	struct authz *z = NULL;
	struct authz_opts o = { .url = "http://127.0.0.1:1/allowed", .timeout_s = 1, .cache_ttl_s = ttl,
				.cache_entries = entries };
	assert_int_equal(authz_new(&z, &o), 0);
	return z;
}

static void test_cache(void **state)
{
	struct authz *z = cache_of(30, 16);
	struct authz_answer in = { .allowed = true, .user = "alice" }, out;
	(void)state;
	assert_false(cache_get(z, "fp\nlogin\n", fnv1a64("fp\nlogin\n"), &out));
	cache_put(z, "fp\nlogin\n", fnv1a64("fp\nlogin\n"), &in);
	assert_true(cache_get(z, "fp\nlogin\n", fnv1a64("fp\nlogin\n"), &out));
	assert_true(out.allowed && out.cached);
	assert_string_equal(out.user, "alice");
	/* a hash collision with another key is not a hit */
	assert_false(cache_get(z, "other", fnv1a64("fp\nlogin\n"), &out));
	/* refusals are kept for AUTHZ_DENY_TTL_S, not the whole ttl */
	struct authz_answer no = { .allowed = false };
	cache_put(z, "fp\nwrite\napp", fnv1a64("fp\nwrite\napp"), &no);
	struct authz_entry *b = &z->shm->entries[(fnv1a64("fp\nwrite\napp") % z->shm->nbuckets) * AUTHZ_WAYS];
	bool found = false;
	for (int i = 0; i < AUTHZ_WAYS; i++)
		if (!strcmp(b[i].key, "fp\nwrite\napp")) {
			found = true;
			assert_true(b[i].expires_ms - b[i].stored_ms == AUTHZ_DENY_TTL_S * 1000);
		}
	assert_true(found);
	/* many more keys than entries: the table stays bounded, the newest stay */
	char key[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cache_put(z, key, fnv1a64(key), &in);
	}
	assert_true(cache_get(z, "k999", fnv1a64("k999"), &out));
	authz_free(z);
}

static void test_cache_off_and_unreachable(void **state)
{
	struct authz *z = cache_of(0, 16);
	struct authz_answer out;
	(void)state;
	assert_null(z->shm);
	/* nothing listens on port 1: unavailable, said so, never "not allowed" */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	assert_int_equal(authz_check(z, "SHA256:x", "git-upload-pack", "app", &out), GROVE_EUNAVAIL);
	assert_non_null(strstr(error_msg(), "the authorization service cannot be reached"));
	authz_free(z);
}

static void test_archive_urls(void **state)
{
	struct strbuf url = STRBUF_INIT;
	int64_t now = 1700000000;
	char sig[65], exp[24];
	(void)state;
	archive_url_make("http://gate:8080/", SECRET, "web", COMMIT, now + 60, &url);
	assert_true(!strncmp(url.buf, "http://gate:8080/archive/web/" COMMIT ".tar.gz?expires=1700000060&signature=", 94));
	strlcpy_(sig, strstr(url.buf, "signature=") + 10, sizeof(sig));
	snprintf(exp, sizeof(exp), "%lld", (long long)(now + 60));
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, exp, sig, now), 0);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, exp, sig, now + 61), GROVE_EAUTH);
	assert_non_null(strstr(error_msg(), "expired"));
	assert_int_equal(archive_url_check(SECRET, "api", COMMIT, exp, sig, now), GROVE_EAUTH);
	assert_non_null(strstr(error_msg(), "signature is wrong"));
	assert_int_equal(archive_url_check("another-secret-0123456789", "web", COMMIT, exp, sig, now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, "1700000061", sig, now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, "-1", sig, now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, "", sig, now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, "99999999999999999999999", sig, now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, exp, "abc", now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, NULL, sig, now), GROVE_EAUTH);
	assert_int_equal(archive_url_check(SECRET, "web", COMMIT, exp, NULL, now), GROVE_EAUTH);
	strbuf_release(&url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_answers),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_off_and_unreachable),
		cmocka_unit_test(test_archive_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
