/* One HTTP/1.1 connection, plain or TLS: see httpconn.h. */
#include "gate/httpconn.h"
#include "lib/error.h"
#include "lib/log.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

SSL_CTX *hconn_tls_context(const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];

	if (!ctx) {
		error_set(GROVE_EINTERNAL, "cannot make a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Sessions are not resumed across connections: each has its own process. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* A client that closes without TLS's close_notify (curl and git do,
	 * between requests) has simply closed the connection. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	const char *what = NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
		what = "gate.httpTlsCert is not a PEM certificate (chain)";
	else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
		what = "gate.httpTlsKey is not a PEM private key";
	else if (SSL_CTX_check_private_key(ctx) != 1)
		what = "gate.httpTlsKey is not the key of gate.httpTlsCert";
	if (what) {
		ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		error_set(GROVE_EINVAL, "%s (%s, %s; OpenSSL: %s)", what, cert_file, key_file, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Waits until fd can do what events asks, within c->timeout_ms. */
static int hconn_wait(struct hconn *c, short events, int timeout_ms)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return error_set(GROVE_ETIMEOUT, "the client sent or took nothing for %d ms", timeout_ms);
	return r < 0 ? error_set(GROVE_EIO, "poll: %s", strerror(errno)) : 0;
}

/* What a TLS call's failure asks for: wait to read or to write, or give up. */
static int tls_want(struct hconn *c, int r, int timeout_ms)
{
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return hconn_wait(c, POLLIN, timeout_ms);
	if (e == SSL_ERROR_WANT_WRITE)
		return hconn_wait(c, POLLOUT, timeout_ms);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 1;
	return error_set(GROVE_EIO, "TLS: %s", e == SSL_ERROR_SYSCALL ? "connection cut" : ERR_reason_error_string(ERR_get_error()));
}

int hconn_open(struct hconn *c, int fd, SSL_CTX *ctx, int handshake_ms)
{
	int r, ret;
	int64_t end = now_ms() + handshake_ms;

	c->fd = fd;
	c->ssl = NULL;
	c->in_pos = c->in_len = c->out_len = 0;
	c->broken = false;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (!ctx)
		return 0;
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
		return error_set(GROVE_EINTERNAL, "cannot start TLS");
	while ((r = SSL_accept(c->ssl)) != 1) {
		int left = (int)MAX(end - now_ms(), 0);
		if ((ret = tls_want(c, r, left)))
			return ret > 0 ? error_set(GROVE_EIO, "TLS: the client closed during the handshake") : ret;
	}
	return 0;
}

void hconn_close(struct hconn *c)
{
	if (c->ssl) {
		if (!c->broken)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

bool hconn_has_input(const struct hconn *c)
{
	return c->in_len > c->in_pos || (c->ssl && SSL_pending(c->ssl) > 0);
}

/* Reads more into the input buffer (which must be empty or have room):
 * >0 bytes, 0 at EOF, or an error. */
static ssize_t hconn_fill(struct hconn *c, int timeout_ms)
{
	ssize_t n;
	int ret;

	if (c->in_pos == c->in_len)
		c->in_pos = c->in_len = 0;
	if (c->in_len == sizeof(c->in))
		return error_set(GROVE_ETOOBIG, "the input buffer is full");
	for (;;) {
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof(c->in) - c->in_len));
			if (r > 0) {
				n = r;
				break;
			}
			if ((ret = tls_want(c, r, timeout_ms)))
				return ret > 0 ? 0 : ret;
			continue;
		}
		n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return error_set(GROVE_EIO, "read: %s", strerror(errno));
		if ((ret = hconn_wait(c, POLLIN, timeout_ms)))
			return ret;
	}
	c->in_len += (size_t)n;
	return n;
}

int hconn_read_head(struct hconn *c, struct http_head *h, int wait_ms, int *status)
{
	int64_t end = now_ms() + wait_ms;
	size_t n;
	ssize_t r;

	*status = 0;
	/* What is left of the last request goes to the front: a head is
	 * always parsed from one place. */
	if (c->in_pos) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	while (!(n = http_head_end(c->in, c->in_len))) {
		if (c->in_len >= HTTP_HEAD_MAX) {
			*status = 431;
			return error_set(GROVE_EPROTO, "the request's headers are over %d bytes", HTTP_HEAD_MAX);
		}
		int left = (int)(end - now_ms());
		if (left <= 0)
			return error_set(GROVE_ETIMEOUT, "no complete request within %d ms", wait_ms);
		r = hconn_fill(c, left);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return c->in_len ? error_set(GROVE_EPROTO, "the client closed in the middle of a request") :
					   error_set(GROVE_ECANCELLED, "the client closed the connection");
	}
	if (n > HTTP_HEAD_MAX) {
		*status = 431;
		return error_set(GROVE_EPROTO, "the request's headers are over %d bytes", HTTP_HEAD_MAX);
	}
	c->in_pos = n;
	return http_head_parse(h, c->in, n, status);
}

void hbody_init(struct hbody *b, const struct http_head *h, uint64_t max)
{
	memset(b, 0, sizeof(*b));
	b->chunked = h->chunked;
	b->gzip = h->gzip;
	b->left = h->content_length < 0 ? 0 : h->content_length;
	b->max = max;
	b->done = !b->chunked && b->left == 0;
}

void hbody_release(struct hbody *b)
{
	if (b->z_init)
		inflateEnd(&b->z);
	b->z_init = false;
}

/* The next raw body bytes (before gzip), at most size, taken from the
 * connection: >0 with *data in its buffer, 0 at the body's end, or an error. */
static ssize_t hbody_raw(struct hbody *b, struct hconn *c, size_t size, const char **data)
{
	for (;;) {
		if (b->done)
			return 0;
		if (c->in_pos == c->in_len) {
			ssize_t r = hconn_fill(c, c->timeout_ms);
			if (r < 0)
				return r;
			if (r == 0)
				return error_set(GROVE_EPROTO, "the client closed before the end of the request's body");
		}
		size_t avail = MIN(c->in_len - c->in_pos, size);
		if (!b->chunked) {
			size_t n = (size_t)MIN((int64_t)avail, b->left);
			*data = c->in + c->in_pos;
			c->in_pos += n;
			b->left -= (int64_t)n;
			b->done = b->left == 0;
			return (ssize_t)n;
		}
		size_t dl;
		ssize_t r = http_chunked_take(&b->ch, c->in + c->in_pos, avail, data, &dl);
		if (r < 0)
			return r;
		c->in_pos += (size_t)r;
		b->done = b->ch.done;
		if (dl)
			return (ssize_t)dl;
	}
}

/* gzip: inflates what is buffered, reading raw bytes when it runs dry. */
static ssize_t hbody_inflate(struct hbody *b, struct hconn *c, char *out, size_t size)
{
	if (!b->z_init) {
		if (inflateInit2(&b->z, 16 + MAX_WBITS) != Z_OK)
			return error_set(GROVE_EINTERNAL, "cannot start zlib");
		b->z_init = true;
	}
	for (;;) {
		if (b->z_end)
			return b->done || hbody_raw(b, c, 1, &(const char *){ NULL }) == 0 ? 0 :
			       error_set(GROVE_EPROTO, "the request's body goes on after its gzip stream");
		if (!b->z.avail_in) {
			const char *raw;
			ssize_t r = hbody_raw(b, c, SIZE_MAX, &raw);
			if (r < 0)
				return r;
			if (r == 0)
				return error_set(GROVE_EPROTO, "the request's gzip stream is cut short");
			b->z.next_in = (Bytef *)raw;
			b->z.avail_in = (uInt)r;
		}
		b->z.next_out = (Bytef *)out;
		b->z.avail_out = (uInt)MIN(size, (size_t)UINT32_MAX);
		int zr = inflate(&b->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			b->z_end = true;
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return error_set(GROVE_EPROTO, "the request's gzip stream is malformed");
		size_t n = size - b->z.avail_out;
		if (n)
			return (ssize_t)n;
	}
}

ssize_t hbody_read(struct hbody *b, struct hconn *c, char *out, size_t size)
{
	ssize_t n;

	if (b->gzip) {
		n = hbody_inflate(b, c, out, size);
	} else {
		const char *raw;
		n = hbody_raw(b, c, size, &raw);
		if (n > 0)
			memcpy(out, raw, (size_t)n);
	}
	if (n > 0 && (b->total += (uint64_t)n) > b->max)
		return error_set(GROVE_ETOOBIG, "the request's body is over %llu bytes", (unsigned long long)b->max);
	return n;
}

/* Sends all of data now. */
static int hconn_send(struct hconn *c, const char *data, size_t len)
{
	int ret;
	while (len && !c->broken) {
		ssize_t n;
		if (c->ssl) {
			int r = SSL_write(c->ssl, data, (int)MIN(len, (size_t)INT32_MAX));
			if (r <= 0) {
				if ((ret = tls_want(c, r, c->timeout_ms)))
					goto fail;
				continue;
			}
			n = r;
		} else {
			n = send(c->fd, data, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR) {
					ret = error_set(GROVE_EIO, "send: %s", strerror(errno));
					goto fail;
				}
				if ((ret = hconn_wait(c, POLLOUT, c->timeout_ms)))
					goto fail;
				continue;
			}
		}
		data += n;
		len -= (size_t)n;
	}
	return c->broken ? GROVE_EIO : 0;
fail:
	c->broken = true;
	return ret > 0 ? error_set(GROVE_EIO, "the client closed the connection") : ret;
}

int hconn_flush(struct hconn *c)
{
	int ret = hconn_send(c, c->out, c->out_len);
	c->out_len = 0;
	return ret;
}

int hconn_write(struct hconn *c, const void *data, size_t len)
{
	int ret;
	/* Large pieces go out as they are, not through the buffer (after
	 * what is in it). */
	bool direct = len >= sizeof(c->out) / 2;
	if ((direct || c->out_len + len > sizeof(c->out)) && (ret = hconn_flush(c)))
		return ret;
	if (direct)
		return hconn_send(c, data, len);
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

int hconn_printf(struct hconn *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(buf))
		return error_set(GROVE_EINTERNAL, "a response header does not fit");
	return hconn_write(c, buf, (size_t)n);
}

int hconn_chunk(struct hconn *c, const void *data, size_t len)
{
	int ret = hconn_printf(c, "%zx\r\n", len);
	if (!ret)
		ret = hconn_write(c, data, len);
	if (!ret)
		ret = hconn_write(c, "\r\n", 2);
	return ret;
}

int hconn_chunk_end(struct hconn *c)
{
	int ret = hconn_write(c, "0\r\n\r\n", 5);
	return ret ? ret : hconn_flush(c);
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

int hconn_respond_text(struct hconn *c, int status, const char *extra_headers, bool close, const char *body)
{
	int ret = hconn_printf(c,
			       "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
			       "Cache-Control: no-cache\r\n%s%s\r\n",
			       status, http_reason(status), strlen(body), extra_headers ? extra_headers : "",
			       close ? "Connection: close\r\n" : "");
	if (!ret)
		ret = hconn_write(c, body, strlen(body));
	return ret ? ret : hconn_flush(c);
}
