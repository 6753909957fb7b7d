/*
 * git command lines that run safely on repositories whose contents a user
 * controls. Configuration that would run a program is overridden on the
 * command line (which beats the repository's config): the repository's own
 * hooks never run, only the hooks directory the caller names (or none).
 */
#ifndef GROVE_GITCMD_H
#define GROVE_GITCMD_H

#include "lib/strvec.h"

struct gitcmd_opts {
	const char *git;        /* the git binary; NULL: "git" from PATH */
	const char *hooks_dir;  /* core.hooksPath; NULL: no hooks at all */
	/* fsck message ids let through (NULL-terminated); NULL: GITCMD_FSCK_IGNORE */
	const char *const *fsck_ignore;
};

/*
 * The historic quirks of real histories that GitHub and GitLab (Gitaly)
 * accept although fsck calls them errors: file modes written with a leading
 * zero (old git on some platforms), a malformed time zone, no space before
 * the date. Every other fsck error still refuses a push. Separated by
 * spaces, as the store.fsckIgnore and gate.fsckIgnore settings take them.
 */
#define GITCMD_FSCK_IGNORE "zeroPaddedFilemode badTimezone missingSpaceBeforeDate"

/*
 * Parses a list of fsck message ids separated by spaces or commas into out
 * (cleared first); each must be letters only, like "badTimezone".
 */
int gitcmd_fsck_ignore_parse(const char *list, struct strvec *out);
/* The parsed ids for struct gitcmd_opts: an empty list lets nothing through
 * (where NULL would mean GITCMD_FSCK_IGNORE). */
const char *const *gitcmd_fsck_ignore_ids(const struct strvec *ids);

/*
 * Starts argv with git and the safety options; git_dir, when not NULL, is
 * passed as --git-dir. The caller then pushes the subcommand and its
 * arguments, user-chosen strings only after "--".
 */
void gitcmd_init(struct strvec *argv, const struct gitcmd_opts *o, const char *git_dir);

#endif
