/*
 * Unit tests for src/gate/pace.c, the limit on how far the gate's output
 * runs ahead of the client: its rules one by one, then whole transfers to
 * simulated clients (a round trip, a rate, a window-grant policy), where
 * every byte must arrive, none beyond the window, at about the rate the
 * window alone allows — never a hang waiting for a grant that will not come.
 */
#include "../../src/gate/pace.c"
#include "lib/common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define KIB 1024u
#define MIB (1024u * 1024u)

/* A pacer for a 2 MiB window that sent its whole first limit and is held
 * back at time t (the limit, not the window, binds). */
static void held_at_floor(struct pace *p, uint32_t step, int64_t t)
{
	pace_init(p, 2 * MIB, step, 0);
	pace_sent(p, PACE_FLOOR, 0);
	assert_int_equal(pace_room(p, 2 * MIB - PACE_FLOOR, t), 0);
}

static void test_starts_at_floor(void **state)
{
	struct pace p;
	(void)state;
	pace_init(&p, 2 * MIB, 0, 0);
	assert_int_equal(pace_room(&p, 2 * MIB, 0), PACE_FLOOR);
	assert_int_equal(pace_wait(&p, 0), -1);
	pace_sent(&p, PACE_FLOOR, 0);
	/* all of the limit outstanding: held back, the stall clock running */
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, 10), 0);
	assert_int_equal(pace_wait(&p, 10), PACE_STALL_US);
	assert_int_equal(pace_wait(&p, 4010), PACE_STALL_US - 4000);
}

static void test_window_rules(void **state)
{
	struct pace p;
	(void)state;
	/* a window below the limit: the window is what may go */
	pace_init(&p, 64 * KIB, 0, 0);
	assert_int_equal(pace_room(&p, 64 * KIB, 0), 64 * KIB);
	pace_sent(&p, 64 * KIB, 0);
	assert_int_equal(pace_room(&p, 0, 1), 0);
	/* a shut window is not the limit's doing: no stall, no growth */
	assert_int_equal(pace_wait(&p, 1), -1);
	assert_int_equal(pace_room(&p, 0, 1000000), 0);
	assert_int_equal(p.stalls, 0);
	/* a limit of the whole window (or more) leaves the window alone */
	pace_init(&p, 2 * MIB, 0, 0);
	p.limit = 2 * MIB;
	assert_int_equal(pace_room(&p, 2 * MIB, 0), 2 * MIB);
}

static void test_stall_doubles_and_raises_floor(void **state)
{
	struct pace p;
	(void)state;
	held_at_floor(&p, 0, 100);
	/* not yet */
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, 100 + PACE_STALL_US - 1), 0);
	/* no grant for PACE_STALL_US: the limit doubles */
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, 100 + PACE_STALL_US), PACE_FLOOR);
	assert_int_equal(p.limit, 2 * PACE_FLOOR);
	assert_int_equal(p.floor, 2 * PACE_FLOOR);
	assert_int_equal(p.stalls, 1);
}

static void test_known_granter_stalls_late(void **state)
{
	struct pace p;
	(void)state;
	/* OpenSSH grants every 96 KiB: held back, it is slow, not waiting
	 * for more; only the safety net applies */
	held_at_floor(&p, PACE_OPENSSH_STEP, 0);
	assert_int_equal(pace_wait(&p, 0), PACE_STALL_KNOWN_US);
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, 100000), 0);
	assert_int_equal(p.stalls, 0);
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, PACE_STALL_KNOWN_US), PACE_FLOOR);
	assert_int_equal(p.stalls, 1);
	/* a step above the limit is as good as unknown */
	held_at_floor(&p, 1 * MIB, 0);
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, PACE_STALL_US), PACE_FLOOR);
	assert_int_equal(p.stalls, 1);
}

