/* The daemons' common lifecycle: see daemon.h. */
#include "lib/daemon.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

void daemon_init(struct daemon *d, const char *role, const int *extra)
{
	const char *ns = getenv("NOTIFY_SOCKET");

	d->role = role;
	/* Repositories, logs and state are the daemon's and its group's: git
	 * and every file the daemon makes inherit this (DESIGN: who owns what,
	 * docs/security.md). */
	umask(027);
	sigemptyset(&d->sigs);
	sigaddset(&d->sigs, SIGTERM);
	sigaddset(&d->sigs, SIGINT);
	sigaddset(&d->sigs, SIGHUP);
	for (; extra && *extra; extra++)
		sigaddset(&d->sigs, *extra);
	pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->notify[0] = '\0';
	if (ns && strlen(ns) < sizeof(d->notify))
		strlcpy_(d->notify, ns, sizeof(d->notify));
	unsetenv("NOTIFY_SOCKET");
}

static void notify(struct daemon *d, const char *msg);

bool daemon_signal_stops(struct daemon *d, int sig)
{
	char event[64];
	if (sig != SIGHUP)
		return sig == SIGTERM || sig == SIGINT;
	notify(d, "RELOADING=1");
	if (rpc_tls_reload()) {
		snprintf(event, sizeof(event), "%s.reload_failed", d->role);
		log_error(event, "error=%s note=%s", error_msg(), "the TLS files in use stay in use");
	} else {
		snprintf(event, sizeof(event), "%s.reloaded", d->role);
		log_info(event, "tls=%b note=%s", rpc_tls_on(),
			 "TLS files read again; the rest of the configuration is read at start");
	}
	notify(d, "READY=1");
	return false;
}

int daemon_wait_stop(struct daemon *d)
{
	int sig = 0;
	for (;;) {
		if (sigwait(&d->sigs, &sig))
			continue;
		if (daemon_signal_stops(d, sig))
			return sig;
	}
}

int daemon_notify_send(const char *path, const char *msg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	socklen_t salen;
	int fd, ret;

	if (!len || len >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, len);
	/* "@name": the abstract namespace, where the name starts with a NUL. */
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ret = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0 ? -1 : 0;
	close(fd);
	return ret;
}

/* A lost notification is logged, not fatal: the daemon serves all the same. */
static void notify(struct daemon *d, const char *msg)
{
	if (d->notify[0] && daemon_notify_send(d->notify, msg)) {
		char event[64];
		snprintf(event, sizeof(event), "%s.notify_failed", d->role);
		log_warn(event, "socket=%s message=%s error=%s", d->notify, msg, strerror(errno));
	}
}

void daemon_ready(struct daemon *d)
{
	notify(d, "READY=1");
}

void daemon_stopping(struct daemon *d)
{
	notify(d, "STOPPING=1");
}
