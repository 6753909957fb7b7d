/*
 * The gate's admin HTTP API: see admin.h for the endpoints.
 *
 * libmicrohttpd runs one thread per connection (polled with poll(2), so a
 * process with many descriptors is fine), at most ADMIN_MAX_CONNS at once.
 * Each request opens its own database handle, because SQLite handles are
 * not to be shared between threads without a lock and opening one is cheap
 * next to an HTTP round trip.
 *
 * A request is read in three steps, as libmicrohttpd calls the handler:
 * first the headers (the token is checked and a declared body over the
 * limit refused right there, so neither a stranger nor an oversized body
 * is read), then the body in pieces into a bounded buffer, then the answer.
 * A response queued before the body was read carries "Connection: close",
 * so the rest of the body is never read. A body sent without a length
 * cannot be refused that early: once it outgrows the limit it is dropped as
 * it comes, up to ADMIN_DISCARD_MAX, for a 413 at its end; past that the
 * connection is cut.
 */
#include "gate/admin.h"
#include "gate/archive.h"
#include "gate/gate.h"
#include <dirent.h>
#include "gate/db.h"
#include "gate/metrics.h"
#include "gate/migrate.h"
#include "lib/adminreq.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "grove/v1/cluster.pb-c.h"
#include "grove/v1/repository.pb-c.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define ADMIN_BODY_MAX (1024 * 1024)
/* A body without a length that outgrows the limit is read (and dropped) up
 * to this much, so its sender gets a 413; past that the connection is cut. */
#define ADMIN_DISCARD_MAX (8 * 1024 * 1024)
#define ADMIN_MAX_CONNS 128
#define ADMIN_TIMEOUT_S 60
#define DEPLOY_LIST_DEFAULT 100
#define DEPLOY_LIST_MAX 1000

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

struct admin {
	struct MHD_Daemon *daemon;
	unsigned char token_hash[SHA256_DIGEST_LENGTH];
	char *db_path;
	char *default_branch;
	int canary_percent;
	const struct migrate_env *migrate;
	char *secret;         /* signs archive URLs */
	atomic_bool draining;
	struct batch batch;
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
	char *text;     /* a plain-text body instead (/metrics); freed after sending */
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

/* ---- small helpers ---- */

static json_t *jstr(const char *s);
static bool parse_int(const char *s, long long min, long long max, long long *out);

static int reply_error(struct reply *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int reply_error(struct reply *out, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(out->json);
	/* Messages quote input, which may be cut mid-character: jstr repairs. */
	out->json = json_object();
	json_object_set_new(out->json, "error", jstr(msg));
	out->status = status;
	return status;
}

/* The HTTP status that a GROVE_E* code from a lower layer means. */
static int http_status(int code)
{
	switch (code) {
	case GROVE_EINVAL: return MHD_HTTP_BAD_REQUEST;
	case GROVE_ENOTFOUND: return MHD_HTTP_NOT_FOUND;
	case GROVE_EEXISTS: return MHD_HTTP_CONFLICT;
	case GROVE_EPRECOND: return MHD_HTTP_CONFLICT;
	case GROVE_ETOOBIG: return MHD_HTTP_CONTENT_TOO_LARGE;
	case GROVE_EAUTH: return MHD_HTTP_UNAUTHORIZED;
	case GROVE_EDENIED: return MHD_HTTP_FORBIDDEN;
	case GROVE_EUNAVAIL: return MHD_HTTP_SERVICE_UNAVAILABLE;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

/* Answers the thread's error message with the status its code means. */
static int reply_grove_error(struct reply *out, int code)
{
	return reply_error(out, http_status(code), "%s", error_msg()[0] ? error_msg() : error_code_name(code));
}

/*
 * Appends s as valid UTF-8: every byte that does not start a well-formed
 * sequence becomes U+FFFD. Deploy logs and refs are bytes; JSON is text.
 */
static void utf8_repair(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		size_t n = 0;
		unsigned cp = 0;
		if (*p < 0x80) {
			n = 1;
		} else if (*p >= 0xc2 && *p <= 0xdf) {
			n = 2, cp = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 3, cp = *p & 0x0f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 4, cp = *p & 0x07;
		}
		if (n > 1) {
			if ((size_t)(end - p) < n) {
				n = 0;
			} else {
				for (size_t i = 1; i < n; i++) {
					if ((p[i] & 0xc0) != 0x80) {
						n = 0;
						break;
					}
					cp = (cp << 6) | (p[i] & 0x3f);
				}
				/* Overlong forms, surrogates and code points past U+10FFFF. */
				if (n && ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
					  (cp >= 0xd800 && cp <= 0xdfff)))
					n = 0;
			}
		}
		if (!n) {
			strbuf_addstr(sb, "\xef\xbf\xbd");
			p++;
			continue;
		}
		strbuf_add(sb, p, n);
		p += n;
	}
}

/* A JSON string for s (null for NULL), repaired into UTF-8 when needed. */
static json_t *jstr(const char *s)
{
	json_t *j;
	struct strbuf sb = STRBUF_INIT;
	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	utf8_repair(&sb, s, strlen(s));
	j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

/* The parsing itself is in lib/adminreq.c (shared with the fuzzer); these
 * answer its refusal as the handler's reply. */
static int check_fields(struct call *x, const char *const *allowed)
{
	int ret = adminreq_check_fields(x->body, allowed);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

static int get_str(struct call *x, const char *name, bool required, const char **out)
{
	int ret = adminreq_get_str(x->body, name, required, out);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

static int get_bool(struct call *x, const char *name, bool *present, bool *out)
{
	int ret = adminreq_get_bool(x->body, name, present, out);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

static int get_int(struct call *x, const char *name, int64_t min, int64_t max, bool *present, int64_t *out)
{
	int ret = adminreq_get_int(x->body, name, min, max, present, out);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

/* Ends a handler's transaction: committed if all went well (0), else rolled
 * back and the error answered (the reply's status). */
static int txn_end(struct call *x, int ret, const char *what)
{
	if (!ret)
		ret = db_commit(x->db, what);
	if (!ret)
		return 0;
	reply_grove_error(x->out, ret);
	db_rollback(x->db);
	return x->out->status;
}

static int check_branch(struct reply *out, const char *name)
{
	int ret = adminreq_check_branch(name);
	return ret ? reply_grove_error(out, ret) : 0;
}

/* The branch name without "refs/heads/": apps store the short name. */
static const char *short_branch(const char *name)
{
	const char *rest;
	return skip_prefix(name, "refs/heads/", &rest) ? rest : name;
}


/* ---- JSON documents from the database ---- */

/* Rows of users (name, admin, created_at) and then of keys (name, fingerprint). */
struct users_ctx {
	json_t *list;
	json_t *by_name;   /* name → the user's object in list */
};

static int user_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct users_ctx *u = ctx;
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(values[0]));
	json_object_set_new(o, "admin", json_boolean(values[1] && strcmp(values[1], "0")));
	json_object_set_new(o, "created_at", jstr(values[2]));
	json_object_set_new(o, "keys", json_array());
	json_array_append_new(u->list, o);
	json_object_set(u->by_name, values[0], o);
	return 0;
}

static int user_key_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct users_ctx *u = ctx;
	json_t *o = json_object_get(u->by_name, values[0]);
	if (o)
		json_array_append_new(json_object_get(o, "keys"), jstr(values[1]));
	return 0;
}

/* All users, or the one named (NULL for all), each with its keys' fingerprints. */
static int users_json(struct db *db, const char *name, json_t **out)
{
	struct users_ctx u = { json_array(), json_object() };
	const char *params[] = { name };
	size_t np = name ? 1 : 0;
	int ret;

	*out = NULL;
	ret = db_query(db,
		       name ? "SELECT name, admin, created_at FROM users WHERE name = ?"
			    : "SELECT name, admin, created_at FROM users ORDER BY name",
		       params, np, user_row, &u);
	if (!ret)
		ret = db_query(db,
			       name ? "SELECT u.name, k.fingerprint FROM keys k JOIN users u ON u.id = k.user_id"
				      " WHERE u.name = ? ORDER BY k.id"
				    : "SELECT u.name, k.fingerprint FROM keys k JOIN users u ON u.id = k.user_id"
				      " ORDER BY u.name, k.id",
			       params, np, user_key_row, &u);
	json_decref(u.by_name);
	if (ret) {
		json_decref(u.list);
		return ret;
	}
	*out = u.list;
	return 0;
}

/* Rows of (name, deploy_branch, route, locked, created_at, updated_at, max_push_mb). */
static int app_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(values[0]));
	json_object_set_new(o, "deploy_branch", jstr(values[1]));
	json_object_set_new(o, "route", jstr(values[2]));
	json_object_set_new(o, "locked", json_boolean(values[3] && strcmp(values[3], "0")));
	json_object_set_new(o, "created_at", jstr(values[4]));
	json_object_set_new(o, "updated_at", jstr(values[5]));
	json_object_set_new(o, "max_push_mb", json_integer(values[6] ? strtoll(values[6], NULL, 10) : 0));
	json_array_append_new(ctx, o);
	return 0;
}

static int collaborator_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_array_append_new(ctx, json_pack("{s:o,s:o}", "user", jstr(values[0]), "access", jstr(values[1])));
	return 0;
}

#define APP_COLUMNS "name, deploy_branch, route, locked, created_at, updated_at, max_push_mb"

/* One app with its collaborators. */
static int app_json(struct db *db, const char *name, json_t **out)
{
	json_t *list = json_array(), *collab = json_array();
	const char *params[] = { name };
	int ret;

	*out = NULL;
	ret = db_query(db, "SELECT " APP_COLUMNS " FROM apps WHERE name = ?", params, 1, app_row, list);
	if (!ret && !json_array_size(list))
		ret = error_set(GROVE_ENOTFOUND, "no app named %s", name);
	if (!ret)
		ret = db_query(db,
			       "SELECT u.name, c.access FROM collaborators c JOIN apps a ON a.id = c.app_id"
			       " JOIN users u ON u.id = c.user_id WHERE a.name = ? ORDER BY u.name",
			       params, 1, collaborator_row, collab);
	if (!ret) {
		*out = json_incref(json_array_get(list, 0));
		json_object_set(*out, "collaborators", collab);
	}
	json_decref(list);
	json_decref(collab);
	return ret;
}

/* Rows of (id, app, ref, old_oid, new_oid, pusher, status, started_at, finished_at). */
static json_t *deployment_object(const char *const *v)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(strtoll(v[0] ? v[0] : "0", NULL, 10)));
	json_object_set_new(o, "app", jstr(v[1]));
	json_object_set_new(o, "ref", jstr(v[2]));
	json_object_set_new(o, "old_oid", jstr(v[3]));
	json_object_set_new(o, "new_oid", jstr(v[4]));
	json_object_set_new(o, "pusher", jstr(v[5]));
	json_object_set_new(o, "status", jstr(v[6]));
	json_object_set_new(o, "started_at", jstr(v[7]));
	json_object_set_new(o, "finished_at", jstr(v[8]));
	return o;
}

