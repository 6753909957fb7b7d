/* `grove cluster -c FILE`: configuration, start-up, and a clean drain on SIGTERM. */
#include "cluster/cluster.h"
#include "cluster/main.h"
#include "cli/opt.h"
#include "lib/version.h"
#include "lib/auth.h"
#include "lib/config.h"
#include "lib/daemon.h"
#include "lib/sqldb.h"
#include "lib/error.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/repopath.h"
#include "lib/rpc.h"

#include "lib/metricsd.h"
#include <signal.h>

enum { OPT_CHECK = CLI_OPT_LONG };

static const struct cli_option cluster_options[] = {
	{ "config", 'c', "FILE", "run the router this configuration describes" },
	{ "check-config", OPT_CHECK, NULL, "with -c: read the configuration and the files it names, say what is wrong, run nothing" },
	{ NULL },
};

const struct cli_command cluster_command = {
	"cluster",
	"-c FILE [--check-config]\n"
	"[-a ADDRESS] [--secret-file F] (status|repo|dataloss|accept-dataloss|set-replication-factor|verify|failover) …",
	"Runs the cluster router: the grove.v1 API of a store, every repository on several stores.",
	cluster_options,
	"`grove cluster help` lists the operator commands.\n"
	"\n"
	"Config (git-config syntax):\n"
	"  [cluster]\n"
	"    name = <host name>          this router's name in the shared database\n"
	"    virtualStorage = default    the storage name clients use\n"
	"    listen = 127.0.0.1:8090     repeatable; host:port or unix:/path\n"
	"    transactionAddress = …      where stores vote (default: the first listen)\n"
	"    secretFile = secret         shared secret clients prove\n"
	"    database = cluster.db       SQLite file (relative: to the config file), or\n"
	"                                postgres://user@host:port/db for several routers\n"
	"    replicationFactor = 3       copies of each new repository\n"
	"    healthInterval = 1000       ms between health checks of each store\n"
	"    healthFailures = 3          failed checks in a row before a store is down\n"
	"    voteTimeout = 30000         ms a vote waits for the other replicas\n"
	"    lagTimeout = 10000          ms a secondary may lag a push before it is dropped\n"
	"    trailingWait = 50           ms a push waits for its replicas beyond the quorum once\n"
	"                                a quorum took it; then it answers, and they end in the\n"
	"                                background (>= lagTimeout: off)\n"
	"    lateWait = 2000             ms a write waits for the replicas still ending the last\n"
	"                                push to its repository, so that they take it too (0: off)\n"
	"    primaryAnswerTimeout = 3000 ms a push's primary may stay silent while the other\n"
	"                                replicas answered; then the push goes to another\n"
	"    resumeBuffer = 64m          bytes a push keeps (what its client sent and was sent)\n"
	"                                to go on on another primary if its own dies mid-push\n"
	"    resumeBufferTotal = 1g      the same, for every push at once\n"
	"    maxPackIndex = 64m          bytes of a primary's pack index held for the push's\n"
	"                                secondaries, so they need not index the pack (0: off)\n"
	"    packIndexTotal = 256m       the same, for every push at once\n"
	"    workers = 2                 replication jobs run at once\n"
	"    jobAttempts = 10            tries before a job is dead\n"
	"    jobLease = 1800             s a router holds a job before another may take it up\n"
	"    reconcileInterval = 10      s between passes that queue repairs\n"
	"    verifyInterval = 3600       s between checksum verifications (0: off)\n"
	"    metricsListen = …           IPv4 host:port for GET /metrics (Prometheus)\n"
	"    threads = 2, maxCalls = 1024, shutdownGrace = 30\n"
	"    maxCallsPerUser = 128       git commands of one user at once through this router,\n"
	"                                whatever gate they came through; 0: no cap\n"
	"  [store \"NAME\"]                one per store\n"
	"    address = 127.0.0.1:8075\n"
	"    storage = NAME              the store's storage name (store.name)\n"
	"    secretFile = …              its secret (default: the cluster's)\n"
	RPC_TLS_CONFIG_HELP
	"  [log]\n"
	"    level = info\n",
	false,
};

