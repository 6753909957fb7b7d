/* One database interface over SQLite and PostgreSQL: see dbx.h. */
#include "lib/dbx.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/sqldb.h"

#include <libpq-fe.h>

#define DBX_PARAMS_MAX 16

struct dbx {
	bool pg;
	struct sqldb *lite;
	PGconn *conn;
	char *conninfo;
	char *display;
	bool in_tx;
	int64_t changes;      /* PostgreSQL: of the last statement */
};

struct dbx_rows {
	struct dbx *db;
	sqlite3_stmt *st;     /* SQLite: stepped */
	PGresult *res;        /* PostgreSQL: all rows at once */
	int row, nrows;
	const char *what;
};

bool dbx_is_pg(const struct dbx *db)
{
	return db->pg;
}

const char *dbx_display_name(const struct dbx *db)
{
	return db->display;
}

int dbx_translate(bool pg, const char *sql, struct strbuf *out)
{
	static const struct {
		const char *token, *lite, *pg;
	} words[] = {
		{ "{NOW}", "strftime('%Y-%m-%dT%H:%M:%SZ','now')",
		  "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" },
		{ "{GREATEST}", "MAX", "GREATEST" },
		{ "{FOR_UPDATE}", "", " FOR UPDATE" },
		{ "{SKIP_LOCKED}", "", " FOR UPDATE SKIP LOCKED" },
	};
	int n = 0, ret = 0;

	strbuf_reset(out);
	for (const char *p = sql; *p && !ret;) {
		size_t k;
		if (*p == '{') {
			for (k = 0; k < ARRAY_SIZE(words); k++)
				if (!strncmp(p, words[k].token, strlen(words[k].token)))
					break;
			if (k == ARRAY_SIZE(words))
				return error_set(GROVE_EINTERNAL, "unknown SQL token at \"%.20s\"", p);
			ret = strbuf_addstr(out, pg ? words[k].pg : words[k].lite);
			p += strlen(words[k].token);
		} else if (*p == '?' && pg) {
			/* ?N: the N-th value; ?: the next one. */
			if (p[1] >= '1' && p[1] <= '9') {
				ret = strbuf_addch(out, '$');
				p++;
				while (*p >= '0' && *p <= '9' && !ret)
					ret = strbuf_addch(out, *p++);
			} else {
				ret = strbuf_addf(out, "$%d", ++n);
				p++;
			}
		} else {
			ret = strbuf_addch(out, *p++);
		}
	}
	return ret;
}

/* ---- PostgreSQL ---- */

static int pg_fail(struct dbx *db, const char *what, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);
	char clean[512];
	snprintf(clean, sizeof(clean), "%s", msg && *msg ? msg : "connection lost");
	for (char *c = clean; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (state && !strcmp(state, "23505"))
		return error_set(GROVE_EEXISTS, "%s: exists already", what);
	if (state && (!strncmp(state, "23", 2) || !strncmp(state, "22", 2)))
		return error_set(GROVE_EINVAL, "%s: %s", what, clean);
	if (!res || PQstatus(db->conn) != CONNECTION_OK || (state && !strncmp(state, "08", 2)))
		return error_set(GROVE_EUNAVAIL, "%s: database %s is unreachable: %s", what, db->display, clean);
	return error_set(GROVE_EINTERNAL, "%s: database %s: %s", what, db->display, clean);
}

static int pg_connect(struct dbx *db)
{
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	if (db->conn) {
		/* Lost (a restart of the server): a fresh connection, outside any transaction. */
		if (db->in_tx)
			return error_set(GROVE_EUNAVAIL, "database %s: the connection was lost inside a transaction",
					 db->display);
		PQfinish(db->conn);
	}
	db->conn = PQconnectdb(db->conninfo);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		int ret = error_set(GROVE_EUNAVAIL, "cannot connect to database %s: %s", db->display,
				    PQerrorMessage(db->conn));
		PQfinish(db->conn);
		db->conn = NULL;
		return ret;
	}
	return 0;
}

