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

/*
 * Where a push's pack starts in what its client sends: after the commands
 * (pkt-lines up to a flush) and, when the first command line asks for
 * push-options, after those (up to a second flush). Fed the client's bytes
 * as they come, in pieces of any size; once done, the pack is everything
 * past hdr_len. A gate that limits the size of a push counts the pack itself
 * this way, not the pack plus a guess at the commands. Holds at most one
 * packet (PKT_MAX); buf is the caller's, of PKT_MAX bytes.
 */
struct push_head {
	char *buf;
	size_t have;          /* bytes of an unfinished packet in buf */
	uint64_t consumed;    /* bytes parsed before buf[0] */
	int flushes;          /* flushes still to come before the pack */
	bool first_seen;
	bool done;            /* hdr_len is known */
	bool failed;          /* not pkt-lines: hdr_len stays unknown */
	uint64_t hdr_len;
	uint64_t max_head;    /* 0, or the most the part before the pack may be */
	bool too_big;         /* it went past max_head */
};

void push_head_init(struct push_head *ph, char *buf);
void push_head_feed(struct push_head *ph, const void *data, size_t len);

#endif
