/*
 * grove.v1.HookService on a store: the receiving end of `grove hook`.
 *
 * git receive-pack, run by this store, runs `grove hook pre-receive` (and
 * post-receive), which streams the ref updates here over the store's local
 * socket. The store runs the operator's custom hook for it, if any, then
 * forwards the same request to the HookService named in the push's payload
 * (the gate) and relays its output, so the pusher sees both as "remote:"
 * lines. The first non-zero exit status decides.
 *
 * The hooks of a push on this store come the cheap way instead, through
 * `grove-hook` and the store's hook wire (hooksock.c); both ends meet in
 * store_hook_run and store_hook_vote.
 */
#include "store/store.h"
#include "lib/error.h"
#include "lib/hookwire.h"
#include "lib/log.h"
#include "grove/v1/transaction.pb-c.h"
#include "lib/proc.h"
#include "lib/strvec.h"
#include "grove/v1/hook.pb-c.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <signal.h>

#define HOOK_STDIN_MAX (16 << 20)

static int relay(void *ctx, const char *data, size_t len, bool err)
{
	struct hook_run *h = ctx;
	return h->say(h->sink, data, len, err);
}

static int relay_out(void *ctx, const char *data, size_t len)
{
	return relay(ctx, data, len, false);
}

static int relay_err(void *ctx, const char *data, size_t len)
{
	return relay(ctx, data, len, true);
}

bool store_path_inside(const char *value, const char *repo)
{
	size_t n = strlen(repo);
	if (strncmp(value, repo, n) || value[n] != '/' || strstr(value, "/../") || strstr(value, ":"))
		return false;
	return true;
}

/* Whether e is one of git's quarantine variables, pointing inside the repository at repo. */
static bool quarantine_var_inside(const char *e, const struct strbuf *repo)
{
	const char *v;
	for (size_t i = 0; i < HOOKWIRE_QUARANTINE_VARS; i++)
		if (skip_prefix(e, hookwire_quarantine_vars[i], &v) && *v == '=' && repo->len && store_path_inside(v + 1, repo->buf))
			return true;
	return false;
}

/* Runs the operator's hook, streaming its output; returns its exit code. */
static int run_custom(struct store *st, struct hook_run *h, const char *prog, int *code)
{
	Grove__V1__HookPayload *p = h->first->payload;
	struct strbuf repo = STRBUF_INIT;
	struct strvec env_extra = STRVEC_INIT;
	struct proc proc = { .pid = -1 };
	char **env = NULL;
	const char *argv[] = { prog, NULL };
	int ret;

	/* Forwarded from another store, the repository is not ours: the hook
	 * then runs without GIT_DIR, from the root. */
	if (!store_repo_path(st, p->repository, true, &repo))
		strvec_pushf(&env_extra, "GIT_DIR=%s", repo.buf);
	else
		strbuf_reset(&repo);
	strvec_pushf(&env_extra, "GROVE_APP=%s", p->app ? p->app : "");
	strvec_pushf(&env_extra, "GROVE_USER=%s", p->user ? p->user : "");
	strvec_pushf(&env_extra, "GROVE_KEY_FINGERPRINT=%s", p->key_fingerprint ? p->key_fingerprint : "");
	strvec_pushf(&env_extra, "GROVE_CORRELATION_ID=%s", log_correlation_id());
	strvec_pushf(&env_extra, "GROVE_STORAGE=%s", p->repository->storage_name);
	strvec_pushf(&env_extra, "GROVE_REPOSITORY=%s", p->repository->relative_path);
	strvec_pushf(&env_extra, "GIT_PUSH_OPTION_COUNT=%zu", h->first->n_push_options);
	for (size_t i = 0; i < h->first->n_push_options; i++)
		strvec_pushf(&env_extra, "GIT_PUSH_OPTION_%zu=%s", i, h->first->push_options[i]);
	for (size_t i = 0; i < h->first->n_git_env; i++)
		if (quarantine_var_inside(h->first->git_env[i], &repo))
			strvec_push(&env_extra, h->first->git_env[i]);
	env = proc_env(strvec_argv(&env_extra));
	ret = proc_start(&proc, argv, env, repo.len ? repo.buf : "/", PROC_STDIN | PROC_STDOUT | PROC_STDERR | PROC_NEWPGRP);
	if (ret)
		goto out;
	/* The ref lines are small (bounded by HOOK_STDIN_MAX); a hook that does
	 * not read them gets EPIPE, which the daemon ignores. */
	if (h->in.len)
		write_all(proc.in, h->in.buf, h->in.len);
	proc_close_in(&proc);
	fcntl(proc.out, F_SETFL, O_NONBLOCK);
	fcntl(proc.err, F_SETFL, O_NONBLOCK);
	ret = proc_pump_output(&proc, relay_out, relay_err, h, RPC_CHUNK_MAX);
	if (ret)
		proc_kill(&proc, SIGKILL);
	*code = proc_wait(&proc);
	if (*code < 0)
		ret = *code;
out:
	proc_env_free(env);
	strvec_clear(&env_extra);
	strbuf_release(&repo);
	return ret;
}

