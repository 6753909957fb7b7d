/*
 * grove cluster: the router in front of the stores (the role Praefect plays
 * for Gitaly). It serves the stores' own grove.v1 API, so a client cannot
 * tell it from one store, and keeps every repository on several stores:
 *
 *   router.c   every routable RPC, by the kind its proto declares: accessors
 *              to one healthy up-to-date replica, mutators to all of them at
 *              once with a vote, maintenance to each replica
 *   txn.c      TransactionService: the stores' votes on their ref updates;
 *              a write commits when the primary and a majority agree
 *   state.c    what the router knows, in SQLite: per repository a generation
 *              bumped by each committed write, the assigned replicas and the
 *              generation each holds, the primary; the replication jobs
 *   health.c   grpc.health.v1 checks of every store; reconciling passes that
 *              queue repairs and fill replicas up to the replication factor
 *   jobs.c     the replication queue's workers: repair by ReplicateRepository,
 *              delete, optimize, verify checksums
 *   admin.c    ClusterService, for `grove cluster status|repo|dataloss|…`
 *
 * A replica is up to date when it holds the repository's latest generation;
 * reads and writes go only to up-to-date replicas of healthy stores, so a
 * repository is never served from stale data.
 */
#ifndef GROVE_CLUSTER_H
#define GROVE_CLUSTER_H

#include "lib/common.h"
#include "cluster/resume.h"
#include "cluster/usercap.h"
#include "lib/rpc.h"

#include <pthread.h>

struct sqldb;

#define CLUSTER_NODES_MAX 64
#define CLUSTER_PATH_MAX 1024

struct node {
	char *name;
	char *address;
	char *storage;          /* the store's storage name */
	char *secret;
	struct rpc_client *client;
	/* Guarded by cluster.mu. */
	bool healthy;           /* as the routers agree (one router: as this one sees it) */
	bool seen_healthy;      /* this router's own last check */
	bool writable;          /* it says it can take writes (its disk is not full) */
	int failures;           /* consecutive failed checks */
	char last_error[256];
	int64_t last_check;     /* now_ms() when this router last checked it, 0: never */
	char version[64];       /* what it last said of itself (ServerInfo), "" until then */
	uint64_t disk_total, disk_free;
	int64_t info_at;        /* now_ms() of that answer */
	uint32_t routers_healthy, routers_total;
};

struct cluster_metrics {
	uint64_t elections;
	uint64_t votes_committed;
	uint64_t votes_aborted;
	uint64_t writes_refused;
	uint64_t verify_mismatches;
	uint64_t repairs;
	uint64_t late_caught_up;      /* late replicas that took their push themselves */
	uint64_t late_outdated;       /* late replicas left to a repair */
	uint64_t late_waits;          /* writes that waited for the last one's late replicas */
	uint64_t late_waits_gave_up;  /* the same, and lateWait ran out */
};

struct txn_registry;
struct late_registry;
struct late_write;

struct cluster {
	struct usercap users;     /* calls at once per user (cluster.maxCallsPerUser) */
	char *router;             /* this router's name, in the shared database */
	char process[160];        /* this process, in the shared database: name/pid/start */
	int64_t heartbeat_at;     /* when it last said it lives (under db_mu) */
	char *virtual_storage;
	char *secret;
	char *txn_address;        /* where stores vote: this router's address */
	/* Tunables: SIGHUP changes them while threads read them (main.c). */
	_Atomic int replication_factor;
	_Atomic int health_interval_ms;
	_Atomic int health_failures;
	_Atomic int vote_timeout_ms;
	_Atomic int lag_timeout_ms;       /* a secondary this far behind the push is dropped */
	_Atomic int trailing_wait_ms;     /* a push's replicas beyond its quorum are waited for this long */
	_Atomic int late_wait_ms;         /* a write waits this long for the late replicas of the last one */
	_Atomic int primary_answer_ms;    /* a push's primary silent this long (others answered) is skipped */
	struct resume_budget resume_budget;  /* what pushes keep to go on past a dying primary */
	_Atomic long long max_pack_index;    /* a primary's pack index held for its secondaries (packindex.c) */
	_Atomic long long pack_index_total;  /* all of them at once */
	int workers;
	_Atomic int job_attempts;
	_Atomic int job_lease_s;          /* a job's router has this long before another takes it up */
	_Atomic int reconcile_interval_s;
	_Atomic int verify_interval_s;
	char *conf_path;          /* read again on SIGHUP */
	struct node *nodes;
	size_t nnodes;

