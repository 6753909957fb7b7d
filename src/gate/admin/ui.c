/*
 * The operator's dashboard at /ui/ on the admin port: server-rendered HTML
 * with inline SVG, no script, nothing but what the gate serves itself.
 *
 * Its data is the admin API's: every page calls the same handlers the JSON
 * endpoints call (status_get, apps_list, app_describe, migrations_get, …)
 * and renders their JSON, so there is one query for each thing, and its
 * actions (move an app, set the canary share) are the API's handlers too.
 *
 * Who may look: a request with "Authorization: Bearer <admin token>", as
 * the API takes (for scripts), or a browser with the grove_ui cookie of a
 * session opened by the login form (ui_session.h). Anyone else gets the
 * login form and no data; anything but a GET, the login's POST aside, is
 * refused with 401 before its body is read.
 *
 * Actions are two steps: a GET shows what will happen and a form to
 * confirm it; the form POSTs with the session's CSRF token in a hidden
 * field, checked in constant time. A bearer request needs no CSRF token: a
 * browser never adds that header by itself, so no other site can forge it.
 */
#include "gate/admin/admin_int.h"
#include "gate/admin/ui_history.h"
#include "gate/admin/ui_html.h"
#include "gate/admin/ui_session.h"
#include "gate/metrics.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/version.h"

#include <openssl/crypto.h>

#define UI_PREFIX "/ui/"
#define UI_COOKIE "grove_ui"
/* Pages are built whole before sending; a deploy log is at most 1 MiB. */
#define UI_PAGE_MAX (8 * 1024 * 1024)
/* The overview lists this many apps; the rest are counted. */
#define UI_APPS_MAX 200
#define UI_DEPLOYS_SHOWN 20
#define UI_FORM_VALUE_MAX 512

/* One request of the dashboard, from its authentication to its page. */
struct ui_req {
	struct admin *a;
	struct MHD_Connection *conn;
	const struct strbuf *body;       /* a POST's form, url-encoded */
	const char *arg[2];              /* the path's '*' parts */
	bool signed_in;
	bool bearer;                     /* by the admin token, not a session */
	char sid[UI_SECRET_HEX + 1];     /* the session's id, if by a session */
	char csrf[UI_SECRET_HEX + 1];    /* the session's CSRF token */
	struct call x;                   /* for the API's handlers */
	struct reply api;                /* what they answered */
	const char *refresh_to;          /* where the page sends the browser on */
	struct html page;
	struct reply *out;
};

typedef void ui_page_fn(struct ui_req *u);

struct ui_route {
	const char *method;
	const char *pattern;    /* after "/ui/", as routes.c matches them */
	ui_page_fn *fn;
	bool open;              /* served without signing in */
};

static ui_page_fn page_overview, page_app, page_deploy, page_move_confirm, page_move, page_canary_confirm,
	page_canary, page_verify_confirm, page_verify, page_dataloss_confirm, page_dataloss, page_login_form, page_login, page_logout, page_style;

static const struct ui_route ui_routes[] = {
	{ "GET", "", page_overview, false },
	{ "GET", "style.css", page_style, true },
	{ "GET", "login", page_login_form, true },
	{ "POST", "login", page_login, true },
	{ "POST", "logout", page_logout, false },
	{ "GET", "apps/*", page_app, false },
	{ "GET", "apps/*/move", page_move_confirm, false },
	{ "POST", "apps/*/move", page_move, false },
	{ "GET", "apps/*/verify", page_verify_confirm, false },
	{ "POST", "apps/*/verify", page_verify, false },
	{ "GET", "apps/*/accept-dataloss", page_dataloss_confirm, false },
	{ "POST", "apps/*/accept-dataloss", page_dataloss, false },
	{ "GET", "deploys/*", page_deploy, false },
	{ "GET", "canary", page_canary_confirm, false },
	{ "POST", "canary", page_canary, false },
};

bool ui_path(const char *url)
{
	return !strcmp(url, "/ui") || !strncmp(url, UI_PREFIX, strlen(UI_PREFIX));
}

static bool is_read(const char *method)
{
	return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

/* ---- who is asking ---- */

/* Signed in by the bearer token or a live session's cookie. */
static bool ui_authenticate(struct admin *a, struct MHD_Connection *conn, struct ui_req *u)
{
	const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, UI_COOKIE);
	if (admin_bearer_ok(a, conn)) {
		u->bearer = true;
		return true;
	}
	if (!cookie || !ui_session_find(a->ui_sessions, cookie, u->csrf))
		return false;
	strlcpy_(u->sid, cookie, sizeof(u->sid));
	return true;
}

bool ui_refuse_early(struct admin *a, struct MHD_Connection *conn, const char *url, const char *method,
		     struct reply *out)
{
	struct ui_req u = { 0 };
	if (is_read(method) || !strcmp(url, UI_PREFIX "login") || ui_authenticate(a, conn, &u))
		return false;
	out->status = MHD_HTTP_UNAUTHORIZED;
	out->content_type = "text/plain; charset=utf-8";
	out->text = xstrdup("sign in first: the login form is at /ui/login, or send \"Authorization: Bearer <token>\"\n");
	return true;
}

/*
 * The value of name in an url-encoded form, decoded into out; false when
 * absent or longer than out holds (no field of ours is long).
 */
static bool form_value(const struct strbuf *body, const char *name, char *out, size_t outsz)
{
	const char *p = body && body->buf ? body->buf : "";
	size_t nlen = strlen(name);

	while (*p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			if (vlen >= outsz)
				return false;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			for (char *c = out; *c; c++)
				if (*c == '+')
					*c = ' ';
			MHD_http_unescape(out);
			return true;
		}
		p += len + (end ? 1 : 0);
	}
	return false;
}

/* ---- calling the API's handlers ---- */

/*
 * Runs an API handler on arg0 (and a JSON body) and returns its answer's
 * JSON (the caller's), or NULL after writing its error into the page.
 */
