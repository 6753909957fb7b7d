/*
 * Unit tests for lib/sqldb: the statement text shared by SQLite and
 * PostgreSQL, and the SQLite side end to end on a real file (the
 * PostgreSQL side runs against a real server in tests/t/t0302).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/sqldb.h"
#include "lib/error.h"

static void test_translate(void **state)
{
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(sqldb_translate(true, "SELECT a FROM t WHERE b = ? AND c = ?", &out), 0);
	assert_string_equal(out.buf, "SELECT a FROM t WHERE b = $1 AND c = $2");
	assert_int_equal(sqldb_translate(false, "SELECT a FROM t WHERE b = ? AND c = ?", &out), 0);
	assert_string_equal(out.buf, "SELECT a FROM t WHERE b = ? AND c = ?");
	/* Numbered values keep their number. */
	assert_int_equal(sqldb_translate(true, "UPDATE t SET a = ?2 WHERE id = ?1 OR id = ?12", &out), 0);
	assert_string_equal(out.buf, "UPDATE t SET a = $2 WHERE id = $1 OR id = $12");
	assert_int_equal(sqldb_translate(true, "SET g = {GREATEST}(g, ?){FOR_UPDATE}", &out), 0);
	assert_string_equal(out.buf, "SET g = GREATEST(g, $1) FOR UPDATE");
	assert_int_equal(sqldb_translate(false, "SET g = {GREATEST}(g, ?){FOR_UPDATE}", &out), 0);
	assert_string_equal(out.buf, "SET g = MAX(g, ?)");
	assert_int_equal(sqldb_translate(false, "x LIMIT 1{SKIP_LOCKED}", &out), 0);
	assert_string_equal(out.buf, "x LIMIT 1");
	assert_int_equal(sqldb_translate(true, "x LIMIT 1{SKIP_LOCKED}", &out), 0);
	assert_string_equal(out.buf, "x LIMIT 1 FOR UPDATE SKIP LOCKED");
	assert_int_equal(sqldb_translate(false, "t = {NOW}", &out), 0);
	assert_string_equal(out.buf, "t = strftime('%Y-%m-%dT%H:%M:%SZ','now')");
	assert_int_equal(sqldb_translate(true, "{UNKNOWN}", &out), GROVE_EINTERNAL);
	strbuf_release(&out);
}

static const char *const lite[] = {
	"CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
	"ALTER TABLE kv ADD COLUMN note TEXT;",
};

static void test_sqlite(void **state)
{
	char path[] = "/tmp/grove-test-sqldb-XXXXXX";
	char file[64];
	const struct sqldb_schema schema = { lite, 2, NULL, 0, "test" };
	struct sqldb *db = NULL;
	struct sqldb_rows *rows = NULL;
	int64_t changes = -1;

	assert_non_null(mkdtemp(path));
	snprintf(file, sizeof(file), "%s/t.db", path);
	assert_int_equal(sqldb_open(&db, file, &schema), 0);
	assert_false(sqldb_is_pg(db));
	assert_string_equal(sqldb_display_name(db), file);
	assert_int_equal(sqldb_exec(db, &changes, "insert", "INSERT INTO kv (k, v, note) VALUES (?, ?, ?)", "sis", "a",
				  (int64_t)5, (const char *)NULL),
			 0);
	assert_int_equal(changes, 1);
	assert_int_equal(sqldb_exec(db, &changes, "insert", "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING",
				  "si", "a", (int64_t)9),
			 0);
	assert_int_equal(changes, 0);
	assert_int_equal(sqldb_exec(db, NULL, "insert", "INSERT INTO kv (k, v) VALUES (?, ?)", "si", "a", (int64_t)9),
			 GROVE_EEXISTS);
	assert_int_equal(sqldb_begin(db, "tx"), 0);
	assert_int_equal(sqldb_exec(db, NULL, "raise", "UPDATE kv SET v = {GREATEST}(v, ?2) WHERE k = ?1", "si", "a",
				  (int64_t)7),
			 0);
	assert_int_equal(sqldb_commit(db, "tx"), 0);
	assert_int_equal(sqldb_query(db, &rows, "read", "SELECT v, note FROM kv WHERE k = ?", "s", "a"), 0);
	assert_int_equal(sqldb_next(rows), 1);
	assert_int_equal(sqldb_int(rows, 0), 7);
	assert_null(sqldb_text(rows, 1));
	assert_int_equal(sqldb_next(rows), 0);
	sqldb_rows_free(rows);
	/* A rolled-back change is gone. */
	assert_int_equal(sqldb_begin(db, "tx"), 0);
	assert_int_equal(sqldb_exec(db, NULL, "del", "DELETE FROM kv", ""), 0);
	sqldb_rollback(db);
	assert_int_equal(sqldb_query(db, &rows, "count", "SELECT COUNT(*) FROM kv", ""), 0);
	assert_int_equal(sqldb_next(rows), 1);
	assert_int_equal(sqldb_int(rows, 0), 1);
	sqldb_rows_free(rows);
	/* One row's integers; no row is its own answer, for the caller to word. */
	int64_t v[2] = { -1, -1 };
	assert_int_equal(sqldb_query_ints(db, v, 2, "read", "SELECT v, COUNT(*) FROM kv WHERE k = ?", "s", "a"), 0);
	assert_int_equal(v[0], 7);
	assert_int_equal(v[1], 1);
	assert_int_equal(sqldb_query_ints(db, v, 1, "read", "SELECT v FROM kv WHERE k = ?", "s", "zz"), GROVE_ENOTFOUND);
	assert_int_equal(sqldb_query_ints(db, v, 1, "read", "SELECT nothing FROM nowhere", ""), GROVE_EINTERNAL);
	sqldb_close(db);
	/* Reopened: schema steps are not applied twice. */
	assert_int_equal(sqldb_open(&db, file, &schema), 0);
	sqldb_close(db);
	unlink(file);
	char wal[80];
	snprintf(wal, sizeof(wal), "%s-wal", file);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", file);
	unlink(wal);
	rmdir(path);
}

static void test_pg_unreachable(void **state)
{
	const struct sqldb_schema schema = { lite, 2, lite, 1, "test" };
	struct sqldb *db = NULL;
	/* Port 1 on loopback: nothing listens; the error says so, with no password shown. */
	int ret = sqldb_open(&db, "postgres://grove:hunter2@127.0.0.1:1/postgres?connect_timeout=2", &schema);
	assert_int_equal(ret, GROVE_EUNAVAIL);
	assert_null(db);
	assert_non_null(strstr(error_msg(), "postgres://grove:…@127.0.0.1:1/postgres"));
	assert_null(strstr(error_msg(), "hunter2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_translate),
		cmocka_unit_test(test_sqlite),
		cmocka_unit_test(test_pg_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
