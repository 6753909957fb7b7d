/*
 * The replication queue's workers. Each leases the next job whose store is
 * healthy (state.c), runs it, and completes it or records the failure with a
 * backoff; after jobAttempts failures a job is dead and shows in
 * `grove cluster status`. Leases expire, so jobs of a router that died are
 * taken up by another (or by this one after a restart). While a job runs, a
 * renewer thread extends its lease every jobLease/3, so a long repair is not
 * started a second time by another router while this one still runs it.
 *
 * A repair copies from an up-to-date replica with the target store's
 * ReplicateRepository and then records the generation the source held
 * *before* the copy began: the copy holds at least that, so the router never
 * believes a replica is newer than it is.
 */
#include "cluster/cluster.h"
#include "lib/error.h"
#include "lib/log.h"
#include "grove/v1/cluster.pb-c.h"
#include "grove/v1/repository.pb-c.h"

#include <time.h>

#define REPLICATE_TIMEOUT_MS (60 * 60 * 1000)

static void repo_for(const struct node *n, const char *path, Grove__V1__Repository *out)
{
	grove__v1__repository__init(out);
	out->storage_name = n->storage;
	out->relative_path = (char *)path;
}

static int job_update(struct cluster *c, const struct job *j)
{
	struct repo_state *r = xcalloc(1, sizeof(*r));
	Grove__V1__ReplicateRepositoryRequest req = GROVE__V1__REPLICATE_REPOSITORY_REQUEST__INIT;
	Grove__V1__ReplicateRepositoryResponse *resp = NULL;
	Grove__V1__Repository dst, src;
	struct replica *target;
	struct node *source;
	int64_t gen, start = now_ms();
	int ret;

	if ((ret = state_repo_get(c, j->path, r)))
		goto out;
	target = repo_replica(r, j->target);
	/* Gone, unassigned or already current: nothing left to do. */
	if (!r->exists || !target || !target->node || !target->assigned || target->generation >= r->generation)
		goto out;
	if (!(source = cluster_primary(c, r, false))) {
		ret = error_wrap(GROVE_EUNAVAIL, "no source to repair %s on %s from", j->path, j->target);
		goto out;
	}
	if (source == target->node) {
		ret = error_set(GROVE_EINTERNAL, "the repair target %s is the primary", j->target);
		goto out;
	}
	gen = r->generation;
	repo_for(target->node, j->path, &dst);
	repo_for(source, j->path, &src);
	req.repository = &dst;
	req.source = &src;
	req.source_address = source->address;
	ret = rpc_unary(target->node->client, "/grove.v1.RepositoryService/ReplicateRepository", &req.base,
			&grove__v1__replicate_repository_response__descriptor, (ProtobufCMessage **)&resp,
			REPLICATE_TIMEOUT_MS);
	if (ret) {
		error_wrap(ret, "replicating %s from %s to %s", j->path, source->name, j->target);
		goto out;
	}
	if ((ret = state_replica_set(c, j->path, j->target, gen, true)))
		goto out;
	pthread_mutex_lock(&c->mu);
	c->m.repairs++;
	pthread_mutex_unlock(&c->mu);
	/* What the dashboard shows of the replica's checksum is then fresh. */
	state_job_add(c, JOB_VERIFY, j->path, "*");
	log_info("cluster.repaired", "repo=%s target=%s source=%s generation=%lld created=%b checksum=%s ms=%lld", j->path,
		 j->target, source->name, (long long)gen, resp->created, resp->checksum,
		 (long long)(now_ms() - start));
out:
	FREE_MSG(resp);
	free(r);
	return ret;
}

static int job_delete(struct cluster *c, const struct job *j)
{
	struct repo_state *r = xcalloc(1, sizeof(*r));
	Grove__V1__RemoveRepositoryRequest req = GROVE__V1__REMOVE_REPOSITORY_REQUEST__INIT;
	Grove__V1__RemoveRepositoryResponse *resp = NULL;
	Grove__V1__Repository dst;
	struct node *n = cluster_node(c, j->target);
	struct replica *rep;
	int ret = 0;

	if (!n)
		goto out;
	if ((ret = state_repo_get(c, j->path, r)))
		goto out;
	rep = r->exists ? repo_replica(r, j->target) : NULL;
	if (rep && rep->assigned)
		goto out;   /* assigned again since: keep it */
	/* No copy from now on, whatever happens next: a replica assigned again
	 * while this runs is repaired instead of trusted. */
	if (rep && (ret = state_replica_set(c, j->path, j->target, -1, false)))
		goto out;
	repo_for(n, j->path, &dst);
	req.repository = &dst;
	ret = rpc_unary(n->client, "/grove.v1.RepositoryService/RemoveRepository", &req.base,
			&grove__v1__remove_repository_response__descriptor, (ProtobufCMessage **)&resp, 60000);
	if (ret == GROVE_ENOTFOUND)
		ret = 0;
	if (!ret && rep)
		ret = state_replica_forget(c, j->path, j->target);
	if (!ret)
		log_info("cluster.replica_deleted", "repo=%s node=%s", j->path, j->target);
out:
	FREE_MSG(resp);
	free(r);
	return ret;
}

