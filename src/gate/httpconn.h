/*
 * One HTTP/1.1 connection of the gate's smart HTTP door, over TLS or not:
 * reads with a deadline, a request's head and body (Content-Length or
 * chunked, gzip or not, each bounded), and responses whose bodies go out in
 * chunks. Blocking with deadlines: the connection has a process of its own
 * (gate.h), so nothing else waits on it.
 */
#ifndef GROVE_GATE_HTTPCONN_H
#define GROVE_GATE_HTTPCONN_H

#include "lib/common.h"
#include "lib/httphead.h"

#include <openssl/ssl.h>
#include <zlib.h>

#define HCONN_BUF (64 * 1024)

struct hconn {
	int fd;
	SSL *ssl;                 /* NULL: plain HTTP */
	char in[HCONN_BUF];       /* read, not yet taken */
	size_t in_pos, in_len;
	char out[HCONN_BUF];      /* written, not yet sent */
	size_t out_len;
	bool broken;              /* a read or write failed: the connection is done */
	int timeout_ms;           /* how long one read or write may wait for the peer */
};

/* The TLS context of http.tlsCert and http.tlsKey (NULL with an error). */
SSL_CTX *hconn_tls_context(const char *cert_file, const char *key_file);

/* Takes fd; with ctx, the TLS handshake within handshake_ms. 0, or an error. */
int hconn_open(struct hconn *c, int fd, SSL_CTX *ctx, int handshake_ms);
void hconn_close(struct hconn *c);

/* Bytes were read and not taken, or TLS holds some. */
bool hconn_has_input(const struct hconn *c);

/*
 * Reads a request's head within wait_ms (the first byte may take that
 * long; the head, too: a client that trickles it is cut off). 0 with the
 * head parsed; GROVE_ECANCELLED when the client closed the connection
 * before a new request; GROVE_ETIMEOUT; GROVE_EPROTO with *status.
 */
int hconn_read_head(struct hconn *c, struct http_head *h, int wait_ms, int *status);

/* A request's body, decoded as it arrives. */
struct hbody {
	bool chunked, gzip;
	int64_t left;             /* Content-Length: bytes still to come */
	struct http_chunked ch;
	z_stream z;
	bool z_init, z_end;
	uint64_t max, total;      /* decoded bytes allowed and taken */
	bool done;
};

void hbody_init(struct hbody *b, const struct http_head *h, uint64_t max);
void hbody_release(struct hbody *b);
/* Up to size decoded bytes into out: >0, 0 at the body's end, or an error
 * (GROVE_EPROTO malformed, GROVE_ETOOBIG over max, GROVE_EIO, GROVE_ETIMEOUT). */
ssize_t hbody_read(struct hbody *b, struct hconn *c, char *out, size_t size);

/* Queued for sending (sent when the buffer fills or on hconn_flush). */
int hconn_write(struct hconn *c, const void *data, size_t len);
int hconn_printf(struct hconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int hconn_flush(struct hconn *c);

/* A body chunk (len > 0), and the last one. */
int hconn_chunk(struct hconn *c, const void *data, size_t len);
int hconn_chunk_end(struct hconn *c);

/* A whole response with a text body ("Connection: close" with close). */
int hconn_respond_text(struct hconn *c, int status, const char *extra_headers, bool close, const char *body);

const char *http_reason(int status);

#endif
