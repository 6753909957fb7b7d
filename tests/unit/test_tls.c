/* Unit tests for the parts' certificates (lib/pki.h) and the checks
 * rpc_tls_configure makes before a daemon starts with them (lib/rpc.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/pki.h"
#include "lib/rpc.h"

#include <sys/stat.h>

static char dir[] = "/tmp/grove-test-tls.XXXXXX";
static char other[4200];

static const char *path(const char *d, const char *name)
{
	static char buf[8][4300];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", d, name);
	return buf[i];
}

static int setup(void **state)
{
	static const char *const hosts[] = { "127.0.0.1", "localhost" };
	if (!mkdtemp(dir))
		return -1;
	snprintf(other, sizeof(other), "%s/other", dir);
	if (pki_ca_ensure(dir, "test CA") || pki_cert_ensure(dir, dir, "a", hosts, 2) ||
	    pki_cert_ensure(dir, dir, "b", hosts, 1) || pki_ca_ensure(other, "other CA") ||
	    pki_cert_ensure(other, other, "rogue", hosts, 1))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	rpc_tls_configure(NULL, NULL, NULL);
	return fs_rmtree(dir);
}

static void test_made_files(void **state)
{
	struct stat st;
	assert_int_equal(stat(path(dir, "ca.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(path(dir, "a.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* An existing certificate is kept, not made anew. */
	struct stat before;
	assert_int_equal(stat(path(dir, "a.pem"), &before), 0);
	static const char *const hosts[] = { "10.0.0.1" };
	assert_int_equal(pki_cert_ensure(dir, dir, "a", hosts, 1), 0);
	assert_int_equal(stat(path(dir, "a.pem"), &st), 0);
	assert_int_equal(st.st_ino, before.st_ino);
}

static void test_bad_host(void **state)
{
	static const char *const hosts[] = { "a,DNS:evil" };
	assert_int_not_equal(pki_cert_ensure(dir, dir, "x", hosts, 1), 0);
	assert_non_null(strstr(error_msg(), "neither a host name nor an IP address"));
	assert_int_not_equal(pki_cert_ensure(dir, dir, "x", hosts, 0), 0);
}

static void test_configure_good(void **state)
{
	assert_int_equal(rpc_tls_configure(path(dir, "ca.pem"), path(dir, "a.pem"), path(dir, "a.key")), 0);
	assert_true(rpc_tls_on());
	assert_true(rpc_tls_applies("10.0.0.1:8075"));
	assert_false(rpc_tls_applies("unix:/run/grove/cluster.sock"));
	assert_int_equal(rpc_tls_reload(), 0);
	assert_int_equal(rpc_tls_configure(NULL, NULL, NULL), 0);
	assert_false(rpc_tls_on());
	assert_false(rpc_tls_applies("10.0.0.1:8075"));
}

static void test_configure_refusals(void **state)
{
	/* Not the certificate's key. */
	assert_int_not_equal(rpc_tls_configure(path(dir, "ca.pem"), path(dir, "a.pem"), path(dir, "b.key")), 0);
	assert_non_null(strstr(error_msg(), "is not the key of the certificate"));
	/* From another CA. */
	assert_int_not_equal(rpc_tls_configure(path(dir, "ca.pem"), path(other, "rogue.pem"), path(other, "rogue.key")),
			     0);
	assert_non_null(strstr(error_msg(), "is not valid from the CA"));
	/* Half a configuration. */
	assert_int_not_equal(rpc_tls_configure(path(dir, "ca.pem"), NULL, path(dir, "a.key")), 0);
	assert_non_null(strstr(error_msg(), "go together"));
	/* Not PEM, or missing. */
	assert_int_not_equal(rpc_tls_configure(path(dir, "a.key"), path(dir, "a.pem"), path(dir, "a.key")), 0);
	assert_non_null(strstr(error_msg(), "holds no PEM certificate"));
	assert_int_not_equal(rpc_tls_configure(path(dir, "nope.pem"), path(dir, "a.pem"), path(dir, "a.key")), 0);
	assert_non_null(strstr(error_msg(), "cannot read"));
	assert_false(rpc_tls_on());
}

static void test_failed_reload_keeps_old(void **state)
{
	char key[4300];
	assert_int_equal(rpc_tls_configure(path(dir, "ca.pem"), path(dir, "a.pem"), path(dir, "a.key")), 0);
	snprintf(key, sizeof(key), "%s", path(dir, "a.key"));
	assert_int_equal(rename(key, path(dir, "a.key.saved")), 0);
	assert_int_not_equal(rpc_tls_reload(), 0);
	assert_true(rpc_tls_on());
	assert_int_equal(rename(path(dir, "a.key.saved"), key), 0);
	assert_int_equal(rpc_tls_reload(), 0);
	rpc_tls_configure(NULL, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_made_files),
		cmocka_unit_test(test_bad_host),
		cmocka_unit_test(test_configure_good),
		cmocka_unit_test(test_configure_refusals),
		cmocka_unit_test(test_failed_reload_keeps_old),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
