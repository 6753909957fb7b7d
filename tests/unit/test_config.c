/*
 * Unit tests for src/lib/config.c: git-config files written to a fresh
 * temporary folder, read back through every typed getter, and the errors
 * for malformed files, bad values and missing files.
 */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/error.h"

#include <setjmp.h>
#include <cmocka.h>

/* A temporary folder holding one config file; freed by the teardown. */
struct fixture {
	char dir[64];
	char *path;
	struct config *cfg;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	strlcpy_(f->dir, "/tmp/grove-test-config.XXXXXX", sizeof(f->dir));
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	config_free(f->cfg);
	if (f->path) {
		unlink(f->path);
		free(f->path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Writes text to a new mkstemp file in the fixture's folder and returns its path. */
static const char *write_config(struct fixture *f, const char *text)
{
	char *tmpl = xasprintf("%s/grove.conf.XXXXXX", f->dir);
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	f->path = tmpl;
	return tmpl;
}

/* Writes text and opens it, failing the test if it does not open. */
static struct config *open_config(struct fixture *f, const char *text)
{
	const char *path = write_config(f, text);
	int ret = config_open(&f->cfg, path);
	if (ret)
		fail_msg("config_open(%s): %d %s", path, ret, error_msg());
	assert_non_null(f->cfg);
	assert_string_equal(config_file(f->cfg), path);
	return f->cfg;
}

static void test_get_str(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"# a comment\n"
		"[server]\n"
		"\tlisten = 127.0.0.1:9000\n"
		"\tname = \"quoted value\" ; trailing comment\n"
		"\tEmpty =\n"
		"[storage \"default\"]\n"
		"\tpath = /srv/repos\n");
	char *s = NULL;

	assert_int_equal(config_get_str(cfg, "server.listen", "x", &s), 0);
	assert_string_equal(s, "127.0.0.1:9000");
	free(s);
	assert_int_equal(config_get_str(cfg, "server.name", NULL, &s), 0);
	assert_string_equal(s, "quoted value");
	free(s);
	/* Section and variable names are case-insensitive, as in git. */
	assert_int_equal(config_get_str(cfg, "SERVER.Listen", NULL, &s), 0);
	assert_string_equal(s, "127.0.0.1:9000");
	free(s);
	assert_int_equal(config_get_str(cfg, "server.empty", "def", &s), 0);
	assert_string_equal(s, "");
	free(s);
	/* Subsections are part of the key. */
	assert_int_equal(config_get_str(cfg, "storage.default.path", NULL, &s), 0);
	assert_string_equal(s, "/srv/repos");
	free(s);
}

static void test_get_str_missing(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f, "[server]\n\tlisten = x\n");
	char *s = (char *)"sentinel";

	assert_int_equal(config_get_str(cfg, "server.nope", "fallback", &s), 0);
	assert_string_equal(s, "fallback");
	free(s);
	s = (char *)"sentinel";
	assert_int_equal(config_get_str(cfg, "other.listen", NULL, &s), 0);
	assert_null(s);
	s = (char *)"sentinel";
	assert_int_equal(config_get_str(cfg, "storage.other.path", NULL, &s), 0);
	assert_null(s);
}

static void test_get_path(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"[store]\n"
		"\tdata = repos\n"
		"\tnested = a/b/../c\n"
		"\tabs = /var/lib/grove\n"
		"\tempty =\n");
	char *s = NULL, *want;

	assert_int_equal(config_get_path(cfg, "store.data", NULL, &s), 0);
	want = xasprintf("%s/repos", f->dir);
	assert_string_equal(s, want);
	free(want);
	free(s);

	assert_int_equal(config_get_path(cfg, "store.nested", NULL, &s), 0);
	want = xasprintf("%s/a/b/../c", f->dir);
	assert_string_equal(s, want);
	free(want);
	free(s);

	assert_int_equal(config_get_path(cfg, "store.abs", NULL, &s), 0);
	assert_string_equal(s, "/var/lib/grove");
	free(s);

	/* An empty value stays empty rather than becoming the folder. */
	assert_int_equal(config_get_path(cfg, "store.empty", NULL, &s), 0);
	assert_string_equal(s, "");
	free(s);