static int deployment_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_array_append_new(ctx, deployment_object(values));
	return 0;
}

/* ---- handlers ---- */

typedef int handler_fn(struct call *x);

static int answer(struct call *x, int status, json_t *json)
{
	json_decref(x->out->json);
	x->out->json = json;
	x->out->status = status;
	return status;
}

static int users_list(struct call *x)
{
	json_t *j = NULL;
	int ret = users_json(x->db, NULL, &j);
	return ret ? reply_grove_error(x->out, ret) : answer(x, MHD_HTTP_OK, j);
}

static int user_get(struct call *x)
{
	json_t *j = NULL;
	int ret = users_json(x->db, x->arg[0], &j);
	if (!ret && !json_array_size(j))
		ret = error_set(GROVE_ENOTFOUND, "no user named %.64s", x->arg[0]);
	if (ret) {
		json_decref(j);
		return reply_grove_error(x->out, ret);
	}
	answer(x, MHD_HTTP_OK, json_incref(json_array_get(j, 0)));
	json_decref(j);
	return MHD_HTTP_OK;
}

static int user_create(struct call *x)
{
	static const char *const fields[] = { "name", "admin", NULL };
	const char *name;
	bool has_admin = false, admin = false;
	int ret;

	if (check_fields(x, fields) || get_str(x, "name", true, &name) || get_bool(x, "admin", &has_admin, &admin))
		return x->out->status;
	ret = db_user_create(x->db, name, admin);
	if (ret)
		return reply_grove_error(x->out, ret);
	x->arg[0] = name;
	user_get(x);
	if (x->out->status == MHD_HTTP_OK)
		x->out->status = MHD_HTTP_CREATED;
	return x->out->status;
}

static int user_delete(struct call *x)
{
	int ret = db_user_delete(x->db, x->arg[0]);
	return ret ? reply_grove_error(x->out, ret) : answer(x, MHD_HTTP_NO_CONTENT, NULL);
}

static int key_add(struct call *x)
{
	static const char *const fields[] = { "public_key", NULL };
	struct adminreq_key k;
	const char *text;
	int ret;

	if (check_fields(x, fields) || get_str(x, "public_key", true, &text))
		return x->out->status;
	ret = adminreq_parse_key(text, &k);
	if (ret)
		return reply_grove_error(x->out, ret);
	ret = db_key_add(x->db, x->arg[0], k.fingerprint, k.line);
	if (ret)
		reply_grove_error(x->out, ret);
	else
		answer(x, MHD_HTTP_CREATED,
		       json_pack("{s:s,s:s,s:s}", "fingerprint", k.fingerprint, "user", x->arg[0], "type", k.type));
	adminreq_key_release(&k);
	return x->out->status;
}

static int key_remove(struct call *x)
{
	int ret = db_key_remove(x->db, x->arg[0]);
	return ret ? reply_grove_error(x->out, ret) : answer(x, MHD_HTTP_NO_CONTENT, NULL);
}

static int apps_list(struct call *x)
{
	json_t *list = json_array();
	int ret = db_query(x->db, "SELECT " APP_COLUMNS " FROM apps ORDER BY name", NULL, 0, app_row, list);
	if (ret) {
		json_decref(list);
		return reply_grove_error(x->out, ret);
	}
	return answer(x, MHD_HTTP_OK, list);
}

/* One row of integer columns into a JSON object, named as the columns. */
static int counts_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	for (int i = 0; i < ncols; i++)
		json_object_set_new(ctx, names[i], json_integer(values[i] ? strtoll(values[i], NULL, 10) : 0));
	return 0;
}

/*
 * GET /api/v1/migrations: where the move to the cluster stands — apps per
 * route, the share on the cluster, and the migrations running now (from the
 * journal, with when each began), for a dashboard or a script watching a
 * `grove migrate` run.
 */
