/* An app's repository where it lives, for the gate's operations on it: see repos.h. */
#include "gate/repos.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/gitcmd.h"
#include "lib/proc.h"
#include "lib/strvec.h"

#include "grove/v1/ref.pb-c.h"

#include <fcntl.h>
#include <git2.h>

void repo_report(struct strbuf *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(r, fmt, ap);
	va_end(ap);
	strbuf_addch(r, '\n');
}

int repo_git(const char *dir, const char *const *args)
{
	struct strvec argv = STRVEC_INIT;
	struct strbuf err;
	const char *sub = args[0];
	int ret;
	strbuf_init(&err, 64 * 1024);
	gitcmd_init(&argv, NULL, dir);
	for (; *args; args++)
		strvec_push(&argv, *args);
	ret = proc_run(strvec_argv(&argv), NULL, NULL, NULL, 0, NULL, &err);
	if (ret > 0) {
		strbuf_rtrim(&err);
		ret = error_set(GROVE_EINTERNAL, "git %s failed: %s", sub, err.buf);
	}
	strvec_clear(&argv);
	strbuf_release(&err);
	return ret;
}

int repo_bundle_start(const char *dir, struct proc *p)
{
	struct strvec argv = STRVEC_INIT;
	int ret;
	gitcmd_init(&argv, NULL, dir);
	strvec_push(&argv, "bundle");
	strvec_push(&argv, "create");
	strvec_push(&argv, "--quiet");
	strvec_push(&argv, "-");
	strvec_push(&argv, "--all");
	ret = proc_start(p, strvec_argv(&argv), NULL, NULL, PROC_STDOUT);
	strvec_clear(&argv);
	return ret;
}

/* HEAD's target ("refs/heads/main") of a local bare repository. */
int repo_local_head(const char *dir, char *out, size_t n)
{
	char path[4200], buf[1100];
	const char *ref;
	snprintf(path, sizeof(path), "%s/HEAD", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return error_set(GROVE_EIO, "cannot read %s: %s", path, strerror(errno));
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	if (!skip_prefix(buf, "ref: ", &ref))
		return error_set(GROVE_EINVAL, "HEAD of %s is detached", dir);
	strlcpy_(out, ref, n);
	return 0;
}

int repo_remote_checksum(struct repo_remote *r, char out[65])
{
	Grove__V1__CalculateChecksumRequest req = GROVE__V1__CALCULATE_CHECKSUM_REQUEST__INIT;
	Grove__V1__CalculateChecksumResponse *resp = NULL;
	req.repository = &r->repo;
	int ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/CalculateChecksum", &req.base,
			    &grove__v1__calculate_checksum_response__descriptor, (ProtobufCMessage **)&resp, 60000);
	if (!ret)
		strlcpy_(out, resp->checksum, 65);
	FREE_MSG(resp);
	return ret;
}

int repo_remote_exists(struct repo_remote *r, bool *exists)
{
	Grove__V1__RepositoryExistsRequest req = GROVE__V1__REPOSITORY_EXISTS_REQUEST__INIT;
	Grove__V1__RepositoryExistsResponse *resp = NULL;
	req.repository = &r->repo;
	int ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/RepositoryExists", &req.base,
			    &grove__v1__repository_exists_response__descriptor, (ProtobufCMessage **)&resp, 30000);
	if (!ret)
		*exists = resp->exists;
	FREE_MSG(resp);
	return ret;
}

int repo_remote_size(struct repo_remote *r, uint64_t *bytes)
{
	Grove__V1__RepositorySizeRequest req = GROVE__V1__REPOSITORY_SIZE_REQUEST__INIT;
	Grove__V1__RepositorySizeResponse *resp = NULL;
	req.repository = &r->repo;
	int ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/RepositorySize", &req.base,
			    &grove__v1__repository_size_response__descriptor, (ProtobufCMessage **)&resp, 30000);
	if (!ret)
		*bytes = resp->bytes;
	FREE_MSG(resp);
	return ret;
}