	pthread_mutex_t db_mu;    /* one database handle, one user at a time */
	struct sqldb *db;

	pthread_mutex_t mu;       /* node health, metrics, the worker wake-up */
	pthread_cond_t cv;
	struct cluster_metrics m;
	unsigned rr;              /* spreads reads */
	bool stopping;

	struct txn_registry *txns;
	struct late_registry *lates;   /* writes whose late replicas still run (late.c) */
	struct rpc_server *srv;
};

/* ---- nodes ---- */

struct node *cluster_node(struct cluster *c, const char *name);
/*
 * The nodes' indexes in a stable order for a path (rendezvous hashing): the
 * same stores, and the same first choice of primary, for the same
 * repository on every router; spread evenly across repositories.
 */
void cluster_node_order(struct cluster *c, const char *path, size_t *order);
bool cluster_node_healthy(struct cluster *c, const struct node *n);
/* Records that a call to n failed as if its store were gone: checked at once. */
void cluster_node_suspect(struct cluster *c, struct node *n);
void cluster_wake(struct cluster *c);

/* ---- state (state.c) ---- */

struct replica {
	struct node *node;       /* NULL: a node no longer configured */
	char name[65];
	int64_t generation;      /* -1: no copy */
	bool assigned;
};

struct repo_state {
	char path[CLUSTER_PATH_MAX + 1];
	bool exists;             /* known to the router */
	int64_t generation;
	char primary[65];
	int replication_factor;
	struct replica replicas[CLUSTER_NODES_MAX];
	size_t nreplicas;
};

/* A SQLite file, or "postgres://…" for several routers sharing one database. */
int state_open(struct cluster *c, const char *name);
void state_close(struct cluster *c);
/* Reads a repository's metadata; exists is false when the router never saw it. */
int state_repo_get(struct cluster *c, const char *path, struct repo_state *out);
/* The replica of r on the store called name; NULL: none. */
struct replica *repo_replica(struct repo_state *r, const char *name);
/*
 * Before a write: registers the repository if it is new (the replication
 * factor and the assigned nodes, healthy ones first, spread by a hash of
 * the path, at generation -1) and reads it; records the write as in flight
 * (its id into *write_id) until state_write_end, so that a verification
 * compares no replicas while a write runs on any router.
 */
int state_write_begin(struct cluster *c, const char *path, struct repo_state *out, int64_t *write_id);
int state_write_end(struct cluster *c, int64_t write_id);
/* The write's late replicas (late.c), said to the other router processes
 * until it ends or until_ms (wall clock). */
int state_write_late(struct cluster *c, int64_t write_id, const struct late_write *w, int64_t until_ms);
/* How many replicas of path (on store node only, unless NULL) are late in
 * writes of other live router processes. */
int state_late_elsewhere(struct cluster *c, const char *path, const char *node, int64_t *n);

struct write_activity {
	int64_t generation;
	int64_t begun;           /* writes ever begun on the repository */
	int64_t in_flight;       /* writes running now, on live routers */
};
int state_write_activity(struct cluster *c, const char *path, struct write_activity *out);
/*
 * A verification's verdict: the replicas of names become outdated (at
 * seen->generation - 1), if nothing moved since seen (no write began, none
 * runs, the generation stands) and they still hold that generation. 1 when
 * something moved: nothing is marked.
 */
int state_verify_mark(struct cluster *c, const char *path, const struct write_activity *seen, char names[][65],
		      size_t n);
