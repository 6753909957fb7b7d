/* Ref namespaces a push may touch: see refpolicy.h. */
#include "lib/common.h"
#include "gate/refpolicy.h"
#include "lib/error.h"

static int entry_check(const char *e)
{
	size_t n = strlen(e);
	if (strncmp(e, "refs/", 5) || n < 6 || e[n - 1] != '/')
		return error_set(GROVE_EINVAL, "\"%.64s\" is not a ref namespace: write it as refs/NAME/ (with the last /)", e);
	if (strstr(e, "..") || strstr(e, "//"))
		return error_set(GROVE_EINVAL, "\"%.64s\" is not a ref namespace: no \"..\" or \"//\" in it", e);
	for (const char *p = e; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("~^:?*[\\", *p))
			return error_set(GROVE_EINVAL, "\"%.64s\" is not a ref namespace: it has a character git refuses in ref names", e);
	return 0;
}

int refpolicy_parse(const char *list, struct strvec *out)
{
	char *copy = xstrdup(list ? list : ""), *save = NULL;
	bool heads = false;
	int ret = 0;

	strvec_clear(out);
	for (char *e = strtok_r(copy, " ,\t", &save); e && !ret; e = strtok_r(NULL, " ,\t", &save)) {
		if (!(ret = entry_check(e))) {
			heads |= !strcmp(e, "refs/heads/");
			strvec_push(out, e);
		}
	}
	if (!ret && !heads)
		ret = error_set(GROVE_EINVAL, "the list must name refs/heads/: the deploy branch lives there");
	free(copy);
	if (ret)
		strvec_clear(out);
	return ret;
}

bool refpolicy_allows(const struct strvec *ns, const char *ref)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strncmp(ref, ns->v[i], strlen(ns->v[i])))
			return true;
	return false;
}
