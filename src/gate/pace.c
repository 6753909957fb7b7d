/* The send-ahead limit: see pace.h. */
#include "gate/pace.h"

#include <string.h>

void pace_init(struct pace *p, uint32_t window, uint32_t grant_step, int64_t now)
{
	memset(p, 0, sizeof(*p));
	p->limit = p->floor = PACE_FLOOR;
	p->win_max = window;
	p->grant_step = grant_step;
	p->progress_at = now;
}

/* How long held back without an adjust is a stall. */
static int64_t stall_after(const struct pace *p)
{
	return p->grant_step && p->grant_step < p->limit ? PACE_STALL_KNOWN_US : PACE_STALL_US;
}

/*
 * The adjusts covered everything up to p->acked, delta of it new: the
 * newest send they covered whole gives a round trip. A send covered only in
 * part gives none yet (its bytes are not all taken).
 */
static void take_sample(struct pace *p, uint64_t delta, int64_t now)
{
	int64_t at = -1;
	while (p->count && p->mark[p->head].end <= p->acked) {
		at = p->mark[p->head].at;
		p->head = (p->head + 1) % PACE_MARKS;
		p->count--;
	}
	if (at < 0)
		return;
	int64_t rtt = now - at > 0 ? now - at : 1;
	if (!p->min_rtt || rtt < p->min_rtt)
		p->min_rtt = rtt;
	/* The round trip above the smallest is the queue at the client.
	 * Worth more than a round trip (and more than a millisecond: on
	 * loopback the round trip is scheduling noise), the client takes
	 * bytes in slower than they come: a quarter off. Near none, and the
	 * limit held the output back: it grows by what the round trip
	 * delivered (doubling per round trip). In between it stays: growth
	 * on a queue already building would overshoot by the time its round
	 * trips tell. */
	int64_t queue = rtt - p->min_rtt;
	int64_t allowed = p->min_rtt > 1000 ? p->min_rtt : 1000;
	int64_t clean = p->min_rtt / 8 > 250 ? p->min_rtt / 8 : 250;
	if (queue > allowed) {
		uint64_t l = p->limit - p->limit / 4;
		if (l < p->floor)
			l = p->floor;
		if (l < p->limit)
			p->shrunk++;
		p->limit = l;
	} else if (queue <= clean && p->held_since_sample && p->limit < p->win_max) {
		/* Over a long link the window is what the client asked for,
		 * and a queue at the client would show: no need to find the
		 * limit a round trip at a time. (The TCP round trip cannot
		 * tell a long link: behind a load balancer it is the hop to
		 * the balancer. A client slow to start on loopback looks
		 * long at first; its later round trips bring the smallest
		 * down and the queue rule takes the limit back.) */
		p->limit = p->min_rtt >= PACE_LONG_RTT_US ? p->win_max : p->limit + delta;
		p->grown++;
	}
	p->held_since_sample = false;
}

uint32_t pace_room(struct pace *p, uint32_t window, int64_t now)
{
	if (window > p->win_max)
		p->win_max = window;
	uint64_t outstanding = p->win_max - window;
	if (outstanding > p->sent)
		outstanding = p->sent;   /* a window that shrank by itself */
	uint64_t acked = p->sent - outstanding;
	if (acked > p->acked) {
		uint64_t delta = acked - p->acked;
		p->acked = acked;
		p->progress_at = now;
		take_sample(p, delta, now);
	}

	for (;;) {
		if (p->limit >= p->win_max || !window) {
			p->holding = false;   /* the window rules */
			return window;
		}
		uint64_t room = p->limit > outstanding ? p->limit - outstanding : 0;
		if (room) {
			p->holding = false;
			return room < window ? (uint32_t)room : window;
		}
		p->held_since_sample = true;
		if (!p->holding) {
			p->holding = true;
			p->progress_at = now;
			return 0;
		}
		if (now - p->progress_at < stall_after(p))
			return 0;
		/* Held back, and nothing came: below this limit the client
		 * grants nothing, or the link is longer than the limit. Either
		 * way it is not to shrink back there (where it would stall
		 * again, each time for PACE_STALL_US). */
		p->limit *= 2;
		p->floor = p->limit;
		p->stalls++;
		p->progress_at = now;
	}
}

void pace_sent(struct pace *p, uint32_t n, int64_t now)
{
	if (!n)
		return;
	p->sent += n;
	if (p->count == PACE_MARKS) {
		/* Full (many small sends): the newest mark covers these too,
		 * with its earlier time, so a round trip is overstated, never
		 * understated. */
		p->mark[(p->head + p->count - 1) % PACE_MARKS].end = p->sent;
		return;
	}
	struct pace_mark *m = &p->mark[(p->head + p->count) % PACE_MARKS];
	m->end = p->sent;
	m->at = now;
	p->count++;
}

int64_t pace_wait(const struct pace *p, int64_t now)
{
	if (!p->holding)
		return -1;
	int64_t left = p->progress_at + stall_after(p) - now;
	return left > 0 ? left : 0;
}
