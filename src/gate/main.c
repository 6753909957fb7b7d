/*
 * `grove gate`: configuration, host keys, the api process, and the accept
 * loop that forks one process per SSH connection (see gate.h for why).
 */
#include "gate/gate.h"
#include "gate/refpolicy.h"
#include "gate/ratelimit.h"
#include "gate/authz.h"
#include "gate/db.h"
#include "gate/metrics.h"
#include "gate/httpconn.h"
#include "cli/opt.h"
#include "lib/version.h"
#include "lib/auth.h"
#include "lib/config.h"
#include "lib/proxyproto.h"
#include "lib/daemon.h"
#include "lib/error.h"
#include "lib/gitcmd.h"
#include "lib/hookpayload.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum { OPT_INIT = CLI_OPT_LONG, OPT_LISTEN, OPT_STORE, OPT_STORAGE, OPT_CHECK };

static const struct cli_option gate_options[] = {
	{ "config", 'c', "FILE", "run the gate this configuration describes" },
	{ "check-config", OPT_CHECK, NULL, "with -c: read the configuration and the files it names, say what is wrong, run nothing" },
	{ "init", OPT_INIT, "DIR", "write DIR/gate.conf, a secret and an admin token (if missing); print the path" },
	{ "listen", OPT_LISTEN, "ADDR", "with --init: the SSH address (default: 127.0.0.1:2222)" },
	{ "store", OPT_STORE, "ADDR", "with --init: the gRPC address of the store or cluster" },
	{ "storage", OPT_STORAGE, "NAME", "with --init: the storage name there (default: default)" },
	{ NULL },
};

const struct cli_command gate_command = {
	"gate", "-c FILE [--check-config]\n--init DIR [--listen ADDR] [--store ADDR] [--storage NAME]",
	"Runs the SSH front door: keys, apps, access, routing, push policy, deploys.",
	gate_options,
	"Config (git-config syntax):\n"
	"  [gate]\n"
	"    listen = 127.0.0.1:2222         SSH address\n"
	"    hookListen = 127.0.0.1:2223     gRPC HookService the stores call back\n"
	"    maxConnectionsPerAddress = 50   SSH connections at once from one client address\n"
	"    maxOpsPerApp = 32               git commands at once on one app; more wait\n"
	"    maxOpsPerUser = 64              git commands at once of one user; more wait\n"
	"    maxConnectionsPerUser = 100     connections at once of one user, from their first\n"
	"                                    command until they close (HTTP keep-alive too)\n"
	"    httpListen = …                  git over HTTP(S) with access tokens (docs/http.md)\n"
	"    httpTlsCert, httpTlsKey = …     its certificate chain and key (PEM): HTTPS\n"
	"    opsQueueWait = 30               seconds one waits for a slot before it is refused\n"
	"    pushesPerMinute = 0             pushes one user may make per minute (0: no limit)\n"
	"    maxRefListSize = 4m             bytes of a push's list of refs (and push options)\n"
	"    adminListen = 127.0.0.1:8080    admin HTTP API\n"
	"    publicListen = …                /health, /ready, /metrics, archives, without the API\n"
	"    adminMaxConnections = 128       admin HTTP connections at once\n"
	"    adminMaxPerAddress = 16         of them from one client address\n"
	"    adminTimeout = 15               seconds an admin connection may send nothing\n"
	"    adminRequestTimeout = 30        seconds to send a whole admin request (headers, body)\n"
	"    adminTokenFile = admin-token    bearer token of the admin API\n"
	"    secretFile = secret             shared secret of all Grove parts\n"
	"    database = gate.db              SQLite file, or postgres://… shared by several gates\n"
	"    deployBranch = main             default deploy branch of new apps\n"
	"    otherBranches = true            accept pushes to other branches\n"
	"    refNamespaces = " REFPOLICY_DEFAULT "\n"
	"                                    where else a push may put refs (tags, notes…)\n"
	"    paceOutput = true               send a clone's output only as far ahead of the\n"
	"                                    client as it keeps up (from 256 KiB, growing on\n"
	"                                    long links), not its whole window; false: the\n"
	"                                    window alone\n"
	"    canaryPercent = 0               share of new apps on the cluster route\n"
	"    loginGraceTime = 30             seconds to authenticate\n"
	"    maxStartups = 100               unauthenticated connections at once; or\n"
	"                                    START:RATE:FULL as sshd: from START, RATE % of\n"
	"                                    new ones dropped at random, rising to all at FULL\n"
	"    maxConnections = 1000           connections at once\n"
	"    idleTimeout = 600               seconds without traffic\n"
	"    shutdownGrace = 60              seconds SIGTERM waits for sessions\n"
	"    lockWait = 60                   seconds a push waits for a locked app\n"
	"    keepalive = 15                  seconds of silence from a client before TCP\n"
	"                                    keepalive probes, one per interval; 0: off\n"
	"    keepaliveCount = 4              unanswered probes (or seconds x this of unacked\n"
	"                                    data) after which the connection is dead\n"
	"    clientAliveInterval = 30        seconds of silence from a client's SSH before\n"
	"                                    a keepalive@openssh.com request it must answer;\n"
	"                                    reaches clients behind a load balancer, where\n"
	"                                    TCP probes stop at the balancer; 0: off\n"
	"    clientAliveCountMax = 3         unanswered requests after which the session ends\n"
	"    maxPushSize = 2048              MiB: the largest pack a push may send (git's\n"
	"                                    receive.maxInputSize), unless the app sets its\n"
	"                                    own max_push_mb; 0: no limit\n"
	"    proxyProtocolFrom = 10.0.0.0/8  repeatable: load balancers that send a PROXY\n"
	"                                    header (v1 or v2); from them it is required\n"
	"  [auth]\n"
	"    url = https://…/internal/allowed  the platform decides who a key is and what it may\n"
	"                                    do (POST {fingerprint, action, app}); unset: the\n"
	"                                    gate's own users, keys and collaborators\n"
	"    tokenFile = FILE                bearer token sent to it\n"
	"    timeout = 5                     seconds per request\n"
	"    cacheTtl = 30                   seconds an answer is reused (refusals: 5 at most)\n"
	"    cacheEntries = 4096             answers kept\n"
	"  [route]\n"
	"    legacyDir = legacy              bare repositories <app>.git (an NFS mount…)\n"
	"    cluster = 127.0.0.1:8075        a store's or cluster's gRPC address\n"
	"    storage = default               the storage name there\n"
	RPC_TLS_CONFIG_HELP
	"  [openssh]                         behind the system's sshd (docs/openssh.md)\n"
	"    user = git                      the account whose logins are Grove's\n"
	"    logFile = openssh.log           where grove shell and grove authorized-keys log\n"
	"  [housekeeping]\n"
	"    interval = 86400                seconds between passes that optimize every app's\n"
	"                                    repository (grove app gc, one app at a time); 0: off\n"
	"  [deploy]\n"
	"    command = /path/to/deploy       run when an app's deploy branch moves\n"
	"    webhook = https://…/deploys     or: POST the deployment to this URL (JSON) and\n"
	"                                    stream the response body to the pusher\n"
	"    webhookTimeout = 3600           seconds a webhook deployment may take\n"
	"    webhookSecretFile = FILE        sign webhook bodies: X-Grove-Signature: sha256=HMAC\n"
	"    keepalive = 30                  seconds between keep-alive lines\n"
	"    archiveUrl = http://host:8080   where builders reach adminListen (default: it)\n"
	"    archiveTtl = 900                seconds a deployment's archive URL is valid\n",
	false,
};

