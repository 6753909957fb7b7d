/* ClusterService: the operator's view of the router, for `grove cluster …`. */
#include "cluster/cluster.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/repopath.h"
#include "grove/v1/cluster.pb-c.h"

/* Fills info (its strings point into r and c: keep both alive) from r. */
static void repo_info(struct cluster *c, struct repo_state *r, Grove__V1__RepositoryInfo *info,
		      Grove__V1__ReplicaInfo *reps, Grove__V1__ReplicaInfo **ptrs)
{
	bool any = false;
	grove__v1__repository_info__init(info);
	info->relative_path = r->path;
	info->generation = r->generation;
	info->primary = r->primary;
	info->replication_factor = (uint32_t)r->replication_factor;
	for (size_t i = 0; i < r->nreplicas; i++) {
		struct replica *rep = &r->replicas[i];
		grove__v1__replica_info__init(&reps[i]);
		reps[i].node = rep->name;
		reps[i].generation = rep->generation;
		reps[i].assigned = rep->assigned;
		reps[i].healthy = rep->node && cluster_node_healthy(c, rep->node);
		reps[i].up_to_date = replica_up_to_date(c, r, rep);
		reps[i].primary = !strcmp(rep->name, r->primary);
		any |= reps[i].up_to_date;
		ptrs[i] = &reps[i];
	}
	info->replicas = ptrs;
	info->n_replicas = r->nreplicas;
	info->unavailable = r->generation >= 0 && !any;
}

/*
 * Adds to info's replicas what the last verifications found (strings point
 * into checks: keep it alive). A failed read leaves them "never verified".
 */
static void repo_checks(struct cluster *c, const char *path, Grove__V1__RepositoryInfo *info,
			struct replica_check *checks)
{
	size_t n = 0;
	if (state_checksums_get(c, path, checks, CLUSTER_NODES_MAX, &n))
		log_warn("cluster.state_failed", "repo=%s error=%s", path, error_msg());
	for (size_t i = 0; i < info->n_replicas; i++)
		for (size_t k = 0; k < n; k++) {
			Grove__V1__ReplicaInfo *ri = info->replicas[i];
			if (strcmp(ri->node, checks[k].node))
				continue;
			ri->checksum = checks[k].checksum;
			ri->checksum_matches = checks[k].matches;
			ri->checksum_generation = checks[k].generation;
			ri->checked_at_ms = checks[k].checked_at;
		}
}

static bool has_dataloss(struct cluster *c, struct repo_state *r)
{
	if (r->generation < 0)
		return false;
	int assigned = 0, current = 0;
	for (size_t i = 0; i < r->nreplicas; i++) {
		if (!r->replicas[i].assigned)
			continue;
		assigned++;
		current += r->replicas[i].generation == r->generation && r->replicas[i].node &&
			   cluster_node_healthy(c, r->replicas[i].node);
	}
	return current < assigned || assigned < r->replication_factor;
}

struct count_ctx {
	uint64_t repos, dataloss;
	uint64_t replicas[CLUSTER_NODES_MAX], behind[CLUSTER_NODES_MAX];   /* by node index */
	Grove__V1__ListDatalossResponse *list;
};

/* The copies each store holds, and those behind the repository's generation. */
static void count_replicas(struct cluster *c, const struct repo_state *r, struct count_ctx *cc)
{
	for (size_t i = 0; i < r->nreplicas; i++) {
		const struct replica *rep = &r->replicas[i];
		if (!rep->node || rep->generation < 0)
			continue;
		size_t k = (size_t)(rep->node - c->nodes);
		cc->replicas[k]++;
		cc->behind[k] += rep->generation < r->generation;
	}
}

