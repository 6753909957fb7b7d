/* HTTP/1.1 request heads, chunked framing and Basic credentials: see httphead.h. */
#include "lib/httphead.h"
#include "lib/error.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <strings.h>

size_t http_head_end(const char *buf, size_t len)
{
	/* git's client (curl) ends lines with CRLF; a bare LF is taken too
	 * (RFC 9112 2.2), so the end is "\n\r\n" or "\n\n". */
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i - 1] == '\n')
			return i + 1;
		if (buf[i - 1] == '\r' && i >= 2 && buf[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

static int head_error(int *status, int code, const char *what)
{
	*status = code;
	return error_set(GROVE_EPROTO, "%s", what);
}

/* tchar of RFC 9110 5.6.2: what a method or a header's name is made of. */
static bool is_token(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("!#$%&'*+-.^_`|~", s[i]))
			return false;
	return true;
}

/* "METHOD SP target SP HTTP/1.x" */
static int parse_request_line(struct http_head *h, const char *line, size_t n, int *status)
{
	const char *sp1 = memchr(line, ' ', n), *sp2;

	if (!sp1 || !is_token(line, (size_t)(sp1 - line)))
		return head_error(status, 400, "the request line has no method");
	if ((size_t)(sp1 - line) >= sizeof(h->method))
		return head_error(status, 501, "the method is not one this server knows");
	memcpy(h->method, line, (size_t)(sp1 - line));
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line));
	if (!sp2 || sp2 == sp1 + 1)
		return head_error(status, 400, "the request line has no target");
	if ((size_t)(sp2 - sp1 - 1) >= sizeof(h->target))
		return head_error(status, 414, "the request's target is too long");
	memcpy(h->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (h->target[0] != '/')
		return head_error(status, 400, "the request's target is not a path");
	for (const char *p = h->target; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return head_error(status, 400, "the request's target has a control character");
	size_t vlen = n - (size_t)(sp2 + 1 - line);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) || (sp2[8] != '0' && sp2[8] != '1'))
		return head_error(status, 505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
	h->minor = sp2[8] - '0';
	h->close = h->minor == 0;
	return 0;
}

/* A comma-separated list value has token tok (case-insensitive). */
static bool list_has(const char *v, const char *tok)
{
	size_t tl = strlen(tok);
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *e = v;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - v) == tl && !strncasecmp(v, tok, tl))
			return true;
		v = e;
	}
	return false;
}

static int copy_value(char *dst, size_t size, const char *v, int *status)
{
	if (strlen(v) >= size)
		return head_error(status, 431, "a header's value is too long");
	strlcpy_(dst, v, size);
	return 0;
}

static int take_length(struct http_head *h, const char *v, int *status)
{
	char *end;
	if (h->content_length >= 0)
		return head_error(status, 400, "Content-Length is given twice");
	if (!isdigit((unsigned char)*v) || strlen(v) > 18)
		return head_error(status, 400, "Content-Length is not a number");
	h->content_length = strtoll(v, &end, 10);
	if (*end)
		return head_error(status, 400, "Content-Length is not a number");
	return 0;
}

static int take_header(struct http_head *h, const char *name, const char *v, int *status)
{
	if (!strcasecmp(name, "Content-Length"))
		return take_length(h, v, status);
	if (!strcasecmp(name, "Transfer-Encoding")) {
		/* chunked, and nothing else: the only coding git sends. */
		if (strcasecmp(v, "chunked") || h->chunked)
			return head_error(status, 501, "only the chunked transfer coding is taken");
		h->chunked = true;
		return 0;
	}
	if (!strcasecmp(name, "Content-Encoding")) {
		if (!strcasecmp(v, "gzip") || !strcasecmp(v, "x-gzip"))
			h->gzip = true;
		else if (strcasecmp(v, "identity"))
			return head_error(status, 415, "only gzip is taken as a content coding");
		return 0;
	}
	if (!strcasecmp(name, "Expect")) {
		if (strcasecmp(v, "100-continue"))
			return head_error(status, 417, "only Expect: 100-continue is taken");
		h->expect_continue = true;
		return 0;
	}
	if (!strcasecmp(name, "Connection")) {
		if (list_has(v, "close"))
			h->close = true;
		else if (list_has(v, "keep-alive"))
			h->close = false;
		return 0;
	}
	if (!strcasecmp(name, "Authorization"))
		return copy_value(h->authorization, sizeof(h->authorization), v, status);
	if (!strcasecmp(name, "Git-Protocol"))
		return copy_value(h->git_protocol, sizeof(h->git_protocol), v, status);
	if (!strcasecmp(name, "Content-Type"))
		return copy_value(h->content_type, sizeof(h->content_type), v, status);
	return 0;
}

