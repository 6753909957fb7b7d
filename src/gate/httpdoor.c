/*
 * The smart HTTP door (git's "smart" protocol over HTTP/1.1, TLS or not):
 * one forked process per connection, as for SSH, serving its requests one
 * after the other.
 *
 *   GET  /APP.git/info/refs?service=git-upload-pack|git-receive-pack
 *   POST /APP.git/git-upload-pack, /APP.git/git-receive-pack
 *
 * Each request authenticates with Basic credentials whose password is one
 * of the user's access tokens (tokens.h; the user name is not looked at,
 * as on the big forges). Behind that, a request is a git command like any
 * other (door.h): the same access, route, push policy, limits, log line and
 * metrics; git runs with --stateless-rpc, on the legacy directory or on
 * the cluster (SSHService with stateless_rpc, SSHAdvertiseRefs).
 *
 * HTTP itself (heads, chunks, Expect, keep-alive, TLS) is libmicrohttpd's,
 * through httpconn.h; this file is the door: what a request asks for, who
 * asks, and git's bytes both ways.
 *
 * Words for the user: before the answer has started, a refusal is the
 * answer, text/plain, which git prints as "remote: …". Once git's answer
 * flows, git's own words (side band) are what the user sees; the door's
 * later remarks on a push go on side band 2 before the answer's final
 * flush, which is held back for them (send_push_output), or to the log
 * when git answers without a side band.
 */
#include "gate/door.h"
#include "gate/backend.h"
#include "gate/gate.h"
#include "gate/httpconn.h"
#include "gate/tokens.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/pktline.h"
#include "lib/strbuf.h"

#include <poll.h>

#define HTTP_REQUESTS_MAX 1000        /* requests on one connection */
#define HTTP_MSG_MAX 4096             /* the door's words kept for an answer not yet started */
#define HTTP_HOLD_MAX (1 << 20)       /* git's output read ahead while the request still arrives */
#define HTTP_IO_CHUNK (64 * 1024)
#define TEXT_TYPE "text/plain; charset=utf-8"

/* One request through the door. */
struct hreq {
	struct door d;
	struct hconn *c;
	const struct hhead *h;
	struct hbody body;
	int idle_ms;                      /* gate.idleTimeout: how long git may say nothing before a log line */
	const char *service;              /* "upload-pack" or "receive-pack" */
	bool advertise;                   /* GET info/refs */
	bool started;                     /* the answer went to libmicrohttpd */
	bool answered;                    /* the whole answer went */
	struct strbuf msgs;               /* the door's words, until the answer starts */
	struct strbuf hold;               /* git's output read while the request arrived */
	/* A push's answer keeps its last 4 bytes back: when they are the
	 * final flush of a side-band stream, the door's later words (a lost
	 * race, a pack too large) go before it, as "remote:" lines. */
	char tail[4];
	size_t tail_len;
	bool sideband;                    /* git's answer is side-band multiplexed */
	bool flush_held;                  /* its final flush is held back: finish sends it */
	char err_tail[512];               /* git's stderr: the log's, never the user's */
	size_t err_len;
};

/* The door is the request's first member. */
static struct hreq *hreq_of(struct door *d)
{
	return (struct hreq *)d;
}

static void hreq_say(struct door *d, const char *msg, size_t len)
{
	struct hreq *r = hreq_of(d);
	if (!r->started) {
		strbuf_add(&r->msgs, msg, MIN(len, HTTP_MSG_MAX - MIN(r->msgs.len, HTTP_MSG_MAX)));
		return;
	}
	if (r->flush_held) {
		struct strbuf pkt = STRBUF_INIT;
		pkt_add_sideband(&pkt, 2, msg, MIN(len, (size_t)HTTP_MSG_MAX));
		if (hconn_stream_write(r->c, pkt.buf, pkt.len))
			d->dead = true;
		strbuf_release(&pkt);
		return;
	}
	log_info("gate.http_unsaid", "user=%s message=%.*s", d->user.name ? d->user.name : "-", (int)MIN(len, 300),
		 msg);
}

static void hreq_write_out(struct door *d, const char *msg, size_t len)
{
	hreq_say(d, msg, len);
}

/* A whole answer of words: status, its text, and the headers that go with it. */
static int hreq_text(struct hreq *r, int status, const char *headers, const char *text)
{
	char hdrs[256];
	snprintf(hdrs, sizeof(hdrs), "Cache-Control: no-cache\n%s", headers ? headers : "");
	r->started = r->answered = true;
	return hconn_respond(r->c, status, TEXT_TYPE, hdrs, text, strlen(text));
}

