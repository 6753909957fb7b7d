/*
 * The gate's state in SQLite: see db.h.
 *
 * One handle per process (or per thread, or per admin request): SQLite
 * handles are not shared across fork, and WAL mode lets many readers run
 * beside one writer, each waiting up to five seconds for a lock. The schema
 * is upgraded at open, each step in its own IMMEDIATE transaction that
 * re-reads `PRAGMA user_version`, so that gates opening one file at once
 * apply each step exactly once.
 *
 * Every statement binds its values; the only SQL built from text is the
 * user_version pragma, from an integer of ours.
 */
#include "gate/db.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/sqldb.h"
#include "lib/sqldb.h"
#include "lib/strbuf.h"

#include <fcntl.h>
#include <sqlite3.h>

/* The most bytes of output kept per deployment: the tail, after a note. */
#define DEPLOY_LOG_MAX (1024 * 1024)
#define DEPLOY_LOG_CUT "[grove: earlier output cut; only the last 1 MiB of the log is kept]\n"

#define KEY_TEXT_MAX 16384
#define BRANCH_MAX 255
#define FIELD_MAX 1024

struct db {
	struct sqldb *x;
};

#define NOW_SQL SQLDB_SQLITE_NOW
#define STMT_NOW "{NOW}"

/*
 * Schema steps, oldest first: step i brings user_version from i to i+1.
 * Never edit a released step; append a new one.
 */
static const char *const schema_steps[] = {
	/* 1: the initial schema. */
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
	"  created_at TEXT NOT NULL DEFAULT (" NOW_SQL "));"
	"CREATE TABLE keys ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  fingerprint TEXT NOT NULL UNIQUE,"
	"  public_key TEXT NOT NULL,"
	"  created_at TEXT NOT NULL DEFAULT (" NOW_SQL "));"
	"CREATE INDEX keys_user ON keys(user_id);"
	"CREATE TABLE apps ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  deploy_branch TEXT NOT NULL DEFAULT 'main',"
	"  route TEXT NOT NULL DEFAULT 'legacy' CHECK (route IN ('legacy', 'cluster')),"
	"  locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
	"  created_at TEXT NOT NULL DEFAULT (" NOW_SQL "),"
	"  updated_at TEXT NOT NULL DEFAULT (" NOW_SQL "));"
	"CREATE TABLE collaborators ("
	"  app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  access TEXT NOT NULL CHECK (access IN ('read', 'write')),"
	"  PRIMARY KEY (app_id, user_id)) WITHOUT ROWID;"
	"CREATE INDEX collaborators_user ON collaborators(user_id);"
	/* Deployments name their app by text: the history outlives the app. */
	"CREATE TABLE deployments ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  app TEXT NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  old_oid TEXT NOT NULL,"
	"  new_oid TEXT NOT NULL,"
	"  pusher TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'queued'"
	"    CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),"
	"  started_at TEXT NOT NULL DEFAULT (" NOW_SQL "),"
	"  finished_at TEXT,"
	"  log TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX deployments_app ON deployments(app, id);"
	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT);",
	/* 2: the last push of each app, for `grove app show`. */
	"ALTER TABLE apps ADD COLUMN last_push_at TEXT;"
	"ALTER TABLE apps ADD COLUMN last_push_by TEXT;"
	"ALTER TABLE apps ADD COLUMN last_push_ref TEXT;"
	"ALTER TABLE apps ADD COLUMN last_push_commit TEXT;",
	/* 3: a push size limit per app (0: the gate's gate.maxPushSize). */
	"ALTER TABLE apps ADD COLUMN max_push_mb INTEGER NOT NULL DEFAULT 0;",
	/* 4: access tokens for git over HTTPS (tokens.h): only their hashes. */
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  created_at TEXT NOT NULL DEFAULT (" NOW_SQL "),"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"
	"  last_used_at INTEGER NOT NULL DEFAULT 0,"
	"  read_only INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1)),"
	"  UNIQUE (user_id, name));",
};

