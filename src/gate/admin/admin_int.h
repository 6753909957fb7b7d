/*
 * Inside the gate's admin HTTP API (gate/admin.h): what its files share.
 *
 *   server.c     the HTTP side: libmicrohttpd, the token, reading a request,
 *                sending the answer, /health, /ready, /metrics, listening
 *   routes.c     the table of endpoints under /api/v1/ and their handlers
 *   reply.c      answering: statuses, JSON errors, checks of body fields
 *   users.c      users and their SSH keys
 *   apps.c       apps, their collaborators, housekeeping, legacy import
 *   deploys.c    deployments and their logs
 *   moves.c      moves between the routes: one app, a batch, the canary
 *   status.c     the gate at a glance
 *   downloads.c  signed archive downloads
 *   ui.c         the operator's dashboard at /ui/: its pages and actions
 *   ui_html.c    building its HTML: escaping, tables, bars, charts
 *   ui_session.c its logins: sessions in memory, their cookies and CSRF tokens
 *   ui_history.c the counters of /metrics sampled each minute, for its charts
 *
 * A handler gets a struct call (the request's database handle, the path's
 * '*' parts, the parsed body) and fills call->out; it returns the status.
 */
#ifndef GROVE_GATE_ADMIN_INT_H
#define GROVE_GATE_ADMIN_INT_H

#include "lib/common.h"
#include "gate/admin.h"
#include "gate/db.h"
#include "gate/gate.h"
#include "lib/strbuf.h"

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>

/*
 * A batch migration (POST /api/v1/migrations) runs on a thread of the api
 * process, one app after the other, so it goes on when the operator's
 * `grove migrate` is closed; GET /api/v1/migrations shows its progress.
 */
struct batch {
	pthread_mutex_t mu;
	pthread_t tid;
	bool started;            /* a thread was ever started (to join) */
	bool running;
	bool stop;
	enum route to;
	int rate;                /* apps a minute; 0: as fast as it goes */
	char **apps;
	size_t total, done, failed;
	int64_t start_ms;
	char current[GATE_APP_NAME_MAX + 1];
	json_t *results;         /* [{app, ok, error?}], in order */
};

/* One listener of the API: the admin one, or the public one
 * (gate.publicListen) that serves the endpoints needing no token only. */
struct admin_side {
	struct admin *a;
	bool public_only;
};

struct ui_sessions;
struct ui_history;

struct admin {
	struct MHD_Daemon *daemon;
	struct MHD_Daemon *public_daemon;   /* gate.publicListen, or NULL */
	struct admin_side side, public_side;
	unsigned char token_hash[SHA256_DIGEST_LENGTH];
	char *db_path;
	char *default_branch;
	int canary_percent;
	const struct repo_env *repos;
	char *secret;         /* signs archive URLs */
	atomic_bool draining;
	struct batch batch;
	struct ui_sessions *ui_sessions;   /* the dashboard's logins */
	struct ui_history *ui_history;     /* the counters, a sample a minute */
	struct req_deadline *deadline;     /* gate.adminRequestTimeout */
};

/* One HTTP request, from its headers to its completion. */
struct request {
	struct strbuf body;
	int64_t start_ms;
	int status;           /* what was answered, 0 while nothing was */
	bool answered;        /* answered before the body was read */
	bool too_big;         /* the body outgrew ADMIN_BODY_MAX while arriving */
	size_t discarded;     /* bytes dropped since */
	char method[16];
	char path[256];       /* for the log line only */
	char corr[65];
};

/* What a handler answers: a status and a JSON document (NULL for none). */
struct reply {
	int status;
	json_t *json;
	char *text;     /* a plain-text body instead (/metrics, pages); freed after sending */
	const char *content_type;   /* text's; NULL: Prometheus's text format */
	char *set_cookie;           /* a Set-Cookie header; freed after sending */
	const char *location;       /* a Location header (a constant) */
};

/* A handler's view of one request. */
struct call {
	struct admin *a;
	struct db *db;
	struct MHD_Connection *conn;
	const char *arg[2];   /* the path's '*' parts, in order */
	json_t *body;         /* the parsed body object, for methods with one */
	struct reply *out;
};

typedef int handler_fn(struct call *x);

