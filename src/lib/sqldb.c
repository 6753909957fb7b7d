/* One database interface over SQLite and PostgreSQL: see sqldb.h. */
#include "lib/sqldb.h"
#include "lib/error.h"
#include "lib/log.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#define SQLDB_PARAMS_MAX 16

struct sqldb {
	bool pg;
	struct lite *lite;
	PGconn *conn;
	char *conninfo;
	char *display;
	bool in_tx;
	int64_t changes;      /* PostgreSQL: of the last statement */
};

struct sqldb_rows {
	struct sqldb *db;
	sqlite3_stmt *st;     /* SQLite: stepped */
	PGresult *res;        /* PostgreSQL: all rows at once */
	int row, nrows;
	const char *what;
};

/* ---- SQLite ---- */

/*
 * A SQLite file: one handle per process or thread (SQLite handles are not
 * shared across fork), WAL mode so that many readers run beside one writer,
 * each waiting up to five seconds for a lock. Schema upgrades run at open, each
 * step in its own IMMEDIATE transaction that re-reads `PRAGMA user_version`,
 * so that daemons opening one file at once apply each step exactly once.
 */
struct lite {
	sqlite3 *h;
	char *path;
};

static int lite_step(struct lite *db, sqlite3_stmt *st, const char *what);
static void lite_close(struct lite *db);

static int lite_fail(struct lite *db, const char *what)
{
	int ext = sqlite3_extended_errcode(db->h);
	const char *msg = sqlite3_errmsg(db->h);
	switch (ext & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return error_set(GROVE_EUNAVAIL, "%s: database %s stayed locked by another process for 5 s: retry",
				 what, db->path);
	case SQLITE_CONSTRAINT:
		if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
			return error_set(GROVE_EEXISTS, "%s: exists already", what);
		return error_set(GROVE_EINVAL, "%s: %s", what, msg);
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
		return error_set(GROVE_EIO, "%s: database %s: %s", what, db->path, msg);
	default:
		return error_set(GROVE_EINTERNAL, "%s: database %s: %s", what, db->path, msg);
	}
}

static int lite_vprepare(struct lite *db, sqlite3_stmt **out, const char *what, const char *sql,
		    const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, ret = 0;

	*out = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return lite_fail(db, what);
	for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
		switch (types[i]) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i + 1);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'b':
			rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int) ? 1 : 0);
			break;
		default:
			rc = SQLITE_MISUSE;
		}
	}
	if (rc != SQLITE_OK) {
		ret = error_set(GROVE_EINTERNAL, "%s: cannot bind parameters: %s", what, sqlite3_errstr(rc));
		sqlite3_finalize(st);
		return ret;
	}
	*out = st;
	return 0;
}

static int lite_prepare(struct lite *db, sqlite3_stmt **out, const char *what, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int ret = lite_vprepare(db, out, what, sql, types, ap);
	va_end(ap);
	return ret;
}

static int lite_step(struct lite *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return lite_fail(db, what);
}

char *lite_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? xstrdup((const char *)s) : NULL;
}

static int lite_exec(struct lite *db, const char *sql, const char *what)
{
	if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		return lite_fail(db, what);
	return 0;
}

static void lite_rollback(struct lite *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- open, upgrade the schema, close ---- */

static int read_user_version(struct lite *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int ret = lite_prepare(db, &st, "reading the schema version", "PRAGMA user_version", "");
	if (ret)
		return ret;
	ret = lite_step(db, st, "reading the schema version");
	if (ret == 1) {
		*out = sqlite3_column_int(st, 0);
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_EINTERNAL, "PRAGMA user_version returned no row");
	}
	sqlite3_finalize(st);
	return ret;
}