static json_t *ui_fetch(struct ui_req *u, handler_fn *fn, const char *arg0, json_t *body)
{
	json_t *j;
	u->x.arg[0] = arg0;
	u->x.body = body;
	error_clear();
	fn(&u->x);
	u->x.body = NULL;
	json_decref(body);
	j = u->api.json;
	u->api.json = NULL;
	if (u->api.status >= 200 && u->api.status < 300)
		return j ? j : json_object();
	html_around(&u->page, "<p class=\"msg\">", json_string_value(json_object_get(j, "error")), "</p>\n");
	json_decref(j);
	return NULL;
}

static const char *jget(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* ---- pieces of pages ---- */

static void page_header(struct ui_req *u, const char *title)
{
	struct html *h = &u->page;
	html_page_start(h, title, u->refresh_to);
	html_raw(h, "<header><a href=\"/ui/\">Grove</a><span>gate ");
	html_text(h, grove_version());
	html_raw(h, "</span>");
	if (u->signed_in && !u->bearer) {
		html_raw(h, "<form method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"%s\">"
			    "<button>Sign out</button></form>",
			 u->csrf);
	}
	html_raw(h, "</header>\n<main>\n<h1>");
	html_text(h, title);
	html_raw(h, "</h1>\n");
}

/* The hidden CSRF field of a form (empty with the bearer token). */
static void csrf_field(struct ui_req *u)
{
	html_raw(&u->page, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", u->csrf);
}

static void status_word(struct html *h, bool good, const char *yes, const char *no)
{
	html_raw(h, "<td class=\"%s\">", good ? "ok" : "bad");
	html_text(h, good ? yes : no);
	html_raw(h, "</td>");
}

/* What the replica's last verification found: same as the primary's or not, when, at which generation. */
static void replica_verified_cell(struct html *h, json_t *v)
{
	if (!json_is_object(v)) {
		html_raw(h, "<td class=\"note\">never</td>");
		return;
	}
	html_raw(h, "<td class=\"%s\">%s at generation %lld, ", json_is_true(json_object_get(v, "matches")) ? "ok" : "bad",
		 json_is_true(json_object_get(v, "matches")) ? "same as the primary" : "DIFFERED from the primary",
		 jint(v, "generation"));
	html_text(h, jget(v, "at"));
	html_raw(h, "</td>");
}

/* A deployment's status, coloured. */
static void deploy_status(struct html *h, const char *status)
{
	const char *cls = !status ? "note" : !strcmp(status, "succeeded") ? "ok" : !strcmp(status, "failed") ? "bad" : "warn";
	html_raw(h, "<span class=\"%s\">", cls);
	html_text(h, status ? status : "none");
	html_raw(h, "</span>");
}

static void deploy_link(struct html *h, json_t *d)
{
	html_raw(h, "<a href=\"/ui/deploys/%lld\">#%lld</a> ", jint(d, "id"), jint(d, "id"));
	deploy_status(h, jget(d, "status"));
	html_raw(h, " ");
	html_text(h, jget(d, "finished_at") ? jget(d, "finished_at") : jget(d, "started_at"));
}

/* ---- the overview ---- */

/* A row's cells up to its detail: the part (kind and name), its address,
 * its state (good, or NULL for bad), its version. */
static void part_cells(struct html *h, const char *kind, const char *name, const char *address, const char *good,
		       const char *bad, const char *version)
{
	html_raw(h, "<tr><td>%s", kind);
	html_around(h, "", name, "</td>");
	html_cell(h, "td", address);
	status_word(h, good != NULL, good, bad);
	html_cell(h, "td", version);
}

static void parts_gate(struct ui_req *u, json_t *st)
{
	struct html *h = &u->page;
	bool draining = json_is_true(json_object_get(st, "draining"));
	char detail[256];
	snprintf(detail, sizeof(detail), "%lld apps, %lld users, deployments: %lld running, %lld queued",
		 jint(st, "apps"), jint(st, "users"), jint(st, "deployments_running"), jint(st, "deployments_queued"));
	part_cells(h, "gate", "", "this admin port", !draining ? "up" : NULL, "draining", grove_version());
	html_cell(h, "td", detail);
	html_raw(h, "</tr>\n");
}

static void parts_cluster(struct ui_req *u, json_t *cl)
{
	struct html *h = &u->page;
	json_t *stores = json_object_get(cl, "stores"), *s;
	bool up = json_is_true(json_object_get(cl, "up"));
	char detail[512];
	size_t i;

	if (up)
		snprintf(detail, sizeof(detail),
			 "%lld repositories, %lld with outdated or missing replicas; queue: %lld ready, %lld running, "
			 "%lld retrying, %lld dead",
			 jint(cl, "repositories"), jint(cl, "dataloss"), jint(cl, "jobs_ready"), jint(cl, "jobs_in_progress"),
			 jint(cl, "jobs_failed"), jint(cl, "jobs_dead"));
	part_cells(h, "cluster router ", jget(cl, "router"), jget(cl, "address"), up ? "up" : NULL, "down", "");
	html_cell(h, "td", up ? detail : jget(cl, "error"));
	html_raw(h, "</tr>\n");
	json_array_foreach(stores, i, s) {
		bool healthy = json_is_true(json_object_get(s, "healthy"));
		char checked[48] = "not checked yet";
		if (jint(s, "last_check_ms") >= 0)
			snprintf(checked, sizeof(checked), "checked %.1f s ago", (double)jint(s, "last_check_ms") / 1000);
		snprintf(detail, sizeof(detail), "%s; %lld replicas, %lld behind; %s; healthy for %lld of %lld routers",
			 json_is_true(json_object_get(s, "writable")) ? "takes writes" : "refuses writes (disk low)",
			 jint(s, "replicas"), jint(s, "behind"), checked, jint(s, "routers_healthy"),
			 jint(s, "routers_total"));
		json_t *q = json_object_get(s, "queue");
		if (q) {
			size_t len = strlen(detail);
			snprintf(detail + len, sizeof(detail) - len, "; its queue: %lld waiting, %lld running, %lld retrying",
				 jint(q, "ready"), jint(q, "in_progress"), jint(q, "failed"));
		}
		if (jint(s, "disk_total") > 0) {
			size_t len = strlen(detail);
			snprintf(detail + len, sizeof(detail) - len, "; disk %.1f of %.1f GiB free",
				 (double)jint(s, "disk_free") / (1 << 30), (double)jint(s, "disk_total") / (1 << 30));
		}
		part_cells(h, "store ", jget(s, "name"), jget(s, "address"), healthy ? "up" : NULL, "down",
			   jget(s, "version") ? jget(s, "version") : "");
		html_around(h, "<td>", detail, "");
		if (jget(s, "last_error") && *jget(s, "last_error")) {
			html_raw(h, "<br><span class=\"bad\">");
			html_text(h, jget(s, "last_error"));
			html_raw(h, "</span>");
		}
		html_raw(h, "</td></tr>\n");
	}
}

static void section_parts(struct ui_req *u, json_t *st)
{
	struct html *h = &u->page;
	json_t *cl = cluster_status(u->a);
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	html_raw(h, "<section><h2>Parts</h2><p class=\"note\">Checked %s, as this page was made.</p>"
		    "<table><tr><th>part</th><th>address</th><th>state</th><th>version</th><th>detail</th></tr>\n",
		 when);
	parts_gate(u, st);
	if (cl)
		parts_cluster(u, cl);
	html_raw(h, "</table></section>\n");
	json_decref(cl);
}

static void app_row(struct ui_req *u, json_t *app)
{
	struct html *h = &u->page;
	json_t *push = json_object_get(app, "last_push"), *dep = json_object_get(app, "last_deployment");
	const char *name = jget(app, "name");

	html_raw(h, "<tr><td><a href=\"/ui/apps/");
	html_url_part(h, name);
	html_raw(h, "\">");
	html_text(h, name);
	html_raw(h, "</a>%s</td>", json_is_true(json_object_get(app, "locked")) ? " <span class=\"warn\">locked</span>" : "");
	html_cell(h, "td", jget(app, "route"));
	html_cell(h, "td", jget(app, "deploy_branch"));
	html_raw(h, "<td>");
	if (json_is_object(push)) {
		html_text(h, jget(push, "at"));
		html_raw(h, " by ");
		html_text(h, jget(push, "by"));
		html_raw(h, " <code>");
		html_text(h, jget(push, "commit") ? jget(push, "commit") : "");
		html_raw(h, "</code>");
	} else {
		html_raw(h, "<span class=\"note\">never</span>");
	}
	html_raw(h, "</td><td>");
	if (json_is_object(dep))
		deploy_link(h, dep);
	else
		html_raw(h, "<span class=\"note\">none</span>");
	html_raw(h, "</td></tr>\n");
}

static void section_apps(struct ui_req *u)
{
	struct html *h = &u->page;
	json_t *list = ui_fetch(u, apps_list, NULL, NULL), *a;
	size_t i;

	html_raw(h, "<section><h2>Apps</h2>\n");
	if (!list)
		goto out;
	html_raw(h, "<table><tr><th>app</th><th>route</th><th>deploy branch</th><th>last push</th>"
		    "<th>last deploy</th></tr>\n");
	json_array_foreach(list, i, a) {
		json_t *full = NULL;
		if (i >= UI_APPS_MAX)
			break;
		/* The rows without their repositories: no call to the cluster per app. */
		if (app_describe(&u->x, jget(a, "name"), false, &full))
			continue;
		app_row(u, full);
		json_decref(full);
	}
	html_raw(h, "</table>\n");
	if (json_array_size(list) > UI_APPS_MAX)
		html_raw(h, "<p class=\"note\">The first %d apps of %zu, by name.</p>\n", UI_APPS_MAX,
			 json_array_size(list));
out:
	html_raw(h, "</section>\n");
	json_decref(list);
}

static void batch_progress(struct html *h, json_t *b)
{
	char detail[160];
	long long total = jint(b, "total"), done = jint(b, "done"), failed = jint(b, "failed");
	snprintf(detail, sizeof(detail), "%lld of %lld to %s, %lld failed%s", done, total, jget(b, "to") ?: "?", failed,
		 json_is_true(json_object_get(b, "running")) ? ", running" : ", finished");
	html_progress(h, "batch migration", (double)(done + failed), (double)total, detail);
	if (jget(b, "current") && *jget(b, "current")) {
		html_raw(h, "<p>Moving now: ");
		html_text(h, jget(b, "current"));
		html_raw(h, "</p>\n");
	}
}

/* One bar per long operation running (a move, a backup, a restore): its phase, bytes done of about how many. */
static void operations_progress(struct ui_req *u)
{
	struct html *h = &u->page;
	json_t *ops = ui_fetch(u, operations_get, NULL, NULL), *e;
	size_t i;

	json_array_foreach(json_object_get(ops, "operations"), i, e) {
		char label[160], detail[200], done[32], total[32], when[TIME_ISO_LEN];
		long long t = jint(e, "total_bytes"), d = jint(e, "done_bytes");
		bytes_human((uint64_t)d, done, sizeof(done));
		bytes_human((uint64_t)t, total, sizeof(total));
		time_iso8601(jint(e, "since"), when);
		snprintf(label, sizeof(label), "%s: %s", jget(e, "app") ?: "?", jget(e, "kind") ?: "?");
		if (t > 0) {
			snprintf(detail, sizeof(detail), "%s, %s of about %s, since %s", jget(e, "phase") ?: "?", done, total,
				 when);
			html_progress(h, label, (double)(d > t ? t : d), (double)t, detail);
		} else {
			snprintf(detail, sizeof(detail), "%s, %s so far, since %s", jget(e, "phase") ?: "?", done, when);
			html_activity(h, label, detail);
		}
	}
	json_decref(ops);
}

static void section_moves(struct ui_req *u)
{
	struct html *h = &u->page;
	json_t *m = ui_fetch(u, migrations_get, NULL, NULL), *c = ui_fetch(u, canary_get, NULL, NULL), *e;
	char detail[128];
	size_t i;

	html_raw(h, "<section><h2>Moves between the routes</h2>\n");
	if (m) {
		snprintf(detail, sizeof(detail), "%lld of %lld apps on the cluster, %lld legacy", jint(m, "cluster"),
			 jint(m, "apps"), jint(m, "legacy"));
		html_progress(h, "on the cluster", (double)jint(m, "cluster"), (double)jint(m, "apps"), detail);
		if (json_is_object(json_object_get(m, "batch")))
			batch_progress(h, json_object_get(m, "batch"));
		json_array_foreach(json_object_get(m, "in_progress"), i, e) {
			if (json_object_get(e, "phase"))
				continue;   /* its bar is below */
			html_raw(h, "<p>In progress: ");
			html_text(h, jget(e, "app"));
			html_raw(h, " to ");
			html_text(h, jget(e, "to"));
			html_raw(h, " since ");
			html_text(h, jget(e, "since"));
			html_raw(h, "</p>\n");
		}
	}
	operations_progress(u);
	if (c) {
		snprintf(detail, sizeof(detail), "%lld %% of new apps go to the cluster (set by the %s)", jint(c, "percent"),
			 jget(c, "source") ?: "config");
		html_progress(h, "canary share", (double)jint(c, "percent"), 100, detail);
		html_raw(h, "<form method=\"get\" action=\"/ui/canary\">New apps to the cluster: "
			    "<input type=\"number\" name=\"percent\" min=\"0\" max=\"100\" value=\"%lld\"> %% "
			    "<button>Change…</button></form>\n",
			 jint(c, "percent"));
	}
	html_raw(h, "</section>\n");
	json_decref(m);
	json_decref(c);
}

/* The push duration histogram's buckets, as /metrics names them. */
static void latency_chart(struct html *h)
{
	static const char *const le[METRICS_BUCKETS] = { "≤50ms", "≤100ms", "≤250ms", "≤500ms", "≤1s", "≤2.5s",
							  "≤5s", "≤10s", "≤30s", "≤60s", "≤120s", "≤300s" };
	struct html_bar bars[METRICS_BUCKETS];
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		bars[i].label = le[i];
		bars[i].value = gate_metrics ? (double)atomic_load(&gate_metrics->push_seconds.buckets[i]) : 0;
	}
	html_bar_chart(h, "Pushes by duration (since the gate started)", bars, METRICS_BUCKETS);
}

static void section_charts(struct ui_req *u)
{
	struct html *h = &u->page;
	struct ui_minute min[UI_HISTORY_MINUTES];
	struct html_bar pushes[UI_HISTORY_MINUTES], errors[UI_HISTORY_MINUTES], mean[UI_HISTORY_MINUTES];
	char labels[UI_HISTORY_MINUTES][16];
	size_t n = u->a->ui_history ? ui_history_minutes(u->a->ui_history, min) : 0;

	for (size_t i = 0; i < n; i++) {
		if (i + 1 == n)
			snprintf(labels[i], sizeof(labels[i]), "now");
		else
			snprintf(labels[i], sizeof(labels[i]), "-%dm", (int)(n - 1 - i) % 1000);
		pushes[i] = (struct html_bar){ labels[i], (double)min[i].pushes };
		errors[i] = (struct html_bar){ labels[i], (double)min[i].errors };
		mean[i] = (struct html_bar){ labels[i], min[i].pushes ? (double)min[i].push_ms / (double)min[i].pushes : 0 };
	}
	html_raw(h, "<section><h2>Activity</h2><p class=\"note\">From the counters of /metrics, sampled each minute "
		    "since the gate started.</p><div class=\"charts\">\n");
	html_bar_chart(h, "Pushes per minute", pushes, n);
	html_bar_chart(h, "Failed or refused sessions per minute", errors, n);
	html_bar_chart(h, "Mean push duration per minute (ms)", mean, n);
	latency_chart(h);
	html_raw(h, "</div></section>\n");
}

static void page_overview(struct ui_req *u)
{
	json_t *st;
	page_header(u, "Overview");
	st = ui_fetch(u, status_get, NULL, NULL);
	if (st)
		section_parts(u, st);
	json_decref(st);
	section_apps(u);
	section_moves(u);
	section_charts(u);
}

/* ---- one app, one deployment ---- */

static void app_repository(struct ui_req *u, json_t *repo)
{
	struct html *h = &u->page;
	json_t *reps = json_object_get(repo, "replicas"), *r;
	size_t i;

	html_raw(h, "<section><h2>Repository</h2>\n");
	if (!json_is_object(repo)) {
		html_raw(h, "<p class=\"note\">This gate does not reach the repositories.</p></section>\n");
		return;
	}
	if (!json_is_true(json_object_get(repo, "exists"))) {
		html_raw(h, "<p>No repository yet (nothing pushed)");
		if (jget(repo, "error")) {
			html_raw(h, ": <span class=\"bad\">");
			html_text(h, jget(repo, "error"));
			html_raw(h, "</span>");
		}
		html_raw(h, ".</p></section>\n");
		return;
	}
	html_raw(h, "<p>%lld bytes on disk, HEAD ", jint(repo, "size_bytes"));
	html_text(h, jget(repo, "default_branch"));
	if (json_object_get(repo, "generation"))
		html_raw(h, ", generation %lld", jint(repo, "generation"));
	html_raw(h, "</p>\n");
	if (!json_is_array(reps)) {
		html_raw(h, "</section>\n");
		return;
	}
	html_raw(h, "<table><tr><th>store</th><th>role</th><th>generation</th><th>up to date</th><th>health</th>"
		    "<th>last verified</th></tr>\n");
	json_array_foreach(reps, i, r) {
		html_raw(h, "<tr>");
		html_cell(h, "td", jget(r, "store"));
		html_cell(h, "td", json_is_true(json_object_get(r, "primary")) ? "primary" : "replica");
		html_raw(h, "<td>%lld</td>", jint(r, "generation"));
		status_word(h, json_is_true(json_object_get(r, "up_to_date")), "yes", "no");
		status_word(h, json_is_true(json_object_get(r, "healthy")), "healthy", "down");
		replica_verified_cell(h, json_object_get(r, "verified"));
		html_raw(h, "</tr>\n");
	}
	html_raw(h, "</table>\n<p><a href=\"/ui/apps/");
	html_url_part(h, u->arg[0]);
	html_raw(h, "/verify\">Verify the replicas again…</a> · <a href=\"/ui/apps/");
	html_url_part(h, u->arg[0]);
	html_raw(h, "/accept-dataloss\">Accept data loss…</a> (when the primary's copy is lost)</p></section>\n");
}

static void app_deployments_list(struct ui_req *u, const char *name)
{
	struct html *h = &u->page;
	json_t *list = ui_fetch(u, app_deployments, name, NULL), *d;
	size_t i;

	html_raw(h, "<section><h2>Deployments</h2>\n");
	if (list && !json_array_size(list))
		html_raw(h, "<p class=\"note\">None yet.</p>\n");
	json_array_foreach(list, i, d) {
		if (i >= UI_DEPLOYS_SHOWN)
			break;
		html_raw(h, "<p>");
		deploy_link(h, d);
		html_raw(h, " <code>");
		html_text(h, jget(d, "new_oid"));
		html_raw(h, "</code> by ");
		html_text(h, jget(d, "pusher"));
		html_raw(h, "</p>\n");
	}
	html_raw(h, "</section>\n");
	json_decref(list);
}

static void app_facts(struct ui_req *u, json_t *app)
{
	struct html *h = &u->page;
	json_t *c;
	size_t i;
	const char *route = jget(app, "route") ?: "";
	const char *other = strcmp(route, "cluster") ? "cluster" : "legacy";

	html_raw(h, "<section><table>");
	html_raw(h, "<tr><th>route</th>");
	html_cell(h, "td", route);
	html_raw(h, "</tr><tr><th>deploy branch</th>");
	html_cell(h, "td", jget(app, "deploy_branch"));
	html_raw(h, "</tr><tr><th>locked</th><td>%s</td></tr><tr><th>collaborators</th><td>",
		 json_is_true(json_object_get(app, "locked")) ? "yes" : "no");
	json_array_foreach(json_object_get(app, "collaborators"), i, c) {
		html_text(h, jget(c, "user"));
		html_raw(h, " (");
		html_text(h, jget(c, "access"));
		html_raw(h, ") ");
	}
	html_raw(h, "</td></tr></table>\n<p><a href=\"/ui/apps/");
	html_url_part(h, jget(app, "name"));
	html_raw(h, "/move?to=%s\">Move to the %s route…</a></p></section>\n", other, other);
}

static void page_app(struct ui_req *u)
{
	json_t *app = NULL;
	int ret;

	page_header(u, u->arg[0]);
	ret = app_describe(&u->x, u->arg[0], true, &app);
	if (ret) {
		u->out->status = ret == GROVE_ENOTFOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR;
		html_around(&u->page, "<p class=\"msg\">", error_msg(), "</p>\n");
		return;
	}
	app_facts(u, app);
	app_repository(u, json_object_get(app, "repository"));
	app_deployments_list(u, u->arg[0]);
	json_decref(app);
}

static void page_deploy(struct ui_req *u)
{
	struct html *h = &u->page;
	json_t *d;
	char title[64];

	snprintf(title, sizeof(title), "Deployment %.20s", u->arg[0]);
	page_header(u, title);
	d = ui_fetch(u, deployment_get, u->arg[0], NULL);
	if (!d) {
		u->out->status = MHD_HTTP_NOT_FOUND;
		return;
	}
	html_raw(h, "<section><p>App <a href=\"/ui/apps/");
	html_url_part(h, jget(d, "app"));
	html_around(h, "\">", jget(d, "app"), "</a>, ");
	html_around(h, "", jget(d, "ref"), " <code>");
	html_around(h, "", jget(d, "new_oid"), "</code> pushed by ");
	html_around(h, "", jget(d, "pusher"), ": ");
	deploy_status(h, jget(d, "status"));
	html_around(h, ", started ", jget(d, "started_at"), ", finished ");
	html_around(h, "", jget(d, "finished_at") ?: "-", "</p>\n<pre>");
	html_around(h, "", jget(d, "log"), "</pre></section>\n");
	json_decref(d);
}

/* ---- actions: a confirmation, then the POST ---- */

static bool route_arg(const char *s)
{
	return s && (!strcmp(s, "cluster") || !strcmp(s, "legacy"));
}

/* The form of an action on the app: it POSTs to /ui/apps/APP/ACTION, with the session's CSRF token. */
static void app_form_open(struct ui_req *u, const char *action)
{
	html_raw(&u->page, "<form method=\"post\" action=\"/ui/apps/");
	html_url_part(&u->page, u->arg[0]);
	html_raw(&u->page, "/%s\">", action);
	csrf_field(u);
}

/* Its button, and Cancel back to the app's page. */
static void app_form_close(struct ui_req *u, const char *button)
{
	html_raw(&u->page, "<button>%s</button> <a href=\"/ui/apps/", button);
	html_url_part(&u->page, u->arg[0]);
	html_raw(&u->page, "\">Cancel</a></form></section>\n");
}

static void page_move_confirm(struct ui_req *u)
{
	struct html *h = &u->page;
	const char *to = MHD_lookup_connection_value(u->conn, MHD_GET_ARGUMENT_KIND, "to");
	json_t *app = NULL;

	page_header(u, "Move an app");
	if (!route_arg(to)) {
		u->out->status = MHD_HTTP_BAD_REQUEST;
		html_raw(h, "<p class=\"msg\">Say where to: ?to=cluster or ?to=legacy.</p>\n");
		return;
	}
	if (app_describe(&u->x, u->arg[0], false, &app)) {
		u->out->status = MHD_HTTP_NOT_FOUND;
		html_around(h, "<p class=\"msg\">", error_msg(), "</p>\n");
		return;
	}
	html_raw(h, "<section><p>Move <b>");
	html_text(h, u->arg[0]);
	html_raw(h, "</b> from the ");
	html_text(h, jget(app, "route"));
	html_raw(h, " route to the %s route? Pushes to it wait while its repository is copied and checked; "
		    "a failure leaves it where it is.</p>",
		 to);
	app_form_open(u, "move");
	html_raw(h, "<input type=\"hidden\" name=\"to\" value=\"%s\">", to);
	app_form_close(u, "Move it");
	json_decref(app);
}

static void page_move(struct ui_req *u)
{
	struct html *h = &u->page;
	char to[16];
	json_t *res;

	page_header(u, "Move an app");
	if (!form_value(u->body, "to", to, sizeof(to)) || !route_arg(to)) {
		u->out->status = MHD_HTTP_BAD_REQUEST;
		html_raw(h, "<p class=\"msg\">The form did not say where to.</p>\n");
		return;
	}
	log_info("ui.action", "action=move app=%s to=%s", u->arg[0], to);
	res = ui_fetch(u, app_migrate_post, u->arg[0], json_pack("{s:s}", "to", to));
	if (!res) {
		u->out->status = u->api.status;
		return;
	}
	html_raw(h, "<section><p class=\"ok\">Moved to the %s route.</p><pre>", to);
	html_text(h, jget(res, "report"));
	html_raw(h, "</pre><p><a href=\"/ui/apps/");
	html_url_part(h, u->arg[0]);
	html_raw(h, "\">Back to the app</a></p></section>\n");
	json_decref(res);
}

static void page_verify_confirm(struct ui_req *u)
{
	struct html *h = &u->page;

	page_header(u, "Verify the replicas");
	html_raw(h, "<section><p>Compare the checksums of every replica of <b>");
	html_text(h, u->arg[0]);
	html_raw(h, "</b> now? Each store reads the whole repository; a replica that differs is repaired from the "
		    "primary.</p>");
	app_form_open(u, "verify");
	app_form_close(u, "Verify");
}

static void page_verify(struct ui_req *u)
{
	struct html *h = &u->page;
	json_t *res, *r;
	size_t i;

	page_header(u, "Verify the replicas");
	log_info("ui.action", "action=verify app=%s", u->arg[0]);
	res = ui_fetch(u, app_verify_post, u->arg[0], NULL);
	if (!res) {
		u->out->status = u->api.status;
		return;
	}
	if (json_is_true(json_object_get(res, "busy")))
		html_raw(h, "<section><p class=\"msg\">Pushes kept running during the comparison: nothing was "
			 "concluded. Verify again when the app is quieter.</p>");
	else if (jint(res, "mismatches"))
		html_raw(h, "<section><p class=\"msg\">%lld replicas differ from the primary: their repair is queued.</p>",
			 jint(res, "mismatches"));
	else
		html_raw(h, "<section><p class=\"ok\">Every replica has the same checksum.</p>");
	html_raw(h, "<table><tr><th>store</th><th>checksum</th><th>same as the primary</th></tr>\n");
	json_array_foreach(json_object_get(res, "replicas"), i, r) {
		html_raw(h, "<tr>");
		html_cell(h, "td", jget(r, "store"));
		html_raw(h, "<td><code>");
		html_text(h, jget(r, "error") && *jget(r, "error") ? jget(r, "error") : jget(r, "checksum"));
		html_raw(h, "</code></td>");
		status_word(h, json_is_true(json_object_get(r, "matches")), "yes", "no");
		html_raw(h, "</tr>\n");
	}
	html_raw(h, "</table><p><a href=\"/ui/apps/");
	html_url_part(h, u->arg[0]);
	html_raw(h, "\">Back to the app</a></p></section>\n");
	json_decref(res);
}

/* ---- accept data loss ---- */

static void dataloss_choices(struct ui_req *u, json_t *reps)
{
	struct html *h = &u->page;
	json_t *r;
	size_t i;

	html_raw(h, "<table><tr><th></th><th>store</th><th>role</th><th>generation</th><th>up to date</th>"
		    "<th>health</th></tr>\n");
	json_array_foreach(reps, i, r) {
		bool healthy = json_is_true(json_object_get(r, "healthy"));
		html_raw(h, "<tr><td><input type=\"radio\" name=\"store\" value=\"");
		html_text(h, jget(r, "store"));
		html_raw(h, "\"%s></td>", healthy ? "" : " disabled");
		html_cell(h, "td", jget(r, "store"));
		html_cell(h, "td", json_is_true(json_object_get(r, "primary")) ? "primary" : "replica");
		html_raw(h, "<td>%lld</td>", jint(r, "generation"));
		status_word(h, json_is_true(json_object_get(r, "up_to_date")), "yes", "no");
		status_word(h, healthy, "healthy", "down");
		html_raw(h, "</tr>\n");
	}
	html_raw(h, "</table>\n");
}

static void page_dataloss_confirm(struct ui_req *u)
{
	struct html *h = &u->page;
	json_t *app = NULL, *reps;

	page_header(u, "Accept data loss");
	if (app_describe(&u->x, u->arg[0], true, &app)) {
		u->out->status = MHD_HTTP_NOT_FOUND;
		html_around(h, "<p class=\"msg\">", error_msg(), "</p>\n");
		return;
	}
	reps = json_object_get(json_object_get(app, "repository"), "replicas");
	if (!json_array_size(reps)) {
		u->out->status = MHD_HTTP_CONFLICT;
		html_raw(h, "<p class=\"msg\">This app has no replicas to choose from (it is on the legacy route, or "
			    "nothing was pushed yet).</p>\n");
		json_decref(app);
		return;
	}
	html_raw(h, "<section><p>Make one store's copy of <b>");
	html_text(h, u->arg[0]);
	html_raw(h, "</b> the latest? The others are repaired from it, whatever they hold: pushes that reached only "
		    "them are <b>lost</b>. For when the primary's copy is gone and a replica is the best there is; "
		    "choose the one with the highest generation.</p>");
	app_form_open(u, "accept-dataloss");
	dataloss_choices(u, reps);
	app_form_close(u, "Keep this copy");
	json_decref(app);
}

static void page_dataloss(struct ui_req *u)
{
	struct html *h = &u->page;
	char store[128];
	json_t *res;

	page_header(u, "Accept data loss");
	if (!form_value(u->body, "store", store, sizeof(store)) || !*store) {
		u->out->status = MHD_HTTP_BAD_REQUEST;
		html_raw(h, "<p class=\"msg\">The form did not say which store's copy to keep: choose one.</p>\n");
		return;
	}
	log_info("ui.action", "action=accept-dataloss app=%s store=%s", u->arg[0], store);
	res = ui_fetch(u, app_accept_dataloss_post, u->arg[0], json_pack("{s:s}", "authoritative", store));
	if (!res) {
		u->out->status = u->api.status;
		return;
	}
	html_raw(h, "<section><p class=\"ok\">The copy on ");
	html_text(h, store);
	html_raw(h, " is the latest now (generation %lld); the other replicas are being repaired from it.</p>"
		    "<p><a href=\"/ui/apps/", jint(res, "generation"));
	html_url_part(h, u->arg[0]);
	html_raw(h, "\">Back to the app</a></p></section>\n");
	json_decref(res);
}

static bool percent_arg(const char *s, long long *out)
{
	return parse_int(s, 0, 100, out);
}

static void page_canary_confirm(struct ui_req *u)
{
	struct html *h = &u->page;
	long long pct;

	page_header(u, "Change the canary share");
	if (!percent_arg(MHD_lookup_connection_value(u->conn, MHD_GET_ARGUMENT_KIND, "percent"), &pct)) {
		u->out->status = MHD_HTTP_BAD_REQUEST;
		html_raw(h, "<p class=\"msg\">The share is a whole number from 0 to 100.</p>\n");
		return;
	}
	html_raw(h, "<section><p>From now on, %lld %% of new apps go to the cluster route, on every gate sharing "
		    "this database. Existing apps stay where they are.</p><form method=\"post\" action=\"/ui/canary\">",
		 pct);
	csrf_field(u);
	html_raw(h, "<input type=\"hidden\" name=\"percent\" value=\"%lld\"><button>Set it</button> "
		    "<a href=\"/ui/\">Cancel</a></form></section>\n",
		 pct);
}

static void page_canary(struct ui_req *u)
{
	char v[8];
	long long pct;
	json_t *res;

	page_header(u, "Change the canary share");
	if (!form_value(u->body, "percent", v, sizeof(v)) || !percent_arg(v, &pct)) {
		u->out->status = MHD_HTTP_BAD_REQUEST;
		html_raw(&u->page, "<p class=\"msg\">The share is a whole number from 0 to 100.</p>\n");
		return;
	}
	log_info("ui.action", "action=canary percent=%lld", pct);
	res = ui_fetch(u, canary_put, NULL, json_pack("{s:I}", "percent", (json_int_t)pct));
	if (!res) {
		u->out->status = u->api.status;
		return;
	}
	html_raw(&u->page, "<section><p class=\"ok\">New apps: %lld %% to the cluster.</p>"
			   "<p><a href=\"/ui/\">Back to the overview</a></p></section>\n",
		 jint(res, "percent"));
	json_decref(res);
}

/* ---- signing in and out ---- */

static void login_form(struct ui_req *u, const char *problem)
{
	struct html *h = &u->page;
	page_header(u, "Sign in");
	if (problem) {
		html_around(h, "<p class=\"msg\">", problem, "</p>\n");
	}
	html_raw(h, "<section><form method=\"post\" action=\"/ui/login\"><p>The gate's admin token "
		    "(the file admin-token in its directory):</p><p><input type=\"password\" name=\"token\" "
		    "autocomplete=\"current-password\" size=\"50\" autofocus> <button>Sign in</button></p></form>"
		    "<p class=\"note\">Scripts may send \"Authorization: Bearer &lt;token&gt;\" instead.</p></section>\n");
}

static void page_login_form(struct ui_req *u)
{
	login_form(u, NULL);
}

/*
 * POST /ui/login: the token from the form opens a session. The form is
 * taken from any origin (a page elsewhere may post it: the end-to-end test
 * drives a browser so, from a file): that allows "login CSRF", signing a
 * browser into a session of the poster's, which is harmless here — the
 * poster needs the admin token itself, and then has all the session gives.
 * Every other POST needs the session's CSRF token.
 */
static void page_login(struct ui_req *u)
{
	char token[UI_FORM_VALUE_MAX], sid[UI_SECRET_HEX + 1], csrf[UI_SECRET_HEX + 1];
	bool ok = form_value(u->body, "token", token, sizeof(token)) && admin_token_matches(u->a, token);

	OPENSSL_cleanse(token, sizeof(token));
	if (!ok) {
		log_warn("ui.login_failed", "reason=%s", "wrong or missing token");
		u->out->status = MHD_HTTP_UNAUTHORIZED;
		login_form(u, "That is not the gate's admin token.");
		return;
	}
	if (ui_session_open(u->a->ui_sessions, sid, csrf)) {
		u->out->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		login_form(u, error_msg());
		return;
	}
	log_info("ui.login", "sessions=%s", "opened");
	/* HttpOnly: no script reads it; SameSite=Strict: no other site's page
	 * sends it; Path: the API never sees it. Not Secure: the admin port
	 * speaks plain HTTP (put TLS in front of it to reach it from afar),
	 * and a Secure cookie would never come back over it. */
	u->out->set_cookie = xasprintf(UI_COOKIE "=%s; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age=%lld", sid,
				       UI_SESSION_LIFETIME_MS / 1000);
	OPENSSL_cleanse(sid, sizeof(sid));
	/* A page that moves on, not a redirect: a browser sends a SameSite=Strict
	 * cookie on none of a redirect chain another site began, so a login
	 * posted from elsewhere would land on the form again; the page's own
	 * move to /ui/ starts from this site. */
	u->signed_in = true;
	memcpy(u->csrf, csrf, sizeof(u->csrf));
	u->refresh_to = UI_PREFIX;
	page_header(u, "Signed in");
	html_raw(&u->page, "<p><a href=\"/ui/\">To the dashboard</a></p>\n");
}

static void page_logout(struct ui_req *u)
{
	if (u->sid[0])
		ui_session_close(u->a->ui_sessions, u->sid);
	u->out->set_cookie = xstrdup(UI_COOKIE "=; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age=0");
	u->out->status = MHD_HTTP_SEE_OTHER;
	u->out->location = UI_PREFIX "login";
	u->signed_in = false;
	page_header(u, "Signed out");
}

static void page_style(struct ui_req *u)
{
	html_raw(&u->page, "%s", ui_stylesheet);
	u->out->content_type = "text/css; charset=utf-8";
}

/* ---- serving ---- */

static const struct ui_route *ui_route_find(const char *method, const char *path, char *buf, size_t bufsz,
					    const char *arg[2], bool *other_method)
{
	*other_method = false;
	for (size_t i = 0; i < ARRAY_SIZE(ui_routes); i++) {
		if (!route_match(ui_routes[i].pattern, path, buf, bufsz, arg))
			continue;
		if (!strcmp(ui_routes[i].method, is_read(method) ? "GET" : method))
			return &ui_routes[i];
		*other_method = true;
	}
	return NULL;
}

/* Whether a POST carries its session's CSRF token (a bearer needs none). */
static bool ui_csrf_checked(struct ui_req *u)
{
	char got[UI_SECRET_HEX + 1];
	if (u->bearer)
		return true;
	return form_value(u->body, "csrf", got, sizeof(got)) && ui_csrf_ok(u->csrf, got);
}

/* Runs the page's function with the database open, when it needs it. */
static void ui_run(struct ui_req *u, const struct ui_route *route)
{
	int ret;
	if (route->open) {
		route->fn(u);
		return;
	}
	ret = db_attach(&u->x.db, u->a->db_path);
	if (ret) {
		u->out->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		page_header(u, "Unavailable");
		html_around(&u->page, "<p class=\"msg\">", error_msg(), "</p>\n");
		return;
	}
	route->fn(u);
	db_close(u->x.db);
	u->x.db = NULL;
}

static void ui_refuse(struct ui_req *u, int status, const char *title, const char *why)
{
	u->out->status = status;
	page_header(u, title);
	html_around(&u->page, "<p class=\"msg\">", why, "</p>\n");
}

void ui_serve(struct admin *a, struct MHD_Connection *conn, const struct strbuf *body, const char *url,
	      const char *method, struct reply *out)
{
	struct ui_req u = { .a = a, .conn = conn, .body = body, .out = out };
	const struct ui_route *route;
	char parts[512];
	bool other_method;

	u.x = (struct call){ .a = a, .conn = conn, .out = &u.api };
	html_init(&u.page, UI_PAGE_MAX);
	out->status = MHD_HTTP_OK;
	out->content_type = "text/html; charset=utf-8";
	u.signed_in = ui_authenticate(a, conn, &u);
	route = ui_route_find(method, !strcmp(url, "/ui") ? "" : url + strlen(UI_PREFIX), parts, sizeof(parts), u.arg,
			      &other_method);
	if (!route && other_method)
		ui_refuse(&u, MHD_HTTP_METHOD_NOT_ALLOWED, "Not allowed", "This page does not take that method.");
	else if (!route)
		ui_refuse(&u, MHD_HTTP_NOT_FOUND, "Not found", "No such page of the dashboard.");
	else if (!route->open && !u.signed_in && is_read(method)) {
		/* A stranger sees the form and nothing else. */
		login_form(&u, NULL);
		out->status = MHD_HTTP_UNAUTHORIZED;
	} else if (!route->open && !u.signed_in)
		ui_refuse(&u, MHD_HTTP_UNAUTHORIZED, "Sign in first", "Sign in first.");
	else if (!strcmp(method, "POST") && !route->open && !ui_csrf_checked(&u))
		ui_refuse(&u, MHD_HTTP_FORBIDDEN, "Refused",
			  "The form's CSRF token is missing or not this session's: reload the page and try again.");
	else
		ui_run(&u, route);
	if (out->content_type && !strncmp(out->content_type, "text/html", 9))
		html_page_end(&u.page);
	json_decref(u.api.json);
	if (u.page.overflow) {
		out->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		out->content_type = "text/plain; charset=utf-8";
		out->text = xstrdup("the page grew past its limit: look at the JSON API instead\n");
		html_release(&u.page);
		return;
	}
	out->text = strbuf_detach(&u.page.sb, NULL);
}
