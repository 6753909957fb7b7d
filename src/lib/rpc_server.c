/* The gRPC server wrapper: see rpc.h for the threading model. */
#include "lib/common.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "grpc/health/v1/health.pb-c.h"

#include <dirent.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define HEALTH_CHECK "/grpc.health.v1.Health/Check"

enum tag_type { TAG_NEW_CALL = 1, TAG_NEW_UNKNOWN, TAG_UNKNOWN_DONE, TAG_SHUTDOWN };

struct rpc_handler {
	char *method;
	char **secrets;        /* also accepted for this method (rpc_server_allow_secret) */
	size_t nsecrets;
	rpc_handler_fn *fn;
	void *data;
	void *registered;      /* gRPC's handle for the method */
	struct rpc_handler *next;
};

/* A request for one more call of a registered method, posted to gRPC. */
struct pending {
	enum tag_type tag;
	struct rpc_server *s;
	struct rpc_handler *h;  /* NULL: the catch-all for unknown methods */
	grpc_call *call;
	grpc_completion_queue *cq;  /* the call's own (registered methods), else the server's */
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details;
};

/* One operation of a call; its address is the tag plucked from the call's queue. */
struct op {
	bool done;
	bool ok;
};

struct rpc_call {
	struct rpc_server *s;
	struct rpc_handler *h;
	grpc_call *call;
	grpc_completion_queue *cq;  /* this call's completions, plucked by whoever waits */
	grpc_metadata_array md;
	pthread_mutex_t mu;         /* close_op, which any thread may look at */
	struct op recv_op, send_op, status_op, close_op;
	grpc_byte_buffer *recv_buf;
	int cancelled;          /* written by gRPC when close_op completes */
	bool md_sent;
	bool finished;
	grpc_status_code status;
	int64_t start_ms;
	char corr[65];
};

struct rpc_server {
	struct rpc_server_opts opts;
	char *secret;
	grpc_server *server;
	grpc_completion_queue *cq;
	struct rpc_handler *handlers;
	pthread_t *threads;
	int nthreads;
	bool started;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int inflight;
	bool draining;
	bool leaving;                     /* rpc_server_leave: trailers say so */
	bool shutdown_done;
	enum tag_type shutdown_tag;
	struct health_service {
		char *name;
		rpc_health_fn *fn;
		void *data;
	} health[4];
	size_t nhealth;
	struct rpc_tls_listener **tls;    /* one per TLS listener */
	size_t ntls;
	struct unix_link {                /* a unix address, served at PATH.PID */
		char *path, *own, *own_addr;
	} *links;
	size_t nlinks;
	struct bound {                    /* what a client's connection to us is bound to */
		char *path;               /* a unix socket's, or NULL */
		int port;                 /* a TCP listener's */
	} *bound;
	size_t nbound;
};

static int post_request(struct rpc_server *s, struct rpc_handler *h);

/* rpc_server_listen_beside: this process's TCP listeners share their port. */
static bool listen_beside;

void rpc_server_listen_beside(void)
{
	listen_beside = true;
}

/* ---- operations of one call ---- */

static int op_start(struct rpc_call *c, struct op *o, grpc_op *ops, size_t n)
{
	o->done = false;
	o->ok = false;
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, o, NULL);
	if (e != GRPC_CALL_OK)
		return error_set(GROVE_EINTERNAL, "grpc_call_start_batch: error %d", (int)e);
	return 0;
}

/*
 * The waiting thread takes its completion from the call's queue itself: when
 * the operation completed inside grpc_call_start_batch (a send usually does)
 * it does not sleep at all, and otherwise it polls for it, so no pool thread
 * has to wake it. Each of recv_op, send_op and status_op is waited on by one
 * thread at a time (gRPC allows one of each outstanding).
 */