int repo_remote_remove(struct repo_remote *r)
{
	Grove__V1__RemoveRepositoryRequest req = GROVE__V1__REMOVE_REPOSITORY_REQUEST__INIT;
	Grove__V1__RemoveRepositoryResponse *resp = NULL;
	req.repository = &r->repo;
	int ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/RemoveRepository", &req.base,
			    &grove__v1__remove_repository_response__descriptor, (ProtobufCMessage **)&resp, 60000);
	FREE_MSG(resp);
	return ret == GROVE_ENOTFOUND ? 0 : ret;
}

int repo_remote_set_head(struct repo_remote *r, const char *ref)
{
	Grove__V1__SetDefaultBranchRequest req = GROVE__V1__SET_DEFAULT_BRANCH_REQUEST__INIT;
	Grove__V1__SetDefaultBranchResponse *resp = NULL;
	req.repository = &r->repo;
	req.name = (char *)ref;
	int ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/SetDefaultBranch", &req.base,
			    &grove__v1__set_default_branch_response__descriptor, (ProtobufCMessage **)&resp, 30000);
	FREE_MSG(resp);
	return ret;
}

/* legacy → cluster: the bundle goes straight from git to the store, in chunks. */
/* Streams a bundle read from fd into a new repository on the cluster (CreateRepositoryFromBundle). */
int repo_send_bundle(struct repo_remote *r, int fd)
{
	Grove__V1__CreateRepositoryFromBundleRequest req = GROVE__V1__CREATE_REPOSITORY_FROM_BUNDLE_REQUEST__INIT;
	struct rpc_stream *st = NULL;
	ProtobufCMessage *resp = NULL;
	char *buf = xmalloc(RPC_CHUNK_MAX);
	int ret;

	if ((ret = rpc_stream_open(r->cl, "/grove.v1.RepositoryService/CreateRepositoryFromBundle", 0, &st)))
		goto out;
	req.repository = &r->repo;
	for (;;) {
		size_t got = 0;
		while (got < RPC_CHUNK_MAX) {
			ssize_t n = read(fd, buf + got, RPC_CHUNK_MAX - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (!got)
			break;
		req.data.data = (uint8_t *)buf;
		req.data.len = got;
		if ((ret = rpc_stream_send(st, &req.base)))
			break;
		progress_add(r->progress, got);
		req.repository = NULL;
	}
	if (ret) {
		rpc_stream_cancel(st);
		rpc_stream_finish(st);
		goto out;
	}
	rpc_stream_close_send(st);
	rpc_stream_recv(st, &grove__v1__create_repository_from_bundle_response__descriptor, &resp);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	ret = rpc_stream_finish(st);
out:
	free(buf);
	rpc_stream_free(st);
	return ret;
}

/*
 * The repository as a bundle from the cluster (CreateBundle), written to fd.
 * GROVE_EPRECOND, as the store answers, for an empty repository (no bundle).
 */
int repo_receive_bundle(struct repo_remote *r, int fd)
{
	Grove__V1__CreateBundleRequest req = GROVE__V1__CREATE_BUNDLE_REQUEST__INIT;
	struct rpc_stream *st = NULL;
	int ret;

	req.repository = &r->repo;
	if ((ret = rpc_stream_open(r->cl, "/grove.v1.RepositoryService/CreateBundle", 0, &st)) ||
	    (ret = rpc_stream_send(st, &req.base)))
		goto out;
	rpc_stream_close_send(st);
	for (;;) {
		Grove__V1__CreateBundleResponse *resp = NULL;
		int n = rpc_stream_recv(st, &grove__v1__create_bundle_response__descriptor, (ProtobufCMessage **)&resp);
		if (n <= 0)
			break;
		ret = write_all(fd, resp->data.data, resp->data.len);
		progress_add(r->progress, resp->data.len);
		FREE_MSG(resp);
		if (ret) {
			ret = error_set(GROVE_EIO, "writing the bundle: %s", strerror(errno));
			rpc_stream_cancel(st);
			break;
		}
	}
	if (!ret)
		ret = rpc_stream_finish(st);
out:
	rpc_stream_free(st);
	return ret;
}

int repo_remote_open(const struct repo_env *env, const char *name, char *rel, size_t reln, struct repo_remote *r)
{
	snprintf(rel, reln, "%s.git", name);
	r->repo.storage_name = (char *)env->cluster_storage;
	r->repo.relative_path = rel;
	if (!env->cluster_address)
		return error_set(GROVE_EPRECOND, "no cluster is configured ([route] cluster)");
	return rpc_client_new(&r->cl, env->cluster_address, env->secret);
}

/* ---- the default branch (HEAD) ---- */

static int legacy_set_default_branch(const struct repo_env *env, const char *app, const char *ref)
{
	git_repository *repo = NULL;
	git_reference *r = NULL, *head = NULL;
	char dir[4096];
	int ret = 0;

	if ((ret = fs_pathf(dir, sizeof(dir), "%s/%s.git", env->legacy_dir, app)))
		return ret;
	if (git_repository_open_bare(&repo, dir) < 0) {
		ret = error_set(GROVE_ENOTFOUND, "app %s has no code yet: push to it first", app);
		goto out;
	}
	if (git_reference_lookup(&r, repo, ref) < 0) {
		ret = error_set(GROVE_ENOTFOUND, "app %s has no branch %s: push it first", app, ref + strlen("refs/heads/"));
		goto out;
	}
	if (git_reference_symbolic_create(&head, repo, "HEAD", ref, 1, "grove: set default branch") < 0)
		ret = error_set(GROVE_EIO, "cannot set HEAD of %s: %s", app, git_error_last()->message);
out:
	git_reference_free(head);
	git_reference_free(r);
	git_repository_free(repo);
	return ret;
}

static int cluster_set_default_branch(const struct repo_env *env, const char *app, const char *ref)
{
	Grove__V1__FindCommitRequest freq = GROVE__V1__FIND_COMMIT_REQUEST__INIT;
	Grove__V1__FindCommitResponse *fresp = NULL;
	Grove__V1__SetDefaultBranchRequest sreq = GROVE__V1__SET_DEFAULT_BRANCH_REQUEST__INIT;
	Grove__V1__SetDefaultBranchResponse *sresp = NULL;
	struct repo_remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
	char rel[128];
	int ret;

	if ((ret = repo_remote_open(env, app, rel, sizeof(rel), &r)))
		goto out;
	/* The whole ref: a bare "main" could also name a tag. */
	freq.repository = sreq.repository = &r.repo;
	freq.revision = (char *)ref;
	ret = rpc_unary(r.cl, "/grove.v1.RefService/FindCommit", &freq.base, &grove__v1__find_commit_response__descriptor,
			(ProtobufCMessage **)&fresp, 10000);
	if (ret == GROVE_ENOTFOUND || (!ret && !fresp->commit)) {
		ret = error_set(GROVE_ENOTFOUND, "app %s has no branch %s: push it first", app, ref + strlen("refs/heads/"));
		goto out;
	}
	if (ret)
		goto out;
	sreq.name = (char *)ref;
	ret = rpc_unary(r.cl, "/grove.v1.RepositoryService/SetDefaultBranch", &sreq.base,
			&grove__v1__set_default_branch_response__descriptor, (ProtobufCMessage **)&sresp, 10000);
out:
	FREE_MSG(fresp);
	FREE_MSG(sresp);
	rpc_client_free(r.cl);
	return ret;
}

int repo_set_default_branch(const struct repo_env *env, enum route route, const char *app, const char *branch)
{
	char ref[300];
	int ret = fs_pathf(ref, sizeof(ref), "refs/heads/%s", branch);
	if (ret)
		return ret;
	return route == ROUTE_LEGACY ? legacy_set_default_branch(env, app, ref) : cluster_set_default_branch(env, app, ref);
}
