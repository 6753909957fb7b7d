/* Session backends: see backend.h. */
#include "gate/backend.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/gitcmd.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/sshstream.h"
#include "lib/strvec.h"

#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>

/* ---- git run here ---- */

struct local_backend {
	struct backend base;
	struct proc proc;
};

static int local_wait(struct backend *b)
{
	struct local_backend *l = (struct local_backend *)b;
	l->proc.in = b->in;
	l->proc.out = b->out;
	l->proc.err = b->err;
	b->in = b->out = b->err = -1;
	return proc_wait(&l->proc);
}

static void local_abort(struct backend *b)
{
	struct local_backend *l = (struct local_backend *)b;
	/* EOF first, as on a store: receive-pack then cleans its quarantine. */
	if (b->in >= 0)
		close(b->in);
	b->in = -1;
	for (int i = 0; i < 20 && !kill(l->proc.pid, 0); i++)
		usleep(50 * 1000);
	proc_kill(&l->proc, SIGTERM);
}

static void local_free(struct backend *b)
{
	free(b);
}

int backend_start_local(struct backend **out, const char *service, const char *dir, const char *hooks_dir,
			const char *const *fsck_ignore, char **env, uint64_t max_input_size, enum backend_mode mode)
{
	struct local_backend *l = xcalloc(1, sizeof(*l));
	struct strvec argv = STRVEC_INIT;
	struct gitcmd_opts o = { .hooks_dir = hooks_dir, .fsck_ignore = fsck_ignore };
	int ret;

	*out = NULL;
	gitcmd_init(&argv, &o, NULL);
	if (!strcmp(service, "receive-pack")) {
		strvec_push(&argv, "-c");
		strvec_push(&argv, "receive.fsckObjects=true");
		strvec_push(&argv, "-c");
		strvec_push(&argv, "receive.advertisePushOptions=true");
		if (max_input_size) {
			strvec_push(&argv, "-c");
			strvec_pushf(&argv, "receive.maxInputSize=%" PRIu64, max_input_size);
		}
	}
	strvec_push(&argv, service);
	if (mode != BACKEND_STREAM)
		strvec_push(&argv, "--stateless-rpc");
	if (mode == BACKEND_ADVERTISE)
		strvec_push(&argv, "--advertise-refs");
	strvec_push(&argv, dir);
	ret = proc_start(&l->proc, strvec_argv(&argv), env, NULL,
			 PROC_STDIN | PROC_STDOUT | PROC_STDERR | PROC_NONBLOCK | PROC_NEWPGRP);
	strvec_clear(&argv);
	if (ret) {
		free(l);
		return ret;
	}
	l->base.in = l->proc.in;
	l->base.out = l->proc.out;
	l->base.err = l->proc.err;
	l->base.wait = local_wait;
	l->base.abort = local_abort;
	l->base.free = local_free;
	*out = &l->base;
	return 0;
}

/* ---- a store or cluster over gRPC ---- */

/* One received message's output, pointing into its slice. */
struct chunk {
	grpc_slice msg;
	const uint8_t *data;
	size_t len;
	bool is_err;
	struct chunk *next;
};

/* At most this much output waits for the client: beyond it the receiver
 * stops receiving, and gRPC's flow control holds the store. */
#define QUEUE_MAX (256 * 1024)

struct grpc_backend {
	struct backend base;
	struct rpc_client *cl;
	struct rpc_stream *st;
	int in_r;                  /* the sender's end of the stdin pipe */
	pthread_t sender, receiver;
	bool sender_started, receiver_started;
	int code;
	/* the queue, under mu; the eventfd (base.out) is written when it gets
	 * its first chunk and at the end */
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct chunk *head, **tail;
	size_t queued;
	bool ended, stopped;
	bool said_exit;            /* the answer carried git's exit status */
	char corr[65];             /* the session's correlation id, for the receiver's log lines */
};

static void *sender_main(void *arg)
{
	struct grpc_backend *g = arg;
	/* After a failed send the call is over: half-closing it anyway lets
	 * the receiver's status arrive. */
	if (ssh_stream_send_fd(g->st, g->in_r))
		rpc_stream_close_send(g->st);
	return NULL;
}