static bool op_wait(struct rpc_call *c, struct op *o)
{
	if (!o->done) {
		grpc_event ev = grpc_completion_queue_pluck(c->cq, o, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		o->ok = ev.type == GRPC_OP_COMPLETE && ev.success;
		o->done = true;
	}
	return o->ok;
}

/* Whether the call is closed (the client half-closed and the status went, or
 * it cancelled), waiting until deadline; safe from any thread. */
static bool call_closed(struct rpc_call *c, gpr_timespec deadline)
{
	pthread_mutex_lock(&c->mu);
	if (!c->close_op.done) {
		grpc_event ev = grpc_completion_queue_pluck(c->cq, &c->close_op, deadline, NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			c->close_op.ok = ev.success;
			c->close_op.done = true;
		}
	}
	bool done = c->close_op.done;
	pthread_mutex_unlock(&c->mu);
	return done;
}

bool rpc_call_cancelled(struct rpc_call *c)
{
	return call_closed(c, gpr_inf_past(GPR_CLOCK_MONOTONIC)) && c->cancelled;
}

bool rpc_call_draining(struct rpc_call *c)
{
	pthread_mutex_lock(&c->s->mu);
	bool draining = c->s->draining;
	pthread_mutex_unlock(&c->s->mu);
	return draining;
}

const char *rpc_call_method(const struct rpc_call *c)
{
	return c->h ? c->h->method : "?";
}

int rpc_call_recv_bb(struct rpc_call *c, grpc_byte_buffer **out)
{
	grpc_op op = { 0 };
	int ret;
	*out = NULL;
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_buf;
	c->recv_buf = NULL;
	ret = op_start(c, &c->recv_op, &op, 1);
	if (ret)
		return ret;
	if (!op_wait(c, &c->recv_op) || rpc_call_cancelled(c)) {
		if (c->recv_buf)
			grpc_byte_buffer_destroy(c->recv_buf);
		c->recv_buf = NULL;
		return error_set(GROVE_ECANCELLED, "the client cancelled the call");
	}
	*out = c->recv_buf;
	c->recv_buf = NULL;
	return *out ? 1 : 0;
}

int rpc_call_recv(struct rpc_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	grpc_byte_buffer *bb = NULL;
	int ret = rpc_call_recv_bb(c, &bb);
	*out = NULL;
	if (ret <= 0)
		return ret;
	ret = rpc_unpack(bb, d, out);
	grpc_byte_buffer_destroy(bb);
	return ret ? ret : 1;
}

int rpc_call_send_bb(struct rpc_call *c, grpc_byte_buffer *bb)
{
	grpc_op ops[2];
	size_t n = 0;
	int ret;
	char value[24];
	grpc_metadata stdin_max = { .key = grpc_slice_from_static_string(RPC_STDIN_MAX_KEY) };
	memset(ops, 0, sizeof(ops));
	if (!c->md_sent) {
		if (c->s->opts.stdin_max) {
			snprintf(value, sizeof(value), "%d", RPC_STDIN_MAX);
			stdin_max.value = grpc_slice_from_static_string(value);
			ops[n].data.send_initial_metadata.count = 1;
			ops[n].data.send_initial_metadata.metadata = &stdin_max;
		}
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = bb;
	ret = op_start(c, &c->send_op, ops, n);
	if (!ret && !op_wait(c, &c->send_op))
		ret = error_set(GROVE_ECANCELLED, "the client went away");
	return ret;
}

int rpc_call_send(struct rpc_call *c, const ProtobufCMessage *m)
{
	grpc_byte_buffer *bb = rpc_pack(m);
	int ret = rpc_call_send_bb(c, bb);
	grpc_byte_buffer_destroy(bb);
	return ret;
}

int rpc_call_recv_one(struct rpc_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	int ret = rpc_call_recv(c, d, out);
	if (ret == 0)
		return error_set(GROVE_EINVAL, "no request message was sent");
	return ret < 0 ? ret : 0;
}

void rpc_call_reply(struct rpc_call *c, int err, const ProtobufCMessage *resp)
{
	if (!err)
		err = rpc_call_send(c, resp);
	if (err)
		rpc_call_fail(c, err);
	else
		rpc_call_finish(c, 0, NULL);
}

void rpc_call_finish_status(struct rpc_call *c, grpc_status_code code, const char *msg)
{
	grpc_op ops[2];
	size_t n = 0;
	grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
	grpc_metadata leaving = { .key = grpc_slice_from_static_string(RPC_LEAVING_KEY),
				  .value = grpc_slice_from_static_string("1") };

	if (c->finished) {
		log_error("rpc.double_finish", "method=%s", rpc_call_method(c));
		grpc_slice_unref(details);
		return;
	}
	c->finished = true;
	c->status = code;
	memset(ops, 0, sizeof(ops));
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = &details;
	pthread_mutex_lock(&c->s->mu);
	if (c->s->leaving) {
		ops[n].data.send_status_from_server.trailing_metadata_count = 1;
		ops[n].data.send_status_from_server.trailing_metadata = &leaving;
	}
	pthread_mutex_unlock(&c->s->mu);
	n++;
	if (!op_start(c, &c->status_op, ops, n))
		op_wait(c, &c->status_op);
	grpc_slice_unref(details);
	if (code != GRPC_STATUS_OK)
		log_info("rpc.error", "method=%s code=%s message=%s", rpc_call_method(c),
			 rpc_status_name(code), msg ? msg : "");
}

void rpc_call_finish(struct rpc_call *c, int err, const char *fmt, ...)
{
	char msg[2048] = "";
	va_list ap;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	rpc_call_finish_status(c, rpc_status_from_err(err), msg);
}

void rpc_call_fail(struct rpc_call *c, int err)
{
	rpc_call_finish(c, err, "%s", error_msg());
}

void rpc_call_done(struct rpc_call *c, int err)
{
	if (err)
		rpc_call_fail(c, err);
	else
		rpc_call_finish(c, 0, NULL);
}

/* ---- built-in handlers ---- */

static void health_check(struct rpc_call *c, void *data)
{
	struct rpc_server *s = data;
	Grpc__Health__V1__HealthCheckRequest *req = NULL;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	const struct health_service *svc = NULL;
	bool serving;
	int ret = rpc_call_recv(c, &grpc__health__v1__health_check_request__descriptor, (ProtobufCMessage **)&req);
	if (ret < 0) {
		rpc_call_fail(c, ret);
		return;
	}
	if (req && req->service && *req->service) {
		for (size_t i = 0; i < s->nhealth && !svc; i++)
			if (!strcmp(s->health[i].name, req->service))
				svc = &s->health[i];
		if (!svc) {
			ret = error_set(GROVE_ENOTFOUND, "no health service \"%.64s\" here", req->service);
			FREE_MSG(req);
			rpc_call_fail(c, ret);
			return;
		}
	}
	FREE_MSG(req);
	pthread_mutex_lock(&s->mu);
	serving = !s->draining;
	pthread_mutex_unlock(&s->mu);
	if (serving && svc)
		serving = svc->fn(svc->data);
	resp.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	rpc_call_reply(c, 0, &resp.base);
}

int rpc_server_health_service(struct rpc_server *s, const char *name, rpc_health_fn *fn, void *data)
{
	if (s->nhealth >= ARRAY_SIZE(s->health))
		return error_set(GROVE_EINTERNAL, "too many health services");
	s->health[s->nhealth].name = xstrdup(name);
	s->health[s->nhealth].fn = fn;
	s->health[s->nhealth++].data = data;
	return 0;
}

/* ---- the life of one call, on its own thread ---- */

static const char *md_get(const grpc_metadata_array *md, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;
		if (GRPC_SLICE_LENGTH(*k) == klen && !memcmp(GRPC_SLICE_START_PTR(*k), key, klen)) {
			*len = GRPC_SLICE_LENGTH(md->metadata[i].value);
			return (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
		}
	}
	*len = 0;
	return NULL;
}

const char *rpc_call_metadata(const struct rpc_call *c, const char *key, size_t *len)
{
	return md_get(&c->md, key, len);
}

/* Whether the call proves the server's secret or one allowed for its method. */
static int call_authenticate(struct rpc_call *c)
{
	struct timespec ts;
	size_t len;
	const char *v = md_get(&c->md, AUTH_METADATA_KEY, &len);
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	ret = auth_token_check(c->s->secret, c->h->method, v, len, ts.tv_sec);
	for (size_t i = 0; ret && i < c->h->nsecrets; i++)
		if (!auth_token_check(c->h->secrets[i], c->h->method, v, len, ts.tv_sec))
			ret = 0;
	return ret;
}

/* A call's own queue, once the call is unreferenced (every operation was waited for). */
static void cq_destroy(grpc_completion_queue *cq)
{
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

static void call_free(struct rpc_call *c)
{
	grpc_metadata_array_destroy(&c->md);
	if (c->call)
		grpc_call_unref(c->call);
	cq_destroy(c->cq);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void *call_main(void *arg)
{
	struct rpc_call *c = arg;
	struct rpc_server *s = c->s;
	grpc_op close_op = { 0 };
	size_t len;
	const char *v;
	bool over_limit, stopping;

	v = md_get(&c->md, RPC_CORRELATION_KEY, &len);
	if (v && len > 0 && len < sizeof(c->corr)) {
		memcpy(c->corr, v, len);
		c->corr[len] = '\0';
		/* Only printable ids go into logs. */
		for (size_t i = 0; i < len; i++)
			if (c->corr[i] <= 0x20 || c->corr[i] >= 0x7f)
				c->corr[i] = '_';
	} else {
		log_new_correlation_id(c->corr);
	}
	log_set_correlation_id(c->corr);

	/* Posted first, so a client cancel is seen whatever the handler does. */
	close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	close_op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (op_start(c, &c->close_op, &close_op, 1)) {
		log_error("rpc.start_failed", "method=%s", rpc_call_method(c));
		goto out;
	}

	pthread_mutex_lock(&s->mu);
	over_limit = s->inflight > s->opts.max_calls;
	stopping = s->draining;
	pthread_mutex_unlock(&s->mu);

	if (strcmp(c->h->method, HEALTH_CHECK)) {
		if (call_authenticate(c)) {
			log_warn("rpc.unauthenticated", "method=%s reason=%s", c->h->method, error_msg());
			rpc_call_finish(c, GROVE_EAUTH, "%s", error_msg());
			goto done;
		}
	}
	if (over_limit) {
		rpc_call_finish(c, GROVE_ETOOBIG, "server busy: more than %d calls in flight; retry later",
				s->opts.max_calls);
		goto done;
	}
	/* Draining (rpc_server_drain): health checks say NOT_SERVING. */
	if (stopping && strcmp(c->h->method, HEALTH_CHECK)) {
		rpc_call_finish(c, GROVE_EUNAVAIL, "this %s is stopping (a restart or an upgrade): retry in a moment",
				s->opts.role ? s->opts.role : "server");
		goto done;
	}
	error_clear();
	c->h->fn(c, c->h->data);
	if (!c->finished)
		rpc_call_finish(c, GROVE_EINTERNAL, "handler for %s ended without a status", c->h->method);
done:
	call_closed(c, gpr_inf_future(GPR_CLOCK_REALTIME));
	if (strcmp(c->h->method, HEALTH_CHECK))
		log_info("rpc.done", "method=%s code=%s cancelled=%b ms=%lld", c->h->method,
			 rpc_status_name(c->status), c->cancelled, (long long)(now_ms() - c->start_ms));
out:
	call_free(c);
	log_set_correlation_id(NULL);
	/* OpenSSL's state of this thread (its error queue, from the HMAC of the
	 * call's credentials) is freed now, not by a destructor after the
	 * thread ends: once inflight says 0 the process may exit, and a state
	 * caught half-freed then is a leak to LeakSanitizer (904 bytes, seen
	 * once in CI's sanitized run). */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&s->mu);
	s->inflight--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void start_call(struct pending *p)
{
	struct rpc_server *s = p->s;
	struct rpc_call *c = xcalloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t tid;

	c->s = s;
	c->h = p->h;
	c->call = p->call;
	c->cq = p->cq;
	c->md = p->md;
	c->start_ms = now_ms();
	pthread_mutex_init(&c->mu, NULL);

	pthread_mutex_lock(&s->mu);
	s->inflight++;
	pthread_mutex_unlock(&s->mu);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1 << 20);
	if (pthread_create(&tid, &attr, call_main, c)) {
		/* No thread: refuse the call from here, without blocking the pool. */
		log_error("rpc.no_thread", "method=%s", c->h->method);
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
					     "server cannot start a thread for this call", NULL);
		call_free(c);
		pthread_mutex_lock(&s->mu);
		s->inflight--;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_attr_destroy(&attr);
}

/* An unknown method: answered UNIMPLEMENTED from the pool, without a thread. */
static void reject_unknown(struct pending *p)
{
	grpc_op ops[3];
	char msg[512];
	static int ignored_cancelled;
	snprintf(msg, sizeof(msg), "unknown method %.*s: this server does not implement it",
		 (int)MIN(GRPC_SLICE_LENGTH(p->details.method), 300),
		 (const char *)GRPC_SLICE_START_PTR(p->details.method));
	grpc_slice details = grpc_slice_from_copied_string(msg);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
	ops[1].data.send_status_from_server.status_details = &details;
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &ignored_cancelled;
	p->tag = TAG_UNKNOWN_DONE;
	if (grpc_call_start_batch(p->call, ops, 3, p, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(p->call);
		grpc_metadata_array_destroy(&p->md);
		grpc_call_details_destroy(&p->details);
		free(p);
	}
	grpc_slice_unref(details);
}

static void *poller_main(void *arg)
{
	struct rpc_server *s = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		enum tag_type *tag = ev.tag;
		switch (*tag) {
		case TAG_NEW_CALL:
		case TAG_NEW_UNKNOWN: {
			struct pending *p = (struct pending *)tag;
			if (!ev.success) {
				/* The server is shutting down: nothing arrived. */
				if (p->cq != s->cq)
					cq_destroy(p->cq);
				grpc_metadata_array_destroy(&p->md);
				grpc_call_details_destroy(&p->details);
				free(p);
				break;
			}
			post_request(s, p->h);
			if (*tag == TAG_NEW_CALL) {
				start_call(p);
				grpc_call_details_destroy(&p->details);
				free(p);
			} else {
				reject_unknown(p);
			}
			break;
		}
		case TAG_UNKNOWN_DONE: {
			struct pending *p = (struct pending *)tag;
			grpc_call_unref(p->call);
			grpc_metadata_array_destroy(&p->md);
			grpc_call_details_destroy(&p->details);
			free(p);
			break;
		}
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&s->mu);
			s->shutdown_done = true;
			pthread_cond_broadcast(&s->cv);
			pthread_mutex_unlock(&s->mu);
			break;
		}
	}
	return NULL;
}

static int post_request(struct rpc_server *s, struct rpc_handler *h)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	grpc_call_error e;
	p->s = s;
	p->h = h;
	grpc_metadata_array_init(&p->md);
	grpc_call_details_init(&p->details);
	if (h) {
		/* The call's operations complete on a queue of its own, which its
		 * handler's threads pluck (op_wait); only its arrival is
		 * reported to the pool. */
		p->tag = TAG_NEW_CALL;
		p->cq = grpc_completion_queue_create_for_pluck(NULL);
		e = grpc_server_request_registered_call(s->server, h->registered, &p->call, &p->deadline,
							&p->md, NULL, p->cq, s->cq, p);
	} else {
		p->tag = TAG_NEW_UNKNOWN;
		p->cq = s->cq;
		e = grpc_server_request_call(s->server, &p->call, &p->details, &p->md, s->cq, s->cq, p);
	}
	if (e != GRPC_CALL_OK) {
		if (p->cq != s->cq)
			cq_destroy(p->cq);
		grpc_metadata_array_destroy(&p->md);
		grpc_call_details_destroy(&p->details);
		free(p);
		return error_set(GROVE_EINTERNAL, "cannot request calls: grpc error %d", (int)e);
	}
	return 0;
}

/* ---- the server's life cycle ---- */

int rpc_server_new(struct rpc_server **out, const struct rpc_server_opts *opts)
{
	struct rpc_server *s;
	grpc_arg args[5];
	grpc_channel_args cargs;

	*out = NULL;
	if (!opts->secret || strlen(opts->secret) < 16)
		return error_set(GROVE_EINVAL, "a shared secret of at least 16 bytes is required");
	rpc_global_init();
	s = xcalloc(1, sizeof(*s));
	s->opts = *opts;
	s->secret = xstrdup(opts->secret);
	s->opts.secret = s->secret;
	if (s->opts.threads <= 0)
		s->opts.threads = 2;
	if (s->opts.max_calls <= 0)
		s->opts.max_calls = 1024;
	if (!s->opts.max_message)
		s->opts.max_message = RPC_DEFAULT_MAX_MESSAGE;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);

	/* BDP probing grows each stream's window to ~17 MiB: memory we do not
	 * want per push. Port reuse would let a second daemon silently share a
	 * port with the first: only an upgrade's new process binds beside the
	 * old one (rpc_server_share_ports). */
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_HTTP2_BDP_PROBE;
	args[0].value.integer = 0;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
	args[1].value.integer = listen_beside;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[2].value.integer = (int)s->opts.max_message;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[3].value.integer = (int)s->opts.max_message;
	/* Compressed requests are refused when their headers arrive: gRPC
	 * core (1.51) inflates a whole gzip message before it compares the
	 * result with the receive limit, so ~1 MiB of gzip took 1.1 GB of the
	 * store's memory to answer "larger than max". No Grove part compresses
	 * (packs are compressed already), and the server announces identity
	 * only, so a well-behaved client never sends one. */
	args[4].type = GRPC_ARG_INTEGER;
	args[4].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
	args[4].value.integer = 1 << GRPC_COMPRESS_NONE;
	cargs.num_args = ARRAY_SIZE(args);
	cargs.args = args;
	s->server = grpc_server_create(&cargs, NULL);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(s->server, s->cq, NULL);
	rpc_server_handle(s, HEALTH_CHECK, health_check, s);
	*out = s;
	return 0;
}

