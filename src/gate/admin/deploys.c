/* The admin API's deployments: an app's list, and one with its log. */
#include "gate/admin/admin_int.h"
#include "lib/error.h"

#define DEPLOY_LIST_DEFAULT 100
#define DEPLOY_LIST_MAX 1000

/* A row of DB_DEPLOY_COLUMNS. */
json_t *deployment_object(const char *const *v)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(strtoll(v[0] ? v[0] : "0", NULL, 10)));
	json_object_set_new(o, "app", jstr(v[1]));
	json_object_set_new(o, "ref", jstr(v[2]));
	json_object_set_new(o, "old_oid", jstr(v[3]));
	json_object_set_new(o, "new_oid", jstr(v[4]));
	json_object_set_new(o, "pusher", jstr(v[5]));
	json_object_set_new(o, "status", jstr(v[6]));
	json_object_set_new(o, "started_at", jstr(v[7]));
	json_object_set_new(o, "finished_at", jstr(v[8]));
	return o;
}

static int deployment_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_array_append_new(ctx, deployment_object(values));
	return 0;
}

int app_deployments(struct call *x)
{
	const char *limit_s = MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, "limit");
	long long limit = DEPLOY_LIST_DEFAULT;
	struct app app;
	json_t *list;
	int ret;

	if (limit_s && !parse_int(limit_s, 1, DEPLOY_LIST_MAX, &limit))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "limit must be a number from 1 to %d", DEPLOY_LIST_MAX);
	ret = db_app_get(x->db, x->arg[0], &app);
	if (ret)
		return reply_grove_error(x->out, ret);
	app_release(&app);
	list = json_array();
	ret = db_deploys_each(x->db, x->arg[0], limit, deployment_row, list);
	if (ret) {
		json_decref(list);
		return reply_grove_error(x->out, ret);
	}
	return call_answer(x, MHD_HTTP_OK, list);
}

int deployment_get(struct call *x)
{
	struct deployment d;
	long long id;
	char idbuf[24];
	json_t *o;
	int ret;

	if (!parse_int(x->arg[0], 1, INT64_MAX, &id))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "deployment id \"%.32s\" is not a positive number", x->arg[0]);
	ret = db_deploy_get(x->db, id, &d);
	if (ret)
		return reply_grove_error(x->out, ret);
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)d.id);
	const char *v[] = { idbuf, d.app, d.ref, d.old_oid, d.new_oid, d.pusher, d.status, d.started_at, d.finished_at };
	o = deployment_object(v);
	json_object_set_new(o, "log", jstr(d.log));
	deployment_release(&d);
	return call_answer(x, MHD_HTTP_OK, o);
}
