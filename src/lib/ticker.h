/*
 * A thread that does one thing now and then until it is stopped: the
 * dashboard's sampler, the admin port's request deadlines, housekeeping.
 *
 *   static void sample(void *arg) { ... }
 *   struct ticker t;
 *   if (ticker_start(&t, 60000, sample, h, "the dashboard's sampler"))
 *           goto out;
 *   ...
 *   ticker_stop(&t);       (wakes it, waits for a tick under way to end)
 *
 * fn runs period_ms after the start, then period_ms after each run ended
 * (a slow run delays the next, runs never overlap). A long fn asks
 * ticker_stopping() between its steps, so that a stop need not wait for
 * all of them.
 */
#ifndef GROVE_TICKER_H
#define GROVE_TICKER_H

#include "lib/common.h"

#include <pthread.h>
#include <stdatomic.h>

struct ticker {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* waits on CLOCK_MONOTONIC: a clock step moves no tick */
	pthread_t tid;
	atomic_bool stop;
	bool started;
	int64_t period_ms;
	void (*fn)(void *arg);
	void *arg;
};

/* 0, or an error naming what (e.g. "the dashboard's sampler") could not start. */
int ticker_start(struct ticker *t, int64_t period_ms, void (*fn)(void *arg), void *arg, const char *what);
/* True once ticker_stop was called: fn should return soon. */
bool ticker_stopping(struct ticker *t);
/* Wakes the thread and waits for it to end; a ticker never started, or
 * stopped already, is left as is. */
void ticker_stop(struct ticker *t);

#endif
