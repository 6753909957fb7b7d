/*
 * What every Grove daemon (store, cluster router, gate) does alike around
 * its work, so that an operator, systemd or `grove up` drives them alike:
 *
 *   signals   SIGTERM and SIGINT stop it (it drains, then exits), SIGHUP
 *             reads the TLS files again (certificate rotation; the gate
 *             reads its whole config), SIGPIPE is ignored; blocked in every thread and read by one, with
 *             sigwait (daemon_wait_stop) or the daemon's own signalfd;
 *   readiness systemd's notify protocol on $NOTIFY_SOCKET: READY=1 once it
 *             serves, STOPPING=1 once it drains (Type=notify units). The
 *             variable is taken out of the environment, so that no git or
 *             hook the daemon starts speaks for it;
 *   log lines ROLE.reloaded or ROLE.reload_failed, and what the caller
 *             logs around them.
 */
#ifndef GROVE_DAEMON_H
#define GROVE_DAEMON_H

#include "lib/common.h"

#include <signal.h>

struct daemon {
	const char *role;
	sigset_t sigs;            /* blocked in every thread */
	char notify[108];         /* $NOTIFY_SOCKET, "" when not under systemd */
};

/* Blocks the daemon's signals (and extra, 0-terminated, if not NULL) for this
 * thread and those it starts; takes $NOTIFY_SOCKET. Call before any thread. */
void daemon_init(struct daemon *d, const char *role, const int *extra);
/* Until SIGTERM or SIGINT (SIGHUP reloads): that signal. */
int daemon_wait_stop(struct daemon *d);
/* What a signal read from a signalfd means: true to stop; SIGHUP reloads. */
bool daemon_signal_stops(struct daemon *d, int sig);
/* Tells systemd: serving now; stopping now. */
void daemon_ready(struct daemon *d);
void daemon_stopping(struct daemon *d);
/* One notify message ("READY=1") to path; 0, or -1 with errno. */
int daemon_notify_send(const char *path, const char *msg);

#endif