static int load_nodes(struct cluster *c, struct config *cfg)
{
	char **names = NULL, key[256];
	size_t n = 0;
	int ret = config_subsections(cfg, "store", &names, &n);
	if (ret)
		return ret;
	if (n == 0) {
		ret = error_set(GROVE_EINVAL, "%s: no [store \"NAME\"] section: the cluster needs stores", config_file(cfg));
		goto out;
	}
	if (n > CLUSTER_NODES_MAX) {
		ret = error_set(GROVE_EINVAL, "%s: more than %d stores", config_file(cfg), CLUSTER_NODES_MAX);
		goto out;
	}
	c->nodes = xcalloc(n, sizeof(*c->nodes));
	for (size_t i = 0; i < n && !ret; i++) {
		struct node *nd = &c->nodes[c->nnodes++];
		char *secret_file = NULL;
		nd->name = xstrdup(names[i]);
		if (!txn_node_name_valid(nd->name, strlen(nd->name))) {
			ret = error_set(GROVE_EINVAL, "%s: store name \"%s\" must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
					config_file(cfg), nd->name);
			break;
		}
		snprintf(key, sizeof(key), "store.%s.address", nd->name);
		if ((ret = config_get_str(cfg, key, NULL, &nd->address)))
			break;
		if (!nd->address) {
			ret = error_set(GROVE_EINVAL, "%s: %s is not set", config_file(cfg), key);
			break;
		}
		snprintf(key, sizeof(key), "store.%s.storage", nd->name);
		if ((ret = config_get_str(cfg, key, nd->name, &nd->storage)))
			break;
		if ((ret = storage_name_validate(nd->storage))) {
			error_wrap(ret, "%s: %s", config_file(cfg), key);
			break;
		}
		snprintf(key, sizeof(key), "store.%s.secretFile", nd->name);
		if ((ret = config_get_path(cfg, key, NULL, &secret_file)))
			break;
		if (secret_file)
			ret = auth_secret_load(secret_file, &nd->secret);
		else
			nd->secret = xstrdup(c->secret);
		free(secret_file);
		if (!ret)
			ret = rpc_client_new(&nd->client, nd->address, nd->secret);
	}
out:
	config_strv_free(names, n);
	return ret;
}

/*
 * Where stores vote, by default: beside the first listen address, a socket
 * of this process alone (the same host, a port the kernel picks; a unix
 * path's sibling PATH.txn), served apart and drained last: the votes of
 * the writes still running while the router drains, or is upgraded, must
 * reach it, not the process that took its place (cluster_txn_listen).
 */
static char *txn_address_default(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	if (!strncmp(listen, "unix:", 5))
		return xasprintf("%s.txn", listen);
	return xasprintf("%.*s:0", colon ? (int)(colon - listen) : (int)strlen(listen), listen);
}

