/* Access tokens for git over HTTPS: see tokens.h. */
#include "gate/tokens.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/sqldb.h"

#include <ctype.h>
#include <time.h>

static int check_token_name(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > TOKEN_NAME_MAX)
		return error_set(GROVE_EINVAL, "a token's name has 1 to %d characters", TOKEN_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("-_.@ ", name[i]))
			return error_set(GROVE_EINVAL, "a token's name has letters, digits, spaces and -_.@ only");
	return 0;
}

int token_create(struct db *db, const char *user, const struct token_opts *o, char *secret_out, size_t secret_size,
		 int64_t *id_out)
{
	const char *name = o->name;
	int64_t expires_at = o->expires_at;
	struct sqldb_rows *st = NULL;
	struct user u = { 0 };
	char hash[65], *rnd = NULL;
	int ret;

	if ((ret = check_token_name(name)))
		return ret;
	if (expires_at && expires_at <= (int64_t)time(NULL))
		return error_set(GROVE_EINVAL, "the token would have expired already");
	if (secret_size < TOKEN_SECRET_MAX)
		return error_set(GROVE_EINTERNAL, "no room for a token");
	if ((ret = db_user_get(db, user, &u)))
		return ret;
	rnd = auth_secret_generate();
	snprintf(secret_out, secret_size, TOKEN_PREFIX "%s", rnd);
	auth_sha256_hex(secret_out, strlen(secret_out), hash);
	ret = sqldb_query(db_sql(db), &st, "making a token",
			  "INSERT INTO tokens(user_id, name, hash, expires_at, read_only) VALUES (?, ?, ?, ?, ?) RETURNING id",
			  "issib", u.id, name, hash, expires_at, (int)o->read_only);
	if (!ret && (ret = sqldb_next(st)) == GROVE_EEXISTS) {
		ret = error_set(GROVE_EEXISTS, "%s has a token named %s already: pick another name, or revoke that one", user,
				name);
	} else if (ret == 1) {
		*id_out = sqldb_int(st, 0);
		ret = 0;
	} else if (!ret) {
		ret = error_set(GROVE_EINTERNAL, "the new token has no id");
	}
	sqldb_rows_free(st);
	free(rnd);
	user_release(&u);
	if (ret)
		memset(secret_out, 0, secret_size);
	return ret;
}

int token_check(struct db *db, const char *secret, struct user *out, int64_t *id_out, bool *read_only)
{
	struct sqldb_rows *st = NULL;
	char hash[65];
	int64_t now = (int64_t)time(NULL);
	int ret;

	memset(out, 0, sizeof(*out));
	if (strncmp(secret, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) || strlen(secret) >= TOKEN_SECRET_MAX)
		return error_set(GROVE_ENOTFOUND, "not a Grove token");
	auth_sha256_hex(secret, strlen(secret), hash);
	ret = sqldb_query(db_sql(db), &st, "checking a token",
			  "SELECT u.id, u.name, u.admin, t.id, t.read_only FROM tokens t JOIN users u ON u.id = t.user_id"
			  " WHERE t.hash = ? AND (t.expires_at = 0 OR t.expires_at > ?)",
			  "si", hash, now);
	if (ret)
		return ret;
	ret = sqldb_next(st);
	if (ret == 1) {
		out->id = sqldb_int(st, 0);
		out->name = sqldb_dup(st, 1);
		out->admin = sqldb_int(st, 2) != 0;
		*id_out = sqldb_int(st, 3);
		*read_only = sqldb_int(st, 4) != 0;
		ret = 0;
	} else if (ret == 0) {
		ret = error_set(GROVE_ENOTFOUND, "no such token, or it expired");
	}
	sqldb_rows_free(st);
	/* The last use, to the minute: an unused token is one to revoke, and
	 * a clone of many requests does not write the database each time. */
	if (!ret)
		sqldb_exec(db_sql(db), NULL, "noting a token's use",
			   "UPDATE tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?", "iii", now, *id_out,
			   now - 60);
	return ret;
}

int token_revoke(struct db *db, const char *user, const char *name_or_id)
{
	int64_t changed = 0;
	int ret;

	if (*name_or_id && strspn(name_or_id, "0123456789") == strlen(name_or_id))
		ret = sqldb_exec(db_sql(db), &changed, "revoking a token",
				 "DELETE FROM tokens WHERE id = ? AND user_id = (SELECT id FROM users WHERE name = ?)", "is",
				 (int64_t)strtoll(name_or_id, NULL, 10), user);
	else
		ret = sqldb_exec(db_sql(db), &changed, "revoking a token",
				 "DELETE FROM tokens WHERE name = ? AND user_id = (SELECT id FROM users WHERE name = ?)", "ss",
				 name_or_id, user);
	if (!ret && !changed)
		ret = error_set(GROVE_ENOTFOUND, "%s has no token %.64s", user, name_or_id);
	return ret;
}

int tokens_each(struct db *db, const char *user, db_row_fn *fn, void *ctx)
{
	const char *params[] = { user };
	return db_query(db,
			"SELECT t.id, t.name, t.created_at, t.expires_at, t.last_used_at, t.read_only FROM tokens t"
			" JOIN users u ON u.id = t.user_id WHERE u.name = ? ORDER BY t.id",
			params, 1, fn, ctx);
}
