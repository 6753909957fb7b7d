/*
 * Resuming git's output from a second run of the same command. A push whose
 * storage server died in the middle of the call runs again on another
 * (cluster/router.c), and its client must get the rest of one well-formed
 * stream: nothing it already has, nothing new missing.
 *
 * `seen` is what the client got of the first run's stdout. With an
 * advertisement (receive-pack over SSH speaks first), the second run's must
 * be the same bytes: the client acted on the first. After it, a packet the
 * client already has (progress, a hook's message) is dropped when the second
 * run sends it again, in the same order; every other packet goes out.
 */
#ifndef GROVE_PKTRESUME_H
#define GROVE_PKTRESUME_H

#include "lib/strbuf.h"

struct pkt_resume {
	const char *seen;     /* the caller's, kept until release */
	size_t seen_len;
	size_t adv_len;       /* bytes of seen that are the advertisement, its flush included */
	bool adv_whole;       /* the client got all of it (else: the rest of the stream goes out as it comes) */
	size_t matched;       /* bytes of the advertisement the second run sent again */
	size_t cursor;        /* offset in seen of the first packet after it not met again */
	struct strbuf pending; /* a packet of the second run, not whole yet */
	bool passthrough;     /* everything goes out as it comes */
};

/*
 * advertised: the stream starts with an advertisement. GROVE_EPRECOND when
 * seen cannot be resumed: it ends in the middle of a packet after the
 * advertisement (the client waits for that packet's end, which only the
 * first run knew), or is not pkt-lines.
 */
int pkt_resume_init(struct pkt_resume *r, const char *seen, size_t len, bool advertised);

/*
 * Feeds bytes of the second run's stdout, in pieces of any size; appends to
 * out what the client is to get. GROVE_EPRECOND when
 * its advertisement differs from the first's (the refs moved meanwhile).
 */
int pkt_resume_feed(struct pkt_resume *r, const void *data, size_t len, struct strbuf *out);

/* The second run ended: an unfinished packet it left goes out as it is. */
int pkt_resume_end(struct pkt_resume *r, struct strbuf *out);

void pkt_resume_release(struct pkt_resume *r);

#endif
