/* The daemons' common lifecycle: see daemon.h. */
#include "lib/daemon.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "lib/strvec.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static void notify(struct daemon *d, const char *msg);

/* A variable of systemd's meant for this process ($NAME_PID, when set,
 * names it): its value, or NULL. */
static const char *for_me(const char *name, const char *pid_name)
{
	const char *v = getenv(name), *pid = getenv(pid_name);
	if (!v || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return NULL;
	return v;
}

/* WATCHDOG_USEC and LISTEN_FDS, taken out of the environment: no git or
 * hook the daemon starts sees them. */
static void daemon_take_systemd_env(struct daemon *d)
{
	const char *wd = for_me("WATCHDOG_USEC", "WATCHDOG_PID");
	const char *fds = getenv("LISTEN_PID") ? for_me("LISTEN_FDS", "LISTEN_PID") : NULL;
	long n = fds ? strtol(fds, NULL, 10) : 0;

	d->watchdog_ms = wd ? strtoll(wd, NULL, 10) / 2000 : 0;
	if (wd && d->watchdog_ms < 1)
		d->watchdog_ms = 1;
	d->watchdog_next = 0;
	d->nactivated = 0;
	/* sd_listen_fds(3): they start at 3. */
	for (long i = 0; i < n && d->nactivated < (int)ARRAY_SIZE(d->activated); i++) {
		d->activated[d->nactivated++] = 3 + (int)i;
		fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC);
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
}

int64_t daemon_watchdog(struct daemon *d)
{
	int64_t now = now_ms();
	if (!d->watchdog_ms)
		return -1;
	if (now >= d->watchdog_next) {
		notify(d, "WATCHDOG=1");
		d->watchdog_next = now + d->watchdog_ms;
	}
	return d->watchdog_next - now;
}

/* Whether fd listens on addr ("host:port", IPv4; 0.0.0.0 as written). */
static bool bound_to(int fd, const char *addr)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char got[INET_ADDRSTRLEN + 8], ip[INET_ADDRSTRLEN];
	int listening = 0;
	socklen_t ll = sizeof(listening);

	if (getsockname(fd, (struct sockaddr *)&sin, &len) || sin.sin_family != AF_INET ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) || !listening)
		return false;
	inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
	snprintf(got, sizeof(got), "%s:%u", ip, ntohs(sin.sin_port));
	return !strcmp(got, addr);
}

int daemon_take_listener(struct daemon *d, const char *addr)
{
	for (int i = 0; i < d->nactivated; i++) {
		int fd = d->activated[i];
		if (fd >= 0 && bound_to(fd, addr)) {
			d->activated[i] = -1;
			char event[64];
			snprintf(event, sizeof(event), "%s.socket_activated", d->role);
			log_info(event, "address=%s fd=%d", addr, fd);
			return fd;
		}
	}
	return -1;
}

void daemon_close_unused_listeners(struct daemon *d)
{
	for (int i = 0; i < d->nactivated; i++) {
		if (d->activated[i] < 0)
			continue;
		char event[64];
		snprintf(event, sizeof(event), "%s.socket_unused", d->role);
		log_warn(event, "fd=%d note=%s", d->activated[i],
			 "systemd passed a socket that matches no listen address of the config: closed");
		close(d->activated[i]);
		d->activated[i] = -1;
	}
}

void daemon_init(struct daemon *d, const char *role, const int *extra, char **argv)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	const char *up = getenv("GROVE_UPGRADE_FD");

	d->role = role;
	d->reload = NULL;
	d->reload_arg = NULL;
	/* Repositories, logs and state are the daemon's and its group's: git
	 * and every file the daemon makes inherit this (DESIGN: who owns what,
	 * docs/security.md). */
	umask(027);
	sigemptyset(&d->sigs);
	sigaddset(&d->sigs, SIGTERM);
	sigaddset(&d->sigs, SIGINT);
	sigaddset(&d->sigs, SIGHUP);
	sigaddset(&d->sigs, SIGUSR2);
	for (; extra && *extra; extra++)
		sigaddset(&d->sigs, *extra);
	pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->notify[0] = '\0';
	if (ns && strlen(ns) < sizeof(d->notify))
		strlcpy_(d->notify, ns, sizeof(d->notify));
	unsetenv("NOTIFY_SOCKET");
	/* A buffer, not malloc: the gate's forked children exit without
	 * daemon_release. */
	if (!realpath("/proc/self/exe", d->exe))
		d->exe[0] = '\0';
	d->argv = argv;
	d->upgrade_fd = up ? atoi(up) : -1;
	if (d->upgrade_fd >= 0) {
		fcntl(d->upgrade_fd, F_SETFD, FD_CLOEXEC);
		/* The old process still listens: bind beside it (rpc.h). */
		rpc_server_listen_beside();
	}
	unsetenv("GROVE_UPGRADE_FD");
	daemon_take_systemd_env(d);
}

