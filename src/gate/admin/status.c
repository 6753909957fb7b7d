/* GET /api/v1/status: the gate at a glance, for `grove status`. */
#include "gate/admin/admin_int.h"

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
