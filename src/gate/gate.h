/*
 * grove gate: the SSH front door. Processes:
 *
 *   supervisor ─┬─ api process: gRPC HookService (push policy, deployments)
 *               │  and the admin HTTP API; the only process with gRPC threads
 *               └─ itself: accepts SSH connections and forks one child per
 *                  connection (a crash in one session touches no other); a
 *                  child authenticates, checks the command and the user's
 *                  access, and pumps bytes between the SSH channel and the
 *                  app's backend: git run locally (legacy route) or a
 *                  store/cluster over gRPC (cluster route).
 *
 * The acceptor never calls gRPC, so each forked child starts gRPC afresh.
 */
#ifndef GROVE_GATE_H
#define GROVE_GATE_H

#include "lib/common.h"
#include "lib/strvec.h"

#define GATE_APP_NAME_MAX 63

struct cidr;
struct authz;

struct gate_config {
	char *conf_path;
	char *data_dir;
	char *listen;              /* SSH: "127.0.0.1:2222" */
	char *db_path;
	char *host_key_dir;
	char *secret;
	char *hook_listen;         /* gRPC HookService the stores call back */
	char *admin_listen;        /* admin HTTP API */
	char *public_listen;       /* health, metrics, archives without the API (gate.publicListen), or NULL */
	char *http_listen;         /* git's smart HTTP (gate.httpListen), or NULL: no HTTP door */
	char *http_tls_cert;       /* its certificate chain and key (PEM); NULL: plain HTTP (TLS ends in front) */
	char *http_tls_key;
	int64_t http_max_request;  /* bytes of a fetch's request body, once decoded (gate.httpMaxRequestSize) */
	int http_keepalive;        /* seconds an HTTP connection may wait for its next request (gate.httpKeepAlive) */
	char *admin_token;
	char *legacy_dir;          /* bare repositories <app>.git */
	char *cluster_address;     /* a store's or a cluster's gRPC address */
	char *cluster_storage;     /* the storage name there */
	struct strvec fsck_ignore; /* fsck ids the legacy route lets through (gate.fsckIgnore) */
	char *deploy_branch;       /* default for new apps */
	char *deploy_command;      /* run when the deploy branch moves; NULL: none */
	char *deploy_webhook;      /* or POSTed to when it moves; NULL: none */
	char *webhook_secret;      /* signs webhook bodies; NULL: unsigned */
	int webhook_timeout;       /* seconds a webhook deployment may take */
	char *archive_base;        /* where builders reach the admin port: "http://host:port" */
	int archive_ttl;           /* seconds an archive URL stays valid */
	bool other_branches;       /* accept pushes to other branches */
	struct strvec ref_namespaces; /* where a push may put refs (gate.refNamespaces, refpolicy.h) */
	bool pace_output;          /* send ahead of the client only as far as it keeps up (pace.h) */
	int canary_percent;
	int login_grace;           /* seconds to authenticate */
	int max_startups;          /* unauthenticated connections at once */
	int startups_begin;        /* from this many, random early drop (sshd's MaxStartups start:rate:full) */
	int startups_rate;         /* % dropped at startups_begin, rising to 100 at max_startups */
	int max_connections;
	int max_per_addr;          /* SSH connections from one client address (gate.maxConnectionsPerAddress) */
	int max_ops_per_app;       /* git commands at once on one app (gate.maxOpsPerApp) */
	int max_ops_per_user;      /* git commands at once of one user (gate.maxOpsPerUser) */
	int max_conns_per_user;    /* connections at once of one user, from their first command (gate.maxConnectionsPerUser) */
	int ops_queue_wait;        /* seconds a command waits for one of them (gate.opsQueueWait) */
	int pushes_per_minute;     /* per user (gate.pushesPerMinute), 0: no limit */
	int64_t max_ref_list;      /* bytes of a push's ref list and options (gate.maxRefListSize) */
	int admin_max_conns;       /* admin HTTP connections at once (gate.adminMaxConnections) */
	int admin_max_per_addr;    /* of them from one address (gate.adminMaxPerAddress) */
	int admin_timeout;         /* seconds an admin connection may stay silent (gate.adminTimeout) */
	int admin_request_timeout; /* seconds to send a whole admin request (gate.adminRequestTimeout) */
	int idle_timeout;          /* seconds without traffic */
	int shutdown_grace;        /* seconds SIGTERM waits for sessions */
	int keepalive;             /* seconds between deploy keep-alive lines */
	int lock_wait;             /* seconds a push waits for a locked app */
	int max_push_mb;           /* the largest push of an app without its own limit; 0: none */
	int keepalive_s;           /* TCP keepalive: seconds of silence before probes; 0: off */
	int keepalive_count;       /* unanswered probes before the connection is dead */
	int client_alive_s;        /* SSH keepalive@openssh.com after this much silence; 0: off */
	int client_alive_count;    /* unanswered ones before the session ends */
	int housekeeping;          /* seconds between passes that optimize every repository; 0: off */
	char *self_exe;
	char *hooks_dir;           /* core.hooksPath for legacy pushes */
	char *auth_url;            /* external authorization API; NULL: the gate's own tables */
	char *auth_token;          /* bearer token for it; NULL: none */
	int auth_timeout;          /* seconds per request to it */
	int auth_cache_ttl;        /* seconds an answer is reused; 0: never */
	int auth_cache_entries;
	char *openssh_user;        /* the account whose sshd logins are Grove's (openssh.user) */
	char *openssh_log;         /* where grove shell and authorized-keys log (openssh.logFile) */
	struct cidr *proxy_from;   /* load balancers that send (and must send) a PROXY header */
	size_t nproxy_from;
};

int gate_config_load(struct gate_config *cfg, const char *path);
void gate_config_release(struct gate_config *cfg);

/* App names: [a-z0-9][a-z0-9-]{0,62}, from "/name.git", "name.git" or "name". */
int gate_app_from_path(const char *path, char out[GATE_APP_NAME_MAX + 1]);

/* Set by the gate before it forks when auth.url is configured, else NULL. */
extern struct authz *gate_authz;
/* Sets gate_authz when cfg has auth.url (its cache is shared with the
 * processes forked after). */
int gate_authz_open(const struct gate_config *cfg);
/*
 * gate_metrics and gate_ratelimit, in files under dataDir/run: made anew by
 * the gate (create), mapped by each `grove shell`, so that pushes through
 * sshd count in the gate's /metrics and share its rate limits. Either
 * stays NULL when it cannot be mapped (logged): that one is then off.
 */
void gate_shared_open(const struct gate_config *cfg, bool create);

/* One SSH connection, in its forked child; returns the process exit code. */
struct ssh_bind_struct;
int session_run(const struct gate_config *cfg, struct ssh_bind_struct *bind, int fd, const char *peer, int auth_fd);

/* One smart HTTP connection, in its forked child (httpdoor.c); tls NULL: plain. */
struct http_tls;
int http_session_run(const struct gate_config *cfg, const struct http_tls *tls, int fd, const char *peer, int auth_fd);

/* The api process: HookService and admin API until SIGTERM. The acceptor
 * sends it GATE_SIG_DRAINING when it stops accepting: /ready then says 503
 * while the hooks of running pushes are still served. */
#define GATE_SIG_DRAINING SIGUSR1
int api_run(const struct gate_config *cfg);

int gate_main(int argc, char **argv);

#endif