static int migrations_get(struct call *x)
{
	json_t *o = json_object(), *running = json_array();
	const struct migrate_env *env = x->a->migrate;
	int ret = db_query(x->db,
			   "SELECT COUNT(*) AS apps,"
			   " COALESCE(SUM(CASE WHEN route = 'cluster' THEN 1 ELSE 0 END), 0) AS cluster,"
			   " COALESCE(SUM(CASE WHEN route = 'legacy' THEN 1 ELSE 0 END), 0) AS legacy FROM apps",
			   NULL, 0, counts_row, o);
	if (ret) {
		json_decref(o);
		json_decref(running);
		return reply_grove_error(x->out, ret);
	}
	json_int_t apps = json_integer_value(json_object_get(o, "apps"));
	json_int_t cl = json_integer_value(json_object_get(o, "cluster"));
	json_object_set_new(o, "percent_on_cluster", json_real(apps ? 100.0 * (double)cl / (double)apps : 0.0));
	DIR *d = env && env->journal_dir ? opendir(env->journal_dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[4096], text[128] = "", when[32] = "";
		struct stat sb;
		FILE *f;
		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", env->journal_dir, e->d_name);
		if (stat(path, &sb) || !(f = fopen(path, "r")))
			continue;
		size_t n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		struct tm tm;
		gmtime_r(&sb.st_mtime, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_append_new(running, json_pack("{s:s, s:s, s:s}", "app", e->d_name, "to",
							 strstr(text, "to=cluster") ? "cluster" : "legacy", "since", when));
	}
	if (d)
		closedir(d);
	json_object_set_new(o, "in_progress", running);
	struct batch *b = &x->a->batch;
	pthread_mutex_lock(&b->mu);
	if (b->apps) {
		double el = (double)(now_ms() - b->start_ms) / 1000.0;
		size_t n = b->done + b->failed;
		double rate = el > 0 ? (double)n / el * 60.0 : 0;
		json_object_set_new(o, "batch",
				    json_pack("{s:b, s:s, s:I, s:I, s:I, s:s, s:f, s:f, s:O}", "running", b->running, "to",
					      route_name(b->to), "total", (json_int_t)b->total, "done", (json_int_t)b->done,
					      "failed", (json_int_t)b->failed, "current", b->current, "rate_per_min", rate,
					      "eta_s", rate > 0 ? (double)(b->total - n) / rate * 60.0 : 0.0, "results",
					      b->results));
	} else {
		json_object_set_new(o, "batch", json_null());
	}
	pthread_mutex_unlock(&b->mu);
	return answer(x, MHD_HTTP_OK, o);
}

static void *batch_main(void *arg)
{
	struct admin *a = arg;
	struct batch *b = &a->batch;
	struct db *db = NULL;
	int ret = db_open(&db, a->db_path);

	for (size_t i = 0; i < b->total; i++) {
		struct strbuf report = STRBUF_INIT;
		pthread_mutex_lock(&b->mu);
		/* --rate: the i-th app starts no sooner than i minutes / rate after the first. */
		while (b->rate > 0 && !b->stop && now_ms() < b->start_ms + (int64_t)i * 60000 / b->rate) {
			pthread_mutex_unlock(&b->mu);
			usleep(100 * 1000);
			pthread_mutex_lock(&b->mu);
		}
		bool stop = b->stop;
		strlcpy_(b->current, b->apps[i], sizeof(b->current));
		enum route to = b->to;
		pthread_mutex_unlock(&b->mu);
		if (stop)
			break;
		strbuf_init(&report, 64 * 1024);
		int r = ret ? ret : app_migrate(a->migrate, db, b->apps[i], to, &report);
		pthread_mutex_lock(&b->mu);
		if (r)
			b->failed++;
		else
			b->done++;
		json_array_append_new(b->results, r ? json_pack("{s:s, s:b, s:s}", "app", b->apps[i], "ok", 0, "error", error_msg())
						     : json_pack("{s:s, s:b}", "app", b->apps[i], "ok", 1));
		pthread_mutex_unlock(&b->mu);
		strbuf_release(&report);
	}
	pthread_mutex_lock(&b->mu);
	b->running = false;
	b->current[0] = '\0';
	pthread_mutex_unlock(&b->mu);
	log_info("gate.batch_done", "to=%s total=%zu done=%zu failed=%zu ms=%lld", route_name(b->to), b->total, b->done,
		 b->failed, (long long)(now_ms() - b->start_ms));
	db_close(db);
	return NULL;
}

static int name_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_array_append_new(ctx, json_pack("{s:s?, s:s?}", "name", values[0], "route", values[1]));
	return 0;
}

/*
 * POST /api/v1/migrations {"percent": N, "to": "cluster"|"legacy", "batch": K,
 * "rate": R, "dry_run": bool}: moves apps, in name order, until N % of all
 * apps are on the cluster (or, to legacy, at most N % are left there).
 */
static int migrations_post(struct call *x)
{
	static const char *const fields[] = { "percent", "to", "batch", "rate", "dry_run", NULL };
	struct batch *b = &x->a->batch;
	json_t *pv = json_object_get(x->body, "percent"), *bv = json_object_get(x->body, "batch"),
	       *rv = json_object_get(x->body, "rate"), *apps = NULL, *plan = NULL;
	const char *to_s = NULL;
	enum route to = ROUTE_CLUSTER;
	bool dry = false, has_dry = false;
	double percent;
	json_int_t batch = -1, rate = 0, total, on_cluster = 0, want;
	int ret;

	if (check_fields(x, fields) || get_str(x, "to", false, &to_s) || get_bool(x, "dry_run", &has_dry, &dry))
		return x->out->status;
	if (to_s && route_parse(to_s, &to))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"to\" must be \"legacy\" or \"cluster\"");
	if (!json_is_number(pv) || json_number_value(pv) < 0 || json_number_value(pv) > 100)
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"percent\" must be a number from 0 to 100");
	percent = json_number_value(pv);
	if (bv && !json_is_null(bv) && (!json_is_integer(bv) || (batch = json_integer_value(bv)) < 1))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"batch\" must be a whole number above 0");
	if (rv && !json_is_null(rv) && (!json_is_integer(rv) || (rate = json_integer_value(rv)) < 0 || rate > 100000))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"rate\" must be a whole number of apps a minute, 0 for no limit");
	if (!x->a->migrate)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot migrate apps");
	apps = json_array();
	if ((ret = db_query(x->db, "SELECT name, route FROM apps ORDER BY name", NULL, 0, name_row, apps))) {
		json_decref(apps);
		return reply_grove_error(x->out, ret);
	}
	total = (json_int_t)json_array_size(apps);
	for (size_t i = 0; i < json_array_size(apps); i++)
		on_cluster += !strcmp(json_string_value(json_object_get(json_array_get(apps, i), "route")) ?: "", "cluster");
	/* How many move: up to ceil(N %) on the cluster, or down to floor(N %). */
	if (to == ROUTE_CLUSTER)
		want = (json_int_t)ceil((double)total * percent / 100.0 - 1e-9) - on_cluster;
	else
		want = on_cluster - (json_int_t)floor((double)total * percent / 100.0 + 1e-9);
	if (want < 0)
		want = 0;
	if (batch > 0 && want > batch)
		want = batch;
	plan = json_array();
	for (size_t i = 0; i < json_array_size(apps) && (json_int_t)json_array_size(plan) < want; i++) {
		json_t *a = json_array_get(apps, i);
		if (strcmp(json_string_value(json_object_get(a, "route")) ?: "", route_name(to)))
			json_array_append(plan, json_object_get(a, "name"));
	}
	json_decref(apps);
	json_t *o = json_pack("{s:I, s:I, s:s, s:b, s:O}", "apps", total, "on_cluster", on_cluster, "to", route_name(to),
			      "dry_run", dry, "moving", plan);
	if (dry || !json_array_size(plan)) {
		json_decref(plan);
		return answer(x, MHD_HTTP_OK, o);
	}
	pthread_mutex_lock(&b->mu);
	if (b->running) {
		pthread_mutex_unlock(&b->mu);
		json_decref(plan);
		json_decref(o);
		return reply_error(x->out, MHD_HTTP_CONFLICT,
				   "a batch migration is running already: watch it with GET /api/v1/migrations");
	}
	if (b->started) {
		/* The previous batch's thread has ended (running is false): collect it. */
		pthread_join(b->tid, NULL);
		b->started = false;
	}
	for (size_t i = 0; b->apps && b->apps[i]; i++)
		free(b->apps[i]);
	free(b->apps);
	json_decref(b->results);
	b->total = json_array_size(plan);
	b->apps = xcalloc(b->total + 1, sizeof(*b->apps));
	for (size_t i = 0; i < b->total; i++)
		b->apps[i] = xstrdup(json_string_value(json_array_get(plan, i)));
	b->results = json_array();
	b->done = b->failed = 0;
	b->to = to;
	b->rate = (int)rate;
	b->stop = false;
	b->start_ms = now_ms();
	b->running = true;
	b->current[0] = '\0';
	if (pthread_create(&b->tid, NULL, batch_main, x->a)) {
		b->running = false;
		pthread_mutex_unlock(&b->mu);
		json_decref(plan);
		json_decref(o);
		return reply_error(x->out, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start the batch");
	}
	b->started = true;
	pthread_mutex_unlock(&b->mu);
	json_decref(plan);
	log_info("gate.batch_started", "to=%s apps=%zu rate=%lld", route_name(to), b->total, (long long)rate);
	return answer(x, MHD_HTTP_ACCEPTED, o);
}

