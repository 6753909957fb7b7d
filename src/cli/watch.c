/* Following an operation of the gate on a bar: see bar.h. */
#include "lib/common.h"
#include "cli/bar.h"
#include "cli/cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>

#define WATCH_EVERY_MS 250

struct op_watch {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool running;            /* the thread was started */
	char app[128], kind[16];
	char *token;
	struct cli_bar bar;
};

/* The operation of app and kind in the API's list, shown. */
static void watch_once(struct op_watch *w)
{
	json_t *j = NULL, *e;
	long status = 0;
	size_t i;

	if (admin_call(cli_admin_url(), w->token, "GET", "/api/v1/operations", NULL, &status, &j) || status != 200)
		goto out;
	json_array_foreach(json_object_get(j, "operations"), i, e) {
		const char *app = json_string_value(json_object_get(e, "app"));
		const char *kind = json_string_value(json_object_get(e, "kind"));
		const char *phase = json_string_value(json_object_get(e, "phase"));
		if (app && kind && phase && !strcmp(app, w->app) && !strcmp(kind, w->kind))
			cli_bar_show(&w->bar, phase, (uint64_t)json_integer_value(json_object_get(e, "done_bytes")),
				     (uint64_t)json_integer_value(json_object_get(e, "total_bytes")));
	}
out:
	json_decref(j);
}

static void *watch_main(void *arg)
{
	struct op_watch *w = arg;
	struct timespec ts;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		pthread_mutex_unlock(&w->mu);
		watch_once(w);
		pthread_mutex_lock(&w->mu);
		deadline_after_ms(&ts, CLOCK_MONOTONIC, WATCH_EVERY_MS);
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct op_watch *op_watch_start(const char *what, const char *app, const char *kind)
{
	struct op_watch *w = xcalloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (cli_admin_token(&w->token)) {
		free(w);
		return NULL;
	}
	/* Before a second thread makes requests: not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	strlcpy_(w->app, app, sizeof(w->app));
	strlcpy_(w->kind, kind, sizeof(w->kind));
	cli_bar_init(&w->bar, what, isatty(2));
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, watch_main, w)) {
		op_watch_stop(w);
		return NULL;
	}
	w->running = true;
	return w;
}

void op_watch_stop(struct op_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->running)
		pthread_join(w->thread, NULL);
	cli_bar_done(&w->bar);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->token);
	free(w);
}