/* gate_config_load's state: the config being read, and what is read on the
 * way to the gate_config (files to load secrets from, the log level). */
struct config_load {
	struct gate_config *c;
	struct config *cfg;
	const char *path;
	char *secret_file, *token_file, *level, *webhook_secret_file, *auth_token_file, *fsck_ignore, *ref_namespaces;
};

/* The settings that are strings, file names and flags. */
static int gate_config_read_strings(struct config_load *l)
{
	struct gate_config *c = l->c;
	struct config *cfg = l->cfg;
	int ret;

	if ((ret = config_get_path(cfg, "gate.dataDir", ".", &c->data_dir)) ||
	    (ret = config_get_str(cfg, "gate.listen", "127.0.0.1:2222", &c->listen)) ||
	    (ret = config_get_str(cfg, "gate.hookListen", "127.0.0.1:2223", &c->hook_listen)) ||
	    (ret = config_get_str(cfg, "gate.adminListen", "127.0.0.1:8080", &c->admin_listen)) ||
	    (ret = config_get_str(cfg, "gate.publicListen", NULL, &c->public_listen)) ||
	    (ret = config_get_str(cfg, "gate.httpListen", NULL, &c->http_listen)) ||
	    (ret = config_get_path(cfg, "gate.httpTlsCert", NULL, &c->http_tls_cert)) ||
	    (ret = config_get_path(cfg, "gate.httpTlsKey", NULL, &c->http_tls_key)) ||
	    (ret = config_get_path(cfg, "gate.adminTokenFile", "admin-token", &l->token_file)) ||
	    (ret = config_get_path(cfg, "gate.secretFile", "secret", &l->secret_file)) ||
	    (ret = config_get_str(cfg, "gate.database", "gate.db", &c->db_path)) ||
	    (ret = config_get_str(cfg, "gate.deployBranch", "main", &c->deploy_branch)) ||
	    (ret = config_get_bool(cfg, "gate.otherBranches", true, &c->other_branches)) ||
	    (ret = config_get_bool(cfg, "gate.paceOutput", true, &c->pace_output)) ||
	    (ret = config_get_path(cfg, "route.legacyDir", "legacy", &c->legacy_dir)) ||
	    (ret = config_get_str(cfg, "route.cluster", NULL, &c->cluster_address)) ||
	    (ret = config_get_str(cfg, "route.storage", "default", &c->cluster_storage)) ||
	    (ret = config_get_path(cfg, "deploy.command", NULL, &c->deploy_command)) ||
	    (ret = config_get_str(cfg, "deploy.webhook", NULL, &c->deploy_webhook)) ||
	    (ret = config_get_str(cfg, "deploy.archiveUrl", NULL, &c->archive_base)) ||
	    (ret = config_get_path(cfg, "deploy.webhookSecretFile", NULL, &l->webhook_secret_file)) ||
	    (ret = config_get_str(cfg, "auth.url", NULL, &c->auth_url)) ||
	    (ret = config_get_path(cfg, "auth.tokenFile", NULL, &l->auth_token_file)) ||
	    (ret = config_get_str(cfg, "log.level", "info", &l->level)) ||
	    (ret = config_get_str(cfg, "openssh.user", "git", &c->openssh_user)) ||
	    (ret = config_get_path(cfg, "openssh.logFile", "openssh.log", &c->openssh_log)) ||
	    (ret = config_get_str(cfg, "gate.fsckIgnore", GITCMD_FSCK_IGNORE, &l->fsck_ignore)) ||
	    (ret = config_get_str(cfg, "gate.refNamespaces", REFPOLICY_DEFAULT, &l->ref_namespaces)))
		return ret;
	if ((ret = gitcmd_fsck_ignore_parse(l->fsck_ignore, &c->fsck_ignore)))
		return error_wrap(ret, "%s: gate.fsckIgnore", l->path);
	if ((ret = refpolicy_parse(l->ref_namespaces, &c->ref_namespaces)))
		return error_wrap(ret, "%s: gate.refNamespaces", l->path);
	return 0;
}

/* The settings that are numbers, each within its bounds. */
/*
 * gate.maxStartups: N (unauthenticated connections at once; more are
 * closed), or START:RATE:FULL as sshd's MaxStartups: from START on, RATE %
 * of new connections are dropped at random, rising linearly to all at
 * FULL, so that a flood cannot fill the slots while clients that keep
 * trying still get in.
 */
static int gate_config_read_startups(struct config_load *l)
{
	struct gate_config *c = l->c;
	char *v = NULL, tail;
	int b, r, f, n, ret = 0;

	if ((ret = config_get_str(l->cfg, "gate.maxStartups", "100", &v)))
		return ret;
	n = sscanf(v, "%d:%d:%d%c", &b, &r, &f, &tail);
	if (n == 1 && sscanf(v, "%d%c", &f, &tail) == 1) {
		b = f;
		r = 100;
	} else if (n != 3) {
		f = -1;
	}
	if (f < 1 || f > 100000 || b < 1 || b > f || r < 0 || r > 100)
		ret = error_set(GROVE_EINVAL, "%s: gate.maxStartups must be N (1 to 100000) or START:RATE:FULL "
				"(1 <= START <= FULL, RATE 0 to 100), not \"%s\"", l->path, v);
	c->max_startups = f;
	c->startups_begin = b;
	c->startups_rate = r;
	free(v);
	return ret;
}

