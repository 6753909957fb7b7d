/*
 * Health of the stores and the reconciling passes.
 *
 * One checker thread per store calls grpc.health.v1.Health/Check every
 * healthInterval. A failed check is confirmed by quick re-checks (200 ms
 * apart) until healthFailures in a row mark the store down, so a dead store
 * is out of the write set in about a second and a half, while one lost
 * packet does not trigger an election. A call that finds a store gone
 * (cluster_node_suspect) starts the re-checks at once.
 *
 * Each router records what it sees in the database; a store counts as down
 * only when a majority of the routers that reported in the last 10 s say
 * so, so that one router cut off from a store does not fail it over for all.
 *
 * The reconciler walks every repository every reconcileInterval: replicas
 * behind the repository's generation get a repair job (also those whose job
 * was lost with a crashed router), repositories with fewer assigned replicas
 * than their replication factor get more (a store added to the config is
 * filled), copies no longer assigned are deleted; every verifyInterval it
 * queues a checksum verification of each repository.
 */
#include "cluster/cluster.h"
#include "lib/error.h"
#include "lib/log.h"
#include "grove/v1/server.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <time.h>

struct checker {
	struct cluster *c;
	struct node *n;
	pthread_t tid;
};

static struct checker *checkers;
static size_t ncheckers;
static pthread_t reconciler;

static pthread_cond_t check_now = PTHREAD_COND_INITIALIZER;

struct node *cluster_node(struct cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nnodes; i++)
		if (!strcmp(c->nodes[i].name, name))
			return &c->nodes[i];
	return NULL;
}

bool cluster_node_healthy(struct cluster *c, const struct node *n)
{
	pthread_mutex_lock(&c->mu);
	bool h = n->healthy;
	pthread_mutex_unlock(&c->mu);
	return h;
}

void cluster_node_suspect(struct cluster *c, struct node *n)
{
	pthread_mutex_lock(&c->mu);
	if (n->failures == 0)
		n->failures = 1;
	pthread_cond_broadcast(&check_now);
	pthread_mutex_unlock(&c->mu);
}

void cluster_wake(struct cluster *c)
{
	pthread_mutex_lock(&c->mu);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static int check_once(struct cluster *c, struct node *n)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	int ret = rpc_unary(n->client, "/grpc.health.v1.Health/Check", &req.base,
			    &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&resp,
			    MAX(500, MIN(c->health_interval_ms, 2000)));
	if (!ret && resp->status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
		ret = error_set(GROVE_EUNAVAIL, "the store reports it is not serving (draining?)");
	FREE_MSG(resp);
	return ret;
}

/* What a healthy store says of itself (version, disk), asked every
 * INFO_EVERY_MS: the status shows it; a store that does not answer is
 * just shown without it. */
#define INFO_EVERY_MS 10000

static void ask_info(struct cluster *c, struct node *n)
{
	Grove__V1__ServerInfoRequest req = GROVE__V1__SERVER_INFO_REQUEST__INIT;
	Grove__V1__ServerInfoResponse *resp = NULL;
	int64_t now = now_ms();

	pthread_mutex_lock(&c->mu);
	bool due = !n->info_at || now - n->info_at >= INFO_EVERY_MS;
	pthread_mutex_unlock(&c->mu);
	if (!due)
		return;
	/* An older store does not know the call: asked again only when due. */
	bool ok = !rpc_unary(n->client, "/grove.v1.ServerService/ServerInfo", &req.base,
			     &grove__v1__server_info_response__descriptor, (ProtobufCMessage **)&resp,
			     MAX(500, MIN(c->health_interval_ms, 2000)));
	pthread_mutex_lock(&c->mu);
	if (ok) {
		strlcpy_(n->version, resp->version ? resp->version : "", sizeof(n->version));
		n->disk_total = resp->disk_total;
		n->disk_free = resp->disk_free;
	}
	n->info_at = now;
	pthread_mutex_unlock(&c->mu);
	FREE_MSG(resp);
}

/*
 * Whether a healthy store can take writes: its own answer for the
 * "grove.v1.writes" health service (NOT_SERVING when its disk is below
 * store.minFreeSpace). A store that does not know the service, or a check
 * that fails, counts as writable: the write then fails on its own merits.
 */
static bool check_writable(struct cluster *c, struct node *n)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *resp = NULL;
	bool w = true;
	req.service = RPC_HEALTH_WRITES;
	if (!rpc_unary(n->client, "/grpc.health.v1.Health/Check", &req.base,
		       &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&resp,
		       MAX(500, MIN(c->health_interval_ms, 2000))))
		w = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	FREE_MSG(resp);
	return w;
}

static void wait_ms(struct cluster *c, int ms)
{
	struct timespec ts;
	deadline_after_ms(&ts, CLOCK_REALTIME, ms);
	pthread_cond_timedwait(&check_now, &c->mu, &ts);
}