/* ---- the canary: the share of new apps put on the cluster route ---- */

#define CANARY_KEY "canary_percent"

/* The share set at run time (shared by every gate on the database), else the config's. */
static int canary_now(struct call *x, bool *set)
{
	char *v = NULL;
	long long n;
	int pct = x->a->canary_percent;
	*set = false;
	if (!db_setting_get(x->db, CANARY_KEY, &v) && v && parse_int(v, 0, 100, &n)) {
		pct = (int)n;
		*set = true;
	}
	free(v);
	return pct;
}

static int canary_answer(struct call *x)
{
	bool set;
	int pct = canary_now(x, &set);
	return answer(x, MHD_HTTP_OK, json_pack("{s:i, s:s}", "percent", pct, "source", set ? "api" : "config"));
}

static int canary_get(struct call *x)
{
	return canary_answer(x);
}

/* PUT /api/v1/canary {"percent": N}: from now on, for every gate sharing the database. */
static int canary_put(struct call *x)
{
	static const char *const fields[] = { "percent", NULL };
	json_t *p;
	char v[8];
	int ret;

	if (check_fields(x, fields))
		return x->out->status;
	p = json_object_get(x->body, "percent");
	if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 100)
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST,
				   "field \"percent\" must be a whole number from 0 to 100: the share of new apps put on the cluster route");
	snprintf(v, sizeof(v), "%d", (int)json_integer_value(p));
	ret = db_setting_set(x->db, CANARY_KEY, v);
	if (ret)
		return reply_grove_error(x->out, ret);
	log_info("gate.canary_set", "percent=%s", v);
	return canary_answer(x);
}

/* GET /api/v1/status: what `grove status` shows of the gate. */
static int status_get(struct call *x)
{
	json_t *o = json_object();
	int ret = db_query(x->db,
			   "SELECT COUNT(*) AS apps,"
			   " COALESCE(SUM(CASE WHEN route = 'legacy' THEN 1 ELSE 0 END), 0) AS legacy,"
			   " COALESCE(SUM(CASE WHEN route = 'cluster' THEN 1 ELSE 0 END), 0) AS cluster,"
			   " COALESCE(SUM(locked), 0) AS locked FROM apps",
			   NULL, 0, counts_row, o);
	if (!ret)
		ret = db_query(x->db,
			       "SELECT COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0) AS deployments_running,"
			       " COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS deployments_queued,"
			       " (SELECT COUNT(*) FROM users) AS users FROM deployments",
			       NULL, 0, counts_row, o);
	if (ret) {
		json_decref(o);
		return reply_grove_error(x->out, ret);
	}
	bool set;
	json_object_set_new(o, "canary_percent", json_integer(canary_now(x, &set)));
	json_object_set_new(o, "draining", json_boolean(atomic_load(&x->a->draining)));
	return answer(x, MHD_HTTP_OK, o);
}

static int last_push_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_object_set_new(ctx, "last_push",
			    values[0] ? json_pack("{s:s?, s:s?, s:s?, s:s?}", "at", values[0], "by", values[1], "ref",
						  values[2], "commit", values[3])
				      : json_null());
	return 0;
}

static int last_deployment_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_object_set_new(ctx, "last_deployment", deployment_object(values));
	return 0;
}

static _Thread_local uint64_t du_bytes;

static int du_add(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_F)
		du_bytes += (uint64_t)sb->st_size;
	return 0;
}

/* Size and default branch where the repository lives; replicas on a cluster. */
static void repository_info(struct call *x, const char *name, const char *route, json_t *o)
{
	const struct migrate_env *env = x->a->migrate;
	json_t *repo = json_object();
	char rel[128], path[4096], head[256] = "";

	snprintf(rel, sizeof(rel), "%s.git", name);
	if (!env) {
		json_decref(repo);
		return;
	}
	if (!strcmp(route, "legacy")) {
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s", env->legacy_dir, rel);
		if (access(path, F_OK)) {
			json_object_set_new(repo, "exists", json_false());
		} else {
			du_bytes = 0;
			nftw(path, du_add, 16, FTW_PHYS);
			json_object_set_new(repo, "exists", json_true());
			json_object_set_new(repo, "size_bytes", json_integer((json_int_t)du_bytes));
			snprintf(path, sizeof(path), "%s/%s/HEAD", env->legacy_dir, rel);
			if ((f = fopen(path, "r"))) {
				if (fgets(head, sizeof(head), f) && !strncmp(head, "ref: ", 5)) {
					head[strcspn(head, "\n")] = '\0';
					json_object_set_new(repo, "default_branch", json_string(head + 5));
				}
				fclose(f);
			}
		}
	} else if (env->cluster_address) {
		Grove__V1__Repository r = GROVE__V1__REPOSITORY__INIT;
		Grove__V1__RepositorySizeRequest sreq = GROVE__V1__REPOSITORY_SIZE_REQUEST__INIT;
		Grove__V1__FindDefaultBranchRequest breq = GROVE__V1__FIND_DEFAULT_BRANCH_REQUEST__INIT;
		Grove__V1__GetRepositoryRequest greq = GROVE__V1__GET_REPOSITORY_REQUEST__INIT;
		Grove__V1__RepositorySizeResponse *sresp = NULL;
		Grove__V1__FindDefaultBranchResponse *bresp = NULL;
		Grove__V1__GetRepositoryResponse *gresp = NULL;
		struct rpc_client *cl = NULL;
		r.storage_name = (char *)env->cluster_storage;
		r.relative_path = rel;
		sreq.repository = breq.repository = &r;
		greq.relative_path = rel;
		int rc = rpc_client_new(&cl, env->cluster_address, env->secret);
		if (!rc)
			rc = rpc_unary(cl, "/grove.v1.RepositoryService/RepositorySize", &sreq.base,
				       &grove__v1__repository_size_response__descriptor, (ProtobufCMessage **)&sresp, 10000);
		if (rc) {
			json_object_set_new(repo, "exists", json_false());
			if (rc != GROVE_ENOTFOUND)
				json_object_set_new(repo, "error", json_string(error_msg()));
		} else {
			json_object_set_new(repo, "exists", json_true());
			json_object_set_new(repo, "size_bytes", json_integer((json_int_t)sresp->bytes));
			if (!rpc_unary(cl, "/grove.v1.RepositoryService/FindDefaultBranch", &breq.base,
				       &grove__v1__find_default_branch_response__descriptor, (ProtobufCMessage **)&bresp, 10000))
				json_object_set_new(repo, "default_branch", json_string(bresp->name ? bresp->name : ""));
			/* A cluster router says where the copies are; a lone store does not know the method. */
			if (!rpc_unary(cl, "/grove.v1.ClusterService/GetRepository", &greq.base,
				       &grove__v1__get_repository_response__descriptor, (ProtobufCMessage **)&gresp, 10000) &&
			    gresp->repository) {
				json_t *reps = json_array();
				for (size_t i = 0; i < gresp->repository->n_replicas; i++) {
					Grove__V1__ReplicaInfo *ri = gresp->repository->replicas[i];
					json_array_append_new(reps, json_pack("{s:s, s:I, s:b, s:b, s:b}", "store", ri->node,
									      "generation", (json_int_t)ri->generation,
									      "healthy", ri->healthy, "up_to_date", ri->up_to_date,
									      "primary", ri->primary));
				}
				json_object_set_new(repo, "generation", json_integer((json_int_t)gresp->repository->generation));
				json_object_set_new(repo, "replicas", reps);
			}
		}
		FREE_MSG(sresp);
		FREE_MSG(bresp);
		FREE_MSG(gresp);
		rpc_client_free(cl);
	}
	json_object_set_new(o, "repository", repo);
}

