/*
 * The store's end of the hook wire (lib/hookwire.h): `grove-hook`, run by
 * git for a push this store runs, connects here, sends its hook's name,
 * git's input and the variables of git's environment, and gets the hook's
 * output and exit status; in between, the same work as the gRPC
 * HookService (store_hook_run, store_hook_vote).
 *
 * The socket is this process's own (hookw.PID beside the gRPC hook socket),
 * as that one is: a push's hooks call back the process that runs the push,
 * not one an upgrade started meanwhile. It lives in the runtime directory
 * (0700), and a request proves the store's secret besides.
 *
 * One thread per hook run, at most HOOKSOCK_RUNS at once (more wait in
 * the listen queue: git waits for its hook); a request must arrive whole
 * within HOOKSOCK_READ_S, as git writes it at once.
 */
#include "store/store.h"
#include "lib/error.h"
#include "lib/hookwire.h"
#include "lib/log.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#define HOOKSOCK_RUNS 256
#define HOOKSOCK_READ_S 60
#define HOOKSOCK_STOP_WAIT_MS 10000

struct hooksock {
	struct store *st;
	int fd;
	int stop[2];              /* the acceptor's wake-up */
	char path[108];
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;              /* connections being served */
};

struct wire_conn {
	struct hooksock *hs;
	int fd;
};

static int say_frame(void *sink, const char *data, size_t len, bool err)
{
	return hookwire_send(*(int *)sink, err ? 'E' : 'O', data, len);
}

static void say_exit(int fd, int code)
{
	char digits[16];
	int n = snprintf(digits, sizeof(digits), "%d", code);

	if (hookwire_send(fd, 'X', digits, (size_t)n))
		log_info("hook.wire_gone", "note=%s", "the hook went before its answer");
}

/* The whole request, to the hook's end of writing. */
static int read_request(int fd, struct strbuf *req)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set(errno == EAGAIN ? GROVE_ETIMEOUT : GROVE_EIO, "reading the hook's request: %s",
					 errno == EAGAIN ? "it stopped coming" : strerror(errno));
		if (n == 0)
			return 0;
		if (strbuf_add(req, buf, (size_t)n))
			return error_set(GROVE_ETOOBIG, "the hook's request is over %u bytes", HOOKWIRE_REQUEST_MAX);
	}
}

/* A variable of the request as a NUL-terminated copy ("" if absent). */
static char *var_dup(const struct hookwire_req *r, const char *name)
{
	size_t len = 0;
	const char *v = hookwire_var(r, name, &len);
	return xstrndup(v ? v : "", len);
}

static bool secret_ok(struct store *st, const struct hookwire_req *r)
{
	size_t len = 0;
	const char *v = hookwire_var(r, "GROVE_SECRET", &len);
	return v && len == strlen(st->secret) && !CRYPTO_memcmp(v, st->secret, len);
}

/* reference-transaction: its "prepared" state votes the hash of git's input. */
static int wire_vote(struct store *st, const struct hookwire_req *r, const Grove__V1__HookPayload *p, int fd)
{
	unsigned char hash[SHA256_DIGEST_LENGTH];
	ProtobufCBinaryData vote = { sizeof(hash), hash };
	char msg[1024] = "", line[1400];
	bool commit = false;

	if (!r->arg || r->arg_len != 8 || memcmp(r->arg, "prepared", 8) || !p->transaction_address ||
	    !*p->transaction_address)
		return 0;
	SHA256((const unsigned char *)(r->in ? r->in : ""), r->in_len, hash);
	if (store_hook_vote(st, p, GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__PREPARED, vote, &commit, msg,
			    sizeof(msg))) {
		log_warn("txn.vote_failed", "repo=%s error=%s", p->repository ? p->repository->relative_path : "",
			 error_msg());
		snprintf(line, sizeof(line), "error: grove: the ref update vote failed, so no ref was updated: "
			 "the replicas could not agree in time; push again\n");
	} else if (!commit) {
		snprintf(line, sizeof(line), "error: grove: ref update not committed: %s\n", msg);
	} else {
		return 0;
	}
	say_frame(&fd, line, strlen(line), true);
	return 1;
}