/*
 * A POST refused before git ran: git prints the body of an HTTP error only
 * for info/refs, so the refusal is in git's own protocol in a 200 answer
 * ("ERR", or a push's side band 3), which it shows as "remote error: …"
 * and stops. One line: from the first "ERROR: " on.
 */
static int refuse_in_protocol(struct hreq *r)
{
	const char *msg = r->msgs.len ? r->msgs.buf : "refused", *err = strstr(msg, "ERROR: ");
	struct strbuf pkt = STRBUF_INIT;
	char type[64];
	int ret;

	if (err)
		msg = err;
	/* A push's answer is in side-band-64k (git always asks for it when
	 * receive-pack offers it): band 3 is its fatal error. */
	if (!strcmp(r->service, "receive-pack"))
		pkt_addf(&pkt, "\3%.*s", (int)MIN(strcspn(msg, "\n"), (size_t)1000), msg);
	else
		pkt_addf(&pkt, "ERR %.*s", (int)MIN(strcspn(msg, "\n"), (size_t)1000), msg);
	snprintf(type, sizeof(type), "application/x-git-%s-result", r->service);
	r->started = true;
	ret = hconn_respond(r->c, 200, type, "Cache-Control: no-cache", pkt.buf, pkt.len);
	strbuf_release(&pkt);
	return ret;
}

/* The held final flush, and the answer's end. */
static void hreq_end_held(struct hreq *r)
{
	if (!r->flush_held)
		return;
	r->flush_held = false;
	if (hconn_stream_write(r->c, "0000", 4) || hconn_stream_end(r->c))
		r->d.dead = true;
}

static void hreq_finish(struct door *d, int status)
{
	struct hreq *r = hreq_of(d);
	hreq_end_held(r);
	if (r->started || r->answered)
		return;
	r->answered = true;
	if (status && !r->advertise) {
		if (refuse_in_protocol(r))
			d->dead = true;
		return;
	}
	/* Refused: why, in HTTP's words, and when to come back if it is a
	 * matter of time. */
	static const int codes[] = { [DR_DENIED] = 403, [DR_RATE] = 429, [DR_BUSY] = 503, [DR_UNAVAILABLE] = 503 };
	char retry[64] = "";
	if (status && d->refusal != DR_DENIED && d->retry_after > 0)
		snprintf(retry, sizeof(retry), "Retry-After: %d", d->retry_after);
	if (hreq_text(r, status ? codes[d->refusal] : 200, retry, r->msgs.len ? r->msgs.buf : ""))
		d->dead = true;
}

static bool hreq_connected(struct door *d)
{
	return hconn_connected(hreq_of(d)->c);
}

/* git's stderr: its last words are logged with the request's line. */
static void hreq_take_err(struct hreq *r, const char *data, size_t n)
{
	size_t room = sizeof(r->err_tail) - 1 - r->err_len;
	memcpy(r->err_tail + r->err_len, data, MIN(n, room));
	r->err_len += MIN(n, room);
	r->err_tail[r->err_len] = '\0';
}

/* Reads what git has for the client now, without waiting: into hold (while
 * the request still arrives) or out. 1: something, 0: nothing now, -1 at its end. */
static int backend_take(struct hreq *r, struct backend *b, struct strbuf *to, size_t max)
{
	if (b->peek) {
		const uint8_t *data;
		size_t len;
		bool is_err;
		int p = b->out < 0 ? -1 : b->peek(b, &data, &len, &is_err);
		if (p <= 0)
			return p;
		len = MIN(len, max);
		if (is_err)
			hreq_take_err(r, (const char *)data, len);
		else
			strbuf_add(to, data, len);
		b->consume(b, len);
		return 1;
	}
	char buf[HTTP_IO_CHUNK];
	for (int k = 0; k < 2; k++) {
		int *fd = k ? &b->err : &b->out;
		if (*fd < 0)
			continue;
		ssize_t n = read(*fd, buf, MIN(sizeof(buf), max));
		if (n > 0) {
			if (k)
				hreq_take_err(r, buf, (size_t)n);
			else
				strbuf_add(to, buf, (size_t)n);
			return 1;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(*fd);
			*fd = -1;
		}
	}
	return b->out < 0 && b->err < 0 ? -1 : 0;
}

