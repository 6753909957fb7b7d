/*
 * External authorization: with `[auth] url` set, the platform's API decides
 * who a key is and what it may do, like gitlab-shell's /internal/allowed.
 * The gate POSTs
 *
 *   {"fingerprint": "SHA256:…", "action": "login" | "git-upload-pack" |
 *    "git-receive-pack" | "git-upload-archive", "app": "myapp" | null,
 *    "protocol": "ssh"}
 *
 * (with "Authorization: Bearer <token>" when auth.tokenFile is set) and obeys
 * {"allowed": true|false, "user": "alice", "message": "…"}: "login" when a
 * key's signature verified (is this key someone?), a git action before each
 * command (may they do this to this app?). The message of a refusal is shown
 * to the user.
 *
 * Answers are cached for auth.cacheTtl seconds (refusals for at most 5) in a
 * table shared by every connection process: a mapping made before the first
 * fork, like the metrics, guarded by a robust process-shared mutex so a
 * session killed while holding it cannot wedge the others. The table has a
 * fixed size; a full bucket evicts its oldest entry.
 *
 * When the API cannot be reached (or answers 5xx, or nonsense), nothing is
 * cached and the user gets a line that says so, never a misleading "not
 * found".
 */
#ifndef GROVE_GATE_AUTHZ_H
#define GROVE_GATE_AUTHZ_H

#include "lib/common.h"

#define AUTHZ_USER_MAX 64
#define AUTHZ_MESSAGE_MAX 256

struct authz;

struct authz_opts {
	const char *url;
	const char *token;       /* NULL: no Authorization header */
	int timeout_s;
	int cache_ttl_s;         /* 0: no cache */
	int cache_entries;
};

struct authz_answer {
	bool allowed;
	char user[AUTHZ_USER_MAX + 1];
	char message[AUTHZ_MESSAGE_MAX + 1];
	bool cached;             /* came from the cache */
};

/* Maps the shared cache; call before forking. */
int authz_new(struct authz **out, const struct authz_opts *opts);
void authz_free(struct authz *z);

/*
 * Asks (or answers from the cache). 0 with *out filled when the API gave a
 * definite answer, allowed or not; GROVE_EUNAVAIL with the reason when it
 * could not be asked.
 */
int authz_check(struct authz *z, const char *fingerprint, const char *action, const char *app,
		struct authz_answer *out);

/*
 * Parses the API's answer body (exposed for the fuzzer and unit tests):
 * 0 and *out, or GROVE_EINVAL saying what is wrong with it.
 */
int authz_parse_answer(const char *body, size_t len, struct authz_answer *out);

#endif