static int gate_config_read_ints(struct config_load *l)
{
	struct gate_config *c = l->c;
	struct config *cfg = l->cfg;
	int64_t v;
	int ret;

#define INT(key, def, min, max, field)                                       \
	do {                                                                 \
		if ((ret = config_get_int(cfg, key, def, min, max, &v)))     \
			return ret;                                          \
		c->field = (int)v;                                           \
	} while (0);
	INT("gate.canaryPercent", 0, 0, 100, canary_percent)
	INT("gate.loginGraceTime", 30, 1, 600, login_grace)
	INT("gate.maxConnections", 1000, 1, 100000, max_connections)
	INT("gate.maxConnectionsPerAddress", 50, 1, 100000, max_per_addr)
	INT("gate.maxOpsPerApp", 32, 1, 10000, max_ops_per_app)
	INT("gate.maxOpsPerUser", 64, 1, 10000, max_ops_per_user)
	INT("gate.maxConnectionsPerUser", 100, 1, 100000, max_conns_per_user)
	INT("gate.opsQueueWait", 30, 0, 3600, ops_queue_wait)
	INT("gate.pushesPerMinute", 0, 0, 100000, pushes_per_minute)
	INT("gate.maxRefListSize", 4 << 20, 64 << 10, 1 << 30, max_ref_list)
	INT("gate.adminMaxConnections", 128, 2, 10000, admin_max_conns)
	INT("gate.adminMaxPerAddress", 16, 1, 10000, admin_max_per_addr)
	INT("gate.adminTimeout", 15, 1, 3600, admin_timeout)
	INT("gate.adminRequestTimeout", 30, 1, 3600, admin_request_timeout)
	INT("gate.idleTimeout", 600, 0, 86400, idle_timeout)
	INT("gate.httpKeepAlive", 30, 1, 3600, http_keepalive)
	INT("gate.shutdownGrace", 60, 0, 86400, shutdown_grace)
	INT("deploy.keepalive", 30, 1, 3600, keepalive)
	INT("deploy.webhookTimeout", 3600, 1, 86400, webhook_timeout)
	INT("deploy.archiveTtl", 900, 10, 7 * 86400, archive_ttl)
	INT("auth.timeout", 5, 1, 120, auth_timeout)
	INT("auth.cacheTtl", 30, 0, 3600, auth_cache_ttl)
	INT("auth.cacheEntries", 4096, 16, 1 << 20, auth_cache_entries)
	INT("gate.lockWait", 60, 0, 3600, lock_wait)
	INT("gate.maxPushSize", 2048, 0, GATE_MAX_PUSH_MB, max_push_mb)
	INT("gate.keepalive", 15, 0, 3600, keepalive_s)
	INT("gate.keepaliveCount", 4, 1, 100, keepalive_count)
	INT("gate.clientAliveInterval", 30, 0, 3600, client_alive_s)
	INT("gate.clientAliveCountMax", 3, 1, 100, client_alive_count)
	INT("housekeeping.interval", 86400, 0, 30 * 86400, housekeeping)
#undef INT
	/* A fetch's request is its wants and haves: 16 MiB is some 300,000
	 * haves. A push's body is bounded by the push's own limits. */
	if ((ret = config_get_int(cfg, "gate.httpMaxRequestSize", 16 << 20, 64 << 10, (int64_t)1 << 30, &v)))
		return ret;
	c->http_max_request = v;
	return 0;
}

/* The secrets, from the files the config names. */
static int gate_config_read_secrets(struct config_load *l)
{
	struct gate_config *c = l->c;
	int ret;

	if ((ret = auth_secret_load(l->secret_file, &c->secret)) ||
	    (ret = auth_secret_load(l->token_file, &c->admin_token)))
		return ret;
	if (l->webhook_secret_file && (ret = auth_secret_load(l->webhook_secret_file, &c->webhook_secret)))
		return ret;
	if (l->auth_token_file && (ret = auth_secret_load(l->auth_token_file, &c->auth_token)))
		return ret;
	return 0;
}

/* gate.proxyProtocolFrom: the load balancers that send a PROXY header. */
static int gate_config_read_proxy_from(struct config_load *l)
{
	struct gate_config *c = l->c;
	char **from = NULL;
	size_t n = 0;
	int ret;

	if ((ret = config_get_all(l->cfg, "gate.proxyProtocolFrom", &from, &n)))
		return ret;
	c->proxy_from = xcalloc(n + 1, sizeof(*c->proxy_from));
	for (size_t i = 0; i < n && !ret; i++)
		if ((ret = cidr_parse(from[i], &c->proxy_from[c->nproxy_from++])))
			error_wrap(ret, "%s: gate.proxyProtocolFrom", l->path);
	config_strv_free(from, n);
	return ret;
}

/* A deployment is a command or a webhook, and a webhook is a URL. */
static int gate_config_check_deploy(struct config_load *l)
{
	struct gate_config *c = l->c;

	if (c->deploy_command && c->deploy_webhook)
		return error_set(GROVE_EINVAL, "%s: deploy.command and deploy.webhook are both set: a deployment is one or the other",
				 l->path);
	if (c->deploy_webhook && strncmp(c->deploy_webhook, "http://", 7) && strncmp(c->deploy_webhook, "https://", 8))
		return error_set(GROVE_EINVAL, "%s: deploy.webhook must be an http:// or https:// URL", l->path);
	return 0;
}

/* deploy.archiveUrl when unset: the admin API's address. Builders on this
 * machine reach an any-address listener on loopback. */
/* The smart HTTP door: TLS needs both files; its users are Grove's own. */
static int gate_config_check_http(struct config_load *l)
{
	struct gate_config *c = l->c;

	if (!c->http_tls_cert != !c->http_tls_key)
		return error_set(GROVE_EINVAL, "%s: gate.httpTlsCert and gate.httpTlsKey go together: set both for HTTPS, "
				 "or neither for plain HTTP behind a TLS proxy", l->path);
	/* Its tokens are Grove's: a platform that says who a key is (auth.url)
	 * has no word for them yet. */
	if (c->http_listen && !*c->http_listen)
		FREE_AND_NULL(c->http_listen);
	if (c->http_listen && c->auth_url)
		return error_set(GROVE_EINVAL, "%s: gate.httpListen cannot be used with auth.url: HTTP access tokens are "
				 "Grove's own users'", l->path);
	return 0;
}

