/*
 * The gate's Prometheus metrics. Sessions run in forked processes and
 * deployments in the api process, so the counters live in one shared,
 * anonymous memory mapping made before the first fork: every process adds
 * with atomic operations, and the admin API renders them at /metrics.
 */
#ifndef GROVE_GATE_METRICS_H
#define GROVE_GATE_METRICS_H

#include "lib/strbuf.h"

#include <stdatomic.h>

#define METRICS_BUCKETS 12

struct histogram {
	atomic_ullong buckets[METRICS_BUCKETS];   /* cumulative at render time */
	atomic_ullong count;
	atomic_ullong sum_ms;
};

enum metrics_service { MS_UPLOAD_PACK, MS_RECEIVE_PACK, MS_UPLOAD_ARCHIVE, MS_NONE, MS_COUNT };
/* ok; rejected: git ran, and refused one ref update or more (the push
 * policy, a lost race: "ng" in its report); failed: an error; refused: the
 * gate ran no git (no access, locked, …). */
enum metrics_result { MR_OK, MR_REJECTED, MR_FAILED, MR_REFUSED, MR_COUNT };
/* Why a push (or a part of it) was refused, one counter each. */
enum metrics_refusal {
	RR_ACCESS,        /* no write access (or no such app) */
	RR_LOCKED,        /* the app stayed locked for gate.lockWait */
	RR_TOO_LARGE,     /* over the app's max push size */
	RR_BRANCH,        /* another branch with gate.otherBranches = false */
	RR_NAMESPACE,     /* a ref outside gate.refNamespaces */
	RR_REF_NAME,      /* an invalid branch name */
	RR_DEPLOY_DELETE, /* deleting the deploy branch */
	RR_APP_GONE,      /* the app was deleted meanwhile */
	RR_LOST_RACE,     /* another push moved the ref first */
	RR_BUSY,          /* gate.maxOpsPerApp commands ran on the app for gate.opsQueueWait */
	RR_RATE,          /* the user's gate.pushesPerMinute was used up */
	RR_USER_BUSY,     /* gate.maxOpsPerUser commands of the user ran for gate.opsQueueWait */
	RR_USER_CONNS,    /* the user had gate.maxConnectionsPerUser connections open */
	RR_COUNT
};
/* Answers of the external authorization API (auth.url). */
enum metrics_authz { MA_ALLOWED, MA_DENIED, MA_UNAVAILABLE, MA_CACHED, MA_COUNT };

struct gate_metrics {
	atomic_llong sessions_in_flight;
	atomic_ullong sessions[MS_COUNT][MR_COUNT];
	atomic_ullong bytes_pushed;
	atomic_ullong bytes_fetched;
	atomic_ullong auth_failures;
	atomic_ullong deploys_succeeded;
	atomic_ullong deploys_failed;
	atomic_ullong authz[MA_COUNT];
	atomic_ullong refusals[RR_COUNT];
	struct histogram push_seconds;
	struct histogram queue_seconds;   /* waits for a slot of gate.maxOpsPerApp */
	struct histogram deploy_seconds;
};

/*
 * The shared region (NULL if it cannot be mapped: metrics are then off):
 * the gate makes it (create) in a file that `grove shell` processes, which
 * sshd starts and no gate forks, map too (fs_map_shared).
 */
struct gate_metrics *metrics_create(const char *path, bool create);
void metrics_observe(struct histogram *h, int64_t ms);
/* Counts one refusal (NULL-safe: nothing without metrics). */
void metrics_refusal(enum metrics_refusal why);
void metrics_render(const struct gate_metrics *m, struct strbuf *out);

/* Set once by the gate before it forks; NULL-safe helpers use it. */
extern struct gate_metrics *gate_metrics;

#endif