/* The same schema for PostgreSQL, where several gates share it. */
#define PG_NOW "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
static const char *const pg_schema_steps[] = {
	"CREATE TABLE users ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
	"  created_at TEXT NOT NULL DEFAULT " PG_NOW ");"
	"CREATE TABLE keys ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  fingerprint TEXT NOT NULL UNIQUE,"
	"  public_key TEXT NOT NULL,"
	"  created_at TEXT NOT NULL DEFAULT " PG_NOW ");"
	"CREATE INDEX keys_user ON keys(user_id);"
	"CREATE TABLE apps ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  deploy_branch TEXT NOT NULL DEFAULT 'main',"
	"  route TEXT NOT NULL DEFAULT 'legacy' CHECK (route IN ('legacy', 'cluster')),"
	"  locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
	"  created_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  updated_at TEXT NOT NULL DEFAULT " PG_NOW ");"
	"CREATE TABLE collaborators ("
	"  app_id BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,"
	"  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  access TEXT NOT NULL CHECK (access IN ('read', 'write')),"
	"  PRIMARY KEY (app_id, user_id));"
	"CREATE INDEX collaborators_user ON collaborators(user_id);"
	"CREATE TABLE deployments ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  app TEXT NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  old_oid TEXT NOT NULL,"
	"  new_oid TEXT NOT NULL,"
	"  pusher TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'queued'"
	"    CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),"
	"  started_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  finished_at TEXT,"
	"  log TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX deployments_app ON deployments(app, id);"
	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT);",
	"ALTER TABLE apps ADD COLUMN last_push_at TEXT;"
	"ALTER TABLE apps ADD COLUMN last_push_by TEXT;"
	"ALTER TABLE apps ADD COLUMN last_push_ref TEXT;"
	"ALTER TABLE apps ADD COLUMN last_push_commit TEXT;",
	"ALTER TABLE apps ADD COLUMN max_push_mb INTEGER NOT NULL DEFAULT 0;",
	"CREATE TABLE tokens ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  created_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  expires_at BIGINT NOT NULL DEFAULT 0,"
	"  last_used_at BIGINT NOT NULL DEFAULT 0,"
	"  read_only INTEGER NOT NULL DEFAULT 0 CHECK (read_only IN (0, 1)),"
	"  UNIQUE (user_id, name));",
};

/* ---- validation ---- */