/* pre-receive or post-receive, as the gRPC HookService runs it. */
static int wire_receive(struct store *st, const struct hookwire_req *r, Grove__V1__HookPayload *p, int fd, int *code)
{
	Grove__V1__HookRequest first = GROVE__V1__HOOK_REQUEST__INIT;
	struct hook_run h = { .first = &first, .say = say_frame, .sink = &fd, .via = "wire" };
	char *opts[64], *genv[HOOKWIRE_QUARANTINE_VARS], *count = var_dup(r, "GIT_PUSH_OPTION_COUNT"), name[32];
	size_t nopts = 0, ngenv = 0;
	int ret;

	h.name = r->name_len == 11 && !memcmp(r->name, "pre-receive", 11) ? "pre-receive" : "post-receive";
	for (int i = 0; i < atoi(count) && nopts < ARRAY_SIZE(opts); i++) {
		snprintf(name, sizeof(name), "GIT_PUSH_OPTION_%d", i);
		opts[nopts++] = var_dup(r, name);
	}
	for (size_t i = 0; i < HOOKWIRE_QUARANTINE_VARS; i++) {
		size_t len;
		const char *v = hookwire_var(r, hookwire_quarantine_vars[i], &len);
		if (v)
			genv[ngenv++] = xasprintf("%s=%.*s", hookwire_quarantine_vars[i], (int)len, v);
	}
	first.payload = p;
	first.push_options = opts;
	first.n_push_options = nopts;
	first.git_env = genv;
	first.n_git_env = ngenv;
	strbuf_init(&h.in, HOOKWIRE_IN_MAX);
	ret = strbuf_add(&h.in, r->in ? r->in : "", r->in_len);
	if (!ret)
		ret = store_hook_run(st, &h, code);
	strbuf_release(&h.in);
	for (size_t i = 0; i < nopts; i++)
		free(opts[i]);
	for (size_t i = 0; i < ngenv; i++)
		free(genv[i]);
	free(count);
	return ret;
}

/* Whether the store said this hook has someone to answer (as `grove hook` checks). */
static bool wire_active(const struct hookwire_req *r)
{
	char *list = var_dup(r, "GROVE_HOOKS_ACTIVE"), want[80];
	bool on;

	snprintf(want, sizeof(want), "%.*s,", (int)r->name_len, r->name);
	on = strstr(list, want) != NULL;
	free(list);
	return on;
}

/* One hook run; *name: the hook's, once the request parsed. */
static int wire_serve(struct store *st, int fd, const uint8_t *buf, size_t len, char *name, size_t name_size)
{
	Grove__V1__HookPayload *p = NULL;
	struct hookwire_req r;
	const char *why;
	size_t plen = 0;
	const char *enc;
	int ret, code = 0;

	if (hookwire_parse(buf, len, &r, &why))
		return error_set(GROVE_EINVAL, "a malformed hook request: %s", why);
	snprintf(name, name_size, "%.*s", (int)r.name_len, r.name);
	if (!secret_ok(st, &r))
		return error_set(GROVE_EAUTH, "a hook request without this store's secret");
	enc = hookwire_var(&r, HOOK_PAYLOAD_ENV, &plen);
	if (!enc || (ret = hook_payload_decode(enc, plen, &p)))
		return error_set(GROVE_EINVAL, "a hook request without a payload that decodes");
	if (p->correlation_id)
		log_set_correlation_id(p->correlation_id);
	if (r.name_len == 21 && !memcmp(r.name, "reference-transaction", 21))
		code = wire_vote(st, &r, p, fd);
	else if (r.name_len == 10 && !memcmp(r.name, "pack-index", 10))
		code = r.arg ? store_pack_index_outcome(st, p, r.arg, r.arg_len)
			     : store_pack_index_serve(st, p, say_frame, &fd) ? 1 : 0;
	else if ((r.name_len == 11 && !memcmp(r.name, "pre-receive", 11)) ||
		 (r.name_len == 12 && !memcmp(r.name, "post-receive", 12)))
		ret = wire_active(&r) ? wire_receive(st, &r, p, fd, &code) : 0;
	else
		ret = error_set(GROVE_EINVAL, "a request for a hook Grove does not run (%.*s)", (int)MIN(r.name_len, 64),
				r.name);
	if (!ret)
		say_exit(fd, code);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	return ret;
}

