/* `grove hook`: see hook.h. */
#include "lib/common.h"
#include "hook/hook.h"
#include "lib/error.h"
#include "lib/hookpayload.h"
#include "lib/hookwire.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "grove/v1/hook.pb-c.h"

#include <openssl/sha.h>

#define HOOK_STDIN_MAX (16 << 20)

int hook_is_hook_name(const char *name)
{
	return !strcmp(name, "pre-receive") || !strcmp(name, "post-receive") ||
	       !strcmp(name, "reference-transaction");
}

static int read_stdin(struct strbuf *sb)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set(GROVE_EIO, "reading stdin: %s", strerror(errno));
		if (n == 0)
			return 0;
		if (strbuf_add(sb, buf, (size_t)n))
			return error_set(GROVE_ETOOBIG, "more than %d bytes of ref updates", HOOK_STDIN_MAX);
	}
}

/* Whether the store said this hook has someone to call. */
static bool active(const char *name)
{
	const char *list = getenv("GROVE_HOOKS_ACTIVE");
	char want[64];
	snprintf(want, sizeof(want), "%s,", name);
	return list && strstr(list, want);
}

static int receive_hook(const char *name, Grove__V1__HookPayload *payload, struct strbuf *in)
{
	Grove__V1__HookRequest req = GROVE__V1__HOOK_REQUEST__INIT;
	struct rpc_client *cl = NULL;
	struct rpc_stream *st = NULL;
	char *opts[64], *genv[HOOKWIRE_QUARANTINE_VARS];
	size_t nopts = 0, ngenv = 0;
	char optname[64];
	int code = 1, ret, r;
	const char *method = !strcmp(name, "pre-receive") ? "/grove.v1.HookService/PreReceiveHook"
							  : "/grove.v1.HookService/PostReceiveHook";

	const char *count = getenv("GIT_PUSH_OPTION_COUNT");
	for (int i = 0; count && i < atoi(count) && nopts < ARRAY_SIZE(opts); i++) {
		snprintf(optname, sizeof(optname), "GIT_PUSH_OPTION_%d", i);
		opts[nopts++] = getenv(optname) ? getenv(optname) : "";
	}
	for (size_t i = 0; i < HOOKWIRE_QUARANTINE_VARS; i++) {
		const char *v = getenv(hookwire_quarantine_vars[i]);
		if (v)
			genv[ngenv++] = xasprintf("%s=%s", hookwire_quarantine_vars[i], v);
	}
	ret = rpc_client_new(&cl, getenv("GROVE_HOOK_ADDRESS"), getenv("GROVE_SECRET"));
	if (!ret)
		ret = rpc_stream_open(cl, method, 0, &st);
	if (ret)
		goto out;
	req.payload = payload;
	req.push_options = opts;
	req.n_push_options = nopts;
	req.git_env = genv;
	req.n_git_env = ngenv;
	req.stdin.data = (uint8_t *)in->buf;
	req.stdin.len = in->len;
	/* Ref update lines are short; one message holds them unless a push
	 * updates tens of thousands of refs, then they go in chunks. */
	for (size_t off = 0; off < in->len || off == 0; off += RPC_CHUNK_MAX) {
		req.stdin.data = (uint8_t *)in->buf + off;
		req.stdin.len = MIN(in->len - off, (size_t)RPC_CHUNK_MAX);
		if (rpc_stream_send(st, &req.base))
			break;
		req.payload = NULL;
		req.n_push_options = 0;
		req.n_git_env = 0;
		if (!in->len)
			break;
	}
	rpc_stream_close_send(st);
	for (;;) {
		Grove__V1__HookResponse *resp = NULL;
		r = rpc_stream_recv(st, &grove__v1__hook_response__descriptor, (ProtobufCMessage **)&resp);
		if (r <= 0)
			break;
		if (resp->stdout.len)
			write_all(1, resp->stdout.data, resp->stdout.len);
		if (resp->stderr.len)
			write_all(2, resp->stderr.data, resp->stderr.len);
		if (resp->exit_status)
			code = resp->exit_status->value;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	ret = rpc_stream_finish(st);
out:
	if (ret) {
		/* Fail closed: a pre-receive that cannot ask refuses the push. */
		fprintf(stderr, "error: grove: the %s check could not run: %s\n", name, error_msg());
		code = 1;
	}
	for (size_t i = 0; i < ngenv; i++)
		free(genv[i]);
	rpc_stream_free(st);
	rpc_client_free(cl);
	return code;
}

static int transaction_hook(const char *state, Grove__V1__HookPayload *payload, struct strbuf *in)
{
	Grove__V1__ReferenceTransactionHookRequest req = GROVE__V1__REFERENCE_TRANSACTION_HOOK_REQUEST__INIT;
	Grove__V1__ReferenceTransactionHookResponse *resp = NULL;
	struct rpc_client *cl = NULL;
	unsigned char vote[SHA256_DIGEST_LENGTH];
	int ret;

	/* Only "prepared" is voted: git ignores the hook's answer once the
	 * refs moved ("committed", "aborted"), and so does the router; a
	 * state this version does not know is not ours to block either. */
	if (strcmp(state, "prepared"))
		return 0;
	req.state = GROVE__V1__REFERENCE_TRANSACTION_HOOK_REQUEST__STATE__PREPARED;
	SHA256((const unsigned char *)in->buf, in->len, vote);
	req.payload = payload;
	req.vote.data = vote;
	req.vote.len = sizeof(vote);
	ret = rpc_client_new(&cl, getenv("GROVE_HOOK_ADDRESS"), getenv("GROVE_SECRET"));
	if (!ret)
		ret = rpc_unary(cl, "/grove.v1.HookService/ReferenceTransactionHook", &req.base,
				&grove__v1__reference_transaction_hook_response__descriptor, (ProtobufCMessage **)&resp,
				TXN_VOTE_TIMEOUT_MS + 5000);
	rpc_client_free(cl);
	if (ret) {
		fprintf(stderr, "error: grove: the ref update vote failed, so no ref was updated: %s; "
			"push again\n", error_msg());
		return 1;
	}
	ret = resp->commit ? 0 : 1;
	if (!resp->commit)
		fprintf(stderr, "error: grove: ref update not committed: %s\n", resp->message);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ret;
}

int hook_main(const char *name, int argc, char **argv)
{
	Grove__V1__HookPayload *payload = NULL;
	struct strbuf in;
	const char *enc = getenv(HOOK_PAYLOAD_ENV);
	int code = 0;

	if (!name || !hook_is_hook_name(name)) {
		fprintf(stderr, "usage: grove hook pre-receive|post-receive|reference-transaction STATE\n");
		return 2;
	}
	log_init("hook", LOG_WARN, 2);
	strbuf_init(&in, HOOK_STDIN_MAX);
	/* git waits for a hook to read its input: always take it all. */
	if (read_stdin(&in)) {
		fprintf(stderr, "error: grove: %s\n", error_msg());
		code = 1;
		goto out;
	}
	/* git run by hand on a repository (an operator's repair): nothing to ask. */
	if (!enc)
		goto out;
	if (hook_payload_decode(enc, strlen(enc), &payload)) {
		fprintf(stderr, "error: grove: bad hook payload: %s\n", error_msg());
		code = 1;
		goto out;
	}
	if (payload->correlation_id)
		log_set_correlation_id(payload->correlation_id);
	if (!strcmp(name, "reference-transaction")) {
		if (payload->transaction_address && *payload->transaction_address)
			code = transaction_hook(argc > 1 ? argv[1] : "", payload, &in);
		goto out;
	}
	/* The store says which hooks have someone to answer: on a secondary
	 * of a voted push only pre-receive, which votes there. */
	if (!active(name))
		goto out;
	code = receive_hook(name, payload, &in);
out:
	if (payload)
		protobuf_c_message_free_unpacked(&payload->base, NULL);
	strbuf_release(&in);
	return code;
}
