/*
 * Protocol buffers' wire format read without a descriptor. The cluster router
 * forwards requests of any method, also of one added to the store after the
 * router was built; it needs only field 1 of the first message (every
 * repository-scoped request has `Repository repository = 1`, proto/README.md)
 * to route it, and rewrites that field for each store. Everything else passes
 * through as bytes.
 *
 * The input comes from the network: every length is checked against what is
 * left, varints are at most 10 bytes, groups (wire types 3 and 4, deprecated)
 * and field number 0 are refused as malformed.
 */
#ifndef GROVE_PBWIRE_H
#define GROVE_PBWIRE_H

#include "lib/common.h"
#include "lib/strbuf.h"

/* One field as pbwire_next reads it: a varint's value, or a LEN's bytes (in the buffer). */
struct pbwire_field {
	uint32_t num;
	int type;                 /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t varint;
	const uint8_t *val;
	size_t vlen;
};

/*
 * Reads the field at *pos of buf and moves *pos past it: 1 with f set, 0 at
 * the end of buf, GROVE_EPROTO when buf is not well-formed there.
 */
int pbwire_next(const uint8_t *buf, size_t len, size_t *pos, struct pbwire_field *f);

/*
 * Finds the length-delimited field number field: 1 with *val and *vlen set to
 * its last occurrence (protobuf's rule for a singular field), 0 when absent,
 * GROVE_EPROTO when buf is not well-formed.
 */
int pbwire_find(const uint8_t *buf, size_t len, uint32_t field, const uint8_t **val, size_t *vlen);

/* The longest varint: 64 bits, 7 per byte. */
#define PBWIRE_VARINT_MAX 10

/* Writes v as a varint into out; returns how many bytes it took. */
size_t pbwire_put_varint(uint8_t out[PBWIRE_VARINT_MAX], uint64_t v);

/* Reads a varint at buf[*pos], advancing *pos: 0, or GROVE_EPROTO. */
int pbwire_get_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out);

/*
 * Appends to out buf without any occurrence of field, then field as a
 * length-delimited value. GROVE_EPROTO when buf is malformed.
 */
int pbwire_replace(const uint8_t *buf, size_t len, uint32_t field, const uint8_t *val, size_t vlen,
		   struct strbuf *out);

#endif
