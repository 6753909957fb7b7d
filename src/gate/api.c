/*
 * The gate's api process: the grove.v1.HookService that a push's hooks call
 * (push policy in pre-receive, deployments in post-receive) and the admin
 * HTTP API. It is the only gate process with gRPC threads.
 *
 * Deployments: one at a time per app. A push whose deploy finds another
 * running waits for it, and is told so; the deploy command's output reaches
 * the pusher line by line as "remote:" lines, with a keep-alive line when it
 * is quiet, and every deployment is recorded with its full log.
 *
 * A deployment is either the configured command (its exit status decides)
 * or a POST of the deployment as JSON to the configured webhook (its HTTP
 * status decides; the response body is streamed back like a command's
 * output). Both get a signed, short-lived archive URL of the commit.
 */
#include "gate/gate.h"
#include "gate/admin.h"
#include "gate/archive.h"
#include "gate/db.h"
#include "gate/metrics.h"
#include "gate/housekeeping.h"
#include "gate/move.h"
#include "lib/adminreq.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "lib/strvec.h"

#include <pthread.h>
#include <time.h>
#include "grove/v1/hook.pb-c.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#define HOOK_IN_MAX (16 << 20)
#define ZERO_OID "0000000000000000000000000000000000000000"

static const struct gate_config *api_cfg;

/* ---- one deployment at a time per app ---- */

struct app_slot {
	char name[GATE_APP_NAME_MAX + 1];
	bool busy;
	struct app_slot *next;
};

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_cv = PTHREAD_COND_INITIALIZER;
static struct app_slot *slots;

static struct app_slot *slot_for(const char *app)
{
	for (struct app_slot *s = slots; s; s = s->next)
		if (!strcmp(s->name, app))
			return s;
	struct app_slot *s = xcalloc(1, sizeof(*s));
	strlcpy_(s->name, app, sizeof(s->name));
	s->next = slots;
	slots = s;
	return s;
}

/* ---- helpers ---- */

struct hook_call {
	struct rpc_call *call;
	Grove__V1__HookRequest *first;
	struct strbuf in;
};

