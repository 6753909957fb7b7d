/*
 * GET /api/v1/status: the gate at a glance, for `grove status`; GET
 * /api/v1/cluster: the cluster router behind the cluster route and its
 * stores, as the router sees them, for the dashboard.
 */
#include "gate/admin/admin_int.h"
#include "gate/repos.h"
#include "lib/error.h"
#include "lib/rpc.h"
#include "grove/v1/cluster.pb-c.h"

/* A dashboard waits on this: a router that does not answer soon is shown down. */
#define CLUSTER_STATUS_TIMEOUT_MS 3000

/* GET /api/v1/status: what `grove status` shows of the gate. */
int status_get(struct call *x)
{
	struct app_counts apps;
	struct deploy_counts deploys;
	bool set;
	int ret = db_app_counts(x->db, &apps);
	if (!ret)
		ret = db_deploy_counts(x->db, &deploys);
	if (ret)
		return reply_grove_error(x->out, ret);
	return call_answer(x, MHD_HTTP_OK,
			   json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:b}", "apps", (json_int_t)apps.apps,
				     "legacy", (json_int_t)apps.legacy, "cluster", (json_int_t)apps.cluster, "locked",
				     (json_int_t)apps.locked, "deployments_running", (json_int_t)deploys.running,
				     "deployments_queued", (json_int_t)deploys.queued, "users", (json_int_t)deploys.users,
				     "canary_percent", canary_now(x, &set), "draining", atomic_load(&x->a->draining)));
}

static json_t *node_object(const Grove__V1__NodeStatus *n)
{
	json_t *o = json_pack("{s:o, s:o, s:b, s:b, s:i, s:i, s:o, s:I, s:I, s:I, s:o, s:I, s:I}", "name", jstr(n->name),
			      "address", jstr(n->address), "healthy", n->healthy, "writable", n->writable,
			      "routers_healthy", (int)n->routers_healthy, "routers_total", (int)n->routers_total,
			      "last_error", jstr(n->last_error), "replicas", (json_int_t)n->replicas, "behind",
			      (json_int_t)n->behind, "last_check_ms", (json_int_t)n->last_check_ms, "version",
			      jstr(n->version), "disk_total", (json_int_t)n->disk_total, "disk_free",
			      (json_int_t)n->disk_free);
	/* Its own replication queue (the router's as a whole is in the status). */
	json_object_set_new(o, "queue", json_pack("{s:I, s:I, s:I}", "ready", (json_int_t)n->jobs_ready, "in_progress",
						  (json_int_t)n->jobs_in_progress, "failed", (json_int_t)n->jobs_failed));
	return o;
}

static json_t *status_object(const Grove__V1__GetStatusResponse *r)
{
	json_t *nodes = json_array();
	for (size_t i = 0; i < r->n_nodes; i++)
		json_array_append_new(nodes, node_object(r->nodes[i]));
	return json_pack("{s:b, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "up", 1, "router", jstr(r->router),
			 "virtual_storage", jstr(r->virtual_storage), "stores", nodes, "repositories",
			 (json_int_t)r->repositories, "dataloss", (json_int_t)r->dataloss, "jobs_ready",
			 (json_int_t)r->jobs_ready, "jobs_in_progress", (json_int_t)r->jobs_in_progress, "jobs_failed",
			 (json_int_t)r->jobs_failed, "jobs_dead", (json_int_t)r->jobs_dead);
}

/*
 * The router's own view (ClusterService/GetStatus, as `grove cluster status`
 * asks it): {"address", "up", "router", "stores": [...], queue counts}, or
 * {"address", "up": false, "error"} when it does not answer.
 */
json_t *cluster_status(const struct admin *a)
{
	Grove__V1__GetStatusRequest req = GROVE__V1__GET_STATUS_REQUEST__INIT;
	Grove__V1__GetStatusResponse *resp = NULL;
	const struct repo_env *env = a->repos;
	struct rpc_client *cl = NULL;
	json_t *o = NULL;
	int ret;

	if (!env || !env->cluster_address)
		return NULL;
	ret = rpc_client_new(&cl, env->cluster_address, env->secret);
	if (!ret)
		ret = rpc_unary(cl, "/grove.v1.ClusterService/GetStatus", &req.base,
				&grove__v1__get_status_response__descriptor, (ProtobufCMessage **)&resp,
				CLUSTER_STATUS_TIMEOUT_MS);
	if (ret)
		o = json_pack("{s:b, s:o}", "up", 0, "error", jstr(error_msg()));
	else
		o = status_object(resp);
	json_object_set_new(o, "address", jstr(env->cluster_address));
	FREE_MSG(resp);
	rpc_client_free(cl);
	return o;
}

/* GET /api/v1/cluster: 200 with the router's view, also when it is down
 * (that is the news); 404 on a gate without a cluster route. */
int cluster_get(struct call *x)
{
	json_t *o = cluster_status(x->a);
	if (!o)
		return reply_error(x->out, MHD_HTTP_NOT_FOUND, "this gate has no cluster route (route.cluster)");
	return call_answer(x, MHD_HTTP_OK, o);
}
