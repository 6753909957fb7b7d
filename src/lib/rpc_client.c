/* The gRPC client wrapper: see rpc.h. */
#include "lib/common.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/*
 * A channel and the calls made on it. A client's channel carries the TLS
 * files current when it was made; once they change (a certificate renewed,
 * a CA rotated, read on SIGHUP), the next call makes a new channel, and the
 * old one is destroyed when its last call ended: calls in flight finish on
 * the connection they started on, new ones present the new certificate.
 */
struct rpc_chan {
	grpc_channel *ch;
	unsigned tls_gen;         /* rpc_tls_generation() when made */
	int refs;                 /* the client's while current, and one per call; under the client's mu */
};

struct rpc_client {
	pthread_mutex_t mu;       /* cur, and every rpc_chan's refs */
	struct rpc_chan *cur;
	char *addr;
	char *secret;
	char *token;   /* fixed token, or NULL */
	bool wait_for_ready;
};

struct rpc_stream {
	struct rpc_client *cl;
	struct rpc_chan *chan;    /* the channel the call was made on (a reference) */
	grpc_call *call;
	grpc_completion_queue *cq;
	char *method;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	bool got_md;
	_Atomic size_t stdin_max;  /* what the server said it takes (RPC_STDIN_MAX_KEY); 0: not said */
	bool finished;
	bool half_closed;
	/* Distinct addresses: the pluck tags of the three kinds of operation. */
	char send_tag, recv_tag, status_tag;
};

/* A channel to addr with the TLS files current now; NULL if gRPC made none. */
static struct rpc_chan *chan_new(const char *addr)
{
	struct rpc_chan *c;
	grpc_channel_credentials *creds;
	grpc_arg args[9];
	grpc_channel_args cargs;
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_HTTP2_BDP_PROBE;
	args[0].value.integer = 0;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[1].value.integer = RPC_DEFAULT_MAX_MESSAGE;
	/* Each client has its own subchannel, so that a dead connection of one
	 * caller is not shared with another. */
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[2].value.integer = 1;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = GRPC_ARG_ENABLE_RETRIES;
	args[3].value.integer = 0;
	/* gRPC waits up to two minutes between reconnects by default: a store
	 * restarted after a crash would stay "down" that long. A second at most.
	 * (Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also takes it as the time
	 * a connection attempt may last, and 100 ms failed connections to a
	 * router busy with 8 pushes on 2 cores.) */
	args[4].type = GRPC_ARG_INTEGER;
	args[4].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
	args[4].value.integer = 100;
	args[5].type = GRPC_ARG_INTEGER;
	args[5].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	args[5].value.integer = 1000;
	/* Compressed answers are refused too, as rpc_server.c refuses compressed
	 * requests: gRPC core inflates a whole message before it checks the
	 * size, and no Grove server compresses. */
	args[6].type = GRPC_ARG_INTEGER;
	args[6].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
	args[6].value.integer = 1 << GRPC_COMPRESS_NONE;
	/* Without BDP probing a stream's window stays at 64 KiB: a store
	 * streaming a clone in 512 KiB messages would wait for a window update
	 * every 64 KiB. 512 KiB ahead and frames as large: what one stream may
	 * hold unread stays bounded. */
	args[7].type = GRPC_ARG_INTEGER;
	args[7].key = GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
	args[7].value.integer = 512 << 10;
	args[8].type = GRPC_ARG_INTEGER;
	args[8].key = GRPC_ARG_HTTP2_MAX_FRAME_SIZE;
	args[8].value.integer = 512 << 10;
	cargs.num_args = ARRAY_SIZE(args);
	cargs.args = args;
	c = xcalloc(1, sizeof(*c));
	/* The generation first: files changed meanwhile make the next call renew it. */
	c->tls_gen = rpc_tls_generation();
	creds = rpc_tls_channel_credentials(addr);
	c->ch = grpc_channel_create(addr, creds, &cargs);
	grpc_channel_credentials_release(creds);
	if (!c->ch) {
		free(c);
		return NULL;
	}
	c->refs = 1;
	return c;
}

/* Under cl->mu. */
static void chan_unref(struct rpc_chan *c)
{
	if (c && --c->refs == 0) {
		grpc_channel_destroy(c->ch);
		free(c);
	}
}

/* Under cl->mu: a new channel becomes the client's, for its next calls;
 * the old one goes once its calls ended (it keeps one reference each). */
static void client_renew(struct rpc_client *cl, const char *reason)
{
	struct rpc_chan *fresh = chan_new(cl->addr);
	if (!fresh)
		return;
	chan_unref(cl->cur);
	cl->cur = fresh;
	log_info("rpc.channel_renewed", "address=%s reason=%s", cl->addr, reason);
}

