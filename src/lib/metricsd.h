/*
 * A Prometheus endpoint: GET /metrics on an IPv4 host:port, its text from a
 * render callback at each scrape. Nothing else is served; a request body is
 * never read. Used by the router and the stores.
 */
#ifndef GROVE_METRICSD_H
#define GROVE_METRICSD_H

#include "lib/strbuf.h"

struct metricsd;

typedef void metricsd_render_fn(void *ctx, struct strbuf *out);

/* setting names the config key, for messages ("store.metricsListen"). */
int metricsd_start(const char *listen, const char *setting, metricsd_render_fn *render, void *ctx,
		   struct metricsd **out);
/* Stops serving (NULL: nothing to stop). */
void metricsd_stop(struct metricsd *m);

#endif
