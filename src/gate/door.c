/*
 * What every door does the same way around a command: see door.h. The
 * command itself is in command.c.
 */
#include "gate/door.h"
#include "gate/authz.h"
#include "gate/metrics.h"
#include "gate/opslots.h"
#include "lib/auth.h"
#include "gate/gate.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/pktline.h"
#include "lib/proxyproto.h"
#include "lib/strbuf.h"

#include <ctype.h>
#include <sys/socket.h>

void door_init(struct door *d, const struct door_ops *ops, const struct gate_config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->cfg = cfg;
	d->push_lock = -1;
	d->op_slot = -1;
	d->user_slot = -1;
	d->own_conn = (struct conn_slot)CONN_SLOT_INIT;
	d->conn = &d->own_conn;
}

void conn_slot_release(struct conn_slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	*s = (struct conn_slot)CONN_SLOT_INIT;
}

void door_release(struct door *d)
{
	if (d->push_lock >= 0)
		close(d->push_lock);
	if (d->op_slot >= 0)
		close(d->op_slot);
	if (d->user_slot >= 0)
		close(d->user_slot);
	d->push_lock = d->op_slot = d->user_slot = -1;
	conn_slot_release(&d->own_conn);
	user_release(&d->user);
	FREE_AND_NULL(d->command);
	db_close(d->db);
	d->db = NULL;
}

/* The database, opened at its first use (a key to look up): a connection
 * that never offers one costs no database work (NULL: it cannot be opened,
 * logged). */
struct db *door_db(struct door *d)
{
	if (!d->db && db_attach(&d->db, d->cfg->db_path))
		log_error("gate.db", "error=%s", error_msg());
	return d->db;
}

/*
 * The connection counts against its user's gate.maxConnectionsPerUser from
 * its first command until it closes (conn_slot in door.h): many addresses'
 * worth of connections, kept alive and idle, hold that share of the gate
 * and no more. No wait: a wait would hold one more connection.
 */
int door_hold_conn_slot(struct door *d)
{
	char dir[4096], key[65];
	struct conn_slot *s = d->conn;
	int fd;

	auth_sha256_hex(d->user.name, strlen(d->user.name), key);
	if (s->fd >= 0 && !strcmp(s->user, key))
		return 0;
	conn_slot_release(s);   /* a connection kept alive for another user */
	snprintf(dir, sizeof(dir), "%s/locks/connections", d->cfg->data_dir);
	fd = op_slot_try(dir, key, d->cfg->max_conns_per_user);
	if (fd == -1)
		log_warn("gate.op_slot_failed", "key=%s error=%s", key, error_msg());
	if (fd < 0) {
		/* Again once one of theirs closed: an idle one goes within gate.httpKeepAlive. */
		d->refusal = DR_BUSY;
		d->retry_after = d->cfg->http_keepalive;
		door_finish(d, 1, "ERROR: %s has %d connections open to this gate, the most one user may: close some "
			    "(idle keep-alive connections of an HTTP client or a CI's pool, SSH ControlMaster "
			    "connections), then try again.\n", d->user.name, d->cfg->max_conns_per_user);
		log_info("gate.refused", "user=%s what=%s", d->user.name, "user connections");
		metrics_refusal(RR_USER_CONNS);
		return -1;
	}
	s->fd = fd;
	strlcpy_(s->user, key, sizeof(s->user));
	return 0;
}

/* GIT_PROTOCOL as a client sent it: taken only when it is what git sends
 * ("version=1" or "version=2"); anything else is the default protocol. */
bool door_take_git_protocol(struct door *d, const char *value)
{
	if (!value || (strcmp(value, "version=1") && strcmp(value, "version=2")))
		return false;
	strlcpy_(d->git_protocol, value, sizeof(d->git_protocol));
	return true;
}

/*
 * With auth.url, the platform says who a verified key is. When it cannot be
 * asked, the key is let in with no identity and every command asks again:
 * the user then reads why nothing works, instead of a bare refusal.
 * Returns 0 (d->user set), or -1 with the platform's words in why.
 */
int door_login_external(struct door *d, const char *fp, char *why, size_t why_size)
{
	struct authz_answer a;

	strlcpy_(d->fingerprint, fp, sizeof(d->fingerprint));
	if (authz_check(gate_authz, fp, "login", NULL, &a)) {
		d->authz_pending = true;
	} else if (!a.allowed) {
		log_info("gate.auth_refused", "peer=%s fingerprint=%s message=%s", d->peer, fp, a.message);
		strlcpy_(why, a.message[0] ? a.message : "This key is not allowed in.", why_size);
		return -1;
	}
	user_release(&d->user);
	d->user.name = xstrdup(d->authz_pending ? "-" : a.user);
	d->user.admin = false;
	return 0;
}

/*
 * From a load balancer of gate.proxyProtocolFrom, the connection must open
 * with a PROXY header: the client it names becomes the peer. From anyone
 * else nothing changes (and a header would simply fail the handshake that
 * follows, SSH's or TLS's). Returns non-zero when the connection is to be
 * dropped.
 */