static int pg_exec(struct dbx *db, const char *what, const char *sql, const char *const *vals, int n, PGresult **out)
{
	struct strbuf q = STRBUF_INIT;
	PGresult *res = NULL;
	int ret;

	*out = NULL;
	if ((ret = dbx_translate(true, sql, &q)) || (ret = pg_connect(db)))
		goto out;
	res = PQexecParams(db->conn, q.buf, n, NULL, vals, NULL, NULL, 0);
	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
		ret = pg_fail(db, what, res);
		PQclear(res);
		goto out;
	}
	db->changes = strtoll(PQcmdTuples(res), NULL, 10);
	*out = res;
out:
	strbuf_release(&q);
	return ret;
}

static int pg_run(struct dbx *db, const char *what, const char *sql, const char *types, va_list ap, PGresult **out)
{
	char nums[DBX_PARAMS_MAX][24];
	const char *vals[DBX_PARAMS_MAX];
	int n = (int)strlen(types);

	*out = NULL;
	if (n > DBX_PARAMS_MAX)
		return error_set(GROVE_EINTERNAL, "%s: more than %d values", what, DBX_PARAMS_MAX);
	for (int i = 0; i < n; i++) {
		switch (types[i]) {
		case 's':
			vals[i] = va_arg(ap, const char *);
			break;
		case 'i':
			snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)va_arg(ap, int64_t));
			vals[i] = nums[i];
			break;
		case 'b':
			snprintf(nums[i], sizeof(nums[i]), "%d", va_arg(ap, int) ? 1 : 0);
			vals[i] = nums[i];
			break;
		default:
			return error_set(GROVE_EINTERNAL, "%s: bad value type '%c'", what, types[i]);
		}
	}
	return pg_exec(db, what, sql, vals, n, out);
}

static int pg_migrate(struct dbx *db, const struct dbx_schema *schema)
{
	PGresult *res = NULL;
	int64_t version = 0;
	char lockq[128];
	int ret;

	/* One migrator at a time across every daemon sharing the database. */
	snprintf(lockq, sizeof(lockq), "SELECT pg_advisory_lock(hashtext('grove-migrate-%s'))", schema->name);
	res = PQexec(db->conn, lockq);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ret = pg_fail(db, "locking the schema", res);
		PQclear(res);
		return ret;
	}
	PQclear(res);
	res = PQexec(db->conn, "CREATE TABLE IF NOT EXISTS grove_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL)");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		ret = pg_fail(db, "creating the schema table", res);
		goto out;
	}
	PQclear(res);
	{
		const char *vals[1] = { schema->name };
		res = PQexecParams(db->conn, "SELECT version FROM grove_schema WHERE name = $1", 1, NULL, vals, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ret = pg_fail(db, "reading the schema version", res);
		goto out;
	}
	if (PQntuples(res) == 1)
		version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (version > (int64_t)schema->npg) {
		ret = error_set(GROVE_EPRECOND, "database %s has schema version %lld but this grove knows only up to %zu: run a newer grove",
				db->display, (long long)version, schema->npg);
		goto out;
	}
	ret = 0;
	for (; version < (int64_t)schema->npg && !ret; version++) {
		char v[24];
		const char *vals[2] = { schema->name, v };
		snprintf(v, sizeof(v), "%lld", (long long)version + 1);
		res = PQexec(db->conn, "BEGIN");
		PQclear(res);
		res = PQexec(db->conn, schema->pg[version]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			ret = pg_fail(db, "applying a schema migration", res);
			PQclear(res);
			res = PQexec(db->conn, "ROLLBACK");
			break;
		}
		PQclear(res);
		res = PQexecParams(db->conn,
				   "INSERT INTO grove_schema (name, version) VALUES ($1, $2)"
				   " ON CONFLICT (name) DO UPDATE SET version = $2",
				   2, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			ret = pg_fail(db, "recording the schema version", res);
			PQclear(res);
			res = PQexec(db->conn, "ROLLBACK");
			break;
		}
		PQclear(res);
		res = PQexec(db->conn, "COMMIT");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ret = pg_fail(db, "committing a schema migration", res);
		PQclear(res);
		res = NULL;
		if (!ret)
			log_info("db.migrated", "database=%s version=%lld", db->display, (long long)version + 1);
	}
out:
	PQclear(res);
	snprintf(lockq, sizeof(lockq), "SELECT pg_advisory_unlock(hashtext('grove-migrate-%s'))", schema->name);
	PQclear(PQexec(db->conn, lockq));
	return ret;
}