static int job_optimize(struct cluster *c, const struct job *j)
{
	Grove__V1__OptimizeRepositoryRequest req = GROVE__V1__OPTIMIZE_REPOSITORY_REQUEST__INIT;
	Grove__V1__OptimizeRepositoryResponse *resp = NULL;
	Grove__V1__Repository dst;
	struct node *n = cluster_node(c, j->target);
	int ret;
	if (!n)
		return 0;
	repo_for(n, j->path, &dst);
	req.repository = &dst;
	ret = rpc_unary(n->client, "/grove.v1.RepositoryService/OptimizeRepository", &req.base,
			&grove__v1__optimize_repository_response__descriptor, (ProtobufCMessage **)&resp,
			REPLICATE_TIMEOUT_MS);
	FREE_MSG(resp);
	return ret == GROVE_ENOTFOUND ? 0 : ret;
}

static int checksum_of(struct node *n, const char *path, char *out, size_t size)
{
	Grove__V1__CalculateChecksumRequest req = GROVE__V1__CALCULATE_CHECKSUM_REQUEST__INIT;
	Grove__V1__CalculateChecksumResponse *resp = NULL;
	Grove__V1__Repository dst;
	int ret;
	repo_for(n, path, &dst);
	req.repository = &dst;
	ret = rpc_unary(n->client, "/grove.v1.RepositoryService/CalculateChecksum", &req.base,
			&grove__v1__calculate_checksum_response__descriptor, (ProtobufCMessage **)&resp, 60000);
	if (!ret)
		strlcpy_(out, resp->checksum ? resp->checksum : "", size);
	FREE_MSG(resp);
	return ret;
}

/* What one comparison found. */
struct comparison {
	struct replica_check k[CLUSTER_NODES_MAX];   /* every up-to-date replica's */
	char err[CLUSTER_NODES_MAX][256];            /* "": its checksum came */
	size_t n;
	char bad[CLUSTER_NODES_MAX][65];             /* those that differ */
	size_t nbad;
};

/*
 * One comparison: the checksums of every healthy up-to-date replica against
 * the primary's.
 */
static int compare_once(struct cluster *c, struct repo_state *r, struct comparison *cmp)
{
	char ref[65] = "";
	struct node *primary = cluster_primary(c, r, false);
	int64_t now = wall_ms();
	int ret;

	memset(cmp, 0, sizeof(*cmp));
	if (!primary)
		return GROVE_EUNAVAIL;
	if ((ret = checksum_of(primary, r->path, ref, sizeof(ref))))
		return error_wrap(ret, "checksum of %s on the primary %s", r->path, primary->name);
	for (size_t i = 0; i < r->nreplicas; i++) {
		struct replica *rep = &r->replicas[i];
		struct replica_check *k = &cmp->k[cmp->n];
		if (!replica_up_to_date(c, r, rep))
			continue;
		strlcpy_(k->node, rep->name, sizeof(k->node));
		k->generation = r->generation;
		k->checked_at = now;
		if (rep->node == primary)
			strlcpy_(k->checksum, ref, sizeof(k->checksum));
		else if (checksum_of(rep->node, r->path, k->checksum, sizeof(k->checksum)))
			strlcpy_(cmp->err[cmp->n], error_msg(), sizeof(cmp->err[0]));
		k->matches = !strcmp(k->checksum, ref);
		if (!k->matches && !cmp->err[cmp->n][0])
			strlcpy_(cmp->bad[cmp->nbad++], rep->name, 65);
		cmp->n++;
	}
	return 0;
}

/* Keeps the checksums that came, for the dashboard and `grove cluster repo`. */
static void comparison_record(struct cluster *c, const char *path, const struct comparison *cmp)
{
	struct replica_check got[CLUSTER_NODES_MAX];
	size_t n = 0;
	for (size_t i = 0; i < cmp->n; i++)
		if (!cmp->err[i][0])
			got[n++] = cmp->k[i];
	if (state_checksums_record(c, path, got, n))
		log_warn("cluster.state_failed", "repo=%s error=%s", path, error_msg());
}