static void notify(struct grpc_backend *g)
{
	uint64_t one = 1;
	if (write(g->base.out, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: the loop will look */
	}
}

/*
 * Queues len bytes at data, which lies in *msg (a reference is taken),
 * waiting for room. The chunk points into its own copy of the slice: a small
 * slice keeps its bytes inline, in the grpc_slice itself.
 */
static void enqueue(struct grpc_backend *g, const grpc_slice *msg, const uint8_t *data, size_t len, bool is_err)
{
	if (!len)
		return;
	pthread_mutex_lock(&g->mu);
	while (g->queued >= QUEUE_MAX && !g->stopped)
		pthread_cond_wait(&g->room, &g->mu);
	if (!g->stopped) {
		struct chunk *c = xmalloc(sizeof(*c));
		c->msg = grpc_slice_ref(*msg);
		c->data = GRPC_SLICE_START_PTR(c->msg) + (data - GRPC_SLICE_START_PTR(*msg));
		c->len = len;
		c->is_err = is_err;
		c->next = NULL;
		bool was_empty = !g->head;
		*g->tail = c;
		g->tail = &c->next;
		g->queued += len;
		if (was_empty)
			notify(g);
	}
	pthread_mutex_unlock(&g->mu);
}

/*
 * A message of one stdout or stderr field, as a store sends git's output,
 * queued where gRPC received it, slice by slice: flattening it first would
 * copy every byte of a clone once more. Anything else (an exit status, a
 * message a store packed differently) is left to the general path: false.
 */
static bool enqueue_in_place(struct grpc_backend *g, grpc_byte_buffer *bb)
{
	grpc_slice_buffer *sb;
	const uint8_t *p;
	size_t n, hdr;
	uint64_t vlen;
	bool is_err;

	if (bb->type != GRPC_BB_RAW || bb->data.raw.compression != GRPC_COMPRESS_NONE)
		return false;
	sb = &bb->data.raw.slice_buffer;
	if (!sb->count)
		return false;
	p = GRPC_SLICE_START_PTR(sb->slices[0]);
	n = GRPC_SLICE_LENGTH(sb->slices[0]);
	if (!ssh_response_head(p, n, &is_err, &hdr, &vlen) || vlen != sb->length - hdr)
		return false;
	enqueue(g, &sb->slices[0], p + hdr, n - hdr, is_err);
	for (size_t i = 1; i < sb->count; i++)
		enqueue(g, &sb->slices[i], GRPC_SLICE_START_PTR(sb->slices[i]), GRPC_SLICE_LENGTH(sb->slices[i]),
			is_err);
	return true;
}

/*
 * What a git user is told when the storage failed: what happened, in words
 * of their own, and the correlation id; the storage's own words (addresses,
 * store names, gRPC text) go to the log under that id.
 */
static int storage_failure(char *msg, size_t size, int err, const char *corr)
{
	const char *what;
	switch (err) {
	case GROVE_EUNAVAIL: what = "it cannot be reached right now (a store may be restarting or failing over)"; break;
	case GROVE_ETIMEOUT: what = "it did not answer in time"; break;
	case GROVE_ETOOBIG: what = "the request was larger than it accepts"; break;
	case GROVE_EPRECOND: what = "the copies of the repository did not agree on the change, so it was not made"; break;
	case GROVE_ENOTFOUND: what = "the repository is missing there"; break;
	case GROVE_EPROTO: what = "it answered something Grove could not read"; break;
	default: what = "it failed"; break;
	}
	return snprintf(msg, size,
			"ERROR: Grove's repository storage could not finish this: %s. Try again in a minute; if it keeps "
			"failing, give the platform's operators this id: %s.\n", what, corr[0] ? corr : "none");
}

static void *receiver_main(void *arg)
{
	struct grpc_backend *g = arg;
	char msg[1200];
	bool malformed = false;

	log_set_correlation_id(g->corr[0] ? g->corr : NULL);
	g->code = 128;
	for (;;) {
		grpc_byte_buffer *bb = NULL;
		grpc_slice all;
		struct ssh_response_view v;
		int r = rpc_stream_recv_bb(g->st, &bb);
		if (r <= 0)
			break;
		if (enqueue_in_place(g, bb)) {
			grpc_byte_buffer_destroy(bb);
			continue;
		}
		r = rpc_bb_slice(bb, &all);
		grpc_byte_buffer_destroy(bb);
		if (!r && ssh_response_parse(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), &v)) {
			grpc_slice_unref(all);
			r = -1;
		}
		if (r) {
			/* Cancelled, or the status would wait for a store that
			 * waits for us to read on. */
			rpc_stream_cancel(g->st);
			malformed = true;
			break;
		}
		enqueue(g, &all, v.out, v.outlen, false);
		enqueue(g, &all, v.err, v.errlen, true);
		if (v.has_exit) {
			g->code = v.exit;
			g->said_exit = true;
		}
		grpc_slice_unref(all);
	}
	int failed = rpc_stream_finish(g->st);
	if (failed && !malformed && ssh_answer_whole(g->st, g->said_exit)) {
		log_info("gate.answer_whole", "address=%s note=%s transport=%s", rpc_client_address(g->cl),
			 "the answer was whole when the connection ended", error_msg());
		failed = 0;
	}
	if (malformed)
		failed = error_set(GROVE_EPROTO, "it sent a malformed SSHResponse");
	if (failed) {
		char details[512];
		int n;
		log_warn("gate.backend_error", "address=%s error=%s", rpc_client_address(g->cl), error_msg());
		rpc_stream_details(g->st, details, sizeof(details));
		if (failed == GROVE_ETOOBIG && skip_prefix(details, RPC_USER_BUSY, NULL))
			n = snprintf(msg, sizeof(msg),
				     "ERROR: You have too many git operations running at once on Grove's storage: "
				     "try again when one of them has ended.\n");
		else
			n = storage_failure(msg, sizeof(msg), failed, g->corr);
		grpc_slice s = grpc_slice_from_copied_buffer(msg, (size_t)MIN(n, (int)sizeof(msg) - 1));
		enqueue(g, &s, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), true);
		grpc_slice_unref(s);
		g->code = 128;
	}
	pthread_mutex_lock(&g->mu);
	g->ended = true;
	notify(g);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static int grpc_peek(struct backend *b, const uint8_t **data, size_t *len, bool *is_err)
{
	struct grpc_backend *g = (struct grpc_backend *)b;
	int r;
	pthread_mutex_lock(&g->mu);
	if (g->head) {
		*data = g->head->data;
		*len = g->head->len;
		*is_err = g->head->is_err;
		r = 1;
	} else {
		r = g->ended ? -1 : 0;
		if (!r) {
			/* Empty: reset the eventfd, so the loop sleeps until the
			 * next chunk (whose enqueue sees the queue empty and
			 * writes it again). */
			uint64_t n;
			if (read(b->out, &n, sizeof(n)) < 0) {
				/* EAGAIN: it was reset already */
			}
		}
	}
	pthread_mutex_unlock(&g->mu);
	return r;
}