static int say(struct rpc_call *call, bool err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(struct rpc_call *call, bool err, const char *fmt, ...)
{
	Grove__V1__HookResponse resp = GROVE__V1__HOOK_RESPONSE__INIT;
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ProtobufCBinaryData *f = err ? &resp.stderr : &resp.stdout;
	f->data = (uint8_t *)buf;
	f->len = (size_t)MIN(n, (int)sizeof(buf) - 1);
	return rpc_call_send(call, &resp.base);
}

static int send_exit(struct rpc_call *call, int code)
{
	Grove__V1__HookResponse resp = GROVE__V1__HOOK_RESPONSE__INIT;
	Grove__V1__ExitStatus st = GROVE__V1__EXIT_STATUS__INIT;
	st.value = code;
	resp.exit_status = &st;
	return rpc_call_send(call, &resp.base);
}

static int read_request(struct hook_call *h)
{
	Grove__V1__HookRequest *more = NULL;
	int ret, r;
	strbuf_init(&h->in, HOOK_IN_MAX);
	ret = rpc_call_recv_one(h->call, &grove__v1__hook_request__descriptor, (ProtobufCMessage **)&h->first);
	if (ret)
		return ret;
	if (!h->first->payload || !h->first->payload->app || !*h->first->payload->app)
		return error_set(GROVE_EINVAL, "the hook request names no app");
	ret = strbuf_add(&h->in, h->first->stdin.data, h->first->stdin.len);
	while (!ret && (r = rpc_call_recv(h->call, &grove__v1__hook_request__descriptor, (ProtobufCMessage **)&more)) > 0) {
		ret = strbuf_add(&h->in, more->stdin.data, more->stdin.len);
		FREE_MSG(more);
		more = NULL;
	}
	if (!ret && r < 0)
		ret = r;
	if (h->first->payload->correlation_id)
		log_set_correlation_id(h->first->payload->correlation_id);
	return ret;
}

/* Calls fn for each "<old> <new> <ref>" line; stops at the first non-zero. */
static int each_update(struct strbuf *in, int (*fn)(void *, const char *, const char *, const char *), void *ctx)
{
	char *line = in->buf;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char old[41], new[41], ref[1024];
		if (sscanf(line, "%40s %40s %1023s", old, new, ref) == 3) {
			int r = fn(ctx, old, new, ref);
			if (nl)
				*nl = '\n';
			if (r)
				return r;
		} else if (nl) {
			*nl = '\n';
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* ---- pre-receive: the push policy ---- */

struct policy {
	struct rpc_call *call;
	struct app *app;
	int refused;
};

static int check_update(void *ctx, const char *old, const char *new, const char *ref)
{
	struct policy *p = ctx;
	const char *branch;
	if (skip_prefix(ref, "refs/heads/", &branch)) {
		bool is_deploy = !strcmp(branch, p->app->deploy_branch);
		const char *why = strcmp(new, ZERO_OID) ? adminreq_branch_problem(branch) : NULL;
		if (why) {
			/* git refuses most of these itself, but only after this hook,
			 * which would otherwise have said "Pushed to ../../config".
			 * Control characters are not echoed to the user's terminal. */
			char shown[256];
			strlcpy_(shown, branch, sizeof(shown));
			for (char *q = shown; *q; q++)
				if ((unsigned char)*q < 0x20 || *q == 0x7f)
					*q = '?';
			say(p->call, true, "ERROR: \"%s\" is not a valid branch name (%s): nothing was pushed.\n", shown,
			    why);
			p->refused = 1;
		} else if (is_deploy && !strcmp(new, ZERO_OID)) {
			say(p->call, true, "ERROR: %s is the deploy branch of %s: it cannot be deleted.\n", branch,
			    p->app->name);
			p->refused = 1;
		} else if (!is_deploy && strcmp(new, ZERO_OID)) {
			if (api_cfg->other_branches) {
				say(p->call, false, "Pushed to %s: only %s deploys.\n", branch, p->app->deploy_branch);
			} else {
				say(p->call, true, "ERROR: %s only accepts pushes to %s (not %s).\n", p->app->name,
				    p->app->deploy_branch, branch);
				p->refused = 1;
			}
		}
	}
	return 0;
}

static void pre_receive(struct rpc_call *call, void *data)
{
	struct hook_call h = { .call = call };
	struct app app = { 0 };
	struct db *db = NULL;
	struct policy p = { call, &app, 0 };
	int ret = read_request(&h);
	if (!ret)
		ret = db_open(&db, api_cfg->db_path);
	if (!ret && db_app_get(db, h.first->payload->app, &app)) {
		say(call, true, "ERROR: app %s no longer exists.\n", h.first->payload->app);
		p.refused = 1;
	} else if (!ret) {
		each_update(&h.in, check_update, &p);
	}
	if (!ret)
		ret = send_exit(call, p.refused);
	log_info("gate.pre_receive", "app=%s user=%s refused=%b", h.first && h.first->payload ? h.first->payload->app : "",
		 h.first && h.first->payload ? h.first->payload->user : "", p.refused);
	rpc_call_done(call, ret);
	app_release(&app);
	db_close(db);
	FREE_MSG(h.first);
	strbuf_release(&h.in);
}

/* ---- post-receive: deployments ---- */

struct deploy_target {
	struct app *app;
	char old[41], new[41], ref[1024];
	bool found;
};

static int find_deploy(void *ctx, const char *old, const char *new, const char *ref)
{
	struct deploy_target *t = ctx;
	const char *branch;
	if (skip_prefix(ref, "refs/heads/", &branch) && !strcmp(branch, t->app->deploy_branch) &&
	    strcmp(new, ZERO_OID)) {
		strlcpy_(t->old, old, sizeof(t->old));
		strlcpy_(t->new, new, sizeof(t->new));
		strlcpy_(t->ref, ref, sizeof(t->ref));
		t->found = true;
		return 1;
	}
	return 0;
}

struct deploy_run {
	struct rpc_call *call;
	struct db *db;
	int64_t id;
	struct strbuf line;       /* a partial line, until its newline */
	bool client_gone;
	struct strbuf archive_url;
	char failure[128];        /* why it failed, for the last line: "exit status 3" */
	int64_t start, quiet_since;
};

/* Sends whole lines to the pusher and the log; keeps a partial line. */
static int deploy_output(void *ctx, const char *data, size_t len)
{
	struct deploy_run *d = ctx;
	db_deploy_append_log(d->db, d->id, data, len);
	if (strbuf_add(&d->line, data, len)) {
		/* a line longer than the buffer: send what we have */
		strbuf_reset(&d->line);
	}
	char *nl;
	while ((nl = memchr(d->line.buf, '\n', d->line.len))) {
		size_t n = (size_t)(nl - d->line.buf) + 1;
		if (!d->client_gone) {
			Grove__V1__HookResponse resp = GROVE__V1__HOOK_RESPONSE__INIT;
			resp.stdout.data = (uint8_t *)d->line.buf;
			resp.stdout.len = n;
			if (rpc_call_send(d->call, &resp.base))
				d->client_gone = true;   /* the deploy goes on; its log is kept */
		}
		strbuf_consume(&d->line, n);
	}
	return 0;
}

/* A line every keepalive seconds of silence, so the pusher's SSH connection
 * and any proxy in between stay open and the pusher sees it is alive. */
static void deploy_keepalive(struct deploy_run *d)
{
	char ka[128];
	if (now_ms() - d->quiet_since < (int64_t)api_cfg->keepalive * 1000)
		return;
	int kn = snprintf(ka, sizeof(ka), "-----> still deploying (%llds)\n", (long long)((now_ms() - d->start) / 1000));
	deploy_output(d, ka, (size_t)kn);
	d->quiet_since = now_ms();
}

/* Set once the api process is told to stop, after the gate's shutdown grace:
 * deployments still running are interrupted (and recorded so), so that the
 * gate stops when its operator expects and not when the slowest build ends. */
static atomic_bool api_stopping;
/* How long an interrupted deploy command has between SIGTERM and SIGKILL. */
#define DEPLOY_KILL_GRACE_MS 5000
#define DEPLOY_INTERRUPTED "interrupted: the gate was stopped; push again to deploy"

static int run_deploy(struct deploy_run *d, const struct deploy_target *t, const char *pusher)
{
	int64_t term_at = 0;
	struct strvec extra = STRVEC_INIT;
	struct proc proc = { .pid = -1 };
	const char *argv[] = { api_cfg->deploy_command, NULL };
	char **env;
	char *buf = xmalloc(65536);
	int ret, code;

	strvec_pushf(&extra, "GROVE_APP=%s", t->app->name);
	strvec_pushf(&extra, "GROVE_REF=%s", t->ref);
	strvec_pushf(&extra, "GROVE_OLD=%s", t->old);
	strvec_pushf(&extra, "GROVE_NEW=%s", t->new);
	strvec_pushf(&extra, "GROVE_PUSHER=%s", pusher);
	strvec_pushf(&extra, "GROVE_DEPLOY_ID=%lld", (long long)d->id);
	strvec_pushf(&extra, "GROVE_CORRELATION_ID=%s", log_correlation_id());
	strvec_pushf(&extra, "GROVE_ARCHIVE_URL=%s", d->archive_url.buf);
	env = proc_env(strvec_argv(&extra));
	ret = proc_start(&proc, argv, env, api_cfg->data_dir, PROC_STDOUT | PROC_STDERR | PROC_NONBLOCK | PROC_NEWPGRP);
	proc_env_free(env);
	strvec_clear(&extra);
	if (ret) {
		free(buf);
		return ret;
	}
	/* stdout and stderr both go to the pusher, as they come. */
	while (proc.out >= 0 || proc.err >= 0) {
		struct pollfd pfd[2];
		int n = 0;
		if (proc.out >= 0) { pfd[n].fd = proc.out; pfd[n++].events = POLLIN; }
		if (proc.err >= 0) { pfd[n].fd = proc.err; pfd[n++].events = POLLIN; }
		int r = poll(pfd, (nfds_t)n, 1000);
		if (atomic_load(&api_stopping)) {
			/* Its whole process group: a build's children too. */
			if (!term_at) {
				kill(-proc.pid, SIGTERM);
				term_at = now_ms();
			} else if (now_ms() - term_at > DEPLOY_KILL_GRACE_MS) {
				kill(-proc.pid, SIGKILL);
			}
		}
		if (r == 0) {
			deploy_keepalive(d);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			ssize_t got = read(pfd[i].fd, buf, 65536);
			if (got > 0) {
				deploy_output(d, buf, (size_t)got);
				d->quiet_since = now_ms();
			} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				if (pfd[i].fd == proc.out) {
					close(proc.out);
					proc.out = -1;
				} else {
					close(proc.err);
					proc.err = -1;
				}
			}
		}
	}
	code = proc_wait(&proc);
	if (term_at) {
		snprintf(d->failure, sizeof(d->failure), "%s", DEPLOY_INTERRUPTED);
		code = code ? code : 1;
	} else if (code > 0) {
		snprintf(d->failure, sizeof(d->failure), "exit status %d", code);
	}
	free(buf);
	return code;
}

/* ---- webhook deployments ---- */

static size_t webhook_body(char *data, size_t size, size_t n, void *ctx)
{
	struct deploy_run *d = ctx;
	deploy_output(d, data, size * n);
	d->quiet_since = now_ms();
	return size * n;
}

/* libcurl calls this about once a second while waiting: the keep-alive clock. */
static int webhook_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	deploy_keepalive(ctx);
	return atomic_load(&api_stopping) ? 1 : 0;   /* non-zero: curl gives up the request */
}

/*
 * POSTs the deployment as JSON; the response body streams to the pusher as
 * it comes, a 2xx status is success. With deploy.webhookSecretFile, the body
 * is signed (X-Grove-Signature: sha256=HMAC of the body) so the receiver can
 * tell the gate sent it.
 */
static int run_webhook(struct deploy_run *d, const struct deploy_target *t, const char *pusher)
{
	struct curl_slist *hdrs = NULL;
	char hdr[256], errbuf[CURL_ERROR_SIZE] = "";
	char *body = NULL;
	long status = 0;
	int ret;
	CURL *c = NULL;
	json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)d->id, "app",
			      t->app->name, "ref", t->ref, "old", t->old, "new", t->new, "pusher", pusher, "archive_url",
			      d->archive_url.buf, "correlation_id", log_correlation_id());

	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (body) {
		hdrs = curl_slist_append(hdrs, "Accept: text/plain, */*");
		snprintf(hdr, sizeof(hdr), "X-Grove-Deployment: %lld", (long long)d->id);
		hdrs = curl_slist_append(hdrs, hdr);
		snprintf(hdr, sizeof(hdr), "X-Correlation-Id: %s", log_correlation_id());
		hdrs = curl_slist_append(hdrs, hdr);
		if (api_cfg->webhook_secret) {
			char sig[65];
			auth_hmac_hex(api_cfg->webhook_secret, body, sig);
			snprintf(hdr, sizeof(hdr), "X-Grove-Signature: sha256=%s", sig);
			hdrs = curl_slist_append(hdrs, hdr);
		}
		c = httpc_json_post(api_cfg->deploy_webhook, body, &hdrs, api_cfg->webhook_timeout, 10, errbuf);
	}
	if (!c) {
		ret = error_set(GROVE_EINTERNAL, "cannot prepare the webhook request");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, webhook_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, webhook_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		if (cr == CURLE_ABORTED_BY_CALLBACK) {
			snprintf(d->failure, sizeof(d->failure), "%s", DEPLOY_INTERRUPTED);
			ret = 1;
		} else if (cr == CURLE_OPERATION_TIMEDOUT) {
			snprintf(d->failure, sizeof(d->failure), "no answer from the webhook within %ds (deploy.webhookTimeout)",
				 api_cfg->webhook_timeout);
			ret = 1;
		} else {
			ret = error_set(GROVE_EUNAVAIL, "the deploy webhook %s cannot be reached: %s", api_cfg->deploy_webhook,
					errbuf[0] ? errbuf : curl_easy_strerror(cr));
		}
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	ret = status >= 200 && status < 300 ? 0 : 1;
	if (ret)
		snprintf(d->failure, sizeof(d->failure), "the webhook answered HTTP %ld", status);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(body);
	return ret;
}