int door_proxy_header(const struct gate_config *cfg, int fd, char *peer, size_t peer_size)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct proxy_addr pa;
	char balancer[64];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) ||
	    !cidr_match_any(cfg->proxy_from, cfg->nproxy_from, (struct sockaddr *)&ss))
		return 0;
	if (proxy_read(fd, cfg->login_grace * 1000, &pa)) {
		log_warn("gate.proxy_refused", "peer=%s reason=%s", peer, error_msg());
		return 1;
	}
	if (pa.local)
		return 0;
	strlcpy_(balancer, peer, sizeof(balancer));
	snprintf(peer, peer_size, strchr(pa.ip, ':') ? "[%s]:%u" : "%s:%u", pa.ip, pa.port);
	log_info("gate.proxied", "peer=%s balancer=%s", peer, balancer);
	return 0;
}

void door_tell_authed(int *auth_fd)
{
	pid_t me = getpid();
	if (*auth_fd < 0)
		return;
	if (write(*auth_fd, &me, sizeof(me)) < 0) {
		/* the acceptor is gone: nothing to tell */
	}
	close(*auth_fd);
	*auth_fd = -1;
}

/* Counts what the client sent; a push's first bytes also say where its pack starts. */
void door_took_input(struct door *d, const void *data, size_t n)
{
	d->bytes_in += n;
	if (d->push_head)
		push_head_feed(d->push_head, data, n);
}

static void door_vsay(struct door *d, const char *fmt, va_list ap)
{
	char msg[2048];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n > 0 && !d->dead)
		d->ops->say(d, msg, (size_t)MIN(n, (int)sizeof(msg) - 1));
}

void door_say(struct door *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	door_vsay(d, fmt, ap);
	va_end(ap);
}

void door_finish(struct door *d, int status, const char *fmt, ...)
{
	va_list ap;
	if (fmt) {
		va_start(ap, fmt);
		door_vsay(d, fmt, ap);
		va_end(ap);
	}
	d->ops->finish(d, status);
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
int door_recheck_identity(struct door *d)
{
	struct user u = { 0 };
	int ret;

	if (gate_authz)
		return 0;
	ret = door_db(d) ? db_user_by_key(d->db, d->fingerprint, &u) : GROVE_EUNAVAIL;
	if (ret == 0 && u.id != d->user.id)
		ret = GROVE_ENOTFOUND;
	if (ret) {
		log_info("gate.refused", "user=%s fingerprint=%s what=%s reason=%s", d->user.name, d->fingerprint,
			 ret == GROVE_ENOTFOUND ? "revoked key" : "key lookup", error_msg());
		if (ret == GROVE_ENOTFOUND)
			door_finish(d, 1, "ERROR: This key (%s) was removed after the connection authenticated: connect again with a key that is registered.\n",
			       d->fingerprint);
		else
			door_finish(d, 1, "ERROR: Your key could not be checked (the gate's database did not answer): try again in a moment.\n");
		user_release(&u);
		return ret;
	}
	user_release(&d->user);
	d->user = u;
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

void door_greet(struct door *d)
{
	struct strbuf sb;
	if (d->authz_pending) {
		door_finish(d, 1, "ERROR: Grove cannot tell who you are right now: the authorization service is unavailable. "
			     "Try again in a minute.\n");
		return;
	}
	strbuf_init(&sb, 64 * 1024);
	strbuf_addf(&sb, "Hi %s! You've successfully authenticated, but Grove does not provide shell access.\n",
		    d->user.name);
	if (gate_authz) {
		/* The platform knows which apps are theirs; the gate does not. */
	} else if (d->user.admin) {
		strbuf_addstr(&sb, "You are an administrator: you can push to every app.\n");
	} else {
		struct strbuf apps = STRBUF_INIT;
		if (door_db(d))
			db_writable_apps_each(d->db, d->user.name, collect_names, &apps);
		if (apps.len)
			strbuf_addf(&sb, "You can push to: %s\n", apps.buf);
		else
			strbuf_addstr(&sb, "You cannot push to any app yet: ask an administrator for access.\n");
		strbuf_release(&apps);
	}
	d->ops->write_out(d, sb.buf, sb.len);
	strbuf_release(&sb);
	door_finish(d, 1, NULL);
}


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
static void watch_lost_race(struct door *d, const uint8_t *data, size_t n)
{
	char edge[2 * sizeof(d->race_tail)];
	size_t k = MIN((size_t)n, sizeof(d->race_tail));

	memcpy(edge, d->race_tail, d->race_tail_len);
	memcpy(edge + d->race_tail_len, data, k);
	if (memmem(edge, d->race_tail_len + k, LOST_RACE, strlen(LOST_RACE)) ||
	    memmem(data, n, LOST_RACE, strlen(LOST_RACE)))
		d->lost_race = true;
	if (has_ng(edge, d->race_tail_len + k) || has_ng((const char *)data, n))
		d->rejected = true;
	/* The last bytes seen, for a match that a chunk boundary splits. */
	if (n >= sizeof(d->race_tail)) {
		memcpy(d->race_tail, data + n - sizeof(d->race_tail), sizeof(d->race_tail));
		d->race_tail_len = sizeof(d->race_tail);
	} else {
		size_t keep = MIN(d->race_tail_len, sizeof(d->race_tail) - n);
		memmove(d->race_tail, d->race_tail + d->race_tail_len - keep, keep);
		memcpy(d->race_tail + keep, data, n);
		d->race_tail_len = keep + n;
	}
}


void door_took_output(struct door *d, const void *data, size_t n)
{
	if (d->watch_race && (!d->lost_race || !d->rejected))
		watch_lost_race(d, data, n);
	d->bytes_out += n;
}