static int cluster_setup(struct cluster *c, struct config *cfg, struct rpc_server_opts *ropts, char ***listen,
			 size_t *nlisten, char **db_path)
{
	char *secret_file = NULL, *level = NULL, host[256] = "router";
	enum log_level lvl;
	int64_t v;
	int ret;

	gethostname(host, sizeof(host) - 1);
	if ((ret = config_get_str(cfg, "cluster.name", host, &c->router)) ||
	    (ret = config_get_str(cfg, "cluster.virtualStorage", "default", &c->virtual_storage)) ||
	    (ret = config_get_path(cfg, "cluster.secretFile", NULL, &secret_file)) ||
	    (ret = config_get_str(cfg, "cluster.database", "cluster.db", db_path)) ||
	    (ret = config_get_str(cfg, "cluster.transactionAddress", NULL, &c->txn_address)) ||
	    (ret = config_get_str(cfg, "log.level", "info", &level)) ||
	    (ret = config_get_all(cfg, "cluster.listen", listen, nlisten)))
		goto out;
	if (log_level_parse(level, &lvl)) {
		ret = error_set(GROVE_EINVAL, "%s: log.level must be debug, info, warn or error", config_file(cfg));
		goto out;
	}
	log_init("cluster", lvl, 2);
	if ((ret = storage_name_validate(c->virtual_storage))) {
		error_wrap(ret, "%s: cluster.virtualStorage", config_file(cfg));
		goto out;
	}
	if (!secret_file) {
		ret = error_set(GROVE_EINVAL, "%s: cluster.secretFile is not set", config_file(cfg));
		goto out;
	}
	if (!*nlisten) {
		ret = error_set(GROVE_EINVAL, "%s: no cluster.listen address", config_file(cfg));
		goto out;
	}
	/* A file name is taken from the config's folder; a URL as it is. */
	if (!skip_prefix(*db_path, "postgres://", NULL) && !skip_prefix(*db_path, "postgresql://", NULL)) {
		free(*db_path);
		*db_path = NULL;
		if ((ret = config_get_path(cfg, "cluster.database", "cluster.db", db_path)))
			goto out;
	}
	if (!c->txn_address)
		c->txn_address = txn_address_default((*listen)[0]);
	if (strlen(c->txn_address) > TXN_ADDRESS_MAX || strchr(c->txn_address, ';')) {
		ret = error_set(GROVE_EINVAL, "%s: cluster.transactionAddress is longer than %d bytes or holds ';'",
				config_file(cfg), TXN_ADDRESS_MAX);
		goto out;
	}
	if ((ret = auth_secret_load(secret_file, &c->secret)))
		goto out;
#define INT_OPT(key, field, def, min, max)                                  \
	do {                                                                \
		if ((ret = config_get_int(cfg, key, def, min, max, &v)))    \
			goto out;                                           \
		field = (int)v;                                             \
	} while (0)
	INT_OPT("cluster.replicationFactor", c->replication_factor, 3, 1, CLUSTER_NODES_MAX);
	INT_OPT("cluster.healthInterval", c->health_interval_ms, 1000, 50, 60000);
	INT_OPT("cluster.healthFailures", c->health_failures, 3, 1, 100);
	INT_OPT("cluster.voteTimeout", c->vote_timeout_ms, 30000, 100, 600000);
	INT_OPT("cluster.lagTimeout", c->lag_timeout_ms, 10000, 100, 600000);
	INT_OPT("cluster.primaryAnswerTimeout", c->primary_answer_ms, 3000, 100, 600000);
	INT_OPT("cluster.trailingWait", c->trailing_wait_ms, 50, 0, 600000);
	INT_OPT("cluster.lateWait", c->late_wait_ms, 2000, 0, 600000);
	if ((ret = config_get_int(cfg, "cluster.resumeBuffer", 64 << 20, 0, 1LL << 40, &v)))
		goto out;
	c->resume_budget.max_push = (long long)v;
	if ((ret = config_get_int(cfg, "cluster.resumeBufferTotal", 1LL << 30, 0, 1LL << 42, &v)))
		goto out;
	c->resume_budget.max_total = (long long)v;
	if ((ret = config_get_int(cfg, "cluster.maxPackIndex", 64 << 20, 0, 1LL << 32, &v)))
		goto out;
	c->max_pack_index = (long long)v;
	if ((ret = config_get_int(cfg, "cluster.packIndexTotal", 256 << 20, 0, 1LL << 40, &v)))
		goto out;
	c->pack_index_total = (long long)v;
	INT_OPT("cluster.workers", c->workers, 2, 1, 64);
	INT_OPT("cluster.jobAttempts", c->job_attempts, 10, 1, 1000);
	INT_OPT("cluster.jobLease", c->job_lease_s, 1800, 1, 7 * 86400);
	INT_OPT("cluster.reconcileInterval", c->reconcile_interval_s, 10, 1, 86400);
	INT_OPT("cluster.verifyInterval", c->verify_interval_s, 3600, 0, 30 * 86400);
	INT_OPT("cluster.threads", ropts->threads, 2, 1, 64);
	INT_OPT("cluster.maxCalls", ropts->max_calls, 1024, 1, 100000);
	if ((ret = config_get_int(cfg, "cluster.maxCallsPerUser", 128, 0, 100000, &v)))
		goto out;
	usercap_init(&c->users, (int)v);
#undef INT_OPT
	ret = load_nodes(c, cfg);
out:
	free(secret_file);
	free(level);
	return ret;
}

static void cluster_release(struct cluster *c)
{
	for (size_t i = 0; i < c->nnodes; i++) {
		rpc_client_free(c->nodes[i].client);
		free(c->nodes[i].name);
		free(c->nodes[i].address);
		free(c->nodes[i].storage);
		if (c->nodes[i].secret)
			explicit_bzero(c->nodes[i].secret, strlen(c->nodes[i].secret));
		free(c->nodes[i].secret);
	}
	free(c->nodes);
	usercap_release(&c->users);
	free(c->router);
	free(c->virtual_storage);
	if (c->secret)
		explicit_bzero(c->secret, strlen(c->secret));
	free(c->secret);
	free(c->txn_address);
}

