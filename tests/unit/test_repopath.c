/*
 * Unit tests for src/lib/repopath.c: which relative paths and storage names
 * are valid, and that the hashed layout keeps every repository under its
 * root at a location derived only from the SHA-256 of its path.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/repopath.h"

#include <setjmp.h>
#include <cmocka.h>

static void test_validate_accepts(void **state)
{
	static const char *good[] = {
		"a.git", "group/sub/app.git", "a-b_c.d", "a", "a/b", "x.y.z", "a~b", "a-",
		"a/b-c/d~e", "...", "..a", "a..", ".a/.b", "a@b+c=d:e,f%g", "A/B/C.git", "0/1/2",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		error_clear();
		if (repopath_validate(good[i]) != 0)
			fail_msg("rejected \"%s\": %s", good[i], error_msg());
	}
}

static void expect_reject(const char *path, const char *why)
{
	error_clear();
	int ret = repopath_validate(path);
	if (ret != GROVE_EINVAL)
		fail_msg("\"%s\" gave %d, want GROVE_EINVAL", path, ret);
	if (why && !strstr(error_msg(), why))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", path, error_msg(), why);
}

static void test_validate_empty_and_absolute(void **state)
{
	expect_reject("", "empty");
	expect_reject(NULL, "empty");
	expect_reject("/abs", "relative");
	expect_reject("/", "relative");
	expect_reject("//a", "relative");
}

static void test_validate_dot_components(void **state)
{
	expect_reject("..", "'..'");
	expect_reject(".", "'.'");
	expect_reject("../x", "'..'");
	expect_reject("a/../b", "'..'");
	expect_reject("a/..", "'..'");
	expect_reject("a/./b", "'.'");
	expect_reject("./a", "'.'");
	expect_reject("a/.", "'.'");
}

static void test_validate_empty_components(void **state)
{
	expect_reject("a//b", "empty component");
	expect_reject("a/", "empty component");
	expect_reject("a/b/", "empty component");
}

static void test_validate_dash_tilde(void **state)
{
	expect_reject("-a", "'-'");
	expect_reject("--upload-pack=x", "'-'");
	expect_reject("a/-b", "'-'");
	expect_reject("a/b/-c.git", "'-'");
	expect_reject("~", "'~'");
	expect_reject("~root/x", "'~'");
	expect_reject("a/~b", "'~'");
}

static void test_validate_bad_bytes(void **state)
{
	static const char *bad[] = {
		"a b", " a", "a ", "a\tb", "a\nb", "a\rb", "\x01", "a\x1f", "a\x7f", "caf\xc3\xa9",
		"\x80", "\xff", "a\"b", "a'b", "a\\b", "a`b",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_reject(bad[i], NULL);
	/* The message names the offending byte. */
	expect_reject("ab\x01", "0x01");
	expect_reject("ab c", "0x20");
	expect_reject("a\\b", "'\\'");
	expect_reject("a'b", "'''");
}

static void test_validate_length(void **state)
{
	char *p = xmalloc(REPOPATH_MAX + 2);

	/* 1024 bytes: the longest accepted, also with components. */
	memset(p, 'a', REPOPATH_MAX);
	p[REPOPATH_MAX] = '\0';
	assert_int_equal(repopath_validate(p), 0);
	for (size_t i = 100; i < REPOPATH_MAX; i += 100)
		p[i] = '/';
	assert_int_equal(repopath_validate(p), 0);

	/* 1025 bytes: refused. */
	memset(p, 'a', REPOPATH_MAX + 1);
	p[REPOPATH_MAX + 1] = '\0';
	error_clear();
	assert_int_equal(repopath_validate(p), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "1024"));
	free(p);
}

static void test_storage_name(void **state)
{
	static const char *good[] = { "default", "a", "Z", "0", "store-1", "s.t_u-v", "A9.b" };
	static const char *bad[] = { "", "-a", ".a", "_a", "a b", "a/b", "a\\b", "a:b", "a\n", "\xc3\xa9",
				     "..", "a@b" };
	char name[STORAGE_NAME_MAX + 2];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (storage_name_validate(good[i]))
			fail_msg("rejected storage name \"%s\": %s", good[i], error_msg());
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (storage_name_validate(bad[i]) != GROVE_EINVAL)
			fail_msg("accepted storage name \"%s\"", bad[i]);
	assert_int_equal(storage_name_validate(NULL), GROVE_EINVAL);

	memset(name, 'n', STORAGE_NAME_MAX);
	name[STORAGE_NAME_MAX] = '\0';
	assert_int_equal(storage_name_validate(name), 0);
	name[STORAGE_NAME_MAX] = 'n';
	name[STORAGE_NAME_MAX + 1] = '\0';
	error_clear();
	assert_int_equal(storage_name_validate(name), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "64"));
}

