/* Following an operation of the gate on a bar: see bar.h. */
#include "lib/common.h"
#include "lib/ticker.h"
#include "cli/bar.h"
#include "cli/cli.h"

#include <curl/curl.h>
#include <jansson.h>

#define WATCH_EVERY_MS 250

struct op_watch {
	struct ticker ticker;
	char app[128], kind[16];
	char *token;
	struct cli_bar bar;
};

/* The operation of app and kind in the API's list, shown. */
static void watch_once(void *arg)
{
	struct op_watch *w = arg;
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

struct op_watch *op_watch_start(const char *what, const char *app, const char *kind)
{
	struct op_watch *w = xcalloc(1, sizeof(*w));

	if (cli_admin_token(&w->token)) {
		free(w);
		return NULL;
	}
	/* Before a second thread makes requests: not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	strlcpy_(w->app, app, sizeof(w->app));
	strlcpy_(w->kind, kind, sizeof(w->kind));
	cli_bar_init(&w->bar, what, isatty(2));
	if (ticker_start(&w->ticker, WATCH_EVERY_MS, watch_once, w, "the progress watcher")) {
		op_watch_stop(w);
		return NULL;
	}
	return w;
}

void op_watch_stop(struct op_watch *w)
{
	if (!w)
		return;
	ticker_stop(&w->ticker);
	cli_bar_done(&w->bar);
	free(w->token);
	free(w);
}
