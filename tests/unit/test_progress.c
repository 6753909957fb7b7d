/*
 * Unit tests for src/gate/progress.c, the files through which a long
 * operation (a move, a backup, a restore) tells the admin API how far it
 * is: what a reader sees at each step, that a file left by a process that
 * died is skipped and removed, and that nothing is written without a
 * folder.
 */
#include "../../src/gate/progress.c"
#include "lib/fs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <cmocka.h>

static char dir[] = "/tmp/grove-progress-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return fs_rmtree(dir);
}

static json_t *only_operation(void)
{
	json_t *arr = json_array(), *o;
	progress_list(dir, arr);
	assert_int_equal(json_array_size(arr), 1);
	o = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return o;
}

static void test_phases_and_bytes(void **state)
{
	struct progress p;
	json_t *o;
	(void)state;

	progress_start(&p, dir, "app1", "restore");
	progress_phase(&p, "receiving", 0);
	o = only_operation();
	assert_string_equal(json_string_value(json_object_get(o, "app")), "app1");
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "restore");
	assert_string_equal(json_string_value(json_object_get(o, "phase")), "receiving");
	assert_int_equal(json_integer_value(json_object_get(o, "done_bytes")), 0);
	json_decref(o);

	/* The first bytes of a phase show at once; later ones within 250 ms may wait. */
	progress_add(&p, 100);
	o = progress_get(dir, "app1", "restore");
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "done_bytes")), 100);
	json_decref(o);

	progress_phase(&p, "applying", 4096);
	o = only_operation();
	assert_string_equal(json_string_value(json_object_get(o, "phase")), "applying");
	assert_int_equal(json_integer_value(json_object_get(o, "done_bytes")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "total_bytes")), 4096);
	json_decref(o);

	progress_end(&p);
	assert_null(progress_get(dir, "app1", "restore"));
	progress_end(&p);   /* twice: harmless */
}

/* A file whose process is gone is skipped, and removed. */
static void test_dead_process_skipped(void **state)
{
	char path[512];
	json_t *arr = json_array();
	pid_t pid = fork();
	FILE *f;
	(void)state;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	snprintf(path, sizeof(path), "%s/app2.move", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "move copying 10 20 1796392744 %ld\n", (long)pid);
	fclose(f);
	progress_list(dir, arr);
	assert_int_equal(json_array_size(arr), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	json_decref(arr);
}

/* Malformed files and names are skipped; no folder: nothing written, nothing read. */
static void test_junk_and_no_folder(void **state)
{
	char path[512];
	struct progress p;
	json_t *arr = json_array();
	FILE *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/app3.backup", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("backup\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/app4.move.tmp", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "move copying 1 2 3 %ld\n", (long)getpid());
	fclose(f);
	progress_list(dir, arr);
	assert_int_equal(json_array_size(arr), 0);

	progress_start(&p, NULL, "app5", "move");
	progress_phase(&p, "copying", 10);
	progress_add(&p, 5);
	progress_end(&p);
	progress_add(NULL, 5);
	progress_list(NULL, arr);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phases_and_bytes),
		cmocka_unit_test(test_dead_process_skipped),
		cmocka_unit_test(test_junk_and_no_folder),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