/*
 * Without -c it is the operator's command line; `grove cluster --help` (and
 * bare `grove cluster`) are the daemon's, `grove cluster repo --help` a command's.
 */
static bool is_daemon_args(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help"))
		return true;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config") || !strncmp(argv[i], "--config=", 9))
			return true;
	return false;
}

/* The daemon's arguments: -1 to go on with *conf, else the exit code. */
static int parse_args(int argc, char **argv, const char **conf, bool *check)
{
	struct cli_parse p;
	int o;

	cli_parse_init(&p, &cluster_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1)
		if (o == 'c')
			*conf = optarg;
		else if (o == OPT_CHECK)
			*check = true;
	return cli_daemon_args_end(&p, *conf, false, *check);
}

/* The vote server (txn_address_default): its own listener, and the
 * address stores are told (the port the kernel picked; this process's own
 * unix socket). */
static int cluster_txn_listen(struct cluster *c, const struct rpc_server_opts *ropts, struct rpc_server **out)
{
	int ret, port = 0;
	size_t len = strlen(c->txn_address);

	if ((ret = rpc_server_new(out, ropts)))
		return ret;
	txn_register(*out, c);
	if ((ret = rpc_server_listen_port(*out, c->txn_address, &port)))
		return error_wrap(ret, "cluster.transactionAddress");
	if (len > 2 && !strcmp(c->txn_address + len - 2, ":0")) {
		char *a = xasprintf("%.*s:%d", (int)(len - 2), c->txn_address, port);
		free(c->txn_address);
		c->txn_address = a;
	} else {
		char *a = xstrdup(rpc_server_own_address(*out, c->txn_address));
		free(c->txn_address);
		c->txn_address = a;
	}
	if (strlen(c->txn_address) > TXN_ADDRESS_MAX)
		return error_set(GROVE_EINVAL, "cluster.transactionAddress %s is longer than %d bytes", c->txn_address,
				 TXN_ADDRESS_MAX);
	return 0;
}

/*
 * --check-config: what a start would read (the config, the secrets, the TLS
 * files, the stores, every limit), opening no database and serving
 * nothing, like sshd -t. 0 with a summary on stdout, 1 with what is wrong.
 */
/* The whole configuration, as a start and --check-config read it. */
static int cluster_load(struct cluster *c, const char *conf, struct config **cfg, struct rpc_server_opts *ropts,
			char ***listen, size_t *nlisten, char **db_path, int64_t *grace, char **metrics_listen)
{
	int ret;

	if ((ret = config_open(cfg, conf)) || (ret = rpc_tls_from_config(*cfg)) ||
	    (ret = cluster_setup(c, *cfg, ropts, listen, nlisten, db_path)) ||
	    (ret = config_get_int(*cfg, "cluster.shutdownGrace", 30, 0, 3600, grace)) ||
	    (ret = config_get_str(*cfg, "cluster.metricsListen", NULL, metrics_listen)))
		return ret;
	return config_check_unknown(*cfg);
}

/* What a running router was started with and a reload cannot change. */
struct cluster_run {
	struct cluster *c;
	const char *conf;
	struct rpc_server_opts ropts;
	char **listen;
	size_t nlisten;
	char *db_path, *metrics_listen;
	char *txn_address;    /* as configured (the bound one may differ: host:0) */
};

/* The settings of nc that take a restart, compared with the running ones:
 * addresses this process holds, its identity, its stores. */
static int cluster_reload_check(const struct cluster_run *run, const struct cluster *nc,
				const struct rpc_server_opts *nro, char **listen, size_t nlisten, const char *db_path,
				const char *metrics_listen)
{
	const struct cluster *c = run->c;
	const char *changed = NULL;

	if (!same_str(c->router, nc->router))
		changed = "cluster.name";
	else if (!same_str(c->virtual_storage, nc->virtual_storage))
		changed = "cluster.virtualStorage";
	else if (!same_str(run->txn_address, nc->txn_address))
		changed = "cluster.transactionAddress";
	else if (!same_str(c->secret, nc->secret))
		changed = "cluster.secretFile (the secret)";
	else if (!same_str(run->db_path, db_path))
		changed = "cluster.database";
	else if (!same_str(run->metrics_listen, metrics_listen))
		changed = "cluster.metricsListen";
	else if (c->workers != nc->workers)
		changed = "cluster.workers";
	else if (run->ropts.threads != nro->threads || run->ropts.max_calls != nro->max_calls)
		changed = "cluster.threads or cluster.maxCalls";
	else if (run->nlisten != nlisten)
		changed = "cluster.listen";
	for (size_t i = 0; !changed && i < nlisten; i++)
		if (strcmp(run->listen[i], listen[i]))
			changed = "cluster.listen";
	if (!changed && c->nnodes != nc->nnodes)
		changed = "the [store] sections";
	for (size_t i = 0; !changed && i < nc->nnodes; i++) {
		const struct node *a = &c->nodes[i], *b = &nc->nodes[i];
		if (strcmp(a->name, b->name) || strcmp(a->address, b->address) || strcmp(a->storage, b->storage) ||
		    !same_str(a->secret, b->secret))
			changed = "the [store] sections";
	}
	if (changed)
		return error_set(GROVE_EINVAL, "%s changed: that takes a restart (SIGUSR2 upgrades in place)", changed);
	return 0;
}

