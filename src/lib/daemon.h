/*
 * What every Grove daemon (store, cluster router, gate) does alike around
 * its work, so that an operator, systemd or `grove up` drives them alike:
 *
 *   signals   SIGTERM and SIGINT stop it (it drains, then exits), SIGHUP
 *             reads its configuration and TLS files again (the role's
 *             reload hook; certificate rotation), SIGUSR2 upgrades it
 *             (below), SIGPIPE is ignored;
 *   upgrades  SIGUSR2 starts the binary now at the path this one was
 *             started from, with the same arguments; once the new process
 *             serves (it says so on a pipe, GROVE_UPGRADE_FD, when it calls
 *             daemon_ready), this one stops accepting, drains like SIGTERM
 *             and exits. The new one listens beside it meanwhile: the
 *             gate hands it its listening sockets, gRPC listeners share
 *             the port (SO_REUSEPORT) or take over the unix socket's path.
 *             A new process that fails to start changes nothing; blocked in every thread and read by one, with
 *             sigwait (daemon_wait_stop) or the daemon's own signalfd;
 *   readiness systemd's notify protocol on $NOTIFY_SOCKET: READY=1 once it
 *             serves, STOPPING=1 once it drains (Type=notify units). The
 *             variable is taken out of the environment, so that no git or
 *             hook the daemon starts speaks for it;
 *   watchdog  with systemd's WatchdogSec (WATCHDOG_USEC), WATCHDOG=1 from
 *             the loop that takes the daemon's signals, twice a period:
 *             a daemon whose main loop hangs is restarted;
 *   sockets   listening sockets systemd opened for it (LISTEN_FDS, socket
 *             activation), taken by the address they are bound to;
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
	char exe[4096];           /* the binary's path at start ("": unknown): SIGUSR2 runs what is there then */
	char **argv;              /* the subcommand and its arguments ("store", "-c", FILE) */
	int upgrade_fd;           /* the old process's pipe (GROVE_UPGRADE_FD), or -1 */
	/* SIGHUP: the role reads its configuration again (and with it the TLS
	 * files); 0, or an error and what was in use stays. NULL: the TLS
	 * files only. */
	int (*reload)(void *arg);
	void *reload_arg;
	int64_t watchdog_ms;      /* WATCHDOG=1 this often (half of WATCHDOG_USEC), 0: none */
	int64_t watchdog_next;
	int activated[16];        /* sockets from systemd (LISTEN_FDS) not taken yet, -1 once taken */
	int nactivated;
	struct rpc_server *const *srvs;  /* daemon_serve_rpc's: told to leave once a new process serves */
	size_t nsrvs;
};

/* Blocks the daemon's signals (and extra, 0-terminated, if not NULL) for this
 * thread and those it starts; takes $NOTIFY_SOCKET and $GROVE_UPGRADE_FD;
 * argv (the subcommand's, NULL-terminated) is what an upgrade runs again.
 * Call before any thread. */
void daemon_init(struct daemon *d, const char *role, const int *extra, char **argv);
void daemon_release(struct daemon *d);
/* Until SIGTERM or SIGINT, or SIGUSR2 once the new process serves (SIGHUP
 * reloads; a failed upgrade is logged and this one serves on): that signal. */
int daemon_wait_stop(struct daemon *d);
/* What a signal read from a signalfd means: true to stop; SIGHUP reloads;
 * SIGUSR2 upgrades (true once the new process serves). */
bool daemon_signal_stops(struct daemon *d, int sig);
/*
 * The upgrade itself, for a daemon that reads its own signals: keep_fds
 * (-1-terminated, or NULL) stay open in the new process and env
 * ("NAME=VALUE", or NULL) tells it which they are. 0 once the new process
 * serves, or an error (it failed, or did not say it serves in time).
 */
int daemon_upgrade(struct daemon *d, const int *keep_fds, const char *env);
/* WATCHDOG=1 if one is due; the ms until the next (-1: no watchdog). */
int64_t daemon_watchdog(struct daemon *d);

/* A listening socket systemd opened for this daemon bound to "host:port"
 * (IPv4), or -1 when it passed none; it is the caller's from then on. */
int daemon_take_listener(struct daemon *d, const char *addr);
/* The sockets from systemd no listener took are logged and closed. */
void daemon_close_unused_listeners(struct daemon *d);

/* Tells systemd: serving now; stopping now. */
void daemon_ready(struct daemon *d);
void daemon_stopping(struct daemon *d);
/*
 * The life of a gRPC daemon once it listens: tells systemd (and an old
 * process being upgraded) that it serves, waits for a stop (reloading on
 * SIGHUP meanwhile), then drains srvs[0..n) in order, each for up to
 * grace_s: calls in flight finish, new ones are refused. Upgraded, it
 * first has its clients leave (rpc_server_leave: they move to the new
 * process and close their connections to this one), within the same
 * grace. Logs ROLE.draining (with srvs[0]'s calls in flight) and
 * ROLE.stopped.
 */
struct rpc_server;
void daemon_serve_rpc(struct daemon *d, struct rpc_server *const *srvs, size_t n, int64_t grace_s);
/* One notify message ("READY=1") to path; 0, or -1 with errno. */
int daemon_notify_send(const char *path, const char *msg);

#endif