/* The channel for a new call, renewed first if the TLS files changed
 * since it was made (a reference: chan_unref it under cl->mu). */
static struct rpc_chan *client_chan(struct rpc_client *cl)
{
	struct rpc_chan *c;

	pthread_mutex_lock(&cl->mu);
	/* TCP only: a unix socket never speaks TLS (rpc_tls.c). */
	if (cl->cur->tls_gen != rpc_tls_generation() && !rpc_addr_is_unix(cl->addr))
		client_renew(cl, "new TLS files");
	c = cl->cur;
	c->refs++;
	pthread_mutex_unlock(&cl->mu);
	return c;
}

int rpc_client_new(struct rpc_client **out, const char *addr, const char *secret)
{
	struct rpc_client *cl;

	*out = NULL;
	if (!addr || !*addr)
		return error_set(GROVE_EINVAL, "no server address given");
	if (!secret || !*secret)
		return error_set(GROVE_EINVAL, "no shared secret given for %s", addr);
	rpc_global_init();
	cl = xcalloc(1, sizeof(*cl));
	pthread_mutex_init(&cl->mu, NULL);
	cl->addr = xstrdup(addr);
	cl->secret = xstrdup(secret);
	if (!(cl->cur = chan_new(addr))) {
		rpc_client_free(cl);
		return error_set(GROVE_EINVAL, "cannot create a channel to %s", addr);
	}
	*out = cl;
	return 0;
}

void rpc_client_free(struct rpc_client *cl)
{
	if (!cl)
		return;
	/* Its calls ended (a stream must not outlive its client): this was the last reference. */
	chan_unref(cl->cur);
	pthread_mutex_destroy(&cl->mu);
	free(cl->addr);
	free(cl->token);
	if (cl->secret)
		explicit_bzero(cl->secret, strlen(cl->secret));
	free(cl->secret);
	free(cl);
}

void rpc_client_set_token(struct rpc_client *cl, const char *token)
{
	free(cl->token);
	cl->token = token ? xstrdup(token) : NULL;
}

void rpc_client_set_wait_for_ready(struct rpc_client *cl, bool on)
{
	cl->wait_for_ready = on;
}

const char *rpc_client_address(const struct rpc_client *cl)
{
	return cl->addr;
}