static bool is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(int c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* App names become repository names and DNS labels: [a-z0-9][a-z0-9-]{0,62}. */
static int check_app_name(const char *name)
{
	size_t n;
	if (!name || !*name)
		return error_set(GROVE_EINVAL, "app name is empty: give 1 to 63 of a-z, 0-9 and '-'");
	n = strlen(name);
	if (n > 63)
		return error_set(GROVE_EINVAL, "app name \"%.63s…\" is longer than 63 characters", name);
	if (!is_lower_alnum((unsigned char)name[0]))
		return error_set(GROVE_EINVAL, "app name \"%s\" must start with a-z or 0-9", name);
	for (size_t i = 1; i < n; i++)
		if (!is_lower_alnum((unsigned char)name[i]) && name[i] != '-')
			return error_set(GROVE_EINVAL, "app name \"%.63s\" may only hold a-z, 0-9 and '-'", name);
	return 0;
}

/* User names: [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */
static int check_user_name(const char *name)
{
	size_t n;
	if (!name || !*name)
		return error_set(GROVE_EINVAL, "user name is empty: give 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'");
	n = strlen(name);
	if (n > 64)
		return error_set(GROVE_EINVAL, "user name \"%.64s…\" is longer than 64 characters", name);
	if (!is_alnum((unsigned char)name[0]))
		return error_set(GROVE_EINVAL, "user name \"%s\" must start with a letter or digit", name);
	for (size_t i = 1; i < n; i++) {
		int c = (unsigned char)name[i];
		if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
			return error_set(GROVE_EINVAL, "user name \"%.64s\" may only hold A-Z, a-z, 0-9, '.', '_' and '-'", name);
	}
	return 0;
}

/* Printable ASCII of 1..max bytes: what a field stored verbatim may be. */
static int check_text(const char *what, const char *s, size_t max)
{
	size_t n;
	if (!s || !*s)
		return error_set(GROVE_EINVAL, "%s is empty", what);
	n = strlen(s);
	if (n > max)
		return error_set(GROVE_EINVAL, "%s is longer than %zu bytes", what, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return error_set(GROVE_EINVAL, "%s holds a control character", what);
	return 0;
}

/* "SHA256:" and unpadded base64 of 32 bytes, as OpenSSH and libssh print it. */
static int check_fingerprint(const char *fp)
{
	const char *b64;
	if (!fp || !skip_prefix(fp, "SHA256:", &b64) || strlen(b64) != 43)
		return error_set(GROVE_EINVAL, "key fingerprint \"%.100s\" is not of the form SHA256:<43 base64 characters>",
				 fp ? fp : "");
	for (const char *p = b64; *p; p++)
		if (!is_alnum((unsigned char)*p) && *p != '+' && *p != '/')
			return error_set(GROVE_EINVAL, "key fingerprint \"%.100s\" is not of the form SHA256:<43 base64 characters>", fp);
	return 0;
}

static int check_status(const char *status)
{
	static const char *const ok[] = { "queued", "running", "succeeded", "failed" };
	for (size_t i = 0; status && i < ARRAY_SIZE(ok); i++)
		if (!strcmp(status, ok[i]))
			return 0;
	return error_set(GROVE_EINVAL, "deployment status \"%.32s\" is not one of queued, running, succeeded, failed",
			 status ? status : "");
}

/* ---- names ---- */

const char *access_name(enum access a)
{
	switch (a) {
	case ACCESS_READ: return "read";
	case ACCESS_WRITE: return "write";
	default: return "none";
	}
}

const char *route_name(enum route r)
{
	return r == ROUTE_CLUSTER ? "cluster" : "legacy";
}

int route_parse(const char *s, enum route *out)
{
	if (s && !strcmp(s, "legacy"))
		*out = ROUTE_LEGACY;
	else if (s && !strcmp(s, "cluster"))
		*out = ROUTE_CLUSTER;
	else
		return error_set(GROVE_EINVAL, "route \"%.32s\" is neither \"legacy\" nor \"cluster\"", s ? s : "");
	return 0;
}

/* ---- open, close ---- */

static int db_open_as(struct db **out, const char *path, bool upgrade)
{
	const struct sqldb_schema schema = { schema_steps, ARRAY_SIZE(schema_steps), pg_schema_steps, ARRAY_SIZE(pg_schema_steps),
					   "gate" };
	struct sqldb *x = NULL;
	int ret;

	*out = NULL;
	if (!path || !*path)
		return error_set(GROVE_EINVAL, "no database path given");
	ret = upgrade ? sqldb_open(&x, path, &schema) : sqldb_attach(&x, path, &schema);
	if (ret)
		return ret;
	*out = xcalloc(1, sizeof(**out));
	(*out)->x = x;
	return 0;
}

int db_open(struct db **out, const char *path)
{
	return db_open_as(out, path, true);
}

int db_attach(struct db **out, const char *path)
{
	return db_open_as(out, path, false);
}

void db_close(struct db *db)
{
	if (!db)
		return;
	sqldb_close(db->x);
	free(db);
}

int db_begin(struct db *db, const char *what)
{
	return sqldb_begin(db->x, what);
}

int db_commit(struct db *db, const char *what)
{
	return sqldb_commit(db->x, what);
}

void db_rollback(struct db *db)
{
	sqldb_rollback(db->x);
}

void user_release(struct user *u)
{
	if (!u)
		return;
	FREE_AND_NULL(u->name);
	u->id = 0;
	u->admin = false;
}

int db_user_create(struct db *db, const char *name, bool admin)
{
	struct sqldb_rows *st = NULL;
	int ret = check_user_name(name);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "creating a user", "INSERT INTO users(name, admin) VALUES (?, ?)", "sb", name, (int)admin);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == GROVE_EEXISTS)
		ret = error_set(GROVE_EEXISTS, "user %s exists already", name);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_user_delete(struct db *db, const char *name)
{
	struct sqldb_rows *st = NULL;
	int ret = check_user_name(name);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "deleting a user", "DELETE FROM users WHERE name = ?", "s", name);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (!ret && !sqldb_changes(db->x))
		ret = error_set(GROVE_ENOTFOUND, "no user named %s", name);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

/* Fills out from a row of (id, name, admin). */
static void user_from_row(struct sqldb_rows *st, struct user *out)
{
	out->id = sqldb_int(st, 0);
	out->name = sqldb_dup(st, 1);
	out->admin = (int)sqldb_int(st, 2) != 0;
}

int db_user_get(struct db *db, const char *name, struct user *out)
{
	struct sqldb_rows *st = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_user_name(name);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "looking up a user", "SELECT id, name, admin FROM users WHERE name = ?", "s", name);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		user_from_row(st, out);
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_ENOTFOUND, "no user named %s", name);
	}
	sqldb_rows_free(st);
	return ret;
}

int db_key_add(struct db *db, const char *user, const char *fingerprint, const char *public_key)
{
	struct sqldb_rows *st = NULL;
	int ret;

	if ((ret = check_user_name(user)) || (ret = check_fingerprint(fingerprint)) ||
	    (ret = check_text("public key", public_key, KEY_TEXT_MAX)))
		return ret;
	/* One statement, so a user deleted meanwhile cannot end up with a key. */
	ret = sqldb_query(db->x, &st, "adding a key",
			   "INSERT INTO keys(user_id, fingerprint, public_key) SELECT id, ?, ? FROM users WHERE name = ?",
			   "sss", fingerprint, public_key, user);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == GROVE_EEXISTS)
		ret = error_set(GROVE_EEXISTS, "key %s is registered already: a key identifies one user, so remove it there first",
				fingerprint);
	else if (!ret && !sqldb_changes(db->x))
		ret = error_set(GROVE_ENOTFOUND, "no user named %s: create the user first", user);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_key_remove(struct db *db, const char *fingerprint)
{
	struct sqldb_rows *st = NULL;
	int ret = check_fingerprint(fingerprint);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "removing a key", "DELETE FROM keys WHERE fingerprint = ?", "s", fingerprint);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (!ret && !sqldb_changes(db->x))
		ret = error_set(GROVE_ENOTFOUND, "no key with fingerprint %s", fingerprint);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_user_by_key(struct db *db, const char *fingerprint, struct user *out)
{
	struct sqldb_rows *st = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_fingerprint(fingerprint);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "looking up a key",
			   "SELECT u.id, u.name, u.admin FROM keys k JOIN users u ON u.id = k.user_id WHERE k.fingerprint = ?",
			   "s", fingerprint);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		user_from_row(st, out);
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_ENOTFOUND, "no user has the key %s", fingerprint);
	}
	sqldb_rows_free(st);
	return ret;
}

