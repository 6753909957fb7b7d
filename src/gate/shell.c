/*
 * `grove shell`: the forced command sshd runs for a key Grove knows
 * (openssh.c). sshd has authenticated the key and named it on our command
 * line; the client's command is in SSH_ORIGINAL_COMMAND, its protocol
 * version in GIT_PROTOCOL (AcceptEnv), its address in SSH_CONNECTION. The
 * channel is our stdin, stdout and stderr: a door (door.h) over them, and
 * the command runs as the gate's own sessions run it.
 *
 * The pump moves bytes between stdio and the backend without blocking on
 * either side: a client that sends while it is sent to (fetch negotiation,
 * a push's report while its pack still flows) must not wait for us.
 */
#include "gate/gate.h"
#include "gate/authz.h"
#include "gate/backend.h"
#include "gate/door.h"
#include "gate/openssh.h"
#include "cli/opt.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/pktline.h"
#include "lib/sshcmd.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

#define SHELL_CHUNK (64 * 1024)
/* The most a message to the client may wait for room on its stderr. */
#define SAY_WAIT_MS 10000

struct shell {
	struct door d;            /* first: the ops get &sh->d and cast back */
	int status;               /* the exit status finish gave */
};

/* All of buf to fd, which is non-blocking: waits for room (up to
 * wait_ms in all). Returns 0, or -1 when the client is gone or too slow. */
static int write_all(int fd, const char *buf, size_t len, int wait_ms)
{
	int64_t deadline = now_ms() + wait_ms;

	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pfd, 1, left) < 0)
			return -1;
	}
	return 0;
}

static void shell_say(struct door *d, const char *msg, size_t len)
{
	if (write_all(STDERR_FILENO, msg, len, SAY_WAIT_MS))
		d->dead = true;
}

static void shell_write_out(struct door *d, const char *msg, size_t len)
{
	if (write_all(STDOUT_FILENO, msg, len, SAY_WAIT_MS))
		d->dead = true;
}

/* sshd sends our exit status when we exit: keep it until then. */
static void shell_finish(struct door *d, int status)
{
	((struct shell *)d)->status = status;
}

/* sshd closes our stdin when the client goes; a wait polls it. */
static bool shell_connected(struct door *d)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = 0 };
	return !d->dead && !(poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)));
}

/* The pump's state, shared by its steps. */
struct shell_pump {
	struct door *d;
	struct backend *b;
	char *in;                 /* client → backend */
	size_t inlen, inoff;
	bool in_eof;
	char *out;                /* backend pipe → client, read and not yet written */
	size_t outlen, outoff;
	int outfd;                /* where out (or the queue's head) goes: 1 or 2 */
	bool queue_waits;         /* the queue's head found no room on outfd */
	int64_t last_activity;
};

/* The client is gone: nothing more goes to it; the backend is stopped and
 * drained until it ends. */
static void pump_client_gone(struct shell_pump *p)
{
	if (!p->d->dead) {
		p->d->dead = true;
		p->d->client_closed = true;
		p->b->abort(p->b);
	}
	p->outlen = p->outoff = 0;
}

