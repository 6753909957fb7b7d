/*
 * Access tokens: the passwords of git over HTTPS (httpdoor.c). A token is
 * "grove_" and 64 hex characters (256 random bits), shown once when it is
 * made; the gate keeps only its SHA-256, so a copy of the database lets no
 * one in. The prefix lets secret scanners spot a token in a leaked file.
 * A token belongs to a user (deleting the user deletes it), has a name the
 * user picks ("laptop", "ci"; one of each per user), may expire, and may be
 * read-only (fetches, never pushes).
 */
#ifndef GROVE_GATE_TOKENS_H
#define GROVE_GATE_TOKENS_H

#include "gate/db.h"

#define TOKEN_PREFIX "grove_"
#define TOKEN_SECRET_MAX 80                 /* room for a secret: "grove_", 64 hex and a NUL */
#define TOKEN_NAME_MAX 64

struct token_opts {
	const char *name;
	int64_t expires_at;       /* unix seconds; 0: never */
	bool read_only;
};

/* Makes a token for user; secret_out gets the secret. GROVE_ENOTFOUND: no
 * such user; GROVE_EEXISTS: the user has a token of that name; GROVE_EINVAL:
 * a bad name or an expiry in the past. */
int token_create(struct db *db, const char *user, const struct token_opts *o, char *secret_out, size_t secret_size,
		 int64_t *id_out);
/* The user a secret belongs to if it is a token that has not expired, and
 * whether it is read-only; its use is recorded. GROVE_ENOTFOUND otherwise
 * (which of the two is not said). */
int token_check(struct db *db, const char *secret, struct user *out, int64_t *id_out, bool *read_only);
/* By its name, or its id (all digits). GROVE_ENOTFOUND if user has no such token. */
int token_revoke(struct db *db, const char *user, const char *name_or_id);
/* user's tokens, oldest first: id, name, created_at, expires_at, last_used_at (unix seconds, 0: never), read_only. */
int tokens_each(struct db *db, const char *user, db_row_fn *fn, void *ctx);

#endif