/* ---- apps ---- */

void app_release(struct app *a)
{
	if (!a)
		return;
	FREE_AND_NULL(a->name);
	FREE_AND_NULL(a->deploy_branch);
	FREE_AND_NULL(a->created_at);
	FREE_AND_NULL(a->updated_at);
	a->id = 0;
	a->route = ROUTE_LEGACY;
	a->locked = false;
}

int db_app_create(struct db *db, const char *name, const char *deploy_branch, enum route route)
{
	struct sqldb_rows *st = NULL;
	int ret;

	if ((ret = check_app_name(name)) || (ret = check_text("deploy branch", deploy_branch, BRANCH_MAX)))
		return ret;
	if (route != ROUTE_LEGACY && route != ROUTE_CLUSTER)
		return error_set(GROVE_EINVAL, "route %d is neither legacy nor cluster", (int)route);
	ret = sqldb_query(db->x, &st, "creating an app", "INSERT INTO apps(name, deploy_branch, route) VALUES (?, ?, ?)",
			   "sss", name, deploy_branch, route_name(route));
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == GROVE_EEXISTS)
		ret = error_set(GROVE_EEXISTS, "app %s exists already", name);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_app_delete(struct db *db, const char *name)
{
	struct sqldb_rows *st = NULL;
	int ret = check_app_name(name);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "deleting an app", "DELETE FROM apps WHERE name = ?", "s", name);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (!ret && !sqldb_changes(db->x))
		ret = error_set(GROVE_ENOTFOUND, "no app named %s", name);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_app_get(struct db *db, const char *name, struct app *out)
{
	struct sqldb_rows *st = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_app_name(name);
	if (ret)
		return ret;
	ret = sqldb_query(db->x, &st, "looking up an app",
			   "SELECT id, name, deploy_branch, route, locked, created_at, updated_at, max_push_mb FROM apps WHERE name = ?",
			   "s", name);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		const char *route = sqldb_text(st, 3);
		out->id = sqldb_int(st, 0);
		out->name = sqldb_dup(st, 1);
		out->deploy_branch = sqldb_dup(st, 2);
		out->route = route && !strcmp(route, "cluster") ? ROUTE_CLUSTER : ROUTE_LEGACY;
		out->locked = (int)sqldb_int(st, 4) != 0;
		out->created_at = sqldb_dup(st, 5);
		out->updated_at = sqldb_dup(st, 6);
		out->max_push_mb = sqldb_int(st, 7);
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_ENOTFOUND, "no app named %s", name);
	}
	sqldb_rows_free(st);
	return ret;
}

/* Sets one column of an app (column is one of ours, never input) and updated_at. */
static int app_update(struct db *db, const char *name, const char *sql, const char *types, const char *sval, int ival)
{
	struct sqldb_rows *st = NULL;
	int ret = check_app_name(name);
	if (ret)
		return ret;
	if (types[0] == 's')
		ret = sqldb_query(db->x, &st, "updating an app", sql, "ss", sval, name);
	else if (types[0] == 'i')
		ret = sqldb_query(db->x, &st, "updating an app", sql, "is", (int64_t)ival, name);
	else
		ret = sqldb_query(db->x, &st, "updating an app", sql, "bs", ival, name);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (!ret && !sqldb_changes(db->x))
		ret = error_set(GROVE_ENOTFOUND, "no app named %s", name);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_app_set_deploy_branch(struct db *db, const char *name, const char *branch)
{
	int ret = check_text("deploy branch", branch, BRANCH_MAX);
	if (ret)
		return ret;
	return app_update(db, name, "UPDATE apps SET deploy_branch = ?, updated_at = " STMT_NOW " WHERE name = ?",
			  "s", branch, 0);
}

int db_app_set_route(struct db *db, const char *name, enum route route)
{
	if (route != ROUTE_LEGACY && route != ROUTE_CLUSTER)
		return error_set(GROVE_EINVAL, "route %d is neither legacy nor cluster", (int)route);
	return app_update(db, name, "UPDATE apps SET route = ?, updated_at = " STMT_NOW " WHERE name = ?",
			  "s", route_name(route), 0);
}

int db_app_set_max_push(struct db *db, const char *name, int64_t mb)
{
	if (mb < 0 || mb > GATE_MAX_PUSH_MB)
		return error_set(GROVE_EINVAL, "max_push_mb must be from 0 (the gate's default) to %d, not %lld",
				 GATE_MAX_PUSH_MB, (long long)mb);
	return app_update(db, name, "UPDATE apps SET max_push_mb = ?, updated_at = " STMT_NOW " WHERE name = ?",
			  "i", NULL, (int)mb);
}

int db_app_record_push(struct db *db, const char *name, const char *user, const char *ref, const char *commit)
{
	int64_t changes = 0;
	int ret;
	if ((ret = check_app_name(name)) || (ret = check_text("pusher", user, FIELD_MAX)) ||
	    (ret = check_text("ref", ref, FIELD_MAX)) || (ret = check_text("commit", commit, 64)))
		return ret;
	ret = sqldb_exec(db->x, &changes, "recording a push",
		       "UPDATE apps SET last_push_at = " STMT_NOW ", last_push_by = ?, last_push_ref = ?, last_push_commit = ?"
		       " WHERE name = ?",
		       "ssss", user, ref, commit, name);
	if (!ret && !changes)
		ret = error_set(GROVE_ENOTFOUND, "no app named %s", name);
	return ret;
}

int db_app_set_locked(struct db *db, const char *name, bool locked)
{
	return app_update(db, name, "UPDATE apps SET locked = ?, updated_at = " STMT_NOW " WHERE name = ?",
			  "b", NULL, locked);
}

/* ---- settings: what an operator changes at run time, shared by every gate ---- */

int db_setting_get(struct db *db, const char *key, char **out)
{
	struct sqldb_rows *st = NULL;
	int ret;

	*out = NULL;
	ret = sqldb_query(db->x, &st, "reading a setting", "SELECT value FROM settings WHERE key = ?", "s", key);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		*out = sqldb_dup(st, 0);
		ret = 0;
	}
	sqldb_rows_free(st);
	return ret;
}

