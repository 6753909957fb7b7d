/*
 * The gate's state: users, their SSH keys, apps, who may use which app, and
 * deployments. SQLite (WAL) in the gate's data directory; every function
 * takes the db handle of its process (each forked connection opens its own).
 * Strings returned in structs are malloc'd: free them with the _release verb.
 */
#ifndef GROVE_GATE_DB_H
#define GROVE_GATE_DB_H

#include "lib/common.h"

struct db;

enum access { ACCESS_NONE = 0, ACCESS_READ = 1, ACCESS_WRITE = 2 };
enum route { ROUTE_LEGACY = 0, ROUTE_CLUSTER = 1 };

struct app {
	int64_t id;
	char *name;
	char *deploy_branch;   /* "main" */
	enum route route;
	bool locked;
	int64_t max_push_mb;   /* 0: the gate's gate.maxPushSize */
	char *created_at, *updated_at;
};

/* The largest push limit an app or the gate may set: 1 TiB. */
#define GATE_MAX_PUSH_MB (1024 * 1024)

struct user {
	int64_t id;
	char *name;
	bool admin;            /* may use every app */
};

struct deployment {
	int64_t id;
	char *app, *ref, *old_oid, *new_oid, *pusher, *status;   /* status: queued, running, succeeded, failed */
	char *started_at, *finished_at;
	char *log;
};

/* Opens (creating it and upgrading its schema) the database: at a daemon's start. */
int db_open(struct db **out, const char *path);
/* Opens it without a schema upgrade: per session and per request, after the
 * daemon's start made the schema current. */
int db_attach(struct db **out, const char *path);
void db_close(struct db *db);

/* Users and keys. A key is stored by its SHA256 fingerprint ("SHA256:…"),
 * unique across all users. */
int db_user_create(struct db *db, const char *name, bool admin);
int db_user_delete(struct db *db, const char *name);
int db_user_get(struct db *db, const char *name, struct user *out);
int db_key_add(struct db *db, const char *user, const char *fingerprint, const char *public_key);
int db_key_remove(struct db *db, const char *fingerprint);
/* The user a key belongs to: GROVE_ENOTFOUND for an unknown key. */
int db_user_by_key(struct db *db, const char *fingerprint, struct user *out);
void user_release(struct user *u);

/* Apps. */
int db_app_create(struct db *db, const char *name, const char *deploy_branch, enum route route);
int db_app_delete(struct db *db, const char *name);
int db_app_get(struct db *db, const char *name, struct app *out);
int db_app_set_deploy_branch(struct db *db, const char *name, const char *branch);
int db_app_set_route(struct db *db, const char *name, enum route route);
int db_app_set_locked(struct db *db, const char *name, bool locked);
int db_app_set_max_push(struct db *db, const char *name, int64_t mb);
/* The last push to an app: who, which ref, which commit (now). */
int db_app_record_push(struct db *db, const char *name, const char *user, const char *ref, const char *commit);
void app_release(struct app *a);

/* Access: admins have write on every app. */
int db_access_grant(struct db *db, const char *app, const char *user, enum access access);
int db_access_revoke(struct db *db, const char *app, const char *user);
enum access db_access_get(struct db *db, const char *app, const struct user *user);

/* Deployments. */
int db_deploy_create(struct db *db, const char *app, const char *ref, const char *old_oid, const char *new_oid,
		     const char *pusher, int64_t *id);
int db_deploy_set_status(struct db *db, int64_t id, const char *status);
int db_deploy_append_log(struct db *db, int64_t id, const char *text, size_t len);
int db_deploy_get(struct db *db, int64_t id, struct deployment *out);
void deployment_release(struct deployment *d);

/* Transactions (IMMEDIATE on SQLite): for a few statements that go together. */
int db_begin(struct db *db, const char *what);
int db_commit(struct db *db, const char *what);
void db_rollback(struct db *db);

/*
 * Listings, for the admin API's JSON and the gate's messages: fn(ctx,
 * ncols, names, values) for each row, its columns as text (NULL for SQL
 * NULL), in the order each function names; a non-zero return from fn stops
 * the walk and is returned.
 */
typedef int db_row_fn(void *ctx, int ncols, const char *const *names, const char *const *values);
/* One statement of the gate's, its rows to fn (for the tables kept in
 * files of their own, such as tokens.c). */
int db_query(struct db *db, const char *sql, const char *const *params, size_t nparams, db_row_fn *fn, void *ctx);
struct sqldb;
struct sqldb *db_sql(struct db *db);
/* Users, by name (only the one named, if name): name, admin, created_at. */
int db_users_each(struct db *db, const char *name, db_row_fn *fn, void *ctx);
/* Their keys, by user name then age: user, fingerprint. */
int db_user_keys_each(struct db *db, const char *name, db_row_fn *fn, void *ctx);
/* Apps, by name (only the one named, if name): DB_APP_COLUMNS. */
#define DB_APP_COLUMNS "name, deploy_branch, route, locked, created_at, updated_at, max_push_mb"
int db_apps_each(struct db *db, const char *name, db_row_fn *fn, void *ctx);
/* The names of the apps user may push to (write access), by name: name. */
int db_writable_apps_each(struct db *db, const char *user, db_row_fn *fn, void *ctx);
/* An app's collaborators, by user name: user, access. */
int db_collaborators_each(struct db *db, const char *app, db_row_fn *fn, void *ctx);
/* The app's last push, one row: last_push_at, last_push_by, last_push_ref, last_push_commit. */
int db_app_last_push(struct db *db, const char *app, db_row_fn *fn, void *ctx);
/* An app's deployments, newest first, at most limit: DB_DEPLOY_COLUMNS. */
#define DB_DEPLOY_COLUMNS "id, app, ref, old_oid, new_oid, pusher, status, started_at, finished_at"
int db_deploys_each(struct db *db, const char *app, int64_t limit, db_row_fn *fn, void *ctx);

/* How many apps, and on which route. */
struct app_counts {
	int64_t apps, legacy, cluster, locked;
};
int db_app_counts(struct db *db, struct app_counts *out);
/* Deployments running and queued, and users. */
struct deploy_counts {
	int64_t running, queued, users;
};
int db_deploy_counts(struct db *db, struct deploy_counts *out);

const char *access_name(enum access a);
/* A run-time setting: *out is NULL (and 0 returned) when it was never set. */
int db_setting_get(struct db *db, const char *key, char **out);
int db_setting_set(struct db *db, const char *key, const char *value);

const char *route_name(enum route r);
int route_parse(const char *s, enum route *out);

#endif
