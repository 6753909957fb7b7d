/*
 * The grove.v1.HookService of the gate's api process, which a push's hooks
 * call: the push policy in pre-receive; in post-receive, the push recorded
 * as the app's last and its deploy branch deployed (deploy.c).
 */
#include "gate/hooksvc.h"
#include "gate/refpolicy.h"
#include "gate/metrics.h"
#include "gate/deploy.h"
#include "lib/adminreq.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "grove/v1/hook.pb-c.h"

#define HOOK_IN_MAX (16 << 20)
#define ZERO_OID "0000000000000000000000000000000000000000"

static const struct gate_config *hook_cfg;

struct hook_call {
	struct rpc_call *call;
	Grove__V1__HookRequest *first;
	struct strbuf in;
};

int hook_say(struct rpc_call *call, bool err, const char *fmt, ...)
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

/* A name from the client as it may be echoed: control characters never
 * reach the user's terminal. */
static void shown_name(char *out, size_t size, const char *name)
{
	strlcpy_(out, name, size);
	for (char *q = out; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			*q = '?';
}

/* A ref outside gate.refNamespaces (refpolicy.h): refused, and said so. */
static void refuse_namespace(struct policy *p, const char *ref)
{
	struct strbuf list = STRBUF_INIT;
	char shown[256];
	shown_name(shown, sizeof(shown), ref);
	for (size_t i = 0; i < hook_cfg->ref_namespaces.n; i++)
		strbuf_addf(&list, "%s%s", i ? ", " : "", hook_cfg->ref_namespaces.v[i]);
	hook_say(p->call, true, "ERROR: %s was not pushed: %s takes refs only under %s.\n", shown, p->app->name,
	    list.buf);
	strbuf_release(&list);
	p->refused = 1;
	metrics_refusal(RR_NAMESPACE);
}

static int check_update(void *ctx, const char *old, const char *new, const char *ref)
{
	struct policy *p = ctx;
	const char *branch;
	if (!refpolicy_allows(&hook_cfg->ref_namespaces, ref)) {
		refuse_namespace(p, ref);
		return 0;
	}
	if (skip_prefix(ref, "refs/heads/", &branch)) {
		bool is_deploy = !strcmp(branch, p->app->deploy_branch);
		const char *why = strcmp(new, ZERO_OID) ? adminreq_branch_problem(branch) : NULL;
		if (why) {
			/* git refuses most of these itself, but only after this hook,
			 * which would otherwise have said "Pushed to ../../config". */
			char shown[256];
			shown_name(shown, sizeof(shown), branch);
			hook_say(p->call, true, "ERROR: \"%s\" is not a valid branch name (%s): nothing was pushed.\n", shown,
			    why);
			p->refused = 1;
			metrics_refusal(RR_REF_NAME);
		} else if (is_deploy && !strcmp(new, ZERO_OID)) {
			hook_say(p->call, true, "ERROR: %s is the deploy branch of %s: it cannot be deleted.\n", branch,
			    p->app->name);
			p->refused = 1;
			metrics_refusal(RR_DEPLOY_DELETE);
		} else if (!is_deploy && strcmp(new, ZERO_OID)) {
			if (hook_cfg->other_branches) {
				hook_say(p->call, false, "Pushed to %s: only %s deploys.\n", branch, p->app->deploy_branch);
			} else {
				hook_say(p->call, true, "ERROR: %s only accepts pushes to %s (not %s).\n", p->app->name,
				    p->app->deploy_branch, branch);
				p->refused = 1;
				metrics_refusal(RR_BRANCH);
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
		ret = db_attach(&db, hook_cfg->db_path);
	if (!ret && db_app_get(db, h.first->payload->app, &app)) {
		hook_say(call, true, "ERROR: app %s no longer exists.\n", h.first->payload->app);
		p.refused = 1;
		metrics_refusal(RR_APP_GONE);
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

/* ---- post-receive: the push recorded, and deployed ---- */

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
	bool client_gone = false;
	int ret = read_request(&h);
	int64_t start = now_ms();

	if (!ret)
		ret = db_attach(&db, hook_cfg->db_path);
	if (ret)
		goto out;
	if (db_app_get(db, h.first->payload->app, &app))
		goto done;
	struct last_update lu = { "", "" };
	each_update(&h.in, last_update, &lu);
	if (lu.ref[0] && db_app_record_push(db, app.name, h.first->payload->user, lu.ref, lu.commit))
		log_warn("gate.push_record_failed", "app=%s error=%s", app.name, error_msg());
	each_update(&h.in, find_deploy, &t);
	if (t.found && (hook_cfg->deploy_command || hook_cfg->deploy_webhook))
		deploy_push(hook_cfg, call, db, &t, h.first->payload->user, start, &client_gone);
done:
	/* The refs moved already: post-receive cannot undo a push. */
	ret = client_gone ? 0 : send_exit(call, 0);
out:
	rpc_call_done(call, ret);
	app_release(&app);
	db_close(db);
	FREE_MSG(h.first);
	strbuf_release(&h.in);
}

void hooksvc_register(struct rpc_server *srv, const struct gate_config *cfg)
{
	hook_cfg = cfg;
	rpc_server_handle(srv, "/grove.v1.HookService/PreReceiveHook", pre_receive, NULL);
	rpc_server_handle(srv, "/grove.v1.HookService/PostReceiveHook", post_receive, NULL);
}