static int app_get(struct call *x)
{
	json_t *j = NULL;
	const char *params[] = { x->arg[0] };
	int ret = app_json(x->db, x->arg[0], &j);
	if (ret)
		return reply_grove_error(x->out, ret);
	json_object_set_new(j, "last_push", json_null());
	json_object_set_new(j, "last_deployment", json_null());
	ret = db_query(x->db, "SELECT last_push_at, last_push_by, last_push_ref, last_push_commit FROM apps WHERE name = ?",
		       params, 1, last_push_row, j);
	if (!ret)
		ret = db_query(x->db,
			       "SELECT id, app, ref, old_oid, new_oid, pusher, status, started_at, finished_at FROM deployments"
			       " WHERE app = ? ORDER BY id DESC LIMIT 1",
			       params, 1, last_deployment_row, j);
	if (ret) {
		json_decref(j);
		return reply_grove_error(x->out, ret);
	}
	repository_info(x, x->arg[0], json_string_value(json_object_get(j, "route")) ?: "", j);
	return answer(x, MHD_HTTP_OK, j);
}

static int app_create(struct call *x)
{
	static const char *const fields[] = { "name", "deploy_branch", "route", "max_push_mb", NULL };
	const char *name, *branch, *route_s;
	enum route route;
	bool has_max = false;
	int64_t max_mb = 0;
	int ret;

	if (check_fields(x, fields) || get_str(x, "name", true, &name) || get_str(x, "deploy_branch", false, &branch) ||
	    get_str(x, "route", false, &route_s) || get_int(x, "max_push_mb", 0, GATE_MAX_PUSH_MB, &has_max, &max_mb))
		return x->out->status;
	branch = short_branch(branch ? branch : x->a->default_branch);
	if (check_branch(x->out, branch))
		return x->out->status;
	if (route_s) {
		if (route_parse(route_s, &route))
			return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"route\" must be \"legacy\" or \"cluster\"");
	} else {
		/* The canary: a fixed share of new apps, chosen by a stable hash of the
		 * name, so raising the share only ever adds apps to the cluster side. */
		bool set;
		route = (int)(fnv1a32(name) % 100) < canary_now(x, &set) ? ROUTE_CLUSTER : ROUTE_LEGACY;
	}
	ret = db_begin(x->db, "creating an app");
	if (!ret)
		ret = db_app_create(x->db, name, branch, route);
	if (!ret && has_max)
		ret = db_app_set_max_push(x->db, name, max_mb);
	if (txn_end(x, ret, "creating an app"))
		return x->out->status;
	x->arg[0] = name;
	if (app_get(x) == MHD_HTTP_OK)
		x->out->status = MHD_HTTP_CREATED;
	return x->out->status;
}

/*
 * Apps found in the legacy directory (an existing NFS folder of a platform,
 * `<app>.git` each) but unknown to the gate become apps on the legacy route,
 * with HEAD's branch as their deploy branch. Names that are not app names
 * are listed, not imported.
 */
static int apps_import_legacy(struct call *x)
{
	json_t *imported = json_array(), *skipped = json_array();
	DIR *d = x->a->migrate ? opendir(x->a->migrate->legacy_dir) : NULL;
	struct dirent *e;

	if (!d) {
		json_decref(imported);
		json_decref(skipped);
		return reply_error(x->out, MHD_HTTP_CONFLICT, "the legacy directory cannot be read: %s",
				   x->a->migrate ? strerror(errno) : "no legacy directory configured");
	}
	while ((e = readdir(d))) {
		char name[GATE_APP_NAME_MAX + 1], head[1100] = "", path[4200];
		struct app existing = { 0 };
		if (e->d_name[0] == '.' || !ends_with(e->d_name, ".git"))
			continue;
		if (gate_app_from_path(e->d_name, name)) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "name", e->d_name, "reason", error_msg()));
			continue;
		}
		if (!db_app_get(x->db, name, &existing)) {
			app_release(&existing);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/HEAD", x->a->migrate->legacy_dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "name", e->d_name, "reason", "not a bare repository (no HEAD)"));
			continue;
		}
		if (!fgets(head, sizeof(head), f))
			head[0] = '\0';
		fclose(f);
		head[strcspn(head, "\n")] = '\0';
		const char *branch = x->a->default_branch;
		const char *ref;
		if (skip_prefix(head, "ref: refs/heads/", &ref) && *ref)
			branch = ref;
		int ret = db_app_create(x->db, name, branch, ROUTE_LEGACY);
		if (ret)
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "name", e->d_name, "reason", error_msg()));
		else
			json_array_append_new(imported, json_pack("{s:s, s:s}", "name", name, "deploy_branch", branch));
	}
	closedir(d);
	log_info("admin.import_legacy", "imported=%zu skipped=%zu", json_array_size(imported), json_array_size(skipped));
	return answer(x, MHD_HTTP_OK, json_pack("{s:o, s:o}", "imported", imported, "skipped", skipped));
}

static int app_patch(struct call *x)
{
	static const char *const fields[] = { "deploy_branch", "route", "locked", "max_push_mb", NULL };
	const char *branch, *route_s;
	enum route route = ROUTE_LEGACY;
	bool has_locked = false, locked = false, has_max = false;
	int64_t max_mb = 0;
	int ret;

	if (check_fields(x, fields) || get_str(x, "deploy_branch", false, &branch) ||
	    get_str(x, "route", false, &route_s) || get_bool(x, "locked", &has_locked, &locked) ||
	    get_int(x, "max_push_mb", 0, GATE_MAX_PUSH_MB, &has_max, &max_mb))
		return x->out->status;
	if (branch) {
		branch = short_branch(branch);
		if (check_branch(x->out, branch))
			return x->out->status;
	}
	if (route_s && route_parse(route_s, &route))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"route\" must be \"legacy\" or \"cluster\"");
	/* All the changes or none. */
	ret = db_begin(x->db, "changing an app");
	if (!ret && branch)
		ret = db_app_set_deploy_branch(x->db, x->arg[0], branch);
	if (!ret && route_s)
		ret = db_app_set_route(x->db, x->arg[0], route);
	if (!ret && has_locked)
		ret = db_app_set_locked(x->db, x->arg[0], locked);
	if (!ret && has_max)
		ret = db_app_set_max_push(x->db, x->arg[0], max_mb);
	if (txn_end(x, ret, "changing an app"))
		return x->out->status;
	if (route_s || has_locked)
		log_info("admin.app_changed", "app=%s route=%s locked=%s", x->arg[0], route_s ? route_s : "",
			 has_locked ? (locked ? "true" : "false") : "");
	return app_get(x);
}

