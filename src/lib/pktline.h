/*
 * git's pkt-line framing: four hex digits of length (including themselves),
 * then the payload; 0000 is a flush, 0001 a delimiter and 0002 a
 * response-end (protocol v2). A packet is at most 65520 bytes, so a parser
 * never needs more than that buffered, whatever the peer claims.
 */
#ifndef GROVE_PKTLINE_H
#define GROVE_PKTLINE_H

#include "lib/strbuf.h"

#define PKT_MAX 65520
#define PKT_DATA_MAX (PKT_MAX - 4)

enum pkt_type { PKT_DATA, PKT_FLUSH, PKT_DELIM, PKT_RESPONSE_END };

struct pkt {
	enum pkt_type type;
	const char *data;   /* points into the parsed buffer; PKT_DATA only */
	size_t len;
};

/*
 * Parses the packet at the start of buf. Returns the bytes it spans (> 0), 0
 * when buf holds only part of it (read more, at most PKT_MAX), or GROVE_EPROTO
 * for a malformed length, with the reason in error_msg().
 */
long pkt_parse(const char *buf, size_t len, struct pkt *out);

/* Appends one data packet; GROVE_EINVAL when len > PKT_DATA_MAX. */
int pkt_add(struct strbuf *sb, const void *data, size_t len);
int pkt_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pkt_add_flush(struct strbuf *sb);
/* Appends data as side-band packets of band 1, 2 or 3, split as needed. */
int pkt_add_sideband(struct strbuf *sb, int band, const void *data, size_t len);

#endif