static void test_map_layout(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	/* sha256("app.git"), as printed by `printf app.git | sha256sum`. */
	assert_int_equal(repopath_map("/srv/grove", "app.git", &sb), 0);
	assert_string_equal(sb.buf,
			    "/srv/grove/@hashed/a9/73/"
			    "a973a636344c8f970b4906271cb801d93dea85c86d752bf42e2a807a0e292754.git");
	strbuf_reset(&sb);
	assert_int_equal(repopath_map("root", "group/sub/app.git", &sb), 0);
	assert_string_equal(sb.buf,
			    "root/@hashed/b6/60/"
			    "b660d7d2ec42e0de8976a9988594663e0142de026f998c95fae99f6c70ca78fb.git");
	strbuf_release(&sb);
}

static void test_map_shape(void **state)
{
	struct strbuf sb;
	const char *rest, *hex;
	strbuf_init(&sb, 0);
	assert_int_equal(repopath_map("/data", "x/y/z", &sb), 0);
	assert_true(skip_prefix(sb.buf, "/data/@hashed/", &rest));
	/* xx/yy/<64 hex>.git with xx and yy the first four hex digits. */
	assert_int_equal(strlen(rest), 2 + 1 + 2 + 1 + 64 + 4);
	assert_int_equal(rest[2], '/');
	assert_int_equal(rest[5], '/');
	hex = rest + 6;
	for (int i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", hex[i]));
	assert_memory_equal(rest, hex, 2);
	assert_memory_equal(rest + 3, hex + 2, 2);
	assert_string_equal(hex + 64, ".git");
	strbuf_release(&sb);
}

static void test_map_stable_and_distinct(void **state)
{
	static const char *paths[] = { "a.git", "a.git2", "b.git", "A.git", "a/b", "a/b.git", "ab" };
	struct strbuf out[ARRAY_SIZE(paths)], again;

	strbuf_init(&again, 0);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		strbuf_init(&out[i], 0);
		assert_int_equal(repopath_map("/r", paths[i], &out[i]), 0);
		/* The same path maps to the same place every time. */
		strbuf_reset(&again);
		assert_int_equal(repopath_map("/r", paths[i], &again), 0);
		assert_string_equal(out[i].buf, again.buf);
		/* The path itself never appears in the result. */
		assert_null(strstr(out[i].buf + 3, paths[i]));
	}
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		for (size_t j = i + 1; j < ARRAY_SIZE(paths); j++)
			assert_string_not_equal(out[i].buf, out[j].buf);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		strbuf_release(&out[i]);
	strbuf_release(&again);
}

static void test_map_appends(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_addstr(&sb, "path="), 0);
	assert_int_equal(repopath_map("/r", "a.git", &sb), 0);
	assert_true(skip_prefix(sb.buf, "path=/r/@hashed/", NULL));
	strbuf_release(&sb);
}

static void test_map_rejects_invalid(void **state)
{
	static const char *bad[] = { "", "/abs", "../x", "a/../b", "a//b", "a/", "-x", "a b" };
	struct strbuf sb;
	strbuf_init(&sb, 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(repopath_map("/r", bad[i], &sb), GROVE_EINVAL);
		assert_int_equal(sb.len, 0);
	}
	strbuf_release(&sb);
}

static void test_map_bounded_buffer(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 20);
	assert_int_equal(repopath_map("/r", "a.git", &sb), GROVE_ETOOBIG);
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate_accepts),
		cmocka_unit_test(test_validate_empty_and_absolute),
		cmocka_unit_test(test_validate_dot_components),
		cmocka_unit_test(test_validate_empty_components),
		cmocka_unit_test(test_validate_dash_tilde),
		cmocka_unit_test(test_validate_bad_bytes),
		cmocka_unit_test(test_validate_length),
		cmocka_unit_test(test_storage_name),
		cmocka_unit_test(test_map_layout),
		cmocka_unit_test(test_map_shape),
		cmocka_unit_test(test_map_stable_and_distinct),
		cmocka_unit_test(test_map_appends),
		cmocka_unit_test(test_map_rejects_invalid),
		cmocka_unit_test(test_map_bounded_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
