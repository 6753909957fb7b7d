/*
 * The admin API's request parsing: a body into a JSON object, its fields
 * into values, a branch name and an SSH public key line checked. It lives
 * here, out of the HTTP server (src/gate/admin/), so that the fuzzer
 * (tests/fuzz/fuzz_adminjson.c) runs the very code the server runs.
 *
 * Every function returns 0 or a negative GROVE_E* code (GROVE_EINVAL for
 * bad input, which the server answers with 400) with a message that names
 * the field and says what was expected.
 */
#ifndef GROVE_ADMINREQ_H
#define GROVE_ADMINREQ_H

#include "lib/common.h"

#include <jansson.h>

#define ADMINREQ_KEY_MAX 16384     /* bytes of one public key line */
#define ADMINREQ_BRANCH_MAX 255    /* bytes of a deploy branch name */

/* buf[0..len) as a JSON object; *out is the caller's to json_decref. */
int adminreq_parse_body(const char *buf, size_t len, json_t **out);
/* Refuses members other than those in allowed (NULL-terminated). */
int adminreq_check_fields(json_t *body, const char *const *allowed);
/* A string member without NUL: *out NULL when absent or null and not required.
 * *out points into body. */
int adminreq_get_str(json_t *body, const char *name, bool required, const char **out);
/* A boolean member: *present false when absent or null. */
int adminreq_get_bool(json_t *body, const char *name, bool *present, bool *out);
/* An optional integer field within [min, max]; *present says whether it was given. */
int adminreq_get_int(json_t *body, const char *name, int64_t min, int64_t max, bool *present, int64_t *out);
/* A branch name as git check-ref-format allows it under refs/heads/ (and
 * no longer than ADMINREQ_BRANCH_MAX): NULL, or what is wrong with it. The
 * gate's push policy uses it too, so a branch that could never be a deploy
 * branch is never pushed. */
const char *adminreq_branch_problem(const char *name);
/* The same as a GROVE_EINVAL about the field deploy_branch. */
int adminreq_check_branch(const char *name);

struct adminreq_key {
	char *fingerprint;    /* "SHA256:…" */
	char *line;           /* "type base64[ comment]", normalized */
	char type[64];
};

/* One line of an id_*.pub file; release k with adminreq_key_release. */
int adminreq_parse_key(const char *text, struct adminreq_key *k);
void adminreq_key_release(struct adminreq_key *k);

#endif
