/* GET /metrics: see metricsd.h. */
#include "lib/common.h"
#include "lib/metricsd.h"
#include "lib/error.h"

#include <arpa/inet.h>
#include <microhttpd.h>

#define METRICS_MAX (1 << 20)

struct metricsd {
	metricsd_render_fn *render;
	void *ctx;
	struct MHD_Daemon *mhd;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_size, void **ptr)
{
	struct metricsd *m = cls;
	struct MHD_Response *resp;
	struct strbuf sb;
	enum MHD_Result res;
	unsigned status = MHD_HTTP_OK;
	size_t len;
	char *body;

	(void)version, (void)upload_data, (void)ptr;
	/* No body is read: a request with one is answered before it is taken. */
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	strbuf_init(&sb, METRICS_MAX);
	if (strcmp(method, "GET")) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		strbuf_addstr(&sb, "only GET /metrics is served here\n");
	} else if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		strbuf_addstr(&sb, "not found: only GET /metrics is served here\n");
	} else {
		m->render(m->ctx, &sb);
	}
	body = strbuf_detach(&sb, &len);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	res = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return res;
}

int metricsd_start(const char *listen, const char *setting, metricsd_render_fn *render, void *ctx,
		   struct metricsd **out)
{
	struct sockaddr_in sa = { 0 };
	struct metricsd *m;
	char host[64];
	const char *colon = strrchr(listen, ':');
	long port;

	*out = NULL;
	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return error_set(GROVE_EINVAL, "%s \"%s\" is not IPv4-ADDRESS:PORT", setting, listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	port = strtol(colon + 1, NULL, 10);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return error_set(GROVE_EINVAL, "%s \"%s\" is not IPv4-ADDRESS:PORT", setting, listen);
	m = xcalloc(1, sizeof(*m));
	m->render = render;
	m->ctx = ctx;
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, m,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64U,
				  MHD_OPTION_CONNECTION_TIMEOUT, 10U,
				  /* SO_REUSEPORT: an upgrade's new process (SIGUSR2) binds beside this one. */
				  MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
	if (!m->mhd) {
		free(m);
		return error_set(GROVE_EUNAVAIL, "cannot serve metrics on %s (address in use?)", listen);
	}
	*out = m;
	return 0;
}

void metricsd_stop(struct metricsd *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
}
