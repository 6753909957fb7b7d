/*
 * The parts of HTTP/1.1 (RFC 9112) a smart HTTP git server reads from the
 * network: a request's head, a chunked body's framing, and Basic
 * credentials. Pure functions over bounded buffers (no I/O), so the unit
 * tests and the fuzzer drive them as they are.
 *
 * Only what git's client sends is taken, strictly: a header that would
 * make the body's length ambiguous (both Content-Length and chunked, two
 * lengths, a transfer coding other than chunked) is refused, as a request
 * smuggled past a proxy would use it.
 */
#ifndef GROVE_HTTPHEAD_H
#define GROVE_HTTPHEAD_H

#include "lib/common.h"

#define HTTP_HEAD_MAX 16384         /* a request line and its headers */
#define HTTP_HEADERS_MAX 100
#define HTTP_TARGET_MAX 2048

struct http_head {
	char method[8];                   /* "GET", "POST", … */
	char target[HTTP_TARGET_MAX];     /* as sent: path and query */
	int minor;                        /* HTTP/1.<minor> */
	int64_t content_length;           /* -1: none given */
	bool chunked;                     /* Transfer-Encoding: chunked */
	bool gzip;                        /* Content-Encoding: gzip */
	bool expect_continue;             /* Expect: 100-continue */
	bool close;                       /* the client wants the connection closed after this */
	char authorization[1024];         /* "" if none */
	char git_protocol[64];            /* Git-Protocol: "version=2" */
	char content_type[128];
};

/* The length of the head at the start of buf, its empty line included; 0
 * while it is not complete. */
size_t http_head_end(const char *buf, size_t len);

/*
 * Parses a complete head (buf, len: what http_head_end measured). 0, or
 * GROVE_EPROTO with what is wrong, and *status the answer it deserves (400,
 * 414 URI too long, 431 headers too large, 501 a coding not implemented,
 * 505 not HTTP/1.x).
 */
int http_head_parse(struct http_head *h, const char *buf, size_t len, int *status);

/* The value of query parameter name in target ("" if absent: 0 still),
 * GROVE_EPROTO if it is there but longer than out. */
int http_query_param(const char *target, const char *name, char *out, size_t size);

/*
 * A chunked body's framing (RFC 9112 7.1), fed as bytes arrive: each step
 * either consumes framing or points at body bytes inside the input.
 */
struct http_chunked {
	int state;
	uint64_t left;                    /* bytes of the current chunk still to come */
	unsigned line;                    /* bytes of the size line or trailer line so far */
	bool done;                        /* the last chunk and the trailers are read */
};

/*
 * Takes from in[0..len): returns how many bytes it consumed (at least one
 * if len > 0 and the body is not done), with *data and *data_len the body
 * bytes among them (*data_len 0: framing only), or GROVE_EPROTO when the
 * framing is wrong. After c->done, nothing more belongs to the body.
 */
ssize_t http_chunked_take(struct http_chunked *c, const char *in, size_t len, const char **data, size_t *data_len);

/*
 * "Basic base64(user:password)": 0 with both, GROVE_EPROTO if it is not
 * Basic or not well formed, or does not fit.
 */
int http_basic_credentials(const char *authorization, char *user, size_t user_size, char *password,
			   size_t password_size);

#endif
