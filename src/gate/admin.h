/*
 * The gate's admin HTTP API (libmicrohttpd + jansson): JSON over HTTP on its
 * own port, every request but /health and /ready with
 * "Authorization: Bearer <token>" (compared in constant time).
 *
 * Endpoints (all bodies and answers JSON; errors {"error": "what and what to do"}):
 *   GET    /health                          {"status":"ok"}
 *   GET    /ready                           {"ready":true|false}  (false while draining)
 *   GET    /api/v1/status                   the gate at a glance (apps per route, deployments, canary)
 *   GET    /api/v1/cluster                  the cluster router and its stores as it sees them:
 *          {"address","up","router","stores":[{"name","address","healthy","writable",…}],
 *          "repositories","dataloss","jobs_ready",…}; {"address","up":false,"error"} when down
 *   GET    /ui/                             the operator's dashboard (HTML; gate/admin/ui.c),
 *          with this token as a bearer or a login form's session cookie
 *   GET    /api/v1/users                    [{"name","admin","keys":[fingerprint…]}…]
 *   POST   /api/v1/users                    {"name","admin"?}                → 201 user
 *   DELETE /api/v1/users/NAME                                                 → 204
 *   POST   /api/v1/users/NAME/keys          {"public_key":"ssh-ed25519 AAAA… comment"} → 201 {"fingerprint"}
 *   DELETE /api/v1/keys/FINGERPRINT         (URL-encoded)                     → 204
 *   POST   /api/v1/users/NAME/tokens        {"name"?,"expires_in_days"?,"read_only"?} → 201 {"id","token",…} (shown once)
 *   GET    /api/v1/users/NAME/tokens                                         [{"id","name","created_at","expires_at","last_used_at","read_only"}…]
 *   DELETE /api/v1/users/NAME/tokens/TOKEN_NAME_OR_ID                        → 204
 *   GET    /api/v1/apps                     [app…]
 *   POST   /api/v1/apps                     {"name","deploy_branch"?,"route"?} → 201 app
 *   GET    /api/v1/apps/NAME                app with "collaborators"
 *   PATCH  /api/v1/apps/NAME                {"deploy_branch"?,"default_branch"?,"route"?,"locked"?,"max_push_mb"?} → 200 app
 *          (default_branch: HEAD of its repository, a branch that exists; 404 otherwise)
 *   DELETE /api/v1/apps/NAME                                                   → 204
 *   PUT    /api/v1/apps/NAME/collaborators/USER   {"access":"read"|"write"}  → 200
 *   DELETE /api/v1/apps/NAME/collaborators/USER                               → 204
 *   POST   /api/v1/apps/NAME/migrate        {"to":"cluster"|"legacy"} → 200 app + "report"
 *   POST   /api/v1/import-legacy            apps found as <app>.git in the legacy directory → {"imported","skipped"}
 *   GET    /api/v1/canary                   {"percent", "source": "config"|"api"}
 *   PUT    /api/v1/canary                   {"percent": 0-100}: the share of new apps on
 *          the cluster route, from now on (stored: every gate on the database follows)
 *   GET    /api/v1/apps/NAME/deployments    [deployment without log…]
 *   GET    /api/v1/deployments/ID           deployment with "log"
 *   GET    /archive/APP/COMMIT.tar.gz?expires=T&signature=S   the commit as tar.gz,
 *          streamed; no token: the URL's own signature (gate/archive.h), 403 when
 *          it is wrong or expired, 404 for a commit the repository lacks
 * Status codes: 400 bad JSON or field (message says which), 401 missing or
 * wrong token, 404 unknown thing, 409 exists already, 413 body over 1 MiB.
 */
#ifndef GROVE_GATE_ADMIN_H
#define GROVE_GATE_ADMIN_H

#include "lib/common.h"

struct admin;
struct repo_env;

struct admin_opts {
	const char *listen;     /* "127.0.0.1:8080" */
	/* Where /health, /ready, /metrics and archive downloads are served
	 * too, without the admin API (NULL: on listen only). */
	const char *public_listen;
	const char *token;      /* bearer token */
	const char *db_path;    /* the gate's SQLite file */
	const char *default_deploy_branch;
	int canary_percent;     /* share of new apps routed to the cluster */
	const struct repo_env *repos;   /* where the apps' repositories are: for moves, housekeeping, archives */
	/* Bounds, so that slow or many clients from one address cannot make
	 * the port unreachable for the others (0: the defaults). */
	unsigned max_conns, max_per_addr, timeout_s;
	unsigned request_timeout_s;   /* to read a whole request, headers and body */
};

int admin_start(struct admin **out, const struct admin_opts *opts);
/* /ready answers false from now on. */
void admin_set_draining(struct admin *a);
void admin_stop(struct admin *a);

#endif