static char *archive_base_default(const char *l)
{
	if (!strncmp(l, "0.0.0.0:", 8))
		return xasprintf("http://127.0.0.1%s", l + 7);
	if (!strncmp(l, "[::]:", 5))
		return xasprintf("http://[::1]%s", l + 4);
	if (l[0] == ':')
		return xasprintf("http://127.0.0.1%s", l);
	return xasprintf("http://%s", l);
}

int gate_config_load(struct gate_config *c, const char *path)
{
	struct config_load l = { .c = c, .path = path };
	int ret;
	enum log_level lvl;

	memset(c, 0, sizeof(*c));
	if ((ret = config_open(&l.cfg, path)))
		return ret;
	c->conf_path = xstrdup(path);
	if ((ret = gate_config_read_strings(&l)))
		goto out;
	if (log_level_parse(l.level, &lvl)) {
		ret = error_set(GROVE_EINVAL, "%s: log.level must be debug, info, warn or error", path);
		goto out;
	}
	log_init("gate", lvl, 2);
	/* A file is taken from the config's folder; a postgres:// URL as it is. */
	if (!skip_prefix(c->db_path, "postgres://", NULL) && !skip_prefix(c->db_path, "postgresql://", NULL)) {
		FREE_AND_NULL(c->db_path);
		if ((ret = config_get_path(l.cfg, "gate.database", "gate.db", &c->db_path)))
			goto out;
	}
	if ((ret = gate_config_read_ints(&l)) || (ret = gate_config_read_startups(&l)) ||
	    (ret = gate_config_read_secrets(&l)))
		goto out;
	if (c->auth_url && strncmp(c->auth_url, "http://", 7) && strncmp(c->auth_url, "https://", 8)) {
		ret = error_set(GROVE_EINVAL, "%s: auth.url must be an http:// or https:// URL", path);
		goto out;
	}
	if ((ret = gate_config_read_proxy_from(&l)) || (ret = gate_config_check_deploy(&l)) ||
	    (ret = gate_config_check_http(&l)))
		goto out;
	/* Last: the links' TLS files take effect for this process (a failed
	 * reload puts the old ones back: gate_reload). */
	if ((ret = rpc_tls_from_config(l.cfg)) || (ret = config_check_unknown(l.cfg)))
		goto out;
	if (!c->archive_base)
		c->archive_base = archive_base_default(c->admin_listen);
	c->host_key_dir = xasprintf("%s/hostkeys", c->data_dir);
	c->hooks_dir = xasprintf("%s/hooks", c->data_dir);
	c->self_exe = realpath("/proc/self/exe", NULL);
	if (!c->self_exe)
		ret = error_set(GROVE_EIO, "cannot find my own executable: %s", strerror(errno));
out:
	free(l.secret_file);
	free(l.token_file);
	free(l.webhook_secret_file);
	free(l.auth_token_file);
	free(l.level);
	free(l.fsck_ignore);
	free(l.ref_namespaces);
	config_free(l.cfg);
	return ret;
}

void gate_config_release(struct gate_config *c)
{
	char **fields[] = { &c->conf_path, &c->data_dir, &c->listen, &c->db_path, &c->host_key_dir, &c->secret,
			    &c->hook_listen, &c->admin_listen, &c->public_listen, &c->admin_token, &c->legacy_dir, &c->cluster_address,
			    &c->cluster_storage, &c->deploy_branch, &c->deploy_command, &c->self_exe, &c->hooks_dir,
			    &c->deploy_webhook, &c->archive_base, &c->webhook_secret, &c->auth_url, &c->auth_token,
			    &c->openssh_user, &c->openssh_log, &c->http_listen, &c->http_tls_cert, &c->http_tls_key };
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		FREE_AND_NULL(*fields[i]);
	FREE_AND_NULL(c->proxy_from);
	c->nproxy_from = 0;
	strvec_clear(&c->fsck_ignore);
	strvec_clear(&c->ref_namespaces);
}

static int gate_init_dir(const char *dir, const char *listen, const char *store, const char *storage)
{
	char path[4096];
	char *secret = auth_secret_generate(), *token = auth_secret_generate(), *text = NULL;
	int ret;
	if ((ret = fs_mkdir_p(dir, 0700)))
		goto out;
	snprintf(path, sizeof(path), "%s/secret", dir);
	text = xasprintf("%s\n", secret);
	if ((ret = fs_write_new(path, text, 0600)))
		goto out;
	free(text);
	snprintf(path, sizeof(path), "%s/admin-token", dir);
	text = xasprintf("%s\n", token);
	if ((ret = fs_write_new(path, text, 0600)))
		goto out;
	free(text);
	snprintf(path, sizeof(path), "%s/gate.conf", dir);
	char *route = store ? xasprintf("\tcluster = %s\n\tstorage = %s\n", store, storage) : xstrdup("");
	text = xasprintf("# grove gate configuration (git-config syntax); see `grove gate --help`.\n"
			 "[gate]\n\tlisten = %s\n\thookListen = 127.0.0.1:2223\n\tadminListen = 127.0.0.1:8080\n"
			 "\tsecretFile = secret\n\tadminTokenFile = admin-token\n\tdeployBranch = main\n"
			 "[route]\n\tlegacyDir = legacy\n%s"
			 "[log]\n\tlevel = info\n",
			 listen, route);
	free(route);
	if ((ret = fs_write_new(path, text, 0640)))
		goto out;
	char *real = realpath(path, NULL);
	printf("%s\n", real ? real : path);
	free(real);
out:
	free(secret);
	free(token);
	free(text);
	return ret;
}

static int host_keys(const struct gate_config *cfg, ssh_bind bind)
{
	static const struct { const char *file; enum ssh_keytypes_e type; int bits; } keys[] = {
		{ "ssh_host_ed25519_key", SSH_KEYTYPE_ED25519, 0 },
		{ "ssh_host_rsa_key", SSH_KEYTYPE_RSA, 3072 },
	};
	char path[4096];
	int ret;
	if ((ret = fs_mkdir_p(cfg->host_key_dir, 0700)))
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		snprintf(path, sizeof(path), "%s/%s", cfg->host_key_dir, keys[i].file);
		if (access(path, R_OK)) {
			ssh_key key = NULL;
			if (ssh_pki_generate(keys[i].type, keys[i].bits, &key) != SSH_OK ||
			    ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path) != SSH_OK) {
				ssh_key_free(key);
				return error_set(GROVE_EIO, "cannot generate the host key %s", path);
			}
			chmod(path, 0600);
			ssh_key_free(key);
			log_info("gate.host_key_generated", "path=%s", path);
		}
		if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_HOSTKEY, path) != SSH_OK)
			return error_set(GROVE_EIO, "cannot load the host key %s: %s", path, ssh_get_error(bind));
	}
	return 0;
}

