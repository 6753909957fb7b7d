/*
 * The gate's admin HTTP API, its HTTP side: see admin.h for the endpoints,
 * admin_int.h for where each lives.
 *
 * libmicrohttpd runs one thread per connection (polled with poll(2), so a
 * process with many descriptors is fine), at most gate.adminMaxConnections
 * at once and gate.adminMaxPerAddress from one client address (more are
 * closed as they come), each closed after gate.adminTimeout seconds without
 * a byte: a client that holds connections open, or trickles its headers,
 * holds its own address's share only.
 * Each request opens its own database handle, because SQLite handles are
 * not to be shared between threads without a lock and opening one is cheap
 * next to an HTTP round trip.
 *
 * A request is read in three steps, as libmicrohttpd calls the handler:
 * first the headers (the token is checked and a declared body over the
 * limit refused right there, so neither a stranger nor an oversized body
 * is read), then the body in pieces into a bounded buffer, then the answer.
 * A response queued before the body was read carries "Connection: close",
 * so the rest of the body is never read. A request that takes longer than
 * gate.adminRequestTimeout to arrive, however it trickles, is cut
 * (deadline.h). A body sent without a length
 * cannot be refused that early: once it outgrows the limit it is dropped as
 * it comes, up to ADMIN_DISCARD_MAX, for a 413 at its end; past that the
 * connection is cut.
 */
#include "gate/admin/admin_int.h"
#include "gate/admin/deadline.h"
#include "gate/admin/ui_history.h"
#include "gate/admin/ui_session.h"
#include "gate/archive.h"
#include "gate/metrics.h"
#include "gate/repos.h"
#include "lib/adminreq.h"
#include "lib/error.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <strings.h>
#include <sys/socket.h>

#define ADMIN_BODY_MAX (1024 * 1024)
/* A body without a length that outgrows the limit is read (and dropped) up
 * to this much, so its sender gets a 413; past that the connection is cut. */
#define ADMIN_DISCARD_MAX (8 * 1024 * 1024)
#define ADMIN_MAX_CONNS 128U
#define ADMIN_MAX_PER_ADDR 16U
#define ADMIN_TIMEOUT_S 15U
#define ADMIN_REQUEST_TIMEOUT_S 30

bool admin_token_matches(const struct admin *a, const char *token)
{
	unsigned char got[SHA256_DIGEST_LENGTH];
	/* Hashing first makes the comparison independent of the lengths too. */
	SHA256((const unsigned char *)token, strlen(token), got);
	return CRYPTO_memcmp(got, a->token_hash, sizeof(got)) == 0;
}

bool admin_bearer_ok(const struct admin *a, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return admin_token_matches(a, h);
}

/* What a browser gets with every page of /ui/: nothing but the gate's own
 * styles and forms, never in a frame, no referrer (paths name apps). */
static void add_page_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
				"frame-ancestors 'none'; base-uri 'none'");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

/* Sends out's JSON (or no body) with status; frees nothing of out. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, struct request *r, const struct reply *out, bool close)
{
	struct MHD_Response *resp;
	struct strbuf sb = STRBUF_INIT;
	enum MHD_Result res;
	size_t len = 0;
	char *buf;

	if (out->text) {
		strbuf_addstr(&sb, out->text);
	} else if (out->json) {
		char *s = json_dumps(out->json, JSON_COMPACT);
		if (s) {
			strbuf_addstr(&sb, s);
			strbuf_addch(&sb, '\n');
			free(s);
		} else {
			strbuf_addstr(&sb, "{\"error\":\"cannot encode the answer as JSON\"}\n");
		}
	}
	buf = strbuf_detach(&sb, &len);
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	if (out->text)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					out->content_type ? out->content_type : "text/plain; version=0.0.4");
	else if (out->json)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Correlation-Id", r->corr);
	if (out->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"grove\"");
	if (out->content_type && !strncmp(out->content_type, "text/html", 9))
		add_page_headers(resp);
	if (out->set_cookie)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, out->set_cookie);
	if (out->location)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, out->location);
	if (close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	res = MHD_queue_response(conn, (unsigned)out->status, resp);
	MHD_destroy_response(resp);
	if (res == MHD_YES)
		r->status = out->status;
	return res;
}

/* Whether the request announces a body that has not been read. */
static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return (cl && strcmp(cl, "0")) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* Answers right away, before the body, closing the connection if one is coming. */
static enum MHD_Result answer_early(struct MHD_Connection *conn, struct request *r, struct reply *out)
{
	enum MHD_Result res = send_reply(conn, r, out, has_body(conn));
	r->answered = true;
	json_decref(out->json);
	free(out->text);
	free(out->set_cookie);
	out->json = NULL;
	out->text = out->set_cookie = NULL;
	return res;
}

