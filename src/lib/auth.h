/*
 * Shared-secret authentication between Grove's parts. Every call carries, in
 * its metadata under AUTH_METADATA_KEY, a token
 *
 *     v1.<unix seconds>.<64 hex of HMAC-SHA256(secret, "v1.<seconds>.<method>")>
 *
 * so a token names the one method it was made for, proves the caller knows
 * the secret without sending it, and goes stale: a server refuses a token
 * whose time is more than AUTH_MAX_SKEW seconds from its own clock.
 */
#ifndef GROVE_AUTH_H
#define GROVE_AUTH_H

#include "lib/common.h"

#define AUTH_METADATA_KEY "x-grove-auth"
#define AUTH_MAX_SKEW 300
#define AUTH_TOKEN_MAX 96

/* Writes the token for method at time now into out (AUTH_TOKEN_MAX bytes). */
void auth_token_make(const char *secret, const char *method, int64_t now, char *out);

/*
 * 0 when token is valid for method at time now, else GROVE_EAUTH with the
 * reason: missing, malformed, stale or wrong. The comparison is constant-time.
 */
int auth_token_check(const char *secret, const char *method, const char *token, size_t token_len,
		     int64_t now);

/* 64 lowercase hex of HMAC-SHA256(secret, msg): also what signs the gate's
 * archive URLs (their messages start "archive.", never "v1.", so a URL's
 * signature can never pass for a call token). */
void auth_hmac_hex(const char *secret, const char *msg, char out[65]);

/* 64 lowercase hex of SHA-256(data). */
void auth_sha256_hex(const void *data, size_t len, char out[65]);

/* Reads a secret from a file: its first line, at least 16 bytes. */
int auth_secret_load(const char *path, char **out);
/* A fresh random secret (64 hex characters). */
char *auth_secret_generate(void);

#endif