static void grpc_consume(struct backend *b, size_t n)
{
	struct grpc_backend *g = (struct grpc_backend *)b;
	pthread_mutex_lock(&g->mu);
	struct chunk *c = g->head;
	if (c) {
		n = MIN(n, c->len);
		c->data += n;
		c->len -= n;
		g->queued -= n;
		if (!c->len) {
			g->head = c->next;
			if (!g->head)
				g->tail = &g->head;
			grpc_slice_unref(c->msg);
			free(c);
		}
		if (g->queued < QUEUE_MAX)
			pthread_cond_signal(&g->room);
	}
	pthread_mutex_unlock(&g->mu);
}

/* Drops the queue and lets a receiver waiting for room go on (and drop). */
static void queue_stop(struct grpc_backend *g)
{
	pthread_mutex_lock(&g->mu);
	g->stopped = true;
	while (g->head) {
		struct chunk *c = g->head;
		g->head = c->next;
		grpc_slice_unref(c->msg);
		free(c);
	}
	g->tail = &g->head;
	g->queued = 0;
	pthread_cond_broadcast(&g->room);
	pthread_mutex_unlock(&g->mu);
}

static int grpc_wait(struct backend *b)
{
	struct grpc_backend *g = (struct grpc_backend *)b;
	if (g->receiver_started)
		pthread_join(g->receiver, NULL);
	g->receiver_started = false;
	/* The call is over: a sender still blocked on stdin gets EOF. */
	if (b->in >= 0)
		close(b->in);
	b->in = -1;
	if (g->sender_started)
		pthread_join(g->sender, NULL);
	g->sender_started = false;
	return g->code;
}

