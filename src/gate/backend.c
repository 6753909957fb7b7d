/* Session backends: see backend.h. */
#include "gate/backend.h"
#include "lib/error.h"
#include "lib/gitcmd.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/sshstream.h"
#include "lib/strvec.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

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
			char **env)
{
	struct local_backend *l = xcalloc(1, sizeof(*l));
	struct strvec argv = STRVEC_INIT;
	struct gitcmd_opts o = { .hooks_dir = hooks_dir };
	int ret;

	*out = NULL;
	gitcmd_init(&argv, &o, NULL);
	if (!strcmp(service, "receive-pack")) {
		strvec_push(&argv, "-c");
		strvec_push(&argv, "receive.fsckObjects=true");
		strvec_push(&argv, "-c");
		strvec_push(&argv, "receive.advertisePushOptions=true");
	}
	strvec_push(&argv, service);
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

struct grpc_backend {
	struct backend base;
	struct rpc_client *cl;
	struct rpc_stream *st;
	int in_r, out_w, err_w;    /* the threads' ends of the pipes */
	pthread_t sender, receiver;
	bool sender_started, receiver_started;
	int code;
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

static void *receiver_main(void *arg)
{
	struct grpc_backend *g = arg;
	char msg[1200];
	g->code = 128;
	for (;;) {
		Grove__V1__SSHResponse *resp = NULL;
		int r = rpc_stream_recv(g->st, &grove__v1__sshresponse__descriptor, (ProtobufCMessage **)&resp);
		if (r <= 0)
			break;
		/* Blocking writes: a client that does not read holds this thread,
		 * and gRPC's flow control then holds the store. */
		if (resp->stdout.len)
			write_all(g->out_w, resp->stdout.data, resp->stdout.len);
		if (resp->stderr.len)
			write_all(g->err_w, resp->stderr.data, resp->stderr.len);
		if (resp->exit_status)
			g->code = resp->exit_status->value;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	if (rpc_stream_finish(g->st)) {
		log_warn("gate.backend_error", "address=%s error=%s", rpc_client_address(g->cl), error_msg());
		int n = snprintf(msg, sizeof(msg), "ERROR: the repository storage failed: %s. Try again; if it persists, tell the platform's operators.\n",
				 error_msg());
		write_all(g->err_w, msg, (size_t)MIN(n, (int)sizeof(msg) - 1));
		g->code = 128;
	}
	close(g->out_w);
	close(g->err_w);
	g->out_w = g->err_w = -1;
	return NULL;
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
	/* Cancelling makes the store stop git; the threads then return. */
	rpc_stream_cancel(g->st);
	if (b->in >= 0)
		close(b->in);
	b->in = -1;
}

static void grpc_free(struct backend *b)
{
	struct grpc_backend *g = (struct grpc_backend *)b;
	grpc_wait(b);
	int fds[] = { b->in, b->out, b->err, g->in_r, g->out_w, g->err_w };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	rpc_stream_free(g->st);
	rpc_client_free(g->cl);
	free(g);
}

int backend_start_grpc(struct backend **out, const char *addr, const char *secret, const char *method,
		       const Grove__V1__SSHRequest *first)
{
	struct grpc_backend *g = xcalloc(1, sizeof(*g));
	int in[2] = { -1, -1 }, o[2] = { -1, -1 }, e[2] = { -1, -1 };
	int ret;

	*out = NULL;
	g->in_r = g->out_w = g->err_w = -1;
	g->base.in = g->base.out = g->base.err = -1;
	g->base.wait = grpc_wait;
	g->base.abort = grpc_abort;
	g->base.free = grpc_free;
	if (pipe2(in, O_CLOEXEC) || pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC)) {
		ret = error_set(GROVE_EIO, "pipe: %s", strerror(errno));
		goto fail;
	}
	g->base.in = in[1];
	g->in_r = in[0];
	g->base.out = o[0];
	g->out_w = o[1];
	g->base.err = e[0];
	g->err_w = e[1];
	in[0] = in[1] = o[0] = o[1] = e[0] = e[1] = -1;
	fcntl(g->base.in, F_SETFL, O_NONBLOCK);
	fcntl(g->base.out, F_SETFL, O_NONBLOCK);
	fcntl(g->base.err, F_SETFL, O_NONBLOCK);
	if ((ret = rpc_client_new(&g->cl, addr, secret)) || (ret = rpc_stream_open(g->cl, method, 0, &g->st)))
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
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0) close(in[i]);
		if (o[i] >= 0) close(o[i]);
		if (e[i] >= 0) close(e[i]);
	}
	if (g->sender_started) {
		rpc_stream_cancel(g->st);
		close(g->base.in);
		g->base.in = -1;
	}
	grpc_free(&g->base);
	return ret;
}