struct last_update {
	char ref[256];
	char commit[64];
};

/* The last ref the push set (not deleted): what `grove app show` names as its last push. */
static int last_update(void *ctx, const char *old, const char *new, const char *ref)
{
	struct last_update *u = ctx;
	if (strspn(new, "0") != strlen(new)) {
		strlcpy_(u->ref, ref, sizeof(u->ref));
		strlcpy_(u->commit, new, sizeof(u->commit));
	}
	return 0;
}

static void post_receive(struct rpc_call *call, void *data)
{
	struct hook_call h = { .call = call };
	struct app app = { 0 };
	struct db *db = NULL;
	struct deploy_target t = { .app = &app };
	struct deploy_run d = { .call = call };
	struct app_slot *slot = NULL;
	int ret = read_request(&h);
	int64_t start = now_ms();
	char msg[256];

	strbuf_init(&d.line, 64 * 1024);
	strbuf_init(&d.archive_url, 4096);
	if (!ret)
		ret = db_open(&db, api_cfg->db_path);
	if (ret)
		goto out;
	d.db = db;
	if (db_app_get(db, h.first->payload->app, &app))
		goto done;
	struct last_update lu = { "", "" };
	each_update(&h.in, last_update, &lu);
	if (lu.ref[0] && db_app_record_push(db, app.name, h.first->payload->user, lu.ref, lu.commit))
		log_warn("gate.push_record_failed", "app=%s error=%s", app.name, error_msg());
	each_update(&h.in, find_deploy, &t);
	if (!t.found || (!api_cfg->deploy_command && !api_cfg->deploy_webhook))
		goto done;

	pthread_mutex_lock(&slots_mu);
	slot = slot_for(app.name);
	if (slot->busy)
		say(call, false, "-----> Another deployment of %s is running: this one waits for it.\n", app.name);
	while (slot->busy)
		pthread_cond_wait(&slots_cv, &slots_mu);
	slot->busy = true;
	pthread_mutex_unlock(&slots_mu);

	if (db_deploy_create(db, app.name, t.ref, t.old, t.new, h.first->payload->user, &d.id)) {
		say(call, true, "!      Cannot record the deployment: %s\n", error_msg());
		goto release;
	}
	db_deploy_set_status(db, d.id, "running");
	snprintf(msg, sizeof(msg), "-----> Deploying %s (%.7s) — deployment %lld\n", app.name, t.new, (long long)d.id);
	deploy_output(&d, msg, strlen(msg));
	archive_url_make(api_cfg->archive_base, api_cfg->secret, app.name, t.new, time(NULL) + api_cfg->archive_ttl,
			 &d.archive_url);
	d.start = d.quiet_since = now_ms();
	int code = api_cfg->deploy_webhook ? run_webhook(&d, &t, h.first->payload->user)
					   : run_deploy(&d, &t, h.first->payload->user);
	if (d.line.len) {
		/* the output's last line had no newline */
		strbuf_addch(&d.line, '\n');
		deploy_output(&d, "", 0);
	}
	if (code == 0)
		snprintf(msg, sizeof(msg), "-----> Deployed %s (%.7s) in %.1fs\n", app.name, t.new,
			 (double)(now_ms() - start) / 1000.0);
	else if (code > 0)
		snprintf(msg, sizeof(msg), "!      Deployment of %s failed (%s). See `grove deploy log %lld`.\n",
			 app.name, d.failure, (long long)d.id);
	else
		snprintf(msg, sizeof(msg), "!      Deployment of %s could not start: %s\n", app.name, error_msg());
	deploy_output(&d, msg, strlen(msg));
	db_deploy_set_status(db, d.id, code == 0 ? "succeeded" : "failed");
	if (gate_metrics) {
		atomic_fetch_add(code == 0 ? &gate_metrics->deploys_succeeded : &gate_metrics->deploys_failed, 1);
		metrics_observe(&gate_metrics->deploy_seconds, now_ms() - start);
	}
	log_info("gate.deploy", "app=%s id=%lld new=%s status=%s ms=%lld", app.name, (long long)d.id, t.new,
		 code == 0 ? "succeeded" : "failed", (long long)(now_ms() - start));
release:
	pthread_mutex_lock(&slots_mu);
	slot->busy = false;
	pthread_cond_broadcast(&slots_cv);
	pthread_mutex_unlock(&slots_mu);
done:
	/* The refs moved already: post-receive cannot undo a push. */
	ret = d.client_gone ? 0 : send_exit(call, 0);
out:
	rpc_call_done(call, ret);
	app_release(&app);
	db_close(db);
	FREE_MSG(h.first);
	strbuf_release(&h.in);
	strbuf_release(&d.line);
	strbuf_release(&d.archive_url);
}