int db_setting_set(struct db *db, const char *key, const char *value)
{
	return sqldb_exec(db->x, NULL, "changing a setting",
			"INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			"ss", key, value);
}

/* ---- access ---- */

/* The ids of an app and a user, each GROVE_ENOTFOUND with its own message. */
static int app_user_ids(struct db *db, const char *app, const char *user, int64_t *app_id, int64_t *user_id)
{
	struct app a;
	struct user u;
	int ret = db_app_get(db, app, &a);
	if (ret)
		return ret;
	*app_id = a.id;
	app_release(&a);
	ret = db_user_get(db, user, &u);
	if (ret)
		return ret;
	*user_id = u.id;
	user_release(&u);
	return 0;
}

int db_access_grant(struct db *db, const char *app, const char *user, enum access access)
{
	struct sqldb_rows *st = NULL;
	int64_t app_id = 0, user_id = 0;
	int ret;

	if (access != ACCESS_READ && access != ACCESS_WRITE)
		return error_set(GROVE_EINVAL, "access must be read or write; to take access away, revoke it");
	ret = sqldb_begin(db->x, "granting access");
	if (ret)
		return ret;
	ret = app_user_ids(db, app, user, &app_id, &user_id);
	if (ret)
		goto out;
	ret = sqldb_query(db->x, &st, "granting access",
			   "INSERT INTO collaborators(app_id, user_id, access) VALUES (?, ?, ?)"
			   " ON CONFLICT(app_id, user_id) DO UPDATE SET access = excluded.access",
			   "iis", app_id, user_id, access_name(access));
	if (ret)
		goto out;
	ret = sqldb_next(st);
	if (ret)
		goto out;
	ret = sqldb_commit(db->x, "granting access");
out:
	sqldb_rows_free(st);
	if (ret)
		sqldb_rollback(db->x);
	return ret;
}

int db_access_revoke(struct db *db, const char *app, const char *user)
{
	struct sqldb_rows *st = NULL;
	int64_t app_id = 0, user_id = 0;
	int ret;

	ret = sqldb_begin(db->x, "revoking access");
	if (ret)
		return ret;
	ret = app_user_ids(db, app, user, &app_id, &user_id);
	if (ret)
		goto out;
	ret = sqldb_query(db->x, &st, "revoking access", "DELETE FROM collaborators WHERE app_id = ? AND user_id = ?",
			   "ii", app_id, user_id);
	if (ret)
		goto out;
	ret = sqldb_next(st);
	if (ret)
		goto out;
	if (!sqldb_changes(db->x)) {
		ret = error_set(GROVE_ENOTFOUND, "user %s is no collaborator on app %s", user, app);
		goto out;
	}
	ret = sqldb_commit(db->x, "revoking access");
out:
	sqldb_rows_free(st);
	if (ret)
		sqldb_rollback(db->x);
	return ret;
}

enum access db_access_get(struct db *db, const char *app, const struct user *user)
{
	struct sqldb_rows *st = NULL;
	enum access access = ACCESS_NONE;
	const char *s;
	int ret;

	if (!user || !app)
		return ACCESS_NONE;
	if (user->admin)
		return ACCESS_WRITE;
	if (check_app_name(app))
		return ACCESS_NONE;
	ret = sqldb_query(db->x, &st, "checking access",
			   "SELECT c.access FROM collaborators c JOIN apps a ON a.id = c.app_id"
			   " WHERE a.name = ? AND c.user_id = ?",
			   "si", app, user->id);
	if (!ret)
		ret = sqldb_next(st);
	if (ret == 1) {
		s = sqldb_text(st, 0);
		if (s && !strcmp(s, "write"))
			access = ACCESS_WRITE;
		else if (s && !strcmp(s, "read"))
			access = ACCESS_READ;
	} else if (ret < 0) {
		/* Fail closed, but leave a trace: a locked database looks like "no access". */
		log_warn("db.access_failed", "app=%s user=%s error=%s", app, user->name, error_msg());
	}
	sqldb_rows_free(st);
	return access;
}

/* ---- deployments ---- */

void deployment_release(struct deployment *d)
{
	if (!d)
		return;
	FREE_AND_NULL(d->app);
	FREE_AND_NULL(d->ref);
	FREE_AND_NULL(d->old_oid);
	FREE_AND_NULL(d->new_oid);
	FREE_AND_NULL(d->pusher);
	FREE_AND_NULL(d->status);
	FREE_AND_NULL(d->started_at);
	FREE_AND_NULL(d->finished_at);
	FREE_AND_NULL(d->log);
	d->id = 0;
}

int db_deploy_create(struct db *db, const char *app, const char *ref, const char *old_oid, const char *new_oid,
		     const char *pusher, int64_t *id)
{
	struct sqldb_rows *st = NULL;
	int ret;

	*id = 0;
	if ((ret = check_app_name(app)) || (ret = check_text("ref", ref, FIELD_MAX)) ||
	    (ret = check_text("old object id", old_oid, 64)) || (ret = check_text("new object id", new_oid, 64)) ||
	    (ret = check_text("pusher", pusher, FIELD_MAX)))
		return ret;
	ret = sqldb_query(db->x, &st, "recording a deployment",
			   "INSERT INTO deployments(app, ref, old_oid, new_oid, pusher) VALUES (?, ?, ?, ?, ?) RETURNING id",
			   "sssss", app, ref, old_oid, new_oid, pusher);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		*id = sqldb_int(st, 0);
		ret = 0;
		/* SQLite runs the insert to its end on the next step. */
		while (ret == 0 && sqldb_next(st) == 1)
			;
	} else if (ret == 0) {
		ret = error_set(GROVE_EINTERNAL, "recording a deployment: no id came back");
	}
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

int db_deploy_set_status(struct db *db, int64_t id, const char *status)
{
	struct sqldb_rows *st = NULL;
	int ret = check_status(status);
	if (ret)
		return ret;
	/* A finished deployment gets its finish time; one set running again loses it. */
	ret = sqldb_query(db->x, &st, "updating a deployment",
			   "UPDATE deployments SET status = ?1,"
			   " finished_at = CASE WHEN ?1 IN ('succeeded', 'failed') THEN " STMT_NOW " ELSE NULL END"
			   " WHERE id = ?2",
			   "si", status, id);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (!ret && !sqldb_changes(db->x))
		ret = error_set(GROVE_ENOTFOUND, "no deployment with id %lld", (long long)id);
	sqldb_rows_free(st);
	return ret < 0 ? ret : 0;
}

/*
 * Where cut text should begin: after the first line break if one comes
 * soon, else at the first UTF-8 character start, so the kept log neither
 * opens with a broken line without need nor with half a character.
 */
static size_t tail_start(const char *buf, size_t len)
{
	size_t start = 0;
	const char *nl = memchr(buf, '\n', MIN(len, (size_t)4096));
	if (nl && (size_t)(nl + 1 - buf) < len)
		return (size_t)(nl + 1 - buf);
	while (start < len && ((unsigned char)buf[start] & 0xc0) == 0x80)
		start++;
	return start;
}

int db_deploy_append_log(struct db *db, int64_t id, const char *text, size_t len)
{
	struct sqldb_rows *st = NULL;
	struct strbuf sb = STRBUF_INIT, tail = STRBUF_INIT, piece = STRBUF_INIT;
	const size_t cutlen = strlen(DEPLOY_LOG_CUT);
	size_t oldlen;
	int ret;

	if (!len)
		return 0;
	/* Text columns hold no NUL byte (PostgreSQL refuses one): a deploy
	 * that prints one gets a '?' in its log. */
	strbuf_add(&piece, text, len);
	for (size_t i = 0; i < piece.len; i++)
		if (!piece.buf[i])
			piece.buf[i] = '?';
	text = piece.buf;
	ret = sqldb_begin(db->x, "appending to a deployment log");
	if (ret)
		goto out_nolock;
	/* In bytes: length() of TEXT would count characters. */
	ret = sqldb_query(db->x, &st, "appending to a deployment log",
			sqldb_is_pg(db->x) ? "SELECT octet_length(log) FROM deployments WHERE id = ?{FOR_UPDATE}"
					 : "SELECT length(CAST(log AS BLOB)) FROM deployments WHERE id = ?",
			"i", id);
	if (ret)
		goto out;
	ret = sqldb_next(st);
	if (ret == 0)
		ret = error_set(GROVE_ENOTFOUND, "no deployment with id %lld", (long long)id);
	if (ret < 0)
		goto out;
	oldlen = (size_t)sqldb_int(st, 0);
	sqldb_rows_free(st);
	st = NULL;

	if (len <= DEPLOY_LOG_MAX && oldlen + len <= DEPLOY_LOG_MAX) {
		/* The common case: the database appends, the old text never comes here. */
		ret = sqldb_exec(db->x, NULL, "appending to a deployment log", "UPDATE deployments SET log = log || ? WHERE id = ?",
			       "si", text, id);
	} else {
		/* Over the bound: the note, then the newest bytes of old and new text. */
		size_t keep = DEPLOY_LOG_MAX - cutlen, start;
		if (len < keep) {
			const char *old;
			ret = sqldb_query(db->x, &st, "cutting a deployment log", "SELECT log FROM deployments WHERE id = ?", "i",
					id);
			if (ret)
				goto out;
			ret = sqldb_next(st);
			if (ret == 0)
				ret = error_set(GROVE_ENOTFOUND, "no deployment with id %lld", (long long)id);
			if (ret < 0)
				goto out;
			old = sqldb_text(st, 0);
			oldlen = old ? strlen(old) : 0;
			if (old)
				strbuf_add(&tail, old + oldlen - MIN(oldlen, keep - len), MIN(oldlen, keep - len));
			sqldb_rows_free(st);
			st = NULL;
		}
		strbuf_add(&tail, len > keep ? text + len - keep : text, MIN(len, keep));
		start = tail_start(tail.buf, tail.len);
		strbuf_addstr(&sb, DEPLOY_LOG_CUT);
		strbuf_add(&sb, tail.buf + start, tail.len - start);
		ret = sqldb_exec(db->x, NULL, "cutting a deployment log", "UPDATE deployments SET log = ? WHERE id = ?", "si",
			       sb.buf, id);
	}
	if (!ret)
		ret = sqldb_commit(db->x, "appending to a deployment log");
out:
	if (ret)
		sqldb_rollback(db->x);
out_nolock:
	sqldb_rows_free(st);
	strbuf_release(&sb);
	strbuf_release(&tail);
	strbuf_release(&piece);
	return ret;
}

int db_deploy_get(struct db *db, int64_t id, struct deployment *out)
{
	struct sqldb_rows *st = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = sqldb_query(db->x, &st, "looking up a deployment",
			   "SELECT id, app, ref, old_oid, new_oid, pusher, status, started_at, finished_at, log"
			   " FROM deployments WHERE id = ?",
			   "i", id);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		out->id = sqldb_int(st, 0);
		out->app = sqldb_dup(st, 1);
		out->ref = sqldb_dup(st, 2);
		out->old_oid = sqldb_dup(st, 3);
		out->new_oid = sqldb_dup(st, 4);
		out->pusher = sqldb_dup(st, 5);
		out->status = sqldb_dup(st, 6);
		out->started_at = sqldb_dup(st, 7);
		out->finished_at = sqldb_dup(st, 8);
		out->log = sqldb_dup(st, 9);
		if (!out->log)
			out->log = xstrdup("");
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_ENOTFOUND, "no deployment with id %lld", (long long)id);
	}
	sqldb_rows_free(st);
	return ret;
}

