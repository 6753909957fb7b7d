/* A HEAD that names a missing branch after a push: see repohead.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/repohead.h"
#include "lib/strvec.h"

#include <git2.h>

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The branch a HEAD with no branch of its own should name, from names (sorted). */
static const char *head_choice(const struct strvec *names)
{
	if (names->n == 1)
		return names->v[0];
	for (size_t i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], "refs/heads/main"))
			return names->v[i];
	for (size_t i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], "refs/heads/master"))
			return names->v[i];
	return names->v[0];
}

/* Every local branch's full name. */
static int list_branches(git_repository *repo, struct strvec *out)
{
	git_branch_iterator *it = NULL;
	git_reference *ref;
	git_branch_t type;
	int r;

	if (git_branch_iterator_new(&it, repo, GIT_BRANCH_LOCAL) < 0)
		return error_set(GROVE_EIO, "cannot list branches: %s", git_error_last()->message);
	while (!(r = git_branch_next(&ref, &type, it))) {
		strvec_push(out, git_reference_name(ref));
		git_reference_free(ref);
	}
	git_branch_iterator_free(it);
	if (r != GIT_ITEROVER)
		return error_set(GROVE_EIO, "cannot list branches: %s", git_error_last()->message);
	return 0;
}

int repo_head_settle(const char *path, char *chosen, size_t n, int *moved)
{
	git_repository *repo = NULL;
	struct strvec names = STRVEC_INIT;
	int ret = 0;

	*moved = 0;
	if (git_repository_open_bare(&repo, path) < 0) {
		ret = error_set(GROVE_EIO, "cannot open repository %s: %s", path,
				git_error_last() ? git_error_last()->message : "?");
		goto out;
	}
	/* 1: HEAD names a branch that does not exist. */
	if (git_repository_head_unborn(repo) != 1)
		goto out;
	if ((ret = list_branches(repo, &names)) || !names.n)
		goto out;
	qsort(names.v, names.n, sizeof(*names.v), cmp_names);
	strlcpy_(chosen, head_choice(&names), n);
	if (git_repository_set_head(repo, chosen) < 0) {
		ret = error_set(GROVE_EIO, "cannot point HEAD of %s at %s: %s", path, chosen, git_error_last()->message);
		goto out;
	}
	*moved = 1;
out:
	strvec_clear(&names);
	git_repository_free(repo);
	return ret;
}
