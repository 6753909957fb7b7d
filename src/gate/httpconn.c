/* One smart HTTP connection served by libmicrohttpd: see httpconn.h. */
#include "gate/httpconn.h"
#include "gate/gate.h"
#include "lib/error.h"
#include "lib/strbuf.h"
#include "lib/log.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <fcntl.h>
#include <strings.h>

#define HCONN_IN_MAX (64 * 1024)      /* body bytes read, not yet taken by the door */
#define HCONN_OUT_MAX (256 * 1024)    /* answer bytes written, not yet taken by libmicrohttpd */
#define HCONN_BLOCK (64 * 1024)       /* what libmicrohttpd asks the answer for at once */
/* libmicrohttpd's memory for one connection: the head (refused above
 * HTTP_HEAD_MAX by the door) and the buffers it reads and writes with. */
#define HCONN_POOL (256 * 1024)
/* A body the door no longer wants is read and dropped up to this much, so
 * that its sender gets the answer; past that the connection is cut. */
#define HCONN_DROP_MAX (16 << 20)
#define HCONN_TLS_FILE_MAX (1 << 20)
/* TLS 1.2 or later, GnuTLS's default ciphers otherwise. */
#define HCONN_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct hconn {
	struct MHD_Daemon *mhd;
	int fd;
	int idle_ms;                  /* gate.idleTimeout: one wait for the client */
	char peer[64];
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* broadcast on every change below */
	/* Under mu, shared by the two threads. */
	bool closed;                  /* libmicrohttpd closed the connection */
	bool cut;                     /* the door's thread cut it (a deadline, or done) */
	bool has_head;                /* a request's head waits for the door */
	struct hhead head;
	bool want_body;               /* the door reads the body: libmicrohttpd may too */
	bool drop;                    /* the door wants no more of the body */
	uint64_t dropped;
	char in[HCONN_IN_MAX];
	size_t in_pos, in_len;
	bool in_end;                  /* the whole body is in (or there was none) */
	struct MHD_Response *resp;    /* the answer, for libmicrohttpd's thread to queue */
	unsigned status;
	bool answered;                /* resp was handed over */
	char *out;                    /* HCONN_OUT_MAX: a stream's bytes */
	size_t out_pos, out_len;
	bool out_end;
	int64_t out_moved_ms;         /* when the client last took answer bytes */
	/* Requests are numbered as their heads arrive: the next one's head may
	 * come (and reset the state above) before the door saw the end of the
	 * last, so its end is told by number. */
	unsigned seq;                 /* the last head's */
	unsigned serving;             /* the request the door serves */
	unsigned done_seq;            /* the last request libmicrohttpd is done with */
	bool done_ok;                 /* and whether its answer went out whole */
};

