/* The admin API's users and their SSH keys: /api/v1/users, /api/v1/keys. */
#include "gate/admin/admin_int.h"
#include "lib/adminreq.h"
#include "lib/error.h"

/* ---- JSON documents from the database ---- */

/* Rows of users (name, admin, created_at) and then of keys (name, fingerprint). */
struct users_ctx {
	json_t *list;
	json_t *by_name;   /* name → the user's object in list */
};

static int user_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct users_ctx *u = ctx;
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(values[0]));
	json_object_set_new(o, "admin", json_boolean(values[1] && strcmp(values[1], "0")));
	json_object_set_new(o, "created_at", jstr(values[2]));
	json_object_set_new(o, "keys", json_array());
	json_array_append_new(u->list, o);
	json_object_set(u->by_name, values[0], o);
	return 0;
}

static int user_key_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct users_ctx *u = ctx;
	json_t *o = json_object_get(u->by_name, values[0]);
	if (o)
		json_array_append_new(json_object_get(o, "keys"), jstr(values[1]));
	return 0;
}

/* All users, or the one named (NULL for all), each with its keys' fingerprints. */
static int users_json(struct db *db, const char *name, json_t **out)
{
	struct users_ctx u = { json_array(), json_object() };
	int ret;

	*out = NULL;
	ret = db_users_each(db, name, user_row, &u);
	if (!ret)
		ret = db_user_keys_each(db, name, user_key_row, &u);
	json_decref(u.by_name);
	if (ret) {
		json_decref(u.list);
		return ret;
	}
	*out = u.list;
	return 0;
}

/* ---- handlers ---- */

int users_list(struct call *x)
{
	json_t *j = NULL;
	int ret = users_json(x->db, NULL, &j);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_OK, j);
}

int user_get(struct call *x)
{
	json_t *j = NULL;
	int ret = users_json(x->db, x->arg[0], &j);
	if (!ret && !json_array_size(j))
		ret = error_set(GROVE_ENOTFOUND, "no user named %.64s", x->arg[0]);
	if (ret) {
		json_decref(j);
		return reply_grove_error(x->out, ret);
	}
	call_answer(x, MHD_HTTP_OK, json_incref(json_array_get(j, 0)));
	json_decref(j);
	return MHD_HTTP_OK;
}

int user_create(struct call *x)
{
	static const char *const fields[] = { "name", "admin", NULL };
	const char *name;
	bool has_admin = false, admin = false;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "name", true, &name) || call_get_bool(x, "admin", &has_admin, &admin))
		return x->out->status;
	ret = db_user_create(x->db, name, admin);
	if (ret)
		return reply_grove_error(x->out, ret);
	x->arg[0] = name;
	user_get(x);
	if (x->out->status == MHD_HTTP_OK)
		x->out->status = MHD_HTTP_CREATED;
	return x->out->status;
}

int user_delete(struct call *x)
{
	int ret = db_user_delete(x->db, x->arg[0]);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_NO_CONTENT, NULL);
}

int key_add(struct call *x)
{
	static const char *const fields[] = { "public_key", NULL };
	struct adminreq_key k;
	const char *text;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "public_key", true, &text))
		return x->out->status;
	ret = adminreq_parse_key(text, &k);
	if (ret)
		return reply_grove_error(x->out, ret);
	ret = db_key_add(x->db, x->arg[0], k.fingerprint, k.line);
	if (ret)
		reply_grove_error(x->out, ret);
	else
		call_answer(x, MHD_HTTP_CREATED,
		       json_pack("{s:s,s:s,s:s}", "fingerprint", k.fingerprint, "user", x->arg[0], "type", k.type));
	adminreq_key_release(&k);
	return x->out->status;
}

int key_remove(struct call *x)
{
	int ret = db_key_remove(x->db, x->arg[0]);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_NO_CONTENT, NULL);
}
