/* Safe git command lines: see gitcmd.h. */
#include "lib/gitcmd.h"
#include "lib/error.h"

static const char *const fsck_ignore_default[] = { "zeroPaddedFilemode", "badTimezone", "missingSpaceBeforeDate",
						   NULL };

int gitcmd_fsck_ignore_parse(const char *list, struct strvec *out)
{
	strvec_clear(out);
	for (const char *p = list ? list : ""; *p;) {
		size_t n = strcspn(p, " ,\t");
		if (n) {
			char id[64];
			if (n >= sizeof(id))
				return error_set(GROVE_EINVAL, "fsck message id \"%.*s\" is too long", (int)MIN(n, 64), p);
			memcpy(id, p, n);
			id[n] = '\0';
			for (size_t i = 0; i < n; i++)
				if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z')))
					return error_set(GROVE_EINVAL,
							 "\"%s\" is not an fsck message id (letters only, like badTimezone)", id);
			strvec_push(out, id);
		}
		p += n;
		p += strspn(p, " ,\t");
	}
	return 0;
}

const char *const *gitcmd_fsck_ignore_ids(const struct strvec *ids)
{
	static const char *const none[] = { NULL };
	return ids->n ? strvec_argv(ids) : none;
}

/* An ignored id for each place git checks objects: fsck itself, pushes
 * received (receive.fsckObjects) and fetches (transfer.fsckObjects). */
static void push_fsck_ignore(struct strvec *argv, const char *const *ids)
{
	static const char *const sections[] = { "fsck", "receive.fsck", "fetch.fsck" };
	for (; *ids; ids++) {
		for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
			strvec_push(argv, "-c");
			strvec_pushf(argv, "%s.%s=ignore", sections[i], *ids);
		}
	}
}

void gitcmd_init(struct strvec *argv, const struct gitcmd_opts *o, const char *git_dir)
{
	strvec_push(argv, o && o->git ? o->git : "git");
	/* /dev/null is not a directory, so git finds no hook in it. */
	strvec_pushf(argv, "-c");
	strvec_pushf(argv, "core.hooksPath=%s", o && o->hooks_dir ? o->hooks_dir : "/dev/null");
	strvec_push(argv, "-c");
	strvec_push(argv, "core.fsmonitor=false");
	/* Only used with alternates, and then through a shell: make it inert. */
	strvec_push(argv, "-c");
	strvec_push(argv, "core.alternateRefsCommand=exit 0");
	strvec_push(argv, "-c");
	strvec_push(argv, "core.sshCommand=false");
	/* Housekeeping is OptimizeRepository's job, at a time the operator picks,
	 * not a side effect of whichever push crossed a threshold. */
	strvec_push(argv, "-c");
	strvec_push(argv, "gc.auto=0");
	strvec_push(argv, "-c");
	strvec_push(argv, "maintenance.auto=false");
	push_fsck_ignore(argv, o && o->fsck_ignore ? o->fsck_ignore : fsck_ignore_default);
	if (git_dir)
		strvec_pushf(argv, "--git-dir=%s", git_dir);
}
