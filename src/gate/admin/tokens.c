/* The admin API's access tokens (git over HTTPS): /api/v1/users/USER/tokens. */
#include "gate/admin/admin_int.h"
#include "gate/tokens.h"
#include "lib/error.h"

#include <time.h>

/* A token's row (id, name, created_at, expires_at, last_used_at, read_only) as JSON; never its secret. */
static int token_row(void *ctx, int ncols, const char *const *names, const char *const *v)
{
	json_array_append_new(ctx, json_pack("{s:I,s:s,s:s,s:I,s:I,s:b}", "id", (json_int_t)strtoll(v[0], NULL, 10),
					     "name", v[1], "created_at", v[2], "expires_at",
					     (json_int_t)strtoll(v[3], NULL, 10), "last_used_at",
					     (json_int_t)strtoll(v[4], NULL, 10), "read_only", strcmp(v[5], "0") != 0));
	return 0;
}

int tokens_list(struct call *x)
{
	struct user u = { 0 };
	json_t *list;
	int ret = db_user_get(x->db, x->arg[0], &u);

	user_release(&u);
	if (ret)
		return reply_grove_error(x->out, ret);
	list = json_array();
	if ((ret = tokens_each(x->db, x->arg[0], token_row, list))) {
		json_decref(list);
		return reply_grove_error(x->out, ret);
	}
	return call_answer(x, MHD_HTTP_OK, list);
}

int token_post(struct call *x)
{
	static const char *const fields[] = { "name", "expires_in_days", "read_only", NULL };
	struct token_opts o = { .name = "token" };
	char secret[TOKEN_SECRET_MAX];
	bool has_days = false, has_ro = false;
	int64_t days = 0, id;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "name", false, &o.name) ||
	    call_get_int(x, "expires_in_days", 1, 3650, &has_days, &days) ||
	    call_get_bool(x, "read_only", &has_ro, &o.read_only))
		return x->out->status;
	if (!o.name)
		o.name = "token";
	if (has_days)
		o.expires_at = (int64_t)time(NULL) + days * 86400;
	ret = token_create(x->db, x->arg[0], &o, secret, sizeof(secret), &id);
	if (ret)
		return reply_grove_error(x->out, ret);
	call_answer(x, MHD_HTTP_CREATED,
		    json_pack("{s:I,s:s,s:s,s:s,s:I,s:b}", "id", (json_int_t)id, "user", x->arg[0], "name", o.name, "token",
			      secret, "expires_at", (json_int_t)o.expires_at, "read_only", o.read_only));
	memset(secret, 0, sizeof(secret));
	return x->out->status;
}

/* DELETE …/tokens/NAME or …/tokens/ID */
int token_delete(struct call *x)
{
	int ret = token_revoke(x->db, x->arg[0], x->arg[1]);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_NO_CONTENT, NULL);
}