static int count_repo(struct cluster *c, const char *path, void *arg)
{
	struct count_ctx *cc = arg;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	int ret = state_repo_get(c, path, r);
	if (!ret && r->exists) {
		cc->repos++;
		count_replicas(c, r, cc);
		if (has_dataloss(c, r)) {
			cc->dataloss++;
			if (cc->list) {
				Grove__V1__RepositoryInfo *info = xcalloc(1, sizeof(*info));
				Grove__V1__ReplicaInfo *reps = xcalloc(r->nreplicas + 1, sizeof(*reps));
				Grove__V1__ReplicaInfo **ptrs = xcalloc(r->nreplicas + 1, sizeof(*ptrs));
				repo_info(c, r, info, reps, ptrs);
				/* The list outlives r: own copies. */
				info->relative_path = xstrdup(r->path);
				info->primary = xstrdup(r->primary);
				for (size_t i = 0; i < r->nreplicas; i++)
					reps[i].node = xstrdup(r->replicas[i].name);
				cc->list->repositories = xrealloc(cc->list->repositories,
								  (cc->list->n_repositories + 1) * sizeof(info));
				cc->list->repositories[cc->list->n_repositories++] = info;
			}
		}
	}
	free(r);
	return ret;
}

static void get_status(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__GetStatusRequest *req = NULL;
	Grove__V1__GetStatusResponse resp = GROVE__V1__GET_STATUS_RESPONSE__INIT;
	Grove__V1__NodeStatus nodes[CLUSTER_NODES_MAX], *ptrs[CLUSTER_NODES_MAX];
	char errs[CLUSTER_NODES_MAX][256], versions[CLUSTER_NODES_MAX][64];
	struct count_ctx cc = { 0 };
	uint64_t jr[CLUSTER_NODES_MAX] = { 0 }, jp[CLUSTER_NODES_MAX] = { 0 }, jf[CLUSTER_NODES_MAX] = { 0 };
	int64_t now = now_ms();
	int ret = rpc_call_recv_one(call, &grove__v1__get_status_request__descriptor, (ProtobufCMessage **)&req);

	if (!ret)
		ret = state_job_counts(c, &resp.jobs_ready, &resp.jobs_in_progress, &resp.jobs_failed, &resp.jobs_dead);
	if (!ret)
		ret = state_repo_each(c, count_repo, &cc);
	if (!ret)
		ret = state_node_jobs(c, jr, jp, jf);
	resp.router = c->router;
	resp.virtual_storage = c->virtual_storage;
	resp.repositories = cc.repos;
	resp.dataloss = cc.dataloss;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nnodes; i++) {
		struct node *n = &c->nodes[i];
		grove__v1__node_status__init(&nodes[i]);
		nodes[i].name = n->name;
		nodes[i].address = n->address;
		nodes[i].healthy = n->healthy;
		nodes[i].writable = n->writable;
		nodes[i].routers_healthy = n->routers_healthy;
		nodes[i].routers_total = n->routers_total;
		nodes[i].replicas = cc.replicas[i];
		nodes[i].behind = cc.behind[i];
		nodes[i].last_check_ms = n->last_check ? now - n->last_check : -1;
		strlcpy_(versions[i], n->version, sizeof(versions[i]));
		nodes[i].version = versions[i];
		nodes[i].disk_total = n->disk_total;
		nodes[i].disk_free = n->disk_free;
		nodes[i].jobs_ready = jr[i];
		nodes[i].jobs_in_progress = jp[i];
		nodes[i].jobs_failed = jf[i];
		strlcpy_(errs[i], n->last_error, sizeof(errs[i]));
		nodes[i].last_error = errs[i];
		ptrs[i] = &nodes[i];
	}
	pthread_mutex_unlock(&c->mu);
	resp.nodes = ptrs;
	resp.n_nodes = c->nnodes;
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
}

/* Reads the request's path and the repository's state: 0, or the error to reply. */
static int read_repo(struct cluster *c, const char *path, struct repo_state *r)
{
	int ret = repopath_validate(path ? path : "");
	if (!ret)
		ret = state_repo_get(c, path, r);
	if (!ret && !r->exists)
		ret = error_set(GROVE_ENOTFOUND, "repository %s is not known to the cluster", path);
	return ret;
}