/* ---- both ---- */

static bool is_pg_name(const char *name)
{
	return skip_prefix(name, "postgres://", NULL) || skip_prefix(name, "postgresql://", NULL);
}

int dbx_open(struct dbx **out, const char *name, const struct dbx_schema *schema)
{
	struct dbx *db = xcalloc(1, sizeof(*db));
	int ret;

	*out = NULL;
	db->pg = is_pg_name(name);
	if (!db->pg) {
		db->display = xstrdup(name);
		ret = sqldb_open(&db->lite, name, schema->sqlite, schema->nsqlite);
	} else {
		/* Shown without the password: postgres://user:secret@host → postgres://user:…@host. */
		const char *at = strchr(name, '@'), *scheme_end = strstr(name, "://") + 3;
		const char *colon = at ? memchr(scheme_end, ':', (size_t)(at - scheme_end)) : NULL;
		db->display = colon ? xasprintf("%.*s:…%s", (int)(colon - name), name, at) : xstrdup(name);
		db->conninfo = xstrdup(name);
		ret = pg_connect(db);
		if (!ret)
			ret = pg_migrate(db, schema);
	}
	if (ret) {
		error_wrap(ret, "opening database %s", db->display);
		dbx_close(db);
		return ret;
	}
	*out = db;
	return 0;
}

void dbx_close(struct dbx *db)
{
	if (!db)
		return;
	sqldb_close(db->lite);
	if (db->conn)
		PQfinish(db->conn);
	if (db->conninfo)
		explicit_bzero(db->conninfo, strlen(db->conninfo));
	free(db->conninfo);
	free(db->display);
	free(db);
}

static int lite_prepare(struct dbx *db, sqlite3_stmt **st, const char *what, const char *sql, const char *types,
			va_list ap)
{
	struct strbuf q = STRBUF_INIT;
	int ret = dbx_translate(false, sql, &q);
	if (!ret)
		ret = sqldb_vprepare(db->lite, st, what, q.buf, types, ap);
	strbuf_release(&q);
	return ret;
}

int dbx_exec(struct dbx *db, int64_t *changes, const char *what, const char *sql, const char *types, ...)
{
	va_list ap;
	int ret;

	va_start(ap, types);
	if (db->pg) {
		PGresult *res = NULL;
		ret = pg_run(db, what, sql, types, ap, &res);
		if (!ret && changes)
			*changes = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	} else {
		sqlite3_stmt *st = NULL;
		ret = lite_prepare(db, &st, what, sql, types, ap);
		while (!ret && (ret = sqldb_step(db->lite, st, what)) == 1)
			ret = 0;
		if (!ret && changes)
			*changes = sqlite3_changes(db->lite->h);
		sqlite3_finalize(st);
	}
	va_end(ap);
	return ret;
}

int dbx_query(struct dbx *db, struct dbx_rows **out, const char *what, const char *sql, const char *types, ...)
{
	struct dbx_rows *rows = xcalloc(1, sizeof(*rows));
	va_list ap;
	int ret;

	*out = NULL;
	rows->db = db;
	rows->what = what;
	rows->row = -1;
	va_start(ap, types);
	if (db->pg) {
		ret = pg_run(db, what, sql, types, ap, &rows->res);
		if (!ret)
			rows->nrows = PQntuples(rows->res);
	} else {
		ret = lite_prepare(db, &rows->st, what, sql, types, ap);
	}
	va_end(ap);
	if (ret) {
		dbx_rows_free(rows);
		return ret;
	}
	*out = rows;
	return 0;
}