/* ---- listings ---- */

struct sqldb *db_sql(struct db *db)
{
	return db->x;
}

int db_query(struct db *db, const char *sql, const char *const *params, size_t nparams, db_row_fn *fn, void *ctx)
{
	struct sqldb_rows *st = NULL;
	const char **names = NULL, **values = NULL;
	const char *semi = strchr(sql, ';');
	int ret, ncols;

	/* One statement: what follows a ';' may only be blank. */
	while (semi && *++semi)
		if (*semi != ' ' && *semi != '\n' && *semi != '\t' && *semi != ';')
			return error_set(GROVE_EINVAL, "query holds more than one statement");
	/* Every value bound, none missing: our queries hold no '?' in a literal. */
	int nmarks = 0;
	for (const char *c = sql; *c; c++)
		nmarks += *c == '?';
	if ((size_t)nmarks != nparams)
		return error_set(GROVE_EINTERNAL, "query has %d parameters but %zu values were given", nmarks, nparams);
	ret = sqldb_query_strv(db->x, &st, "running a query", sql, params, nparams);
	if (ret)
		return ret;
	ncols = sqldb_ncols(st);
	names = xcalloc((size_t)ncols + 1, sizeof(*names));
	values = xcalloc((size_t)ncols + 1, sizeof(*values));
	while ((ret = sqldb_next(st)) == 1) {
		for (int i = 0; i < ncols; i++) {
			values[i] = sqldb_text(st, i);
			names[i] = sqldb_colname(st, i);
		}
		if (fn) {
			ret = fn(ctx, ncols, names, values);
			if (ret)
				goto out;
		}
	}
out:
	free(names);
	free(values);
	sqldb_rows_free(st);
	return ret;
}

