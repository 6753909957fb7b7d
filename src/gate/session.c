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

struct sess {
	const struct gate_config *cfg;
	struct db *db;
	ssh_session ssh;
	ssh_channel chan;
	struct ssh_channel_callbacks_struct chan_cb;
	int auth_fd;
	/* identity: only ever set from a key whose signature verified */
	bool authed;
	bool authz_pending;       /* external authorization could not be asked at login: ask per command */
	struct user user;
	char fingerprint[128];
	int auth_tries;
	/* requests */
	char *command;
	bool shell;
	bool exec_seen;
	char git_protocol[16];
	/* pump */
	char *inbuf;
	size_t inlen, inoff;
	bool reading;             /* inside ssh_channel_read_nonblocking: the callback must not fill inbuf */
	bool dead;                /* libssh reported the session broken */
	bool client_eof, client_closed;
	uint64_t bytes_in, bytes_out;
	struct pace pace;          /* how far ahead of the client output goes */
	struct push_head *push_head;  /* a push with a size limit: where its pack starts */
	/* A push's output is watched for git's word that another push moved a
	 * ref under it (watch_race), keeping the last bytes across chunks. */
	bool watch_race, lost_race;
	bool rejected;            /* git reported a ref update it refused ("ng") */
	bool head_refused;        /* the push's ref list went past gate.maxRefListSize */
	char race_tail[24];
	size_t race_tail_len;
	char peer[64];
	int push_lock;            /* the app's push lock, held shared by a push */
	int op_slot;              /* one of the app's gate.maxOpsPerApp slots (opslots.h), or -1 */
};

/* The database, opened at its first use (a key to look up): a connection
 * that never offers one costs no database work (NULL: it cannot be opened,
 * logged). */
static struct db *sess_db(struct sess *s)
{
	if (!s->db && db_attach(&s->db, s->cfg->db_path))
		log_error("gate.db", "error=%s", error_msg());
	return s->db;
}

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
 * With auth.url, the platform says whether a verified key is someone. A
 * probe is answered "acceptable" without asking (the client then signs, and
 * the signed key is asked about), so a probe costs the API nothing. When the
 * API cannot be reached, the key is let in with no identity and every
 * command asks again: the user then reads why nothing works, instead of a
 * bare "Permission denied".
 */
