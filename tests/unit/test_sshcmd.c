/*
 * Unit tests for src/lib/sshcmd.c: the command lines git clients send over
 * SSH, git's sq-quoting, and everything else a client might try instead.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/repopath.h"
#include "lib/sshcmd.h"

#include <setjmp.h>
#include <cmocka.h>

static void expect_ok(const char *line, enum git_service svc, const char *path)
{
	struct sshcmd c;
	error_clear();
	int ret = sshcmd_parse(line, &c);
	if (ret)
		fail_msg("\"%s\" refused: %s", line, error_msg());
	assert_int_equal(c.service, svc);
	assert_string_equal(c.path, path);
}

static void expect_refused(const char *line, const char *why)
{
	struct sshcmd c;
	memset(&c, 'x', sizeof(c));
	c.path[sizeof(c.path) - 1] = '\0';
	error_clear();
	int ret = sshcmd_parse(line, &c);
	if (ret != GROVE_EINVAL)
		fail_msg("\"%s\" gave %d (path \"%s\"), want GROVE_EINVAL", line ? line : "(null)", ret,
			 c.path);
	/* A refused line leaves nothing that looks like a request behind. */
	assert_int_equal(c.service, GIT_SERVICE_NONE);
	assert_string_equal(c.path, "");
	if (why && !strstr(error_msg(), why))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", line ? line : "(null)", error_msg(), why);
}

static void test_services(void **state)
{
	expect_ok("git-upload-pack 'app.git'", GIT_SERVICE_UPLOAD_PACK, "app.git");
	expect_ok("git-receive-pack '/app.git'", GIT_SERVICE_RECEIVE_PACK, "/app.git");
	expect_ok("git-upload-archive 'x'", GIT_SERVICE_UPLOAD_ARCHIVE, "x");
	expect_ok("git upload-pack 'x'", GIT_SERVICE_UPLOAD_PACK, "x");
	expect_ok("git receive-pack 'group/sub/app.git'", GIT_SERVICE_RECEIVE_PACK, "group/sub/app.git");
	expect_ok("git upload-archive '/a'", GIT_SERVICE_UPLOAD_ARCHIVE, "/a");
	/* Several spaces before the argument are tolerated. */
	expect_ok("git-upload-pack    'x'", GIT_SERVICE_UPLOAD_PACK, "x");
}

static void test_service_names(void **state)
{
	assert_string_equal(git_service_name(GIT_SERVICE_UPLOAD_PACK), "git-upload-pack");
	assert_string_equal(git_service_name(GIT_SERVICE_RECEIVE_PACK), "git-receive-pack");
	assert_string_equal(git_service_name(GIT_SERVICE_UPLOAD_ARCHIVE), "git-upload-archive");
	assert_string_equal(git_service_name(GIT_SERVICE_NONE), "none");
	assert_string_equal(git_service_name((enum git_service)99), "none");
}

static void test_quoting(void **state)
{
	/* git's sq_quote: ' becomes '\'' and ! becomes '\!'. */
	expect_ok("git-upload-pack 'a'\\''b'", GIT_SERVICE_UPLOAD_PACK, "a'b");
	expect_ok("git-upload-pack 'a'\\!'b'", GIT_SERVICE_UPLOAD_PACK, "a!b");
	expect_ok("git-upload-pack ''\\'''", GIT_SERVICE_UPLOAD_PACK, "'");
	expect_ok("git-upload-pack 'x'\\''y'\\!'z'\\'''", GIT_SERVICE_UPLOAD_PACK, "x'y!z'");
	/* Inside quotes everything but a quote is literal. */
	expect_ok("git-upload-pack 'a b;c|$(d)`e`\"f\"\\g'", GIT_SERVICE_UPLOAD_PACK,
		  "a b;c|$(d)`e`\"f\"\\g");
}

static void test_unquoted(void **state)
{
	expect_ok("git-upload-pack app.git", GIT_SERVICE_UPLOAD_PACK, "app.git");
	expect_ok("git-receive-pack /group/app.git", GIT_SERVICE_RECEIVE_PACK, "/group/app.git");
	expect_ok("git upload-pack a-b_c.d", GIT_SERVICE_UPLOAD_PACK, "a-b_c.d");
	expect_ok("git-upload-pack a@b:c,d+e=f%g", GIT_SERVICE_UPLOAD_PACK, "a@b:c,d+e=f%g");
}