int dbx_query_strv(struct dbx *db, struct dbx_rows **out, const char *what, const char *sql,
		   const char *const *values, size_t n)
{
	struct dbx_rows *rows = xcalloc(1, sizeof(*rows));
	int ret = 0;

	*out = NULL;
	rows->db = db;
	rows->what = what;
	rows->row = -1;
	if (n > DBX_PARAMS_MAX) {
		ret = error_set(GROVE_EINTERNAL, "%s: more than %d values", what, DBX_PARAMS_MAX);
	} else if (db->pg) {
		ret = pg_exec(db, what, sql, values, (int)n, &rows->res);
		if (!ret)
			rows->nrows = PQntuples(rows->res);
	} else {
		struct strbuf q = STRBUF_INIT;
		ret = dbx_translate(false, sql, &q);
		if (!ret && sqlite3_prepare_v2(db->lite->h, q.buf, -1, &rows->st, NULL) != SQLITE_OK)
			ret = sqldb_fail(db->lite, what);
		for (size_t i = 0; !ret && i < n; i++) {
			int rc = values[i] ? sqlite3_bind_text(rows->st, (int)i + 1, values[i], -1, SQLITE_TRANSIENT)
					   : sqlite3_bind_null(rows->st, (int)i + 1);
			if (rc != SQLITE_OK)
				ret = sqldb_fail(db->lite, what);
		}
		strbuf_release(&q);
	}
	if (ret) {
		dbx_rows_free(rows);
		return ret;
	}
	*out = rows;
	return 0;
}

int dbx_ncols(struct dbx_rows *rows)
{
	return rows->res ? PQnfields(rows->res) : sqlite3_column_count(rows->st);
}

const char *dbx_colname(struct dbx_rows *rows, int i)
{
	return rows->res ? PQfname(rows->res, i) : sqlite3_column_name(rows->st, i);
}

char *dbx_dup(struct dbx_rows *rows, int i)
{
	const char *v = dbx_text(rows, i);
	return v ? xstrdup(v) : NULL;
}

int64_t dbx_changes(struct dbx *db)
{
	return db->pg ? db->changes : sqlite3_changes(db->lite->h);
}

int dbx_next(struct dbx_rows *rows)
{
	if (rows->res)
		return ++rows->row < rows->nrows ? 1 : 0;
	return sqldb_step(rows->db->lite, rows->st, rows->what);
}

const char *dbx_text(struct dbx_rows *rows, int i)
{
	if (rows->res)
		return PQgetisnull(rows->res, rows->row, i) ? NULL : PQgetvalue(rows->res, rows->row, i);
	return (const char *)sqlite3_column_text(rows->st, i);
}

int64_t dbx_int(struct dbx_rows *rows, int i)
{
	if (rows->res) {
		const char *v = dbx_text(rows, i);
		return v ? strtoll(v, NULL, 10) : 0;
	}
	return sqlite3_column_int64(rows->st, i);
}

void dbx_rows_free(struct dbx_rows *rows)
{
	if (!rows)
		return;
	sqlite3_finalize(rows->st);
	PQclear(rows->res);
	free(rows);
}

int dbx_begin(struct dbx *db, const char *what)
{
	int ret = dbx_exec(db, NULL, what, db->pg ? "BEGIN" : "BEGIN IMMEDIATE", "");
	if (!ret)
		db->in_tx = true;
	return ret;
}

int dbx_commit(struct dbx *db, const char *what)
{
	int ret = dbx_exec(db, NULL, what, "COMMIT", "");
	if (!ret)
		db->in_tx = false;
	return ret;
}

void dbx_rollback(struct dbx *db)
{
	if (db->pg) {
		if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
			PQclear(PQexec(db->conn, "ROLLBACK"));
	} else {
		sqldb_rollback(db->lite);
	}
	db->in_tx = false;
}