static void test_grant_resets_stall_clock(void **state)
{
	struct pace p;
	(void)state;
	held_at_floor(&p, 0, 0);
	/* 64 KiB granted back at 8 ms: room for 64 KiB, and the clock restarts */
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR + 64 * KIB, 8000), 64 * KIB);
	pace_sent(&p, 64 * KIB, 8000);
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, 8001), 0);
	assert_int_equal(pace_room(&p, 2 * MIB - PACE_FLOOR, 8001 + PACE_STALL_US - 1), 0);
	assert_int_equal(p.stalls, 0);
}

static void test_clean_round_trip_grows(void **state)
{
	struct pace p;
	uint32_t w = 2 * MIB;
	(void)state;
	pace_init(&p, w, 0, 0);
	pace_sent(&p, PACE_FLOOR, 0);
	w -= PACE_FLOOR;
	assert_int_equal(pace_room(&p, w, 10), 0);   /* held: the limit binds */
	/* all of it granted back after 500 us, the first round trip (so the
	 * smallest): grows by what it delivered */
	w += PACE_FLOOR;
	assert_int_equal(pace_room(&p, w, 500), 2 * PACE_FLOOR);
	assert_int_equal(p.min_rtt, 500);
	assert_int_equal(p.limit, 2 * PACE_FLOOR);
	assert_int_equal(p.grown, 1);
	assert_int_equal(p.floor, PACE_FLOOR);   /* growth is not a stall */
}

static void test_long_link_goes_to_window(void **state)
{
	struct pace p;
	(void)state;
	/* a first round trip of 50 ms: the window */
	held_at_floor(&p, PACE_OPENSSH_STEP, 10);
	assert_int_equal(pace_room(&p, 2 * MIB, 50000), 2 * MIB);
	assert_int_equal(p.limit, 2 * MIB);
	/* later round trips of 300 us: it was the client, slow to start; the
	 * queue rule takes the limit back */
	uint32_t w = 2 * MIB;
	int64_t t = 50000;
	for (int i = 0; i < 20; i++) {
		pace_sent(&p, 96 * KIB, t);
		pace_room(&p, w, t += 300);
		pace_sent(&p, 96 * KIB, t);
		pace_room(&p, w, t += 5000);   /* this one queued */
	}
	assert_int_equal(p.min_rtt, 300);
	assert_int_equal(p.limit, PACE_FLOOR);
}

static void test_not_held_does_not_grow(void **state)
{
	struct pace p;
	(void)state;
	pace_init(&p, 2 * MIB, 0, 0);
	pace_sent(&p, 100 * KIB, 0);
	/* granted back, never held: the limit was not what slowed anything */
	assert_int_equal(pace_room(&p, 2 * MIB, 300), PACE_FLOOR);
	assert_int_equal(p.limit, PACE_FLOOR);
	assert_int_equal(p.grown, 0);
}

static void test_queue_shrinks_to_floor(void **state)
{
	struct pace p;
	uint32_t w = 2 * MIB;
	int64_t t = 0;
	(void)state;
	pace_init(&p, w, 0, 0);
	p.limit = 1 * MIB;
	/* a first round trip of 200 us, then ones of 5 ms: bytes queue at the
	 * client; each sample takes a quarter off, down to the floor */
	pace_sent(&p, 64 * KIB, t);
	assert_int_equal(pace_room(&p, w, t += 200), 1 * MIB);
	assert_int_equal(p.min_rtt, 200);
	for (int i = 0; i < 10; i++) {
		pace_sent(&p, 64 * KIB, t);
		pace_room(&p, w, t += 5000);
	}
	assert_int_equal(p.limit, PACE_FLOOR);
	assert_true(p.shrunk >= 5);
	/* 1 ms of queue on a 200 us path is within what is allowed */
	unsigned shrunk = p.shrunk;
	p.limit = 1 * MIB;
	pace_sent(&p, 64 * KIB, t);
	pace_room(&p, w, t += 1100);
	assert_int_equal(p.limit, 1 * MIB);
	assert_int_equal(p.shrunk, shrunk);
}

