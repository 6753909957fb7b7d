/*
 * One connection of the gate's smart HTTP door, HTTP/1.1 over TLS or not,
 * spoken by libmicrohttpd (as the admin API is): the door reads requests'
 * heads and bodies and writes answers through this, and never sees HTTP's
 * framing (chunks, Expect, keep-alive, TLS).
 *
 * libmicrohttpd calls back; the door's logic (door.h) is a blocking call
 * from a command's parsing to its log line. So the connection's process
 * has two threads: libmicrohttpd's, which only runs its callbacks, and the
 * door's (the caller of these functions). They meet in struct hconn, under
 * its mutex: the request's head, a bounded buffer of body bytes one way, a
 * bounded buffer of answer bytes the other. Each side waits while its
 * buffer is full or empty, so nothing is buffered without bound and a
 * slow client slows git (and a slow git, the client).
 *
 * The door's thread keeps every deadline (libmicrohttpd's own timeout is
 * off: its callbacks block, and it would count that as the client's
 * silence): a connection's first request within the login grace, the
 * next within gate.httpKeepAlive, and each wait for the client within
 * gate.idleTimeout. A deadline that passes cuts the connection.
 */
#ifndef GROVE_GATE_HTTPCONN_H
#define GROVE_GATE_HTTPCONN_H

#include "lib/common.h"
#include "lib/gunzip.h"

#include <sys/socket.h>

#define HTTP_HEAD_MAX 16384         /* a request line and its headers: over it, 431 */
#define HTTP_HEADERS_MAX 100
#define HTTP_PATH_MAX 2048          /* over it, 414 */

struct gate_config;

/* The certificate chain and key of gate.httpTlsCert and gate.httpTlsKey,
 * read and checked (the door's process hands them to libmicrohttpd). */
struct http_tls {
	char *cert, *key;           /* PEM, NUL-terminated */
};

/* NULL with an error that names the wrong file. */
struct http_tls *http_tls_load(const char *cert_file, const char *key_file);
void http_tls_free(struct http_tls *t);

/* A request's head, as libmicrohttpd parsed it. */
struct hhead {
	char method[16];
	char path[HTTP_PATH_MAX];   /* percent-decoded, without the query */
	char service[32];           /* ?service=, "" if absent (cut short if longer) */
	bool path_too_long;         /* 414 */
	bool head_too_big;          /* over HTTP_HEAD_MAX or HTTP_HEADERS_MAX: 431 */
	bool has_auth;              /* Basic credentials, well formed */
	char user[256];
	char password[128];
	char git_protocol[64];      /* Git-Protocol */
	bool gzip;                  /* Content-Encoding: gzip */
	bool bad_encoding;          /* another content coding: 415 */
	int64_t content_length;     /* -1: none given (chunked, or no body) */
	bool has_body;              /* a length over 0, or a Transfer-Encoding */
};

struct hconn;

/*
 * Serves fd (its PROXY header, if any, already read) with libmicrohttpd,
 * TLS with tls. peer names the client in the logs. Takes fd in all cases.
 */
int hconn_start(struct hconn **out, int fd, const struct http_tls *tls, const struct gate_config *cfg,
		const char *peer);
/* Stops libmicrohttpd (the connection is closed if it was not) and frees c. */
void hconn_free(struct hconn *c);

/*
 * Waits within wait_ms for the next request's head: 0 with *h;
 * GROVE_ECANCELLED when the connection closed (the client, a failed TLS
 * handshake, a request libmicrohttpd itself refused and closed after);
 * GROVE_ETIMEOUT, and the connection is cut.
 */
int hconn_next(struct hconn *c, struct hhead *h, int wait_ms);

/* The client is still there (a wait for a slot gives up when not). */
bool hconn_connected(struct hconn *c);

/*
 * The request's body, as libmicrohttpd decoded its framing (not gzip):
 * up to size bytes, 0 at its end, GROVE_ECANCELLED when the connection
 * closed, GROVE_ETIMEOUT (and the connection is cut). The first call lets
 * libmicrohttpd read the body (answering "Expect: 100-continue").
 */
ssize_t hconn_body_read(struct hconn *c, char *out, size_t size);
/* The rest of the body is not wanted: it is read and dropped (bounded)
 * until the answer can go, or the connection is cut. */
void hconn_body_drop(struct hconn *c);

/*
 * The answer. Either a whole one (text, or a short body of another type),
 * or a stream: a head, then bytes as they come, then its end. headers is
 * "Name: value\n"-separated, or NULL. 0, or GROVE_ECANCELLED once the
 * client is gone (nothing more goes to it).
 */
int hconn_respond(struct hconn *c, int status, const char *content_type, const char *headers, const void *body,
		  size_t len);
int hconn_stream_start(struct hconn *c, const char *content_type, const char *headers);
/* Blocks while the answer's buffer is full (the client reads slowly). */
int hconn_stream_write(struct hconn *c, const void *data, size_t len);
int hconn_stream_end(struct hconn *c);
/* Waits until the answer went out (or the connection ended): true if it did. */
bool hconn_finish(struct hconn *c);

/* A request's body once its gzip (if any) is undone, bounded. */
struct hbody {
	struct hconn *c;
	bool gzip;
	struct gunzip gz;
	char *raw;                  /* read, not yet inflated */
	size_t raw_pos, raw_len;
	uint64_t max, total;        /* decoded bytes allowed and taken */
	bool done;
};

void hbody_init(struct hbody *b, struct hconn *c, const struct hhead *h, uint64_t max);
void hbody_release(struct hbody *b);
/* Up to size decoded bytes: >0, 0 at the body's end, or an error
 * (GROVE_EPROTO malformed gzip, GROVE_ETOOBIG over max, GROVE_ECANCELLED,
 * GROVE_ETIMEOUT). */
ssize_t hbody_read(struct hbody *b, char *out, size_t size);

#endif