/* What needs no admin token, and is all gate.publicListen serves. */
static bool is_public(const char *url)
{
	return !strcmp(url, "/health") || !strcmp(url, "/ready") || !strcmp(url, "/metrics") ||
	       !strncmp(url, ARCHIVE_PREFIX, strlen(ARCHIVE_PREFIX));
}

/* The first call, with the headers: what can be refused before any body. */
static enum MHD_Result on_headers(struct admin *a, bool public_only, struct MHD_Connection *conn, struct request *r,
				  const char *url)
{
	struct reply out = { 0, NULL };
	const char *cl;
	long long n;

	/* Probes and Prometheus scrapes need no token: they reveal no app. An
	 * archive URL carries its own signature instead (checked with the rest). */
	if (is_public(url))
		return MHD_YES;
	if (public_only) {
		reply_error(&out, MHD_HTTP_NOT_FOUND,
			    "the admin API is not served on this address (gate.publicListen): use the gate's adminListen");
		return answer_early(conn, r, &out);
	}
	/* The dashboard takes its session cookie as well as the token, and
	 * shows its login form to a stranger: it says itself whom it refuses. */
	if (ui_path(url)) {
		if (ui_refuse_early(a, conn, url, r->method, &out))
			return answer_early(conn, r, &out);
	} else if (!admin_bearer_ok(a, conn)) {
		const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (!h)
			reply_error(&out, MHD_HTTP_UNAUTHORIZED,
				    "no Authorization header: send \"Authorization: Bearer <token>\" with the gate's admin token");
		else if (strncasecmp(h, "Bearer ", 7))
			reply_error(&out, MHD_HTTP_UNAUTHORIZED,
				    "the Authorization header is not a bearer token: send \"Authorization: Bearer <token>\" with the gate's admin token");
		else
			reply_error(&out, MHD_HTTP_UNAUTHORIZED,
				    "wrong admin token: send \"Authorization: Bearer <token>\" with the token the gate was configured with");
		return answer_early(conn, r, &out);
	}
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && (!parse_int(cl, 0, INT64_MAX, &n) || n > ADMIN_BODY_MAX)) {
		reply_error(&out, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than the limit of %d bytes: send less",
			    ADMIN_BODY_MAX);
		return answer_early(conn, r, &out);
	}
	return MHD_YES;
}

/* The last call, with the whole body: find the route and run it. */
static void dispatch(struct admin *a, struct MHD_Connection *conn, struct request *r, const char *url,
		     const char *method, struct reply *out)
{
	const struct route_def *found = NULL;
	struct call x = { .a = a, .conn = conn, .out = out };
	char parts[512], allow[64] = "";
	const char *rest;
	int ret;

	if (!strcmp(url, "/health")) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			goto not_allowed;
		call_answer(&x, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
		return;
	}
	if (!strcmp(url, "/metrics")) {
		struct strbuf sb;
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			goto not_allowed;
		strbuf_init(&sb, 1 << 20);
		metrics_render(gate_metrics, &sb);
		out->status = MHD_HTTP_OK;
		out->text = strbuf_detach(&sb, NULL);
		return;
	}
	if (!strcmp(url, "/ready")) {
		bool ready = !atomic_load(&a->draining);
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			goto not_allowed;
		/* 503 while draining, so a load balancer needs only the status. */
		call_answer(&x, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:b}", "ready", ready));
		return;
	}
	if (!skip_prefix(url, "/api/v1/", &rest))
		goto not_found;
	found = route_find(method, rest, parts, sizeof(parts), x.arg, allow, sizeof(allow));
	if (!found && allow[0])
		goto not_allowed;
	if (!found)
		goto not_found;

	if (route_takes_body(found)) {
		ret = adminreq_parse_body(r->body.buf, r->body.len, &x.body);
		if (ret) {
			reply_grove_error(out, ret);
			return;
		}
	}
	ret = db_attach(&x.db, a->db_path);
	if (ret) {
		reply_grove_error(out, ret);
		goto out;
	}
	error_clear();
	route_handler(found)(&x);
out:
	db_close(x.db);
	json_decref(x.body);
	return;
not_allowed:
	reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %.200s: use %s", method, url,
		    allow[0] ? allow : "GET");
	return;
not_found:
	reply_error(out, MHD_HTTP_NOT_FOUND, "no such endpoint: %s %.200s (the API lives under /api/v1/)", method, url);
}