/* ---- housekeeping: every app's repository optimized, one at a time ---- */

struct housekeeper {
	const struct gate_config *cfg;
	const struct repo_env *env;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static int collect_name(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct strvec *v = ctx;
	if (values[0])
		strvec_push(v, values[0]);
	return 0;
}

static void *housekeeping_main(void *arg)
{
	struct housekeeper *hk = arg;
	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += hk->cfg->housekeeping;
		pthread_mutex_lock(&hk->mu);
		while (!hk->stop && pthread_cond_timedwait(&hk->cv, &hk->mu, &ts) != ETIMEDOUT)
			;
		bool stop = hk->stop;
		pthread_mutex_unlock(&hk->mu);
		if (stop)
			break;
		struct strvec apps = STRVEC_INIT;
		struct db *db = NULL;
		int64_t start = now_ms();
		size_t done = 0, failed = 0;
		if (db_open(&db, hk->cfg->db_path) ||
		    db_apps_each(db, NULL, collect_name, &apps)) {
			log_warn("gate.housekeeping_failed", "error=%s", error_msg());
		} else {
			for (size_t i = 0; i < apps.n && !hk->stop; i++) {
				struct strbuf report = STRBUF_INIT;
				strbuf_init(&report, 4096);
				int r = app_gc(hk->env, db, apps.v[i], &report);
				/* An app without code yet has nothing to optimize. */
				if (r && r != GROVE_ENOTFOUND) {
					failed++;
					log_warn("gate.housekeeping_app_failed", "app=%s error=%s", apps.v[i], error_msg());
				} else if (!r) {
					done++;
				}
				strbuf_release(&report);
			}
			log_info("gate.housekeeping", "apps=%zu optimized=%zu failed=%zu ms=%lld", apps.n, done, failed,
				 (long long)(now_ms() - start));
		}
		db_close(db);
		strvec_clear(&apps);
	}
	return NULL;
}