static int install_hooks(const struct gate_config *cfg)
{
	static const char *const hooks[] = { "pre-receive", "post-receive" };
	int ret = fs_mkdir_p(cfg->hooks_dir, 0700);
	for (size_t i = 0; !ret && i < ARRAY_SIZE(hooks); i++)
		ret = hook_script_install(cfg->hooks_dir, hooks[i], cfg->self_exe, false);
	return ret;
}

static int listen_tcp(const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1, fd;
	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return error_set(GROVE_EINVAL, "listen address %s is not host:port", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return error_set(GROVE_EINVAL, "listen address %s: host must be an IPv4 address", addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set(GROVE_EIO, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 512)) {
		int e = errno;
		close(fd);
		return error_set(GROVE_EUNAVAIL, "cannot listen on %s: %s", addr, strerror(e));
	}
	return fd;
}

struct child {
	pid_t pid;
	bool authed;
	char addr[INET6_ADDRSTRLEN];   /* the client's address ("" behind a PROXY load balancer) */
};

/* In the freshly forked api process: drop what belongs to the acceptor. */
/*
 * A client whose network died (a cable, a laptop lid, a NAT that forgot the
 * connection) sends no FIN: without probes its session, and the app lock of
 * a push, would stay until idleTimeout. TCP keepalive probes after `secs` of
 * silence, `count` times; TCP_USER_TIMEOUT bounds the same way how long data
 * sent may stay unacknowledged (else ~15 min of retransmissions). Best
 * effort: a socket that refuses an option keeps the kernel's defaults.
 */
static void keepalive_set(int fd, int secs, int count)
{
	int on = 1;
	unsigned int user_timeout;

	if (secs <= 0)
		return;
	user_timeout = (unsigned int)(secs + secs * count) * 1000u;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof(secs));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

/* The acceptor's state, shared by the steps of gate_main. */
struct gate {
	struct gate_config cfg;
	ssh_bind bind;
	int lfd, sfd, auth_pipe[2];
	int hfd;                  /* the smart HTTP door's socket, or -1 */
	struct http_tls *tls;     /* its TLS certificate and key, or NULL: plain HTTP */
	struct daemon d;          /* its signals, and systemd's notify socket */
	pid_t api_pid;
	int64_t api_started;      /* now_ms() of its last start: one that dies is restarted at most once a second */
	struct child *kids;
	size_t nkids;
	int unauth;               /* children not yet authenticated */
	bool draining;
	int64_t drain_deadline;
};

/* In the freshly forked api process: drop what belongs to the acceptor
 * (sfd: -1 when it is not open yet). */
static int api_child(struct gate *g, int sfd)
{
	int ret;
	close(g->lfd);
	if (g->hfd >= 0)
		close(g->hfd);
	http_tls_free(g->tls);
	if (sfd >= 0)
		close(sfd);
	close(g->auth_pipe[0]);
	close(g->auth_pipe[1]);
	sigprocmask(SIG_UNBLOCK, &g->d.sigs, NULL);
	ssh_bind_free(g->bind);
	/* A gate killed outright must not leave its api process behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	ret = api_run(&g->cfg);
	gate_config_release(&g->cfg);
	return ret;
}

/* The command line of `grove gate`. */
struct gate_args {
	const char *conf, *init, *listen_addr, *store, *storage;
	bool check;
};

/* Returns -1 to go on, or the exit code (help, or a wrong argument). */
static int gate_parse_args(struct gate_args *a, int argc, char **argv)
{
	struct cli_parse p;
	int o;

	cli_parse_init(&p, &gate_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		switch (o) {
		case 'c': a->conf = optarg; break;
		case OPT_INIT: a->init = optarg; break;
		case OPT_LISTEN: a->listen_addr = optarg; break;
		case OPT_STORE: a->store = optarg; break;
		case OPT_STORAGE: a->storage = optarg; break;
		case OPT_CHECK: a->check = true; break;
		}
	}
	return cli_daemon_args_end(&p, a->conf, a->init, a->check);
}

/* The acceptor reads its signals from a signalfd (a forked child unblocks
 * them again); a write to a closed connection fails instead of killing. */
static void gate_block_signals(struct gate *g, char **argv)
{
	static const int children[] = { SIGCHLD, 0 };
	daemon_init(&g->d, "gate", children, argv);
}

int gate_authz_open(const struct gate_config *cfg)
{
	struct authz_opts zo = { .url = cfg->auth_url, .token = cfg->auth_token, .timeout_s = cfg->auth_timeout,
				 .cache_ttl_s = cfg->auth_cache_ttl, .cache_entries = cfg->auth_cache_entries };
	return cfg->auth_url ? authz_new(&gate_authz, &zo) : 0;
}

void gate_shared_open(const struct gate_config *cfg, bool create)
{
	char run[4096], path[4200];

	snprintf(run, sizeof(run), "%s/run", cfg->data_dir);
	if (create && fs_mkdir_p(run, 0750))
		goto out;
	snprintf(path, sizeof(path), "%s/metrics", run);
	gate_metrics = metrics_create(path, create);
	snprintf(path, sizeof(path), "%s/ratelimit", run);
	gate_ratelimit = ratelimit_create(path, create);
out:
	if (!gate_metrics || !gate_ratelimit)
		log_warn("gate.shared_memory", "metrics=%b ratelimit=%b error=%s", gate_metrics != NULL,
			 gate_ratelimit != NULL, error_msg());
}

/* The configuration, and what is shared or done once before any fork. */
static int gate_prepare(struct gate *g, const char *conf)
{
	struct db *db = NULL;
	int ret;

	if ((ret = gate_config_load(&g->cfg, conf)))
		return ret;
	if ((ret = fs_mkdir_p(g->cfg.legacy_dir, 0750)) || (ret = install_hooks(&g->cfg)))
		return ret;
	/* Before any fork: sessions and the api process share the counters,
	 * and the sessions the authorization cache. */
	gate_shared_open(&g->cfg, true);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((ret = gate_authz_open(&g->cfg)))
		return ret;
	/* Migrations run once, here, before any child opens the database. */
	if ((ret = db_open(&db, g->cfg.db_path)))
		return ret;
	db_close(db);
	return 0;
}

/* fd is a listening TCP socket. */
static bool is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);
	return fd >= 0 && !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) && on;
}

