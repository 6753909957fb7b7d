/*
 * Unit tests for src/gate/db.c, the gate's SQLite state: users and their
 * keys, apps, access rules (admins included), deployments with their bounded
 * log, and schema steps that are applied once and idempotent on reopen.
 *
 * libgrove.a holds only src/lib, so the module is compiled into this test
 * directly.
 */
#include "../../src/gate/db.c"
#include "../../src/gate/tokens.c"

#include <setjmp.h>
#include <cmocka.h>

#define FP_A "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define FP_B "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
#define FP_C "SHA256:abc+def/ghi0123456789ABCDEFGHIJKLMNOPQRSTUV"
#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop"

struct fixture {
	char dir[64];
	char path[128];
	struct db *db;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	strlcpy_(f->dir, "/tmp/grove-test-db-XXXXXX", sizeof(f->dir));
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/gate.db", f->dir);
	if (db_open(&f->db, f->path)) {
		fprintf(stderr, "db_open: %s\n", error_msg());
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];
	db_close(f->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

/* Asserts that ret is code and that the message holds text. */
#define assert_err(ret, code, text)                                                            \
	do {                                                                                   \
		int r_ = (ret);                                                                \
		if (r_ != (code))                                                              \
			fail_msg("%s gave %d (%s), want %d", #ret, r_, error_msg(), (code));    \
		if (!strstr(error_msg(), (text)))                                              \
			fail_msg("%s: message \"%s\" lacks \"%s\"", #ret, error_msg(), (text)); \
	} while (0)

#define assert_ok(ret)                                                           \
	do {                                                                     \
		int r_ = (ret);                                                  \
		if (r_)                                                          \
			fail_msg("%s gave %d: %s", #ret, r_, error_msg());       \
	} while (0)

/* Collects the first column of each row, joined with ','. */
static int collect_first(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct strbuf *sb = ctx;
	if (sb->len)
		strbuf_addch(sb, ',');
	strbuf_addstr(sb, values[0] ? values[0] : "NULL");
	return 0;
}

static char *query1(struct db *db, const char *sql)
{
	struct strbuf sb = STRBUF_INIT;
	if (db_query(db, sql, NULL, 0, collect_first, &sb))
		fail_msg("%s: %s", sql, error_msg());
	return strbuf_detach(&sb, NULL);
}

static bool is_iso_utc(const char *s)
{
	/* 2026-01-02T03:04:05Z */
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	if (!s || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	return true;
}

/* ---- users and keys ---- */

static void test_users(void **state)
{
	struct fixture *f = *state;
	struct user u;

	assert_ok(db_user_create(f->db, "alice", false));
	assert_ok(db_user_create(f->db, "Root.admin_1-x", true));
	assert_err(db_user_create(f->db, "alice", true), GROVE_EEXISTS, "user alice exists already");

	assert_ok(db_user_get(f->db, "alice", &u));
	assert_string_equal(u.name, "alice");
	assert_false(u.admin);
	assert_true(u.id > 0);
	user_release(&u);
	assert_null(u.name);
	assert_ok(db_user_get(f->db, "Root.admin_1-x", &u));
	assert_true(u.admin);
	user_release(&u);

	assert_err(db_user_get(f->db, "bob", &u), GROVE_ENOTFOUND, "no user named bob");
	assert_null(u.name);
	assert_err(db_user_delete(f->db, "bob"), GROVE_ENOTFOUND, "no user named bob");
	assert_ok(db_user_delete(f->db, "alice"));
	assert_err(db_user_get(f->db, "alice", &u), GROVE_ENOTFOUND, "no user named alice");
	/* The name is free again. */
	assert_ok(db_user_create(f->db, "alice", false));
	user_release(NULL);
}

static void test_user_names(void **state)
{
	struct fixture *f = *state;
	char longest[65], toolong[66];
	static const char *const bad[] = { "", ".alice", "-a", "_a", "a b", "a/b", "a;b", "ä", "a\n", "a'--" };

	memset(longest, 'x', 64);
	longest[64] = '\0';
	memset(toolong, 'x', 65);
	toolong[65] = '\0';
	assert_ok(db_user_create(f->db, longest, false));
	assert_ok(db_user_create(f->db, "9", false));
	assert_ok(db_user_create(f->db, "A.b_c-d", false));
	assert_err(db_user_create(f->db, toolong, false), GROVE_EINVAL, "longer than 64");
	assert_err(db_user_create(f->db, NULL, false), GROVE_EINVAL, "user name is empty");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		error_clear();
		if (db_user_create(f->db, bad[i], false) != GROVE_EINVAL)
			fail_msg("user name \"%s\" accepted", bad[i]);
		assert_true(strstr(error_msg(), "user name") != NULL);
	}
}

static void test_keys(void **state)
{
	struct fixture *f = *state;
	struct user u;

	assert_ok(db_user_create(f->db, "alice", false));
	assert_ok(db_user_create(f->db, "bob", true));
	assert_ok(db_key_add(f->db, "alice", FP_A, KEY_A));
	assert_ok(db_key_add(f->db, "alice", FP_C, "ssh-ed25519 AAAAC3 second"));
	assert_ok(db_key_add(f->db, "bob", FP_B, "ssh-ed25519 AAAAC3 bob"));

	/* A key identifies one user: not twice, neither for her nor for another. */
	assert_err(db_key_add(f->db, "bob", FP_A, KEY_A), GROVE_EEXISTS, "key " FP_A " is registered already");
	assert_err(db_key_add(f->db, "alice", FP_A, KEY_A), GROVE_EEXISTS, "registered already");
	assert_err(db_key_add(f->db, "carol", "SHA256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", KEY_A),
		   GROVE_ENOTFOUND, "no user named carol");

	assert_ok(db_user_by_key(f->db, FP_A, &u));
	assert_string_equal(u.name, "alice");
	assert_false(u.admin);
	user_release(&u);
	assert_ok(db_user_by_key(f->db, FP_C, &u));
	assert_string_equal(u.name, "alice");
	user_release(&u);
	assert_ok(db_user_by_key(f->db, FP_B, &u));
	assert_string_equal(u.name, "bob");
	assert_true(u.admin);
	user_release(&u);
	assert_err(db_user_by_key(f->db, "SHA256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", &u), GROVE_ENOTFOUND,
		   "no user has the key");
	assert_null(u.name);

	/* Malformed fingerprints and keys are refused before SQL sees them. */
	assert_err(db_key_add(f->db, "alice", "MD5:aa:bb", KEY_A), GROVE_EINVAL, "SHA256:<43 base64");
	assert_err(db_key_add(f->db, "alice", "SHA256:short", KEY_A), GROVE_EINVAL, "not of the form");
	assert_err(db_key_add(f->db, "alice", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'", KEY_A), GROVE_EINVAL,
		   "not of the form");
	assert_err(db_key_add(f->db, "alice", "SHA256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", ""), GROVE_EINVAL,
		   "public key is empty");
	assert_err(db_key_add(f->db, "alice", "SHA256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", "ssh-ed25519 A\nB"),
		   GROVE_EINVAL, "control character");
	assert_err(db_user_by_key(f->db, NULL, &u), GROVE_EINVAL, "not of the form");

	assert_ok(db_key_remove(f->db, FP_C));
	assert_err(db_key_remove(f->db, FP_C), GROVE_ENOTFOUND, "no key with fingerprint " FP_C);
	assert_err(db_user_by_key(f->db, FP_C, &u), GROVE_ENOTFOUND, "no user has the key");

	/* Deleting a user deletes her keys, which may then go to someone else. */
	assert_ok(db_user_delete(f->db, "alice"));
	assert_err(db_user_by_key(f->db, FP_A, &u), GROVE_ENOTFOUND, "no user has the key");
	assert_ok(db_key_add(f->db, "bob", FP_A, KEY_A));
	assert_ok(db_user_by_key(f->db, FP_A, &u));
	assert_string_equal(u.name, "bob");
	user_release(&u);
}

/* ---- apps ---- */

static void test_apps(void **state)
{
	struct fixture *f = *state;
	struct app a;

	assert_ok(db_app_create(f->db, "my-app", "main", ROUTE_LEGACY));
	assert_ok(db_app_create(f->db, "0", "release/2026", ROUTE_CLUSTER));
	assert_err(db_app_create(f->db, "my-app", "main", ROUTE_CLUSTER), GROVE_EEXISTS, "app my-app exists already");

	assert_ok(db_app_get(f->db, "my-app", &a));
	assert_true(a.id > 0);
	assert_string_equal(a.name, "my-app");
	assert_string_equal(a.deploy_branch, "main");
	assert_int_equal(a.route, ROUTE_LEGACY);
	assert_false(a.locked);
	assert_true(is_iso_utc(a.created_at));
	assert_true(is_iso_utc(a.updated_at));
	app_release(&a);
	assert_null(a.name);
	app_release(NULL);

	assert_ok(db_app_get(f->db, "0", &a));
	assert_string_equal(a.deploy_branch, "release/2026");
	assert_int_equal(a.route, ROUTE_CLUSTER);
	app_release(&a);

	assert_ok(db_app_set_deploy_branch(f->db, "my-app", "production"));
	assert_ok(db_app_set_route(f->db, "my-app", ROUTE_CLUSTER));
	assert_ok(db_app_set_locked(f->db, "my-app", true));
	assert_ok(db_app_get(f->db, "my-app", &a));
	assert_string_equal(a.deploy_branch, "production");
	assert_int_equal(a.route, ROUTE_CLUSTER);
	assert_true(a.locked);
	app_release(&a);
	assert_ok(db_app_set_locked(f->db, "my-app", false));
	assert_ok(db_app_set_route(f->db, "my-app", ROUTE_LEGACY));
	assert_ok(db_app_get(f->db, "my-app", &a));
	assert_false(a.locked);
	assert_int_equal(a.route, ROUTE_LEGACY);
	app_release(&a);

	assert_err(db_app_set_deploy_branch(f->db, "nope", "main"), GROVE_ENOTFOUND, "no app named nope");
	assert_err(db_app_set_route(f->db, "nope", ROUTE_CLUSTER), GROVE_ENOTFOUND, "no app named nope");
	assert_err(db_app_set_locked(f->db, "nope", true), GROVE_ENOTFOUND, "no app named nope");
	assert_err(db_app_set_deploy_branch(f->db, "my-app", ""), GROVE_EINVAL, "deploy branch is empty");
	assert_err(db_app_set_route(f->db, "my-app", (enum route)7), GROVE_EINVAL, "neither legacy nor cluster");
	assert_err(db_app_create(f->db, "x", NULL, ROUTE_LEGACY), GROVE_EINVAL, "deploy branch is empty");

	assert_err(db_app_get(f->db, "x", &a), GROVE_ENOTFOUND, "no app named x");
	assert_null(a.name);
	assert_ok(db_app_delete(f->db, "my-app"));
	assert_err(db_app_delete(f->db, "my-app"), GROVE_ENOTFOUND, "no app named my-app");
	assert_err(db_app_get(f->db, "my-app", &a), GROVE_ENOTFOUND, "no app named my-app");
}

static void test_app_names(void **state)
{
	struct fixture *f = *state;
	char longest[64], toolong[65];
	static const char *const bad[] = { "", "-a", "My-app", "a_b", "a.b", "a b", "a/b", "../x", "a.git", "é" };

	memset(longest, 'a', 63);
	longest[63] = '\0';
	memset(toolong, 'a', 64);
	toolong[64] = '\0';
	assert_ok(db_app_create(f->db, longest, "main", ROUTE_LEGACY));
	assert_ok(db_app_create(f->db, "a-", "main", ROUTE_LEGACY));
	assert_err(db_app_create(f->db, toolong, "main", ROUTE_LEGACY), GROVE_EINVAL, "longer than 63");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		error_clear();
		if (db_app_create(f->db, bad[i], "main", ROUTE_LEGACY) != GROVE_EINVAL)
			fail_msg("app name \"%s\" accepted", bad[i]);
		assert_true(strstr(error_msg(), "app name") != NULL);
	}
}

/* ---- access ---- */

static void test_access(void **state)
{
	struct fixture *f = *state;
	struct user alice, root, ghost = { .id = 999, .name = "ghost", .admin = false };

	assert_ok(db_user_create(f->db, "alice", false));
	assert_ok(db_user_create(f->db, "root", true));
	assert_ok(db_user_create(f->db, "bob", false));
	assert_ok(db_app_create(f->db, "web", "main", ROUTE_LEGACY));
	assert_ok(db_app_create(f->db, "api", "main", ROUTE_LEGACY));
	assert_ok(db_user_get(f->db, "alice", &alice));
	assert_ok(db_user_get(f->db, "root", &root));

	assert_int_equal(db_access_get(f->db, "web", &alice), ACCESS_NONE);
	/* Admins may write every app, listed or not, even one not there. */
	assert_int_equal(db_access_get(f->db, "web", &root), ACCESS_WRITE);
	assert_int_equal(db_access_get(f->db, "api", &root), ACCESS_WRITE);
	assert_int_equal(db_access_get(f->db, "web", &ghost), ACCESS_NONE);
	assert_int_equal(db_access_get(f->db, "web", NULL), ACCESS_NONE);
	assert_int_equal(db_access_get(f->db, "Bad Name", &alice), ACCESS_NONE);

	assert_ok(db_access_grant(f->db, "web", "alice", ACCESS_READ));
	assert_int_equal(db_access_get(f->db, "web", &alice), ACCESS_READ);
	assert_int_equal(db_access_get(f->db, "api", &alice), ACCESS_NONE);
	/* Granting again changes the level in place. */
	assert_ok(db_access_grant(f->db, "web", "alice", ACCESS_WRITE));
	assert_int_equal(db_access_get(f->db, "web", &alice), ACCESS_WRITE);
	assert_ok(db_access_grant(f->db, "web", "alice", ACCESS_READ));
	assert_int_equal(db_access_get(f->db, "web", &alice), ACCESS_READ);
	char *n = query1(f->db, "SELECT count(*) FROM collaborators");
	assert_string_equal(n, "1");
	free(n);

	assert_err(db_access_grant(f->db, "nope", "alice", ACCESS_READ), GROVE_ENOTFOUND, "no app named nope");
	assert_err(db_access_grant(f->db, "web", "carol", ACCESS_READ), GROVE_ENOTFOUND, "no user named carol");
	assert_err(db_access_grant(f->db, "web", "alice", ACCESS_NONE), GROVE_EINVAL, "revoke");
	assert_err(db_access_revoke(f->db, "web", "bob"), GROVE_ENOTFOUND, "user bob is no collaborator on app web");
	assert_err(db_access_revoke(f->db, "nope", "bob"), GROVE_ENOTFOUND, "no app named nope");

	assert_ok(db_access_revoke(f->db, "web", "alice"));
	assert_int_equal(db_access_get(f->db, "web", &alice), ACCESS_NONE);
	assert_err(db_access_revoke(f->db, "web", "alice"), GROVE_ENOTFOUND, "no collaborator");

	/* Deleting an app or a user takes its collaborator rows with it. */
	assert_ok(db_access_grant(f->db, "web", "alice", ACCESS_WRITE));
	assert_ok(db_access_grant(f->db, "api", "bob", ACCESS_WRITE));
	assert_ok(db_app_delete(f->db, "web"));
	assert_ok(db_app_create(f->db, "web", "main", ROUTE_LEGACY));
	assert_int_equal(db_access_get(f->db, "web", &alice), ACCESS_NONE);
	assert_ok(db_user_delete(f->db, "bob"));
	n = query1(f->db, "SELECT count(*) FROM collaborators");
	assert_string_equal(n, "0");
	free(n);

	/* Nothing stays behind in a transaction after the failures above. */
	assert_ok(db_access_grant(f->db, "api", "alice", ACCESS_READ));
	assert_int_equal(db_access_get(f->db, "api", &alice), ACCESS_READ);

	user_release(&alice);
	user_release(&root);
}

/* ---- deployments ---- */

#define OID0 "0000000000000000000000000000000000000000"
#define OID1 "1111111111111111111111111111111111111111"

static void test_deployments(void **state)
{
	struct fixture *f = *state;
	struct deployment d;
	int64_t id = 0, id2 = 0;

	assert_ok(db_deploy_create(f->db, "web", "refs/heads/main", OID0, OID1, "alice", &id));
	assert_true(id > 0);
	assert_ok(db_deploy_create(f->db, "web", "refs/heads/main", OID1, OID0, "alice", &id2));
	assert_true(id2 > id);

	assert_ok(db_deploy_get(f->db, id, &d));
	assert_int_equal(d.id, id);
	assert_string_equal(d.app, "web");
	assert_string_equal(d.ref, "refs/heads/main");
	assert_string_equal(d.old_oid, OID0);
	assert_string_equal(d.new_oid, OID1);
	assert_string_equal(d.pusher, "alice");
	assert_string_equal(d.status, "queued");
	assert_true(is_iso_utc(d.started_at));
	assert_null(d.finished_at);
	assert_string_equal(d.log, "");
	deployment_release(&d);
	assert_null(d.app);
	deployment_release(NULL);

	assert_ok(db_deploy_set_status(f->db, id, "running"));
	assert_ok(db_deploy_append_log(f->db, id, "building\n", 9));
	assert_ok(db_deploy_append_log(f->db, id, "done\nignored", 5));
	assert_ok(db_deploy_append_log(f->db, id, "", 0));
	assert_ok(db_deploy_get(f->db, id, &d));
	assert_string_equal(d.status, "running");
	assert_null(d.finished_at);
	assert_string_equal(d.log, "building\ndone\n");
	deployment_release(&d);

	assert_ok(db_deploy_set_status(f->db, id, "succeeded"));
	assert_ok(db_deploy_get(f->db, id, &d));
	assert_string_equal(d.status, "succeeded");
	assert_true(is_iso_utc(d.finished_at));
	deployment_release(&d);

	assert_err(db_deploy_set_status(f->db, id, "done"), GROVE_EINVAL, "is not one of queued, running");
	assert_err(db_deploy_set_status(f->db, 424242, "failed"), GROVE_ENOTFOUND, "no deployment with id 424242");
	assert_err(db_deploy_append_log(f->db, 424242, "x", 1), GROVE_ENOTFOUND, "no deployment with id 424242");
	assert_err(db_deploy_get(f->db, 424242, &d), GROVE_ENOTFOUND, "no deployment with id 424242");
	assert_err(db_deploy_create(f->db, "web", "", OID0, OID1, "alice", &id), GROVE_EINVAL, "ref is empty");
	assert_int_equal(id, 0);
}

/* The log keeps its newest 1 MiB, after a note that says it was cut. */
static void test_deploy_log_bound(void **state)
{
	struct fixture *f = *state;
	struct deployment d;
	struct strbuf line = STRBUF_INIT, big = STRBUF_INIT;
	int64_t id = 0, id2 = 0;
	int last = 0;

	assert_ok(db_deploy_create(f->db, "web", "refs/heads/main", OID0, OID1, "alice", &id));
	/* About 1.6 MiB in numbered 100-byte lines. */
	for (int i = 0; i < 16000; i += 100) {
		strbuf_reset(&big);
		for (int j = i; j < i + 100; j++)
			strbuf_addf(&big, "line %06d %88s\n", j, "x");
		assert_ok(db_deploy_append_log(f->db, id, big.buf, big.len));
		last = i + 99;
	}
	assert_ok(db_deploy_get(f->db, id, &d));
	assert_true(strlen(d.log) <= DEPLOY_LOG_MAX);
	assert_true(strlen(d.log) > DEPLOY_LOG_MAX - 200);
	assert_true(skip_prefix(d.log, DEPLOY_LOG_CUT, NULL));
	/* The note is there once, the kept text starts at a line, the newest line is last. */
	assert_null(strstr(d.log + 1, "[grove: earlier output cut"));
	assert_true(skip_prefix(d.log + strlen(DEPLOY_LOG_CUT), "line ", NULL));
	strbuf_addf(&line, "line %06d %88s\n", last, "x");
	assert_true(ends_with(d.log, line.buf));
	assert_null(strstr(d.log, "line 000000 "));
	deployment_release(&d);

	/* One write larger than the bound keeps its own tail. */
	assert_ok(db_deploy_create(f->db, "web", "refs/heads/main", OID0, OID1, "alice", &id2));
	strbuf_reset(&big);
	for (int j = 0; j < 30000; j++)
		strbuf_addf(&big, "big %06d %89s\n", j, "y");
	assert_true(big.len > 2 * DEPLOY_LOG_MAX);
	assert_ok(db_deploy_append_log(f->db, id2, "first\n", 6));
	assert_ok(db_deploy_append_log(f->db, id2, big.buf, big.len));
	assert_ok(db_deploy_get(f->db, id2, &d));
	assert_true(strlen(d.log) <= DEPLOY_LOG_MAX);
	assert_true(skip_prefix(d.log, DEPLOY_LOG_CUT "big ", NULL));
	strbuf_reset(&line);
	strbuf_addf(&line, "big %06d %89s\n", 29999, "y");
	assert_true(ends_with(d.log, line.buf));
	deployment_release(&d);

	/* A long line with no break: cut at a character, never inside one. */
	strbuf_reset(&big);
	for (int j = 0; j < 800000; j++)
		strbuf_addstr(&big, "é");
	assert_ok(db_deploy_append_log(f->db, id2, big.buf, big.len));
	assert_ok(db_deploy_get(f->db, id2, &d));
	assert_true(strlen(d.log) <= DEPLOY_LOG_MAX);
	const char *rest = d.log + strlen(DEPLOY_LOG_CUT);
	assert_true(skip_prefix(d.log, DEPLOY_LOG_CUT, NULL));
	assert_int_equal((unsigned char)rest[0], 0xc3);
	assert_int_equal(strlen(rest) % 2, 0);
	deployment_release(&d);

	strbuf_release(&line);
	strbuf_release(&big);
}

/* ---- open, schema upgrades, queries ---- */

static int count_rows(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	(*(int *)ctx)++;
	return 0;
}

static int stop_at_two(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	return ++(*(int *)ctx) == 2 ? GROVE_EPRECOND : 0;
}

static void test_schema_upgrade(void **state)
{
	struct fixture *f = *state;
	struct db *db2 = NULL, *db3 = NULL;
	struct user u;
	char *s;

	s = query1(f->db, "PRAGMA user_version");
	assert_int_equal(atoi(s), (int)ARRAY_SIZE(schema_steps));
	free(s);
	s = query1(f->db, "PRAGMA journal_mode");
	assert_string_equal(s, "wal");
	free(s);
	s = query1(f->db, "PRAGMA foreign_keys");
	assert_string_equal(s, "1");
	free(s);
	s = query1(f->db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
	assert_string_equal(s, "apps,collaborators,deployments,keys,settings,tokens,users");
	free(s);

	assert_ok(db_user_create(f->db, "alice", true));
	/* A second handle beside the first, then reopening: no schema step runs twice. */
	assert_ok(db_open(&db2, f->path));
	db_close(f->db);
	f->db = NULL;
	assert_ok(db_open(&f->db, f->path));
	assert_ok(db_user_get(f->db, "alice", &u));
	assert_true(u.admin);
	user_release(&u);
	assert_ok(db_user_get(db2, "alice", &u));
	user_release(&u);
	s = query1(f->db, "PRAGMA user_version");
	assert_int_equal(atoi(s), (int)ARRAY_SIZE(schema_steps));
	free(s);
	db_close(db2);

	/* A database from a newer grove is refused, not damaged. */
	s = query1(f->db, "PRAGMA user_version = 99");
	free(s);
	assert_err(db_open(&db3, f->path), GROVE_EPRECOND, "run a newer grove");
	assert_null(db3);
	s = query1(f->db, "PRAGMA user_version = 1");
	free(s);

	assert_err(db_open(&db3, "/nonexistent-dir/gate.db"), GROVE_EIO, "cannot open database /nonexistent-dir/gate.db");
	assert_null(db3);
	db_close(NULL);
}

static void test_query(void **state)
{
	struct fixture *f = *state;
	const char *params[] = { "a%" };
	int n = 0;

	assert_ok(db_user_create(f->db, "alice", false));
	assert_ok(db_user_create(f->db, "anna", false));
	assert_ok(db_user_create(f->db, "bob", false));
	assert_ok(db_query(f->db, "SELECT name FROM users WHERE name LIKE ?", params, 1, count_rows, &n));
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(db_query(f->db, "SELECT name FROM users", NULL, 0, stop_at_two, &n), GROVE_EPRECOND);
	assert_int_equal(n, 2);
	/* An injection attempt in a value stays a value. */
	const char *evil[] = { "x'; DROP TABLE users; --" };
	n = 0;
	assert_ok(db_query(f->db, "SELECT name FROM users WHERE name = ?", evil, 1, count_rows, &n));
	assert_int_equal(n, 0);
	assert_err(db_query(f->db, "SELECT 1; DROP TABLE users", NULL, 0, count_rows, &n), GROVE_EINVAL,
		   "more than one statement");
	assert_err(db_query(f->db, "SELECT ?", NULL, 0, count_rows, &n), GROVE_EINTERNAL, "1 parameters");
	assert_true(db_query(f->db, "SELEKT", NULL, 0, count_rows, &n) < 0);
	n = 0;
	assert_ok(db_query(f->db, "SELECT name FROM users", NULL, 0, count_rows, &n));
	assert_int_equal(n, 3);
}

/* The listings the admin API and the gate's greeting read. */
static void test_listings(void **state)
{
	struct fixture *f = *state;
	struct strbuf sb = STRBUF_INIT;
	struct app_counts apps;
	struct deploy_counts deploys;
	int64_t id;

	assert_ok(db_user_create(f->db, "bob", false));
	assert_ok(db_user_create(f->db, "alice", true));
	assert_ok(db_key_add(f->db, "alice", FP_A, KEY_A));
	assert_ok(db_app_create(f->db, "web", "main", ROUTE_CLUSTER));
	assert_ok(db_app_create(f->db, "api", "main", ROUTE_LEGACY));
	assert_ok(db_app_create(f->db, "db", "main", ROUTE_LEGACY));
	assert_ok(db_app_set_locked(f->db, "db", true));
	assert_ok(db_access_grant(f->db, "web", "bob", ACCESS_WRITE));
	assert_ok(db_access_grant(f->db, "api", "bob", ACCESS_READ));
	assert_ok(db_access_grant(f->db, "db", "bob", ACCESS_WRITE));

	assert_ok(db_users_each(f->db, NULL, collect_first, &sb));
	assert_string_equal(sb.buf, "alice,bob");
	strbuf_reset(&sb);
	assert_ok(db_users_each(f->db, "bob", collect_first, &sb));
	assert_string_equal(sb.buf, "bob");
	strbuf_reset(&sb);
	assert_ok(db_user_keys_each(f->db, "alice", collect_first, &sb));
	assert_string_equal(sb.buf, "alice");
	strbuf_reset(&sb);
	assert_ok(db_apps_each(f->db, NULL, collect_first, &sb));
	assert_string_equal(sb.buf, "api,db,web");
	strbuf_reset(&sb);
	/* Only what bob may push to. */
	assert_ok(db_writable_apps_each(f->db, "bob", collect_first, &sb));
	assert_string_equal(sb.buf, "db,web");
	strbuf_reset(&sb);
	assert_ok(db_collaborators_each(f->db, "web", collect_first, &sb));
	assert_string_equal(sb.buf, "bob");
	strbuf_reset(&sb);

	assert_ok(db_app_counts(f->db, &apps));
	assert_int_equal(apps.apps, 3);
	assert_int_equal(apps.legacy, 2);
	assert_int_equal(apps.cluster, 1);
	assert_int_equal(apps.locked, 1);

	for (int i = 0; i < 3; i++)
		assert_ok(db_deploy_create(f->db, "web", "refs/heads/main", "0", "1", "bob", &id));
	assert_ok(db_deploy_set_status(f->db, id, "running"));
	/* Newest first, at most the limit. */
	assert_ok(db_deploys_each(f->db, "web", 2, collect_first, &sb));
	char want[64];
	snprintf(want, sizeof(want), "%lld,%lld", (long long)id, (long long)id - 1);
	assert_string_equal(sb.buf, want);
	assert_ok(db_deploy_counts(f->db, &deploys));
	assert_int_equal(deploys.running, 1);
	assert_int_equal(deploys.queued, 2);
	assert_int_equal(deploys.users, 2);
	strbuf_release(&sb);
}

/* Access tokens (tokens.h): made, checked by their secret only, expired,
 * revoked, gone with their user; the secret is never stored. */
static void test_tokens(void **state)
{
	struct fixture *f = *state;
	char secret[TOKEN_SECRET_MAX], other[TOKEN_SECRET_MAX];
	struct user u;
	int64_t id, id2, got;
	char *s;

	assert_ok(db_user_create(f->db, "alice", false));
	struct token_opts laptop = { .name = "laptop" }, empty = { .name = "" }, bad = { .name = "x;y" },
			  old = { .name = "old", .expires_at = 1000 },
			  ci = { .name = "ci", .expires_at = (int64_t)time(NULL) + 3600, .read_only = true };
	bool ro;

	assert_err(token_create(f->db, "bob", &laptop, secret, sizeof(secret), &id), GROVE_ENOTFOUND, "bob");
	assert_err(token_create(f->db, "alice", &empty, secret, sizeof(secret), &id), GROVE_EINVAL, "name");
	assert_err(token_create(f->db, "alice", &bad, secret, sizeof(secret), &id), GROVE_EINVAL, "name");
	assert_err(token_create(f->db, "alice", &old, secret, sizeof(secret), &id), GROVE_EINVAL, "expired");
	assert_ok(token_create(f->db, "alice", &laptop, secret, sizeof(secret), &id));
	assert_err(token_create(f->db, "alice", &laptop, other, sizeof(other), &id2), GROVE_EEXISTS, "laptop");
	assert_int_equal(strlen(secret), 6 + 64);
	assert_true(!strncmp(secret, "grove_", 6));
	assert_ok(token_check(f->db, secret, &u, &got, &ro));
	assert_string_equal(u.name, "alice");
	assert_int_equal(got, id);
	assert_false(ro);
	user_release(&u);
	/* Only the hash is kept. */
	s = query1(f->db, "SELECT hash FROM tokens");
	assert_null(strstr(secret, s));
	assert_int_equal(strlen(s), 64);
	free(s);
	/* Wrong, truncated, not ours. */
	assert_int_equal(token_check(f->db, "grove_0000", &u, &got, &ro), GROVE_ENOTFOUND);
	secret[20] ^= 1;
	assert_int_equal(token_check(f->db, secret, &u, &got, &ro), GROVE_ENOTFOUND);
	secret[20] ^= 1;
	assert_int_equal(token_check(f->db, "password", &u, &got, &ro), GROVE_ENOTFOUND);
	/* Expired: no longer in, and not told apart from a wrong one. */
	assert_ok(token_create(f->db, "alice", &ci, other, sizeof(other), &id2));
	assert_ok(token_check(f->db, other, &u, &got, &ro));
	assert_true(ro);
	user_release(&u);
	assert_ok(sqldb_exec(db_sql(f->db), NULL, "test", "UPDATE tokens SET expires_at = 1 WHERE id = ?", "i", id2));
	assert_int_equal(token_check(f->db, other, &u, &got, &ro), GROVE_ENOTFOUND);
	/* Revoked: only by its user. */
	assert_ok(db_user_create(f->db, "bob", false));
	assert_int_equal(token_revoke(f->db, "bob", "laptop"), GROVE_ENOTFOUND);
	assert_ok(token_check(f->db, secret, &u, &got, &ro));
	user_release(&u);
	assert_ok(token_revoke(f->db, "alice", "laptop"));
	assert_int_equal(token_check(f->db, secret, &u, &got, &ro), GROVE_ENOTFOUND);
	assert_int_equal(token_revoke(f->db, "alice", "laptop"), GROVE_ENOTFOUND);
	/* By id too. */
	assert_ok(token_create(f->db, "alice", &laptop, secret, sizeof(secret), &id));
	char num[32];
	snprintf(num, sizeof(num), "%lld", (long long)id);
	assert_ok(token_revoke(f->db, "alice", num));
	assert_ok(token_create(f->db, "alice", &laptop, secret, sizeof(secret), &id));
	/* Gone with their user. */
	assert_ok(db_user_delete(f->db, "alice"));
	s = query1(f->db, "SELECT count(*) FROM tokens");
	assert_string_equal(s, "0");
	free(s);
}

static void test_names(void **state)
{
	enum route r = ROUTE_LEGACY;
	assert_string_equal(access_name(ACCESS_NONE), "none");
	assert_string_equal(access_name(ACCESS_READ), "read");
	assert_string_equal(access_name(ACCESS_WRITE), "write");
	assert_string_equal(route_name(ROUTE_LEGACY), "legacy");
	assert_string_equal(route_name(ROUTE_CLUSTER), "cluster");
	assert_ok(route_parse("cluster", &r));
	assert_int_equal(r, ROUTE_CLUSTER);
	assert_ok(route_parse("legacy", &r));
	assert_int_equal(r, ROUTE_LEGACY);
	assert_err(route_parse("Cluster", &r), GROVE_EINVAL, "neither \"legacy\" nor \"cluster\"");
	assert_err(route_parse(NULL, &r), GROVE_EINVAL, "neither");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deployments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deploy_log_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test(test_names),
	};
	log_init("test", LOG_WARN, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
