/*
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
 * Values are always bound, never spliced. Types as in sqldb.h: 's' string
 * (NULL binds NULL), 'i' int64_t, 'b' bool (int).
 *
 * A handle is used by one thread at a time (the caller locks). With
 * PostgreSQL each handle is one connection; a lost connection is reopened
 * at the next statement outside a transaction.
 */
#ifndef GROVE_DBX_H
#define GROVE_DBX_H

#include "lib/common.h"
#include "lib/strbuf.h"

#include <stdarg.h>

struct dbx;
struct dbx_rows;

struct dbx_schema {
	const char *const *sqlite;   /* migrations, oldest first */
	size_t nsqlite;
	const char *const *pg;
	size_t npg;
	const char *name;            /* for PostgreSQL's migration lock and table */
};

int dbx_open(struct dbx **out, const char *name, const struct dbx_schema *schema);
void dbx_close(struct dbx *db);
bool dbx_is_pg(const struct dbx *db);
/* The name with any password cut out: for logs. */
const char *dbx_display_name(const struct dbx *db);

/* A statement without rows; *changes (if not NULL): rows it changed. */
int dbx_exec(struct dbx *db, int64_t *changes, const char *what, const char *sql, const char *types, ...);
/* A statement with rows: *out to walk with dbx_next, free with dbx_rows_free. */
int dbx_query(struct dbx *db, struct dbx_rows **out, const char *what, const char *sql, const char *types, ...);
/* As dbx_query, with n string values (NULL binds NULL): for generic queries. */
int dbx_query_strv(struct dbx *db, struct dbx_rows **out, const char *what, const char *sql,
		   const char *const *values, size_t n);
/* 1 with a row, 0 at the end, or a negative code. */
int dbx_next(struct dbx_rows *rows);
int dbx_ncols(struct dbx_rows *rows);
const char *dbx_colname(struct dbx_rows *rows, int i);
/* A malloc'd copy of column i's text, or NULL. */
char *dbx_dup(struct dbx_rows *rows, int i);
/* Rows the last statement run on db changed (after its dbx_next returned 0). */
int64_t dbx_changes(struct dbx *db);
/* Column i of the current row: text (NULL for NULL) and integer (0 for NULL). */
const char *dbx_text(struct dbx_rows *rows, int i);
int64_t dbx_int(struct dbx_rows *rows, int i);
void dbx_rows_free(struct dbx_rows *rows);

int dbx_begin(struct dbx *db, const char *what);
int dbx_commit(struct dbx *db, const char *what);
void dbx_rollback(struct dbx *db);

/* The SQL a statement becomes for db's engine (for tests). */
int dbx_translate(bool pg, const char *sql, struct strbuf *out);

#endif