/*
 * A gate started by an upgrade (gate_upgrade) takes its predecessor's
 * listening sockets, GROVE_GATE_FDS=SSH,HTTP (HTTP -1: none): the same
 * sockets, so no connection waiting in their queues is lost. True when it
 * did; false (listen anew) without them or when they are not what the
 * config says (an upgrade that changed gate.listen: the old ones are closed).
 */
static bool gate_inherit_listeners(struct gate *g)
{
	const char *v = getenv("GROVE_GATE_FDS");
	int lfd = -1, hfd = -1;

	if (!v || sscanf(v, "%d,%d", &lfd, &hfd) != 2)
		return false;
	unsetenv("GROVE_GATE_FDS");
	if (!is_listening(lfd) || (hfd >= 0 && !is_listening(hfd)) || (hfd >= 0) != (g->cfg.http_listen != NULL)) {
		log_warn("gate.listeners_not_inherited", "fds=%s", v);
		if (lfd > 2)
			close(lfd);
		if (hfd > 2)
			close(hfd);
		return false;
	}
	fcntl(lfd, F_SETFD, FD_CLOEXEC);
	if (hfd >= 0)
		fcntl(hfd, F_SETFD, FD_CLOEXEC);
	g->lfd = lfd;
	g->hfd = hfd;
	log_info("gate.listeners_inherited", "ssh_fd=%d http_fd=%d", lfd, hfd);
	return true;
}

/* The SSH server with its host keys, the listening socket, and the pipe on
 * which sessions tell the acceptor they authenticated. */
static int gate_start_listeners(struct gate *g)
{
	int ret;

	g->bind = ssh_bind_new();
	int no = 0;
	ssh_bind_options_set(g->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no);
	/* "SSH-2.0-Grove": the library's name and version would tell an
	 * attacker which advisories to try. */
	ssh_bind_options_set(g->bind, SSH_BIND_OPTIONS_BANNER, "Grove");
	if ((ret = host_keys(&g->cfg, g->bind)))
		return ret;
	/* An upgrade's sockets, else systemd's (socket activation), else our own. */
	if (gate_inherit_listeners(g))
		;
	else if ((g->lfd = daemon_take_listener(&g->d, g->cfg.listen)) < 0 &&
		 (g->lfd = listen_tcp(g->cfg.listen)) < 0)
		return g->lfd;
	else if (g->cfg.http_listen && (g->hfd = daemon_take_listener(&g->d, g->cfg.http_listen)) < 0 &&
		 (g->hfd = listen_tcp(g->cfg.http_listen)) < 0)
		return g->hfd;
	daemon_close_unused_listeners(&g->d);
	if (g->cfg.http_tls_cert && !(g->tls = http_tls_load(g->cfg.http_tls_cert, g->cfg.http_tls_key)))
		return GROVE_EINVAL;
	if (pipe2(g->auth_pipe, O_CLOEXEC))
		return error_set(GROVE_EIO, "pipe: %s", strerror(errno));
	fcntl(g->auth_pipe[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* The client's address (addr, "" when it is a load balancer that sends a
 * PROXY header: the real client is known only later) and "ip:port" (peer). */
static void gate_peer(const struct gate *g, const struct sockaddr_storage *ss, char *addr, char *peer, size_t size)
{
	addr[0] = '\0';
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, addr, INET6_ADDRSTRLEN);
		snprintf(peer, size, "%s:%u", addr, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, INET6_ADDRSTRLEN);
		snprintf(peer, size, "[%s]:%u", addr, ntohs(sin6->sin6_port));
	}
	if (cidr_match_any(g->cfg.proxy_from, g->cfg.nproxy_from, (const struct sockaddr *)ss))
		addr[0] = '\0';
}

/* Connections open now from addr. */
static int gate_count_addr(const struct gate *g, const char *addr)
{
	int n = 0;
	for (size_t i = 0; i < g->nkids; i++)
		n += !strcmp(g->kids[i].addr, addr);
	return n;
}

/* SIGCHLD: forgets the children that ended; the api process is noticed gone. */
static void gate_reap(struct gate *g)
{
	pid_t pid;
	int status;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == g->api_pid) {
			g->api_pid = -1;
			if (!g->draining)
				log_error("gate.api_died", "status=%d", status);
			continue;
		}
		for (size_t i = 0; i < g->nkids; i++) {
			if (g->kids[i].pid != pid)
				continue;
			if (!g->kids[i].authed)
				g->unauth--;
			g->kids[i] = g->kids[--g->nkids];
			break;
		}
	}
}

/* SIGTERM, SIGINT: no new connections; the sessions get shutdownGrace. */
static void gate_start_draining(struct gate *g)
{
	g->draining = true;
	g->drain_deadline = now_ms() + (int64_t)g->cfg.shutdown_grace * 1000;
	close(g->lfd);
	g->lfd = -1;
	if (g->hfd >= 0)
		close(g->hfd);
	g->hfd = -1;
	log_info("gate.draining", "sessions=%zu grace_s=%d", g->nkids, g->cfg.shutdown_grace);
	daemon_stopping(&g->d);
	if (g->api_pid > 0)
		kill(g->api_pid, GATE_SIG_DRAINING);
}

/*
 * SIGUSR2: the binary now on disk takes over. It gets the listening
 * sockets themselves (no connection in their queues is lost) and starts its
 * own api process, whose listeners share their ports with this one's
 * (SO_REUSEPORT) until this one's drain ends. Once it serves, this gate
 * drains as on SIGTERM: its sessions finish, then it exits.
 */
static void gate_upgrade(struct gate *g)
{
	char env[64];
	int keep[] = { g->lfd, g->hfd, -1 };

	snprintf(env, sizeof(env), "GROVE_GATE_FDS=%d,%d", g->lfd, g->hfd);
	if (daemon_upgrade(&g->d, keep, env)) {
		log_error("gate.upgrade_failed", "error=%s note=%s", error_msg(), "this gate serves on");
		return;
	}
	log_info("gate.upgraded", "sessions=%zu", g->nkids);
	gate_start_draining(g);
}

/* What a reload cannot change: sockets this process holds, and what the
 * api process and the shared state were made from. */