void daemon_release(struct daemon *d)
{
	if (d->upgrade_fd >= 0)
		close(d->upgrade_fd);
	d->upgrade_fd = -1;
}

/* The new process's command line and environment, made before the fork:
 * a forked child of a process with threads (gRPC's) may only call
 * async-signal-safe functions until it execs, so no malloc or setenv there.
 * Its environment is ours, GROVE_UPGRADE_FD=ready_fd and env. */
static void upgrade_prepare(struct daemon *d, int ready_fd, const char *env, struct strvec *argv, struct strvec *envp)
{
	strvec_push(argv, d->exe);
	for (char **a = d->argv; *a; a++)
		strvec_push(argv, *a);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "GROVE_UPGRADE_FD=", 17) && (!env || strncmp(*e, env, strcspn(env, "=") + 1)))
			strvec_push(envp, *e);
	strvec_pushf(envp, "GROVE_UPGRADE_FD=%d", ready_fd);
	if (env)
		strvec_push(envp, env);
}

/* In the forked child: keep_fds and the pipe stay open, the signal mask of
 * a new process (daemon_init blocks what it reads), the new binary. */
static void upgrade_exec(const char *exe, int ready_fd, const int *keep_fds, char **argv, char **envp)
{
	sigset_t none;
	fcntl(ready_fd, F_SETFD, 0);
	for (; keep_fds && *keep_fds >= 0; keep_fds++)
		fcntl(*keep_fds, F_SETFD, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(exe, argv, envp);
	_exit(127);
}

#define UPGRADE_WAIT_MS 60000   /* a new process that does not serve by then is not taken */
#define UPGRADE_SETTLE_MS 1000  /* both serve this long before the old one drains */

int daemon_upgrade(struct daemon *d, const int *keep_fds, const char *env)
{
	struct strvec argv = STRVEC_INIT, envp = STRVEC_INIT;
	char event[64], buf[16];
	int p[2], ret = 0;
	pid_t pid;
	ssize_t n = 0;

	if (!d->exe[0] || !d->argv)
		return error_set(GROVE_EINTERNAL, "this process does not know its own binary");
	if (pipe2(p, O_CLOEXEC))
		return error_set(GROVE_EIO, "pipe: %s", strerror(errno));
	for (size_t i = 0; i < d->nsrvs; i++)
		rpc_server_share_ports(d->srvs[i]);
	upgrade_prepare(d, p[1], env, &argv, &envp);
	pid = fork();
	if (pid == 0)
		upgrade_exec(d->exe, p[1], keep_fds, (char **)strvec_argv(&argv), (char **)strvec_argv(&envp));
	strvec_clear(&argv);
	strvec_clear(&envp);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return error_set(GROVE_EIO, "fork: %s", strerror(errno));
	}
	snprintf(event, sizeof(event), "%s.upgrading", d->role);
	log_info(event, "binary=%s new_pid=%d", d->exe, (int)pid);
	/* "READY" once it serves; nothing (EOF) if it died first. */
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	int64_t end = now_ms() + UPGRADE_WAIT_MS;
	for (;;) {
		int64_t left = end - now_ms();
		int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0)
			n = read(p[0], buf, sizeof(buf));
		break;
	}
	close(p[0]);
	if (n <= 0) {
		/* Not ready in time, or gone: it must not serve beside us half-started. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ret = error_set(GROVE_EUNAVAIL, "the new process (%s) did not start serving: see its lines above", d->exe);
	} else {
		char msg[32];
		snprintf(msg, sizeof(msg), "MAINPID=%d", (int)pid);
		notify(d, msg);
		/* From now on, the clients move to the new process (rpc.h). */
		for (size_t i = 0; i < d->nsrvs; i++)
			rpc_server_leave(d->srvs[i]);
		/* A client that reached this process just before the new one took
		 * the address over starts its call now: serving on a moment more
		 * spares it a refused stream (gRPC retries none here) when the
		 * drain stops new calls. */
		struct timespec settle = { UPGRADE_SETTLE_MS / 1000, (UPGRADE_SETTLE_MS % 1000) * 1000000L };
		while (nanosleep(&settle, &settle) && errno == EINTR)
			;
	}
	return ret;
}