/* client → backend */
static void pump_input(struct shell_pump *p)
{
	struct door *d = p->d;
	struct backend *b = p->b;

	if (p->inoff == p->inlen && !p->in_eof && b->in >= 0) {
		ssize_t n = read(STDIN_FILENO, p->in, SHELL_CHUNK);
		if (n > 0) {
			p->inlen = (size_t)n;
			p->inoff = 0;
			p->last_activity = now_ms();
			door_took_input(d, p->in, (size_t)n);
			if (d->push_head && d->push_head->too_big && !d->head_refused) {
				/* Nothing of it reaches git (or a store) any more. */
				d->head_refused = true;
				b->abort(b);
			}
			if (d->head_refused)
				p->inlen = p->inoff = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			p->in_eof = true;
		}
	}
	if (p->inlen > p->inoff && b->in >= 0) {
		ssize_t w = write(b->in, p->in + p->inoff, p->inlen - p->inoff);
		if (w > 0) {
			p->inoff += (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			/* The backend stopped reading (it exited): drop the rest. */
			p->inlen = p->inoff = 0;
			close(b->in);
			b->in = -1;
		}
	}
	if (p->in_eof && p->inoff == p->inlen && b->in >= 0) {
		close(b->in);
		b->in = -1;
	}
}

/* Some of what is at data to fd; returns the bytes taken (0: no room now). */
static size_t pump_send(struct shell_pump *p, int fd, const void *data, size_t len)
{
	ssize_t w;

	if (p->d->dead)
		return len;   /* nobody to send it to: drained */
	w = write(fd, data, len);
	if (w > 0) {
		door_took_output(p->d, data, (size_t)w);
		p->last_activity = now_ms();
		return (size_t)w;
	}
	if (w < 0 && errno != EAGAIN && errno != EINTR)
		pump_client_gone(p);
	return p->d->dead ? len : 0;
}

/* backend → client, from a backend that queues its output (peek/consume). */
static void pump_output_queue(struct shell_pump *p)
{
	struct backend *b = p->b;
	const uint8_t *data;
	size_t len, n;
	bool is_err;
	int r;

	p->queue_waits = false;
	while ((r = b->peek(b, &data, &len, &is_err)) == 1) {
		p->outfd = is_err ? STDERR_FILENO : STDOUT_FILENO;
		n = pump_send(p, p->outfd, data, len);
		if (!n) {
			p->queue_waits = true;
			break;
		}
		b->consume(b, n);
	}
	if (r < 0) {
		close(b->out);
		b->out = -1;
	}
}

/* backend → client, from a backend's stdout and stderr pipes. */
static void pump_output_fds(struct shell_pump *p)
{
	struct backend *b = p->b;

	if (p->outlen > p->outoff) {
		p->outoff += pump_send(p, p->outfd, p->out + p->outoff, p->outlen - p->outoff);
		if (p->outlen > p->outoff)
			return;
	}
	p->outlen = p->outoff = 0;
	for (int k = 0; k < 2; k++) {
		int *fd = k ? &b->err : &b->out;
		if (*fd < 0)
			continue;
		ssize_t r = read(*fd, p->out, SHELL_CHUNK);
		if (r > 0) {
			p->outlen = (size_t)r;
			p->outfd = k ? STDERR_FILENO : STDOUT_FILENO;
			p->outoff = pump_send(p, p->outfd, p->out, p->outlen);
			return;
		}
		if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(*fd);
			*fd = -1;
		}
	}
}