static void comparison_answer(const struct comparison *cmp, Grove__V1__VerifyRepositoryResponse *resp)
{
	resp->replicas = xcalloc(cmp->n ? cmp->n : 1, sizeof(*resp->replicas));
	for (size_t i = 0; i < cmp->n; i++) {
		Grove__V1__ReplicaChecksum *rc = xcalloc(1, sizeof(*rc));
		grove__v1__replica_checksum__init(rc);
		rc->node = xstrdup(cmp->k[i].node);
		rc->checksum = xstrdup(cmp->err[i][0] ? "" : cmp->k[i].checksum);
		rc->error = xstrdup(cmp->err[i]);
		rc->matches = cmp->k[i].matches && !cmp->err[i][0];
		resp->replicas[resp->n_replicas++] = rc;
	}
	resp->mismatches = (uint32_t)cmp->nbad;
}

/* Whether every replica of now[0..n) is also in before[0..nb). */
static bool all_seen(char now[][65], size_t n, char before[][65], size_t nb)
{
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 0; j < nb && !seen; j++)
			seen = !strcmp(now[i], before[j]);
		if (!seen)
			return false;
	}
	return true;
}

static bool activity_same(const struct write_activity *a, const struct write_activity *b)
{
	return a->generation == b->generation && a->begun == b->begun && !a->in_flight && !b->in_flight;
}

/*
 * One quiet comparison: no write ran on any router from before the
 * checksums were asked until after the last came back (see
 * state_write_begin), so the refs did not move between stores meanwhile.
 * 1 when a write ran (compare again later), with *seen as it was before.
 */
static int compare_quiet(struct cluster *c, const char *path, struct repo_state *r, struct write_activity *seen,
			 struct comparison *cmp)
{
	struct write_activity after;
	int ret;

	cmp->n = cmp->nbad = 0;
	if ((ret = state_write_activity(c, path, seen)))
		return ret;
	if (seen->in_flight)
		return 1;
	if ((ret = state_repo_get(c, path, r)))
		return ret;
	if (!r->exists)
		return error_set(GROVE_ENOTFOUND, "repository %s is not known to the cluster", path);
	if (r->generation < 0)
		return 0;   /* nothing written yet: nothing to compare */
	if (r->generation != seen->generation)
		return 1;
	if ((ret = compare_once(c, r, cmp)))
		return ret;
	if ((ret = state_write_activity(c, path, &after)))
		return ret;
	return activity_same(seen, &after) ? 0 : 1;
}

/* The replicas that differ, marked outdated (if nothing moved since act) and queued for repair. 1: something moved. */
static int comparison_conclude(struct cluster *c, const char *path, const struct write_activity *act,
			       struct comparison *cmp)
{
	int ret = cmp->nbad ? state_verify_mark(c, path, act, cmp->bad, cmp->nbad) : 0;
	if (ret)
		return ret;
	comparison_record(c, path, cmp);
	for (size_t i = 0; i < cmp->nbad && !ret; i++) {
		pthread_mutex_lock(&c->mu);
		c->m.verify_mismatches++;
		pthread_mutex_unlock(&c->mu);
		log_warn("cluster.verify_mismatch", "repo=%s node=%s generation=%lld", path, cmp->bad[i],
			 (long long)act->generation);
		/* Outdated now: repaired from the primary, never read meanwhile. */
		ret = state_job_add(c, JOB_UPDATE, path, cmp->bad[i]);
	}
	return ret;
}

/*
 * A replica is accused only when two quiet comparisons in a row, with no
 * write beginning between them, found it different, and is marked only if
 * still nothing moved (state_verify_mark). A comparison beside a write
 * once saw the primary's refs moved and the others' not yet, and marked
 * whole replicas outdated: with the primary killed right after, one of
 * them was elected and an acknowledged push was lost.
 */
int jobs_verify(struct cluster *c, const char *path, void *out)
{
	Grove__V1__VerifyRepositoryResponse *resp = out;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	struct comparison *cmp = xcalloc(1, sizeof(*cmp));
	char seen[CLUSTER_NODES_MAX][65];
	struct write_activity act = { 0 };
	size_t nseen = 0;
	int64_t seen_begun = -1;
	bool confirmed = false, nothing = false;
	int ret = 0;

	for (int attempt = 0; attempt < 4 && !confirmed && !nothing; attempt++) {
		ret = compare_quiet(c, path, r, &act, cmp);
		if (ret < 0)
			goto out;
		if (ret == 0 && cmp->nbad == 0) {
			/* No replica to compare (nothing written yet), or all agree. */
			nothing = cmp->n == 0;
			confirmed = !nothing;
			break;
		}
		if (ret == 0) {
			confirmed = act.begun == seen_begun && all_seen(cmp->bad, cmp->nbad, seen, nseen);
			memcpy(seen, cmp->bad, sizeof(seen));
			nseen = cmp->nbad;
			seen_begun = act.begun;
		}
		if (!confirmed && attempt < 3)
			usleep(500 * 1000);
	}
	if (confirmed && (ret = comparison_conclude(c, path, &act, cmp)) < 0)
		goto out;
	if (!nothing && (!confirmed || ret == 1)) {
		/* A busy repository: the next pass compares. */
		log_info("cluster.verify_inconclusive", "repo=%s generation=%lld", path, (long long)act.generation);
		if (resp)
			resp->busy = true;
		ret = 0;
		goto out;
	}
	if (resp)
		comparison_answer(cmp, resp);
out:
	free(cmp);
	free(r);
	return ret;
}