bool daemon_signal_stops(struct daemon *d, int sig)
{
	char event[64];
	if (sig == SIGUSR2) {
		if (!daemon_upgrade(d, NULL, NULL))
			return true;
		snprintf(event, sizeof(event), "%s.upgrade_failed", d->role);
		log_error(event, "error=%s note=%s", error_msg(), "this process serves on");
		return false;
	}
	if (sig != SIGHUP)
		return sig == SIGTERM || sig == SIGINT;
	notify(d, "RELOADING=1");
	if (d->reload ? d->reload(d->reload_arg) : rpc_tls_reload()) {
		snprintf(event, sizeof(event), "%s.reload_failed", d->role);
		log_error(event, "error=%s note=%s", error_msg(), "the configuration in use stays in use");
	} else {
		snprintf(event, sizeof(event), "%s.reloaded", d->role);
		log_info(event, "tls=%b note=%s", rpc_tls_on(),
			 d->reload ? "configuration and TLS files read again" : "TLS files read again");
	}
	notify(d, "READY=1");
	return false;
}

int daemon_wait_stop(struct daemon *d)
{
	for (;;) {
		int64_t next = daemon_watchdog(d);
		struct timespec ts = { next / 1000, (next % 1000) * 1000000L };
		int sig = next < 0 ? sigwaitinfo(&d->sigs, NULL) : sigtimedwait(&d->sigs, NULL, &ts);
		if (sig > 0 && daemon_signal_stops(d, sig))
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
	if (d->upgrade_fd >= 0) {
		/* The process this one replaces may stop accepting now. */
		if (write(d->upgrade_fd, "READY\n", 6) != 6)
			log_warn("daemon.upgrade_unsaid", "error=%s", strerror(errno));
		close(d->upgrade_fd);
		d->upgrade_fd = -1;
	}
}

void daemon_stopping(struct daemon *d)
{
	notify(d, "STOPPING=1");
}

void daemon_serve_rpc(struct daemon *d, struct rpc_server *const *srvs, size_t n, int64_t grace_s)
{
	char event[64];
	int64_t end;
	int sig;

	d->srvs = srvs;
	d->nsrvs = n;
	daemon_ready(d);
	sig = daemon_wait_stop(d);
	end = now_ms() + grace_s * 1000;
	daemon_stopping(d);
	/* Upgraded: the clients leave first, so that no call ends on a
	 * connection the drain closes under it. In the same order as the
	 * drain, within the same grace. */
	for (size_t i = 0; sig == SIGUSR2 && i < n; i++)
		rpc_server_wait_left(srvs[i], end);
	snprintf(event, sizeof(event), "%s.draining", d->role);
	log_info(event, "signal=%d inflight=%d grace_s=%lld", sig, rpc_server_inflight(srvs[0]), (long long)grace_s);
	/* In order: a later server answers the calls that those before it
	 * still make while they drain (hooks, votes). */
	for (size_t i = 0; i < n; i++) {
		/* Upgraded: what the leaving left of the grace. */
		int64_t ms = sig == SIGUSR2 ? MAX(end - now_ms(), 1) : grace_s * 1000;
		rpc_server_drain(srvs[i], (int)ms);
	}
	snprintf(event, sizeof(event), "%s.stopped", d->role);
	log_info(event, NULL);
}
