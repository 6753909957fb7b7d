/* Unit tests for gate.refNamespaces (src/gate/refpolicy.c): the list an
 * operator writes, and which refs a push may then touch. libgrove.a holds
 * only src/lib, so the module is compiled into this test directly. */
#include "../../src/gate/refpolicy.c"

#include <setjmp.h>
#include <cmocka.h>

static void test_default(void **state)
{
	struct strvec ns = STRVEC_INIT;
	(void)state;
	assert_int_equal(refpolicy_parse(REFPOLICY_DEFAULT, &ns), 0);
	assert_int_equal(ns.n, 2);
	assert_true(refpolicy_allows(&ns, "refs/heads/main"));
	assert_true(refpolicy_allows(&ns, "refs/tags/v1.0"));
	assert_false(refpolicy_allows(&ns, "refs/notes/commits"));
	assert_false(refpolicy_allows(&ns, "refs/pull/1/head"));
	assert_false(refpolicy_allows(&ns, "refs/headsx/main"));
	assert_false(refpolicy_allows(&ns, "refs/tag"));
	assert_false(refpolicy_allows(&ns, "HEAD"));
	strvec_clear(&ns);
}

static void test_lists(void **state)
{
	struct strvec ns = STRVEC_INIT;
	(void)state;
	assert_int_equal(refpolicy_parse(" refs/heads/,refs/notes/\trefs/tags/ ", &ns), 0);
	assert_int_equal(ns.n, 3);
	assert_true(refpolicy_allows(&ns, "refs/notes/commits"));
	/* Branches only: tags refused too. */
	assert_int_equal(refpolicy_parse("refs/heads/", &ns), 0);
	assert_false(refpolicy_allows(&ns, "refs/tags/v1"));
	strvec_clear(&ns);
}

static void test_bad(void **state)
{
	static const char *const bad[] = {
		"refs/tags/",                 /* no refs/heads/ */
		"refs/heads/ refs/tags",      /* no last / */
		"refs/heads/ tags/",          /* not under refs/ */
		"refs/heads/ refs/",          /* everything: name it instead */
		"refs/heads/ refs/../x/",
		"refs/heads/ refs/a//b/",
		"refs/heads/ refs/x*/",
		"refs/heads/ refs/x\x01/",
		"",
	};
	struct strvec ns = STRVEC_INIT;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(refpolicy_parse(bad[i], &ns), GROVE_EINVAL);
		assert_int_equal(ns.n, 0);
		assert_true(strlen(error_msg()) > 0);
	}
	strvec_clear(&ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