static int app_migrate_post(struct call *x)
{
	static const char *const fields[] = { "to", NULL };
	const char *to_s;
	enum route to;
	struct strbuf report;
	int ret;

	if (check_fields(x, fields) || get_str(x, "to", true, &to_s))
		return x->out->status;
	if (route_parse(to_s, &to))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"to\" must be \"legacy\" or \"cluster\"");
	if (!x->a->migrate)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot migrate apps");
	strbuf_init(&report, 64 * 1024);
	ret = app_migrate(x->a->migrate, x->db, x->arg[0], to, &report);
	if (ret) {
		strbuf_release(&report);
		return reply_grove_error(x->out, ret);
	}
	app_get(x);
	if (x->out->json)
		json_object_set_new(x->out->json, "report", json_string(report.buf));
	strbuf_release(&report);
	return x->out->status;
}

static int app_gc_post(struct call *x)
{
	struct strbuf report;
	int ret;
	if (!x->a->migrate)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot reach the repositories");
	strbuf_init(&report, 16 * 1024);
	ret = app_gc(x->a->migrate, x->db, x->arg[0], &report);
	if (!ret)
		answer(x, MHD_HTTP_OK, json_pack("{s:s, s:s}", "name", x->arg[0], "report", report.buf));
	strbuf_release(&report);
	return ret ? reply_grove_error(x->out, ret) : x->out->status;
}

static int app_delete(struct call *x)
{
	int ret = db_app_delete(x->db, x->arg[0]);
	return ret ? reply_grove_error(x->out, ret) : answer(x, MHD_HTTP_NO_CONTENT, NULL);
}

static int collaborator_put(struct call *x)
{
	static const char *const fields[] = { "access", NULL };
	const char *access_s;
	enum access access;
	int ret;

	if (check_fields(x, fields) || get_str(x, "access", true, &access_s))
		return x->out->status;
	if (!strcmp(access_s, "read"))
		access = ACCESS_READ;
	else if (!strcmp(access_s, "write"))
		access = ACCESS_WRITE;
	else
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST,
				   "field \"access\" must be \"read\" or \"write\"; to take access away, DELETE the collaborator");
	ret = db_access_grant(x->db, x->arg[0], x->arg[1], access);
	if (ret)
		return reply_grove_error(x->out, ret);
	return answer(x, MHD_HTTP_OK,
		      json_pack("{s:s,s:s,s:s}", "app", x->arg[0], "user", x->arg[1], "access", access_name(access)));
}

static int collaborator_delete(struct call *x)
{
	int ret = db_access_revoke(x->db, x->arg[0], x->arg[1]);
	return ret ? reply_grove_error(x->out, ret) : answer(x, MHD_HTTP_NO_CONTENT, NULL);
}

/* Parses a decimal integer in [min, max] with nothing around it. */
static bool parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int app_deployments(struct call *x)
{
	const char *limit_s = MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, "limit");
	long long limit = DEPLOY_LIST_DEFAULT;
	char limit_buf[24];
	struct app app;
	json_t *list;
	int ret;

	if (limit_s && !parse_int(limit_s, 1, DEPLOY_LIST_MAX, &limit))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "limit must be a number from 1 to %d", DEPLOY_LIST_MAX);
	ret = db_app_get(x->db, x->arg[0], &app);
	if (ret)
		return reply_grove_error(x->out, ret);
	app_release(&app);
	snprintf(limit_buf, sizeof(limit_buf), "%lld", limit);
	const char *params[] = { x->arg[0], limit_buf };
	list = json_array();
	ret = db_query(x->db,
		       "SELECT id, app, ref, old_oid, new_oid, pusher, status, started_at, finished_at FROM deployments"
		       " WHERE app = ? ORDER BY id DESC LIMIT CAST(? AS INTEGER)",
		       params, 2, deployment_row, list);
	if (ret) {
		json_decref(list);
		return reply_grove_error(x->out, ret);
	}
	return answer(x, MHD_HTTP_OK, list);
}

static int deployment_get(struct call *x)
{
	struct deployment d;
	long long id;
	char idbuf[24];
	json_t *o;
	int ret;

	if (!parse_int(x->arg[0], 1, INT64_MAX, &id))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "deployment id \"%.32s\" is not a positive number", x->arg[0]);
	ret = db_deploy_get(x->db, id, &d);
	if (ret)
		return reply_grove_error(x->out, ret);
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)d.id);
	const char *v[] = { idbuf, d.app, d.ref, d.old_oid, d.new_oid, d.pusher, d.status, d.started_at, d.finished_at };
	o = deployment_object(v);
	json_object_set_new(o, "log", jstr(d.log));
	deployment_release(&d);
	return answer(x, MHD_HTTP_OK, o);
}

/* ---- routing ---- */

/*
 * Patterns are matched part by part after "/api/v1/": "*" takes one part,
 * "**" the rest of the path (a key fingerprint's base64 holds '/').
 */
static const struct route_def {
	const char *method;
	const char *pattern;
	handler_fn *fn;
	bool body;            /* takes a JSON object */
} routes[] = {
	{ "GET", "users", users_list, false },
	{ "POST", "users", user_create, true },
	{ "GET", "users/*", user_get, false },
	{ "DELETE", "users/*", user_delete, false },
	{ "POST", "users/*/keys", key_add, true },
	{ "DELETE", "keys/**", key_remove, false },
	{ "GET", "status", status_get, false },
	{ "GET", "canary", canary_get, false },
	{ "PUT", "canary", canary_put, true },
	{ "GET", "migrations", migrations_get, false },
	{ "POST", "migrations", migrations_post, true },
	{ "GET", "apps", apps_list, false },
	{ "POST", "apps", app_create, true },
	{ "GET", "apps/*", app_get, false },
	{ "PATCH", "apps/*", app_patch, true },
	{ "DELETE", "apps/*", app_delete, false },
	{ "POST", "apps/*/migrate", app_migrate_post, true },
	{ "POST", "apps/*/gc", app_gc_post, false },
	{ "POST", "import-legacy", apps_import_legacy, false },
	{ "PUT", "apps/*/collaborators/*", collaborator_put, true },
	{ "DELETE", "apps/*/collaborators/*", collaborator_delete, false },
	{ "GET", "apps/*/deployments", app_deployments, false },
	{ "GET", "deployments/*", deployment_get, false },
};

/*
 * Matches path against pattern, copying the '*' parts into buf (NUL-separated)
 * and pointing arg at them.
 */
static bool route_match(const char *pattern, const char *path, char *buf, size_t bufsz, const char *arg[2])
{
	const char *p = pattern, *s = path;
	size_t used = 0;
	int n = 0;

	arg[0] = arg[1] = NULL;
	while (*p) {
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen;
		if (plen == 2 && !strncmp(p, "**", 2))
			se = NULL;
		slen = se ? (size_t)(se - s) : strlen(s);
		if (!slen)
			return false;
		if (p[0] == '*') {
			if (n >= 2 || used + slen + 1 > bufsz)
				return false;
			memcpy(buf + used, s, slen);
			buf[used + slen] = '\0';
			arg[n++] = buf + used;
			used += slen + 1;
		} else if (plen != slen || strncmp(p, s, plen)) {
			return false;
		}
		p += plen;
		s += slen;
		if (!*p)
			return !*s;
		p++;
		if (*s != '/')
			return false;
		s++;
	}
	return !*s;
}

/* ---- the HTTP side ---- */

static bool token_ok(const struct admin *a, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	unsigned char got[SHA256_DIGEST_LENGTH];
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	/* Hashing first makes the comparison independent of the lengths too. */
	SHA256((const unsigned char *)h, strlen(h), got);
	return CRYPTO_memcmp(got, a->token_hash, sizeof(got)) == 0;
}

