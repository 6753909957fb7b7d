/*
 * One SSH connection, in its own forked process: key exchange, public-key
 * authentication, one session channel with one exec of a git service, the
 * access check, and the byte pump between the channel and the backend.
 *
 * Flow control, as learned with libssh 0.10: the channel data callback only
 * takes data when our buffer towards the backend is empty (libssh keeps the
 * rest and does not grow the client's window meanwhile), and the backend's
 * output is read only as far as the client's window allows. Callbacks only
 * record; all I/O happens in the loop after ssh_event_dopoll returns.
 */
#include "gate/gate.h"
#include "gate/door.h"
#include "gate/authz.h"
#include "gate/backend.h"
#include "gate/pace.h"
#include "gate/db.h"
#include "gate/metrics.h"
#include "gate/opslots.h"
#include "gate/ratelimit.h"
#include "gate/pushlock.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/gitcmd.h"
#include "lib/repohead.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/pktline.h"
#include "lib/proxyproto.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/sshcmd.h"
#include "lib/strbuf.h"
#include "lib/strvec.h"
#include "grove/v1/repository.pb-c.h"

#include <ctype.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

/* Larger than the window libssh grants a client (~1.2 MB): whatever it
 * buffered can be taken at once, which keeps its buffers from growing. */
#define IN_BUF_MAX (2 * 1024 * 1024)
#define OUT_CHUNK (64 * 1024)
#define MAX_AUTH_TRIES 6
#define LINGER_MS 10000   /* longest wait for the client's close after ours */

/* One connection: the door (door.h) and what libssh needs around it. */
struct sess {
	struct door d;            /* first: a door's ops get &s->d and cast back */
	ssh_session ssh;
	ssh_event ev;
	ssh_channel chan;
	struct ssh_channel_callbacks_struct chan_cb;
	int auth_fd;
	/* identity: only ever set from a key whose signature verified */
	bool authed;
	int auth_tries;
	/* requests */
	bool shell;
	bool exec_seen;
	/* pump */
	char *inbuf;
	size_t inlen, inoff;
	bool reading;             /* inside ssh_channel_read_nonblocking: the callback must not fill inbuf */
	bool client_eof;
	bool remote_closed;       /* the client sent its channel close */
	bool lingering;           /* our close is out: what the client still sends is dropped */
};

static char *key_fingerprint(ssh_key key)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0) {
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
		ssh_clean_pubkey_hash(&hash);
	}
	return fp;
}

/*
 * With auth.url (door_login_external). A probe is answered "acceptable"
 * without asking (the client then signs, and the signed key is asked
 * about), so a probe costs the API nothing.
 */