static void get_repository(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__GetRepositoryRequest *req = NULL;
	Grove__V1__GetRepositoryResponse resp = GROVE__V1__GET_REPOSITORY_RESPONSE__INIT;
	Grove__V1__RepositoryInfo info;
	Grove__V1__ReplicaInfo reps[CLUSTER_NODES_MAX], *ptrs[CLUSTER_NODES_MAX];
	struct replica_check *checks = xcalloc(CLUSTER_NODES_MAX, sizeof(*checks));
	struct repo_state *r = xcalloc(1, sizeof(*r));
	int ret = rpc_call_recv_one(call, &grove__v1__get_repository_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = read_repo(c, req->relative_path, r);
	if (!ret) {
		repo_info(c, r, &info, reps, ptrs);
		repo_checks(c, r->path, &info, checks);
		resp.repository = &info;
	}
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	free(checks);
	free(r);
}

static void list_dataloss(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__ListDatalossRequest *req = NULL;
	Grove__V1__ListDatalossResponse resp = GROVE__V1__LIST_DATALOSS_RESPONSE__INIT;
	struct count_ctx cc = { .list = &resp };
	int ret = rpc_call_recv_one(call, &grove__v1__list_dataloss_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = state_repo_each(c, count_repo, &cc);
	rpc_call_reply(call, ret, &resp.base);
	for (size_t i = 0; i < resp.n_repositories; i++) {
		Grove__V1__RepositoryInfo *info = resp.repositories[i];
		for (size_t k = 0; k < info->n_replicas; k++)
			free(info->replicas[k]->node);
		if (info->n_replicas)
			free(info->replicas[0]);
		free(info->replicas);
		free(info->relative_path);
		free(info->primary);
		free(info);
	}
	free(resp.repositories);
	FREE_MSG(req);
}

static void accept_dataloss(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__AcceptDatalossRequest *req = NULL;
	Grove__V1__AcceptDatalossResponse resp = GROVE__V1__ACCEPT_DATALOSS_RESPONSE__INIT;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	struct replica *auth = NULL;
	int ret = rpc_call_recv_one(call, &grove__v1__accept_dataloss_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = read_repo(c, req->relative_path, r);
	if (!ret)
		auth = repo_replica(r, req->authoritative ? req->authoritative : "");
	if (!ret && (!auth || !auth->node || auth->generation < 0))
		ret = error_set(GROVE_EINVAL, "%s holds no copy of %s: name a store listed by `grove cluster repo %s`",
				req->authoritative ? req->authoritative : "", req->relative_path, req->relative_path);
	if (!ret && !cluster_node_healthy(c, auth->node))
		ret = error_set(GROVE_EUNAVAIL, "store %s is not healthy: it cannot be the authoritative copy now",
				auth->name);
	if (!ret) {
		/* A generation above every replica's: the others are outdated and
		 * get repaired from this one. */
		int64_t gen = r->generation;
		for (size_t i = 0; i < r->nreplicas; i++)
			gen = MAX(gen, r->replicas[i].generation);
		gen++;
		ret = state_force_generation(c, r->path, auth->name, gen);
		for (size_t i = 0; !ret && i < r->nreplicas; i++)
			if (&r->replicas[i] != auth && r->replicas[i].assigned)
				ret = state_job_add(c, JOB_UPDATE, r->path, r->replicas[i].name);
		resp.generation = gen;
		if (!ret)
			log_warn("cluster.dataloss_accepted", "repo=%s authoritative=%s generation=%lld", r->path, auth->name,
				 (long long)gen);
	}
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	free(r);
}

static void set_replication_factor(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__SetReplicationFactorRequest *req = NULL;
	Grove__V1__SetReplicationFactorResponse resp = GROVE__V1__SET_REPLICATION_FACTOR_RESPONSE__INIT;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	char *names[CLUSTER_NODES_MAX];
	int ret = rpc_call_recv_one(call, &grove__v1__set_replication_factor_request__descriptor,
				    (ProtobufCMessage **)&req);
	if (!ret)
		ret = read_repo(c, req->relative_path, r);
	if (!ret && (req->replication_factor < 1 || req->replication_factor > c->nnodes))
		ret = error_set(GROVE_EINVAL, "replication factor %u is out of range: 1 to %zu (the stores configured)",
				req->replication_factor, c->nnodes);
	if (!ret)
		ret = state_set_replication_factor(c, req->relative_path, (int)req->replication_factor);
	if (!ret)
		ret = state_repo_get(c, req->relative_path, r);
	for (size_t i = 0; !ret && i < r->nreplicas; i++) {
		struct replica *rep = &r->replicas[i];
		if (rep->assigned) {
			names[resp.n_assigned++] = rep->name;
			if (rep->generation < r->generation)
				state_job_add(c, JOB_UPDATE, r->path, rep->name);
		} else if (rep->generation >= 0) {
			state_job_add(c, JOB_DELETE, r->path, rep->name);
		}
	}
	resp.assigned = names;
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	free(r);
}

static void verify_repository(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__VerifyRepositoryRequest *req = NULL;
	Grove__V1__VerifyRepositoryResponse resp = GROVE__V1__VERIFY_REPOSITORY_RESPONSE__INIT;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	int ret = rpc_call_recv_one(call, &grove__v1__verify_repository_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = read_repo(c, req->relative_path, r);
	if (!ret)
		ret = jobs_verify(c, r->path, &resp);
	rpc_call_reply(call, ret, &resp.base);
	for (size_t i = 0; i < resp.n_replicas; i++) {
		free(resp.replicas[i]->node);
		free(resp.replicas[i]->checksum);
		free(resp.replicas[i]->error);
		free(resp.replicas[i]);
	}
	free(resp.replicas);
	FREE_MSG(req);
	free(r);
}

static void failover(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	Grove__V1__FailoverRequest *req = NULL;
	Grove__V1__FailoverResponse resp = GROVE__V1__FAILOVER_RESPONSE__INIT;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	char previous[65] = "";
	struct replica *to = NULL;
	int ret = rpc_call_recv_one(call, &grove__v1__failover_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = read_repo(c, req->relative_path, r);
	if (!ret)
		to = repo_replica(r, req->to ? req->to : "");
	if (!ret && (!to || !replica_up_to_date(c, r, to)))
		ret = error_set(GROVE_EPRECOND, "%s is not a healthy up-to-date replica of %s: see `grove cluster repo %s`",
				req->to ? req->to : "", req->relative_path, req->relative_path);
	if (!ret) {
		strlcpy_(previous, r->primary, sizeof(previous));
		ret = state_set_primary(c, r->path, to->name);
	}
	if (!ret) {
		pthread_mutex_lock(&c->mu);
		c->m.elections++;
		pthread_mutex_unlock(&c->mu);
		log_info("cluster.failover", "repo=%s previous=%s primary=%s", r->path, previous, to->name);
		resp.previous = previous;
		resp.primary = to->name;
	}
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	free(r);
}

void clustersvc_register(struct rpc_server *srv, struct cluster *c)
{
	rpc_server_handle(srv, "/grove.v1.ClusterService/GetStatus", get_status, c);
	rpc_server_handle(srv, "/grove.v1.ClusterService/GetRepository", get_repository, c);
	rpc_server_handle(srv, "/grove.v1.ClusterService/ListDataloss", list_dataloss, c);
	rpc_server_handle(srv, "/grove.v1.ClusterService/AcceptDataloss", accept_dataloss, c);
	rpc_server_handle(srv, "/grove.v1.ClusterService/SetReplicationFactor", set_replication_factor, c);
	rpc_server_handle(srv, "/grove.v1.ClusterService/VerifyRepository", verify_repository, c);
	rpc_server_handle(srv, "/grove.v1.ClusterService/Failover", failover, c);
}