/* Sends out's JSON (or no body) with status; frees nothing of out. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, struct request *r, const struct reply *out, bool close)
{
	struct MHD_Response *resp;
	struct strbuf sb = STRBUF_INIT;
	enum MHD_Result res;
	size_t len = 0;
	char *buf;

	if (out->text) {
		strbuf_addstr(&sb, out->text);
	} else if (out->json) {
		char *s = json_dumps(out->json, JSON_COMPACT);
		if (s) {
			strbuf_addstr(&sb, s);
			strbuf_addch(&sb, '\n');
			free(s);
		} else {
			strbuf_addstr(&sb, "{\"error\":\"cannot encode the answer as JSON\"}\n");
		}
	}
	buf = strbuf_detach(&sb, &len);
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	if (out->text)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	else if (out->json)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Correlation-Id", r->corr);
	if (out->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"grove\"");
	if (close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	res = MHD_queue_response(conn, (unsigned)out->status, resp);
	MHD_destroy_response(resp);
	if (res == MHD_YES)
		r->status = out->status;
	return res;
}

/* Whether the request announces a body that has not been read. */
static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return (cl && strcmp(cl, "0")) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* Answers right away, before the body, closing the connection if one is coming. */
static enum MHD_Result answer_early(struct MHD_Connection *conn, struct request *r, struct reply *out)
{
	enum MHD_Result res = send_reply(conn, r, out, has_body(conn));
	r->answered = true;
	json_decref(out->json);
	out->json = NULL;
	return res;
}

/* The first call, with the headers: what can be refused before any body. */
static enum MHD_Result on_headers(struct admin *a, struct MHD_Connection *conn, struct request *r, const char *url)
{
	struct reply out = { 0, NULL };
	const char *cl;
	long long n;

	/* Probes and Prometheus scrapes need no token: they reveal no app. An
	 * archive URL carries its own signature instead (checked with the rest). */
	if (!strcmp(url, "/health") || !strcmp(url, "/ready") || !strcmp(url, "/metrics") ||
	    !strncmp(url, ARCHIVE_PREFIX, strlen(ARCHIVE_PREFIX)))
		return MHD_YES;
	if (!token_ok(a, conn)) {
		const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (!h)
			reply_error(&out, MHD_HTTP_UNAUTHORIZED,
				    "no Authorization header: send \"Authorization: Bearer <token>\" with the gate's admin token");
		else if (strncasecmp(h, "Bearer ", 7))
			reply_error(&out, MHD_HTTP_UNAUTHORIZED,
				    "the Authorization header is not a bearer token: send \"Authorization: Bearer <token>\" with the gate's admin token");
		else
			reply_error(&out, MHD_HTTP_UNAUTHORIZED,
				    "wrong admin token: send \"Authorization: Bearer <token>\" with the token the gate was configured with");
		return answer_early(conn, r, &out);
	}
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && (!parse_int(cl, 0, INT64_MAX, &n) || n > ADMIN_BODY_MAX)) {
		reply_error(&out, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than the limit of %d bytes: send less",
			    ADMIN_BODY_MAX);
		return answer_early(conn, r, &out);
	}
	return MHD_YES;
}

/* The last call, with the whole body: find the route and run it. */
static void dispatch(struct admin *a, struct MHD_Connection *conn, struct request *r, const char *url,
		     const char *method, struct reply *out)
{
	const struct route_def *found = NULL;
	struct call x = { .a = a, .conn = conn, .out = out };
	char parts[512], allow[64] = "";
	const char *rest;
	int ret;

	if (!strcmp(url, "/health")) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			goto not_allowed;
		answer(&x, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
		return;
	}
	if (!strcmp(url, "/metrics")) {
		struct strbuf sb;
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			goto not_allowed;
		strbuf_init(&sb, 1 << 20);
		metrics_render(gate_metrics, &sb);
		out->status = MHD_HTTP_OK;
		out->text = strbuf_detach(&sb, NULL);
		return;
	}
	if (!strcmp(url, "/ready")) {
		bool ready = !atomic_load(&a->draining);
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			goto not_allowed;
		/* 503 while draining, so a load balancer needs only the status. */
		answer(&x, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:b}", "ready", ready));
		return;
	}
	if (!skip_prefix(url, "/api/v1/", &rest))
		goto not_found;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		const char *arg[2];
		if (!route_match(routes[i].pattern, rest, parts, sizeof(parts), arg))
			continue;
		if (strcmp(routes[i].method, method)) {
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "",
				 routes[i].method);
			continue;
		}
		found = &routes[i];
		x.arg[0] = arg[0];
		x.arg[1] = arg[1];
		break;
	}
	if (!found && allow[0])
		goto not_allowed;
	if (!found)
		goto not_found;

	if (found->body) {
		ret = adminreq_parse_body(r->body.buf, r->body.len, &x.body);
		if (ret) {
			reply_grove_error(out, ret);
			return;
		}
	}
	ret = db_open(&x.db, a->db_path);
	if (ret) {
		reply_grove_error(out, ret);
		goto out;
	}
	error_clear();
	found->fn(&x);
out:
	db_close(x.db);
	json_decref(x.body);
	return;
not_allowed:
	reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %.200s: use %s", method, url,
		    allow[0] ? allow : "GET");
	return;
not_found:
	reply_error(out, MHD_HTTP_NOT_FOUND, "no such endpoint: %s %.200s (the API lives under /api/v1/)", method, url);
}

/* ---- archive downloads: /archive/APP/COMMIT.tar.gz?expires=…&signature=… ---- */

static ssize_t archive_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = archive_read(cls, buf, max);
	(void)pos;
	if (n > 0)
		return n;
	/* An error mid-stream cuts the connection: the client sees a broken
	 * download, never a short archive that looks whole. */
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void archive_done(void *cls)
{
	archive_free(cls);
}

/* Streams the archive, or fills out with why not. */
static enum MHD_Result archive_serve(struct admin *a, struct MHD_Connection *conn, struct request *r, const char *url,
				     const char *method, struct reply *out)
{
	const char *rest = url + strlen(ARCHIVE_PREFIX), *slash = strchr(rest, '/');
	char app_part[128], commit[41], name[GATE_APP_NAME_MAX + 1], disposition[160];
	struct archive_src *src = NULL;
	struct MHD_Response *resp;
	struct db *db = NULL;
	struct app app = { 0 };
	enum MHD_Result res = MHD_YES;
	int ret;

	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on an archive URL: use GET", method);
		goto out;
	}
	if (!slash || (size_t)(slash - rest) >= sizeof(app_part) || strlen(slash + 1) != 40 + 7 ||
	    strcmp(slash + 41, ".tar.gz") || strspn(slash + 1, "0123456789abcdef") != 40) {
		reply_error(out, MHD_HTTP_NOT_FOUND,
			    "no such archive: the path is %sAPP/COMMIT.tar.gz with a full commit id", ARCHIVE_PREFIX);
		goto out;
	}
	memcpy(app_part, rest, (size_t)(slash - rest));
	app_part[slash - rest] = '\0';
	memcpy(commit, slash + 1, 40);
	commit[40] = '\0';
	if (gate_app_from_path(app_part, name) || strcmp(name, app_part)) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "no such archive: \"%.64s\" is not an app name", app_part);
		goto out;
	}
	if (!a->migrate || !a->secret) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "this gate serves no archives");
		goto out;
	}
	ret = archive_url_check(a->secret, name, commit,
				MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "expires"),
				MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "signature"), time(NULL));
	if (ret) {
		reply_error(out, MHD_HTTP_FORBIDDEN, "%s", error_msg());
		goto out;
	}
	if ((ret = db_open(&db, a->db_path)) || (ret = db_app_get(db, name, &app)) ||
	    (ret = archive_open(&src, a->migrate, app.route, name, commit))) {
		reply_grove_error(out, ret);
		goto out;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, archive_reader, src, archive_done);
	if (!resp) {
		archive_free(src);
		res = MHD_NO;
		goto out;
	}
	snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s-%.12s.tar.gz\"", name, commit);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/gzip");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=0");
	MHD_add_response_header(resp, "X-Correlation-Id", r->corr);
	res = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	if (res == MHD_YES)
		r->status = MHD_HTTP_OK;
	log_info("archive.serving", "app=%s commit=%s route=%s", name, commit, route_name(app.route));