/* A TLS file's text (at most HCONN_TLS_FILE_MAX), NUL-terminated, into *out. */
static int read_tls_file(const char *path, char **out)
{
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	ssize_t n;
	int ret = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return error_set(GROVE_EIO, "%s: %s", path, strerror(errno));
	strbuf_init(&sb, HCONN_TLS_FILE_MAX);
	while ((n = read(fd, buf, sizeof(buf))) > 0 && !(ret = strbuf_add(&sb, buf, (size_t)n)))
		;
	if (!ret && n < 0)
		ret = error_set(GROVE_EIO, "%s: %s", path, strerror(errno));
	close(fd);
	if (ret) {
		strbuf_release(&sb);
		return ret;
	}
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

/* The files' text, if it is PEM that GnuTLS takes, and a key that goes with
 * the certificate: what libmicrohttpd will be given in each connection. */
struct http_tls *http_tls_load(const char *cert_file, const char *key_file)
{
	struct http_tls *t = xcalloc(1, sizeof(*t));
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0;
	gnutls_x509_privkey_t key = NULL;
	gnutls_certificate_credentials_t cred = NULL;
	const char *what = NULL;
	int r = 0;

	if (read_tls_file(cert_file, &t->cert) || read_tls_file(key_file, &t->key)) {
		error_set(GROVE_EINVAL, "gate.httpTlsCert or gate.httpTlsKey cannot be read: %s", error_msg());
		goto fail;
	}
	gnutls_datum_t cd = { (unsigned char *)t->cert, (unsigned)strlen(t->cert) };
	gnutls_datum_t kd = { (unsigned char *)t->key, (unsigned)strlen(t->key) };
	if ((r = gnutls_x509_crt_list_import2(&crts, &ncrt, &cd, GNUTLS_X509_FMT_PEM, 0)) < 0 || !ncrt)
		what = "gate.httpTlsCert is not a PEM certificate (chain)";
	else if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
		 (r = gnutls_x509_privkey_import2(key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		what = "gate.httpTlsKey is not a PEM private key";
	else if ((r = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
		 (r = gnutls_certificate_set_x509_key_mem2(cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		what = "gate.httpTlsKey is not the key of gate.httpTlsCert";
	if (what)
		error_set(GROVE_EINVAL, "%s (%s, %s; GnuTLS: %s)", what, cert_file, key_file, gnutls_strerror(r));
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (key)
		gnutls_x509_privkey_deinit(key);
	if (cred)
		gnutls_certificate_free_credentials(cred);
	if (!what)
		return t;
fail:
	http_tls_free(t);
	return NULL;
}

void http_tls_free(struct http_tls *t)
{
	if (!t)
		return;
	free(t->cert);
	if (t->key)
		explicit_bzero(t->key, strlen(t->key));
	free(t->key);
	free(t);
}

/* Cuts the connection (with mu held): libmicrohttpd's next read or write
 * fails and it closes. Only while it has not: the descriptor could be
 * another's by then. */
static void hconn_cut_locked(struct hconn *c)
{
	if (!c->closed && !c->cut)
		shutdown(c->fd, SHUT_RDWR);
	c->cut = true;
	pthread_cond_broadcast(&c->cv);
}

/* Waits on cv until deadline_ms (now_ms()'s clock, the monotonic one): false once it passed. */
static bool hconn_wait_until(struct hconn *c, int64_t deadline_ms)
{
	int64_t left = deadline_ms - now_ms();
	if (left <= 0)
		return false;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	return true;
}

struct head_size {
	size_t bytes;
	unsigned n;
};

static enum MHD_Result head_count(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct head_size *s = cls;
	s->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
	s->n++;
	return MHD_YES;
}

/* The request's head, as the door needs it (libmicrohttpd's thread). */
static void hconn_take_head(struct hhead *h, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct head_size hs = { 0, 0 };
	const char *v;
	char *user, *pass = NULL;

	memset(h, 0, sizeof(*h));
	strlcpy_(h->method, method, sizeof(h->method));
	h->path_too_long = strlen(url) >= sizeof(h->path);
	strlcpy_(h->path, url, sizeof(h->path));
	if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "service")))
		strlcpy_(h->service, v, sizeof(h->service));
	MHD_get_connection_values(conn, MHD_HEADER_KIND, head_count, &hs);
	h->head_too_big = hs.n > HTTP_HEADERS_MAX || hs.bytes + strlen(url) + strlen(method) > HTTP_HEAD_MAX;
	/* NULL unless the header is Basic and well formed. */
	user = MHD_basic_auth_get_username_password(conn, &pass);
	if (user && pass && strlen(user) < sizeof(h->user) && strlen(pass) < sizeof(h->password)) {
		strlcpy_(h->user, user, sizeof(h->user));
		strlcpy_(h->password, pass, sizeof(h->password));
		h->has_auth = true;
	}
	if (pass)
		explicit_bzero(pass, strlen(pass));
	MHD_free(user);
	MHD_free(pass);
	if ((v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Git-Protocol")) && strlen(v) < sizeof(h->git_protocol))
		strlcpy_(h->git_protocol, v, sizeof(h->git_protocol));
	if ((v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING))) {
		h->gzip = !strcasecmp(v, "gzip") || !strcasecmp(v, "x-gzip");
		h->bad_encoding = !h->gzip && strcasecmp(v, "identity");
	}
	h->content_length = -1;
	if ((v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)))
		h->content_length = strtoll(v, NULL, 10);
	h->has_body = h->content_length > 0 ||
		      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* A new request: its head goes to the door, and the request's state starts anew. */
static void hconn_begin(struct hconn *c, struct MHD_Connection *conn, const char *url, const char *method)
{
	hconn_take_head(&c->head, conn, url, method);
	c->has_head = true;
	c->seq++;
	c->want_body = c->drop = c->in_end = c->answered = c->out_end = false;
	c->dropped = 0;
	c->in_pos = c->in_len = c->out_pos = c->out_len = 0;
	pthread_cond_broadcast(&c->cv);
}

/* A piece of the body: into the buffer as the door takes it (at git's
 * pace), or dropped. All of it before returning: libmicrohttpd would not
 * call again for what is left until more arrives, which may be never.
 * false: the connection is to be cut. */
static bool hconn_take_upload(struct hconn *c, const char *data, size_t *size)
{
	while (*size) {
		while (!c->drop && !c->cut && c->in_len == sizeof(c->in))
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->cut)
			return false;
		if (c->drop) {
			c->dropped += *size;
			*size = 0;
			return c->dropped <= HCONN_DROP_MAX;
		}
		if (c->in_pos && c->in_pos + c->in_len == sizeof(c->in)) {
			memmove(c->in, c->in + c->in_pos, c->in_len);
			c->in_pos = 0;
		}
		size_t n = MIN(*size, sizeof(c->in) - c->in_pos - c->in_len);
		memcpy(c->in + c->in_pos + c->in_len, data, n);
		c->in_len += n;
		data += n;
		*size -= n;
		pthread_cond_broadcast(&c->cv);
	}
	return true;
}

/*
 * libmicrohttpd's access handler, called with a request's head, then with
 * each piece of its body, then once more at its end. It waits for the
 * door's word where the door decides: after the head (an answer at once,
 * with the body not read, or go on: "100 Continue"), and at the end (the
 * answer). A response can only be queued at those two points. One queued
 * after the head closes the connection once sent (the body is not read):
 * a request without a body (git's first GET, refused 401 before it sends
 * its credentials) is answered at its end instead, which keeps it open.
 */
static enum MHD_Result hconn_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				    const char *version, const char *upload_data, size_t *upload_data_size,
				    void **req_cls)
{
	struct hconn *c = cls;
	enum MHD_Result ret = MHD_YES;

	pthread_mutex_lock(&c->mu);
	if (!*req_cls) {
		*req_cls = c;
		hconn_begin(c, conn, url, method);
		while (!c->resp && !c->want_body && !c->cut)
			pthread_cond_wait(&c->cv, &c->mu);
	} else if (*upload_data_size) {
		ret = hconn_take_upload(c, upload_data, upload_data_size) ? MHD_YES : MHD_NO;
		goto out;
	} else {
		c->in_end = true;
		pthread_cond_broadcast(&c->cv);
		while (!c->resp && !c->cut)
			pthread_cond_wait(&c->cv, &c->mu);
	}
	if (c->cut) {
		ret = MHD_NO;
	} else if (c->resp && (c->in_end || c->head.has_body)) {
		ret = MHD_queue_response(conn, c->status, c->resp);
		MHD_destroy_response(c->resp);
		c->resp = NULL;
	}
out:
	pthread_mutex_unlock(&c->mu);
	return ret;
}

/* A stream's bytes for libmicrohttpd, as the door writes them. */
static ssize_t hconn_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct hconn *c = cls;
	ssize_t n;

	pthread_mutex_lock(&c->mu);
	while (!c->out_len && !c->out_end && !c->cut)
		pthread_cond_wait(&c->cv, &c->mu);
	if (c->out_len) {
		n = (ssize_t)MIN(max, c->out_len);
		memcpy(buf, c->out + c->out_pos, (size_t)n);
		c->out_pos += (size_t)n;
		c->out_len -= (size_t)n;
		if (!c->out_len)
			c->out_pos = 0;
		c->out_moved_ms = now_ms();
		pthread_cond_broadcast(&c->cv);
	} else {
		n = c->cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

static void hconn_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct hconn *c = cls;
	if (!*req_cls)
		return;
	pthread_mutex_lock(&c->mu);
	c->done_seq = c->seq;
	c->done_ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void hconn_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx, enum MHD_ConnectionNotificationCode toe)
{
	struct hconn *c = cls;
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* libmicrohttpd's own words (a failed TLS handshake, a malformed request):
 * the log's, one line each. */
static void hconn_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct hconn *c = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_info("gate.http_said", "peer=%s message=%s", c->peer, msg);
}

int hconn_start(struct hconn **out, int fd, const struct http_tls *tls, const struct gate_config *cfg,
		const char *peer)
{
	struct hconn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	int ret = 0;

	*out = NULL;
	c->fd = fd;
	c->idle_ms = cfg->idle_timeout > 0 ? cfg->idle_timeout * 1000 : 600 * 1000;
	strlcpy_(c->peer, peer, sizeof(c->peer));
	c->out = xmalloc(HCONN_OUT_MAX);
	pthread_mutex_init(&c->mu, NULL);
	/* The deadlines are now_ms()'s: a change of the wall clock moves none. */
	cond_init_monotonic(&c->cv);
	if (tls)
		flags |= MHD_USE_TLS;
	/* Timeout 0: libmicrohttpd's clock would count the time its callbacks
	 * wait for git as the client's silence; the door keeps the deadlines. */
	c->mhd = MHD_start_daemon(flags, 0, NULL, NULL, hconn_access, c,
				  MHD_OPTION_EXTERNAL_LOGGER, hconn_mhd_log, c,   /* first, or some go to stderr */
				  MHD_OPTION_CONNECTION_TIMEOUT, 0U,
				  MHD_OPTION_CONNECTION_LIMIT, 1U,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HCONN_POOL,
				  MHD_OPTION_NOTIFY_COMPLETED, hconn_completed, c,
				  MHD_OPTION_NOTIFY_CONNECTION, hconn_notify, c,
				  MHD_OPTION_HTTPS_MEM_CERT, tls ? tls->cert : NULL,
				  MHD_OPTION_HTTPS_MEM_KEY, tls ? tls->key : NULL,
				  MHD_OPTION_HTTPS_PRIORITIES, tls ? HCONN_TLS_PRIORITIES : NULL,
				  MHD_OPTION_END);
	if (!c->mhd) {
		close(fd);
		ret = error_set(GROVE_EINTERNAL, "libmicrohttpd did not start");
		goto out;
	}
	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = AF_INET;
		sl = sizeof(struct sockaddr_in);
	}
	/* libmicrohttpd owns fd from here, whatever it answers. */
	if (MHD_add_connection(c->mhd, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
		ret = error_set(GROVE_EINTERNAL, "libmicrohttpd did not take the connection");
out:
	if (ret)
		hconn_free(c);
	else
		*out = c;
	return ret;
}

void hconn_free(struct hconn *c)
{
	if (!c)
		return;
	if (c->mhd) {
		/* Callbacks that wait for the door return; then libmicrohttpd
		 * closes what is left and its thread ends. */
		pthread_mutex_lock(&c->mu);
		hconn_cut_locked(c);
		pthread_mutex_unlock(&c->mu);
		MHD_stop_daemon(c->mhd);
	}
	if (c->resp)
		MHD_destroy_response(c->resp);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->out);
	free(c);
}

int hconn_next(struct hconn *c, struct hhead *h, int wait_ms)
{
	int64_t end = now_ms() + wait_ms;
	int ret = 0;

	pthread_mutex_lock(&c->mu);
	while (!c->has_head && !c->closed && !c->cut) {
		if (!hconn_wait_until(c, end)) {
			hconn_cut_locked(c);
			ret = error_set(GROVE_ETIMEOUT, "no request within %d ms", wait_ms);
			goto out;
		}
	}
	if (!c->has_head) {
		ret = error_set(GROVE_ECANCELLED, "the connection closed");
		goto out;
	}
	*h = c->head;
	explicit_bzero(c->head.password, sizeof(c->head.password));
	c->has_head = false;
	c->serving = c->seq;
out:
	pthread_mutex_unlock(&c->mu);
	return ret;
}

bool hconn_connected(struct hconn *c)
{
	pthread_mutex_lock(&c->mu);
	bool up = !c->closed && !c->cut;
	pthread_mutex_unlock(&c->mu);
	struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };
	return up && !(poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

ssize_t hconn_body_read(struct hconn *c, char *out, size_t size)
{
	int64_t end = now_ms() + c->idle_ms;
	ssize_t n = 0;

	pthread_mutex_lock(&c->mu);
	if (!c->want_body) {
		c->want_body = true;
		pthread_cond_broadcast(&c->cv);
	}
	while (!c->in_len && !c->in_end && !c->closed && !c->cut) {
		if (!hconn_wait_until(c, end)) {
			hconn_cut_locked(c);
			n = error_set(GROVE_ETIMEOUT, "the request's body stopped coming for %d ms", c->idle_ms);
			goto out;
		}
	}
	if (c->in_len) {
		n = (ssize_t)MIN(size, c->in_len);
		memcpy(out, c->in + c->in_pos, (size_t)n);
		c->in_pos += (size_t)n;
		c->in_len -= (size_t)n;
		if (!c->in_len)
			c->in_pos = 0;
		pthread_cond_broadcast(&c->cv);
	} else if (!c->in_end) {
		n = error_set(GROVE_ECANCELLED, "the client closed before the end of the request's body");
	}
out:
	pthread_mutex_unlock(&c->mu);
	return n;
}

void hconn_body_drop(struct hconn *c)
{
	pthread_mutex_lock(&c->mu);
	c->want_body = c->drop = true;
	c->in_pos = c->in_len = 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Headers "Name: value\n…" onto r. */
static void add_headers(struct MHD_Response *r, const char *content_type, const char *headers)
{
	char line[512];
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (const char *p = headers; p && *p;) {
		size_t n = strcspn(p, "\n");
		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			char *colon = strchr(line, ':');
			if (colon) {
				*colon = '\0';
				MHD_add_response_header(r, line, colon + 1 + strspn(colon + 1, " "));
			}
		}
		p += n + (p[n] == '\n');
	}
}

/* Hands r to libmicrohttpd's thread; what is left of the body is dropped. */
static int hconn_answer(struct hconn *c, int status, struct MHD_Response *r)
{
	int ret = 0;
	pthread_mutex_lock(&c->mu);
	if (c->closed || c->cut || c->answered) {
		MHD_destroy_response(r);
		ret = error_set(GROVE_ECANCELLED, "the client is gone");
	} else {
		c->resp = r;
		c->status = (unsigned)status;
		c->answered = true;
		c->out_moved_ms = now_ms();
		if (!c->in_end) {
			c->drop = true;
			c->in_pos = c->in_len = 0;
		}
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return ret;
}

int hconn_respond(struct hconn *c, int status, const char *content_type, const char *headers, const void *body,
		  size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return error_set(GROVE_EINTERNAL, "libmicrohttpd could not make a response");
	add_headers(r, content_type, headers);
	return hconn_answer(c, status, r);
}

int hconn_stream_start(struct hconn *c, const char *content_type, const char *headers)
{
	/* Of unknown size: chunked for HTTP/1.1, to the close for 1.0. */
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HCONN_BLOCK, hconn_reader, c, NULL);
	if (!r)
		return error_set(GROVE_EINTERNAL, "libmicrohttpd could not make a response");
	add_headers(r, content_type, headers);
	return hconn_answer(c, 200, r);
}

int hconn_stream_write(struct hconn *c, const void *data, size_t len)
{
	int ret = 0;

	pthread_mutex_lock(&c->mu);
	while (len) {
		if (c->closed || c->cut) {
			ret = error_set(GROVE_ECANCELLED, "the client is gone");
			break;
		}
		if (c->out_pos && c->out_pos + c->out_len + len > HCONN_OUT_MAX) {
			memmove(c->out, c->out + c->out_pos, c->out_len);
			c->out_pos = 0;
		}
		size_t n = MIN(len, HCONN_OUT_MAX - c->out_pos - c->out_len);
		if (!n) {
			/* Full: the client takes nothing; after gate.idleTimeout of that, it is cut. */
			if (!hconn_wait_until(c, c->out_moved_ms + c->idle_ms)) {
				hconn_cut_locked(c);
				ret = error_set(GROVE_ETIMEOUT, "the client took nothing for %d ms", c->idle_ms);
				break;
			}
			continue;
		}
		memcpy(c->out + c->out_pos + c->out_len, data, n);
		c->out_len += n;
		data = (const char *)data + n;
		len -= n;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return ret;
}

int hconn_stream_end(struct hconn *c)
{
	pthread_mutex_lock(&c->mu);
	c->out_end = true;
	pthread_cond_broadcast(&c->cv);
	bool gone = c->closed || c->cut;
	pthread_mutex_unlock(&c->mu);
	return gone ? error_set(GROVE_ECANCELLED, "the client is gone") : 0;
}

bool hconn_finish(struct hconn *c)
{
	bool ok;
	pthread_mutex_lock(&c->mu);
	while (c->done_seq != c->serving && !c->closed && !c->cut) {
		if (!hconn_wait_until(c, c->out_moved_ms + c->idle_ms)) {
			hconn_cut_locked(c);
			break;
		}
	}
	ok = c->done_seq == c->serving && c->done_ok;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

void hbody_init(struct hbody *b, struct hconn *c, const struct hhead *h, uint64_t max)
{
	memset(b, 0, sizeof(*b));
	b->c = c;
	b->gzip = h->gzip;
	b->max = max;
	if (b->gzip) {
		b->raw = xmalloc(HCONN_IN_MAX);
		/* zlib that cannot start: gunzip_take says so at the first read. */
		gunzip_init(&b->gz, max);
	}
}

void hbody_release(struct hbody *b)
{
	gunzip_release(&b->gz);
	free(b->raw);
	b->raw = NULL;
}

/* gzip: inflates what was read, reading more when it runs dry. */
static ssize_t hbody_inflate(struct hbody *b, char *out, size_t size)
{
	for (;;) {
		if (b->raw_pos < b->raw_len) {
			const char *p = b->raw + b->raw_pos;
			size_t left = b->raw_len - b->raw_pos;
			ssize_t n = gunzip_take(&b->gz, &p, &left, out, size);
			b->raw_pos = b->raw_len - left;
			if (n)
				return n;
			continue;
		}
		ssize_t r = hconn_body_read(b->c, b->raw, HCONN_IN_MAX);
		if (r < 0)
			return r;
		if (r == 0)
			return b->gz.end ? 0 : error_set(GROVE_EPROTO, "the request's gzip stream is cut short");
		b->raw_pos = 0;
		b->raw_len = (size_t)r;
	}
}

ssize_t hbody_read(struct hbody *b, char *out, size_t size)
{
	ssize_t n;
	if (b->done)
		return 0;
	n = b->gzip ? hbody_inflate(b, out, size) : hconn_body_read(b->c, out, size);
	if (n == 0)
		b->done = true;
	if (n > 0 && (b->total += (uint64_t)n) > b->max)
		return error_set(GROVE_ETOOBIG, "the request's body is over %llu bytes", (unsigned long long)b->max);
	return n;
}