static void set_correlation_id(struct MHD_Connection *conn, struct request *r)
{
	const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Correlation-Id");
	bool ok = id && *id && strlen(id) < sizeof(r->corr);
	for (const char *p = id; ok && *p; p++)
		ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-';
	if (ok)
		strlcpy_(r->corr, id, sizeof(r->corr));
	else
		log_new_correlation_id(r->corr);
	log_set_correlation_id(r->corr);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	const struct admin_side *side = cls;
	struct admin *a = side->a;
	struct request *r = *con_cls;
	struct reply out = { 0, NULL };
	enum MHD_Result res;

	if (!r) {
		r = xcalloc(1, sizeof(*r));
		strbuf_init(&r->body, ADMIN_BODY_MAX);
		r->start_ms = now_ms();
		strlcpy_(r->method, method, sizeof(r->method));
		strlcpy_(r->path, url, sizeof(r->path));
		*con_cls = r;
		set_correlation_id(conn, r);
		return on_headers(a, side->public_only, conn, r, url);
	}
	log_set_correlation_id(r->corr);
	if (!*upload_data_size)
		req_deadline_read(conn);   /* it is all here */
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->answered)
			return MHD_YES;
		if (r->too_big) {
			/* libmicrohttpd cannot answer mid-body: drop a bounded amount, then hang up. */
			r->discarded += n;
			return r->discarded > ADMIN_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		if (strbuf_add(&r->body, upload_data, n)) {
			/* A body without a length, or longer than it said. */
			r->too_big = true;
			r->discarded = r->body.len + n;
			strbuf_release(&r->body);
		}
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->too_big) {
		reply_error(&out, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than the limit of %d bytes: send less",
			    ADMIN_BODY_MAX);
	} else if (!strncmp(url, ARCHIVE_PREFIX, strlen(ARCHIVE_PREFIX))) {
		res = archive_serve(a, conn, r, url, method, &out);
		if (!out.status)
			return res;   /* streaming */
	} else if (ui_path(url)) {
		ui_serve(a, conn, &r->body, url, method, &out);
	} else {
		dispatch(a, conn, r, url, method, &out);
	}
	if (!out.status)
		reply_error(&out, MHD_HTTP_INTERNAL_SERVER_ERROR, "the request was not answered (a bug)");
	res = send_reply(conn, r, &out, r->too_big);
	json_decref(out.json);
	free(out.text);
	free(out.set_cookie);
	return res;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;
	req_deadline_next(conn);
	if (!r)
		return;
	log_set_correlation_id(r->corr);
	log_info("admin.request", "method=%s path=%s status=%d ms=%lld", r->method, r->path, r->status,
		 (long long)(now_ms() - r->start_ms));
	log_set_correlation_id(NULL);
	strbuf_release(&r->body);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_warn("admin.http", "message=%s", msg);
}

/* ---- listening ---- */

/* Splits "host:port" or "[v6]:port"; an empty host means every address. */
static int split_listen(const char *listen, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon, *h = listen;
	size_t hlen;
	long long p;

	if (!listen || !*listen)
		return error_set(GROVE_EINVAL, "admin listen address is empty: give host:port, like 127.0.0.1:8080");
	colon = strrchr(listen, ':');
	if (!colon)
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\" has no port: give host:port, like 127.0.0.1:8080",
				 listen);
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		h = listen + 1;
		hlen -= 2;
	} else if (memchr(listen, ':', hlen)) {
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": write an IPv6 address in brackets, like [::1]:8080",
				 listen);
	}
	if (hlen >= hostsz)
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": host name too long", listen);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (!parse_int(colon + 1, 0, 65535, &p))
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": the port must be a number from 0 to 65535", listen);
	snprintf(port, portsz, "%lld", p);
	return 0;
}

/* A listening socket for listen; *out gets the descriptor. */
static int open_listener(const char *listen_addr, int *out)
{
	char host[256], port[8], where[300];
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = -1, ret, gai, one = 1, err = 0;

	*out = -1;
	ret = split_listen(listen_addr, host, sizeof(host), port, sizeof(port));
	if (ret)
		return ret;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai)
		return error_set(GROVE_EINVAL, "admin listen address \"%.200s\": cannot resolve \"%s\": %s", listen_addr, host,
				 gai_strerror(gai));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A gate's successor (SIGUSR2) binds beside this one until it drains. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 64))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return error_set(GROVE_EIO, "cannot listen on %.200s for the admin API: %s", listen_addr, strerror(err));
	/* Say where, with the port the kernel chose for ":0". */
	if (!getsockname(fd, (struct sockaddr *)&ss, &sslen)) {
		char ip[INET6_ADDRSTRLEN] = "?";
		int p = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
			p = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
			p = ntohs(sin6->sin6_port);
		}
		snprintf(where, sizeof(where), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, p);
		log_info("admin.listening", "address=%s", where);
	}
	*out = fd;
	return 0;
}