static void test_partly_granted_send_gives_no_sample(void **state)
{
	struct pace p;
	(void)state;
	pace_init(&p, 2 * MIB, 0, 0);
	pace_sent(&p, 200 * KIB, 0);
	pace_room(&p, 2 * MIB - 100 * KIB, 50);   /* half of it granted */
	assert_int_equal(p.min_rtt, 0);
	pace_room(&p, 2 * MIB, 70);
	assert_int_equal(p.min_rtt, 70);
}

static void test_many_small_sends(void **state)
{
	struct pace p;
	uint32_t w = 2 * MIB;
	(void)state;
	pace_init(&p, w, 0, 0);
	/* more sends than marks: the newest mark absorbs the rest with its
	 * earlier time, so the round trip is overstated, never understated */
	for (int i = 0; i < 3 * PACE_MARKS; i++) {
		pace_sent(&p, 100, i * 10);
		w -= 100;
	}
	assert_int_equal(p.count, PACE_MARKS);
	assert_int_equal(p.sent, 3 * PACE_MARKS * 100);
	pace_room(&p, 2 * MIB, 10000);
	assert_int_equal(p.count, 0);
	assert_int_equal(p.min_rtt, 10000 - (PACE_MARKS - 1) * 10);
	pace_sent(&p, 0, 10001);   /* nothing sent: nothing marked */
	assert_int_equal(p.count, 0);
}

/*
 * A whole transfer: the gate with endless output and the pacer; a client
 * at one-way delay rtt/2 taking bytes in at rate bytes per microsecond
 * (0: at once) and granting window back once `grant` bytes are taken and
 * not granted yet, and taking nothing in for the first `pause` us of every
 * 100 ms (a busy machine). Time steps by 20 us. Returns the microseconds it took;
 * fails on a window overrun or a hang. *ahead: the mean, over the time,
 * of what was sent and not yet taken in by the client (queued in its
 * socket and buffers). Unpaced, the window alone: what a server that fills
 * it achieves.
 */
struct flight {
	int64_t at;
	uint64_t n;
};

static int64_t transfer(uint64_t total, uint32_t window, int64_t rtt, double rate, uint64_t grant,
			uint32_t grant_step, int64_t pause, bool paced, struct pace *p, uint64_t *ahead)
{
	enum { STEP = 20, MAXF = 1 << 16 };
	static struct flight to_client[MAXF], to_gate[MAXF];
	unsigned c_head = 0, c_n = 0, g_head = 0, g_n = 0;
	uint64_t sent = 0, received = 0, taken = 0, granted = 0, win = window;
	double credit = 0;
	int64_t t = 0, limit_t = 600 * 1000 * 1000LL;

	double ahead_sum = 0;
	pace_init(p, window, grant_step, 0);
	while (taken < total) {
		/* the gate sends what the pacer allows, in 64 KiB writes */
		for (;;) {
			uint32_t room = paced ? pace_room(p, (uint32_t)win, t) : (uint32_t)win;
			uint64_t n = MIN(MIN((uint64_t)room, 64 * KIB), total - sent);
			if (!n)
				break;
			assert_true(n <= win);
			win -= n;
			sent += n;
			if (paced)
				pace_sent(p, (uint32_t)n, t);
			assert_true(c_n < MAXF);
			to_client[(c_head + c_n++) % MAXF] = (struct flight){ t + rtt / 2, n };
		}
		t += STEP;
		assert_true(t < limit_t);   /* a hang */
		while (c_n && to_client[c_head].at <= t) {
			received += to_client[c_head].n;
			c_head = (c_head + 1) % MAXF;
			c_n--;
		}
		/* the client takes bytes in, and grants window by its policy */
		if (t % 100000 < pause) {
			/* descheduled: takes nothing in */
		} else if (rate > 0) {
			credit += rate * STEP;
			uint64_t k = MIN((uint64_t)credit, received - taken);
			taken += k;
			credit -= (double)k;
			if (received == taken)
				credit = 0;   /* idle time does not bank */
		} else {
			taken = received;
		}
		ahead_sum += (double)(sent - taken);
		if (taken - granted >= grant || (taken == total && taken > granted)) {
			to_gate[(g_head + g_n++) % MAXF] = (struct flight){ t + rtt / 2, taken - granted };
			granted = taken;
		}
		while (g_n && to_gate[g_head].at <= t) {
			win += to_gate[g_head].n;
			assert_true(win <= window);
			g_head = (g_head + 1) % MAXF;
			g_n--;
		}
	}
	*ahead = (uint64_t)(ahead_sum / (double)(t / STEP));
	return t;
}