static void *conn_main(void *arg)
{
	struct wire_conn *c = arg;
	struct hooksock *hs = c->hs;
	struct timeval tv = { HOOKSOCK_READ_S, 0 };
	struct strbuf req;
	char name[32] = "hook", said[256];

	strbuf_init(&req, HOOKWIRE_REQUEST_MAX);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	log_set_correlation_id("");
	if (read_request(c->fd, &req) ||
	    wire_serve(hs->st, c->fd, (const uint8_t *)req.buf, req.len, name, sizeof(name))) {
		/* Fail closed, in git's words; the detail stays in the log, under
		 * the id the pusher sees. */
		log_warn("hook.wire_failed", "hook=%s error=%s", name, error_msg());
		snprintf(said, sizeof(said), "error: grove: the %s check could not run (correlation id %s): push "
			 "again, and if it goes on, tell the platform's operators\n", name, log_correlation_id());
		say_frame(&c->fd, said, strlen(said), true);
		say_exit(c->fd, 1);
	}
	strbuf_release(&req);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&hs->mu);
	hs->running--;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

static void serve_one(struct hooksock *hs, int fd)
{
	struct wire_conn *c = xcalloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t tid;

	c->hs = hs;
	c->fd = fd;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&hs->mu);
	hs->running++;
	pthread_mutex_unlock(&hs->mu);
	if (pthread_create(&tid, &attr, conn_main, c)) {
		log_warn("hook.wire_failed", "error=%s", "no thread for a hook run");
		close(fd);
		free(c);
		pthread_mutex_lock(&hs->mu);
		hs->running--;
		pthread_mutex_unlock(&hs->mu);
	}
	pthread_attr_destroy(&attr);
}

static void *acceptor_main(void *arg)
{
	struct hooksock *hs = arg;

	for (;;) {
		struct pollfd p[2] = { { hs->fd, POLLIN, 0 }, { hs->stop[0], POLLIN, 0 } };
		int fd;

		pthread_mutex_lock(&hs->mu);
		while (hs->running >= HOOKSOCK_RUNS)
			pthread_cond_wait(&hs->cv, &hs->mu);
		pthread_mutex_unlock(&hs->mu);
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(hs->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_one(hs, fd);
	}
	return NULL;
}

int hooksock_start(struct store *st, const char *path, struct hooksock **out)
{
	struct hooksock *hs = xcalloc(1, sizeof(*hs));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ret = 0;

	*out = NULL;
	hs->st = st;
	hs->fd = hs->stop[0] = hs->stop[1] = -1;
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->cv, NULL);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		ret = error_set(GROVE_EINVAL, "the hook wire's path %s is too long for a unix socket", path);
		goto out;
	}
	strlcpy_(hs->path, path, sizeof(hs->path));
	memcpy(sa.sun_path, path, strlen(path));
	unlink(path);
	hs->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (hs->fd < 0 || bind(hs->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(hs->fd, 128) ||
	    pipe2(hs->stop, O_CLOEXEC)) {
		ret = error_set(GROVE_EIO, "cannot listen on the hook wire %s: %s", path, strerror(errno));
		goto out;
	}
	if (pthread_create(&hs->tid, NULL, acceptor_main, hs)) {
		ret = error_set(GROVE_EINTERNAL, "cannot start the hook wire's thread");
		goto out;
	}
	*out = hs;
out:
	if (ret) {
		if (hs->fd >= 0) {
			close(hs->fd);
			unlink(path);
		}
		if (hs->stop[0] >= 0) {
			close(hs->stop[0]);
			close(hs->stop[1]);
		}
		pthread_mutex_destroy(&hs->mu);
		pthread_cond_destroy(&hs->cv);
		free(hs);
	}
	return ret;
}

void hooksock_stop(struct hooksock *hs)
{
	struct timespec until;
	int left;

	if (!hs)
		return;
	if (write(hs->stop[1], "x", 1) != 1)
		log_warn("hook.wire_stop", "error=%s", strerror(errno));
	pthread_join(hs->tid, NULL);
	close(hs->fd);
	unlink(hs->path);
	/* The hooks of pushes still running finish: their pushes wait on
	 * them. The servers drained before this, so what is left is a hook
	 * stuck on a peer: it is given a while, then the process goes. */
	pthread_mutex_lock(&hs->mu);
	deadline_after_ms(&until, CLOCK_REALTIME, HOOKSOCK_STOP_WAIT_MS);
	while (hs->running > 0 && pthread_cond_timedwait(&hs->cv, &hs->mu, &until) != ETIMEDOUT)
		;
	left = hs->running;
	pthread_mutex_unlock(&hs->mu);
	if (left) {
		/* Their threads still use hs: it stays, and goes with the process. */
		log_warn("hook.wire_stopped", "running=%d note=%s", left, "hook runs left unfinished at exit");
		return;
	}
	close(hs->stop[0]);
	close(hs->stop[1]);
	pthread_mutex_destroy(&hs->mu);
	pthread_cond_destroy(&hs->cv);
	free(hs);
}