int api_run(const struct gate_config *cfg)
{
	struct rpc_server *srv = NULL;
	struct rpc_server_opts ropts = { .role = "gate", .secret = cfg->secret, .threads = 2 };
	struct admin *admin = NULL;
	struct admin_opts aopts = { 0 };
	struct repo_env menv = { 0 };
	char *locks = xasprintf("%s/locks", cfg->data_dir), *tmp = xasprintf("%s/tmp", cfg->data_dir);
	char *journal = xasprintf("%s/migrations", cfg->data_dir);
	sigset_t sigs;
	int sig, ret;

	api_cfg = cfg;
	log_init("gate-api", LOG_INFO, 2);
	/* Before any thread: curl_global_init is not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, GATE_SIG_DRAINING);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if ((ret = rpc_server_new(&srv, &ropts)))
		goto out;
	rpc_server_handle(srv, "/grove.v1.HookService/PreReceiveHook", pre_receive, NULL);
	rpc_server_handle(srv, "/grove.v1.HookService/PostReceiveHook", post_receive, NULL);
	if ((ret = rpc_server_listen(srv, cfg->hook_listen)) || (ret = rpc_server_start(srv)))
		goto out;
	aopts.listen = cfg->admin_listen;
	aopts.token = cfg->admin_token;
	aopts.db_path = cfg->db_path;
	aopts.default_deploy_branch = cfg->deploy_branch;
	aopts.canary_percent = cfg->canary_percent;
	menv.legacy_dir = cfg->legacy_dir;
	menv.cluster_address = cfg->cluster_address;
	menv.cluster_storage = cfg->cluster_storage;
	menv.secret = cfg->secret;
	menv.locks_dir = locks;
	menv.tmp_dir = tmp;
	menv.journal_dir = journal;
	menv.lock_timeout = 600;
	aopts.repos = &menv;
	/* Before the API takes requests: no migration stays half-done after a crash. */
	{
		struct db *db = NULL;
		if (!db_open(&db, cfg->db_path))
			app_move_recover(&menv, db);
		db_close(db);
	}
	if ((ret = admin_start(&admin, &aopts)))
		goto out;
	log_info("gate.api_started", "hook_listen=%s admin_listen=%s", cfg->hook_listen, cfg->admin_listen);
	struct housekeeper hk = { .cfg = cfg, .env = &menv, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	pthread_t hk_tid;
	bool hk_started = cfg->housekeeping > 0 && !pthread_create(&hk_tid, NULL, housekeeping_main, &hk);
	/* The acceptor says when it starts draining: /ready turns 503 at once,
	 * while the hooks of the pushes still running are served on until
	 * SIGTERM comes, once they are done. */
	for (;;) {
		if (sigwait(&sigs, &sig))
			continue;
		if (sig != GATE_SIG_DRAINING)
			break;
		admin_set_draining(admin);
		log_info("gate.api_draining", NULL);
	}
	if (hk_started) {
		pthread_mutex_lock(&hk.mu);
		hk.stop = true;
		pthread_cond_broadcast(&hk.cv);
		pthread_mutex_unlock(&hk.mu);
		pthread_join(hk_tid, NULL);
	}
	atomic_store(&api_stopping, true);
	admin_set_draining(admin);
	rpc_server_drain(srv, cfg->shutdown_grace * 1000);
out:
	if (ret)
		log_error("gate.api_failed", "error=%s", error_msg());
	admin_stop(admin);
	rpc_server_free(srv);
	free(locks);
	free(tmp);
	free(journal);
	return ret ? 1 : 0;
}