/* Waits for whichever side can move next. */
static void pump_poll(struct shell_pump *p)
{
	struct backend *b = p->b;
	struct pollfd pfd[4];
	nfds_t n = 0;
	bool out_waits = p->outlen > p->outoff || p->queue_waits;

	if (p->inoff == p->inlen && !p->in_eof && b->in >= 0)
		pfd[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
	if (p->inlen > p->inoff && b->in >= 0)
		pfd[n++] = (struct pollfd){ .fd = b->in, .events = POLLOUT };
	if (out_waits) {
		pfd[n++] = (struct pollfd){ .fd = p->outfd, .events = POLLOUT };
	} else {
		if (b->out >= 0)
			pfd[n++] = (struct pollfd){ .fd = b->out, .events = POLLIN };
		if (b->err >= 0)
			pfd[n++] = (struct pollfd){ .fd = b->err, .events = POLLIN };
	}
	poll(pfd, n, 1000);
}

/* A session where nothing moves is ended, as the gate's are. */
static void pump_check_idle(struct shell_pump *p)
{
	const struct gate_config *cfg = p->d->cfg;

	if (cfg->idle_timeout > 0 && now_ms() - p->last_activity > (int64_t)cfg->idle_timeout * 1000) {
		log_info("gate.idle_timeout", "user=%s", p->d->user.name);
		door_say(p->d, "ERROR: Nothing came or went for %d s: Grove closed the session (gate.idleTimeout).\n",
			 cfg->idle_timeout);
		p->b->abort(p->b);
		p->last_activity = now_ms();
	}
}

static int shell_pump(struct door *d, struct backend *b)
{
	struct shell_pump p = {
		.d = d,
		.b = b,
		.in = xmalloc(SHELL_CHUNK),
		.out = xmalloc(SHELL_CHUNK),
		.outfd = STDOUT_FILENO,
		.last_activity = now_ms(),
	};
	int code;

	for (;;) {
		pump_input(&p);
		if (b->peek && b->out >= 0)
			pump_output_queue(&p);
		else if (!b->peek)
			pump_output_fds(&p);
		if (b->out < 0 && b->err < 0 && p.outlen == p.outoff)
			break;
		pump_poll(&p);
		pump_check_idle(&p);
	}
	code = b->wait(b);
	free(p.in);
	free(p.out);
	return code;
}

static const struct door_ops shell_ops = {
	.say = shell_say,
	.write_out = shell_write_out,
	.finish = shell_finish,
	.connected = shell_connected,
	.pump = shell_pump,
};

static const struct cli_option shell_opts[] = {
	{ "config", 'c', "FILE", "the gate's configuration" },
	{ NULL },
};

const struct cli_command shell_command = {
	.name = "shell",
	.synopsis = "--config FILE FINGERPRINT",
	.what = "the forced command of sshd for a key Grove knows (grove authorized-keys writes it)",
	.opts = shell_opts,
	.more = "Runs the git command of SSH_ORIGINAL_COMMAND for the key FINGERPRINT, as the\n"
		"gate's own SSH server would. See docs/openssh.md.\n",
};

/* "client_ip client_port server_ip server_port" → "ip:port", as the gate logs peers. */
static void shell_peer(struct door *d)
{
	const char *c = getenv("SSH_CONNECTION");
	char ip[64] = "", port[8] = "";

	if (c && sscanf(c, "%63s %7s", ip, port) == 2)
		snprintf(d->peer, sizeof(d->peer), strchr(ip, ':') ? "[%s]:%s" : "%s:%s", ip, port);
	else
		strlcpy_(d->peer, "-", sizeof(d->peer));
}

/*
 * Who the key is, now: sshd let it in a moment ago, but an operator may
 * have removed it since (the same check as the gate's, door.h). With
 * auth.url, as the gate's login: the platform names the user, or, when it
 * cannot be asked, every command asks again. Returns 0, or says why not.
 */
static int shell_identify(struct shell *sh, const char *fp)
{
	struct door *d = &sh->d;
	char why[AUTHZ_MESSAGE_MAX + 1];

	strlcpy_(d->fingerprint, fp, sizeof(d->fingerprint));
	if (gate_authz) {
		if (!door_login_external(d, fp, why, sizeof(why)))
			return 0;
		door_finish(d, 1, "ERROR: %s\n", why);
		return -1;
	}
	if (!door_db(d) || db_user_by_key(d->db, fp, &d->user)) {
		log_info("gate.refused", "fingerprint=%s what=%s reason=%s", fp, "key lookup", error_msg());
		door_finish(d, 1, "ERROR: This key (%s) is not registered with Grove (any more): connect with a key that is.\n",
			    fp);
		return -1;
	}
	return 0;
}

/* The client's request: its command (none: a login), and its protocol. */
static void shell_request(struct door *d)
{
	const char *cmd = getenv("SSH_ORIGINAL_COMMAND");

	if (cmd)
		d->command = xstrndup(cmd, SSHCMD_MAX + 1);
	door_take_git_protocol(d, getenv("GIT_PROTOCOL"));
}

int shell_main(int argc, char **argv)
{
	struct gate_config cfg = { 0 };
	struct shell sh = { .status = 1 };
	const char *conf = NULL;
	struct cli_parse p;
	int code;

	if ((code = openssh_parse_args(&p, &shell_command, argc, argv, 1,
				       "the key's fingerprint (grove authorized-keys does)", &conf)) >= 0)
		return code;
	/* Until openssh.logFile is open, stderr is the user's: the reason
	 * goes to syslog, the user reads no paths and no library words. */
	log_set_output("gate-shell", -1);
	if (openssh_load(&cfg, conf, "gate-shell")) {
		error_to_syslog("grove shell");
		fprintf(stderr, "ERROR: Grove is not set up right on this server: tell the platform's operators.\n");
		gate_config_release(&cfg);
		return 1;
	}
	gate_shared_open(&cfg, false);
	signal(SIGPIPE, SIG_IGN);
	for (int fd = 0; fd < 3; fd++)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	door_init(&sh.d, &shell_ops, &cfg);
	shell_peer(&sh.d);
	shell_request(&sh.d);
	if (shell_identify(&sh, p.args[0]) == 0) {
		if (sh.d.command)
			door_run_command(&sh.d);
		else
			door_greet(&sh.d);
	}
	door_release(&sh.d);
	authz_free(gate_authz);
	gate_authz = NULL;
	gate_config_release(&cfg);
	return sh.status;
}
