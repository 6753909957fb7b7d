/*
 * A push that goes on when its primary dies mid-call (router.c).
 *
 * While a voted push runs, the router keeps what its client sent (every
 * message after the first) and what its client was sent of git's stdout.
 * If the primary's store dies or hangs before any ref moved (no vote
 * committed), the push starts again on the other replicas: they get the
 * first message and the kept ones, then the rest as it comes, and the
 * client gets only the part of the new primary's output it had not had
 * (lib/pktresume.h). The client sees one push that took a little longer.
 *
 * What is kept is bounded per push (cluster.resumeBuffer) and for all
 * pushes together (cluster.resumeBufferTotal); a push past either can no
 * longer be resumed, and ends as before with an error that says to retry.
 */
#ifndef GROVE_CLUSTER_RESUME_H
#define GROVE_CLUSTER_RESUME_H

#include "lib/pktresume.h"
#include "lib/rpc.h"

#include <stdatomic.h>

struct resume_budget {
	atomic_llong held;        /* bytes kept by every push now */
	_Atomic long long max_total;      /* cluster.resumeBufferTotal */
	_Atomic long long max_push;       /* cluster.resumeBuffer */
};

struct resume {
	struct resume_budget *budget;
	grpc_byte_buffer **in;    /* the client's messages after the first */
	size_t nin, cap;
	struct strbuf seen;       /* git's stdout the client was sent */
	long long held;           /* bytes of in and seen, charged to budget */
	bool off;                 /* past a bound: cannot be resumed */
	bool resumed;             /* the push runs on its second primary */
	bool splicing;            /* the client had output of the first: the new one's is spliced */
	struct pkt_resume splice; /* the client's stream, from the new primary */
};

void resume_init(struct resume *rs, struct resume_budget *budget);
void resume_release(struct resume *rs);

/* What was kept goes, and the call can no longer be resumed. */
void resume_give_up(struct resume *rs);

/* A message from the client: kept, unless past a bound. Its index, or SIZE_MAX if not kept. */
size_t resume_note_in(struct resume *rs, grpc_byte_buffer *bb);

/* A message of the primary, as it goes to the client: its stdout is kept. */
void resume_note_out(struct resume *rs, grpc_byte_buffer *bb);

/*
 * The primary died: from now on the client's stream comes from another.
 * advertised: the stream starts with the refs (SSH, not smart HTTP).
 * GROVE_EPRECOND (and why) when the push cannot be resumed.
 */
int resume_start(struct resume *rs, bool advertised);

/*
 * A message of the new primary: *out is what goes to the client instead
 * (NULL: nothing; the caller destroys it). GROVE_EPRECOND when the new
 * primary shows other refs than the client was shown.
 */
int resume_relay(struct resume *rs, grpc_byte_buffer *bb, grpc_byte_buffer **out);

#endif