int rpc_server_handle(struct rpc_server *s, const char *method, rpc_handler_fn *fn, void *data)
{
	struct rpc_handler *h;
	if (s->started)
		return error_set(GROVE_EINTERNAL, "handlers must be registered before the server starts");
	h = xcalloc(1, sizeof(*h));
	h->method = xstrdup(method);
	h->fn = fn;
	h->data = data;
	h->registered = grpc_server_register_method(s->server, method, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
	if (!h->registered) {
		free(h->method);
		free(h);
		return error_set(GROVE_EINTERNAL, "cannot register method %s", method);
	}
	h->next = s->handlers;
	s->handlers = h;
	return 0;
}

int rpc_server_allow_secret(struct rpc_server *s, const char *method, const char *secret)
{
	for (struct rpc_handler *h = s->handlers; h; h = h->next) {
		if (strcmp(h->method, method))
			continue;
		if (!secret || strlen(secret) < 16)
			return error_set(GROVE_EINVAL, "a shared secret of at least 16 bytes is required");
		h->secrets = xrealloc(h->secrets, (h->nsecrets + 1) * sizeof(*h->secrets));
		h->secrets[h->nsecrets++] = xstrdup(secret);
		return 0;
	}
	return error_set(GROVE_EINTERNAL, "method %s has no handler to allow a secret for", method);
}

/* Sockets PATH.PID of processes gone (a kill -9) next to path: removed. */
static void unix_sweep(const char *path)
{
	char dir[4096], pat[4096];
	const char *slash = strrchr(path, '/');
	DIR *d;
	struct dirent *e;

	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	snprintf(pat, sizeof(pat), "%s.", slash + 1);
	if (!(d = opendir(dir[0] ? dir : "/")))
		return;
	while ((e = readdir(d))) {
		char *end;
		long pid;
		if (strncmp(e->d_name, pat, strlen(pat)))
			continue;
		pid = strtol(e->d_name + strlen(pat), &end, 10);
		if (*end || pid <= 0 || !(kill((pid_t)pid, 0) && errno == ESRCH))
			continue;
		char stale[8192];
		snprintf(stale, sizeof(stale), "%s/%s", dir, e->d_name);
		unlink(stale);
	}
	closedir(d);
}

/*
 * A unix address is served at PATH.PID, and PATH becomes a symlink to it
 * once the server serves (rpc_server_start). Why: an upgrade's new process
 * (lib/daemon.h) takes PATH over by swapping the link, while this one
 * drains on its own socket; gRPC removes the socket it bound when it
 * stops, which must not be the new process's. "" when PATH.PID would not
 * fit a unix socket's name: then PATH itself.
 */
static void unix_own_path(const char *path, char *own, size_t size)
{
	struct sockaddr_un sa;
	int n = snprintf(own, size, "%s.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sa.sun_path))
		own[0] = '\0';
}

int rpc_server_listen(struct rpc_server *s, const char *addr)
{
	return rpc_server_listen_port(s, addr, NULL);
}

int rpc_server_listen_port(struct rpc_server *s, const char *addr, int *port_out)
{
	struct rpc_tls_listener *l;
	const char *path = NULL;
	char own[4096] = "", *own_addr = NULL;
	const char *bind_addr = addr;

	if (skip_prefix(addr, "unix:", &path)) {
		unix_sweep(path);
		unix_own_path(path, own, sizeof(own));
		if (own[0])
			bind_addr = own_addr = xasprintf("unix:%s", own);
	}
	grpc_server_credentials *creds = rpc_tls_server_credentials(bind_addr, &l);
	int port = grpc_server_add_http2_port(s->server, bind_addr, creds);
	grpc_server_credentials_release(creds);
	if (port > 0) {
		s->bound = xrealloc(s->bound, (s->nbound + 1) * sizeof(*s->bound));
		s->bound[s->nbound].path = path ? xstrdup(own[0] ? own : path) : NULL;
		s->bound[s->nbound++].port = path ? 0 : port;
	}
	if (port > 0 && own[0]) {
		s->links = xrealloc(s->links, (s->nlinks + 1) * sizeof(*s->links));
		s->links[s->nlinks].path = xstrdup(path);
		s->links[s->nlinks].own_addr = own_addr;
		s->links[s->nlinks++].own = xstrdup(own);
	} else {
		free(own_addr);
	}
	if (l) {
		/* The fetcher's state lives as long as the server. */
		s->tls = xrealloc(s->tls, (s->ntls + 1) * sizeof(*s->tls));
		s->tls[s->ntls++] = l;
	}
	if (port <= 0)
		return error_set(GROVE_EUNAVAIL, "cannot listen on %s (address in use, or not allowed?)", addr);
	if (port_out)
		*port_out = port;
	return 0;
}

/* PATH -> PATH.PID, swapped in at once (rename): a client finds a socket
 * that serves at PATH at every moment, the old process's or this one's. */
static int unix_links_make(struct rpc_server *s)
{
	for (size_t i = 0; i < s->nlinks; i++) {
		struct unix_link *k = &s->links[i];
		const char *base = strrchr(k->own, '/');
		char tmp[4200];
		snprintf(tmp, sizeof(tmp), "%s.link%d", k->path, (int)getpid());
		unlink(tmp);
		if (symlink(base ? base + 1 : k->own, tmp) || rename(tmp, k->path)) {
			int e = errno;
			unlink(tmp);
			return error_set(GROVE_EIO, "cannot point %s at %s: %s", k->path, k->own, strerror(e));
		}
	}
	return 0;
}

const char *rpc_server_own_address(struct rpc_server *s, const char *addr)
{
	const char *path;
	if (!skip_prefix(addr, "unix:", &path))
		return addr;
	for (size_t i = 0; i < s->nlinks; i++)
		if (!strcmp(s->links[i].path, path))
			return s->links[i].own_addr;
	return addr;
}

/* A clean stop: PATH goes with the socket it names, unless an upgrade's
 * new process has taken it over. */
static void unix_links_free(struct rpc_server *s)
{
	for (size_t i = 0; i < s->nlinks; i++) {
		struct unix_link *k = &s->links[i];
		const char *base = strrchr(k->own, '/');
		char target[4096];
		ssize_t n = readlink(k->path, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = '\0', !strcmp(target, base ? base + 1 : k->own)))
			unlink(k->path);
		unlink(k->own);
		free(k->path);
		free(k->own);
		free(k->own_addr);
	}
	free(s->links);
}

int rpc_server_start(struct rpc_server *s)
{
	grpc_server_start(s->server);
	s->started = true;
	if (unix_links_make(s))
		return GROVE_EIO;
	for (struct rpc_handler *h = s->handlers; h; h = h->next)
		if (post_request(s, h))
			return GROVE_EINTERNAL;
	if (post_request(s, NULL))
		return GROVE_EINTERNAL;
	s->nthreads = s->opts.threads;
	s->threads = xcalloc((size_t)s->nthreads, sizeof(*s->threads));
	for (int i = 0; i < s->nthreads; i++)
		if (pthread_create(&s->threads[i], NULL, poller_main, s))
			return error_set(GROVE_EINTERNAL, "cannot start poller threads");
	return 0;
}

int rpc_server_inflight(struct rpc_server *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->inflight;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void wait_inflight(struct rpc_server *s, int64_t deadline_ms)
{
	pthread_mutex_lock(&s->mu);
	while (s->inflight > 0) {
		if (deadline_ms) {
			int64_t left = deadline_ms - now_ms();
			if (left <= 0)
				break;
			struct timespec ts;
			deadline_after_ms(&ts, CLOCK_REALTIME, left);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		} else {
			pthread_cond_wait(&s->cv, &s->mu);
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void rpc_server_leave(struct rpc_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->leaving = true;
	pthread_mutex_unlock(&s->mu);
}

/* Whether socket fd is bound where s listens, and is a listener of s
 * (listener) or a client's connection to it (an accepted unix socket
 * carries its listener's path; a TCP one, its port). */
static bool server_socket(const struct rpc_server *s, int fd, bool listener)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int listening = 0;
	socklen_t vlen = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &vlen) || !listening != !listener ||
	    getsockname(fd, (struct sockaddr *)&ss, &len))
		return false;
	for (size_t i = 0; i < s->nbound; i++) {
		const struct bound *b = &s->bound[i];
		if (ss.ss_family == AF_UNIX && b->path) {
			const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
			size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
			if (n > 0 && !strncmp(un->sun_path, b->path, n) && strlen(b->path) <= n)
				return true;
		} else if (ss.ss_family == AF_INET && !b->path) {
			if (ntohs(((const struct sockaddr_in *)&ss)->sin_port) == b->port)
				return true;
		} else if (ss.ss_family == AF_INET6 && !b->path) {
			if (ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port) == b->port)
				return true;
		}
	}
	return false;
}

/* This process's sockets of s (server_socket), up to max of them in fds:
 * gRPC does not tell, the process's file descriptors do. How many. */
static int server_sockets(const struct rpc_server *s, bool listeners, int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		struct stat st;
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) || !S_ISSOCK(st.st_mode) ||
		    !server_socket(s, fd, listeners))
			continue;
		if (n < max)
			fds[n] = fd;
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* The connections clients have open to this server. */
static int server_conns(const struct rpc_server *s)
{
	return server_sockets(s, false, NULL, 0);
}

