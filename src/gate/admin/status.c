/* GET /api/v1/status: the gate at a glance, for `grove status`. */
#include "gate/admin/admin_int.h"

/* GET /api/v1/status: what `grove status` shows of the gate. */
int status_get(struct call *x)
{
	json_t *o = json_object();
	int ret = db_query(x->db,
			   "SELECT COUNT(*) AS apps,"
			   " COALESCE(SUM(CASE WHEN route = 'legacy' THEN 1 ELSE 0 END), 0) AS legacy,"
			   " COALESCE(SUM(CASE WHEN route = 'cluster' THEN 1 ELSE 0 END), 0) AS cluster,"
			   " COALESCE(SUM(locked), 0) AS locked FROM apps",
			   NULL, 0, counts_row, o);
	if (!ret)
		ret = db_query(x->db,
			       "SELECT COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0) AS deployments_running,"
			       " COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS deployments_queued,"
			       " (SELECT COUNT(*) FROM users) AS users FROM deployments",
			       NULL, 0, counts_row, o);
	if (ret) {
		json_decref(o);
		return reply_grove_error(x->out, ret);
	}
	bool set;
	json_object_set_new(o, "canary_percent", json_integer(canary_now(x, &set)));
	json_object_set_new(o, "draining", json_boolean(atomic_load(&x->a->draining)));
	return call_answer(x, MHD_HTTP_OK, o);
}
