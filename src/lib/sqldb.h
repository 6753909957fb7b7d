/*
 * The database connection, one for every role: opening, schema upgrades,
 * statements, transactions. The queries of a role are typed functions of its
 * own over this (gate/db.c: users, apps, deployments; cluster/state.c:
 * replicas and jobs); no other file writes SQL.
 *
 * One database interface over two engines: a SQLite file (one daemon, the
 * default) or a PostgreSQL server (several daemons sharing it: cluster
 * routers), chosen by the configured name — "postgres://…" or
 * "postgresql://…" is a libpq connection URI, anything else a file path.
 *
 * Statements are written once, with `?` placeholders (or `?N` for the N-th
 * value) and a few spellings that differ between the engines:
 *
 *   {NOW}          the time as "YYYY-MM-DDTHH:MM:SSZ" text
 *   {GREATEST}     the larger of two values: MAX(a, b) / GREATEST(a, b)
 *   {FOR_UPDATE}   row locks in a transaction: nothing / FOR UPDATE
 *   {SKIP_LOCKED}  for job queues: nothing / FOR UPDATE SKIP LOCKED
 *
 * Values are always bound, never spliced. Types, one letter a value: 's'
 * string (NULL binds NULL), 'i' int64_t, 'b' bool (int).
 *
 * A handle is used by one thread at a time (the caller locks). With
 * PostgreSQL each handle is one connection; a lost connection is reopened
 * at the next statement outside a transaction.
 */
#ifndef GROVE_SQLDB_H
#define GROVE_SQLDB_H

#include "lib/common.h"
#include "lib/strbuf.h"

#include <stdarg.h>

struct sqldb;
struct sqldb_rows;

/* The time as "YYYY-MM-DDTHH:MM:SSZ" in a SQLite schema's DEFAULT. */
#define SQLDB_SQLITE_NOW "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

struct sqldb_schema {
	const char *const *sqlite;   /* schema steps, oldest first */
	size_t nsqlite;
	const char *const *pg;
	size_t npg;
	const char *name;            /* for PostgreSQL's schema lock and version table */
};

int sqldb_open(struct sqldb **out, const char *name, const struct sqldb_schema *schema);
/* As sqldb_open, without the schema upgrade: for the handles a daemon opens per
 * request or per session, once it upgraded the schema at its start (a lock and three
 * round trips to PostgreSQL saved each time). */
int sqldb_attach(struct sqldb **out, const char *name, const struct sqldb_schema *schema);
void sqldb_close(struct sqldb *db);
bool sqldb_is_pg(const struct sqldb *db);
/* The name with any password cut out: for logs. */
const char *sqldb_display_name(const struct sqldb *db);

/* A statement without rows; *changes (if not NULL): rows it changed. */
int sqldb_exec(struct sqldb *db, int64_t *changes, const char *what, const char *sql, const char *types, ...);
/* A statement with rows: *out to walk with sqldb_next, free with sqldb_rows_free. */
int sqldb_query(struct sqldb *db, struct sqldb_rows **out, const char *what, const char *sql, const char *types, ...);
/* The first row's first n columns, as integers: 0, GROVE_ENOTFOUND when
 * there is no row (the caller says what that means), or an error. */
int sqldb_query_ints(struct sqldb *db, int64_t *vals, int n, const char *what, const char *sql, const char *types,
		     ...);
/* As sqldb_query, with n string values (NULL binds NULL): for generic queries. */
int sqldb_query_strv(struct sqldb *db, struct sqldb_rows **out, const char *what, const char *sql,
		   const char *const *values, size_t n);
/* 1 with a row, 0 at the end, or a negative code. */
int sqldb_next(struct sqldb_rows *rows);
int sqldb_ncols(struct sqldb_rows *rows);
const char *sqldb_colname(struct sqldb_rows *rows, int i);
/* A malloc'd copy of column i's text, or NULL. */
char *sqldb_dup(struct sqldb_rows *rows, int i);
/* Rows the last statement run on db changed (after its sqldb_next returned 0). */
int64_t sqldb_changes(struct sqldb *db);
/* Column i of the current row: text (NULL for NULL) and integer (0 for NULL). */
const char *sqldb_text(struct sqldb_rows *rows, int i);
int64_t sqldb_int(struct sqldb_rows *rows, int i);
void sqldb_rows_free(struct sqldb_rows *rows);

int sqldb_begin(struct sqldb *db, const char *what);
int sqldb_commit(struct sqldb *db, const char *what);
void sqldb_rollback(struct sqldb *db);

/* The SQL a statement becomes for db's engine (for tests). */
int sqldb_translate(bool pg, const char *sql, struct strbuf *out);

#endif
