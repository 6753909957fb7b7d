/*
 * A deadline for reading a whole request on the admin port: see deadline.h.
 */
#include "gate/admin/deadline.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/ticker.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

struct watched {
	struct req_deadline *d;
	struct watched *prev, *next;
	int fd;
	int64_t since;      /* when its request began to arrive */
	bool reading;       /* its request is arriving */
	bool cut;
	char peer[64];
};

struct req_deadline {
	pthread_mutex_t mu;       /* the list */
	struct ticker ticker;
	int64_t timeout_ms;
	struct watched *head;
};

/* Cuts what is past its deadline; a connection once. */
static void cut_late(struct req_deadline *d)
{
	int64_t now = now_ms();
	for (struct watched *w = d->head; w; w = w->next) {
		if (!w->reading || w->cut || now - w->since < d->timeout_ms)
			continue;
		w->cut = true;
		shutdown(w->fd, SHUT_RDWR);
		log_info("admin.request_timeout", "peer=%s timeout_s=%lld", w->peer, (long long)(d->timeout_ms / 1000));
	}
}

static void watchdog_tick(void *arg)
{
	struct req_deadline *d = arg;
	pthread_mutex_lock(&d->mu);
	cut_late(d);
	pthread_mutex_unlock(&d->mu);
}

int req_deadline_start(struct req_deadline **out, int timeout_s)
{
	struct req_deadline *d = xcalloc(1, sizeof(*d));
	int ret;

	pthread_mutex_init(&d->mu, NULL);
	d->timeout_ms = (int64_t)timeout_s * 1000;
	/* A request is cut within a quarter of a second of its deadline. */
	if ((ret = ticker_start(&d->ticker, 250, watchdog_tick, d, "the admin API's request watchdog"))) {
		pthread_mutex_destroy(&d->mu);
		free(d);
		d = NULL;
	}
	*out = d;
	return ret;
}

void req_deadline_stop(struct req_deadline *d)
{
	if (!d)
		return;
	ticker_stop(&d->ticker);
	while (d->head) {
		struct watched *w = d->head;
		d->head = w->next;
		free(w);
	}
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static void peer_of(struct MHD_Connection *conn, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
	snprintf(buf, size, "%s", ip);
}

/* Entries are removed here before libmicrohttpd closes the socket, under
 * the lock the watchdog cuts with: it never shuts a descriptor reused since. */
void req_deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			 enum MHD_ConnectionNotificationCode toe)
{
	struct req_deadline *d = cls;
	struct watched *w = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci)
			return;
		w = xcalloc(1, sizeof(*w));
		w->d = d;
		w->fd = ci->connect_fd;
		w->since = now_ms();
		w->reading = true;
		peer_of(conn, w->peer, sizeof(w->peer));
		pthread_mutex_lock(&d->mu);
		w->next = d->head;
		if (d->head)
			d->head->prev = w;
		d->head = w;
		pthread_mutex_unlock(&d->mu);
		*socket_context = w;
		return;
	}
	if (!w)
		return;
	pthread_mutex_lock(&d->mu);
	if (w->prev)
		w->prev->next = w->next;
	else
		d->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&d->mu);
	free(w);
	*socket_context = NULL;
}

static struct watched *watched_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void mark(struct MHD_Connection *conn, bool reading)
{
	struct watched *w = watched_of(conn);
	if (!w)
		return;
	pthread_mutex_lock(&w->d->mu);
	w->reading = reading;
	w->since = now_ms();
	pthread_mutex_unlock(&w->d->mu);
}

void req_deadline_read(struct MHD_Connection *conn)
{
	mark(conn, false);
}

void req_deadline_next(struct MHD_Connection *conn)
{
	mark(conn, true);
}
