/*
 * SQLite databases of Grove's daemons (the gate's apps and users, the
 * cluster's replicas and jobs): opening with the settings every one needs,
 * schema migrations, and statements whose values are always bound.
 *
 * One handle per process or thread: SQLite handles are not shared across
 * fork, and WAL mode lets many readers run beside one writer, each waiting
 * up to five seconds for a lock. Migrations run at open, each step in its own
 * IMMEDIATE transaction that re-reads `PRAGMA user_version`, so that daemons
 * opening one file at once apply each step exactly once.
 */
#ifndef GROVE_SQLDB_H
#define GROVE_SQLDB_H

#include "lib/common.h"

#include <sqlite3.h>

struct sqldb {
	sqlite3 *h;
	char *path;
};

#define SQLDB_NOW "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

/*
 * Opens (creating it 0600 if missing) the database at path and applies
 * migrations[i] for every version i from the file's user_version up to n.
 * Never edit a released step; append a new one.
 */
int sqldb_open(struct sqldb **out, const char *path, const char *const *migrations, size_t n);
void sqldb_close(struct sqldb *db);

/* Maps SQLite's last error on db to a GROVE_E* code with what was being done. */
int sqldb_fail(struct sqldb *db, const char *what);
/*
 * Prepares sql and binds the arguments described by types, one letter each:
 * 's' a string (NULL binds NULL), 'i' an int64_t, 'b' a bool (int).
 */
int sqldb_prepare(struct sqldb *db, sqlite3_stmt **out, const char *what, const char *sql, const char *types, ...);
int sqldb_vprepare(struct sqldb *db, sqlite3_stmt **out, const char *what, const char *sql, const char *types,
		   va_list ap);
/* Steps st: 1 for a row, 0 when done, or a negative code. */
int sqldb_step(struct sqldb *db, sqlite3_stmt *st, const char *what);
/* Prepares, steps to the end and finalizes: for statements without rows. */
int sqldb_run(struct sqldb *db, const char *what, const char *sql, const char *types, ...);
/* A malloc'd copy of a text column, or NULL. */
char *sqldb_col_dup(sqlite3_stmt *st, int i);
/* A statement without values: BEGIN IMMEDIATE, COMMIT, a pragma. */
int sqldb_exec(struct sqldb *db, const char *sql, const char *what);
/* Rolls back the open transaction, if any. */
void sqldb_rollback(struct sqldb *db);

#endif
