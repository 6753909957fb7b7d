/* Safe git command lines: see gitcmd.h. */
#include "lib/gitcmd.h"

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
	if (git_dir)
		strvec_pushf(argv, "--git-dir=%s", git_dir);
}
