/* SQLite databases of Grove's daemons: see sqldb.h. */
#include "lib/sqldb.h"
#include "lib/error.h"
#include "lib/log.h"

#include <fcntl.h>

int sqldb_fail(struct sqldb *db, const char *what)
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

int sqldb_vprepare(struct sqldb *db, sqlite3_stmt **out, const char *what, const char *sql,
		    const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, ret = 0;

	*out = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return sqldb_fail(db, what);
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

int sqldb_prepare(struct sqldb *db, sqlite3_stmt **out, const char *what, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int ret = sqldb_vprepare(db, out, what, sql, types, ap);
	va_end(ap);
	return ret;
}

int sqldb_run(struct sqldb *db, const char *what, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int ret;

	va_start(ap, types);
	ret = sqldb_vprepare(db, &st, what, sql, types, ap);
	va_end(ap);
	while (!ret && (ret = sqldb_step(db, st, what)) == 1)
		ret = 0;
	sqlite3_finalize(st);
	return ret;
}

int sqldb_step(struct sqldb *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sqldb_fail(db, what);
}

char *sqldb_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? xstrdup((const char *)s) : NULL;
}

int sqldb_exec(struct sqldb *db, const char *sql, const char *what)
{
	if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sqldb_fail(db, what);
	return 0;
}

void sqldb_rollback(struct sqldb *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- open, migrate, close ---- */

static int read_user_version(struct sqldb *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int ret = sqldb_prepare(db, &st, "reading the schema version", "PRAGMA user_version", "");
	if (ret)
		return ret;
	ret = sqldb_step(db, st, "reading the schema version");
	if (ret == 1) {
		*out = sqlite3_column_int(st, 0);
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_EINTERNAL, "PRAGMA user_version returned no row");
	}
	sqlite3_finalize(st);
	return ret;
}

static int migrate(struct sqldb *db, const char *const *migrations, size_t n)
{
	const int latest = (int)n;
	int version = 0, ret;

	ret = read_user_version(db, &version);
	if (ret)
		return ret;
	while (version < latest) {
		char pragma[64];
		ret = sqldb_exec(db, "BEGIN IMMEDIATE", "starting a schema migration");
		if (ret)
			return ret;
		/* Another daemon may have migrated while this one waited for the lock. */
		ret = read_user_version(db, &version);
		if (ret)
			goto fail;
		if (version >= latest) {
			ret = sqldb_exec(db, "COMMIT", "ending a schema migration");
			if (ret)
				goto fail;
			break;
		}
		if (version < 0) {
			ret = error_set(GROVE_EINTERNAL, "database %s has schema version %d, which no grove writes", db->path, version);
			goto fail;
		}
		if (sqlite3_exec(db->h, migrations[version], NULL, NULL, NULL) != SQLITE_OK) {
			ret = sqldb_fail(db, "applying a schema migration");
			error_wrap(ret, "migration %d", version + 1);
			goto fail;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		ret = sqldb_exec(db, pragma, "recording the schema version");
		if (ret)
			goto fail;
		ret = sqldb_exec(db, "COMMIT", "committing a schema migration");
		if (ret)
			goto fail;
		log_info("db.migrated", "path=%s version=%d", db->path, version + 1);
		version++;
	}
	if (version > latest)
		return error_set(GROVE_EPRECOND, "database %s has schema version %d but this grove knows only up to %d: run a newer grove",
				 db->path, version, latest);
	return 0;
fail:
	sqldb_rollback(db);
	return ret;
}

int sqldb_open(struct sqldb **out, const char *path, const char *const *migrations, size_t n)
{
	struct sqldb *db = NULL;
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
	ret = sqldb_exec(db, "PRAGMA foreign_keys = ON", "turning on foreign keys");
	if (!ret)
		ret = sqldb_exec(db, "PRAGMA journal_mode = WAL", "turning on WAL mode");
	/* WAL makes NORMAL durable across application crashes; a power cut may lose the last commit. */
	if (!ret)
		ret = sqldb_exec(db, "PRAGMA synchronous = NORMAL", "setting synchronous mode");
	if (!ret)
		ret = migrate(db, migrations, n);
	if (ret) {
		error_wrap(ret, "opening database %s", path);
		goto out;
	}
	*out = db;
	db = NULL;
out:
	sqldb_close(db);
	return ret;
}

void sqldb_close(struct sqldb *db)
{
	if (!db)
		return;
	if (db->h)
		sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

/* ---- users and keys ---- */
