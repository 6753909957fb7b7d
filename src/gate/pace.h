/*
 * How far ahead of the client the gate sends: a clone's output, paced.
 *
 * SSH flow control lets a server have a whole channel window outstanding:
 * 2 MiB for OpenSSH's client. A server that fills it whenever it has the
 * data (the gate, whose store has a pack ready long before the client has
 * taken it in) parks up to 2 MiB in the client's socket and buffers, and
 * the client pays for it: its ssh process copies, grows and shrinks its
 * buffers and works on cache-cold bytes. Measured on loopback (a 100 MiB
 * clone, bench/README.md): the OpenSSH client's CPU 550 ms with the whole
 * window outstanding, 280 ms with 256 KiB, and the clone 10-20 % faster.
 *
 * A fixed small limit is wrong elsewhere: over a link with a round trip of
 * 50 ms, 256 KiB in flight is 5 MiB/s; and a client that grants window
 * only when a large part of it is used (libssh: half of it) would never
 * grant any below that, and the session would hang. So the limit adapts,
 * from what the client's window adjusts tell (the time from sending a byte
 * to the adjust that covers it is the round trip, client's queue included):
 *
 *  - it starts at PACE_FLOOR;
 *  - held back and no adjust for PACE_STALL_US: the client will not grant
 *    more below this limit, or the link is long: it doubles, and it will
 *    not shrink below that again. A client known to grant below the limit
 *    (OpenSSH, after every 3 packets taken in: the caller tells, from its
 *    version string, as OpenSSH's own compat.c knows its peers' quirks) is
 *    only slow when it does not, and sending it more would only queue
 *    more: for it the wait is PACE_STALL_KNOWN_US, a safety net;
 *  - held back and a round trip near the smallest seen (nothing queued at
 *    the client): it grows by what that round trip delivered (doubling per
 *    round trip, as TCP's slow start); over a long link (PACE_LONG_RTT_US)
 *    straight to the window;
 *  - a round trip above the smallest by more than the smallest (bytes
 *    queue at the client, which takes them slower than they come): it
 *    shrinks by a quarter, not below the floor; in between it stays.
 *
 * It never exceeds the window, so a client's flow control still holds. The
 * functions take the time (microseconds, monotonic) from the caller, which
 * keeps the state machine testable.
 */
#ifndef GROVE_GATE_PACE_H
#define GROVE_GATE_PACE_H

#include <stdbool.h>
#include <stdint.h>

/* OpenSSH grants more window once 3 packets of its 32 KiB are taken in
 * (channels.c, channel_check_window, for two decades). */
#define PACE_OPENSSH_STEP (3 * 32 * 1024)
/* Above that step. */
#define PACE_FLOOR (256 * 1024)
#define PACE_STALL_US 10000
#define PACE_STALL_KNOWN_US 500000
/* A smallest round trip this long is a network's, not scheduling's. */
#define PACE_LONG_RTT_US 5000
#define PACE_MARKS 64

struct pace {
	uint64_t limit;           /* bytes the client may have outstanding */
	uint64_t floor;           /* not below: PACE_FLOOR, raised by each stall */
	uint32_t win_max;         /* the largest window seen: outstanding = win_max - window */
	uint32_t grant_step;      /* the client grants once this much is taken in; 0: not known */
	uint64_t sent;            /* bytes sent so far */
	uint64_t acked;           /* bytes the client's adjusts covered so far */
	int64_t min_rtt;          /* smallest round trip seen, 0 before the first */
	int64_t progress_at;      /* last adjust, or when holding back began */
	bool holding;             /* the limit, not the window, stopped the last send */
	bool held_since_sample;
	/* sends not yet covered by an adjust: where each ended and when */
	struct pace_mark {
		uint64_t end;
		int64_t at;
	} mark[PACE_MARKS];
	unsigned head, count;
	/* what the adaptation did: stalls for the session's log line, all
	 * three for the tests */
	unsigned grown, shrunk, stalls;
};

/* grant_step: what the client is known to take in before it grants more
 * window (OpenSSH: 3 x 32 KiB); 0 when not known. */
void pace_init(struct pace *p, uint32_t window, uint32_t grant_step, int64_t now);

/*
 * What may be sent now, given the client's window as it is now (libssh's
 * ssh_channel_window_size): at most the window, and at most the limit
 * minus what is outstanding. Takes the round trips the window's growth
 * tells and adapts the limit.
 */
uint32_t pace_room(struct pace *p, uint32_t window, int64_t now);

/* n bytes were sent at now. */
void pace_sent(struct pace *p, uint32_t n, int64_t now);

/*
 * Microseconds until pace_room may say more without an adjust arriving
 * (the stall rule), or -1 when nothing is held back.
 */
int64_t pace_wait(const struct pace *p, int64_t now);

#endif
