/* Signed archive URLs and the archive streams behind them: see archive.h. */
#include "gate/archive.h"
#include "gate/gate.h"
#include "gate/repos.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "grove/v1/repository.pb-c.h"

#include <git2.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>

#define ARCHIVE_ERR_MAX 4096

struct archive_src {
	/* legacy route: git archive's pipes */
	struct proc proc;
	struct strbuf err;
	/* cluster route: the GetArchive stream and the message being copied out */
	struct rpc_client *cl;
	struct rpc_stream *st;
	Grove__V1__GetArchiveResponse *msg;
	size_t off;
	bool done;
	char app[GATE_APP_NAME_MAX + 1];
	char commit[41];
};

static void sign(const char *secret, const char *app, const char *commit, const char *expires, char out[65])
{
	char msg[256];
	snprintf(msg, sizeof(msg), "archive.v1.%s.%s.%s", app, commit, expires);
	auth_hmac_hex(secret, msg, out);
}

void archive_url_make(const char *base, const char *secret, const char *app, const char *commit, int64_t expires,
		      struct strbuf *out)
{
	char exp[24], sig[65];
	size_t blen = strlen(base);
	snprintf(exp, sizeof(exp), "%lld", (long long)expires);
	sign(secret, app, commit, exp, sig);
	while (blen && base[blen - 1] == '/')
		blen--;
	strbuf_addf(out, "%.*s%s%s/%s.tar.gz?expires=%s&signature=%s", (int)blen, base, ARCHIVE_PREFIX, app, commit,
		    exp, sig);
}

int archive_url_check(const char *secret, const char *app, const char *commit, const char *expires,
		      const char *signature, int64_t now)
{
	char want[65];
	long long t;
	char *end;

	if (!expires || !signature)
		return error_set(GROVE_EAUTH, "this archive URL has no expires= or signature=: ask for a fresh URL");
	if (strlen(signature) != 64 || strspn(expires, "0123456789") != strlen(expires) || !*expires ||
	    strlen(expires) > 18)
		return error_set(GROVE_EAUTH, "this archive URL is malformed: ask for a fresh URL");
	errno = 0;
	t = strtoll(expires, &end, 10);
	/* The signature first, so a forged URL learns nothing from the expiry. */
	sign(secret, app, commit, expires, want);
	if (CRYPTO_memcmp(want, signature, 64))
		return error_set(GROVE_EAUTH, "this archive URL's signature is wrong: use the URL exactly as the gate gave it");
	if (errno || t < now)
		return error_set(GROVE_EAUTH, "this archive URL expired %lld seconds ago: ask for a fresh URL",
				 (long long)(now - t));
	return 0;
}

/* ---- legacy route: git archive, run here ---- */

static int open_legacy(struct archive_src *a, const struct repo_env *env)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_oid oid;
	char dir[4096];
	int ret = 0;

	snprintf(dir, sizeof(dir), "%s/%s.git", env->legacy_dir, a->app);
	if (git_repository_open_bare(&repo, dir) < 0) {
		ret = error_set(GROVE_ENOTFOUND, "app %s has no repository yet: push to it first", a->app);
		goto out;
	}
	if (git_oid_fromstr(&oid, a->commit) < 0 || git_commit_lookup(&commit, repo, &oid) < 0) {
		ret = error_set(GROVE_ENOTFOUND, "app %s has no commit %s", a->app, a->commit);
		goto out;
	}
	const char *argv[] = { "git", "-C", dir, "archive", "--format=tar.gz", a->commit, NULL };
	ret = proc_start(&a->proc, argv, NULL, NULL, PROC_STDOUT | PROC_STDERR | PROC_NONBLOCK | PROC_NEWPGRP);
out:
	git_commit_free(commit);
	git_repository_free(repo);
	return ret;
}