/* The tunables of nc, for the calls and jobs that come next. */
static void cluster_reload_apply(struct cluster *c, const struct cluster *nc)
{
	c->replication_factor = nc->replication_factor;
	c->health_interval_ms = nc->health_interval_ms;
	c->health_failures = nc->health_failures;
	c->vote_timeout_ms = nc->vote_timeout_ms;
	c->lag_timeout_ms = nc->lag_timeout_ms;
	c->primary_answer_ms = nc->primary_answer_ms;
	c->trailing_wait_ms = nc->trailing_wait_ms;
	c->late_wait_ms = nc->late_wait_ms;
	c->resume_budget.max_push = nc->resume_budget.max_push;
	c->resume_budget.max_total = nc->resume_budget.max_total;
	c->max_pack_index = nc->max_pack_index;
	c->pack_index_total = nc->pack_index_total;
	c->job_attempts = nc->job_attempts;
	c->job_lease_s = nc->job_lease_s;
	c->reconcile_interval_s = nc->reconcile_interval_s;
	c->verify_interval_s = nc->verify_interval_s;
	c->users.max = nc->users.max;
}

/*
 * SIGHUP (daemon.h): the configuration and its TLS files read again. Limits,
 * timeouts, the log level and the certificates change for what comes next;
 * a change of what this process holds (addresses, database, stores) is
 * refused, and everything in use stays.
 */
static int cluster_reload(void *arg)
{
	struct cluster_run *run = arg;
	struct cluster nc = { 0 };
	struct config *cfg = NULL;
	struct rpc_server_opts nro = { .role = "cluster" };
	char **listen = NULL, *db_path = NULL, *metrics_listen = NULL;
	enum log_level was = log_level_now();
	struct rpc_tls_saved *tls_was = rpc_tls_save();
	size_t nlisten = 0;
	int64_t grace;
	int ret;

	if (!(ret = cluster_load(&nc, run->conf, &cfg, &nro, &listen, &nlisten, &db_path, &grace, &metrics_listen)))
		ret = cluster_reload_check(run, &nc, &nro, listen, nlisten, db_path, metrics_listen);
	if (ret) {
		log_init("cluster", was, 2);   /* the new file's level is not taken either, */
		rpc_tls_restore(tls_was);      /* nor its TLS files */
	} else {
		cluster_reload_apply(run->c, &nc);
		rpc_tls_saved_free(tls_was);
	}
	config_strv_free(listen, nlisten);
	config_free(cfg);
	free(db_path);
	free(metrics_listen);
	cluster_release(&nc);
	return ret;
}

static int cluster_check_config(const char *conf)
{
	struct cluster c = { 0 };
	struct config *cfg = NULL;
	struct rpc_server_opts ropts = { .role = "cluster" };
	char **listen = NULL, *db_path = NULL, *metrics_listen = NULL;
	size_t nlisten = 0;
	int64_t grace;
	int ret;

	pthread_mutex_init(&c.mu, NULL);
	if ((ret = cluster_load(&c, conf, &cfg, &ropts, &listen, &nlisten, &db_path, &grace, &metrics_listen)))
		fprintf(stderr, "grove cluster: %s\n", error_msg());
	else
		printf("%s: good. router %s, listening on %s%s, %zu stores, database %s (not opened); TLS on TCP links: %s\n",
		       conf, c.router, listen[0], nlisten > 1 ? " and more" : "", c.nnodes,
		       /* A URL may hold a password: not on a terminal. */
		       strncmp(db_path, "postgres", 8) ? db_path : "PostgreSQL", rpc_tls_on() ? "on" : "off");
	config_strv_free(listen, nlisten);
	config_free(cfg);
	free(db_path);
	free(metrics_listen);
	cluster_release(&c);
	pthread_mutex_destroy(&c.mu);
	return ret ? 1 : 0;
}