/* A replica's checksum as a verification found it. */
struct replica_check {
	char node[65];
	char checksum[65];
	bool matches;            /* the same as the primary's */
	int64_t generation;      /* the repository's, then */
	int64_t checked_at;      /* wall clock, ms */
};
/* Keeps what a conclusive verification found (each node's row replaced). */
int state_checksums_record(struct cluster *c, const char *path, const struct replica_check *checks, size_t n);
/* What the last verifications found for path's replicas, by node: up to max into out. */
int state_checksums_get(struct cluster *c, const char *path, struct replica_check *out, size_t max, size_t *n);
int state_repo_delete(struct cluster *c, const char *path);
int state_set_primary(struct cluster *c, const char *path, const char *node);
/*
 * After a write: the repository takes the next generation (into *new_gen)
 * and each node of nodes (the replicas that took the write) holds it, if it
 * held the one before: with writes running at once, a replica that missed
 * one of them stays behind and gets repaired.
 */
int state_write_done(struct cluster *c, const char *path, char *const *nodes, size_t n, int64_t *new_gen);
/*
 * A replica that took write gen after the write was recorded (it trailed:
 * router.c) holds gen now, if it held the one before; *moved says whether
 * it did.
 */
int state_replica_caught_up(struct cluster *c, const char *path, const char *node, int64_t gen, bool *moved);
/* accept-dataloss: node's copy becomes generation gen, and the primary. */
int state_force_generation(struct cluster *c, const char *path, const char *node, int64_t gen);
/* Raises a replica's generation to gen (never lowers it). */
int state_replica_set(struct cluster *c, const char *path, const char *node, int64_t gen, bool only_raise);
/* Assigns or unassigns a node to a repository (keeping its copy's generation). */
int state_replica_assign(struct cluster *c, const char *path, const char *node, bool assigned);
int state_replica_forget(struct cluster *c, const char *path, const char *node);
int state_set_replication_factor(struct cluster *c, const char *path, int rf);
/* Every repository path, for reconciling passes: calls fn for each. */
int state_repo_each(struct cluster *c, int (*fn)(struct cluster *c, const char *path, void *ctx), void *ctx);
/* Records a health check, and that this process lives (at most once a second). */
int state_record_health(struct cluster *c, struct node *n, bool healthy);
/* At a clean exit: this process's writes are over, and it is gone. */
int state_forget_process(struct cluster *c);
/* How many routers (seen in the last 10 s) say n is healthy, of how many. */
int state_health_votes(struct cluster *c, const char *node, uint32_t *healthy, uint32_t *total);

/* Replication jobs. */
enum job_kind { JOB_UPDATE, JOB_DELETE, JOB_OPTIMIZE, JOB_VERIFY };

struct job {
	int64_t id;
	enum job_kind kind;
	char path[CLUSTER_PATH_MAX + 1];
	char target[65];
	int attempts;
};

const char *job_kind_name(enum job_kind k);
/* Queues a job unless the same one waits already. */
int state_job_add(struct cluster *c, enum job_kind kind, const char *path, const char *target);
/* Leases the next runnable job whose target is healthy: 1 with *out, 0 none. */
int state_job_lease(struct cluster *c, struct job *out, int64_t lease_ms);
/*
 * Extends the lease of job id, still held by this router, to now + lease_ms:
 * a job that runs longer than jobLease is not taken up by another router
 * meanwhile. A lease lost already (another router took the job) stays lost.
 */
int state_job_renew(struct cluster *c, int64_t id, int64_t lease_ms);
int state_job_done(struct cluster *c, const struct job *j);
int state_job_failed(struct cluster *c, const struct job *j, const char *error);
int state_job_counts(struct cluster *c, uint64_t *ready, uint64_t *running, uint64_t *failed, uint64_t *dead);
/* The same per store (indexed as c->nodes): its own replication queue. */
int state_node_jobs(struct cluster *c, uint64_t *ready, uint64_t *running, uint64_t *failed);

