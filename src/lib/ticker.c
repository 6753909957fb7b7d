/* A thread that runs a function now and then: see ticker.h. */
#include "lib/ticker.h"
#include "lib/error.h"

#include <errno.h>

static void *ticker_main(void *arg)
{
	struct ticker *t = arg;

	for (;;) {
		struct timespec until;
		int rc = 0;

		deadline_after_ms(&until, CLOCK_MONOTONIC, t->period_ms);
		pthread_mutex_lock(&t->mu);
		/* A spurious wake-up waits again: ticks keep their period. */
		while (!atomic_load(&t->stop) && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&t->cv, &t->mu, &until);
		pthread_mutex_unlock(&t->mu);
		if (atomic_load(&t->stop))
			return NULL;
		t->fn(t->arg);
	}
}

int ticker_start(struct ticker *t, int64_t period_ms, void (*fn)(void *arg), void *arg, const char *what)
{
	*t = (struct ticker){ .period_ms = period_ms, .fn = fn, .arg = arg };
	atomic_init(&t->stop, false);
	pthread_mutex_init(&t->mu, NULL);
	cond_init_monotonic(&t->cv);
	if (pthread_create(&t->tid, NULL, ticker_main, t)) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		return error_set(GROVE_EINTERNAL, "cannot start %s: no thread", what);
	}
	t->started = true;
	return 0;
}

bool ticker_stopping(struct ticker *t)
{
	return atomic_load(&t->stop);
}

void ticker_stop(struct ticker *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->mu);
	atomic_store(&t->stop, true);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->tid, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	t->started = false;
}