static ssize_t read_legacy(struct archive_src *a, char *buf, size_t max)
{
	if (a->proc.pid <= 0)
		return 0;   /* git was waited for: the end was returned already */
	for (;;) {
		struct pollfd pfd[2] = { { a->proc.out, POLLIN, 0 }, { a->proc.err, POLLIN, 0 } };
		if (a->proc.out < 0)
			break;
		if (poll(pfd, a->proc.err >= 0 ? 2 : 1, 60000) <= 0) {
			if (errno == EINTR)
				continue;
			log_warn("archive.stalled", "app=%s commit=%s", a->app, a->commit);
			return -1;
		}
		if (a->proc.err >= 0 && pfd[1].revents) {
			char tmp[1024];
			ssize_t n = read(a->proc.err, tmp, sizeof(tmp));
			if (n > 0)
				strbuf_add(&a->err, tmp, (size_t)n);   /* bounded: the rest is dropped */
			else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(a->proc.err);
				a->proc.err = -1;
			}
		}
		if (pfd[0].revents) {
			ssize_t n = read(a->proc.out, buf, max);
			if (n > 0)
				return n;
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(a->proc.out);
				a->proc.out = -1;
			}
		}
	}
	int code = proc_wait(&a->proc);
	if (code) {
		strbuf_rtrim(&a->err);
		log_warn("archive.failed", "app=%s commit=%s exit=%d error=%s", a->app, a->commit, code, a->err.buf);
		return -1;
	}
	return 0;
}

/* ---- cluster route: GetArchive ---- */

static int next_message(struct archive_src *a)
{
	FREE_MSG(a->msg);
	a->off = 0;
	int n = rpc_stream_recv(a->st, &grove__v1__get_archive_response__descriptor, (ProtobufCMessage **)&a->msg);
	if (n > 0)
		return 1;
	if (n < 0)
		return n;
	a->done = true;
	return rpc_stream_finish(a->st);
}

static int open_cluster(struct archive_src *a, const struct repo_env *env)
{
	Grove__V1__Repository r = GROVE__V1__REPOSITORY__INIT;
	Grove__V1__GetArchiveRequest req = GROVE__V1__GET_ARCHIVE_REQUEST__INIT;
	char rel[GATE_APP_NAME_MAX + 9];
	int ret;

	if (!env->cluster_address)
		return error_set(GROVE_EUNAVAIL, "app %s is on the cluster route but this gate has no route.cluster", a->app);
	snprintf(rel, sizeof(rel), "%s.git", a->app);
	r.storage_name = (char *)env->cluster_storage;
	r.relative_path = rel;
	req.repository = &r;
	req.commit_id = a->commit;
	req.format = "tar.gz";
	if ((ret = rpc_client_new(&a->cl, env->cluster_address, env->secret)) ||
	    (ret = rpc_stream_open(a->cl, "/grove.v1.RepositoryService/GetArchive", 0, &a->st)) ||
	    (ret = rpc_stream_send(a->st, &req.base)))
		return ret;
	rpc_stream_close_send(a->st);
	ret = next_message(a);
	return ret < 0 ? ret : 0;
}

static ssize_t read_cluster(struct archive_src *a, char *buf, size_t max)
{
	while (!a->done && (!a->msg || a->off == a->msg->data.len)) {
		int ret = next_message(a);
		if (ret < 0) {
			log_warn("archive.failed", "app=%s commit=%s error=%s", a->app, a->commit, error_msg());
			return -1;
		}
	}
	if (a->done && (!a->msg || a->off == a->msg->data.len))
		return 0;
	size_t n = a->msg->data.len - a->off;
	if (n > max)
		n = max;
	memcpy(buf, a->msg->data.data + a->off, n);
	a->off += n;
	return (ssize_t)n;
}

int archive_open(struct archive_src **out, const struct repo_env *env, enum route route, const char *app,
		 const char *commit)
{
	struct archive_src *a = xcalloc(1, sizeof(*a));
	int ret;

	*out = NULL;
	a->proc.pid = -1;
	a->proc.in = a->proc.out = a->proc.err = -1;
	strbuf_init(&a->err, ARCHIVE_ERR_MAX);
	strlcpy_(a->app, app, sizeof(a->app));
	strlcpy_(a->commit, commit, sizeof(a->commit));
	ret = route == ROUTE_LEGACY ? open_legacy(a, env) : open_cluster(a, env);
	if (ret) {
		archive_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

ssize_t archive_read(struct archive_src *a, char *buf, size_t max)
{
	return a->cl ? read_cluster(a, buf, max) : read_legacy(a, buf, max);
}

void archive_free(struct archive_src *a)
{
	if (!a)
		return;
	if (a->proc.pid > 0) {
		/* The client went away mid-download: stop git. */
		proc_kill(&a->proc, SIGKILL);
		proc_wait(&a->proc);
	}
	if (a->st && !a->done)
		rpc_stream_cancel(a->st);
	rpc_stream_free(a->st);
	rpc_client_free(a->cl);
	FREE_MSG(a->msg);
	strbuf_release(&a->err);
	free(a);
}
