/*
 * A gzip stream inflated as its bytes arrive, with a hard bound on what it
 * may inflate to: git sends a fetch's larger requests with
 * "Content-Encoding: gzip", and a few KiB of gzip can inflate to gigabytes.
 * No I/O: the caller feeds what it read (the smart HTTP door, the unit
 * tests and the fuzzer alike).
 */
#ifndef GROVE_GUNZIP_H
#define GROVE_GUNZIP_H

#include "lib/common.h"

#include <zlib.h>

struct gunzip {
	z_stream z;
	bool init;
	bool end;                 /* the gzip stream's end was read */
	uint64_t max, total;      /* inflated bytes allowed and made */
};

/* 0, or GROVE_EINTERNAL when zlib cannot start. */
int gunzip_init(struct gunzip *g, uint64_t max);
void gunzip_release(struct gunzip *g);

/*
 * Inflates from *in (*in_len bytes; both advanced past what was taken)
 * into out (size bytes): the number of bytes made (0: it needs more
 * input, or the stream ended), GROVE_EPROTO when the stream is malformed
 * or goes on after its end, GROVE_ETOOBIG past max.
 */
ssize_t gunzip_take(struct gunzip *g, const char **in, size_t *in_len, char *out, size_t size);

#endif