static bool pluck(struct rpc_stream *st, void *tag)
{
	grpc_event ev = grpc_completion_queue_pluck(st->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int rpc_stream_open(struct rpc_client *cl, const char *method, int64_t timeout_ms, struct rpc_stream **out)
{
	return rpc_stream_open_md(cl, method, timeout_ms, NULL, 0, out);
}

#define RPC_MD_EXTRA_MAX 4

int rpc_stream_open_md(struct rpc_client *cl, const char *method, int64_t timeout_ms, const struct rpc_md *extra,
		       size_t nextra, struct rpc_stream **out)
{
	struct rpc_stream *st;
	gpr_timespec deadline;
	grpc_slice mslice;
	grpc_metadata md[2 + RPC_MD_EXTRA_MAX];
	size_t nmd = 0;
	grpc_op op = { 0 };
	char token[AUTH_TOKEN_MAX];
	struct timespec ts;
	const char *corr = log_correlation_id();

	*out = NULL;
	if (nextra > RPC_MD_EXTRA_MAX)
		return error_set(GROVE_EINTERNAL, "%s: more than %d metadata entries", method, RPC_MD_EXTRA_MAX);
	st = xcalloc(1, sizeof(*st));
	st->cl = cl;
	st->method = xstrdup(method);
	st->cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_metadata_array_init(&st->init_md);
	grpc_metadata_array_init(&st->trail_md);
	st->details = grpc_empty_slice();
	if (timeout_ms > 0)
		deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	else
		deadline = gpr_inf_future(GPR_CLOCK_REALTIME);
	mslice = grpc_slice_from_copied_string(method);
	st->chan = client_chan(cl);
	st->call = grpc_channel_create_call(st->chan->ch, NULL, GRPC_PROPAGATE_DEFAULTS, st->cq, mslice, NULL, deadline, NULL);
	grpc_slice_unref(mslice);
	if (!st->call) {
		rpc_stream_free(st);
		return error_set(GROVE_EINTERNAL, "cannot create a call to %s", method);
	}

	clock_gettime(CLOCK_REALTIME, &ts);
	if (cl->token)
		strlcpy_(token, cl->token, sizeof(token));
	else
		auth_token_make(cl->secret, method, ts.tv_sec, token);
	memset(md, 0, sizeof(md));
	md[nmd].key = grpc_slice_from_static_string(AUTH_METADATA_KEY);
	md[nmd++].value = grpc_slice_from_copied_string(token);
	if (corr[0]) {
		md[nmd].key = grpc_slice_from_static_string(RPC_CORRELATION_KEY);
		md[nmd++].value = grpc_slice_from_copied_string(corr);
	}
	for (size_t i = 0; i < nextra; i++) {
		md[nmd].key = grpc_slice_from_copied_string(extra[i].key);
		md[nmd++].value = grpc_slice_from_copied_string(extra[i].value);
	}
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	if (cl->wait_for_ready)
		op.flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	op.data.send_initial_metadata.count = nmd;
	op.data.send_initial_metadata.metadata = md;
	grpc_call_error e = grpc_call_start_batch(st->call, &op, 1, &st->send_tag, NULL);
	bool ok = e == GRPC_CALL_OK && pluck(st, &st->send_tag);
	for (size_t i = 0; i < nmd; i++) {
		grpc_slice_unref(md[i].key);
		grpc_slice_unref(md[i].value);
	}
	*out = st;
	if (!ok)
		/* The status will say why (e.g. UNAVAILABLE); finish reports it. */
		return 0;
	return 0;
}

int rpc_stream_send_bb(struct rpc_stream *st, grpc_byte_buffer *bb)
{
	grpc_op op = { 0 };
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	grpc_call_error e = grpc_call_start_batch(st->call, &op, 1, &st->send_tag, NULL);
	bool ok = e == GRPC_CALL_OK && pluck(st, &st->send_tag);
	if (!ok)
		return error_set(GROVE_ECANCELLED, "%s: the call ended before the message was sent", st->method);
	return 0;
}

static int send_owned(struct rpc_stream *st, grpc_byte_buffer *bb)
{
	int ret = rpc_stream_send_bb(st, bb);
	grpc_byte_buffer_destroy(bb);
	return ret;
}

int rpc_stream_send(struct rpc_stream *st, const ProtobufCMessage *m)
{
	return send_owned(st, rpc_pack(m));
}

int rpc_stream_send_raw(struct rpc_stream *st, const void *data, size_t len)
{
	return send_owned(st, rpc_bb_from(data, len));
}

int rpc_stream_close_send(struct rpc_stream *st)
{
	grpc_op op = { 0 };
	if (st->half_closed)
		return 0;
	st->half_closed = true;
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	grpc_call_error e = grpc_call_start_batch(st->call, &op, 1, &st->send_tag, NULL);
	if (e != GRPC_CALL_OK || !pluck(st, &st->send_tag))
		return error_set(GROVE_ECANCELLED, "%s: the call ended before it was half-closed", st->method);
	return 0;
}

/* The server's first answer came with its metadata: what it said it takes
 * of stdin a message, within what this release sends. */
static void stream_note_stdin_max(struct rpc_stream *st)
{
	for (size_t i = 0; i < st->init_md.count; i++) {
		const grpc_metadata *m = &st->init_md.metadata[i];
		char v[24];
		size_t len = GRPC_SLICE_LENGTH(m->value);
		const char *p = (const char *)GRPC_SLICE_START_PTR(m->value);
		if (grpc_slice_str_cmp(m->key, RPC_STDIN_MAX_KEY) || !len || len >= sizeof(v) || *p < '0' || *p > '9')
			continue;
		memcpy(v, p, len);
		v[len] = '\0';
		char *end;
		unsigned long long said = strtoull(v, &end, 10);
		if (*end || said < RPC_CHUNK_MAX)
			continue;
		atomic_store(&st->stdin_max, (size_t)MIN(said, (unsigned long long)RPC_STDIN_MAX));
	}
}

int rpc_stream_recv_bb(struct rpc_stream *st, grpc_byte_buffer **out)
{
	grpc_op ops[2];
	size_t n = 0;
	grpc_byte_buffer *bb = NULL;

	*out = NULL;
	memset(ops, 0, sizeof(ops));
	if (!st->got_md) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
		st->got_md = true;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &bb;
	grpc_call_error e = grpc_call_start_batch(st->call, ops, n, &st->recv_tag, NULL);
	if (e != GRPC_CALL_OK)
		return error_set(GROVE_EINTERNAL, "%s: cannot start a receive (error %d)", st->method, (int)e);
	if (!pluck(st, &st->recv_tag) || !bb) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		return 0;
	}
	if (n == 2)
		stream_note_stdin_max(st);
	*out = bb;
	return 1;
}

size_t rpc_stream_stdin_max(const struct rpc_stream *st)
{
	size_t said = atomic_load(&st->stdin_max);
	return said ? said : RPC_CHUNK_MAX;
}

int rpc_stream_recv(struct rpc_stream *st, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	grpc_byte_buffer *bb = NULL;
	int ret = rpc_stream_recv_bb(st, &bb);

	*out = NULL;
	if (ret <= 0)
		return ret;
	ret = rpc_unpack(bb, d, out);
	grpc_byte_buffer_destroy(bb);
	return ret ? ret : 1;
}

/* The server said it is being replaced (RPC_LEAVING_KEY, rpc.h): the next
 * call makes a new channel, so a new connection, to whichever process
 * serves the address now; the old channel goes once its calls ended, and
 * with it the connection, closed from this side. */
static void stream_note_leaving(struct rpc_stream *st)
{
	struct rpc_client *cl = st->cl;
	bool leaving = false;

	for (size_t i = 0; i < st->trail_md.count && !leaving; i++)
		leaving = !grpc_slice_str_cmp(st->trail_md.metadata[i].key, RPC_LEAVING_KEY);
	if (!leaving)
		return;
	pthread_mutex_lock(&cl->mu);
	/* Once per channel: the calls that end on it after the first say so too. */
	if (cl->cur == st->chan)
		client_renew(cl, "the server is being replaced");
	pthread_mutex_unlock(&cl->mu);
}

int rpc_stream_finish(struct rpc_stream *st)
{
	if (!st->finished) {
		grpc_op op = { 0 };
		op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
		op.data.recv_status_on_client.trailing_metadata = &st->trail_md;
		op.data.recv_status_on_client.status = &st->status;
		op.data.recv_status_on_client.status_details = &st->details;
		grpc_call_error e = grpc_call_start_batch(st->call, &op, 1, &st->status_tag, NULL);
		if (e != GRPC_CALL_OK || !pluck(st, &st->status_tag)) {
			st->status = GRPC_STATUS_INTERNAL;
			return error_set(GROVE_EINTERNAL, "%s: cannot get the call's status", st->method);
		}
		st->finished = true;
		stream_note_leaving(st);
	}
	if (st->status == GRPC_STATUS_OK)
		return 0;
	return error_set(rpc_err_from_status(st->status), "%.*s", (int)GRPC_SLICE_LENGTH(st->details),
			 (const char *)GRPC_SLICE_START_PTR(st->details));
}

grpc_status_code rpc_stream_status(const struct rpc_stream *st)
{
	return st->status;
}

void rpc_stream_details(const struct rpc_stream *st, char *buf, size_t size)
{
	size_t n = MIN(GRPC_SLICE_LENGTH(st->details), size - 1);
	memcpy(buf, GRPC_SLICE_START_PTR(st->details), n);
	buf[n] = '\0';
}

void rpc_stream_cancel(struct rpc_stream *st)
{
	if (st && st->call)
		grpc_call_cancel(st->call, NULL);
}

void rpc_stream_free(struct rpc_stream *st)
{
	if (!st)
		return;
	if (st->call) {
		if (!st->finished) {
			/* Ends the call and collects its status, so the queue drains. */
			grpc_call_cancel(st->call, NULL);
			rpc_stream_finish(st);
		}
		grpc_call_unref(st->call);
	}
	if (st->chan) {
		pthread_mutex_lock(&st->cl->mu);
		chan_unref(st->chan);
		pthread_mutex_unlock(&st->cl->mu);
	}
	grpc_metadata_array_destroy(&st->init_md);
	grpc_metadata_array_destroy(&st->trail_md);
	grpc_slice_unref(st->details);
	if (st->cq) {
		grpc_completion_queue_shutdown(st->cq);
		while (grpc_completion_queue_pluck(st->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(st->cq);
	}
	free(st->method);
	free(st);
}

int rpc_unary(struct rpc_client *cl, const char *method, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, int64_t timeout_ms)
{
	struct rpc_stream *st = NULL;
	int ret, r;

	*resp = NULL;
	ret = rpc_stream_open(cl, method, timeout_ms, &st);
	if (ret)
		goto out;
	rpc_stream_send(st, req);
	rpc_stream_close_send(st);
	r = rpc_stream_recv(st, resp_desc, resp);
	ret = rpc_stream_finish(st);
	if (!ret && r < 0)
		ret = r;
	if (!ret && !*resp)
		ret = error_set(GROVE_EPROTO, "%s: the server sent no response", method);
out:
	if (ret && *resp) {
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
	}
	if (ret && error_msg()[0] == '\0')
		error_set(ret, "%s failed", method);
	rpc_stream_free(st);
	return ret;
}
