/*
 * Deployments of pushes: one at a time per app. A push whose deploy finds
 * another running waits for it, and is told so; the deploy's output reaches
 * the pusher line by line as "remote:" lines, with a keep-alive line when it
 * is quiet, and every deployment is recorded with its full log.
 *
 * A deployment is either the configured command (its exit status decides)
 * or a POST of the deployment as JSON to the configured webhook (its HTTP
 * status decides; the response body is streamed back like a command's
 * output). Both get a signed, short-lived archive URL of the commit.
 */
#include "gate/deploy.h"
#include "gate/archive.h"
#include "gate/hooksvc.h"
#include "gate/metrics.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/strvec.h"
#include "grove/v1/hook.pb-c.h"

#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

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

struct deploy_run {
	const struct gate_config *cfg;
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
	if (now_ms() - d->quiet_since < (int64_t)d->cfg->keepalive * 1000)
		return;
	int kn = snprintf(ka, sizeof(ka), "-----> still deploying (%llds)\n", (long long)((now_ms() - d->start) / 1000));
	deploy_output(d, ka, (size_t)kn);
	d->quiet_since = now_ms();
}

/* Set once the api process is told to stop, after the gate's shutdown grace:
 * deployments still running are interrupted (and recorded so), so that the
 * gate stops when its operator expects and not when the slowest build ends. */
static atomic_bool deploy_stopping;
/* How long an interrupted deploy command has between SIGTERM and SIGKILL. */
#define DEPLOY_KILL_GRACE_MS 5000
#define DEPLOY_INTERRUPTED "interrupted: the gate was stopped; push again to deploy"

void deploy_interrupt_all(void)
{
	atomic_store(&deploy_stopping, true);
}

static int run_deploy(struct deploy_run *d, const struct deploy_target *t, const char *pusher)
{
	int64_t term_at = 0;
	struct strvec extra = STRVEC_INIT;
	struct proc proc = { .pid = -1 };
	const char *argv[] = { d->cfg->deploy_command, NULL };
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
	ret = proc_start(&proc, argv, env, d->cfg->data_dir, PROC_STDOUT | PROC_STDERR | PROC_NONBLOCK | PROC_NEWPGRP);
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
		if (atomic_load(&deploy_stopping)) {
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
	return atomic_load(&deploy_stopping) ? 1 : 0;   /* non-zero: curl gives up the request */
}

/*
 * POSTs the deployment as JSON; the response body streams to the pusher as
 * it comes, a 2xx status is success. With deploy.webhookSecretFile, the body
 * is signed with the time (X-Grove-Timestamp: T, X-Grove-Signature:
 * sha256=HMAC of "T.body") so the receiver can tell the gate sent it, and
 * when.
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
		if (d->cfg->webhook_secret) {
			/* The time is signed with the body: a receiver that refuses a
			 * timestamp older than its window cannot be fed a replay. */
			long long now = (long long)time(NULL);
			char sig[65], *msg = xasprintf("%lld.%s", now, body);
			auth_hmac_hex(d->cfg->webhook_secret, msg, sig);
			free(msg);
			snprintf(hdr, sizeof(hdr), "X-Grove-Timestamp: %lld", now);
			hdrs = curl_slist_append(hdrs, hdr);
			snprintf(hdr, sizeof(hdr), "X-Grove-Signature: sha256=%s", sig);
			hdrs = curl_slist_append(hdrs, hdr);
		}
		c = httpc_json_post(d->cfg->deploy_webhook, body, &hdrs, d->cfg->webhook_timeout, 10, errbuf);
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
				 d->cfg->webhook_timeout);
			ret = 1;
		} else {
			ret = error_set(GROVE_EUNAVAIL, "the deploy webhook %s cannot be reached: %s", d->cfg->deploy_webhook,
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

/* ---- a push's deployment ---- */

void deploy_push(const struct gate_config *cfg, struct rpc_call *call, struct db *db, const struct deploy_target *t,
		 const char *pusher, int64_t start, bool *client_gone)
{
	struct deploy_run d = { .cfg = cfg, .call = call, .db = db };
	struct app_slot *slot;
	char msg[256];

	strbuf_init(&d.line, 64 * 1024);
	strbuf_init(&d.archive_url, 4096);
	pthread_mutex_lock(&slots_mu);
	slot = slot_for(t->app->name);
	if (slot->busy)
		hook_say(call, false, "-----> Another deployment of %s is running: this one waits for it.\n", t->app->name);
	while (slot->busy)
		pthread_cond_wait(&slots_cv, &slots_mu);
	slot->busy = true;
	pthread_mutex_unlock(&slots_mu);

	if (db_deploy_create(db, t->app->name, t->ref, t->old, t->new, pusher, &d.id)) {
		hook_say(call, true, "!      Cannot record the deployment: %s\n", error_msg());
		goto release;
	}
	db_deploy_set_status(db, d.id, "running");
	snprintf(msg, sizeof(msg), "-----> Deploying %s (%.7s) — deployment %lld\n", t->app->name, t->new, (long long)d.id);
	deploy_output(&d, msg, strlen(msg));
	archive_url_make(cfg->archive_base, cfg->secret, t->app->name, t->new, time(NULL) + cfg->archive_ttl,
			 &d.archive_url);
	d.start = d.quiet_since = now_ms();
	int code = cfg->deploy_webhook ? run_webhook(&d, t, pusher)
					   : run_deploy(&d, t, pusher);
	if (d.line.len) {
		/* the output's last line had no newline */
		strbuf_addch(&d.line, '\n');
		deploy_output(&d, "", 0);
	}
	if (code == 0)
		snprintf(msg, sizeof(msg), "-----> Deployed %s (%.7s) in %.1fs\n", t->app->name, t->new,
			 (double)(now_ms() - start) / 1000.0);
	else if (code > 0)
		snprintf(msg, sizeof(msg), "!      Deployment of %s failed (%s). See `grove deploy log %lld`.\n",
			 t->app->name, d.failure, (long long)d.id);
	else
		snprintf(msg, sizeof(msg), "!      Deployment of %s could not start: %s\n", t->app->name, error_msg());
	deploy_output(&d, msg, strlen(msg));
	db_deploy_set_status(db, d.id, code == 0 ? "succeeded" : "failed");
	if (gate_metrics) {
		atomic_fetch_add(code == 0 ? &gate_metrics->deploys_succeeded : &gate_metrics->deploys_failed, 1);
		metrics_observe(&gate_metrics->deploy_seconds, now_ms() - start);
	}
	log_info("gate.deploy", "app=%s id=%lld new=%s status=%s ms=%lld", t->app->name, (long long)d.id, t->new,
		 code == 0 ? "succeeded" : "failed", (long long)(now_ms() - start));
release:
	pthread_mutex_lock(&slots_mu);
	slot->busy = false;
	pthread_cond_broadcast(&slots_cv);
	pthread_mutex_unlock(&slots_mu);
	*client_gone = d.client_gone;
	strbuf_release(&d.line);
	strbuf_release(&d.archive_url);
}
