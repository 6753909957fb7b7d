/*
 * The admin API's moves between the routes: one app (POST
 * /api/v1/apps/NAME/migrate), a share of all apps in a batch that runs on
 * a thread of its own (/api/v1/migrations), and the canary, the share of new
 * apps put on the cluster route (/api/v1/canary).
 */
#include "gate/admin/admin_int.h"
#include "gate/move.h"
#include "gate/progress.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/strbuf.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

/* The moves the journal holds as running, with their progress (progress.h) when it is known. */
static json_t *moves_running(const struct repo_env *env)
{
	json_t *running = json_array();
	DIR *d = env && env->journal_dir ? opendir(env->journal_dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[4096], text[128] = "", when[TIME_ISO_LEN] = "";
		struct stat sb;
		json_t *o, *p;
		FILE *f;
		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", env->journal_dir, e->d_name);
		if (stat(path, &sb) || !(f = fopen(path, "r")))
			continue;
		size_t n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		time_iso8601(sb.st_mtime, when);
		o = json_pack("{s:s, s:s, s:s}", "app", e->d_name, "to", strstr(text, "to=cluster") ? "cluster" : "legacy",
			      "since", when);
		if ((p = progress_get(env->progress_dir, e->d_name, "move"))) {
			json_object_set(o, "phase", json_object_get(p, "phase"));
			json_object_set(o, "done_bytes", json_object_get(p, "done_bytes"));
			json_object_set(o, "total_bytes", json_object_get(p, "total_bytes"));
			json_decref(p);
		}
		json_array_append_new(running, o);
	}
	if (d)
		closedir(d);
	return running;
}

/*
 * GET /api/v1/migrations: where the move to the cluster stands — apps per
 * route, the share on the cluster, and the migrations running now (from the
 * journal, with when each began and how far its copy is), for a dashboard
 * or a script watching a `grove migrate` run.
 */
int migrations_get(struct call *x)
{
	struct app_counts counts;
	json_t *o;
	int ret = db_app_counts(x->db, &counts);
	if (ret)
		return reply_grove_error(x->out, ret);
	o = json_pack("{s:I, s:I, s:I, s:f}", "apps", (json_int_t)counts.apps, "cluster", (json_int_t)counts.cluster,
		      "legacy", (json_int_t)counts.legacy, "percent_on_cluster",
		      counts.apps ? 100.0 * (double)counts.cluster / (double)counts.apps : 0.0);
	json_object_set_new(o, "in_progress", moves_running(x->a->repos));
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
	return call_answer(x, MHD_HTTP_OK, o);
}

/*
 * GET /api/v1/operations: the long operations on apps running now — moves,
 * backups, restores, whether the gate or a `grove` command runs them —
 * each with its phase and bytes done out of the total (0: not known).
 */
int operations_get(struct call *x)
{
	const struct repo_env *env = x->a->repos;
	json_t *list = json_array();
	progress_list(env ? env->progress_dir : NULL, list);
	return call_answer(x, MHD_HTTP_OK, json_pack("{s:o}", "operations", list));
}

static void *batch_main(void *arg)
{
	struct admin *a = arg;
	struct batch *b = &a->batch;
	struct db *db = NULL;
	int ret = db_attach(&db, a->db_path);

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
		int r = ret ? ret : app_move(a->repos, db, b->apps[i], to, &report);
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

/* A row of DB_APP_COLUMNS: its name and route. */
static int name_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_array_append_new(ctx, json_pack("{s:s?, s:s?}", "name", values[0], "route", values[2]));
	return 0;
}

/*
 * POST /api/v1/migrations {"percent": N, "to": "cluster"|"legacy", "batch": K,
 * "rate": R, "dry_run": bool}: moves apps, in name order, until N % of all
 * apps are on the cluster (or, to legacy, at most N % are left there).
 */
int migrations_post(struct call *x)
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

	if (call_check_fields(x, fields) || call_get_str(x, "to", false, &to_s) || call_get_bool(x, "dry_run", &has_dry, &dry))
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
	if (!x->a->repos)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot migrate apps");
	apps = json_array();
	if ((ret = db_apps_each(x->db, NULL, name_row, apps))) {
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
		return call_answer(x, MHD_HTTP_OK, o);
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
	return call_answer(x, MHD_HTTP_ACCEPTED, o);
}

int app_migrate_post(struct call *x)
{
	static const char *const fields[] = { "to", NULL };
	const char *to_s;
	enum route to;
	struct strbuf report;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "to", true, &to_s))
		return x->out->status;
	if (route_parse(to_s, &to))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"to\" must be \"legacy\" or \"cluster\"");
	if (!x->a->repos)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot migrate apps");
	strbuf_init(&report, 64 * 1024);
	ret = app_move(x->a->repos, x->db, x->arg[0], to, &report);
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

/* ---- the canary: the share of new apps put on the cluster route ---- */

#define CANARY_KEY "canary_percent"

/* The share set at run time (shared by every gate on the database), else the config's. */
int canary_now(struct call *x, bool *set)
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
	return call_answer(x, MHD_HTTP_OK, json_pack("{s:i, s:s}", "percent", pct, "source", set ? "api" : "config"));
}

int canary_get(struct call *x)
{
	return canary_answer(x);
}

/* PUT /api/v1/canary {"percent": N}: from now on, for every gate sharing the database. */
int canary_put(struct call *x)
{
	static const char *const fields[] = { "percent", NULL };
	json_t *p;
	char v[8];
	int ret;

	if (call_check_fields(x, fields))
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