static int run_job(struct cluster *c, const struct job *j)
{
	switch (j->kind) {
	case JOB_UPDATE: return job_update(c, j);
	case JOB_DELETE: return job_delete(c, j);
	case JOB_OPTIMIZE: return job_optimize(c, j);
	case JOB_VERIFY: return jobs_verify(c, j->path, NULL);
	}
	return error_set(GROVE_EINTERNAL, "unknown job kind");
}

/*
 * The job each worker runs now (0: none), for the renewer. Slots are
 * written by their worker and read by the renewer, under running_mu.
 */
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *running;

struct worker_arg {
	struct cluster *c;
	int slot;
};
static struct worker_arg *worker_args;

static void running_set(int slot, int64_t id)
{
	pthread_mutex_lock(&running_mu);
	running[slot] = id;
	pthread_mutex_unlock(&running_mu);
}

static void *renewer_main(void *arg)
{
	struct cluster *c = arg;
	int64_t lease_ms = (int64_t)c->job_lease_s * 1000;
	/* A third of the lease: two renewals may fail (a database restart)
	 * before another router may take the job. */
	int every_ms = (int)MAX(lease_ms / 3, 300);
	int64_t *ids = xcalloc((size_t)c->workers, sizeof(*ids));

	for (;;) {
		struct timespec ts;
		deadline_after_ms(&ts, CLOCK_REALTIME, every_ms);
		pthread_mutex_lock(&c->mu);
		if (!c->stopping)
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		pthread_mutex_lock(&running_mu);
		memcpy(ids, running, (size_t)c->workers * sizeof(*ids));
		pthread_mutex_unlock(&running_mu);
		for (int i = 0; i < c->workers; i++)
			if (ids[i] && state_job_renew(c, ids[i], lease_ms))
				log_warn("cluster.lease_renew_failed", "job=%lld error=%s", (long long)ids[i], error_msg());
	}
	free(ids);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct cluster *c = wa->c;
	struct job j;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		int r = state_job_lease(c, &j, (int64_t)c->job_lease_s * 1000);
		if (r <= 0) {
			if (r < 0)
				log_warn("cluster.lease_failed", "error=%s", error_msg());
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_mutex_lock(&c->mu);
			if (!c->stopping)
				pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			pthread_mutex_unlock(&c->mu);
			continue;
		}
		error_clear();
		running_set(wa->slot, j.id);
		int ret = run_job(c, &j);
		running_set(wa->slot, 0);
		if (ret) {
			log_warn("cluster.job_failed", "job=%lld kind=%s repo=%s target=%s attempt=%d error=%s", (long long)j.id,
				 job_kind_name(j.kind), j.path, j.target, j.attempts + 1, error_msg());
			state_job_failed(c, &j, error_msg());
		} else {
			state_job_done(c, &j);
		}
	}
	return NULL;
}

static pthread_t *workers;
static int nworkers;
static pthread_t renewer;
static bool renewer_started;

int jobs_start(struct cluster *c)
{
	workers = xcalloc((size_t)c->workers, sizeof(*workers));
	worker_args = xcalloc((size_t)c->workers, sizeof(*worker_args));
	running = xcalloc((size_t)c->workers, sizeof(*running));
	if (pthread_create(&renewer, NULL, renewer_main, c))
		return error_set(GROVE_EINTERNAL, "cannot start the lease renewer");
	renewer_started = true;
	for (int i = 0; i < c->workers; i++, nworkers++) {
		worker_args[i] = (struct worker_arg){ .c = c, .slot = i };
		if (pthread_create(&workers[i], NULL, worker_main, &worker_args[i]))
			return error_set(GROVE_EINTERNAL, "cannot start replication workers");
	}
	return 0;
}

void jobs_stop(struct cluster *c)
{
	cluster_wake(c);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	if (renewer_started)
		pthread_join(renewer, NULL);
	renewer_started = false;
	free(workers);
	workers = NULL;
	nworkers = 0;
	free(worker_args);
	worker_args = NULL;
	free(running);
	running = NULL;
}