static int gate_reload_check(const struct gate_config *old, const struct gate_config *nc)
{
	static const struct { const char *key; size_t off; } fixed[] = {
		{ "gate.listen", offsetof(struct gate_config, listen) },
		{ "gate.httpListen", offsetof(struct gate_config, http_listen) },
		{ "gate.adminListen", offsetof(struct gate_config, admin_listen) },
		{ "gate.hookListen", offsetof(struct gate_config, hook_listen) },
		{ "gate.publicListen", offsetof(struct gate_config, public_listen) },
		{ "gate.dataDir", offsetof(struct gate_config, data_dir) },
		{ "gate.database", offsetof(struct gate_config, db_path) },
		{ "auth.url", offsetof(struct gate_config, auth_url) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		const char *a = *(char *const *)((const char *)old + fixed[i].off);
		const char *b = *(char *const *)((const char *)nc + fixed[i].off);
		if (!same_str(a, b))
			return error_set(GROVE_EINVAL, "%s changed: that takes a restart", fixed[i].key);
	}
	return 0;
}

/*
 * SIGHUP: the configuration and the TLS files read again, for the
 * connections that come next (those running keep theirs); a certificate
 * is renewed this way. Anything wrong, and the configuration in use stays.
 * The api process (admin API, hooks, deploys) keeps its settings until a
 * restart (restarting it would fail the hooks of pushes in flight), but
 * for its TLS files, which it reads again too.
 */
static void gate_reload(struct gate *g)
{
	struct gate_config nc;
	struct http_tls *tls = NULL;
	struct rpc_tls_saved *was = rpc_tls_save();
	int ret = gate_config_load(&nc, g->cfg.conf_path);

	if (!ret)
		ret = gate_reload_check(&g->cfg, &nc);
	if (!ret && nc.http_tls_cert && !(tls = http_tls_load(nc.http_tls_cert, nc.http_tls_key)))
		ret = GROVE_EINVAL;
	if (ret) {
		log_error("gate.reload_failed", "error=%s note=%s", error_msg(), "the configuration in use stays");
		gate_config_release(&nc);
		rpc_tls_restore(was);
		return;
	}
	rpc_tls_saved_free(was);
	gate_config_release(&g->cfg);
	g->cfg = nc;
	if (g->api_pid > 0)
		kill(g->api_pid, SIGHUP);
	http_tls_free(g->tls);
	g->tls = tls;
	log_info("gate.reloaded", "conf=%s http_tls=%b", g->cfg.conf_path, tls != NULL);
}

/* What the signalfd has: children that ended, SIGHUP, or the order to stop. */
static void gate_take_signals(struct gate *g)
{
	struct signalfd_siginfo si;
	while (read(g->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			gate_reap(g);
		else if (si.ssi_signo == SIGHUP && !g->draining)
			gate_reload(g);
		else if (si.ssi_signo == SIGUSR2) {
			if (!g->draining)
				gate_upgrade(g);
		}
		else if (daemon_signal_stops(&g->d, (int)si.ssi_signo) && !g->draining)
			gate_start_draining(g);
	}
}

/* Sessions that authenticated no longer count as unauthenticated. */
static void gate_take_authed(struct gate *g)
{
	pid_t pid;
	while (read(g->auth_pipe[0], &pid, sizeof(pid)) == sizeof(pid)) {
		for (size_t i = 0; i < g->nkids; i++) {
			if (g->kids[i].pid == pid && !g->kids[i].authed) {
				g->kids[i].authed = true;
				g->unauth--;
			}
		}
	}
}

#define API_RESTART_MS 1000

/* Forks the api process again. Returns true in it, with its exit code in *child_ret. */
static bool gate_restart_api(struct gate *g, int *child_ret)
{
	g->api_started = now_ms();
	g->api_pid = fork();
	if (g->api_pid == 0) {
		free(g->kids);   /* the acceptor's, not the api process's */
		*child_ret = api_child(g, g->sfd);
		return true;
	}
	log_warn("gate.api_restarted", "pid=%d", (int)g->api_pid);
	return false;
}

/* In the freshly forked session process (SSH, or smart HTTP when http):
 * drop what belongs to the acceptor. */
static int session_child(struct gate *g, int fd, const char *peer, bool http)
{
	int ret;
	close(g->lfd);
	if (g->hfd >= 0)
		close(g->hfd);
	close(g->sfd);
	close(g->auth_pipe[0]);
	free(g->kids);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &g->d.sigs, NULL);
	if (http)
		ret = http_session_run(&g->cfg, g->tls, fd, peer, g->auth_pipe[1]);
	else
		ret = session_run(&g->cfg, g->bind, fd, peer, g->auth_pipe[1]);
	ssh_bind_free(g->bind);
	http_tls_free(g->tls);
	gate_config_release(&g->cfg);
	return ret;
}

/* Random early drop with unauth connections not yet authenticated:
 * startups_rate % at startups_begin, rising linearly to 100 % at
 * max_startups (sshd's MaxStartups start:rate:full). */
static bool gate_early_drop(const struct gate_config *c, int unauth)
{
	int p, span = c->max_startups - c->startups_begin;
	if (unauth < c->startups_begin || c->startups_begin >= c->max_startups)
		return false;
	p = c->startups_rate + (100 - c->startups_rate) * (unauth - c->startups_begin) / (span > 0 ? span : 1);
	return (int)(random() % 100) < p;
}

/* Takes one connection from lfd (the SSH or the HTTP socket: both count
 * against the same limits) and forks its session process. Returns true in
 * that process, with its exit code in *child_ret. */
static bool gate_accept(struct gate *g, int lfd, int *child_ret)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return false;
	char peer[64] = "?", addr[INET6_ADDRSTRLEN] = "";
	gate_peer(g, &ss, addr, peer, sizeof(peer));
	if (g->unauth >= g->cfg.max_startups || g->nkids >= (size_t)g->cfg.max_connections) {
		/* Like sshd's MaxStartups: refuse before any work is done. */
		log_warn("gate.too_many", "peer=%s unauthenticated=%d connections=%zu", peer, g->unauth, g->nkids);
		close(fd);
		return false;
	}
	if (gate_early_drop(&g->cfg, g->unauth)) {
		log_warn("gate.early_drop", "peer=%s unauthenticated=%d", peer, g->unauth);
		close(fd);
		return false;
	}
	if (addr[0] && gate_count_addr(g, addr) >= g->cfg.max_per_addr) {
		/* One client (one tenant's CI, a script gone wild) holds its own
		 * share of the connections, never all of them. */
		log_warn("gate.too_many_from", "peer=%s connections=%d max=%d", peer, gate_count_addr(g, addr),
			 g->cfg.max_per_addr);
		close(fd);
		return false;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	keepalive_set(fd, g->cfg.keepalive_s, g->cfg.keepalive_count);
	pid_t pid = fork();
	if (pid == 0) {
		*child_ret = session_child(g, fd, peer, lfd == g->hfd);
		return true;
	}
	close(fd);
	if (pid < 0) {
		log_error("gate.fork_failed", "error=%s", strerror(errno));
		return false;
	}
	g->kids = xrealloc(g->kids, (g->nkids + 1) * sizeof(*g->kids));
	g->kids[g->nkids].pid = pid;
	g->kids[g->nkids].authed = false;
	strlcpy_(g->kids[g->nkids].addr, addr, sizeof(g->kids[g->nkids].addr));
	g->nkids++;
	g->unauth++;
	return false;
}

/* The accept loop, until drained (or poll fails). Returns true in a forked
 * child, with its exit code in *child_ret. */
static bool gate_serve(struct gate *g, int *child_ret)
{
	for (;;) {
		struct pollfd pfd[4] = { { g->sfd, POLLIN, 0 }, { g->auth_pipe[0], POLLIN, 0 }, { g->lfd, POLLIN, 0 },
					 { g->hfd, POLLIN, 0 } };
		int n = g->draining ? 2 : g->hfd >= 0 ? 4 : 3;
		int64_t wd = daemon_watchdog(&g->d), wait = g->draining ? 200 : -1;
		if (wd >= 0 && (wait < 0 || wd < wait))
			wait = wd;
		if (!g->draining && g->api_pid < 0) {
			int64_t due = MAX(g->api_started + API_RESTART_MS - now_ms(), 0);
			if (wait < 0 || due < wait)
				wait = due;
		}
		if (poll(pfd, (nfds_t)n, (int)wait) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			gate_take_signals(g);
		if (pfd[1].revents)
			gate_take_authed(g);
		if (g->draining) {
			if (g->nkids == 0 || now_ms() > g->drain_deadline) {
				for (size_t i = 0; i < g->nkids; i++)
					kill(g->kids[i].pid, SIGTERM);
				break;
			}
			continue;
		}
		if (g->api_pid < 0 && now_ms() - g->api_started >= API_RESTART_MS) {
			/* The api process serves every push's hooks: bring it back
			 * (not in a loop when it cannot start: its port taken). */
			if (gate_restart_api(g, child_ret))
				return true;
		}
		if ((pfd[2].revents & POLLIN) && gate_accept(g, g->lfd, child_ret))
			return true;
		if (n == 4 && (pfd[3].revents & POLLIN) && gate_accept(g, g->hfd, child_ret))
			return true;
	}
	return false;
}

/*
 * --check-config: what a start would read (the config, its secrets, the
 * TLS files) without starting anything, so that an operator (or a deploy
 * script, before a reload or an upgrade) learns of a mistake while the
 * running gate still serves. 0 with a summary on stdout, 1 with the error.
 */
static int gate_check_config(const char *conf)
{
	struct gate_config cfg;
	struct http_tls *tls = NULL;
	int ret = gate_config_load(&cfg, conf);

	if (!ret && cfg.http_tls_cert && !(tls = http_tls_load(cfg.http_tls_cert, cfg.http_tls_key)))
		ret = GROVE_EINVAL;
	if (ret)
		fprintf(stderr, "grove gate: %s\n", error_msg());
	else
		printf("%s: good. SSH on %s; git over %s on %s; admin API on %s; cluster route to %s; legacy directory %s\n",
		       conf, cfg.listen, tls ? "HTTPS" : "HTTP", cfg.http_listen ? cfg.http_listen : "(off)",
		       cfg.admin_listen, cfg.cluster_address ? cfg.cluster_address : "(none)", cfg.legacy_dir);
	http_tls_free(tls);
	gate_config_release(&cfg);
	return ret ? 1 : 0;
}

int gate_main(int argc, char **argv)
{
	struct gate g = { .lfd = -1, .hfd = -1, .sfd = -1, .auth_pipe = { -1, -1 }, .api_pid = -1 };
	struct gate_args a = { .listen_addr = "127.0.0.1:2222", .storage = "default" };
	int ret;

	if ((ret = gate_parse_args(&a, argc, argv)) >= 0)
		return ret;
	if (a.init) {
		if (gate_init_dir(a.init, a.listen_addr, a.store, a.storage)) {
			fprintf(stderr, "grove gate: %s\n", error_msg());
			return 1;
		}
		return 0;
	}
	if (a.check)
		return gate_check_config(a.conf);
	gate_block_signals(&g, argv);
	/* Random early drop (gate_early_drop) need not be unpredictable, only
	 * different from one gate to the next. */
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	if ((ret = gate_prepare(&g, a.conf)) || (ret = gate_start_listeners(&g)))
		goto out;

	/* The api process first, before this process could ever touch gRPC. */
	g.api_started = now_ms();
	g.api_pid = fork();
	if (g.api_pid == 0)
		return api_child(&g, -1);
	g.sfd = signalfd(-1, &g.d.sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	log_info("gate.started", "version=%s listen=%s http_listen=%s http_tls=%b hook_listen=%s admin_listen=%s route_cluster=%s legacy_dir=%s",
		 grove_version(), g.cfg.listen, g.cfg.http_listen ? g.cfg.http_listen : "", g.tls != NULL,
		 g.cfg.hook_listen, g.cfg.admin_listen,
		 g.cfg.cluster_address ? g.cfg.cluster_address : "", g.cfg.legacy_dir);
	daemon_ready(&g.d);

	if (gate_serve(&g, &ret))
		return ret;   /* a forked child, done */
	if (g.api_pid > 0) {
		kill(g.api_pid, SIGTERM);
		waitpid(g.api_pid, NULL, 0);
	}
	log_info("gate.stopped", NULL);
out:
	if (ret) {
		log_error("gate.failed", "error=%s", error_msg());
		fprintf(stderr, "grove gate: %s\n", error_msg());
	}
	if (g.lfd >= 0)
		close(g.lfd);
	if (g.hfd >= 0)
		close(g.hfd);
	http_tls_free(g.tls);
	if (g.sfd >= 0)
		close(g.sfd);
	free(g.kids);
	if (g.bind)
		ssh_bind_free(g.bind);
	authz_free(gate_authz);
	gate_authz = NULL;
	gate_config_release(&g.cfg);
	daemon_release(&g.d);
	return ret ? 1 : 0;
}