static void *checker_main(void *arg)
{
	struct checker *ck = arg;
	struct cluster *c = ck->c;
	struct node *n = ck->n;

	for (;;) {
		int ret = check_once(c, n);
		bool writable = !ret && check_writable(c, n);
		if (!ret)
			ask_info(c, n);
		uint32_t hv = 0, tv = 0;
		bool seen;

		pthread_mutex_lock(&c->mu);
		n->last_check = now_ms();
		if (!ret && writable != n->writable) {
			if (writable)
				log_info("cluster.node_writable", "node=%s address=%s", n->name, n->address);
			else
				log_warn("cluster.node_read_only", "node=%s address=%s reason=%s", n->name, n->address,
					 "its disk is below store.minFreeSpace: it sits writes out until it has room");
			n->writable = writable;
		}
		if (!ret) {
			n->failures = 0;
			n->seen_healthy = true;
			n->last_error[0] = '\0';
		} else {
			n->failures++;
			snprintf(n->last_error, sizeof(n->last_error), "%s", error_msg());
			if (n->failures >= c->health_failures)
				n->seen_healthy = false;
		}
		seen = n->seen_healthy;
		pthread_mutex_unlock(&c->mu);

		state_record_health(c, n, seen);
		if (state_health_votes(c, n->name, &hv, &tv) || tv == 0) {
			hv = seen;
			tv = 1;
		}
		pthread_mutex_lock(&c->mu);
		bool was = n->healthy;
		/* Down only when a majority of the routers say so. */
		n->healthy = hv * 2 >= tv && (seen || tv > 1);
		n->routers_healthy = hv;
		n->routers_total = tv;
		bool now = n->healthy;
		if (now != was) {
			if (now)
				log_info("cluster.node_up", "node=%s address=%s routers_healthy=%u/%u", n->name, n->address, hv, tv);
			else
				log_warn("cluster.node_down", "node=%s address=%s error=%s routers_healthy=%u/%u", n->name,
					 n->address, n->last_error, hv, tv);
			pthread_cond_broadcast(&c->cv);   /* jobs waiting for this store */
		}
		if (c->stopping) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		wait_ms(c, n->failures > 0 && n->failures < c->health_failures ? 200 : c->health_interval_ms);
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
	}
	return NULL;
}

/* ---- reconciling ---- */

/* Whether rep is still ending a push answered without it, through this
 * router or (by the database) another: about to catch up by itself. */
static bool replica_late(struct cluster *c, const char *path, const struct replica *rep)
{
	int64_t n = 0;
	if (late_running(c, path, rep->node))
		return true;
	if (state_late_elsewhere(c, path, rep->name, &n))
		return false;   /* not known: repaired, as before */
	return n > 0;
}

static int reconcile_repo(struct cluster *c, const char *path, void *ctx)
{
	bool verify = *(bool *)ctx;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	int assigned = 0, ret;

	if ((ret = state_repo_get(c, path, r)) || !r->exists || r->generation < 0)
		goto out;
	for (size_t i = 0; i < r->nreplicas; i++)
		assigned += r->replicas[i].assigned && r->replicas[i].node;
	if (assigned < r->replication_factor && assigned < (int)c->nnodes) {
		log_info("cluster.fill", "repo=%s assigned=%d replication_factor=%d", path, assigned, r->replication_factor);
		if ((ret = state_set_replication_factor(c, path, r->replication_factor)) ||
		    (ret = state_repo_get(c, path, r)))
			goto out;
	}
	for (size_t i = 0; i < r->nreplicas; i++) {
		struct replica *rep = &r->replicas[i];
		if (!rep->node)
			continue;
		/* A late replica is not repaired meanwhile. */
		if (rep->assigned && rep->generation < r->generation && !replica_late(c, path, rep))
			state_job_add(c, JOB_UPDATE, path, rep->name);
		else if (!rep->assigned && rep->generation >= 0)
			state_job_add(c, JOB_DELETE, path, rep->name);
	}
	if (verify)
		state_job_add(c, JOB_VERIFY, path, "*");
out:
	free(r);
	return ret;
}

static void *reconciler_main(void *arg)
{
	struct cluster *c = arg;
	int64_t last_verify = now_ms();

	for (;;) {
		pthread_mutex_lock(&c->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->reconcile_interval_s;
		while (!c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
			;
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		bool verify = c->verify_interval_s > 0 && now_ms() - last_verify >= (int64_t)c->verify_interval_s * 1000;
		if (verify)
			last_verify = now_ms();
		if (state_repo_each(c, reconcile_repo, &verify))
			log_warn("cluster.reconcile_failed", "error=%s", error_msg());
	}
	return NULL;
}

int health_start(struct cluster *c)
{
	checkers = xcalloc(c->nnodes, sizeof(*checkers));
	for (size_t i = 0; i < c->nnodes; i++) {
		struct checker *ck = &checkers[i];
		ck->c = c;
		ck->n = &c->nodes[i];
		/* The first check before serving: no write goes to a store that
		 * is down at start. */
		bool ok = !check_once(c, &c->nodes[i]);
		c->nodes[i].healthy = c->nodes[i].seen_healthy = ok;
		c->nodes[i].writable = ok && check_writable(c, &c->nodes[i]);
		if (!ok) {
			c->nodes[i].failures = c->health_failures;
			snprintf(c->nodes[i].last_error, sizeof(c->nodes[i].last_error), "%s", error_msg());
			log_warn("cluster.node_down", "node=%s address=%s error=%s", c->nodes[i].name, c->nodes[i].address,
				 c->nodes[i].last_error);
		}
		if (pthread_create(&ck->tid, NULL, checker_main, ck))
			return error_set(GROVE_EINTERNAL, "cannot start a health checker");
		ncheckers++;
	}
	if (pthread_create(&reconciler, NULL, reconciler_main, c))
		return error_set(GROVE_EINTERNAL, "cannot start the reconciler");
	ncheckers |= (size_t)1 << 62;   /* the reconciler runs too */
	return 0;
}

void health_stop(struct cluster *c)
{
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_cond_broadcast(&check_now);
	pthread_mutex_unlock(&c->mu);
	if (ncheckers & ((size_t)1 << 62))
		pthread_join(reconciler, NULL);
	ncheckers &= ~((size_t)1 << 62);
	for (size_t i = 0; i < ncheckers; i++)
		pthread_join(checkers[i].tid, NULL);
	free(checkers);
	checkers = NULL;
	ncheckers = 0;
}