/* "Name: value" with the value's surrounding blanks trimmed. */
static int parse_header(struct http_head *h, char *line, size_t n, int *status)
{
	char *colon = memchr(line, ':', n);
	if (!colon || !is_token(line, (size_t)(colon - line)))
		return head_error(status, 400, "a header line is not \"Name: value\"");
	*colon = '\0';
	char *v = colon + 1, *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	for (const char *p = v; *p; p++)
		if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
			return head_error(status, 400, "a header's value has a control character");
	return take_header(h, line, v, status);
}

int http_head_parse(struct http_head *h, const char *buf, size_t len, int *status)
{
	char copy[HTTP_HEAD_MAX + 1];
	size_t pos = 0;
	int ret, nheaders = 0;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	*status = 0;
	if (len > HTTP_HEAD_MAX)
		return head_error(status, 431, "the request's headers are too large");
	memcpy(copy, buf, len);
	copy[len] = '\0';
	if (memchr(copy, '\0', len))
		return head_error(status, 400, "the request has a NUL byte");
	for (int first = 1;; first = 0) {
		char *nl = memchr(copy + pos, '\n', len - pos);
		if (!nl)
			return head_error(status, 400, "the request's head does not end with an empty line");
		size_t n = (size_t)(nl - (copy + pos));
		if (n && copy[pos + n - 1] == '\r')
			n--;
		if (!n && !first)
			break;
		if (!first && ++nheaders > HTTP_HEADERS_MAX)
			return head_error(status, 431, "the request has too many headers");
		copy[pos + n] = '\0';
		ret = first ? parse_request_line(h, copy + pos, n, status) : parse_header(h, copy + pos, n, status);
		if (ret)
			return ret;
		pos = (size_t)(nl - copy) + 1;
	}
	if (h->chunked && h->content_length >= 0)
		return head_error(status, 400, "both Content-Length and chunked were given");
	return 0;
}

int http_query_param(const char *target, const char *name, char *out, size_t size)
{
	const char *q = strchr(target, '?');
	size_t nl = strlen(name);

	out[0] = '\0';
	while (q && *q) {
		q++;
		const char *amp = strchr(q, '&');
		size_t seg = amp ? (size_t)(amp - q) : strlen(q);
		if (seg > nl && !strncmp(q, name, nl) && q[nl] == '=') {
			if (seg - nl - 1 >= size)
				return error_set(GROVE_EPROTO, "the query's %s is too long", name);
			memcpy(out, q + nl + 1, seg - nl - 1);
			out[seg - nl - 1] = '\0';
			return 0;
		}
		q = amp;
	}
	return 0;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF, CH_DONE };