/* Sends the hook to the gate and relays its answer; returns its exit code. */
static int forward(struct store *st, struct hook_run *h, const char *method, int *code)
{
	struct rpc_client *cl = NULL;
	struct rpc_stream *stream = NULL;
	Grove__V1__HookRequest req = *h->first;
	Grove__V1__HookPayload payload = *h->first->payload;
	int ret, r;

	/* The callee must not forward again: a hook address that names a store
	 * (or, by mistake, this one) would otherwise loop. */
	payload.hook_address = "";
	req.payload = &payload;
	*code = 1;
	ret = rpc_client_new(&cl, h->first->payload->hook_address, st->secret);
	if (ret)
		goto out;
	ret = rpc_stream_open(cl, method, 0, &stream);
	if (ret)
		goto out;
	for (size_t off = 0; !ret && (off < h->in.len || off == 0); off += RPC_CHUNK_MAX) {
		req.stdin.data = (uint8_t *)h->in.buf + off;
		req.stdin.len = MIN(h->in.len - off, (size_t)RPC_CHUNK_MAX);
		ret = rpc_stream_send(stream, &req.base);
		/* Only the first message carries the payload. */
		req.payload = NULL;
		req.n_push_options = 0;
		req.n_git_env = 0;
		if (h->in.len == 0)
			break;
	}
	rpc_stream_close_send(stream);
	for (;;) {
		Grove__V1__HookResponse *resp = NULL;
		r = rpc_stream_recv(stream, &grove__v1__hook_response__descriptor, (ProtobufCMessage **)&resp);
		if (r <= 0)
			break;
		if (resp->stdout.len)
			r = h->say(h->sink, (const char *)resp->stdout.data, resp->stdout.len, false);
		if (r >= 0 && resp->stderr.len)
			r = h->say(h->sink, (const char *)resp->stderr.data, resp->stderr.len, true);
		if (resp->exit_status)
			*code = resp->exit_status->value;
		FREE_MSG(resp);
		if (r < 0)
			break;
	}
	ret = rpc_stream_finish(stream);
	if (ret)
		ret = error_wrap(GROVE_EUNAVAIL, "hook service at %s", h->first->payload->hook_address);
out:
	rpc_stream_free(stream);
	rpc_client_free(cl);
	return ret;
}

/*
 * Votes a store's ref updates to the cluster router that sent the write and
 * relays its answer: git commits the updates only on COMMIT. The router
 * holds the answer until a quorum agreed, so this call may wait.
 */