/* One listener on listen_addr, serving side's share of the endpoints. */
static int admin_listen(struct admin *a, const struct admin_opts *opts, const char *listen_addr,
			struct admin_side *side, struct MHD_Daemon **out)
{
	int fd = -1, ret = open_listener(listen_addr, &fd);
	if (ret)
		return ret;
	*out = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
					MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, side,
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
				MHD_OPTION_NOTIFY_CONNECTION, req_deadline_notify, a->deadline,
				MHD_OPTION_CONNECTION_LIMIT, opts->max_conns ? opts->max_conns : ADMIN_MAX_CONNS,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				opts->max_per_addr ? opts->max_per_addr : ADMIN_MAX_PER_ADDR,
				MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s ? opts->timeout_s : ADMIN_TIMEOUT_S,
				MHD_OPTION_END);
	if (!*out) {
		close(fd);
		return error_set(GROVE_EINTERNAL, "cannot start the HTTP server on %.200s", listen_addr);
	}
	return 0;   /* the daemon closes fd */
}

int admin_start(struct admin **out, const struct admin_opts *opts)
{
	struct admin *a = NULL;
	struct db *db = NULL;
	struct reply chk = { 0, NULL };
	int ret = 0, fd = -1;

	*out = NULL;
	if (!opts->token || !*opts->token)
		return error_set(GROVE_EINVAL, "the admin API needs a token: configure one, the API refuses to run open");
	if (opts->canary_percent < 0 || opts->canary_percent > 100)
		return error_set(GROVE_EINVAL, "canary percent %d is not from 0 to 100", opts->canary_percent);
	if (!opts->db_path || !*opts->db_path)
		return error_set(GROVE_EINVAL, "the admin API needs the gate's database path");
	if (check_branch(&chk, short_branch(opts->default_deploy_branch ? opts->default_deploy_branch : "main"))) {
		ret = error_set(GROVE_EINVAL, "default deploy branch: %s",
				json_string_value(json_object_get(chk.json, "error")));
		json_decref(chk.json);
		return ret;
	}

	a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->batch.mu, NULL);
	SHA256((const unsigned char *)opts->token, strlen(opts->token), a->token_hash);
	a->db_path = xstrdup(opts->db_path);
	a->default_branch = xstrdup(short_branch(opts->default_deploy_branch ? opts->default_deploy_branch : "main"));
	a->canary_percent = opts->canary_percent;
	a->repos = opts->repos;
	a->secret = opts->repos && opts->repos->secret ? xstrdup(opts->repos->secret) : NULL;
	atomic_init(&a->draining, false);

	ui_sessions_new(&a->ui_sessions, UI_SESSION_LIFETIME_MS);
	if ((ret = ui_history_start(&a->ui_history)))
		goto out;
	/* Open (and upgrade the schema) once here, so a bad path fails the start, not every request. */
	ret = db_open(&db, a->db_path);
	db_close(db);
	if (ret)
		goto out;
	if ((ret = req_deadline_start(&a->deadline, opts->request_timeout_s ? (int)opts->request_timeout_s
									      : ADMIN_REQUEST_TIMEOUT_S)))
		goto out;
	a->side = (struct admin_side){ a, false };
	a->public_side = (struct admin_side){ a, true };
	if ((ret = admin_listen(a, opts, opts->listen, &a->side, &a->daemon)))
		goto out;
	if (opts->public_listen && *opts->public_listen &&
	    (ret = admin_listen(a, opts, opts->public_listen, &a->public_side, &a->public_daemon)))
		goto out;
	*out = a;
	a = NULL;
out:
	if (fd >= 0)
		close(fd);
	admin_stop(a);
	return ret;
}

void admin_set_draining(struct admin *a)
{
	if (a)
		atomic_store(&a->draining, true);
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	if (a->public_daemon)
		MHD_stop_daemon(a->public_daemon);
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	req_deadline_stop(a->deadline);   /* its connections are gone */
	/* A running batch stops after the app it is moving. */
	pthread_mutex_lock(&a->batch.mu);
	a->batch.stop = true;
	pthread_mutex_unlock(&a->batch.mu);
	if (a->batch.started)
		pthread_join(a->batch.tid, NULL);
	for (size_t i = 0; a->batch.apps && a->batch.apps[i]; i++)
		free(a->batch.apps[i]);
	free(a->batch.apps);
	json_decref(a->batch.results);
	pthread_mutex_destroy(&a->batch.mu);
	ui_history_stop(a->ui_history);
	ui_sessions_free(a->ui_sessions);
	free(a->db_path);
	free(a->default_branch);
	free(a->secret);
	free(a);
}