out:
	app_release(&app);
	db_close(db);
	return res;
}

static void set_correlation_id(struct MHD_Connection *conn, struct request *r)
{
	const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Correlation-Id");
	bool ok = id && *id && strlen(id) < sizeof(r->corr);
	for (const char *p = id; ok && *p; p++)
		ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-';
	if (ok)
		strlcpy_(r->corr, id, sizeof(r->corr));
	else
		log_new_correlation_id(r->corr);
	log_set_correlation_id(r->corr);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct admin *a = cls;
	struct request *r = *con_cls;
	struct reply out = { 0, NULL };
	enum MHD_Result res;

	if (!r) {
		r = xcalloc(1, sizeof(*r));
		strbuf_init(&r->body, ADMIN_BODY_MAX);
		r->start_ms = now_ms();
		strlcpy_(r->method, method, sizeof(r->method));
		strlcpy_(r->path, url, sizeof(r->path));
		*con_cls = r;
		set_correlation_id(conn, r);
		return on_headers(a, conn, r, url);
	}
	log_set_correlation_id(r->corr);
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->answered)
			return MHD_YES;
		if (r->too_big) {
			/* libmicrohttpd cannot answer mid-body: drop a bounded amount, then hang up. */
			r->discarded += n;
			return r->discarded > ADMIN_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		if (strbuf_add(&r->body, upload_data, n)) {
			/* A body without a length, or longer than it said. */
			r->too_big = true;
			r->discarded = r->body.len + n;
			strbuf_release(&r->body);
		}
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->too_big) {
		reply_error(&out, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than the limit of %d bytes: send less",
			    ADMIN_BODY_MAX);
	} else if (!strncmp(url, ARCHIVE_PREFIX, strlen(ARCHIVE_PREFIX))) {
		res = archive_serve(a, conn, r, url, method, &out);
		if (!out.status)
			return res;   /* streaming */
	} else {
		dispatch(a, conn, r, url, method, &out);
	}
	if (!out.status)
		reply_error(&out, MHD_HTTP_INTERNAL_SERVER_ERROR, "the request was not answered (a bug)");
	res = send_reply(conn, r, &out, r->too_big);
	json_decref(out.json);
	free(out.text);
	return res;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;
	if (!r)
		return;
	log_set_correlation_id(r->corr);
	log_info("admin.request", "method=%s path=%s status=%d ms=%lld", r->method, r->path, r->status,
		 (long long)(now_ms() - r->start_ms));
	log_set_correlation_id(NULL);
	strbuf_release(&r->body);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_warn("admin.http", "message=%s", msg);
}

/* ---- listening ---- */

/* Splits "host:port" or "[v6]:port"; an empty host means every address. */
static int split_listen(const char *listen, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon, *h = listen;
	size_t hlen;
	long long p;

	if (!listen || !*listen)
		return error_set(GROVE_EINVAL, "admin listen address is empty: give host:port, like 127.0.0.1:8080");
	colon = strrchr(listen, ':');
	if (!colon)
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\" has no port: give host:port, like 127.0.0.1:8080",
				 listen);
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		h = listen + 1;
		hlen -= 2;
	} else if (memchr(listen, ':', hlen)) {
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": write an IPv6 address in brackets, like [::1]:8080",
				 listen);
	}
	if (hlen >= hostsz)
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": host name too long", listen);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (!parse_int(colon + 1, 0, 65535, &p))
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": the port must be a number from 0 to 65535", listen);
	snprintf(port, portsz, "%lld", p);
	return 0;
}

/* A listening socket for listen; *out gets the descriptor. */
static int open_listener(const char *listen_addr, int *out)
{
	char host[256], port[8], where[300];
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = -1, ret, gai, one = 1, err = 0;

	*out = -1;
	ret = split_listen(listen_addr, host, sizeof(host), port, sizeof(port));
	if (ret)
		return ret;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai)
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": cannot resolve \"%s\": %s", listen_addr, host,
				 gai_strerror(gai));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 64))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return error_set(GROVE_EIO, "cannot listen on %.200s for the admin API: %s", listen_addr, strerror(err));
	/* Say where, with the port the kernel chose for ":0". */
	if (!getsockname(fd, (struct sockaddr *)&ss, &sslen)) {
		char ip[INET6_ADDRSTRLEN] = "?";
		int p = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
			p = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
			p = ntohs(sin6->sin6_port);
		}
		snprintf(where, sizeof(where), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, p);
		log_info("admin.listening", "address=%s", where);
	}
	*out = fd;
	return 0;
}

int admin_start(struct admin **out, const struct admin_opts *opts)
{
	struct admin *a = NULL;
	struct db *db = NULL;
	struct reply chk = { 0, NULL };
	int ret = 0, fd = -1;

	*out = NULL;
	if (!opts->token || !*opts->token)
		return error_set(GROVE_EINVAL, "the admin API needs a token: configure one, the API refuses to run open");
	if (opts->canary_percent < 0 || opts->canary_percent > 100)
		return error_set(GROVE_EINVAL, "canary percent %d is not from 0 to 100", opts->canary_percent);
	if (!opts->db_path || !*opts->db_path)
		return error_set(GROVE_EINVAL, "the admin API needs the gate's database path");
	if (check_branch(&chk, short_branch(opts->default_deploy_branch ? opts->default_deploy_branch : "main"))) {
		ret = error_set(GROVE_EINVAL, "default deploy branch: %s",
				json_string_value(json_object_get(chk.json, "error")));
		json_decref(chk.json);
		return ret;
	}

	a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->batch.mu, NULL);
	SHA256((const unsigned char *)opts->token, strlen(opts->token), a->token_hash);
	a->db_path = xstrdup(opts->db_path);
	a->default_branch = xstrdup(short_branch(opts->default_deploy_branch ? opts->default_deploy_branch : "main"));
	a->canary_percent = opts->canary_percent;
	a->migrate = opts->migrate;
	a->secret = opts->migrate && opts->migrate->secret ? xstrdup(opts->migrate->secret) : NULL;
	atomic_init(&a->draining, false);

	/* Open (and migrate) once here, so a bad path fails the start, not every request. */
	ret = db_open(&db, a->db_path);
	db_close(db);
	if (ret)
		goto out;
	ret = open_listener(opts->listen, &fd);
	if (ret)
		goto out;
	a->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
					     MHD_USE_ERROR_LOG,
				     0, NULL, NULL, on_request, a,
				     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				     MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_TIMEOUT_S,
				     MHD_OPTION_END);
	if (!a->daemon) {
		ret = error_set(GROVE_EINTERNAL, "cannot start the admin HTTP server on %.200s", opts->listen);
		goto out;
	}
	fd = -1;   /* the daemon closes it */
	*out = a;
	a = NULL;
out:
	if (fd >= 0)
		close(fd);
	admin_stop(a);
	return ret;
}

void admin_set_draining(struct admin *a)
{
	if (a)
		atomic_store(&a->draining, true);
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	/* A running batch stops after the app it is moving. */
	pthread_mutex_lock(&a->batch.mu);
	a->batch.stop = true;
	pthread_mutex_unlock(&a->batch.mu);
	if (a->batch.started)
		pthread_join(a->batch.tid, NULL);
	for (size_t i = 0; a->batch.apps && a->batch.apps[i]; i++)
		free(a->batch.apps[i]);
	free(a->batch.apps);
	json_decref(a->batch.results);
	pthread_mutex_destroy(&a->batch.mu);
	free(a->db_path);
	free(a->default_branch);
	free(a->secret);
	free(a);
}