int db_users_each(struct db *db, const char *name, db_row_fn *fn, void *ctx)
{
	const char *params[] = { name };
	return db_query(db,
			name ? "SELECT name, admin, created_at FROM users WHERE name = ?"
			     : "SELECT name, admin, created_at FROM users ORDER BY name",
			params, name ? 1 : 0, fn, ctx);
}

int db_user_keys_each(struct db *db, const char *name, db_row_fn *fn, void *ctx)
{
	const char *params[] = { name };
	return db_query(db,
			name ? "SELECT u.name, k.fingerprint FROM keys k JOIN users u ON u.id = k.user_id"
			       " WHERE u.name = ? ORDER BY k.id"
			     : "SELECT u.name, k.fingerprint FROM keys k JOIN users u ON u.id = k.user_id"
			       " ORDER BY u.name, k.id",
			params, name ? 1 : 0, fn, ctx);
}

int db_apps_each(struct db *db, const char *name, db_row_fn *fn, void *ctx)
{
	const char *params[] = { name };
	return db_query(db,
			name ? "SELECT " DB_APP_COLUMNS " FROM apps WHERE name = ?"
			     : "SELECT " DB_APP_COLUMNS " FROM apps ORDER BY name",
			params, name ? 1 : 0, fn, ctx);
}