static int auth_pubkey_external(struct sess *s, const char *fp, char state)
{
	char why[AUTHZ_MESSAGE_MAX + 1];

	if (state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;
	if (state != SSH_PUBLICKEY_STATE_VALID || door_login_external(&s->d, fp, why, sizeof(why)))
		return SSH_AUTH_DENIED;
	s->authed = true;
	return SSH_AUTH_SUCCESS;
}

static int auth_pubkey(ssh_session session, const char *user, struct ssh_key_struct *pubkey,
		       char state, void *userdata)
{
	struct sess *s = userdata;
	struct user u = { 0 };
	char *fp;
	int ret = SSH_AUTH_DENIED;

	if (++s->auth_tries > MAX_AUTH_TRIES * 2)
		return SSH_AUTH_DENIED;
	fp = key_fingerprint(pubkey);
	if (!fp)
		return SSH_AUTH_DENIED;
	if (gate_authz) {
		ret = auth_pubkey_external(s, fp, state);
		goto out;
	}
	if (!door_db(&s->d) || db_user_by_key(s->d.db, fp, &u)) {
		/* Remembered for the one auth_failed line at the end, if no key of
		 * this connection turns out to be known. */
		strlcpy_(s->d.fingerprint, fp, sizeof(s->d.fingerprint));
		goto out;
	}
	/* A probe ("would you take this key?") is only ever answered; the
	 * identity comes from the key whose signature libssh verified. */
	if (state == SSH_PUBLICKEY_STATE_NONE) {
		ret = SSH_AUTH_SUCCESS;
	} else if (state == SSH_PUBLICKEY_STATE_VALID) {
		user_release(&s->d.user);
		s->d.user = u;
		memset(&u, 0, sizeof(u));
		strlcpy_(s->d.fingerprint, fp, sizeof(s->d.fingerprint));
		s->authed = true;
		ret = SSH_AUTH_SUCCESS;
	}
out:
	user_release(&u);
	ssh_string_free_char(fp);
	return ret;
}


static int on_data(ssh_session session, ssh_channel channel, void *data, uint32_t len, int is_stderr,
		   void *userdata)
{
	struct sess *s = userdata;
	if (s->lingering)
		return (int)len;
	/* Not now: libssh keeps it and the window stays shut. Also not while
	 * the pump itself reads the channel: libssh calls this from inside that
	 * read, and both would fill inbuf. */
	if (is_stderr || s->inlen > s->inoff || s->reading)
		return 0;
	size_t n = MIN((size_t)len, (size_t)IN_BUF_MAX);
	memcpy(s->inbuf, data, n);
	s->inlen = n;
	s->inoff = 0;
	door_took_input(&s->d, data, n);
	return (int)n;
}

static void on_eof(ssh_session session, ssh_channel channel, void *userdata)
{
	((struct sess *)userdata)->client_eof = true;
}

static void on_close(ssh_session session, ssh_channel channel, void *userdata)
{
	struct sess *s = userdata;
	s->client_eof = true;
	s->d.client_closed = true;
	s->remote_closed = true;
}

static int on_exec(ssh_session session, ssh_channel channel, const char *command, void *userdata)
{
	struct sess *s = userdata;
	if (s->exec_seen || s->shell)
		return 1;
	s->exec_seen = true;
	/* Checked after: the client then sees our one-line reason. */
	s->d.command = xstrndup(command, SSHCMD_MAX + 1);
	return 0;
}

static int on_shell(ssh_session session, ssh_channel channel, void *userdata)
{
	struct sess *s = userdata;
	if (s->exec_seen || s->shell)
		return 1;
	s->shell = true;
	return 0;
}

static int on_env(ssh_session session, ssh_channel channel, const char *name, const char *value, void *userdata)
{
	struct sess *s = userdata;
	/* What git sends, nothing else (version 0 is what it means by sending none). */
	if (!strcmp(name, "GIT_PROTOCOL") && door_take_git_protocol(&s->d, value))
		return 0;
	/* The locale OpenSSH clients send by default (SendEnv LANG LC_*): not
	 * taken either, but not worth a log line on every session. */
	if (!strcmp(name, "LANG") || skip_prefix(name, "LC_", NULL))
		return 1;
	log_info("gate.refused", "peer=%s user=%s what=%s name=%.*s", s->d.peer, s->d.user.name ? s->d.user.name : "",
		 "env", (int)strnlen(name, 64), name);
	return 1;
}

/* One log line per refused request, as for commands and env (what: its kind). */
static void log_refused(const struct sess *s, const char *what)
{
	log_info("gate.refused", "peer=%s user=%s what=%s", s->d.peer, s->d.user.name ? s->d.user.name : "", what);
}

static int deny_pty(ssh_session session, ssh_channel channel, const char *term, int w, int h, int pw, int ph,
		    void *userdata)
{
	log_refused(userdata, "pty");
	return 1;
}

static int deny_subsystem(ssh_session session, ssh_channel channel, const char *sub, void *userdata)
{
	log_refused(userdata, "subsystem");
	return 1;
}

/* Asked without wanting an answer: libssh would drop it silently; no agent
 * channel is ever opened back. */
static void deny_agent(ssh_session session, ssh_channel channel, void *userdata)
{
	log_refused(userdata, "agent forwarding");
}

/*
 * What no callback takes reaches here: channels other than "session"
 * (port forwarding, X11, agent), channel requests such as x11-req and
 * auth-agent-req, global requests such as tcpip-forward. libssh refuses them
 * (returning 1 asks for its default answer, a failure); this only logs those
 * a user asked for. Authentication messages pass through unlogged: every
 * OpenSSH client tries "none" first.
 */
static int on_message(ssh_session session, ssh_message msg, void *userdata)
{
	const char *what = NULL;

	switch (ssh_message_type(msg)) {
	case SSH_REQUEST_CHANNEL_OPEN:
		switch (ssh_message_subtype(msg)) {
		case SSH_CHANNEL_DIRECT_TCPIP: what = "port forwarding"; break;
		case SSH_CHANNEL_X11: what = "x11 channel"; break;
		case SSH_CHANNEL_AUTH_AGENT: what = "agent channel"; break;
		default: what = "channel"; break;
		}
		break;
	case SSH_REQUEST_CHANNEL:
		if (ssh_message_subtype(msg) == SSH_CHANNEL_REQUEST_X11)
			what = "x11 forwarding";
		else if (ssh_message_subtype(msg) != SSH_CHANNEL_REQUEST_WINDOW_CHANGE)
			what = "channel request";
		break;
	case SSH_REQUEST_GLOBAL:
		if (ssh_message_subtype(msg) == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
			what = "remote port forwarding";
		break;
	default:
		break;
	}
	if (what)
		log_refused(userdata, what);
	return 1;
}

static ssh_channel open_session(ssh_session session, void *userdata)
{
	struct sess *s = userdata;
	if (s->chan || !s->authed) {
		if (s->chan)
			log_refused(s, "second session");   /* one channel per connection */
		return NULL;
	}
	s->chan = ssh_channel_new(session);
	memset(&s->chan_cb, 0, sizeof(s->chan_cb));
	s->chan_cb.userdata = s;
	s->chan_cb.channel_data_function = on_data;
	s->chan_cb.channel_eof_function = on_eof;
	s->chan_cb.channel_close_function = on_close;
	s->chan_cb.channel_exec_request_function = on_exec;
	s->chan_cb.channel_shell_request_function = on_shell;
	s->chan_cb.channel_env_request_function = on_env;
	s->chan_cb.channel_pty_request_function = deny_pty;
	s->chan_cb.channel_subsystem_request_function = deny_subsystem;
	s->chan_cb.channel_auth_agent_req_function = deny_agent;
	/* No x11 callback: libssh refuses it (on_message logs it). */
	ssh_callbacks_init(&s->chan_cb);
	ssh_set_channel_callbacks(s->chan, &s->chan_cb);
	return s->chan;
}

/*
 * libssh sends each packet (32 KiB for OpenSSH) with a send() of its own as
 * soon as it is encrypted, and with TCP_NODELAY each may leave as a segment
 * of its own. Corked while a batch of output is written, the kernel may join
 * them; uncorking sends the rest. Measured: the client's reads and writes
 * during a clone went down ~4 % (it still makes ~50 % more than through
 * sshd, which writes several packets at once; bench/README.md).
 */
static int cork(struct sess *s, bool on)
{
	int v = on;
	return setsockopt(ssh_get_fd(s->ssh), IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
}

/*
 * SSH-level keepalive, as OpenSSH's ClientAliveInterval: after
 * gate.clientAliveInterval of silence from the client, a keepalive@openssh.com
 * request it must answer; gate.clientAliveCountMax of them unanswered and
 * the client is given up (about interval x (count + 1) after it went quiet).
 * TCP keepalive cannot tell this: behind a load balancer its probes stop at
 * the balancer, and a client whose ssh hangs (stopped, stuck) still has a
 * kernel that acks them. What the client last sent is what the kernel says
 * (TCP_INFO): an answer, a window adjust, pushed data alike.
 */
struct client_alive {
	int64_t next_check;
	int64_t asked_at;         /* when the last request went */
	int unanswered;
};

/* Returns true when the client is to be given up. */
static bool client_alive_check(struct sess *s, struct client_alive *ca)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int64_t interval = (int64_t)s->d.cfg->client_alive_s * 1000;
	int64_t now = now_ms(), heard_ago;

	if (interval <= 0 || s->d.dead || now < ca->next_check)
		return false;
	if (getsockopt(ssh_get_fd(s->ssh), IPPROTO_TCP, TCP_INFO, &ti, &len))
		return false;   /* not TCP (a test's socketpair): nothing to ask */
	heard_ago = ti.tcpi_last_data_recv;
	/* Anything since the last request answers it. A request goes only
	 * after a whole interval of silence, so what the kernel's clock (in
	 * jiffies) puts a few ms before it cannot be older news. */
	if (heard_ago < interval || now - heard_ago >= ca->asked_at - 10)
		ca->unanswered = 0;
	if (heard_ago < interval) {
		ca->next_check = now + interval - heard_ago;
		return false;
	}
	if (ca->unanswered >= s->d.cfg->client_alive_count)
		return true;
	/* libssh sends a new request only once the answer to the last one is
	 * taken, which the first call does if it came; not blocking, so that
	 * neither call waits for the client. */
	ssh_set_blocking(s->ssh, 0);
	ssh_send_keepalive(s->ssh);
	ssh_send_keepalive(s->ssh);
	ssh_set_blocking(s->ssh, 1);
	ca->unanswered++;
	ca->asked_at = now;
	ca->next_check = now + interval;
	return false;
}

/* What may go to the client now: its window, paced (pace.h) unless off. */
static uint32_t send_room(struct sess *s, struct pace *pace)
{
	uint32_t w = ssh_channel_window_size(s->chan);
	return pace ? pace_room(pace, w, now_us()) : w;
}

/* Counts n bytes sent to the client; returns what may go now. */
static uint32_t took_output(struct sess *s, struct pace *pace, const uint8_t *data, uint32_t n)
{
	door_took_output(&s->d, data, n);
	if (pace)
		pace_sent(pace, n, now_us());
	return send_room(s, pace);
}

/* The pump's state, shared by its steps. */
struct pump {
	struct sess *s;
	ssh_event ev;
	struct backend *b;
	struct pace *pace;        /* NULL: output not paced */
	char *buf;                /* OUT_CHUNK: what is read from the backend's pipes */
	int64_t last_activity;
	struct client_alive ca;
	uint32_t win;             /* what may go to the client now */
	bool window_shut;         /* output waits for the client's window (or the pacer) */
};

/*
 * client → backend. Returns true when it took more from libssh: the loop
 * then starts over with it.
 */
/* A push whose ref list went past gate.maxRefListSize: nothing of it
 * reaches git (or a store) any more, and what comes is dropped. */
static void sess_check_head(struct sess *s, struct backend *b)
{
	if (s->d.push_head && s->d.push_head->too_big && !s->d.head_refused) {
		s->d.head_refused = true;
		b->abort(b);
	}
	if (s->d.head_refused)
		s->inlen = s->inoff = 0;
}

static bool pump_client_input(struct pump *p)
{
	struct sess *s = p->s;
	struct backend *b = p->b;

	/* Input comes through the read below or libssh's data callback
	 * (on_data): either way, a ref list past gate.maxRefListSize is
	 * refused before any more of it reaches git (or a store). */
	sess_check_head(s, b);
	if (s->inlen > s->inoff && b->in >= 0) {
		ssize_t w = write(b->in, s->inbuf + s->inoff, s->inlen - s->inoff);
		if (w > 0) {
			s->inoff += (size_t)w;
			p->last_activity = now_ms();
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			/* The backend stopped reading (it exited): drop the rest. */
			close(b->in);
			b->in = -1;
		}
	}
	if (s->inoff == s->inlen && !s->d.dead) {
		s->inlen = s->inoff = 0;
		/* Take what libssh kept while our buffer was full. */
		s->reading = true;
		int n = ssh_channel_read_nonblocking(s->chan, s->inbuf, IN_BUF_MAX, 0);
		s->reading = false;
		if (n > 0) {
			s->inlen = (size_t)n;
			door_took_input(&s->d, s->inbuf, (size_t)n);
			sess_check_head(s, b);
			return true;
		}
	}
	if (s->client_eof && s->inlen == 0 && b->in >= 0 && ssh_channel_poll(s->chan, 0) <= 0) {
		close(b->in);
		b->in = -1;
	}
	if (s->d.client_closed && (b->out >= 0 || b->err >= 0)) {
		b->abort(b);
		s->d.client_closed = false;   /* once */
		s->inlen = s->inoff = 0;
	}
	return false;
}

/* backend → client, from a backend that queues its output (peek/consume). */
static void pump_output_queue(struct pump *p)
{
	struct sess *s = p->s;
	struct backend *b = p->b;
	const uint8_t *data;
	size_t len;
	bool is_err;
	bool corked = false;
	int r;

	while ((r = b->peek(b, &data, &len, &is_err)) == 1) {
		if (s->d.dead) {
			b->consume(b, len);   /* nobody to send it to: drain until the backend ends */
			continue;
		}
		if (p->win == 0) {
			p->window_shut = true;
			break;
		}
		uint32_t n = (uint32_t)MIN(len, (size_t)p->win);
		if (!corked)
			corked = !cork(s, true);
		int w = is_err ? ssh_channel_write_stderr(s->chan, data, n) : ssh_channel_write(s->chan, data, n);
		if (w == SSH_ERROR) {
			b->abort(b);   /* drops the queue: peek says 0 until the end */
			break;
		}
		/* data is the backend's until consumed: look at it first. */
		p->win = took_output(s, p->pace, data, n);
		b->consume(b, n);
		p->last_activity = now_ms();
	}
	if (corked)
		cork(s, false);
	if (r < 0) {
		close(b->out);
		b->out = -1;
	}
}

/* backend → client, from a backend's stdout and stderr pipes. */
static void pump_output_fds(struct pump *p)
{
	struct sess *s = p->s;
	struct backend *b = p->b;

	for (int k = 0; k < 2 && !b->peek; k++) {
		int *fd = k ? &b->err : &b->out;
		if (*fd < 0)
			continue;
		if (p->win == 0) {
			p->window_shut = true;
			continue;
		}
		ssize_t r = read(*fd, p->buf, MIN((size_t)p->win, (size_t)OUT_CHUNK));
		if (r > 0 && s->d.dead) {
			continue;   /* nobody to send it to: drain until the backend ends */
		} else if (r > 0) {
			int w = k ? ssh_channel_write_stderr(s->chan, p->buf, (uint32_t)r)
				  : ssh_channel_write(s->chan, p->buf, (uint32_t)r);
			if (w == SSH_ERROR) {
				b->abort(b);
				close(*fd);
				*fd = -1;
				continue;
			}
			p->win = took_output(s, p->pace, (const uint8_t *)p->buf, (uint32_t)r);
			p->last_activity = now_ms();
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(*fd);
			*fd = -1;
		}
	}
}

/* Wait for the backend (when the window is open) or the client. */
static void pump_poll(struct pump *p)
{
	struct sess *s = p->s;
	struct backend *b = p->b;
	struct pollfd pfd[4];
	int n = 0;
	pfd[n].fd = ssh_get_fd(s->ssh);
	pfd[n++].events = POLLIN;
	if (!p->window_shut) {
		if (b->out >= 0) { pfd[n].fd = b->out; pfd[n++].events = POLLIN; }
		if (b->err >= 0) { pfd[n].fd = b->err; pfd[n++].events = POLLIN; }
	}
	if (s->inlen > s->inoff && b->in >= 0) {
		pfd[n].fd = b->in;
		pfd[n++].events = POLLOUT;
	}
	int timeout = p->window_shut ? 50 : 1000;
	int64_t held = p->pace ? pace_wait(p->pace, now_us()) : -1;
	if (held >= 0)
		timeout = (int)MIN((int64_t)timeout, held / 1000 + 1);   /* its stall rule */
	poll(pfd, (nfds_t)n, timeout);
	if (!s->d.dead && ssh_event_dopoll(p->ev, 0) == SSH_ERROR) {
		/* The session is broken: no ssh_channel_* call may follow
		 * (libssh crashes on a dead channel's buffers). */
		s->d.dead = true;
		s->d.client_closed = true;
		s->client_eof = true;
	}
}

/* A client that stopped answering is given up; a session where nothing
 * moves is ended. */
static void pump_check_timeouts(struct pump *p)
{
	struct sess *s = p->s;

	if (client_alive_check(s, &p->ca)) {
		log_warn("gate.client_unresponsive", "user=%s unanswered=%d interval_s=%d", s->d.user.name,
			 p->ca.unanswered, s->d.cfg->client_alive_s);
		/* As if the connection broke: nothing more is sent to it. */
		s->d.dead = true;
		s->d.client_closed = true;
		s->client_eof = true;
	}
	if (s->d.cfg->idle_timeout > 0 && now_ms() - p->last_activity > (int64_t)s->d.cfg->idle_timeout * 1000) {
		log_info("gate.idle_timeout", "user=%s", s->d.user.name);
		if (!s->d.dead)
			door_say(&s->d, "ERROR: Nothing came or went for %d s: Grove closed the session (gate.idleTimeout).\n",
			    s->d.cfg->idle_timeout);
		/* Keep pumping until the backend's pipes close. */
		p->b->abort(p->b);
		p->last_activity = now_ms();
	}
}

/* The door's pump: bytes until the backend's output ends; its exit code. */
static int sess_pump(struct door *d, struct backend *b)
{
	struct sess *s = (struct sess *)d;
	struct pump p = {
		.s = s,
		.ev = s->ev,
		.b = b,
		.buf = xmalloc(OUT_CHUNK),
		.last_activity = now_ms(),
		.ca = {
			.next_check = now_ms() + (int64_t)s->d.cfg->client_alive_s * 1000,
			.asked_at = INT64_MAX,   /* nothing asked yet */
		},
		.pace = s->d.cfg->pace_output ? &s->d.pace : NULL,
	};
	int code;

	if (p.pace) {
		const char *banner = ssh_get_clientbanner(s->ssh);
		uint32_t step = banner && skip_prefix(banner, "SSH-2.0-OpenSSH_", NULL) ? PACE_OPENSSH_STEP : 0;
		pace_init(p.pace, ssh_channel_window_size(s->chan), step, now_us());
	}

	for (;;) {
		if (pump_client_input(&p))
			continue;

		/* backend → client, as far as the client's window and the pacer allow */
		p.win = s->d.dead ? OUT_CHUNK : send_room(s, p.pace);
		p.window_shut = false;
		if (b->peek && b->out >= 0)
			pump_output_queue(&p);
		pump_output_fds(&p);
		if (b->out < 0 && b->err < 0)
			break;

		pump_poll(&p);
		pump_check_timeouts(&p);
	}
	code = b->wait(b);
	free(p.buf);
	return code;
}

/* The door's words, on the channel's stderr. */
static void sess_say(struct door *d, const char *msg, size_t len)
{
	ssh_channel_write_stderr(((struct sess *)d)->chan, msg, (uint32_t)len);
}

static void sess_write_out(struct door *d, const char *msg, size_t len)
{
	ssh_channel_write(((struct sess *)d)->chan, msg, (uint32_t)len);
}

/* The exit status, then the channel's end. */
static void sess_finish(struct door *d, int status)
{
	struct sess *s = (struct sess *)d;
	ssh_channel_request_send_exit_status(s->chan, status);
	ssh_channel_send_eof(s->chan);
	ssh_channel_close(s->chan);
}

static bool sess_connected(struct door *d)
{
	return ssh_is_connected(((struct sess *)d)->ssh);
}

static const struct door_ops sess_ops = {
	.say = sess_say,
	.write_out = sess_write_out,
	.finish = sess_finish,
	.connected = sess_connected,
	.pump = sess_pump,
};

/*
 * Let the client read our close and close its end first. Closing the socket
 * while its data (the rest of a refused push, say) is still unread makes
 * the kernel send a reset, and a reset makes the client's kernel drop what
 * it had not read yet: our error message and the exit status. So what the
 * client still sends is read and dropped until its channel close comes,
 * or it hangs up, for at most LINGER_MS: a client that never answers holds
 * this process no longer than that.
 */
static void sess_linger(struct sess *s)
{
	int64_t deadline = now_ms() + LINGER_MS;

	if (s->d.dead)
		return;
	s->lingering = true;
	s->inlen = s->inoff = 0;
	ssh_blocking_flush(s->ssh, 2000);
	while (!s->remote_closed && ssh_is_connected(s->ssh) && now_ms() < deadline)
		if (ssh_event_dopoll(s->ev, 50) == SSH_ERROR)
			break;
}

int session_run(const struct gate_config *cfg, struct ssh_bind_struct *bind, int fd, const char *peer, int auth_fd)
{
	struct sess s = { .auth_fd = auth_fd };
	struct ssh_server_callbacks_struct cb = { 0 };
	int ret = 1;
	int64_t deadline;

	door_init(&s.d, &sess_ops, cfg);

	strlcpy_(s.d.peer, peer, sizeof(s.d.peer));
	s.inbuf = xmalloc(IN_BUF_MAX);
	s.ssh = ssh_new();
	/* A client that has not authenticated within the grace time is cut off
	 * by the kernel, whatever state libssh is in. */
	alarm((unsigned)cfg->login_grace);
	if (cfg->nproxy_from && door_proxy_header(cfg, fd, s.d.peer, sizeof(s.d.peer)))
		goto out;
	if (ssh_bind_accept_fd(bind, s.ssh, fd) != SSH_OK) {
		log_info("gate.accept_failed", "peer=%s error=%s", peer, ssh_get_error(bind));
		goto out;
	}
	cb.userdata = &s;
	cb.auth_pubkey_function = auth_pubkey;
	cb.channel_open_request_session_function = open_session;
	ssh_callbacks_init(&cb);
	ssh_set_server_callbacks(s.ssh, &cb);
	ssh_set_message_callback(s.ssh, on_message, &s);
	ssh_set_auth_methods(s.ssh, SSH_AUTH_METHOD_PUBLICKEY);
	if (ssh_handle_key_exchange(s.ssh) != SSH_OK) {
		log_info("gate.kex_failed", "peer=%s error=%s", peer, ssh_get_error(s.ssh));
		goto out;
	}
	s.ev = ssh_event_new();
	ssh_event_add_session(s.ev, s.ssh);
	while (!s.authed) {
		if (ssh_event_dopoll(s.ev, 1000) == SSH_ERROR || !ssh_is_connected(s.ssh))
			goto out;
	}
	alarm(0);
	door_tell_authed(&s.auth_fd);
	/* The channel and its request should follow at once. */
	deadline = now_ms() + (int64_t)cfg->login_grace * 1000;
	while (!(s.chan && (s.d.command || s.shell))) {
		if (ssh_event_dopoll(s.ev, 200) == SSH_ERROR || !ssh_is_connected(s.ssh) || now_ms() > deadline)
			goto out;
		if (s.chan && s.d.client_closed)
			goto out;
	}
	if (door_recheck_identity(&s.d) == 0) {
		if (s.shell)
			door_greet(&s.d);
		else
			door_run_command(&s.d);
	}
	sess_linger(&s);
	ret = 0;
out:
	if (!s.authed && s.auth_tries > 0) {
		log_info("gate.auth_failed", "peer=%s fingerprint=%s reason=%s", s.d.peer, s.d.fingerprint, "unknown key");
		if (gate_metrics)
			atomic_fetch_add(&gate_metrics->auth_failures, 1);
	}
	if (s.ev)
		ssh_event_free(s.ev);
	if (s.ssh) {
		ssh_disconnect(s.ssh);
		ssh_free(s.ssh);
	}
	door_release(&s.d);
	free(s.inbuf);
	return ret;
}