#define CHUNK_LINE_MAX 1024            /* a size line with its extensions, or a trailer line */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One framing byte (not chunk data): the state moves on, or the framing is wrong. */
static int chunked_framing(struct http_chunked *c, char ch)
{
	int v;
	if (++c->line > CHUNK_LINE_MAX)
		return error_set(GROVE_EPROTO, "a chunk's size line or a trailer is too long");
	switch (c->state) {
	case CH_SIZE:
		if ((v = hexval(ch)) >= 0) {
			if (c->left >> 56)
				return error_set(GROVE_EPROTO, "a chunk's size is too large");
			c->left = c->left * 16 + (uint64_t)v;
			return 0;
		}
		if (c->line == 1)
			return error_set(GROVE_EPROTO, "a chunk has no size");
		if (ch == ';' || ch == ' ' || ch == '\t') {
			c->state = CH_EXT;
			return 0;
		}
		/* The size ends with its line: */
		/* fallthrough */
	case CH_EXT:
		if (ch == '\r') {
			c->state = CH_SIZE_LF;
			return 0;
		}
		if (ch != '\n')
			return c->state == CH_EXT && ch != '\0' ? 0 : error_set(GROVE_EPROTO, "a chunk's size is malformed");
		/* fallthrough */
	case CH_SIZE_LF:
		if (ch != '\n')
			return error_set(GROVE_EPROTO, "a chunk's size line does not end");
		c->line = 0;
		c->state = c->left ? CH_DATA : CH_TRAILER;
		return 0;
	case CH_DATA_CR:
		if (ch == '\r') {
			c->state = CH_DATA_LF;
			return 0;
		}
		/* fallthrough */
	case CH_DATA_LF:
		if (ch != '\n')
			return error_set(GROVE_EPROTO, "a chunk is longer than its size says");
		c->line = 0;
		c->state = CH_SIZE;
		return 0;
	case CH_TRAILER:
		/* Trailer lines are read and dropped; an empty one ends the body. */
		if (ch == '\r' && c->line == 1) {
			c->state = CH_TRAILER_LF;
			return 0;
		}
		if (ch == '\n') {
			c->done = c->line == 1;
			c->state = c->done ? CH_DONE : CH_TRAILER;
			c->line = 0;
		}
		return 0;
	case CH_TRAILER_LF:
		if (ch != '\n')
			return error_set(GROVE_EPROTO, "the chunked body does not end right");
		c->done = true;
		c->state = CH_DONE;
		return 0;
	}
	return error_set(GROVE_EPROTO, "the chunked body has ended");
}

ssize_t http_chunked_take(struct http_chunked *c, const char *in, size_t len, const char **data, size_t *data_len)
{
	size_t i = 0;
	int ret;

	*data = NULL;
	*data_len = 0;
	if (c->state == CH_DATA) {
		size_t n = (size_t)MIN((uint64_t)len, c->left);
		*data = in;
		*data_len = n;
		c->left -= n;
		if (!c->left) {
			c->state = CH_DATA_CR;
			c->line = 0;
		}
		return (ssize_t)n;
	}
	while (i < len && c->state != CH_DATA && !c->done) {
		if ((ret = chunked_framing(c, in[i])))
			return ret;
		i++;
	}
	return (ssize_t)i;
}

int http_basic_credentials(const char *authorization, char *user, size_t user_size, char *password,
			   size_t password_size)
{
	unsigned char dec[768];
	const char *b64;
	size_t n, pad = 0;

	if (strncasecmp(authorization, "Basic ", 6))
		return error_set(GROVE_EPROTO, "the credentials are not Basic");
	b64 = authorization + 6;
	while (*b64 == ' ')
		b64++;
	n = strlen(b64);
	if (!n || n % 4 || n / 4 * 3 > sizeof(dec) - 1)
		return error_set(GROVE_EPROTO, "the Basic credentials are not base64 of a sensible length");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b64[i]) && b64[i] != '+' && b64[i] != '/' && !(b64[i] == '=' && i >= n - 2))
			return error_set(GROVE_EPROTO, "the Basic credentials are not base64");
	pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
	if (b64[n - 2] == '=' && b64[n - 1] != '=')
		return error_set(GROVE_EPROTO, "the Basic credentials are not base64");
	int dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
	if (dl < 0)
		return error_set(GROVE_EPROTO, "the Basic credentials are not base64");
	dl -= (int)pad;
	dec[dl] = '\0';
	char *colon = memchr(dec, ':', (size_t)dl);
	if (!colon || memchr(dec, '\0', (size_t)dl))
		return error_set(GROVE_EPROTO, "the Basic credentials are not \"user:password\"");
	*colon = '\0';
	if (strlen((char *)dec) >= user_size || strlen(colon + 1) >= password_size)
		return error_set(GROVE_EPROTO, "the Basic credentials are too long");
	strlcpy_(user, (char *)dec, user_size);
	strlcpy_(password, colon + 1, password_size);
	return 0;
}
