/*
 * Unit tests for src/lib/hookwire.c: the frames a hook sends a store over
 * its hook wire, parsed as the store does, and the answer's frames read as
 * the hook does.
 */
#include "lib/common.h"
#include "lib/hookwire.h"
#include "lib/strbuf.h"

#include <setjmp.h>
#include <cmocka.h>

static void put(struct strbuf *sb, char type, const char *data)
{
	uint8_t head[HOOKWIRE_HEAD];
	hookwire_head(head, type, (uint32_t)strlen(data));
	strbuf_add(sb, head, sizeof(head));
	strbuf_addstr(sb, data);
}

static int parse(struct strbuf *sb, struct hookwire_req *r, const char **why)
{
	return hookwire_parse((const uint8_t *)sb->buf, sb->len, r, why);
}

static void test_request(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	struct hookwire_req r;
	const char *why, *v;
	size_t len;

	put(&sb, 'N', "reference-transaction");
	put(&sb, 'A', "prepared");
	put(&sb, 'V', "GROVE_SECRET=s3cret");
	put(&sb, 'V', "GIT_PUSH_OPTION_COUNT=0");
	put(&sb, 'I', "0000 1111 refs/heads/main\n");
	assert_int_equal(parse(&sb, &r, &why), 0);
	assert_int_equal(r.name_len, 21);
	assert_memory_equal(r.name, "reference-transaction", 21);
	assert_int_equal(r.arg_len, 8);
	assert_int_equal(r.nvars, 2);
	v = hookwire_var(&r, "GROVE_SECRET", &len);
	assert_non_null(v);
	assert_int_equal(len, 6);
	assert_memory_equal(v, "s3cret", 6);
	assert_null(hookwire_var(&r, "GROVE", &len));
	assert_null(hookwire_var(&r, "GROVE_HOOK_PAYLOAD", &len));
	assert_int_equal(r.in_len, 26);
	strbuf_release(&sb);
}

/* Only the name is required; an empty input is an I frame of length 0 or none. */
static void test_minimal(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	struct hookwire_req r;
	const char *why;

	put(&sb, 'N', "post-receive");
	assert_int_equal(parse(&sb, &r, &why), 0);
	assert_null(r.arg);
	assert_null(r.in);
	put(&sb, 'I', "");
	assert_int_equal(parse(&sb, &r, &why), 0);
	assert_non_null(r.in);
	assert_int_equal(r.in_len, 0);
	strbuf_release(&sb);
}

static void expect_bad(struct strbuf *sb, const char *why_part)
{
	struct hookwire_req r;
	const char *why;
	assert_int_equal(parse(sb, &r, &why), -1);
	assert_non_null(strstr(why, why_part));
	strbuf_reset(sb);
}

static void test_refused(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	expect_bad(&sb, "no hook name");                 /* empty */
	put(&sb, 'V', "A=b");
	expect_bad(&sb, "no hook name");
	put(&sb, 'N', "pre-receive");
	put(&sb, 'N', "pre-receive");
	expect_bad(&sb, "out of order, or repeated");
	put(&sb, 'N', "pre-receive");
	put(&sb, 'I', "x");
	put(&sb, 'V', "A=b");
	expect_bad(&sb, "out of order");
	put(&sb, 'N', "pre-receive");
	put(&sb, 'Z', "x");
	expect_bad(&sb, "unknown type");
	put(&sb, 'N', "pre-receive");
	put(&sb, 'V', "no equals sign");
	expect_bad(&sb, "NAME=VALUE");
	put(&sb, 'N', "");
	expect_bad(&sb, "empty or too long");
	put(&sb, 'N', "pre-receive");
	strbuf_add(&sb, "I\0\0\0\x09short", 10);       /* says 9, has 5 */
	expect_bad(&sb, "inside a frame");
	put(&sb, 'N', "pre-receive");
	strbuf_add(&sb, "I\xff\xff\xff\xff", 5);          /* 4 GiB */
	expect_bad(&sb, "longer than any may be");
	put(&sb, 'N', "pre-receive");
	for (int i = 0; i <= HOOKWIRE_VARS_MAX; i++)
		put(&sb, 'V', "A=b");
	expect_bad(&sb, "too many variables");
	strbuf_release(&sb);
}

/* The answer, read as the hook reads it: frame by frame, whatever the reads. */
static void test_answer(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	const uint8_t *data;
	uint32_t n;
	size_t used;
	char type;

	put(&sb, 'O', "checked\n");
	put(&sb, 'X', "0");
	for (size_t cut = 0; cut < HOOKWIRE_HEAD + 8; cut++)
		assert_int_equal(hookwire_next((uint8_t *)sb.buf, cut, 1024, &type, &data, &n, &used), 0);
	assert_int_equal(hookwire_next((uint8_t *)sb.buf, sb.len, 1024, &type, &data, &n, &used), 1);
	assert_int_equal(type, 'O');
	assert_int_equal(n, 8);
	assert_int_equal(used, HOOKWIRE_HEAD + 8);
	assert_int_equal(hookwire_next((uint8_t *)sb.buf + used, sb.len - used, 1024, &type, &data, &n, &used), 1);
	assert_int_equal(type, 'X');
	assert_int_equal(hookwire_next((uint8_t *)sb.buf, sb.len, 4, &type, &data, &n, &used), -1);
	strbuf_release(&sb);
}

static void test_vars_wanted(void **state)
{
	assert_true(hookwire_var_wanted("GROVE_HOOK_PAYLOAD=abc"));
	assert_true(hookwire_var_wanted("GIT_PUSH_OPTION_3=x"));
	assert_true(hookwire_var_wanted("GIT_QUARANTINE_PATH=/r/x"));
	assert_false(hookwire_var_wanted("PATH=/usr/bin"));
	assert_false(hookwire_var_wanted("GROVE_HOOK_PAYLOADX=1"));
	assert_false(hookwire_var_wanted("HOME=/root"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),     cmocka_unit_test(test_minimal),     cmocka_unit_test(test_refused),
		cmocka_unit_test(test_answer),      cmocka_unit_test(test_vars_wanted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
