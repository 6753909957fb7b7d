/* Unit tests for the hook scripts git runs (lib/hookpayload.h,
 * hook_script_install): run with /bin/sh, as git runs them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/hookpayload.h"

#include <sys/stat.h>

static char dir[] = "/tmp/grove-test-hooks.XXXXXX";

/* Runs hook NAME with args and GROVE_HOOKS_ACTIVE=active, 500 lines on
 * its stdin; its stdout into out. The exit status. */
static int run(const char *name, const char *args, const char *active, char *out, size_t size)
{
	char cmd[8192];
	FILE *p;
	size_t n;
	snprintf(cmd, sizeof(cmd),
		 "seq 500 | sed 's/^/0000 1111 refs\\/heads\\/b/' | GROVE_HOOKS_ACTIVE='%s' %s/%s %s", active, dir, name,
		 args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	return pclose(p);
}

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	/* echo stands for grove: what it prints is what grove would be given. */
	for (const char *const *h = (const char *const[]){ "pre-receive", "post-receive", "reference-transaction", NULL }; *h;
	     h++)
		if (hook_script_install(dir, *h, "/bin/echo", false))
			return -1;
	return 0;
}

static int teardown(void **state)
{
	return fs_rmtree(dir);
}

static void test_active_runs_grove(void **state)
{
	char out[256];
	assert_int_equal(run("pre-receive", "", "pre-receive,post-receive,", out, sizeof(out)), 0);
	assert_string_equal(out, "hook pre-receive\n");
	assert_int_equal(run("post-receive", "", "pre-receive,post-receive,", out, sizeof(out)), 0);
	assert_string_equal(out, "hook post-receive\n");
	assert_int_equal(run("reference-transaction", "prepared", "reference-transaction,", out, sizeof(out)), 0);
	assert_string_equal(out, "hook reference-transaction prepared\n");
}

static void test_idle_reads_input_only(void **state)
{
	char out[256];
	/* A secondary's post-receive, git by hand (nothing set), a committed
	 * transaction: no Grove process, success. */
	assert_int_equal(run("post-receive", "", "pre-receive,", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(run("pre-receive", "", "", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(run("reference-transaction", "committed", "reference-transaction,", out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

/* The idle hook's exit status and what it left of n lines on its stdin, in bytes (as text). */
static void left_unread(int n, char *out, size_t size)
{
	char cmd[8192];
	FILE *p;
	size_t k;
	snprintf(cmd, sizeof(cmd), "seq %d | sed 's/^/0000 1111 refs\\/heads\\/b/' | { %s/post-receive; echo $?; wc -c; }", n, dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	k = fread(out, 1, size - 1, p);
	out[k] = '\0';
	assert_int_equal(pclose(p), 0);
}

static void test_idle_reads_all_input(void **state)
{
	char out[64];
	/* A line at a time by the shell, then by cat: nothing is left either way. */
	for (int n = 0; n <= 9; n++) {
		left_unread(n, out, sizeof(out));
		assert_string_equal(out, "0\n0\n");
	}
	left_unread(20000, out, sizeof(out));
	assert_string_equal(out, "0\n0\n");
}

static void test_reinstall_keeps_file(void **state)
{
	char path[4200];
	struct stat a, b;
	snprintf(path, sizeof(path), "%s/pre-receive", dir);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(a.st_mode & 0111, 0111 & ~umask(umask(0)) & 0111);
	assert_int_equal(hook_script_install(dir, "pre-receive", "/bin/echo", false), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	/* Another binary: a new script, swapped in whole. */
	assert_int_equal(hook_script_install(dir, "pre-receive", "/bin/true", false), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_int_not_equal(a.st_ino, b.st_ino);
	assert_int_not_equal(hook_script_install(dir, "pre-receive", "/tmp/it's", false), 0);
	assert_non_null(strstr(error_msg(), "single quote"));
}

/* A store's scripts (light): EXE-hook when it is there, else `EXE hook`. */
static void test_light_prefers_grove_hook(void **state)
{
	char out[256], exe[4200], fast[4300];
	FILE *f;

	snprintf(exe, sizeof(exe), "%s/grove", dir);
	snprintf(fast, sizeof(fast), "%s/grove-hook", dir);
	assert_int_equal(symlink("/bin/echo", exe), 0);
	assert_int_equal(hook_script_install(dir, "post-receive", exe, true), 0);
	assert_int_equal(run("post-receive", "", "post-receive,", out, sizeof(out)), 0);
	assert_string_equal(out, "hook post-receive\n");
	f = fopen(fast, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\nread -r _; echo \"light $*\"\n", f);
	fclose(f);
	assert_int_equal(chmod(fast, 0755), 0);
	assert_int_equal(run("post-receive", "", "post-receive,", out, sizeof(out)), 0);
	assert_string_equal(out, "light post-receive\n");
	assert_int_equal(run("post-receive", "", "pre-receive,", out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_active_runs_grove),
		cmocka_unit_test(test_idle_reads_input_only),
		cmocka_unit_test(test_idle_reads_all_input),
		cmocka_unit_test(test_reinstall_keeps_file),
		cmocka_unit_test(test_light_prefers_grove_hook),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