	/* A relative default is resolved the same way; no default stays NULL. */
	assert_int_equal(config_get_path(cfg, "store.missing", "logs/grove.log", &s), 0);
	want = xasprintf("%s/logs/grove.log", f->dir);
	assert_string_equal(s, want);
	free(want);
	free(s);
	assert_int_equal(config_get_path(cfg, "store.missing", "/abs/default", &s), 0);
	assert_string_equal(s, "/abs/default");
	free(s);
	s = (char *)"sentinel";
	assert_int_equal(config_get_path(cfg, "store.missing", NULL, &s), 0);
	assert_null(s);
}

static void test_get_int(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"[limits]\n"
		"\tplain = 42\n"
		"\tneg = -7\n"
		"\tkilo = 1k\n"
		"\tmega = 2m\n"
		"\tgiga = 1g\n"
		"\tupper = 3K\n"
		"\tzero = 0\n");
	int64_t v = -1;

	assert_int_equal(config_get_int(cfg, "limits.plain", 0, 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(config_get_int(cfg, "limits.neg", 0, -10, 10, &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(config_get_int(cfg, "limits.kilo", 0, 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(config_get_int(cfg, "limits.mega", 0, 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 2 * 1024 * 1024);
	assert_int_equal(config_get_int(cfg, "limits.giga", 0, 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 1024LL * 1024 * 1024);
	assert_int_equal(config_get_int(cfg, "limits.upper", 0, 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 3 * 1024);
	assert_int_equal(config_get_int(cfg, "limits.zero", 5, 0, 10, &v), 0);
	assert_int_equal(v, 0);

	/* The bounds themselves are inside the range. */
	assert_int_equal(config_get_int(cfg, "limits.plain", 0, 42, 42, &v), 0);
	assert_int_equal(v, 42);

	/* A missing key gives the default, even one outside [min, max]. */
	v = -1;
	assert_int_equal(config_get_int(cfg, "limits.missing", 17, 0, 100, &v), 0);
	assert_int_equal(v, 17);
}

static void test_get_int_errors(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"[limits]\n"
		"\tplain = 42\n"
		"\tkilo = 1k\n"
		"\tword = lots\n"
		"\tsuffix = 12q\n"
		"\thuge = 99999999999999999999999\n");
	int64_t v = 5;

	error_clear();
	assert_int_equal(config_get_int(cfg, "limits.plain", 0, 0, 41, &v), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "out of range"));
	assert_non_null(strstr(error_msg(), "limits.plain"));
	assert_non_null(strstr(error_msg(), f->path));
	assert_int_equal(v, 5);   /* untouched on error */

	error_clear();
	assert_int_equal(config_get_int(cfg, "limits.plain", 0, 43, 100, &v), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "out of range"));

	error_clear();
	assert_int_equal(config_get_int(cfg, "limits.kilo", 0, 0, 1000, &v), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "1024"));

	static const char *bad[] = { "limits.word", "limits.suffix", "limits.huge" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		error_clear();
		assert_int_equal(config_get_int(cfg, bad[i], 0, INT64_MIN, INT64_MAX, &v), GROVE_EINVAL);
		assert_non_null(strstr(error_msg(), bad[i]));
		assert_non_null(strstr(error_msg(), f->path));
		assert_non_null(strstr(error_msg(), "integer"));
	}
	assert_int_equal(v, 5);
}

static void test_get_bool(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"[flags]\n"
		"\tt1 = true\n\tt2 = yes\n\tt3 = on\n\tt4 = 1\n\tt5 = TRUE\n"
		"\tbare\n"
		"\tf1 = false\n\tf2 = no\n\tf3 = off\n\tf4 = 0\n\tf5 =\n"
		"\tbad = maybe\n");
	static const char *truths[] = { "flags.t1", "flags.t2", "flags.t3", "flags.t4", "flags.t5", "flags.bare" };
	static const char *falsehoods[] = { "flags.f1", "flags.f2", "flags.f3", "flags.f4", "flags.f5" };
	bool b;

	for (size_t i = 0; i < ARRAY_SIZE(truths); i++) {
		b = false;
		if (config_get_bool(cfg, truths[i], false, &b))
			fail_msg("%s: %s", truths[i], error_msg());
		if (!b)
			fail_msg("%s read as false", truths[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(falsehoods); i++) {
		b = true;
		if (config_get_bool(cfg, falsehoods[i], true, &b))
			fail_msg("%s: %s", falsehoods[i], error_msg());
		if (b)
			fail_msg("%s read as true", falsehoods[i]);
	}
	b = false;
	assert_int_equal(config_get_bool(cfg, "flags.missing", true, &b), 0);
	assert_true(b);
	assert_int_equal(config_get_bool(cfg, "flags.missing", false, &b), 0);
	assert_false(b);

	error_clear();
	b = true;
	assert_int_equal(config_get_bool(cfg, "flags.bad", false, &b), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "flags.bad"));
	assert_non_null(strstr(error_msg(), "true or false"));
	assert_true(b);
}

static void test_get_all(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"[cluster]\n"
		"\tstore = tcp://a:1\n"
		"\tother = x\n"
		"\tstore = tcp://b:2\n"
		"[cluster]\n"
		"\tstore = tcp://c:3\n"
		"[single]\n"
		"\tone = only\n");
	char **v = NULL;
	size_t n = 99;

	assert_int_equal(config_get_all(cfg, "cluster.store", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "tcp://a:1");
	assert_string_equal(v[1], "tcp://b:2");
	assert_string_equal(v[2], "tcp://c:3");
	config_strv_free(v, n);

	assert_int_equal(config_get_all(cfg, "single.one", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "only");
	config_strv_free(v, n);

	v = (char **)"sentinel";
	assert_int_equal(config_get_all(cfg, "cluster.missing", &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	config_strv_free(v, n);
	config_strv_free(NULL, 0);
}

static void test_subsections(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"[cluster]\n\tname = c\n"
		"[store \"S1\"]\n\taddress = a:1\n\tstorage = x\n"
		"[store \"s.2\"]\n\taddress = b:2\n"
		"[stores \"not-me\"]\n\taddress = c:3\n"
		"[store]\n\tplain = y\n"
		"[store \"S1\"]\n\tsecretFile = f\n");
	char **v = NULL;
	size_t n = 0;
	/* Each subsection once, in file order, its case kept; a dot inside is part of it. */
	assert_int_equal(config_subsections(cfg, "store", &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "S1");
	assert_string_equal(v[1], "s.2");
	config_strv_free(v, n);
	assert_int_equal(config_subsections(cfg, "nothing", &v, &n), 0);
	assert_int_equal(n, 0);
	config_strv_free(v, n);
}

static void test_last_value_wins(void **state)
{
	/* git's rule for a single-valued read of a repeated key. */
	struct fixture *f = *state;
	struct config *cfg = open_config(f, "[a]\n\tk = first\n\tk = second\n\tn = 1\n\tn = 2\n");
	char *s = NULL;
	int64_t v = 0;
	assert_int_equal(config_get_str(cfg, "a.k", NULL, &s), 0);
	assert_string_equal(s, "second");
	free(s);
	assert_int_equal(config_get_int(cfg, "a.n", 0, 0, 10, &v), 0);
	assert_int_equal(v, 2);
}

static void test_empty_file(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f, "");
	char *s = NULL;
	int64_t v = 0;
	bool b = false;
	assert_int_equal(config_get_str(cfg, "a.b", "d", &s), 0);
	assert_string_equal(s, "d");
	free(s);
	assert_int_equal(config_get_int(cfg, "a.b", 3, 0, 10, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(config_get_bool(cfg, "a.b", true, &b), 0);
	assert_true(b);
}

static void test_malformed_file(void **state)
{
	static const char *texts[] = {
		"[server\n\tlisten = x\n",
		"[server]\n\tlisten = ok\n[",
		"[server]\n\tlisten = a\\qb\n",
		"[bad name]\n\tk = v\n",
		"[server]\n\t= value\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct fixture *f = *state;
		const char *path = write_config(f, texts[i]);
		struct config *cfg = (struct config *)&f;
		error_clear();
		int ret = config_open(&cfg, path);
		if (ret != GROVE_EINVAL)
			fail_msg("text %zu: config_open gave %d, want GROVE_EINVAL", i, ret);
		assert_null(cfg);
		if (!strstr(error_msg(), path))
			fail_msg("text %zu: message \"%s\" does not name %s", i, error_msg(), path);
		unlink(f->path);
		FREE_AND_NULL(f->path);
	}
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char *path = xasprintf("%s/does-not-exist.conf", f->dir);
	struct config *cfg = (struct config *)&f;
	error_clear();
	assert_int_equal(config_open(&cfg, path), GROVE_ENOTFOUND);
	assert_null(cfg);
	assert_non_null(strstr(error_msg(), path));
	free(path);
	config_free(NULL);
}

static void test_relative_config_path(void **state)
{
	/* A config opened by a relative name resolves paths against its
	 * folder, made absolute: a relative hooks folder would be resolved by
	 * git inside each repository, where no hook is. */
	struct fixture *f = *state;
	char *cwd = getcwd(NULL, 0);
	struct config *cfg = NULL;
	char *s = NULL;
	const char *path = write_config(f, "[store]\n\tdata = repos\n");
	assert_non_null(cwd);
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(config_open(&cfg, strrchr(path, '/') + 1), 0);
	assert_int_equal(config_get_path(cfg, "store.data", NULL, &s), 0);
	char *dir = realpath(f->dir, NULL);
	char *want = xasprintf("%s/repos", dir);
	assert_string_equal(s, want);
	free(want);
	free(dir);
	free(s);
	config_free(cfg);
	assert_int_equal(chdir(cwd), 0);
	free(cwd);
}

/* Text in memory reads as the same text in a file would; messages and
 * relative paths go by the name given, and no file is left behind. */
static void test_open_buffer(void **state)
{
	static const char text[] = "[store]\n\tname = s1\n\troot = repos\n\tthreads = 2k\n";
	static const char bad[] = "[store\n\tname = s1\n";
	struct config *cfg = NULL;
	char *s = NULL;
	int64_t v = 0;

	(void)state;
	assert_int_equal(config_open_buffer(&cfg, "/etc/grove/mem.conf", text, sizeof(text) - 1), 0);
	assert_int_equal(config_get_str(cfg, "store.name", NULL, &s), 0);
	assert_string_equal(s, "s1");
	free(s);
	assert_int_equal(config_get_path(cfg, "store.root", NULL, &s), 0);
	assert_string_equal(s, "/etc/grove/repos");
	free(s);
	assert_int_equal(config_get_int(cfg, "store.threads", 1, 1, 1 << 20, &v), 0);
	assert_int_equal(v, 2048);
	assert_string_equal(config_file(cfg), "/etc/grove/mem.conf");
	config_free(cfg);

	assert_int_equal(config_open_buffer(&cfg, "/etc/grove/bad.conf", bad, sizeof(bad) - 1), GROVE_EINVAL);
	assert_null(cfg);
	assert_non_null(strstr(error_msg(), "/etc/grove/bad.conf"));
}

/* A key the role never read is an error naming the file, the line and the
 * key as the file spells it; subsections keep their case, and a key read
 * in another case is known. */
static void test_check_unknown(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f,
		"# a comment\n"
		"[limits]\n"
		"\tplain = 42\n"
		"[store \"Big\"]\n"
		"\taddress = here\n"
		"\tadress = typo\n"
		"[limits]\n"
		"\tMaxThings = 3\n");
	char *v = NULL;
	int64_t n;

	assert_int_equal(config_get_int(cfg, "limits.plain", 0, 0, 100, &n), 0);
	assert_int_equal(config_get_str(cfg, "store.Big.address", NULL, &v), 0);
	free(v);
	error_clear();
	assert_int_equal(config_check_unknown(cfg), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), f->path));
	assert_non_null(strstr(error_msg(), ":6: unknown key store.Big.adress"));
	assert_non_null(strstr(error_msg(), "(and 1 more unknown keys)"));

	assert_int_equal(config_get_str(cfg, "store.Big.adress", NULL, &v), 0);
	free(v);
	error_clear();
	assert_int_equal(config_check_unknown(cfg), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), ":8: unknown key limits.MaxThings:"));

	assert_int_equal(config_get_int(cfg, "limits.maxThings", 0, 0, 100, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(config_check_unknown(cfg), 0);
}

/* A bad value's error names its line. */
static void test_bad_value_line(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = open_config(f, "[a]\n\tx = 1\n\n[b]\n\ty = lots\n\tz = maybe\n");
	int64_t n;
	bool b;

	assert_int_equal(config_get_int(cfg, "b.y", 0, 0, 100, &n), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), ":5: b.y"));
	assert_int_equal(config_get_int(cfg, "a.x", 0, 2, 100, &n), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), ":2: a.x = 1 is out of range"));
	assert_int_equal(config_get_bool(cfg, "b.z", false, &b), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), ":6: b.z"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_get_str),
		T(test_get_str_missing),
		T(test_get_path),
		T(test_get_int),
		T(test_get_int_errors),
		T(test_get_bool),
		T(test_get_all),
		T(test_subsections),
		T(test_last_value_wins),
		T(test_empty_file),
		T(test_malformed_file),
		T(test_missing_file),
		T(test_relative_config_path),
		T(test_open_buffer),
		T(test_check_unknown),
		T(test_bad_value_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