static void test_transfers(void **state)
{
	static const struct {
		const char *what;
		int64_t rtt;            /* us */
		double rate;            /* bytes per us (150: a clone's ssh and index-pack); 0: at once */
		uint64_t grant;         /* bytes taken before a grant */
		uint32_t step;          /* what the gate knows of it (OpenSSH's banner) */
		int64_t pause;          /* us of every 100 ms it takes nothing in */
	} c[] = {
		{ "OpenSSH, loopback", 100, 150, 96 * KIB, PACE_OPENSSH_STEP, 0 },
		{ "OpenSSH, loopback, busy machine", 100, 150, 96 * KIB, PACE_OPENSSH_STEP, 40000 },
		{ "OpenSSH, loopback, instant client", 100, 0, 96 * KIB, PACE_OPENSSH_STEP, 0 },
		{ "OpenSSH, 20 ms", 20000, 0, 96 * KIB, PACE_OPENSSH_STEP, 0 },
		{ "OpenSSH, 100 ms, slow client", 100000, 15, 96 * KIB, PACE_OPENSSH_STEP, 0 },
		{ "unknown 96 KiB granter, 20 ms", 20000, 0, 96 * KIB, 0, 0 },
		{ "half-window client, loopback", 100, 150, 1 * MIB, 0, 0 },
		{ "half-window client, 50 ms", 50000, 0, 1 * MIB, 0, 0 },
		{ "whole-window client, loopback", 100, 150, 2 * MIB, 0, 0 },
		{ "whole-window client, 30 ms", 30000, 30, 2 * MIB, 0, 0 },
	};
	const uint64_t total = 64 * MIB;
	const uint32_t window = 2 * MIB;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct pace p, u;
		uint64_t ap, au;
		int64_t tp = transfer(total, window, c[i].rtt, c[i].rate, c[i].grant, c[i].step, c[i].pause, true, &p, &ap);
		int64_t tu = transfer(total, window, c[i].rtt, c[i].rate, c[i].grant, c[i].step, c[i].pause, false, &u, &au);
		print_message("%-34s paced %8.1f MB/s, %4llu KiB ahead; window alone %8.1f, %4llu KiB ahead; stalls %u\n",
			      c[i].what, (double)total / (double)tp, (unsigned long long)ap / KIB,
			      (double)total / (double)tu, (unsigned long long)au / KIB, p.stalls);
		/* at least 90 % of the window's rate, a few stalls at most */
		assert_true(tp <= tu + tu / 9);
		assert_true(p.stalls <= 3);
		/* the point: a client that takes bytes in slower than loopback
		 * brings them has a fraction of the window queued on average,
		 * not nearly all of it, even when it stops now and then */
		if (i <= 1) {
			assert_true(ap <= window / 4);
			assert_true(au >= window / 2);
			assert_int_equal(p.stalls, 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_at_floor),
		cmocka_unit_test(test_window_rules),
		cmocka_unit_test(test_stall_doubles_and_raises_floor),
		cmocka_unit_test(test_known_granter_stalls_late),
		cmocka_unit_test(test_grant_resets_stall_clock),
		cmocka_unit_test(test_clean_round_trip_grows),
		cmocka_unit_test(test_long_link_goes_to_window),
		cmocka_unit_test(test_not_held_does_not_grow),
		cmocka_unit_test(test_queue_shrinks_to_floor),
		cmocka_unit_test(test_partly_granted_send_gives_no_sample),
		cmocka_unit_test(test_many_small_sends),
		cmocka_unit_test(test_transfers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