/* ---- the pieces ---- */

/* Up to date: holds the latest generation, on a healthy store. */
bool replica_up_to_date(struct cluster *c, const struct repo_state *r, const struct replica *rep);
/* Up to date, and its store can take writes (its disk is not full). */
bool replica_writable(struct cluster *c, const struct repo_state *r, const struct replica *rep);
/*
 * The repository's primary among its healthy up-to-date replicas (for a
 * write: among those that can take writes): the current one if it still
 * qualifies, else a new one, elected and recorded. NULL with an error when
 * none qualifies.
 */
struct node *cluster_primary(struct cluster *c, struct repo_state *r, bool for_write);
/* The same, never skip (a store that just failed to answer a write). */
struct node *cluster_primary_but(struct cluster *c, struct repo_state *r, bool for_write, const struct node *skip);

void router_register(struct rpc_server *srv, struct cluster *c);

int txn_registry_new(struct txn_registry **out);
void txn_registry_free(struct txn_registry *reg);
void txn_register(struct rpc_server *srv, struct cluster *c);

/* A write answered before all its replicas ended (late.c): registered
 * until they did, so that the next write to path waits for them. */
struct late_write {
	char path[CLUSTER_PATH_MAX + 1];
	const struct node *nodes[CLUSTER_NODES_MAX];   /* the late replicas' stores */
	size_t nnodes;
	struct late_write *next;
};
int late_registry_new(struct late_registry **out);
void late_registry_free(struct late_registry *reg);
void late_begin(struct cluster *c, struct late_write *w, const char *path);
void late_end(struct cluster *c, struct late_write *w);
/* Waits up to max_ms while a write to path has late replicas: -1 if none
 * had, else the ms waited; *still: some were running yet when it gave up. */
int64_t late_wait(struct cluster *c, const char *path, int max_ms, bool *still);
/* The same for other router processes' writes to path, by the database. */
int64_t late_wait_elsewhere(struct cluster *c, const char *path, int max_ms, bool *still);
/* Whether node's replica of path is late: still ending a push of this router. */
bool late_running(struct cluster *c, const char *path, const struct node *node);

struct txn;
/* A transaction among the nodes of voters, voters[0] being the primary. */
struct txn *txn_begin(struct cluster *c, char *const *voters, size_t n, int quorum);
uint64_t txn_id(const struct txn *t);
/* The node's stream ended (ok: with success); a primary that ends unvoted aborts what is open. */
void txn_node_done(struct cluster *c, struct txn *t, const char *node, bool ok);
/* Whether node voted with the majority in every round; *rounds: rounds committed. */
bool txn_node_agreed(struct cluster *c, struct txn *t, const char *node, int *rounds);
void txn_end(struct cluster *c, struct txn *t);

/* Starts (and stops, joining them) the health checkers and the reconciler. */
int health_start(struct cluster *c);
void health_stop(struct cluster *c);
/* Starts the replication workers; jobs_stop joins them (after c->stopping is set). */
int jobs_start(struct cluster *c);
void jobs_stop(struct cluster *c);
/* Compares the checksums of a repository's up-to-date replicas; marks and repairs those that differ. */
int jobs_verify(struct cluster *c, const char *path, void *resp /* Grove__V1__VerifyRepositoryResponse or NULL */);
/* ClusterService (clustersvc.c): the operator's view of the router, for `grove cluster …`. */
void clustersvc_register(struct rpc_server *srv, struct cluster *c);
/* Assigned replicas behind their repository, and by how many generations in all. */
int state_lag(struct cluster *c, uint64_t *outdated, uint64_t *behind);
/* GET /metrics on listen ("127.0.0.1:9236"); stop with metricsd_stop. */
struct metricsd;
int metrics_start(struct cluster *c, const char *listen, struct metricsd **out);

/* Writes need a majority of the assigned replicas. */
static inline int quorum_of(int assigned)
{
	return assigned / 2 + 1;
}

#endif
