/*
 * Archive URLs: a builder downloads the tar.gz of the commit it deploys from
 * the gate's HTTP port, with no Git access and no token. The URL carries its
 * expiry and an HMAC-SHA256, under the gate's secret, of the app, the commit
 * and the expiry, so it grants that one commit of that one app until then:
 *
 *   <base>/archive/<app>/<commit>.tar.gz?expires=<unix seconds>&signature=<64 hex>
 *
 * The archive is made where the app lives: `git archive` in the legacy
 * directory, or RepositoryService/GetArchive on the store or cluster (a
 * router sends it to an up-to-date replica). Either way it streams: nothing
 * holds a whole archive.
 */
#ifndef GROVE_GATE_ARCHIVE_H
#define GROVE_GATE_ARCHIVE_H

#include "gate/db.h"
#include "lib/common.h"
#include "lib/strbuf.h"

struct repo_env;
struct archive_src;

#define ARCHIVE_PREFIX "/archive/"

/* Appends the signed URL to out. */
void archive_url_make(const char *base, const char *secret, const char *app, const char *commit, int64_t expires,
		      struct strbuf *out);

/*
 * 0 when signature is the URL's for (app, commit, expires) and it has not
 * expired at now; else GROVE_EAUTH with what was wrong. Constant-time.
 */
int archive_url_check(const char *secret, const char *app, const char *commit, const char *expires,
		      const char *signature, int64_t now);

/*
 * Starts the archive of commit in app's repository on route and reads its
 * first bytes, so a missing repository or commit is an error here
 * (GROVE_ENOTFOUND, GROVE_EUNAVAIL…) and not a cut download.
 */
int archive_open(struct archive_src **out, const struct repo_env *env, enum route route, const char *app,
		 const char *commit);
/* Copies up to max bytes into buf: >0 bytes, 0 at the end, <0 on error (logged). */
ssize_t archive_read(struct archive_src *a, char *buf, size_t max);
/* Stops the archive if it is still running. Accepts NULL. */
void archive_free(struct archive_src *a);

#endif