void rpc_server_share_ports(struct rpc_server *s)
{
	int fds[16], one = 1;
	int n = MIN(server_sockets(s, true, fds, (int)ARRAY_SIZE(fds)), (int)ARRAY_SIZE(fds));

	for (int i = 0; i < n; i++)
		if (setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
			log_warn("rpc.share_port_failed", "fd=%d error=%s", fds[i], strerror(errno));
}

void rpc_server_wait_left(struct rpc_server *s, int64_t deadline_ms)
{
	int64_t start = now_ms(), linger_end;
	int conns;

	if (!s->started)
		return;
	wait_inflight(s, deadline_ms);
	linger_end = MIN(deadline_ms, now_ms() + RPC_LEAVE_LINGER_MS);
	while ((conns = server_conns(s)) > 0 && now_ms() < linger_end) {
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	log_info("rpc.left", "inflight=%d connections=%d ms=%lld", rpc_server_inflight(s), conns,
		 (long long)(now_ms() - start));
}

void rpc_server_drain(struct rpc_server *s, int grace_ms)
{
	int64_t end = now_ms() + (grace_ms > 0 ? grace_ms : 1);
	bool left;

	if (!s->started)
		return;
	pthread_mutex_lock(&s->mu);
	s->draining = true;
	left = s->leaving;
	pthread_mutex_unlock(&s->mu);
	/* A stop: new calls are refused (call_main) while those in flight end
	 * on connections that stay open, so that no client reading a call's
	 * end meets a socket gRPC closed after it (rpc_server_leave says why).
	 * Then gRPC's shutdown, with no call left to lose. An upgrade's
	 * clients have left already, and a late one is better off sent on to
	 * the new process, as gRPC's shutdown does at once. */
	if (!left)
		wait_inflight(s, end);
	s->shutdown_tag = TAG_SHUTDOWN;
	grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
	wait_inflight(s, end);
	if (rpc_server_inflight(s) > 0) {
		log_warn("rpc.drain_cancel", "inflight=%d grace_ms=%d", rpc_server_inflight(s), grace_ms);
		grpc_server_cancel_all_calls(s->server);
		wait_inflight(s, 0);
	}
	pthread_mutex_lock(&s->mu);
	while (!s->shutdown_done)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	grpc_completion_queue_shutdown(s->cq);
	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	s->nthreads = 0;
	s->started = false;
}

void rpc_server_free(struct rpc_server *s)
{
	if (!s)
		return;
	if (s->started)
		rpc_server_drain(s, 0);
	grpc_server_destroy(s->server);
	grpc_completion_queue_destroy(s->cq);
	while (s->handlers) {
		struct rpc_handler *h = s->handlers;
		s->handlers = h->next;
		for (size_t i = 0; i < h->nsecrets; i++) {
			explicit_bzero(h->secrets[i], strlen(h->secrets[i]));
			free(h->secrets[i]);
		}
		free(h->secrets);
		free(h->method);
		free(h);
	}
	for (size_t i = 0; i < s->nhealth; i++)
		free(s->health[i].name);
	for (size_t i = 0; i < s->ntls; i++)
		rpc_tls_listener_free(s->tls[i]);
	free(s->tls);
	unix_links_free(s);
	for (size_t i = 0; i < s->nbound; i++)
		free(s->bound[i].path);
	free(s->bound);
	free(s->threads);
	free(s->secret);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