int store_hook_vote(struct store *st, const Grove__V1__HookPayload *p, Grove__V1__VoteTransactionRequest__Phase phase,
		    ProtobufCBinaryData vote, bool *commit, char *msg, size_t msgsize)
{
	Grove__V1__VoteTransactionRequest v = GROVE__V1__VOTE_TRANSACTION_REQUEST__INIT;
	Grove__V1__VoteTransactionResponse *r = NULL;
	struct rpc_client *cl = NULL;
	int ret;

	v.transaction_id = p->transaction_id;
	v.node = p->node;
	v.vote = vote;
	v.phase = phase;
	ret = rpc_client_new(&cl, p->transaction_address, st->secret);
	if (!ret) {
		/* A connection the router was slow to accept must not abort the
		 * push: the vote waits for one as it waits for a quorum. */
		rpc_client_set_wait_for_ready(cl, true);
		ret = rpc_unary(cl, "/grove.v1.TransactionService/VoteTransaction", &v.base,
				&grove__v1__vote_transaction_response__descriptor, (ProtobufCMessage **)&r,
				TXN_VOTE_TIMEOUT_MS);
	}
	if (ret) {
		error_wrap(ret, "voting transaction %llu at %s", (unsigned long long)p->transaction_id,
			   p->transaction_address);
		goto out;
	}
	*commit = r->outcome == GROVE__V1__VOTE_TRANSACTION_RESPONSE__OUTCOME__COMMIT;
	strlcpy_(msg, r->message ? r->message : "", msgsize);
	log_info("txn.voted", "txn=%llu node=%s phase=%d commit=%b", (unsigned long long)p->transaction_id, p->node,
		 (int)v.phase, *commit);
out:
	FREE_MSG(r);
	rpc_client_free(cl);
	return ret;
}

/*
 * A push's one vote (txn.c): every replica of a voted push votes the hash of
 * its ref updates once its pack is in and checked and the primary's checks
 * passed, before any ref moves. git then makes the updates with no vote per
 * ref; the router compares the replicas' checksums once git is done.
 */
static int push_vote(struct store *st, struct hook_run *h, int *code)
{
	const Grove__V1__HookPayload *p = h->first->payload;
	unsigned char hash[SHA256_DIGEST_LENGTH];
	ProtobufCBinaryData vote = { sizeof(hash), hash };
	struct strbuf path = STRBUF_INIT, updates = STRBUF_INIT;
	char msg[1024] = "", line[1200];
	bool commit = false;
	int ret;

	if (!p->transaction_address || !*p->transaction_address)
		return 0;
	/* As git's "prepared" vote would: what this replica's refs are now,
	 * so that a replica that drifted does not agree with the others. */
	ret = store_repo_path(st, p->repository, true, &path);
	if (!ret)
		ret = store_repo_ref_updates(path.buf, h->in.buf, h->in.len, &updates);
	if (!ret) {
		SHA256((const unsigned char *)updates.buf, updates.len, hash);
		ret = store_hook_vote(st, p, GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__PREPARED, vote, &commit, msg,
			       sizeof(msg));
	}
	strbuf_release(&path);
	strbuf_release(&updates);
	if (ret) {
		/* The pusher sees a generic line; the detail is in this log. */
		log_warn("txn.vote_failed", "repo=%s error=%s", p->repository->relative_path, error_msg());
		snprintf(msg, sizeof(msg), "the replicas could not agree in time");
	}
	if (!ret && commit)
		store_push_refs_put(p->transaction_id, p->node, h->in.buf, h->in.len);
	if (ret || !commit) {
		*code = 1;
		snprintf(line, sizeof(line), "error: grove: ref update not committed: %s; no ref was updated, push again\n", msg);
		relay_err(h, line, strlen(line));
	}
	return 0;
}

int store_hook_run(struct store *st, struct hook_run *h, int *code)
{
	const char *method = !strcmp(h->name, "pre-receive") ? "/grove.v1.HookService/PreReceiveHook"
							     : "/grove.v1.HookService/PostReceiveHook";
	const Grove__V1__HookPayload *p = h->first->payload;
	struct strbuf prog = STRBUF_INIT;
	int ret = 0;

	*code = 0;
	if (!p || !p->repository) {
		ret = error_set(GROVE_EINVAL, "the hook request carries no payload with a repository");
		goto out;
	}
	/* First: the secondaries wait for it, not for the checks below. */
	if (!strcmp(h->name, "pre-receive"))
		store_pack_index_share(st, h);
	if (st->custom_hooks && !p->secondary) {
		strbuf_addf(&prog, "%s/%s", st->custom_hooks, h->name);
		if (!access(prog.buf, X_OK) && (ret = run_custom(st, h, prog.buf, code)))
			goto out;
	}
	if (!*code && !p->secondary && p->hook_address && *p->hook_address && (ret = forward(st, h, method, code)))
		goto out;
	if (!*code && !strcmp(h->name, "pre-receive") && (ret = push_vote(st, h, code)))
		goto out;
	log_info("hook.done", "hook=%s repo=%s exit=%d via=%s", h->name, p->repository->relative_path, *code, h->via);
out:
	strbuf_release(&prog);
	return ret;
}