static int schema_upgrade(struct lite *db, const char *const *steps, size_t n)
{
	const int latest = (int)n;
	int version = 0, ret;

	ret = read_user_version(db, &version);
	if (ret)
		return ret;
	while (version < latest) {
		char pragma[64];
		ret = lite_exec(db, "BEGIN IMMEDIATE", "starting a schema upgrade");
		if (ret)
			return ret;
		/* Another daemon may have upgraded the schema while this one waited for the lock. */
		ret = read_user_version(db, &version);
		if (ret)
			goto fail;
		if (version >= latest) {
			ret = lite_exec(db, "COMMIT", "ending a schema upgrade");
			if (ret)
				goto fail;
			break;
		}
		if (version < 0) {
			ret = error_set(GROVE_EINTERNAL, "database %s has schema version %d, which no grove writes", db->path, version);
			goto fail;
		}
		if (sqlite3_exec(db->h, steps[version], NULL, NULL, NULL) != SQLITE_OK) {
			ret = lite_fail(db, "applying a schema step");
			error_wrap(ret, "schema step %d", version + 1);
			goto fail;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		ret = lite_exec(db, pragma, "recording the schema version");
		if (ret)
			goto fail;
		ret = lite_exec(db, "COMMIT", "committing a schema upgrade");
		if (ret)
			goto fail;
		log_info("db.schema_upgraded", "path=%s version=%d", db->path, version + 1);
		version++;
	}
	if (version > latest)
		return error_set(GROVE_EPRECOND, "database %s has schema version %d but this grove knows only up to %d: run a newer grove",
				 db->path, version, latest);
	return 0;
fail:
	lite_rollback(db);
	return ret;
}

/* n < 0: no upgrade (the daemon made the schema current when it started). */
static int lite_open(struct lite **out, const char *path, const char *const *steps, ssize_t n)
{
	struct lite *db = NULL;
	int ret = 0, fd;

	*out = NULL;
	if (!path || !*path)
		return error_set(GROVE_EINVAL, "no database path given");
	db = xcalloc(1, sizeof(*db));
	db->path = xstrdup(path);
	/* Create the file private to the daemon before SQLite would create it
	 * 0644 — only when it does not exist. Opening and closing the file of a
	 * database this process already has open would drop every POSIX lock
	 * the process holds on it (close(2) releases them all), and another
	 * process could then reset the WAL under a live connection: writes
	 * lost. */
	if (strcmp(path, ":memory:") && access(path, F_OK)) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			ret = error_set(GROVE_EIO, "cannot open database %s: %s", path, strerror(errno));
			goto out;
		}
		if (fd >= 0)
			close(fd);
	}
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		ret = error_set(GROVE_EIO, "cannot open database %s: %s", path,
				db->h ? sqlite3_errmsg(db->h) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, 5000);
	ret = lite_exec(db, "PRAGMA foreign_keys = ON", "turning on foreign keys");
	if (!ret)
		ret = lite_exec(db, "PRAGMA journal_mode = WAL", "turning on WAL mode");
	/* WAL makes NORMAL durable across application crashes; a power cut may lose the last commit. */
	if (!ret)
		ret = lite_exec(db, "PRAGMA synchronous = NORMAL", "setting synchronous mode");
	if (!ret && n >= 0)
		ret = schema_upgrade(db, steps, (size_t)n);
	if (ret) {
		error_wrap(ret, "opening database %s", path);
		goto out;
	}
	*out = db;
	db = NULL;
out:
	lite_close(db);
	return ret;
}