/* ---- reply.c ---- */

/* A JSON string for s (null for NULL), repaired into UTF-8 when needed. */
json_t *jstr(const char *s);
/* Sets out to {"error": message} with status; returns status. */
int reply_error(struct reply *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Answers the thread's error message with the status its GROVE_E* code means. */
int reply_grove_error(struct reply *out, int code);
/* Answers status with json (owned by the reply from now on); returns status. */
int call_answer(struct call *x, int status, json_t *json);
/* The checks of lib/adminreq.c on the call's body; a refusal is answered. */
int call_check_fields(struct call *x, const char *const *allowed);
int call_get_str(struct call *x, const char *name, bool required, const char **out);
int call_get_bool(struct call *x, const char *name, bool *present, bool *out);
int call_get_int(struct call *x, const char *name, int64_t min, int64_t max, bool *present, int64_t *out);
int call_txn_end(struct call *x, int ret, const char *what);
int check_branch(struct reply *out, const char *name);
const char *short_branch(const char *name);
bool parse_int(const char *s, long long min, long long max, long long *out);

/* ---- server.c ---- */

/* Whether token is the admin token, compared in constant time. */
bool admin_token_matches(const struct admin *a, const char *token);
/* Whether the request carries "Authorization: Bearer <the admin token>". */
bool admin_bearer_ok(const struct admin *a, struct MHD_Connection *conn);

/* ---- routes.c ---- */

/*
 * Matches path against pattern, part by part: a '*' part takes one part of
 * the path, "**" the rest; the '*' parts are copied into buf, arg points at
 * them.
 */
bool route_match(const char *pattern, const char *path, char *buf, size_t bufsz, const char *arg[2]);

/*
 * The handler for METHOD on path (after "/api/v1/"), with the path's '*'
 * parts in arg (copied into buf); NULL when none, with the methods the path
 * does take, if any, in allow ("GET, PUT").
 */
const struct route_def *route_find(const char *method, const char *path, char *buf, size_t bufsz,
				   const char *arg[2], char *allow, size_t allowsz);
handler_fn *route_handler(const struct route_def *r);
bool route_takes_body(const struct route_def *r);

/* ---- the handlers ---- */

handler_fn users_list, user_get, user_create, user_delete, key_add, key_remove;
handler_fn tokens_list, token_post, token_delete;
handler_fn apps_list, app_get, app_create, apps_import_legacy, app_patch, app_gc_post, app_verify_post,
	app_accept_dataloss_post, app_delete;
handler_fn collaborator_put, collaborator_delete;
handler_fn app_deployments, deployment_get;
handler_fn migrations_get, migrations_post, operations_get, app_migrate_post, canary_get, canary_put;
handler_fn status_get, cluster_get;

/*
 * apps.c: an app as GET /api/v1/apps/NAME shows it: its row, collaborators,
 * last push and last deployment, and with repository its repository where
 * it lives (size, and on a cluster its replicas: calls to the router).
 */
int app_describe(struct call *x, const char *name, bool repository, json_t **out);
/* status.c: the cluster router's GET /api/v1/cluster (NULL without one). */
json_t *cluster_status(const struct admin *a);
/* apps.c and deploys.c: a deployment row (id, app, ref, old_oid, new_oid,
 * pusher, status, started_at, finished_at) as JSON. */
json_t *deployment_object(const char *const *v);
/* moves.c: the canary share now (*set: from the API rather than the config). */
int canary_now(struct call *x, bool *set);

/* ---- ui.c ---- */

/* Whether url is the dashboard's (/ui/ and under). */
bool ui_path(const char *url);
/* With the headers: a stranger's action (anything but GET and the login
 * form) is refused before its body is read. True when out was filled. */
bool ui_refuse_early(struct admin *a, struct MHD_Connection *conn, const char *url, const char *method,
		     struct reply *out);
/* Answers a request of the dashboard, its form (if any) in body. */
void ui_serve(struct admin *a, struct MHD_Connection *conn, const struct strbuf *body, const char *url,
	      const char *method, struct reply *out);

/* ---- downloads.c ---- */

enum MHD_Result archive_serve(struct admin *a, struct MHD_Connection *conn, struct request *r, const char *url,
			      const char *method, struct reply *out);

#endif