static int auth_pubkey_external(struct sess *s, const char *fp, char state)
{
	struct authz_answer a;

	if (state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;
	if (state != SSH_PUBLICKEY_STATE_VALID)
		return SSH_AUTH_DENIED;
	strlcpy_(s->fingerprint, fp, sizeof(s->fingerprint));
	if (authz_check(gate_authz, fp, "login", NULL, &a)) {
		s->authz_pending = true;
	} else if (!a.allowed) {
		log_info("gate.auth_refused", "peer=%s fingerprint=%s message=%s", s->peer, fp, a.message);
		return SSH_AUTH_DENIED;
	}
	user_release(&s->user);
	s->user.name = xstrdup(s->authz_pending ? "-" : a.user);
	s->user.admin = false;
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
	if (!sess_db(s) || db_user_by_key(s->db, fp, &u)) {
		/* Remembered for the one auth_failed line at the end, if no key of
		 * this connection turns out to be known. */
		strlcpy_(s->fingerprint, fp, sizeof(s->fingerprint));
		goto out;
	}
	/* A probe ("would you take this key?") is only ever answered; the
	 * identity comes from the key whose signature libssh verified. */
	if (state == SSH_PUBLICKEY_STATE_NONE) {
		ret = SSH_AUTH_SUCCESS;
	} else if (state == SSH_PUBLICKEY_STATE_VALID) {
		user_release(&s->user);
		s->user = u;
		memset(&u, 0, sizeof(u));
		strlcpy_(s->fingerprint, fp, sizeof(s->fingerprint));
		s->authed = true;
		ret = SSH_AUTH_SUCCESS;
	}
out:
	user_release(&u);
	ssh_string_free_char(fp);
	return ret;
}

/* Counts what the client sent; a push's first bytes also say where its pack starts. */
static void took_input(struct sess *s, const void *data, size_t n)
{
	s->bytes_in += n;
	if (s->push_head)
		push_head_feed(s->push_head, data, n);
}

static int on_data(ssh_session session, ssh_channel channel, void *data, uint32_t len, int is_stderr,
		   void *userdata)
{
	struct sess *s = userdata;
	/* Not now: libssh keeps it and the window stays shut. Also not while
	 * the pump itself reads the channel: libssh calls this from inside that
	 * read, and both would fill inbuf. */
	if (is_stderr || s->inlen > s->inoff || s->reading)
		return 0;
	size_t n = MIN((size_t)len, (size_t)IN_BUF_MAX);
	memcpy(s->inbuf, data, n);
	s->inlen = n;
	s->inoff = 0;
	took_input(s, data, n);
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
	s->client_closed = true;
}

static int on_exec(ssh_session session, ssh_channel channel, const char *command, void *userdata)
{
	struct sess *s = userdata;
	if (s->exec_seen || s->shell)
		return 1;
	s->exec_seen = true;
	/* Checked after: the client then sees our one-line reason. */
	s->command = xstrndup(command, SSHCMD_MAX + 1);
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
	if (!strcmp(name, "GIT_PROTOCOL") && (!strcmp(value, "version=1") || !strcmp(value, "version=2"))) {
		strlcpy_(s->git_protocol, value, sizeof(s->git_protocol));
		return 0;
	}
	/* The locale OpenSSH clients send by default (SendEnv LANG LC_*): not
	 * taken either, but not worth a log line on every session. */
	if (!strcmp(name, "LANG") || skip_prefix(name, "LC_", NULL))
		return 1;
	log_info("gate.refused", "peer=%s user=%s what=%s name=%.*s", s->peer, s->user.name ? s->user.name : "",
		 "env", (int)strnlen(name, 64), name);
	return 1;
}

/* One log line per refused request, as for commands and env (what: its kind). */
static void log_refused(const struct sess *s, const char *what)
{
	log_info("gate.refused", "peer=%s user=%s what=%s", s->peer, s->user.name ? s->user.name : "", what);
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

/* A message on the client's stderr (ssh prints it as it is). */
static void vsay(struct sess *s, const char *fmt, va_list ap)
{
	char msg[2048];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n > 0)
		ssh_channel_write_stderr(s->chan, msg, (uint32_t)MIN(n, (int)sizeof(msg) - 1));
}

static void say(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct sess *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(s, fmt, ap);
	va_end(ap);
}

/* Ends the channel with a message on stderr and an exit status. */
static void finish(struct sess *s, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(struct sess *s, int status, const char *fmt, ...)
{
	va_list ap;
	if (fmt) {
		va_start(ap, fmt);
		vsay(s, fmt, ap);
		va_end(ap);
	}
	ssh_channel_request_send_exit_status(s->chan, status);
	ssh_channel_send_eof(s->chan);
	ssh_channel_close(s->chan);
}


/*
 * The key is looked up again when the command arrives, not only at
 * authentication: a connection can sit authenticated (an ssh ControlMaster,
 * or a client that waits) while an operator deletes the key or its user,
 * and that must take effect before anything runs. The user is reloaded too,
 * so a changed admin flag counts and a key moved to another user does not
 * keep the old user's access. With auth.url the gate keeps no keys: the
 * platform is asked for each command in run_command instead. Returns 0, or
 * ends the channel with why.
 */
static int recheck_identity(struct sess *s)
{
	struct user u = { 0 };
	int ret;

	if (gate_authz)
		return 0;
	ret = sess_db(s) ? db_user_by_key(s->db, s->fingerprint, &u) : GROVE_EUNAVAIL;
	if (ret == 0 && u.id != s->user.id)
		ret = GROVE_ENOTFOUND;
	if (ret) {
		log_info("gate.refused", "user=%s fingerprint=%s what=%s reason=%s", s->user.name, s->fingerprint,
			 ret == GROVE_ENOTFOUND ? "revoked key" : "key lookup", error_msg());
		if (ret == GROVE_ENOTFOUND)
			finish(s, 1, "ERROR: This key (%s) was removed after the connection authenticated: connect again with a key that is registered.\n",
			       s->fingerprint);
		else
			finish(s, 1, "ERROR: Your key could not be checked (the gate's database did not answer): try again in a moment.\n");
		user_release(&u);
		return ret;
	}
	user_release(&s->user);
	s->user = u;
	return 0;
}

/* A db row function: column 0 of each row into a strbuf, as "a, b, c". */
static int collect_names(void *ctx, int n, const char *const *names, const char *const *values)
{
	struct strbuf *sb = ctx;
	if (n > 0 && values[0]) {
		if (sb->len)
			strbuf_addstr(sb, ", ");
		strbuf_addstr(sb, values[0]);
	}
	return 0;
}

static void greet(struct sess *s)
{
	struct strbuf sb;
	if (s->authz_pending) {
		finish(s, 1, "ERROR: Grove cannot tell who you are right now: the authorization service is unavailable. "
			     "Try again in a minute.\n");
		return;
	}
	strbuf_init(&sb, 64 * 1024);
	strbuf_addf(&sb, "Hi %s! You've successfully authenticated, but Grove does not provide shell access.\n",
		    s->user.name);
	if (gate_authz) {
		/* The platform knows which apps are theirs; the gate does not. */
	} else if (s->user.admin) {
		strbuf_addstr(&sb, "You are an administrator: you can push to every app.\n");
	} else {
		struct strbuf apps = STRBUF_INIT;
		if (sess_db(s))
			db_writable_apps_each(s->db, s->user.name, collect_names, &apps);
		if (apps.len)
			strbuf_addf(&sb, "You can push to: %s\n", apps.buf);
		else
			strbuf_addstr(&sb, "You cannot push to any app yet: ask an administrator for access.\n");
		strbuf_release(&apps);
	}
	ssh_channel_write(s->chan, sb.buf, (uint32_t)sb.len);
	strbuf_release(&sb);
	finish(s, 1, NULL);
}

/* Makes sure the app's repository exists where its route says. */
static int ensure_repo(struct sess *s, const struct app *app, const char *rel, bool create)
{
	if (app->route == ROUTE_LEGACY) {
		char dir[4096];
		struct stat sb;
		snprintf(dir, sizeof(dir), "%s/%s", s->cfg->legacy_dir, rel);
		if (!stat(dir, &sb))
			return 0;
		if (!create)
			return error_set(GROVE_ENOTFOUND, "app %s has no code yet: push to it first", app->name);
		struct strvec argv = STRVEC_INIT;
		gitcmd_init(&argv, NULL, NULL);
		strvec_push(&argv, "init");
		strvec_push(&argv, "--bare");
		strvec_push(&argv, "--quiet");
		strvec_push(&argv, "--template=");
		strvec_pushf(&argv, "--initial-branch=%s", app->deploy_branch);
		strvec_push(&argv, "--");
		strvec_push(&argv, dir);
		int r = proc_run(strvec_argv(&argv), NULL, NULL, NULL, 0, NULL, NULL);
		strvec_clear(&argv);
		return r ? error_set(GROVE_EIO, "cannot create the repository of %s", app->name) : 0;
	}
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	Grove__V1__RepositoryExistsRequest ereq = GROVE__V1__REPOSITORY_EXISTS_REQUEST__INIT;
	Grove__V1__RepositoryExistsResponse *eresp = NULL;
	struct rpc_client *cl = NULL;
	int ret;
	repo.storage_name = s->cfg->cluster_storage;
	repo.relative_path = (char *)rel;
	ereq.repository = &repo;
	ret = rpc_client_new(&cl, s->cfg->cluster_address, s->cfg->secret);
	if (!ret)
		ret = rpc_unary(cl, "/grove.v1.RepositoryService/RepositoryExists", &ereq.base,
				&grove__v1__repository_exists_response__descriptor, (ProtobufCMessage **)&eresp, 10000);
	if (!ret && !eresp->exists) {
		if (!create) {
			ret = error_set(GROVE_ENOTFOUND, "app %s has no code yet: push to it first", app->name);
		} else {
			Grove__V1__CreateRepositoryRequest creq = GROVE__V1__CREATE_REPOSITORY_REQUEST__INIT;
			Grove__V1__CreateRepositoryResponse *cresp = NULL;
			creq.repository = &repo;
			creq.default_branch = app->deploy_branch;
			ret = rpc_unary(cl, "/grove.v1.RepositoryService/CreateRepository", &creq.base,
					&grove__v1__create_repository_response__descriptor, (ProtobufCMessage **)&cresp, 10000);
			if (ret == GROVE_EEXISTS)
				ret = 0;
			if (cresp)
				protobuf_c_message_free_unpacked(&cresp->base, NULL);
		}
	} else if (ret) {
		ret = error_wrap(GROVE_EUNAVAIL, "the repository storage is unavailable");
	}
	if (eresp)
		protobuf_c_message_free_unpacked(&eresp->base, NULL);
	rpc_client_free(cl);
	return ret;
}

/*
 * One of the app's gate.maxOpsPerApp slots, waited for up to
 * gate.opsQueueWait seconds (said once to the user), for the session's
 * life. Returns 0, or -1 when none came free (or on error: logged).
 */
static int take_op_slot(struct sess *s, const char *name)
{
	char locks[4096];
	int64_t start = now_ms(), deadline = start + (int64_t)s->cfg->ops_queue_wait * 1000;
	bool told = false;

	snprintf(locks, sizeof(locks), "%s/locks", s->cfg->data_dir);
	for (;;) {
		int fd = op_slot_try(locks, name, s->cfg->max_ops_per_app);
		if (fd >= 0) {
			s->op_slot = fd;
			if (told && gate_metrics)
				metrics_observe(&gate_metrics->queue_seconds, now_ms() - start);
			return 0;
		}
		if (fd == -1) {
			log_warn("gate.op_slot_failed", "app=%s error=%s", name, error_msg());
			return -1;
		}
		if (now_ms() >= deadline || !ssh_is_connected(s->ssh)) {
			if (told && gate_metrics)
				metrics_observe(&gate_metrics->queue_seconds, now_ms() - start);
			return -1;
		}
		if (!told) {
			say(s, "%s is busy (%d git operations running): waiting up to %ds…\n", name,
			    s->cfg->max_ops_per_app, s->cfg->ops_queue_wait);
			told = true;
		}
		usleep(100 * 1000);
	}
}

/*
 * A push holds its app's push lock (shared) for the whole session, so that a
 * migration (exclusive) starts only after pushes already running are done.
 * The app is read again once the lock is held: a migration that finished in
 * the meantime may have moved it to the other route.
 */
static int take_push_lock(struct sess *s, struct app *app, const char *name)
{
	char locks[4096];
	int64_t deadline = now_ms() + (int64_t)s->cfg->lock_wait * 1000;
	bool told = false;
	snprintf(locks, sizeof(locks), "%s/locks", s->cfg->data_dir);
	for (;;) {
		int fd = app->locked ? -2 : push_lock_try_shared(locks, name);
		if (fd >= 0) {
			struct app fresh = { 0 };
			if (!sess_db(s) || db_app_get(s->db, name, &fresh)) {
				close(fd);
				return -1;
			}
			if (!fresh.locked) {
				app_release(app);
				*app = fresh;
				s->push_lock = fd;
				return 0;
			}
			app_release(&fresh);
			close(fd);
			app->locked = true;
		} else if (fd == -1) {
			return -1;
		}
		if (!told) {
			say(s, "%s is locked (maintenance or migration): waiting up to %ds…\n", name, s->cfg->lock_wait);
			told = true;
		}
		if (now_ms() >= deadline || !ssh_is_connected(s->ssh))
			return -1;
		usleep(250 * 1000);
		struct app fresh = { 0 };
		if (!sess_db(s) || db_app_get(s->db, name, &fresh))
			return -1;
		app->locked = fresh.locked;
		app_release(&fresh);
	}
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
	int64_t interval = (int64_t)s->cfg->client_alive_s * 1000;
	int64_t now = now_ms(), heard_ago;

	if (interval <= 0 || s->dead || now < ca->next_check)
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
	if (ca->unanswered >= s->cfg->client_alive_count)
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
/* git's words when a ref changed between the advertisement and the update. */
#define LOST_RACE "cannot lock ref '"

/* A refused ref in git's report-status: a pkt-line "XXXXng refs/…", its
 * four hex digits of length just before (progress text saying "Pushing
 * refs/…" has none). */
static bool has_ng(const char *buf, size_t len)
{
	static const char ng[] = "ng refs/";
	for (const char *p = buf; (p = memmem(p, len - (size_t)(p - buf), ng, strlen(ng))); p++) {
		if (p - buf >= 4 && isxdigit((unsigned char)p[-1]) && isxdigit((unsigned char)p[-2]) &&
		    isxdigit((unsigned char)p[-3]) && isxdigit((unsigned char)p[-4]))
			return true;
		if ((size_t)(p - buf) + strlen(ng) >= len)
			break;
	}
	return false;
}

/* Whether git said, in this chunk or across its start, that another push
 * moved a ref this one updates, or that it refused a ref update. */
static void watch_lost_race(struct sess *s, const uint8_t *data, uint32_t n)
{
	char edge[2 * sizeof(s->race_tail)];
	size_t k = MIN((size_t)n, sizeof(s->race_tail));

	memcpy(edge, s->race_tail, s->race_tail_len);
	memcpy(edge + s->race_tail_len, data, k);
	if (memmem(edge, s->race_tail_len + k, LOST_RACE, strlen(LOST_RACE)) ||
	    memmem(data, n, LOST_RACE, strlen(LOST_RACE)))
		s->lost_race = true;
	if (has_ng(edge, s->race_tail_len + k) || has_ng((const char *)data, n))
		s->rejected = true;
	/* The last bytes seen, for a match that a chunk boundary splits. */
	if (n >= sizeof(s->race_tail)) {
		memcpy(s->race_tail, data + n - sizeof(s->race_tail), sizeof(s->race_tail));
		s->race_tail_len = sizeof(s->race_tail);
	} else {
		size_t keep = MIN(s->race_tail_len, sizeof(s->race_tail) - n);
		memmove(s->race_tail, s->race_tail + s->race_tail_len - keep, keep);
		memcpy(s->race_tail + keep, data, n);
		s->race_tail_len = keep + n;
	}
}

static uint32_t took_output(struct sess *s, struct pace *pace, const uint8_t *data, uint32_t n)
{
	if (s->watch_race && (!s->lost_race || !s->rejected))
		watch_lost_race(s, data, n);
	s->bytes_out += n;
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
static bool pump_client_input(struct pump *p)
{
	struct sess *s = p->s;
	struct backend *b = p->b;

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
	if (s->inoff == s->inlen && !s->dead) {
		s->inlen = s->inoff = 0;
		/* Take what libssh kept while our buffer was full. */
		s->reading = true;
		int n = ssh_channel_read_nonblocking(s->chan, s->inbuf, IN_BUF_MAX, 0);
		s->reading = false;
		if (n > 0) {
			s->inlen = (size_t)n;
			took_input(s, s->inbuf, (size_t)n);
			if (s->push_head && s->push_head->too_big && !s->head_refused) {
				/* Nothing of it reaches git (or a store) any more. */
				s->head_refused = true;
				b->abort(b);
			}
			if (s->head_refused)
				s->inlen = s->inoff = 0;
			return true;
		}
	}
	if (s->client_eof && s->inlen == 0 && b->in >= 0 && ssh_channel_poll(s->chan, 0) <= 0) {
		close(b->in);
		b->in = -1;
	}
	if (s->client_closed && (b->out >= 0 || b->err >= 0)) {
		b->abort(b);
		s->client_closed = false;   /* once */
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
		if (s->dead) {
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
		if (r > 0 && s->dead) {
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
	if (!s->dead && ssh_event_dopoll(p->ev, 0) == SSH_ERROR) {
		/* The session is broken: no ssh_channel_* call may follow
		 * (libssh crashes on a dead channel's buffers). */
		s->dead = true;
		s->client_closed = true;
		s->client_eof = true;
	}
}

/* A client that stopped answering is given up; a session where nothing
 * moves is ended. */
static void pump_check_timeouts(struct pump *p)
{
	struct sess *s = p->s;

	if (client_alive_check(s, &p->ca)) {
		log_warn("gate.client_unresponsive", "user=%s unanswered=%d interval_s=%d", s->user.name,
			 p->ca.unanswered, s->cfg->client_alive_s);
		/* As if the connection broke: nothing more is sent to it. */
		s->dead = true;
		s->client_closed = true;
		s->client_eof = true;
	}
	if (s->cfg->idle_timeout > 0 && now_ms() - p->last_activity > (int64_t)s->cfg->idle_timeout * 1000) {
		log_info("gate.idle_timeout", "user=%s", s->user.name);
		if (!s->dead)
			say(s, "ERROR: Nothing came or went for %d s: Grove closed the session (gate.idleTimeout).\n",
			    s->cfg->idle_timeout);
		/* Keep pumping until the backend's pipes close. */
		p->b->abort(p->b);
		p->last_activity = now_ms();
	}
}

/* Moves bytes until the backend's output ends; returns its exit code. */
static int pump(struct sess *s, ssh_event ev, struct backend *b)
{
	struct pump p = {
		.s = s,
		.ev = ev,
		.b = b,
		.buf = xmalloc(OUT_CHUNK),
		.last_activity = now_ms(),
		.ca = {
			.next_check = now_ms() + (int64_t)s->cfg->client_alive_s * 1000,
			.asked_at = INT64_MAX,   /* nothing asked yet */
		},
		.pace = s->cfg->pace_output ? &s->pace : NULL,
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
		p.win = s->dead ? OUT_CHUNK : send_room(s, p.pace);
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

/* One command's state, shared by the steps of run_command. */
struct command {
	struct sshcmd cmd;
	struct app app;
	char name[GATE_APP_NAME_MAX + 1];
	char rel[GATE_APP_NAME_MAX + 8];
	char corr[33];
	enum access need;
	uint64_t max_push;        /* a push's size limit in bytes; 0: none */
	struct push_head ph;
	char *ph_buf;
	struct backend *b;
	char **env;
	const char *result;       /* "ok", "failed" or "refused" */
	int code;
	int64_t start;
};

/* The command line and the app it names. Returns 0, or ends the channel with why. */
static int command_parse(struct sess *s, struct command *c)
{
	if (sshcmd_parse(s->command, &c->cmd)) {
		log_info("gate.refused", "user=%s what=%s reason=%s", s->user.name, "command", error_msg());
		finish(s, 1, "ERROR: Grove only runs git-upload-pack, git-receive-pack and git-upload-archive (%s).\n",
		       error_msg());
		return -1;
	}
	if (gate_app_from_path(c->cmd.path, c->name)) {
		finish(s, 1, "ERROR: %s.\n", error_msg());
		log_info("gate.refused", "user=%s what=%s reason=%s", s->user.name, "app name", error_msg());
		return -1;
	}
	return 0;
}

/* With auth.url: the platform's answer for this key, command and app, in
 * *have. Returns 0, or ends the channel with why. */
static int command_authorize_external(struct sess *s, struct command *c, enum access *have)
{
	struct authz_answer za;

	if (authz_check(gate_authz, s->fingerprint, git_service_name(c->cmd.service), c->name, &za)) {
		finish(s, 1, "ERROR: Grove cannot check your access to %s right now: the authorization service is "
			     "unavailable. Try again in a minute.\n", c->name);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s reason=%s", s->user.name,
			 s->fingerprint, c->name, "authz unavailable", error_msg());
		return -1;
	}
	if (za.allowed) {
		/* The answer names who this key is, for logs, hooks and deploys. */
		free(s->user.name);
		s->user.name = xstrdup(za.user);
		s->authz_pending = false;
	}
	*have = za.allowed && sess_db(s) && !db_app_get(s->db, c->name, &c->app) ? c->need : ACCESS_NONE;
	if (!za.allowed && za.message[0]) {
		finish(s, 1, "ERROR: %s\n", za.message);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s", s->user.name, s->fingerprint, c->name,
			 "authz");
		return -1;
	}
	return 0;
}

/* Whether the user may run the command on the app, which is read into
 * c->app. Returns 0, or ends the channel with why. */
static int command_authorize(struct sess *s, struct command *c)
{
	enum access have = ACCESS_NONE;

	c->need = c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? ACCESS_WRITE : ACCESS_READ;
	if (gate_authz) {
		if (command_authorize_external(s, c, &have))
			return -1;
	} else {
		have = !sess_db(s) || db_app_get(s->db, c->name, &c->app) ? ACCESS_NONE
								     : db_access_get(s->db, c->name, &s->user);
	}
	if (have < c->need) {
		/* Unknown app and no access look the same: nothing tells a
		 * stranger whether a private app exists. */
		if (have == ACCESS_READ)
			finish(s, 1, "ERROR: You can fetch %s but not push to it: ask its owner for write access.\n",
			       c->name);
		else
			finish(s, 1, "ERROR: Repository not found: %s. Check the name, or ask its owner for access.\n",
			       c->name);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s", s->user.name, s->fingerprint, c->name,
			 "access");
		if (c->need == ACCESS_WRITE)
			metrics_refusal(RR_ACCESS);
		return -1;
	}
	return 0;
}

/* The push's size limit is git's own (receive.maxInputSize): a larger
 * pack is refused as it arrives, nothing of it is kept, and the pusher
 * sees git's "[remote rejected] (unpacker error)". */
static void command_push_limit(struct sess *s, struct command *c)
{
	if (c->cmd.service != GIT_SERVICE_RECEIVE_PACK)
		return;
	c->max_push = (uint64_t)(c->app.max_push_mb ? c->app.max_push_mb : s->cfg->max_push_mb) << 20;
	c->ph_buf = xmalloc(PKT_MAX);
	push_head_init(&c->ph, c->ph_buf);
	c->ph.max_head = (uint64_t)s->cfg->max_ref_list;
	s->push_head = &c->ph;
}

/* The git service behind the command: a local git on the legacy route, the
 * cluster's SSHService on the other. Returns 0, or an error. */
static int command_start_backend(struct sess *s, struct command *c)
{
	Grove__V1__HookPayload payload = GROVE__V1__HOOK_PAYLOAD__INIT;
	payload.app = c->name;
	payload.user = s->user.name;
	payload.key_fingerprint = s->fingerprint;
	payload.correlation_id = c->corr;
	payload.hook_address = s->cfg->hook_listen;
	const char *service = c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? "receive-pack" :
			      c->cmd.service == GIT_SERVICE_UPLOAD_ARCHIVE ? "upload-archive" : "upload-pack";
	if (c->app.route == ROUTE_LEGACY) {
		Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
		char dir[4096];
		repo.storage_name = "legacy";
		repo.relative_path = c->rel;
		snprintf(dir, sizeof(dir), "%s/%s", s->cfg->legacy_dir, c->rel);
		c->env = hook_env_build(&payload, &repo, s->cfg->hook_listen, s->cfg->secret,
					"pre-receive,post-receive,", s->git_protocol);
		return backend_start_local(&c->b, service, dir, c->need == ACCESS_WRITE ? s->cfg->hooks_dir : NULL,
					   gitcmd_fsck_ignore_ids(&s->cfg->fsck_ignore), c->env, c->max_push);
	}
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	Grove__V1__SSHRequest first = GROVE__V1__SSHREQUEST__INIT;
	char method[64];
	repo.storage_name = s->cfg->cluster_storage;
	repo.relative_path = c->rel;
	first.repository = &repo;
	first.git_protocol = s->git_protocol;
	if (c->need == ACCESS_WRITE)
		first.hook_payload = &payload;
	first.max_input_size = c->max_push;
	snprintf(method, sizeof(method), "/grove.v1.SSHService/SSH%s",
		 c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? "ReceivePack" :
		 c->cmd.service == GIT_SERVICE_UPLOAD_ARCHIVE ? "UploadArchive" : "UploadPack");
	return backend_start_grpc(&c->b, s->cfg->cluster_address, s->cfg->secret, method, &first);
}

/* git's own words ("pack exceeds maximum allowed size") do not say whose
 * limit it is or what to do. receive-pack exits 0 either way, so the
 * sign is the size of the pack: git refused it once it had read more
 * than max_push of it, all of which came through here. */
static void command_push_too_large(struct sess *s, struct command *c)
{
	if (c->max_push && c->ph.done && s->bytes_in - c->ph.hdr_len > c->max_push && !s->dead) {
		say(s, "ERROR: This push sent %.1f MiB; %s accepts at most %llu MiB: git refused the pack and nothing "
		    "of it was kept. Remove large files from the history (or keep them out of git), or ask the "
		    "platform to raise the app's max_push_mb.\n",
		    (double)s->bytes_in / (1 << 20), c->name, (unsigned long long)(c->max_push >> 20));
		log_info("gate.push_too_large", "user=%s app=%s bytes_in=%llu max_push_mb=%llu", s->user.name, c->name,
			 (unsigned long long)s->bytes_in, (unsigned long long)(c->max_push >> 20));
		c->result = "refused";
		metrics_refusal(RR_TOO_LARGE);
	}
}

/* A push whose ref list (and push options) outgrew gate.maxRefListSize:
 * ended before git took it whole; say what to do instead. */
static void command_ref_list_too_big(struct sess *s, struct command *c)
{
	if (!s->head_refused || s->dead)
		return;
	say(s, "ERROR: This push updates more refs at once than %s takes (its list of refs is over %lld KiB): nothing "
	       "was pushed. Push them in batches, for example git push origin 'refs/tags/v1.*'.\n",
	    c->name, (long long)s->cfg->max_ref_list / 1024);
	log_info("gate.push_ref_list_too_big", "user=%s app=%s max=%lld", s->user.name, c->name,
		 (long long)s->cfg->max_ref_list);
	c->result = "refused";
	metrics_refusal(RR_TOO_LARGE);
}

/*
 * A command that could not start: "no code yet" is said as it is; anything
 * else (a store's address, a path, gRPC's words) goes to the log, and the
 * user gets what happened in their words with the correlation id.
 */
static void command_fail(struct sess *s, const struct command *c, int err, const char *what)
{
	if (err == GROVE_ENOTFOUND) {
		finish(s, 1, "ERROR: %s.\n", error_msg());
		return;
	}
	log_warn("gate.command_failed", "user=%s app=%s error=%s", s->user.name, c->name, error_msg());
	finish(s, 1, "ERROR: %s: %s. Try again in a minute; if it keeps failing, give the platform's operators this id: "
		     "%s.\n", c->name, what, c->corr);
}

/* git's own words for a ref that another push moved meanwhile ("cannot lock
 * ref …: is at X but expected Y") are true but cryptic: say what it means. */
static void command_lost_race(struct sess *s, struct command *c)
{
	if (!s->lost_race || s->dead)
		return;
	say(s, "ERROR: Another push to %s was in progress and updated a branch this push updates first: that branch "
	       "was not changed by this push. Fetch, merge or rebase, and push again.\n", c->name);
	metrics_refusal(RR_LOST_RACE);
	log_info("gate.push_lost_race", "user=%s app=%s", s->user.name, c->name);
}

/* After a push on the legacy route: a HEAD naming no branch moves to one
 * that exists (lib/repohead.h), as a store does on the cluster route. */
static void command_settle_head(struct sess *s, const struct command *c)
{
	char dir[4096], chosen[1024];
	int moved;
	snprintf(dir, sizeof(dir), "%s/%s", s->cfg->legacy_dir, c->rel);
	if (repo_head_settle(dir, chosen, sizeof(chosen), &moved))
		log_warn("gate.head_failed", "app=%s error=%s", c->name, error_msg());
	else if (moved)
		log_info("gate.head_set", "app=%s head=%s", c->name, chosen);
}

/* A push over its user's gate.pushesPerMinute: refused with when to come back. */
static bool command_rate_limited(struct sess *s, const struct command *c)
{
	int wait_s = ratelimit_take(gate_ratelimit, s->user.name, s->cfg->pushes_per_minute, now_ms());
	if (!wait_s)
		return false;
	finish(s, 1, "ERROR: %s has pushed %d times in the last minute, the most this platform takes: push again in %d s.\n",
	       s->user.name, s->cfg->pushes_per_minute, wait_s);
	log_info("gate.refused", "user=%s app=%s what=%s wait_s=%d", s->user.name, c->name, "rate", wait_s);
	metrics_refusal(RR_RATE);
	return true;
}

/* The finished command in the metrics: by service and result, and its bytes. */
static void command_count(const struct sess *s, const struct command *c)
{
	if (!gate_metrics)
		return;
	enum metrics_service ms = c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? MS_RECEIVE_PACK :
				  c->cmd.service == GIT_SERVICE_UPLOAD_PACK ? MS_UPLOAD_PACK :
				  c->cmd.service == GIT_SERVICE_UPLOAD_ARCHIVE ? MS_UPLOAD_ARCHIVE : MS_NONE;
	enum metrics_result mr = !strcmp(c->result, "ok")	    ? MR_OK
				 : !strcmp(c->result, "rejected") ? MR_REJECTED
				 : !strcmp(c->result, "failed")   ? MR_FAILED
								  : MR_REFUSED;
	atomic_fetch_add(&gate_metrics->sessions[ms][mr], 1);
	if (ms == MS_RECEIVE_PACK) {
		atomic_fetch_add(&gate_metrics->bytes_pushed, s->bytes_in);
		if (mr != MR_REFUSED)
			metrics_observe(&gate_metrics->push_seconds, now_ms() - c->start);
	} else {
		atomic_fetch_add(&gate_metrics->bytes_fetched, s->bytes_out);
	}
}

static void run_command(struct sess *s, ssh_event ev)
{
	struct command c = { .result = "refused", .code = 1, .start = now_ms() };
	int ret;

	log_new_correlation_id(c.corr);
	log_set_correlation_id(c.corr);
	if (command_parse(s, &c) || command_authorize(s, &c))
		goto out;
	if (c.need == ACCESS_WRITE && command_rate_limited(s, &c))
		goto out;
	if (c.need == ACCESS_WRITE && take_push_lock(s, &c.app, c.name)) {
		finish(s, 1, "ERROR: %s is locked (maintenance or migration) and stayed locked for %ds: push again later.\n",
		       c.name, s->cfg->lock_wait);
		log_info("gate.refused", "user=%s app=%s what=%s", s->user.name, c.name, "locked");
		metrics_refusal(RR_LOCKED);
		goto out;
	}
	if (take_op_slot(s, c.name)) {
		finish(s, 1, "ERROR: %s had %d git operations running and none ended within %ds: try again in a minute.\n",
		       c.name, s->cfg->max_ops_per_app, s->cfg->ops_queue_wait);
		log_info("gate.refused", "user=%s app=%s what=%s", s->user.name, c.name, "busy");
		metrics_refusal(RR_BUSY);
		goto out;
	}
	snprintf(c.rel, sizeof(c.rel), "%s.git", c.name);
	if ((ret = ensure_repo(s, &c.app, c.rel, c.need == ACCESS_WRITE))) {
		command_fail(s, &c, ret, "its repository cannot be reached right now");
		goto out;
	}
	command_push_limit(s, &c);
	if ((ret = command_start_backend(s, &c))) {
		command_fail(s, &c, ret, "git could not be started for it");
		goto out;
	}
	s->watch_race = c.cmd.service == GIT_SERVICE_RECEIVE_PACK;
	if (gate_metrics)
		atomic_fetch_add(&gate_metrics->sessions_in_flight, 1);
	c.code = pump(s, ev, c.b);
	if (gate_metrics)
		atomic_fetch_sub(&gate_metrics->sessions_in_flight, 1);
	c.result = c.code != 0 ? "failed" : s->rejected ? "rejected" : "ok";
	command_push_too_large(s, &c);
	command_ref_list_too_big(s, &c);
	command_lost_race(s, &c);
	if (c.code == 0 && c.cmd.service == GIT_SERVICE_RECEIVE_PACK && c.app.route == ROUTE_LEGACY)
		command_settle_head(s, &c);
	if (!s->dead && (!s->client_closed || c.code == 0)) {
		ssh_channel_request_send_exit_status(s->chan, c.code);
		ssh_channel_send_eof(s->chan);
		ssh_channel_close(s->chan);
	}
out:
	command_count(s, &c);
	/* send_ahead: the pacer's last limit (0: output not paced), with its
	 * smallest round trip and how often it grew on a stall. */
	log_info("gate.session", "user=%s fingerprint=%s app=%s command=%s route=%s result=%s exit=%d bytes_in=%llu bytes_out=%llu ms=%lld peer=%s send_ahead=%llu min_rtt_us=%lld pace_stalls=%u",
		 s->user.name, s->fingerprint, c.name, git_service_name(c.cmd.service), route_name(c.app.route),
		 c.result, c.code, (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
		 (long long)(now_ms() - c.start), s->peer, (unsigned long long)s->pace.limit,
		 (long long)s->pace.min_rtt, s->pace.stalls);
	if (c.b)
		c.b->free(c.b);
	proc_env_free(c.env);
	app_release(&c.app);
	s->push_head = NULL;
	free(c.ph_buf);
}

/*
 * From a load balancer of gate.proxyProtocolFrom, the connection must open
 * with a PROXY header: the client it names becomes the session's peer. From
 * anyone else nothing changes (and a header would simply fail the SSH
 * handshake). Returns non-zero when the connection is to be dropped.
 */
static int proxy_header(const struct gate_config *cfg, int fd, struct sess *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct proxy_addr pa;
	char balancer[sizeof(s->peer)];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) ||
	    !cidr_match_any(cfg->proxy_from, cfg->nproxy_from, (struct sockaddr *)&ss))
		return 0;
	if (proxy_read(fd, cfg->login_grace * 1000, &pa)) {
		log_warn("gate.proxy_refused", "peer=%s reason=%s", s->peer, error_msg());
		return 1;
	}
	if (pa.local)
		return 0;
	strlcpy_(balancer, s->peer, sizeof(balancer));
	snprintf(s->peer, sizeof(s->peer), strchr(pa.ip, ':') ? "[%s]:%u" : "%s:%u", pa.ip, pa.port);
	log_info("gate.proxied", "peer=%s balancer=%s", s->peer, balancer);
	return 0;
}

int session_run(const struct gate_config *cfg, struct ssh_bind_struct *bind, int fd, const char *peer, int auth_fd)
{
	struct sess s = { .cfg = cfg, .auth_fd = auth_fd, .push_lock = -1, .op_slot = -1 };
	struct ssh_server_callbacks_struct cb = { 0 };
	ssh_event ev = NULL;
	int ret = 1;
	int64_t deadline;

	strlcpy_(s.peer, peer, sizeof(s.peer));
	s.inbuf = xmalloc(IN_BUF_MAX);
	s.ssh = ssh_new();
	/* A client that has not authenticated within the grace time is cut off
	 * by the kernel, whatever state libssh is in. */
	alarm((unsigned)cfg->login_grace);
	if (cfg->nproxy_from && proxy_header(cfg, fd, &s))
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
	ev = ssh_event_new();
	ssh_event_add_session(ev, s.ssh);
	while (!s.authed) {
		if (ssh_event_dopoll(ev, 1000) == SSH_ERROR || !ssh_is_connected(s.ssh))
			goto out;
	}
	alarm(0);
	/* Tell the acceptor this connection no longer counts as unauthenticated. */
	if (auth_fd >= 0) {
		pid_t me = getpid();
		if (write(auth_fd, &me, sizeof(me)) < 0) {
			/* the acceptor is gone: nothing to tell */
		}
		close(auth_fd);
		s.auth_fd = -1;
	}
	/* The channel and its request should follow at once. */
	deadline = now_ms() + (int64_t)cfg->login_grace * 1000;
	while (!(s.chan && (s.command || s.shell))) {
		if (ssh_event_dopoll(ev, 200) == SSH_ERROR || !ssh_is_connected(s.ssh) || now_ms() > deadline)
			goto out;
		if (s.chan && s.client_closed)
			goto out;
	}
	if (recheck_identity(&s) == 0) {
		if (s.shell)
			greet(&s);
		else
			run_command(&s, ev);
	}
	/* Let the client read our close and hang up first: closing the socket
	 * under it would lose the exit status. */
	if (!s.dead) {
		ssh_blocking_flush(s.ssh, 2000);
		for (int i = 0; i < 100 && ssh_is_connected(s.ssh); i++)
			if (ssh_event_dopoll(ev, 20) == SSH_ERROR)
				break;
	}
	ret = 0;
out:
	if (!s.authed && s.auth_tries > 0) {
		log_info("gate.auth_failed", "peer=%s fingerprint=%s reason=%s", s.peer, s.fingerprint, "unknown key");
		if (gate_metrics)
			atomic_fetch_add(&gate_metrics->auth_failures, 1);
	}
	if (ev)
		ssh_event_free(ev);
	if (s.ssh) {
		ssh_disconnect(s.ssh);
		ssh_free(s.ssh);
	}
	if (s.push_lock >= 0)
		close(s.push_lock);
	if (s.op_slot >= 0)
		close(s.op_slot);
	user_release(&s.user);
	free(s.command);
	free(s.inbuf);
	db_close(s.db);
	return ret;
}