int cluster_main(int argc, char **argv)
{
	struct cluster c = { 0 };
	struct config *cfg = NULL;
	struct rpc_server *srv = NULL, *tsrv = NULL;
	struct rpc_server_opts ropts = { .role = "cluster" };
	const char *conf = NULL;
	char **listen = NULL, *db_path = NULL, *metrics_listen = NULL;
	struct metricsd *metrics = NULL;
	size_t nlisten = 0;
	bool started = false, check = false;
	struct daemon d;
	struct cluster_run run = { 0 };
	int ret = 0;
	int64_t grace = 30;

	if (!is_daemon_args(argc, argv))
		return cluster_cli_main(argc, argv);
	if ((ret = parse_args(argc, argv, &conf, &check)) >= 0)
		return ret;
	if (check)
		return cluster_check_config(conf);
	ret = 0;
	daemon_init(&d, "cluster", NULL, argv);
	pthread_mutex_init(&c.mu, NULL);
	pthread_mutex_init(&c.db_mu, NULL);
	pthread_cond_init(&c.cv, NULL);

	if ((ret = cluster_load(&c, conf, &cfg, &ropts, &listen, &nlisten, &db_path, &grace, &metrics_listen)) ||
	    (ret = state_open(&c, db_path)) || (ret = txn_registry_new(&c.txns)) ||
	    (ret = late_registry_new(&c.lates)))
		goto out;
	snprintf(c.process, sizeof(c.process), "%.100s/%ld/%lld", c.router, (long)getpid(), (long long)wall_ms());
	run = (struct cluster_run){ &c, conf, ropts, listen, nlisten, db_path, metrics_listen, xstrdup(c.txn_address) };
	ropts.secret = c.secret;
	/* A client's SSHService stdin of RPC_STDIN_MAX a message is cut for a
	 * store that takes less (router.c); not on the transaction server. */
	struct rpc_server_opts main_opts = ropts;
	main_opts.stdin_max = true;
	if ((ret = rpc_server_new(&srv, &main_opts)))
		goto out;
	c.srv = srv;
	router_register(srv, &c);
	clustersvc_register(srv, &c);
	if ((ret = cluster_txn_listen(&c, &ropts, &tsrv)))
		goto out;
	for (size_t i = 0; i < nlisten; i++)
		if ((ret = rpc_server_listen(srv, listen[i])))
			goto out;
	started = true;
	if ((ret = health_start(&c)) || (ret = jobs_start(&c)) || (ret = rpc_server_start(tsrv)) ||
	    (ret = rpc_server_start(srv)))
		goto out;
	if (metrics_listen && (ret = metrics_start(&c, metrics_listen, &metrics)))
		goto out;
	log_info("cluster.started", "version=%s router=%s virtual_storage=%s listen=%s transaction_address=%s stores=%zu replication_factor=%d database=%s",
		 grove_version(),
		 c.router, c.virtual_storage, listen[0], c.txn_address, c.nnodes, c.replication_factor, sqldb_display_name(c.db));

	d.reload = cluster_reload;
	d.reload_arg = &run;
	daemon_serve_rpc(&d, (struct rpc_server *[]){ srv, tsrv }, 2, grace);
out:
	if (ret) {
		log_error("cluster.failed", "error=%s", error_msg());
		fprintf(stderr, "grove cluster: %s\n", error_msg());
	}
	metricsd_stop(metrics);
	free(metrics_listen);
	if (started) {
		health_stop(&c);
		jobs_stop(&c);
	}
	rpc_server_free(srv);
	rpc_server_free(tsrv);
	if (started && state_forget_process(&c))
		log_warn("cluster.state_failed", "error=%s", error_msg());
	state_close(&c);
	txn_registry_free(c.txns);
	late_registry_free(c.lates);
	free(run.txn_address);
	config_strv_free(listen, nlisten);
	config_free(cfg);
	free(db_path);
	cluster_release(&c);
	daemon_release(&d);
	return ret ? 1 : 0;
}