int db_writable_apps_each(struct db *db, const char *user, db_row_fn *fn, void *ctx)
{
	const char *params[] = { user };
	return db_query(db,
			"SELECT a.name FROM apps a JOIN collaborators c ON c.app_id = a.id JOIN users u ON u.id = c.user_id "
			"WHERE u.name = ?1 AND c.access = 'write' ORDER BY a.name",
			params, 1, fn, ctx);
}

int db_collaborators_each(struct db *db, const char *app, db_row_fn *fn, void *ctx)
{
	const char *params[] = { app };
	return db_query(db,
			"SELECT u.name, c.access FROM collaborators c JOIN apps a ON a.id = c.app_id"
			" JOIN users u ON u.id = c.user_id WHERE a.name = ? ORDER BY u.name",
			params, 1, fn, ctx);
}

int db_app_last_push(struct db *db, const char *app, db_row_fn *fn, void *ctx)
{
	const char *params[] = { app };
	return db_query(db, "SELECT last_push_at, last_push_by, last_push_ref, last_push_commit FROM apps WHERE name = ?",
			params, 1, fn, ctx);
}

int db_deploys_each(struct db *db, const char *app, int64_t limit, db_row_fn *fn, void *ctx)
{
	char limit_buf[24];
	snprintf(limit_buf, sizeof(limit_buf), "%lld", (long long)limit);
	const char *params[] = { app, limit_buf };
	return db_query(db,
			"SELECT " DB_DEPLOY_COLUMNS " FROM deployments WHERE app = ? ORDER BY id DESC"
			" LIMIT CAST(? AS INTEGER)",
			params, 2, fn, ctx);
}

/* One row of integer columns into int64_t *ctx[i]. */
static int counts_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	int64_t *const *out = ctx;
	for (int i = 0; i < ncols; i++)
		*out[i] = values[i] ? strtoll(values[i], NULL, 10) : 0;
	return 0;
}

int db_app_counts(struct db *db, struct app_counts *out)
{
	int64_t *cols[] = { &out->apps, &out->legacy, &out->cluster, &out->locked };
	memset(out, 0, sizeof(*out));
	return db_query(db,
			"SELECT COUNT(*),"
			" COALESCE(SUM(CASE WHEN route = 'legacy' THEN 1 ELSE 0 END), 0),"
			" COALESCE(SUM(CASE WHEN route = 'cluster' THEN 1 ELSE 0 END), 0),"
			" COALESCE(SUM(locked), 0) FROM apps",
			NULL, 0, counts_row, cols);
}

int db_deploy_counts(struct db *db, struct deploy_counts *out)
{
	int64_t *cols[] = { &out->running, &out->queued, &out->users };
	memset(out, 0, sizeof(*out));
	return db_query(db,
			"SELECT COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0),"
			" COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0),"
			" (SELECT COUNT(*) FROM users) FROM deployments",
			NULL, 0, counts_row, cols);
}