/* The hook's output, as messages of the gRPC call. */
static int call_say(void *sink, const char *data, size_t len, bool err)
{
	Grove__V1__HookResponse resp = GROVE__V1__HOOK_RESPONSE__INIT;
	ProtobufCBinaryData *field = err ? &resp.stderr : &resp.stdout;
	field->data = (uint8_t *)data;
	field->len = len;
	return rpc_call_send(sink, &resp.base);
}

static void hook_serve(struct rpc_call *call, struct store *st, const char *name)
{
	struct hook_run h = { .name = name, .say = call_say, .sink = call, .via = "grpc" };
	Grove__V1__HookResponse done = GROVE__V1__HOOK_RESPONSE__INIT;
	Grove__V1__ExitStatus status = GROVE__V1__EXIT_STATUS__INIT;
	Grove__V1__HookRequest *more = NULL;
	int ret, r = 0, code = 0;

	strbuf_init(&h.in, HOOK_STDIN_MAX);
	ret = rpc_call_recv_one(call, &grove__v1__hook_request__descriptor, (ProtobufCMessage **)&h.first);
	if (ret)
		goto out;
	ret = strbuf_add(&h.in, h.first->stdin.data, h.first->stdin.len);
	while (!ret && (r = rpc_call_recv(call, &grove__v1__hook_request__descriptor, (ProtobufCMessage **)&more)) > 0) {
		ret = strbuf_add(&h.in, more->stdin.data, more->stdin.len);
		FREE_MSG(more);
		more = NULL;
	}
	if (!ret && r < 0)
		ret = r;
	if (ret || (ret = store_hook_run(st, &h, &code)))
		goto out;
	status.value = code;
	done.exit_status = &status;
	ret = rpc_call_send(call, &done.base);
out:
	rpc_call_done(call, ret);
	FREE_MSG(h.first);
	strbuf_release(&h.in);
}

static void pre_receive(struct rpc_call *call, void *data)
{
	hook_serve(call, data, "pre-receive");
}

static void post_receive(struct rpc_call *call, void *data)
{
	hook_serve(call, data, "post-receive");
}

static void reference_transaction(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__ReferenceTransactionHookRequest *req = NULL;
	Grove__V1__ReferenceTransactionHookResponse resp = GROVE__V1__REFERENCE_TRANSACTION_HOOK_RESPONSE__INIT;
	char msg[1024] = "";
	int ret = rpc_call_recv_one(call, &grove__v1__reference_transaction_hook_request__descriptor,
				    (ProtobufCMessage **)&req);
	resp.commit = true;
	if (!ret && req->payload && req->payload->transaction_address && *req->payload->transaction_address) {
		Grove__V1__VoteTransactionRequest__Phase phase = GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__PREPARED;
		if (req->state == GROVE__V1__REFERENCE_TRANSACTION_HOOK_REQUEST__STATE__COMMITTED)
			phase = GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__COMMITTED;
		else if (req->state == GROVE__V1__REFERENCE_TRANSACTION_HOOK_REQUEST__STATE__ABORTED)
			phase = GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__ABORTED;
		bool commit = false;
		ret = store_hook_vote(st, req->payload, phase, req->vote, &commit, msg, sizeof(msg));
		resp.commit = commit;
		resp.message = msg;
	}
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
}

void store_register_hook_service(struct rpc_server *srv, struct store *st)
{
	rpc_server_handle(srv, "/grove.v1.HookService/PreReceiveHook", pre_receive, st);
	rpc_server_handle(srv, "/grove.v1.HookService/PostReceiveHook", post_receive, st);
	rpc_server_handle(srv, "/grove.v1.HookService/ReferenceTransactionHook", reference_transaction, st);
}