static void lite_close(struct lite *db)
{
	if (!db)
		return;
	if (db->h)
		sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

/* ---- users and keys ---- */

/* ---- either engine ---- */

bool sqldb_is_pg(const struct sqldb *db)
{
	return db->pg;
}

const char *sqldb_display_name(const struct sqldb *db)
{
	return db->display;
}

int sqldb_translate(bool pg, const char *sql, struct strbuf *out)
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

static int pg_fail(struct sqldb *db, const char *what, PGresult *res)
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

static int pg_connect(struct sqldb *db)
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

static int pg_exec(struct sqldb *db, const char *what, const char *sql, const char *const *vals, int n, PGresult **out)
{
	struct strbuf q = STRBUF_INIT;
	PGresult *res = NULL;
	int ret;

	*out = NULL;
	if ((ret = sqldb_translate(true, sql, &q)) || (ret = pg_connect(db)))
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

static int pg_run(struct sqldb *db, const char *what, const char *sql, const char *types, va_list ap, PGresult **out)
{
	char nums[SQLDB_PARAMS_MAX][24];
	const char *vals[SQLDB_PARAMS_MAX];
	int n = (int)strlen(types);

	*out = NULL;
	if (n > SQLDB_PARAMS_MAX)
		return error_set(GROVE_EINTERNAL, "%s: more than %d values", what, SQLDB_PARAMS_MAX);
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

static int pg_schema_upgrade(struct sqldb *db, const struct sqldb_schema *schema)
{
	PGresult *res = NULL;
	int64_t version = 0;
	char lockq[128];
	int ret;

	/* One upgrader at a time across every daemon sharing the database (the
	 * lock's name predates the word: kept, so that old and new daemons of a
	 * rolling upgrade take the same lock). */
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
			ret = pg_fail(db, "applying a schema step", res);
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
			ret = pg_fail(db, "committing a schema upgrade", res);
		PQclear(res);
		res = NULL;
		if (!ret)
			log_info("db.schema_upgraded", "database=%s version=%lld", db->display, (long long)version + 1);
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

static int sqldb_open_as(struct sqldb **out, const char *name, const struct sqldb_schema *schema, bool upgrade)
{
	struct sqldb *db = xcalloc(1, sizeof(*db));
	int ret;

	*out = NULL;
	db->pg = is_pg_name(name);
	if (!db->pg) {
		db->display = xstrdup(name);
		ret = lite_open(&db->lite, name, schema->sqlite, upgrade ? (ssize_t)schema->nsqlite : -1);
	} else {
		/* Shown without the password: postgres://user:secret@host → postgres://user:…@host. */
		const char *at = strchr(name, '@'), *scheme_end = strstr(name, "://") + 3;
		const char *colon = at ? memchr(scheme_end, ':', (size_t)(at - scheme_end)) : NULL;
		db->display = colon ? xasprintf("%.*s:…%s", (int)(colon - name), name, at) : xstrdup(name);
		db->conninfo = xstrdup(name);
		ret = pg_connect(db);
		if (!ret && upgrade)
			ret = pg_schema_upgrade(db, schema);
	}
	if (ret) {
		error_wrap(ret, "opening database %s", db->display);
		sqldb_close(db);
		return ret;
	}
	*out = db;
	return 0;
}

int sqldb_open(struct sqldb **out, const char *name, const struct sqldb_schema *schema)
{
	return sqldb_open_as(out, name, schema, true);
}

int sqldb_attach(struct sqldb **out, const char *name, const struct sqldb_schema *schema)
{
	return sqldb_open_as(out, name, schema, false);
}

void sqldb_close(struct sqldb *db)
{
	if (!db)
		return;
	lite_close(db->lite);
	if (db->conn)
		PQfinish(db->conn);
	if (db->conninfo)
		explicit_bzero(db->conninfo, strlen(db->conninfo));
	free(db->conninfo);
	free(db->display);
	free(db);
}

static int lite_translate_prepare(struct sqldb *db, sqlite3_stmt **st, const char *what, const char *sql, const char *types,
			va_list ap)
{
	struct strbuf q = STRBUF_INIT;
	int ret = sqldb_translate(false, sql, &q);
	if (!ret)
		ret = lite_vprepare(db->lite, st, what, q.buf, types, ap);
	strbuf_release(&q);
	return ret;
}

int sqldb_exec(struct sqldb *db, int64_t *changes, const char *what, const char *sql, const char *types, ...)
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
		ret = lite_translate_prepare(db, &st, what, sql, types, ap);
		while (!ret && (ret = lite_step(db->lite, st, what)) == 1)
			ret = 0;
		if (!ret && changes)
			*changes = sqlite3_changes(db->lite->h);
		sqlite3_finalize(st);
	}
	va_end(ap);
	return ret;
}

static int query_va(struct sqldb *db, struct sqldb_rows **out, const char *what, const char *sql, const char *types,
		    va_list ap)
{
	struct sqldb_rows *rows = xcalloc(1, sizeof(*rows));
	int ret;

	*out = NULL;
	rows->db = db;
	rows->what = what;
	rows->row = -1;
	if (db->pg) {
		ret = pg_run(db, what, sql, types, ap, &rows->res);
		if (!ret)
			rows->nrows = PQntuples(rows->res);
	} else {
		ret = lite_translate_prepare(db, &rows->st, what, sql, types, ap);
	}
	if (ret) {
		sqldb_rows_free(rows);
		return ret;
	}
	*out = rows;
	return 0;
}

int sqldb_query(struct sqldb *db, struct sqldb_rows **out, const char *what, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int ret = query_va(db, out, what, sql, types, ap);
	va_end(ap);
	return ret;
}

int sqldb_query_ints(struct sqldb *db, int64_t *vals, int n, const char *what, const char *sql, const char *types,
		     ...)
{
	struct sqldb_rows *rows = NULL;
	va_list ap;
	va_start(ap, types);
	int ret = query_va(db, &rows, what, sql, types, ap);
	va_end(ap);
	if (!ret && (ret = sqldb_next(rows)) == 1) {
		for (int i = 0; i < n; i++)
			vals[i] = sqldb_int(rows, i);
		ret = 0;
	} else if (!ret) {
		ret = error_set(GROVE_ENOTFOUND, "%s: no row", what);
	}
	sqldb_rows_free(rows);
	return ret;
}

int sqldb_query_strv(struct sqldb *db, struct sqldb_rows **out, const char *what, const char *sql,
		   const char *const *values, size_t n)
{
	struct sqldb_rows *rows = xcalloc(1, sizeof(*rows));
	int ret = 0;

	*out = NULL;
	rows->db = db;
	rows->what = what;
	rows->row = -1;
	if (n > SQLDB_PARAMS_MAX) {
		ret = error_set(GROVE_EINTERNAL, "%s: more than %d values", what, SQLDB_PARAMS_MAX);
	} else if (db->pg) {
		ret = pg_exec(db, what, sql, values, (int)n, &rows->res);
		if (!ret)
			rows->nrows = PQntuples(rows->res);
	} else {
		struct strbuf q = STRBUF_INIT;
		ret = sqldb_translate(false, sql, &q);
		if (!ret && sqlite3_prepare_v2(db->lite->h, q.buf, -1, &rows->st, NULL) != SQLITE_OK)
			ret = lite_fail(db->lite, what);
		for (size_t i = 0; !ret && i < n; i++) {
			int rc = values[i] ? sqlite3_bind_text(rows->st, (int)i + 1, values[i], -1, SQLITE_TRANSIENT)
					   : sqlite3_bind_null(rows->st, (int)i + 1);
			if (rc != SQLITE_OK)
				ret = lite_fail(db->lite, what);
		}
		strbuf_release(&q);
	}
	if (ret) {
		sqldb_rows_free(rows);
		return ret;
	}
	*out = rows;
	return 0;
}

int sqldb_ncols(struct sqldb_rows *rows)
{
	return rows->res ? PQnfields(rows->res) : sqlite3_column_count(rows->st);
}

const char *sqldb_colname(struct sqldb_rows *rows, int i)
{
	return rows->res ? PQfname(rows->res, i) : sqlite3_column_name(rows->st, i);
}

char *sqldb_dup(struct sqldb_rows *rows, int i)
{
	const char *v = sqldb_text(rows, i);
	return v ? xstrdup(v) : NULL;
}

int64_t sqldb_changes(struct sqldb *db)
{
	return db->pg ? db->changes : sqlite3_changes(db->lite->h);
}

int sqldb_next(struct sqldb_rows *rows)
{
	if (rows->res)
		return ++rows->row < rows->nrows ? 1 : 0;
	return lite_step(rows->db->lite, rows->st, rows->what);
}

const char *sqldb_text(struct sqldb_rows *rows, int i)
{
	if (rows->res)
		return PQgetisnull(rows->res, rows->row, i) ? NULL : PQgetvalue(rows->res, rows->row, i);
	return (const char *)sqlite3_column_text(rows->st, i);
}

int64_t sqldb_int(struct sqldb_rows *rows, int i)
{
	if (rows->res) {
		const char *v = sqldb_text(rows, i);
		return v ? strtoll(v, NULL, 10) : 0;
	}
	return sqlite3_column_int64(rows->st, i);
}

void sqldb_rows_free(struct sqldb_rows *rows)
{
	if (!rows)
		return;
	sqlite3_finalize(rows->st);
	PQclear(rows->res);
	free(rows);
}

int sqldb_begin(struct sqldb *db, const char *what)
{
	int ret = sqldb_exec(db, NULL, what, db->pg ? "BEGIN" : "BEGIN IMMEDIATE", "");
	if (!ret)
		db->in_tx = true;
	return ret;
}

int sqldb_commit(struct sqldb *db, const char *what)
{
	int ret = sqldb_exec(db, NULL, what, "COMMIT", "");
	if (!ret)
		db->in_tx = false;
	return ret;
}

void sqldb_rollback(struct sqldb *db)
{
	if (db->pg) {
		if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
			PQclear(PQexec(db->conn, "ROLLBACK"));
	} else {
		lite_rollback(db->lite);
	}
	db->in_tx = false;
}
