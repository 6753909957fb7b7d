/* The admin API's endpoints under /api/v1/: which handler answers what. */
#include "gate/admin/admin_int.h"

/*
 * Patterns are matched part by part after "/api/v1/": "*" takes one part,
 * "**" the rest of the path (a key fingerprint's base64 holds '/').
 */
struct route_def {
	const char *method;
	const char *pattern;
	handler_fn *fn;
	bool body;            /* takes a JSON object */
};

static const struct route_def routes[] = {
	{ "GET", "users", users_list, false },
	{ "POST", "users", user_create, true },
	{ "GET", "users/*", user_get, false },
	{ "DELETE", "users/*", user_delete, false },
	{ "POST", "users/*/keys", key_add, true },
	{ "DELETE", "keys/**", key_remove, false },
	{ "GET", "users/*/tokens", tokens_list, false },
	{ "POST", "users/*/tokens", token_post, true },
	{ "DELETE", "users/*/tokens/*", token_delete, false },
	{ "GET", "status", status_get, false },
	{ "GET", "cluster", cluster_get, false },
	{ "GET", "canary", canary_get, false },
	{ "PUT", "canary", canary_put, true },
	{ "GET", "migrations", migrations_get, false },
	{ "POST", "migrations", migrations_post, true },
	{ "GET", "operations", operations_get, false },
	{ "GET", "apps", apps_list, false },
	{ "POST", "apps", app_create, true },
	{ "GET", "apps/*", app_get, false },
	{ "PATCH", "apps/*", app_patch, true },
	{ "DELETE", "apps/*", app_delete, false },
	{ "POST", "apps/*/migrate", app_migrate_post, true },
	{ "POST", "apps/*/gc", app_gc_post, false },
	{ "POST", "apps/*/verify", app_verify_post, false },
	{ "POST", "apps/*/accept-dataloss", app_accept_dataloss_post, true },
	{ "POST", "import-legacy", apps_import_legacy, false },
	{ "PUT", "apps/*/collaborators/*", collaborator_put, true },
	{ "DELETE", "apps/*/collaborators/*", collaborator_delete, false },
	{ "GET", "apps/*/deployments", app_deployments, false },
	{ "GET", "deployments/*", deployment_get, false },
};

/* The '*' parts go into buf NUL-separated. */
bool route_match(const char *pattern, const char *path, char *buf, size_t bufsz, const char *arg[2])
{
	const char *p = pattern, *s = path;
	size_t used = 0;
	int n = 0;

	arg[0] = arg[1] = NULL;
	while (*p) {
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen;
		if (plen == 2 && !strncmp(p, "**", 2))
			se = NULL;
		slen = se ? (size_t)(se - s) : strlen(s);
		if (!slen)
			return false;
		if (p[0] == '*') {
			if (n >= 2 || used + slen + 1 > bufsz)
				return false;
			memcpy(buf + used, s, slen);
			buf[used + slen] = '\0';
			arg[n++] = buf + used;
			used += slen + 1;
		} else if (plen != slen || strncmp(p, s, plen)) {
			return false;
		}
		p += plen;
		s += slen;
		if (!*p)
			return !*s;
		p++;
		if (*s != '/')
			return false;
		s++;
	}
	return !*s;
}

const struct route_def *route_find(const char *method, const char *path, char *buf, size_t bufsz,
				   const char *arg[2], char *allow, size_t allowsz)
{
	allow[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		size_t used = strlen(allow);
		if (!route_match(routes[i].pattern, path, buf, bufsz, arg))
			continue;
		if (!strcmp(routes[i].method, method))
			return &routes[i];
		snprintf(allow + used, allowsz - used, "%s%s", used ? ", " : "", routes[i].method);
	}
	arg[0] = arg[1] = NULL;
	return NULL;
}

handler_fn *route_handler(const struct route_def *r)
{
	return r->fn;
}

bool route_takes_body(const struct route_def *r)
{
	return r->body;
}
