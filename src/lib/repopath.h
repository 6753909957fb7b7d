/*
 * Repository addresses. A repository is named by (storage name, relative
 * path), both chosen by callers, and neither ever becomes a file name: the
 * path is validated and then hashed into the storage root, as Gitaly's
 * "@hashed" layout does, so no request can reach outside the root.
 *
 *   root/@hashed/ab/cd/abcd…(64 hex of SHA-256(relative path)).git
 */
#ifndef GROVE_REPOPATH_H
#define GROVE_REPOPATH_H

#include "lib/strbuf.h"

#define REPOPATH_MAX 1024
#define STORAGE_NAME_MAX 64

/*
 * A relative path: 1..REPOPATH_MAX printable ASCII bytes without quotes,
 * backslashes or spaces; '/'-separated components that are neither empty,
 * "." nor "..", and do not start with '-' or '~'. GROVE_EINVAL with the reason.
 */
int repopath_validate(const char *rel);

/* A storage name: [A-Za-z0-9][A-Za-z0-9._-]*, at most STORAGE_NAME_MAX bytes. */
int storage_name_validate(const char *name);

/* Appends the repository's directory under root to out (validates rel first). */
int repopath_map(const char *root, const char *rel, struct strbuf *out);

#endif