static void grpc_abort(struct backend *b)
{
	struct grpc_backend *g = (struct grpc_backend *)b;
	/* Cancelling makes the store stop git; the threads then return. What
	 * is queued is dropped: nobody will read it. */
	rpc_stream_cancel(g->st);
	queue_stop(g);
	if (b->in >= 0)
		close(b->in);
	b->in = -1;
}

static void grpc_free(struct backend *b)
{
	struct grpc_backend *g = (struct grpc_backend *)b;
	queue_stop(g);
	grpc_wait(b);
	int fds[] = { b->in, b->out, g->in_r };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	rpc_stream_free(g->st);
	rpc_client_free(g->cl);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->room);
	free(g);
}

/* A user name as gRPC metadata may carry it (printable ASCII), else its
 * SHA-256: a platform's names (auth.url) may hold anything. */
static const char *user_md(const char *user, char hashed[65])
{
	if (!user)
		return "";
	for (const char *p = user; *p; p++)
		if (*p < 0x21 || *p > 0x7e) {
			auth_sha256_hex(user, strlen(user), hashed);
			return hashed;
		}
	return user;
}

int backend_start_grpc(struct backend **out, const char *addr, const char *secret, const char *method,
		       const Grove__V1__SSHRequest *first, const char *user)
{
	char hashed[65];
	struct rpc_md md = { RPC_USER_KEY, user_md(user, hashed) };
	struct grpc_backend *g = xcalloc(1, sizeof(*g));
	strlcpy_(g->corr, log_correlation_id() ? log_correlation_id() : "", sizeof(g->corr));
	int in[2] = { -1, -1 };
	int ret;

	*out = NULL;
	g->in_r = -1;
	g->base.in = g->base.out = g->base.err = -1;
	g->base.wait = grpc_wait;
	g->base.abort = grpc_abort;
	g->base.free = grpc_free;
	g->base.peek = grpc_peek;
	g->base.consume = grpc_consume;
	g->tail = &g->head;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->room, NULL);
	if (pipe2(in, O_CLOEXEC)) {
		ret = error_set(GROVE_EIO, "pipe: %s", strerror(errno));
		goto fail;
	}
	g->base.in = in[1];
	g->in_r = in[0];
	in[0] = in[1] = -1;
	fcntl(g->base.in, F_SETFL, O_NONBLOCK);
	/* A push's pack crosses this pipe: a larger one wakes the sender
	 * thread less often. Best effort. */
	fcntl(g->base.in, F_SETPIPE_SZ, 1 << 20);
	g->base.out = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->base.out < 0) {
		ret = error_set(GROVE_EIO, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((ret = rpc_client_new(&g->cl, addr, secret)) ||
	    (ret = rpc_stream_open_md(g->cl, method, 0, &md, user && *user ? 1 : 0, &g->st)))
		goto fail;
	if (rpc_stream_send(g->st, &first->base)) {
		/* The status says why (store down, repository missing …): the
		 * receiver reports it on stderr. */
		rpc_stream_close_send(g->st);
	} else if (pthread_create(&g->sender, NULL, sender_main, g)) {
		ret = error_set(GROVE_EINTERNAL, "cannot start a thread");
		goto fail;
	} else {
		g->sender_started = true;
	}
	if (pthread_create(&g->receiver, NULL, receiver_main, g)) {
		ret = error_set(GROVE_EINTERNAL, "cannot start a thread");
		goto fail;
	}
	g->receiver_started = true;
	*out = &g->base;
	return 0;
fail:
	for (int i = 0; i < 2; i++)
		if (in[i] >= 0)
			close(in[i]);
	if (g->sender_started) {
		rpc_stream_cancel(g->st);
		close(g->base.in);
		g->base.in = -1;
	}
	grpc_free(&g->base);
	return ret;
}
