/* The counters sampled each minute: see ui_history.h. */
#include "gate/admin/ui_history.h"
#include "gate/metrics.h"
#include "lib/error.h"
#include "lib/ticker.h"

#include <pthread.h>

#define SAMPLE_EVERY_MS 60000

/* The counters' totals at one moment. */
struct sample {
	uint64_t pushes, errors, push_ms;
};

struct ui_history {
	pthread_mutex_t mu;       /* the ring */
	struct ticker ticker;
	/* Ring of samples, one a minute; n counts up to the ring's size. */
	struct sample ring[UI_HISTORY_MINUTES];
	size_t next, n;
};

static struct sample sample_now(void)
{
	const struct gate_metrics *m = gate_metrics;
	struct sample s = { 0, 0, 0 };
	if (!m)
		return s;
	for (int r = 0; r < MR_COUNT; r++)
		s.pushes += atomic_load(&m->sessions[MS_RECEIVE_PACK][r]);
	for (int c = 0; c < MS_COUNT; c++)
		s.errors += atomic_load(&m->sessions[c][MR_FAILED]) + atomic_load(&m->sessions[c][MR_REFUSED]);
	s.push_ms = atomic_load(&m->push_seconds.sum_ms);
	return s;
}

static void record(struct ui_history *h)
{
	h->ring[h->next] = sample_now();
	h->next = (h->next + 1) % UI_HISTORY_MINUTES;
	if (h->n < UI_HISTORY_MINUTES)
		h->n++;
}

static void sampler_tick(void *arg)
{
	struct ui_history *h = arg;
	pthread_mutex_lock(&h->mu);
	record(h);
	pthread_mutex_unlock(&h->mu);
}

int ui_history_start(struct ui_history **out)
{
	struct ui_history *h = xcalloc(1, sizeof(*h));
	int ret;

	pthread_mutex_init(&h->mu, NULL);
	record(h);
	if ((ret = ticker_start(&h->ticker, SAMPLE_EVERY_MS, sampler_tick, h, "the dashboard's sampler"))) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		h = NULL;
	}
	*out = h;
	return ret;
}

void ui_history_stop(struct ui_history *h)
{
	if (!h)
		return;
	ticker_stop(&h->ticker);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static struct ui_minute minute_between(const struct sample *a, const struct sample *b)
{
	struct ui_minute m = { b->pushes - a->pushes, b->errors - a->errors, b->push_ms - a->push_ms };
	return m;
}

size_t ui_history_minutes(struct ui_history *h, struct ui_minute out[UI_HISTORY_MINUTES])
{
	struct sample now = sample_now();
	size_t n, first, k = 0;

	pthread_mutex_lock(&h->mu);
	/* n samples make n-1 whole minutes and the one under way. */
	n = h->n;
	first = (h->next + UI_HISTORY_MINUTES - n) % UI_HISTORY_MINUTES;
	for (size_t i = 0; i + 1 < n; i++)
		out[k++] = minute_between(&h->ring[(first + i) % UI_HISTORY_MINUTES],
					  &h->ring[(first + i + 1) % UI_HISTORY_MINUTES]);
	out[k++] = minute_between(&h->ring[(first + n - 1) % UI_HISTORY_MINUTES], &now);
	pthread_mutex_unlock(&h->mu);
	return k;
}