static void test_unquoted_metachars(void **state)
{
	static const char *bad[] = {
		"git-upload-pack x;rm", "git-upload-pack $(id)", "git-upload-pack a|b",
		"git-upload-pack `id`", "git-upload-pack a&b", "git-upload-pack a>b",
		"git-upload-pack a<b", "git-upload-pack $HOME", "git-upload-pack a*",
		"git-upload-pack a?", "git-upload-pack a[b]", "git-upload-pack {a,b}",
		"git-upload-pack a!b", "git-upload-pack a\"b", "git-upload-pack a\\b",
		"git-upload-pack ~root", "git-upload-pack #x", "git-upload-pack a'b'",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refused(bad[i], "unquoted argument contains");
}

static void test_other_commands(void **state)
{
	static const char *bad[] = {
		"sh", "sh -c 'id'", "bash", "ls 'x'", "git-upload-pack2 'x'", "git-upload-packx 'x'",
		"git-upload-pack", "git upload-pack", "git-receive-pack", "git-upload-pac 'x'",
		"GIT-UPLOAD-PACK 'x'", " git-upload-pack 'x'", "git  upload-pack 'x'",
		"git-shell -c 'x'", "git 'upload-pack' 'x'", "scp -t /x", "'git-upload-pack' 'x'",
		"git-upload-pack'x'",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refused(bad[i], "only git-upload-pack");
}

static void test_empty(void **state)
{
	expect_refused("", "no command");
	expect_refused(NULL, "no command");
	expect_refused("git-upload-pack ''", "empty");
	expect_refused("git-upload-pack ", "empty");
	expect_refused("git-upload-pack    ", "empty");
}

static void test_two_arguments(void **state)
{
	expect_refused("git-upload-pack 'a' 'b'", "more than one argument");
	expect_refused("git-upload-pack 'a' b", "more than one argument");
	expect_refused("git-upload-pack 'a' ", "more than one argument");
	expect_refused("git-upload-pack 'a'b", "more than one argument");
	expect_refused("git-upload-pack 'a'\\'", "more than one argument");
	expect_refused("git-upload-pack 'a'\\\\'b'", "more than one argument");
	expect_refused("git-upload-pack 'a'\\x'b'", "more than one argument");
	expect_refused("git-upload-pack a b", "unquoted argument contains ' '");
	expect_refused("git-upload-pack --upload-pack=touch /tmp/x", "unquoted argument contains ' '");
}

static void test_unterminated(void **state)
{
	expect_refused("git-upload-pack 'x", "unterminated quote");
	expect_refused("git-upload-pack '", "unterminated quote");
	expect_refused("git-upload-pack 'a'\\''b", "unterminated quote");
	/* Which service was asked for is named in the message. */
	expect_refused("git-receive-pack 'x", "git-receive-pack: ");
}

static void test_control_chars(void **state)
{
	static const char *bad[] = {
		"git-upload-pack 'x'\n", "git-upload-pack 'a\nb'", "git-upload-pack\t'x'",
		"git-upload-pack 'a\rb'", "git-upload-pack 'a\x01'", "git-upload-pack 'a\x1b[0m'",
		"git-upload-pack 'a\x7f'", "\ngit-upload-pack 'x'", "git-upload-pack x\x1f",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refused(bad[i], "control character");
}

static void test_embedded_nul(void **state)
{
	/* The line is a C string: a NUL ends it, so what follows never counts. */
	static const char line[] = "git-upload-pack 'a\0b'";
	expect_refused(line, "unterminated quote");
	static const char line2[] = "git-upload-pack 'a'\0 'b'";
	expect_ok(line2, GIT_SERVICE_UPLOAD_PACK, "a");
}

static void test_length_limit(void **state)
{
	char *line = xmalloc(SSHCMD_MAX + 2);
	const char *pre = "git-upload-pack '";
	size_t plen = strlen(pre);
	struct sshcmd c;

	/* Exactly SSHCMD_MAX bytes: accepted. */
	memcpy(line, pre, plen);
	memset(line + plen, 'p', SSHCMD_MAX - plen - 1);
	line[SSHCMD_MAX - 1] = '\'';
	line[SSHCMD_MAX] = '\0';
	assert_int_equal(strlen(line), SSHCMD_MAX);
	assert_int_equal(sshcmd_parse(line, &c), 0);
	assert_int_equal(c.service, GIT_SERVICE_UPLOAD_PACK);
	assert_int_equal(strlen(c.path), SSHCMD_MAX - plen - 1);

	/* One byte more: refused. */
	line[SSHCMD_MAX - 1] = 'p';
	line[SSHCMD_MAX] = '\'';
	line[SSHCMD_MAX + 1] = '\0';
	assert_int_equal(strlen(line), SSHCMD_MAX + 1);
	expect_refused(line, "longer than 4096");

	/* The same, unquoted. */
	memcpy(line, "git-upload-pack ", 16);
	memset(line + 16, 'u', SSHCMD_MAX - 16);
	line[SSHCMD_MAX] = '\0';
	assert_int_equal(sshcmd_parse(line, &c), 0);
	assert_int_equal(strlen(c.path), SSHCMD_MAX - 16);
	line[SSHCMD_MAX] = 'u';
	line[SSHCMD_MAX + 1] = '\0';
	expect_refused(line, "longer than 4096");
	free(line);
}

static void test_option_like_argument(void **state)
{
	/*
	 * An argument that looks like a git option is, to this parser, only a
	 * path: sshcmd_parse accepts it and the caller's repopath_validate is
	 * what refuses it (no component may start with '-'). Nothing from the
	 * line ever reaches a git command line as an option.
	 */
	struct sshcmd c;
	assert_int_equal(sshcmd_parse("git-upload-pack '--upload-pack=touch /tmp/x'", &c), 0);
	assert_int_equal(c.service, GIT_SERVICE_UPLOAD_PACK);
	assert_string_equal(c.path, "--upload-pack=touch /tmp/x");
	assert_int_equal(repopath_validate(c.path), GROVE_EINVAL);

	assert_int_equal(sshcmd_parse("git-receive-pack --help", &c), 0);
	assert_int_equal(c.service, GIT_SERVICE_RECEIVE_PACK);
	assert_string_equal(c.path, "--help");
	assert_int_equal(repopath_validate(c.path), GROVE_EINVAL);

	assert_int_equal(sshcmd_parse("git-upload-pack '-x'", &c), 0);
	assert_string_equal(c.path, "-x");
	assert_int_equal(repopath_validate(c.path), GROVE_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_service_names),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_unquoted),
		cmocka_unit_test(test_unquoted_metachars),
		cmocka_unit_test(test_other_commands),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_two_arguments),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_option_like_argument),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
