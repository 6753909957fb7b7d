/*
 * libFuzzer target for src/lib/adminreq.c, the admin API's request parsing
 * (the very functions src/gate/admin.c calls on a request body): the body
 * as JSON, its fields, the deploy branch check and the public key line.
 * Every refusal carries a message; every acceptance holds what it promises.
 */
#include "lib/adminreq.h"
#include "lib/common.h"
#include "lib/error.h"

static void refused(int ret)
{
	if (ret >= 0 || !error_msg()[0])
		abort();
	error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { "name", "admin", "deploy_branch", "route", "locked", "public_key",
					      "to", "access", "dry_run", NULL };
	static const char *const strs[] = { "name", "route", "to", "access" };
	static const char *const bools[] = { "admin", "locked", "dry_run" };
	json_t *body = NULL;
	const char *s;
	int ret;

	error_clear();
	ret = adminreq_parse_body((const char *)data, size, &body);
	if (ret) {
		refused(ret);
		if (body)
			abort();
		return 0;
	}
	if (!json_is_object(body))
		abort();
	ret = adminreq_check_fields(body, fields);
	if (ret)
		refused(ret);
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		ret = adminreq_get_str(body, strs[i], i == 0, &s);
		if (ret)
			refused(ret);
		else if (s && strlen(s) != json_string_length(json_object_get(body, strs[i])))
			abort();   /* a NUL inside would cut the name the database sees */
	}
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++) {
		bool present, b;
		ret = adminreq_get_bool(body, bools[i], &present, &b);
		if (ret)
			refused(ret);
	}
	ret = adminreq_get_str(body, "deploy_branch", false, &s);
	if (ret) {
		refused(ret);
	} else if (s) {
		ret = adminreq_check_branch(s);
		if (ret) {
			refused(ret);
		} else {
			size_t n = strlen(s);
			if (!n || n > ADMINREQ_BRANCH_MAX || strstr(s, "..") || s[0] == '-' || s[0] == '/')
				abort();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
					abort();
		}
	}
	ret = adminreq_get_str(body, "public_key", false, &s);
	if (ret) {
		refused(ret);
	} else if (s) {
		struct adminreq_key k;
		ret = adminreq_parse_key(s, &k);
		if (ret) {
			refused(ret);
			if (k.fingerprint || k.line)
				abort();
		} else {
			if (!k.fingerprint || strncmp(k.fingerprint, "SHA256:", 7) || !k.line || strchr(k.line, '\n'))
				abort();
			adminreq_key_release(&k);
		}
	}
	json_decref(body);
	return 0;
}