/* Waits until git can take input (in) or has output. */
static void backend_poll(struct hreq *r, struct backend *b, bool want_in)
{
	struct pollfd p[3];
	nfds_t n = 0;
	if (want_in && b->in >= 0)
		p[n++] = (struct pollfd){ .fd = b->in, .events = POLLOUT };
	if (r->hold.len < HTTP_HOLD_MAX && b->out >= 0)
		p[n++] = (struct pollfd){ .fd = b->out, .events = POLLIN };
	if (r->hold.len < HTTP_HOLD_MAX && b->err >= 0)
		p[n++] = (struct pollfd){ .fd = b->err, .events = POLLIN };
	if (poll(p, n, r->idle_ms) == 0)
		log_info("gate.http_stall", "user=%s", r->d.user.name);
}

/* Writes data to git's stdin, reading its output meanwhile: git may answer
 * before it has read everything. Returns 0, or -1 once git stopped reading. */
static int feed_backend(struct hreq *r, struct backend *b, const char *data, size_t len)
{
	int64_t last = now_ms();
	while (len && b->in >= 0) {
		ssize_t w = write(b->in, data, len);
		if (w > 0) {
			data += w;
			len -= (size_t)w;
			last = now_ms();
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		int t = 0;
		while (r->hold.len < HTTP_HOLD_MAX && (t = backend_take(r, b, &r->hold, HTTP_HOLD_MAX - r->hold.len)) == 1)
			;
		/* Its answer ended (a store that refused the push, a git that
		 * exited): it takes no more of the request, and its output, at
		 * its end, would wake every poll at once. */
		if (t < 0)
			break;
		if (now_ms() - last > r->idle_ms) {
			log_info("gate.http_backend_stuck", "user=%s", r->d.user.name);
			break;
		}
		backend_poll(r, b, true);
	}
	if (len) {
		close(b->in);
		b->in = -1;
		return -1;
	}
	return 0;
}

/* The request's body to git, as it arrives. Returns 0; the status of an
 * answer for a body that is wrong (malformed, too large); or -1 when the
 * client is gone (nothing can be answered). */
static int pump_request(struct hreq *r, struct backend *b)
{
	char *buf = xmalloc(HTTP_IO_CHUNK);
	ssize_t n = 0;
	int bad = 0;

	while (b->in >= 0 && (n = hbody_read(&r->body, buf, HTTP_IO_CHUNK)) > 0) {
		door_took_input(&r->d, buf, (size_t)n);
		if (r->d.push_head && r->d.push_head->too_big && !r->d.head_refused) {
			r->d.head_refused = true;
			b->abort(b);
		}
		if (r->d.head_refused || feed_backend(r, b, buf, (size_t)n))
			break;
	}
	/* git stopped, or the body was malformed or too large (once inflated:
	 * its bytes may all be read by then): what is left of it is dropped
	 * (libmicrohttpd reads it, so the answer can go, or cuts the connection). */
	if (n < 0) {
		log_info("gate.http_body_failed", "user=%s error=%s", r->d.user.name, error_msg());
		bad = n == GROVE_ETOOBIG ? 413 : n == GROVE_EPROTO ? 400 : -1;
	}
	if (bad < 0) {
		r->d.dead = r->d.client_closed = true;
	} else if (!r->body.done) {
		hconn_body_drop(r->c);
	}
	if (b->in >= 0)
		close(b->in);
	b->in = -1;
	free(buf);
	return bad;
}

/* git is told to stop, and its output dropped until it ends. */
static void drain_backend(struct hreq *r, struct backend *b)
{
	struct strbuf out = STRBUF_INIT;
	b->abort(b);
	while (backend_take(r, b, &out, HTTP_IO_CHUNK) >= 0) {
		strbuf_reset(&out);
		backend_poll(r, b, false);
	}
	strbuf_release(&out);
}

/* The answer's head; for info/refs, the service line git expects first
 * (protocol v2 has none: it starts with its capabilities). */
static int start_answer(struct hreq *r)
{
	char type[64];
	int ret;

	r->started = true;
	snprintf(type, sizeof(type), "application/x-git-%s-%s", r->service, r->advertise ? "advertisement" : "result");
	ret = hconn_stream_start(r->c, type, "Cache-Control: no-cache, max-age=0, must-revalidate\nPragma: no-cache");
	if (!ret && r->advertise && strcmp(r->d.git_protocol, "version=2")) {
		char line[64];
		int n = snprintf(line, sizeof(line), "# service=git-%s\n", r->service);
		struct strbuf pkt = STRBUF_INIT;
		pkt_add(&pkt, line, (size_t)n);
		pkt_add_flush(&pkt);
		ret = hconn_stream_write(r->c, pkt.buf, pkt.len);
		strbuf_release(&pkt);
	}
	return ret;
}

/* Some of git's output to the client; the answer's head first if it has
 * not gone yet. */
static int send_output(struct hreq *r, const char *data, size_t len)
{
	if (!r->started && start_answer(r))
		return -1;
	door_took_output(&r->d, data, len);
	return hconn_stream_write(r->c, data, len);
}

/* The same for a push's answer, all but its last 4 bytes (r->tail): its
 * first packet says whether it is side-band multiplexed (a band byte after
 * the length). */
static int send_push_output(struct hreq *r, const char *data, size_t len)
{
	char joined[4 + HTTP_IO_CHUNK];
	size_t n = r->tail_len + len, out;

	if (len > HTTP_IO_CHUNK)
		return send_push_output(r, data, HTTP_IO_CHUNK) ||
		       send_push_output(r, data + HTTP_IO_CHUNK, len - HTTP_IO_CHUNK);
	memcpy(joined, r->tail, r->tail_len);
	memcpy(joined + r->tail_len, data, len);
	if (!r->started && n >= 5)
		r->sideband = joined[4] >= 1 && joined[4] <= 3;
	out = n > 4 ? n - 4 : 0;
	r->tail_len = n - out;
	memcpy(r->tail, joined + out, r->tail_len);
	/* The door sees each byte once, as it is sent. */
	if (!out)
		return 0;
	if (!r->started && start_answer(r))
		return -1;
	door_took_output(&r->d, joined, out);
	return hconn_stream_write(r->c, joined, out);
}

/* A push's answer is over: its final flush held back when the door may
 * still have words for it (side band), else the tail sent and the answer
 * ended. */
static int end_push_output(struct hreq *r)
{
	if (r->started && r->sideband && r->tail_len == 4 && !memcmp(r->tail, "0000", 4)) {
		door_took_output(&r->d, r->tail, 4);
		r->flush_held = true;
		return 0;
	}
	if (r->tail_len && send_output(r, r->tail, r->tail_len))
		return -1;
	r->tail_len = 0;
	return r->started ? hconn_stream_end(r->c) : 0;
}

/*
 * git's output to the client until it ends. The answer starts with git's
 * first byte: a git that fails before it says anything gets an answer
 * that says so (hreq_pump), not an empty one.
 */
static void pump_answer(struct hreq *r, struct backend *b)
{
	struct strbuf out = STRBUF_INIT;
	bool push = !r->advertise && !strcmp(r->service, "receive-pack");
	int t;

	int (*send)(struct hreq *, const char *, size_t) = push ? send_push_output : send_output;

	if (r->hold.len) {
		if (send(r, r->hold.buf, r->hold.len))
			goto gone;
		strbuf_reset(&r->hold);
	}
	for (;;) {
		strbuf_reset(&out);
		t = backend_take(r, b, &out, HTTP_IO_CHUNK);
		if (t < 0)
			break;
		if (t == 0) {
			backend_poll(r, b, false);
			continue;
		}
		if (out.len && send(r, out.buf, out.len))
			goto gone;
	}
	if (push ? end_push_output(r) : r->started && hconn_stream_end(r->c))
		goto gone;
	strbuf_release(&out);
	return;
gone:
	r->d.dead = true;
	r->d.client_closed = true;
	strbuf_release(&out);
	drain_backend(r, b);
}

static void hreq_refuse(struct hreq *r, int status, const char *text);

static int hreq_pump(struct door *d, struct backend *b)
{
	struct hreq *r = hreq_of(d);
	int code;

	int bad = pump_request(r, b);
	if (bad) {
		drain_backend(r, b);
		if (bad > 0)
			hreq_refuse(r, bad, bad == 413 ? "The request is larger than Grove takes (gate.httpMaxRequestSize).\n" :
					    "The request's body is malformed (its gzip stream).\n");
	} else {
		pump_answer(r, b);
	}
	code = b->wait(b);
	if (!r->started && !r->answered && !d->dead) {
		/* git said nothing: an advertisement of nothing is fine (code
		 * 0), anything else failed before its first word. */
		if (code == 0) {
			if (!start_answer(r))
				hconn_stream_end(r->c);
		} else {
			char msg[256];
			snprintf(msg, sizeof(msg), "ERROR: git could not serve this request. If it keeps failing, give the "
				 "platform's operators this id: %s.\n", log_correlation_id());
			hreq_text(r, 500, NULL, msg);
		}
		r->answered = true;
	} else if (r->started) {
		r->answered = true;
	}
	if (r->err_len)
		log_info("gate.http_git_said", "user=%s exit=%d stderr=%s", d->user.name, code, r->err_tail);
	return code;
}

static const struct door_ops hreq_ops = {
	.say = hreq_say,
	.write_out = hreq_write_out,
	.finish = hreq_finish,
	.connected = hreq_connected,
	.pump = hreq_pump,
};

/* What a request asks for: the app's name and the service, from its
 * method and path. Returns 0, or the status of the answer (404, 405, 403,
 * and those of a head git would not send: 414, 415, 431). */
static int hreq_route(struct hreq *r, char *app, size_t app_size, const char **why)
{
	const struct hhead *h = r->h;
	char path[HTTP_PATH_MAX];
	char *tail;

	*why = "The request is not one Grove understands.\n";
	if (h->head_too_big)
		return 431;
	if (h->path_too_long)
		return 414;
	if (h->bad_encoding)
		return 415;
	strlcpy_(path, h->path, sizeof(path));
	*why = "Not found: Grove serves git repositories at /APP.git.\n";
	if ((tail = strstr(path, "/info/refs")) && !tail[10]) {
		if (strcmp(h->method, "GET"))
			return 405;
		if (strcmp(h->service, "git-upload-pack") && strcmp(h->service, "git-receive-pack")) {
			*why = "Grove speaks git's smart HTTP protocol only: use git 1.6.6 or later.\n";
			return 403;
		}
		r->service = strcmp(h->service, "git-upload-pack") ? "receive-pack" : "upload-pack";
		r->advertise = true;
	} else if ((tail = strrchr(path, '/')) && (!strcmp(tail, "/git-upload-pack") || !strcmp(tail, "/git-receive-pack"))) {
		if (strcmp(h->method, "POST"))
			return 405;
		r->service = strcmp(tail, "/git-upload-pack") ? "receive-pack" : "upload-pack";
	} else {
		return 404;
	}
	*tail = '\0';
	if ((size_t)(tail - path) >= app_size)
		return 404;
	strlcpy_(app, path, app_size);
	return 0;
}

/* The token in the request's Basic credentials, as a user. Returns 0, or
 * 401 (none, or not one Grove knows) or 503 (the database did not answer). */
static int hreq_authenticate(struct hreq *r)
{
	int64_t id;
	int ret;

	if (!r->h->has_auth || strlen(r->h->password) > TOKEN_SECRET_MAX)
		return 401;
	if (!door_db(&r->d))
		return 503;
	ret = token_check(r->d.db, r->h->password, &r->d.user, &id, &r->d.read_only);
	if (ret) {
		log_info("gate.auth_failed", "peer=%s method=%s reason=%s", r->d.peer, "token",
			 ret == GROVE_ENOTFOUND ? "unknown or expired token" : error_msg());
		return ret == GROVE_ENOTFOUND ? 401 : 503;
	}
	snprintf(r->d.fingerprint, sizeof(r->d.fingerprint), "token:%lld", (long long)id);
	return 0;
}

/* A push's first POST may be a probe (git's large_request): "0000", which
 * only checks the credentials. Answered without git: it is not a push.
 * 0: not a probe; 200: a probe; 400: a body of 4 bytes that is not "0000". */
static int hreq_probe(struct hreq *r)
{
	char body[4];
	size_t got = 0;
	ssize_t n = 1;

	if (r->advertise || strcmp(r->service, "receive-pack") || r->h->content_length != 4 || r->h->gzip)
		return 0;
	while (got < 4 && (n = hbody_read(&r->body, body + got, 4 - got)) > 0)
		got += (size_t)n;
	return got == 4 && !memcmp(body, "0000", 4) ? 200 : 400;
}

/* A refusal before any git: the status and its text. */
static void hreq_refuse(struct hreq *r, int status, const char *text)
{
	const char *extra = status == 401 ? "WWW-Authenticate: Basic realm=\"Grove\", charset=\"UTF-8\"" : NULL;
	if (hreq_text(r, status, extra, text))
		r->d.dead = true;
}

static void hreq_run(struct hreq *r, const char *app)
{
	char cmd[GATE_APP_NAME_MAX + 64];
	int probe = hreq_probe(r);

	if (probe) {
		hreq_refuse(r, probe, probe == 200 ? "" : "A push's probe must be the flush packet \"0000\".\n");
		return;
	}
	/* The path as an SSH client would send it ('/web.git'): the command's
	 * parsing and the app name's checks are the same as over SSH. */
	snprintf(cmd, sizeof(cmd), "git-%s '%s'", r->service, app);
	r->d.command = xstrdup(cmd);
	r->d.mode = r->advertise ? BACKEND_ADVERTISE : BACKEND_STATELESS;
	door_take_git_protocol(&r->d, r->h->git_protocol);
	door_run_command(&r->d);
	if (!r->answered && !r->d.dead)
		hreq_finish(&r->d, 1);
	hreq_end_held(r);
}

/* One request, from its head to its answer. Returns whether it
 * authenticated; *at_cap when its user had gate.maxConnectionsPerUser
 * connections open besides this one (conn, the connection's slot). */
static bool http_serve_request(const struct gate_config *cfg, struct hconn *c, const struct hhead *h,
			       const char *peer, struct conn_slot *conn, bool *at_cap)
{
	struct hreq r = { .c = c, .h = h };
	char app[GATE_APP_NAME_MAX + 8];
	const char *why;
	bool authed = false;
	int st;

	door_init(&r.d, &hreq_ops, cfg);
	r.d.conn = conn;
	strlcpy_(r.d.peer, peer, sizeof(r.d.peer));
	r.idle_ms = cfg->idle_timeout > 0 ? cfg->idle_timeout * 1000 : 600 * 1000;
	strbuf_init(&r.msgs, HTTP_MSG_MAX + 1);
	strbuf_init(&r.hold, HTTP_HOLD_MAX + HTTP_IO_CHUNK);
	hbody_init(&r.body, c, h, (uint64_t)cfg->http_max_request);
	st = hreq_route(&r, app, sizeof(app), &why);
	/* A push's body is its pack: git's receive.maxInputSize (the app's
	 * push limit) and the ref list's limit bound it, not this one. */
	if (!st && !strcmp(r.service, "receive-pack"))
		r.body.max = r.body.gz.max = UINT64_MAX;
	if (st) {
		hreq_refuse(&r, st, st == 405 ? "That method is not used by git here.\n" : why);
	} else if ((st = hreq_authenticate(&r))) {
		hreq_refuse(&r, st, st == 401 ? "Authentication required: use your user name and a Grove access token "
						"(grove token create) as the password.\n"
					      : "Grove could not check your credentials right now: try again in a minute.\n");
	} else if (door_hold_conn_slot(&r.d)) {
		/* Answered (503): a connection of theirs that holds no slot goes. */
		authed = *at_cap = true;
	} else {
		authed = true;
		hreq_run(&r, app);
	}
	hbody_release(&r.body);
	strbuf_release(&r.msgs);
	strbuf_release(&r.hold);
	door_release(&r.d);
	return authed;
}

int http_session_run(const struct gate_config *cfg, const struct http_tls *tls, int fd, const char *from, int auth_fd)
{
	struct hconn *c = NULL;
	struct conn_slot conn = CONN_SLOT_INIT;
	struct hhead h;
	char peer[64];
	int ret;

	strlcpy_(peer, from, sizeof(peer));
	/* Before TLS: a balancer that passes TCP through says who the client is first. */
	if (cfg->nproxy_from && door_proxy_header(cfg, fd, peer, sizeof(peer))) {
		close(fd);
		goto out;
	}
	if ((ret = hconn_start(&c, fd, tls, cfg, peer))) {
		log_warn("gate.http_failed", "peer=%s error=%s", peer, error_msg());
		goto out;
	}
	for (int n = 0; n < HTTP_REQUESTS_MAX; n++) {
		/* The first request within the login grace (its TLS handshake
		 * too); later ones within the keep-alive time: an idle
		 * connection holds a slot of its own. */
		ret = hconn_next(c, &h, (n ? cfg->http_keepalive : cfg->login_grace) * 1000);
		if (ret) {
			if (ret == GROVE_ETIMEOUT)
				log_info("gate.http_idle", "peer=%s requests=%d error=%s", peer, n, error_msg());
			break;
		}
		bool at_cap = false, authed = http_serve_request(cfg, c, &h, peer, &conn, &at_cap);
		explicit_bzero(h.password, sizeof(h.password));
		if (authed)
			door_tell_authed(&auth_fd);
		/* The next request's wait starts once this answer went out. */
		if (!hconn_finish(c) || at_cap)
			break;
	}
out:
	if (auth_fd >= 0)
		close(auth_fd);
	hconn_free(c);
	conn_slot_release(&conn);
	return 0;
}
