/* grove.v1.RepositoryService on a store: see proto/grove/v1/repository.proto. */
#include "store/store.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/repopath.h"
#include "lib/strvec.h"
#include "grove/v1/repository.pb-c.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

static void create_repository(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__CreateRepositoryRequest *req = NULL;
	Grove__V1__CreateRepositoryResponse resp = GROVE__V1__CREATE_REPOSITORY_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__create_repository_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, false, &path);
	if (!ret)
		ret = store_repo_create(st, path.buf, req->repository->relative_path, req->default_branch);
	if (!ret)
		log_info("repo.created", "repo=%s", req->repository->relative_path);
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
}

static void remove_repository(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__RemoveRepositoryRequest *req = NULL;
	Grove__V1__RemoveRepositoryResponse resp = GROVE__V1__REMOVE_REPOSITORY_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__remove_repository_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (!ret)
		ret = store_repo_remove(st, path.buf);
	if (!ret)
		log_info("repo.removed", "repo=%s", req->repository->relative_path);
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
}

static void repository_exists(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__RepositoryExistsRequest *req = NULL;
	Grove__V1__RepositoryExistsResponse resp = GROVE__V1__REPOSITORY_EXISTS_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__repository_exists_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, false, &path);
	if (!ret)
		resp.exists = store_repo_exists(path.buf);
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
}

static void repository_size(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__RepositorySizeRequest *req = NULL;
	Grove__V1__RepositorySizeResponse resp = GROVE__V1__REPOSITORY_SIZE_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__repository_size_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (!ret && fs_disk_usage(path.buf, &resp.bytes))
		ret = error_set(GROVE_EIO, "cannot measure %s: %s", req->repository->relative_path, strerror(errno));
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
}

static void calculate_checksum(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__CalculateChecksumRequest *req = NULL;
	Grove__V1__CalculateChecksumResponse resp = GROVE__V1__CALCULATE_CHECKSUM_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	char sum[65];
	int ret = rpc_call_recv_one(call, &grove__v1__calculate_checksum_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (!ret)
		ret = store_repo_checksum(path.buf, sum, &resp.ref_count);
	resp.checksum = sum;
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
}

static void find_default_branch(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__FindDefaultBranchRequest *req = NULL;
	Grove__V1__FindDefaultBranchResponse resp = GROVE__V1__FIND_DEFAULT_BRANCH_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT, head = STRBUF_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__find_default_branch_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (!ret)
		ret = store_repo_head(path.buf, &head);
	resp.name = head.buf;
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
	strbuf_release(&head);
}

static void set_default_branch(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__SetDefaultBranchRequest *req = NULL;
	Grove__V1__SetDefaultBranchResponse resp = GROVE__V1__SET_DEFAULT_BRANCH_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT, ref = STRBUF_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__set_default_branch_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (!ret)
		ret = store_branch_ref(req->name, &ref);
	if (!ret)
		ret = store_repo_set_head(path.buf, ref.buf);
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
	strbuf_release(&ref);
}

/* ---- housekeeping ---- */

struct repo_stats {
	unsigned loose_estimate;   /* loose objects, estimated from one fan-out folder */
	unsigned packs;
	unsigned loose_refs;
	bool commit_graph;
};

static unsigned count_dir(const char *dir, const char *suffix, unsigned cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) && n < cap) {
		if (e->d_name[0] == '.')
			continue;
		if (!suffix || ends_with(e->d_name, suffix))
			n++;
	}
	closedir(d);
	return n;
}

static _Thread_local unsigned refs_acc;

static int ref_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_F)
		refs_acc++;
	return refs_acc > 10000;
}

static void repo_stats(const char *path, struct repo_stats *s)
{
	char buf[4200];
	struct stat sb;
	/* Objects spread evenly over the 256 fan-out folders: one folder times
	 * 256 estimates the total without listing them all, as Gitaly does. */
	snprintf(buf, sizeof(buf), "%s/objects/17", path);
	s->loose_estimate = count_dir(buf, NULL, 100000) * 256;
	snprintf(buf, sizeof(buf), "%s/objects/pack", path);
	s->packs = count_dir(buf, ".pack", 100000);
	snprintf(buf, sizeof(buf), "%s/refs", path);
	refs_acc = 0;
	nftw(buf, ref_entry, 16, FTW_PHYS);
	s->loose_refs = refs_acc;
	snprintf(buf, sizeof(buf), "%s/objects/info/commit-graph", path);
	s->commit_graph = !stat(buf, &sb);
	snprintf(buf, sizeof(buf), "%s/objects/info/commit-graphs/commit-graph-chain", path);
	s->commit_graph = s->commit_graph || !stat(buf, &sb);
}

/* Removes the entries of dir whose names start with prefix and that were
 * last changed before cutoff: directories whole, files alone. */
static unsigned remove_old(const char *dir, const char *prefix, time_t cutoff)
{
	char path[4500];
	struct dirent *e;
	struct stat sb;
	unsigned n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &sb) || sb.st_mtime >= cutoff)
			continue;
		if (S_ISDIR(sb.st_mode) ? !fs_rmtree(path) : S_ISREG(sb.st_mode) && !unlink(path))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * What a killed or failed git left behind. Quarantine directories: git
 * removes its own on every normal exit, so one a day old is garbage.
 * Temporary object and pack files (tmp_obj_*, tmp_pack_*, tmp_idx_*): a
 * write that failed (a full disk) leaves them, and they hold the space it
 * lacked; one an hour old is no write in progress.
 */
static unsigned remove_leftovers(const char *repo)
{
	char dir[4200];
	time_t now = time(NULL);
	unsigned n;

	snprintf(dir, sizeof(dir), "%s/objects", repo);
	n = remove_old(dir, "tmp_objdir-", now - 24 * 3600) + remove_old(dir, "incoming-", now - 24 * 3600);
	for (int i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "%s/objects/%02x", repo, i);
		n += remove_old(dir, "tmp_obj_", now - 3600);
	}
	snprintf(dir, sizeof(dir), "%s/objects/pack", repo);
	n += remove_old(dir, "tmp_", now - 3600);
	return n;
}

/*
 * Lock files a killed git left: HEAD.lock, config.lock, packed-refs.lock
 * and packed-refs.new (its next version) in the repository's folder, a
 * ref's lock under refs/. git holds one for the length of one write, so
 * one an hour old is none in progress; left, it fails every later write
 * of that ref (or, packed-refs.lock, every deletion and pack-refs).
 */
static _Thread_local time_t locks_cutoff;
static _Thread_local unsigned locks_removed;

static bool stale_lock(const char *path, const char *name, const struct stat *sb)
{
	if (!S_ISREG(sb->st_mode) || sb->st_mtime >= locks_cutoff ||
	    (!ends_with(name, ".lock") && strcmp(name, "packed-refs.new")))
		return false;
	return !unlink(path);
}

static int ref_lock_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_F && stale_lock(p, p + ftw->base, sb))
		locks_removed++;
	return 0;
}

static unsigned remove_stale_locks(const char *repo)
{
	char path[4500];
	struct dirent *e;
	struct stat sb;
	DIR *d = opendir(repo);

	locks_cutoff = time(NULL) - 3600;
	locks_removed = 0;
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", repo, e->d_name);
		if (!lstat(path, &sb) && stale_lock(path, e->d_name, &sb))
			locks_removed++;
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "%s/refs", repo);
	nftw(path, ref_lock_entry, 16, FTW_PHYS);
	return locks_removed;
}

static int run_git(struct store *st, const char *dir, const char *const *args)
{
	struct strvec argv = STRVEC_INIT;
	gitcmd_init(&argv, &st->git_nohooks, dir);
	for (; *args; args++)
		strvec_push(&argv, *args);
	int ret = store_git(st, &argv, NULL, NULL);
	strvec_clear(&argv);
	return ret;
}

static void optimize_repository(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__OptimizeRepositoryRequest *req = NULL;
	Grove__V1__OptimizeRepositoryResponse resp = GROVE__V1__OPTIMIZE_REPOSITORY_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	struct repo_stats s;
	bool eager;
	int ret = rpc_call_recv_one(call, &grove__v1__optimize_repository_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (ret)
		goto out;
	eager = req->strategy == GROVE__V1__OPTIMIZE_REPOSITORY_REQUEST__STRATEGY__EAGER;
	unsigned stale = remove_leftovers(path.buf), locks = remove_stale_locks(path.buf);
	repo_stats(path.buf, &s);

	/* Many packs slow every object lookup: fold them into one, with a
	 * bitmap so clones skip the counting phase. -A keeps unreachable objects
	 * loose instead of dropping them, so an object a concurrent push has
	 * just written is never lost; prune removes them once old enough. */
	if (eager || s.packs > 16) {
		static const char *const full[] = { "repack", "-A", "-d", "-b", "-q", NULL };
		ret = run_git(st, path.buf, full);
		resp.repacked_fully = !ret;
	} else if (s.loose_estimate > 1024) {
		static const char *const incr[] = { "repack", "-d", "-q", NULL };
		ret = run_git(st, path.buf, incr);
		resp.repacked_incrementally = !ret;
	}
	if (!ret && (eager || s.loose_refs > 16)) {
		static const char *const packrefs[] = { "pack-refs", "--all", "--prune", NULL };
		ret = run_git(st, path.buf, packrefs);
		resp.packed_refs = !ret;
	}
	if (!ret && (eager || resp.repacked_fully || resp.repacked_incrementally || !s.commit_graph)) {
		static const char *const graph[] = { "commit-graph", "write", "--reachable", "--split",
						     "--changed-paths", "--no-progress", NULL };
		ret = run_git(st, path.buf, graph);
		resp.wrote_commit_graph = !ret;
	}
	if (!ret && (eager || (resp.repacked_fully && s.loose_estimate > 1024))) {
		static const char *const prune[] = { "prune", "--expire=2.weeks.ago", NULL };
		ret = run_git(st, path.buf, prune);
		resp.pruned_objects = !ret;
	}
	log_info("repo.optimized", "repo=%s stale_quarantines=%u stale_locks=%u packs=%u loose=%u refs=%u full=%b "
		 "incremental=%b packed_refs=%b graph=%b pruned=%b",
		 req->repository->relative_path, stale, locks, s.packs, s.loose_estimate, s.loose_refs, resp.repacked_fully,
		 resp.repacked_incrementally, resp.packed_refs, resp.wrote_commit_graph, resp.pruned_objects);
out:
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strbuf_release(&path);
}

static void fsck(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__FsckRequest *req = NULL;
	Grove__V1__FsckResponse resp = GROVE__V1__FSCK_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT, out, err;
	struct strvec argv = STRVEC_INIT;
	int ret = rpc_call_recv_one(call, &grove__v1__fsck_request__descriptor, (ProtobufCMessage **)&req);

	strbuf_init(&out, 1 << 20);
	strbuf_init(&err, 1 << 20);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (ret)
		goto out;
	gitcmd_init(&argv, &st->git_nohooks, path.buf);
	strvec_push(&argv, "fsck");
	strvec_push(&argv, "--no-progress");
	strvec_push(&argv, "--no-dangling");
	ret = proc_run(strvec_argv(&argv), NULL, NULL, NULL, 0, &out, &err);
	if (ret > 0) {
		/* A corrupt repository is an answer, not a failure of the call. */
		strbuf_add(&err, out.buf, out.len);
		strbuf_rtrim(&err);
		ret = 0;
		resp.error = err.buf;
	} else if (ret == GROVE_ETOOBIG) {
		ret = 0;
		resp.error = "git fsck reported more than 1 MiB of problems";
	}
out:
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	strvec_clear(&argv);
	strbuf_release(&path);
	strbuf_release(&out);
	strbuf_release(&err);
}

/* ---- bundles and archives: git's output streamed as it comes ---- */

struct stream_out {
	struct rpc_call *call;
	struct strbuf err;
	uint64_t bytes;
};

/*
 * CreateBundleResponse and GetArchiveResponse are both `bytes data = 1`, the
 * same bytes on the wire, so one sender serves both streams.
 */
static int stream_chunk(void *ctx, const char *data, size_t len)
{
	struct stream_out *b = ctx;
	Grove__V1__CreateBundleResponse resp = GROVE__V1__CREATE_BUNDLE_RESPONSE__INIT;
	resp.data.data = (uint8_t *)data;
	resp.data.len = len;
	b->bytes += len;
	return rpc_call_send(b->call, &resp.base);
}

static int stream_err(void *ctx, const char *data, size_t len)
{
	struct stream_out *b = ctx;
	strbuf_add(&b->err, data, len);   /* bounded: the rest is dropped */
	return 0;
}

/* Runs argv, streaming its stdout; what names the command in errors. */
static int stream_git(struct stream_out *b, const struct strvec *argv, const char *what)
{
	struct proc p = { .pid = -1 };
	int ret = proc_start(&p, strvec_argv(argv), NULL, NULL, PROC_STDOUT | PROC_STDERR | PROC_NONBLOCK | PROC_NEWPGRP);
	if (ret)
		return ret;
	ret = proc_pump_output(&p, stream_chunk, stream_err, b, RPC_CHUNK_MAX);
	if (ret)
		proc_kill(&p, SIGKILL);
	int status = proc_wait(&p);
	if (!ret && status) {
		strbuf_rtrim(&b->err);
		ret = error_set(GROVE_EINTERNAL, "%s failed (exit %d): %s", what, status, b->err.buf);
	}
	return ret;
}

static void create_bundle(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__CreateBundleRequest *req = NULL;
	struct strbuf path = STRBUF_INIT;
	struct strvec argv = STRVEC_INIT;
	struct stream_out b = { call, STRBUF_INIT, 0 };
	char sum[65];
	uint64_t nrefs = 0;
	int ret = rpc_call_recv_one(call, &grove__v1__create_bundle_request__descriptor, (ProtobufCMessage **)&req);

	strbuf_init(&b.err, 64 * 1024);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (!ret)
		ret = store_repo_checksum(path.buf, sum, &nrefs);
	if (ret)
		goto out;
	if (nrefs <= 1) {
		ret = error_set(GROVE_EPRECOND, "repository %s is empty: there is nothing to bundle",
				req->repository->relative_path);
		goto out;
	}
	gitcmd_init(&argv, &st->git_nohooks, path.buf);
	strvec_push(&argv, "bundle");
	strvec_push(&argv, "create");
	strvec_push(&argv, "--quiet");
	strvec_push(&argv, "-");
	strvec_push(&argv, "--all");
	ret = stream_git(&b, &argv, "git bundle create");
	if (!ret)
		log_info("repo.bundled", "repo=%s bytes=%llu", req->repository->relative_path,
			 (unsigned long long)b.bytes);
out:
	rpc_call_done(call, ret);
	FREE_MSG(req);
	strvec_clear(&argv);
	strbuf_release(&path);
	strbuf_release(&b.err);
}

/* The archive formats git writes; tar.gz by its built-in gzip. */
static bool archive_format_ok(const char *f)
{
	return !strcmp(f, "tar.gz") || !strcmp(f, "tar") || !strcmp(f, "zip");
}

static bool archive_prefix_ok(const char *p)
{
	size_t n = strlen(p);
	if (n > 255 || !strcmp(p, ".") || !strcmp(p, ".."))
		return false;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	return true;
}

static void get_archive(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__GetArchiveRequest *req = NULL;
	struct strbuf path = STRBUF_INIT;
	struct strvec argv = STRVEC_INIT;
	struct stream_out b = { call, STRBUF_INIT, 0 };
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_oid oid;
	const char *format;
	int ret = rpc_call_recv_one(call, &grove__v1__get_archive_request__descriptor, (ProtobufCMessage **)&req);

	strbuf_init(&b.err, 64 * 1024);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (ret)
		goto out;
	format = req->format && *req->format ? req->format : "tar.gz";
	if (!req->commit_id || strlen(req->commit_id) != GIT_OID_HEXSZ ||
	    strspn(req->commit_id, "0123456789abcdef") != GIT_OID_HEXSZ || git_oid_fromstr(&oid, req->commit_id) < 0) {
		ret = error_set(GROVE_EINVAL, "commit_id must be a full object id of %d lowercase hex digits", GIT_OID_HEXSZ);
		goto out;
	}
	if (!archive_format_ok(format)) {
		ret = error_set(GROVE_EINVAL, "format \"%.32s\" is not one of tar.gz, tar, zip", format);
		goto out;
	}
	if (req->prefix && !archive_prefix_ok(req->prefix)) {
		ret = error_set(GROVE_EINVAL, "prefix may hold only letters, digits, '.', '_' and '-' (at most 255)");
		goto out;
	}
	/* Checked here, not left to git archive, so a wrong id is NOT_FOUND
	 * before a byte is sent rather than a stream cut short. */
	if (git_repository_open_bare(&repo, path.buf) < 0) {
		ret = error_set(GROVE_EIO, "cannot open repository: %s", git_error_last()->message);
		goto out;
	}
	if (git_commit_lookup(&commit, repo, &oid) < 0) {
		ret = error_set(GROVE_ENOTFOUND, "repository %s has no commit %s", req->repository->relative_path,
				req->commit_id);
		goto out;
	}
	gitcmd_init(&argv, &st->git_nohooks, path.buf);
	strvec_push(&argv, "archive");
	strvec_pushf(&argv, "--format=%s", format);
	if (req->prefix && *req->prefix)
		strvec_pushf(&argv, "--prefix=%s/", req->prefix);
	strvec_push(&argv, req->commit_id);
	ret = stream_git(&b, &argv, "git archive");
	if (!ret)
		log_info("repo.archived", "repo=%s commit=%s format=%s bytes=%llu", req->repository->relative_path,
			 req->commit_id, format, (unsigned long long)b.bytes);
out:
	rpc_call_done(call, ret);
	git_commit_free(commit);
	git_repository_free(repo);
	FREE_MSG(req);
	strvec_clear(&argv);
	strbuf_release(&path);
	strbuf_release(&b.err);
}

/*
 * Points HEAD of the repository at dir at the branch the bundle's HEAD
 * names: git records only HEAD's object id in a bundle, so like `git clone`
 * we pick the branch at that id, preferring main and master.
 */
static int head_from_bundle(struct store *st, const char *dir, const char *bundle)
{
	struct strvec argv = STRVEC_INIT;
	struct strbuf out;
	char head_oid[GIT_OID_HEXSZ + 1] = "";
	char *best = NULL;
	int best_rank = 99, ret;

	strbuf_init(&out, 16 << 20);
	gitcmd_init(&argv, &st->git_nohooks, dir);
	strvec_push(&argv, "bundle");
	strvec_push(&argv, "list-heads");
	strvec_push(&argv, bundle);
	ret = store_git(st, &argv, NULL, &out);
	if (ret)
		goto out;
	for (int pass = 0; pass < 2; pass++) {
		char *line = out.buf;
		while (line && *line) {
			char *nl = strchr(line, '\n');
			char *sp = strchr(line, ' ');
			if (nl)
				*nl = '\0';
			if (sp && sp - line == GIT_OID_HEXSZ) {
				*sp = '\0';
				const char *name = sp + 1;
				if (pass == 0 && !strcmp(name, "HEAD"))
					strlcpy_(head_oid, line, sizeof(head_oid));
				if (pass == 1 && !strcmp(line, head_oid) && skip_prefix(name, "refs/heads/", NULL)) {
					int rank = !strcmp(name, "refs/heads/main") ? 0 :
						   !strcmp(name, "refs/heads/master") ? 1 : 2;
					if (rank < best_rank) {
						free(best);
						best = xstrdup(name);
						best_rank = rank;
					}
				}
				*sp = ' ';
			}
			if (nl)
				*nl = '\n';
			line = nl ? nl + 1 : NULL;
		}
		if (!head_oid[0])
			break;
	}
	if (best)
		ret = store_repo_set_head(dir, best);
out:
	free(best);
	strvec_clear(&argv);
	strbuf_release(&out);
	return ret;
}

static void create_repository_from_bundle(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__CreateRepositoryFromBundleRequest *req = NULL;
	Grove__V1__CreateRepositoryFromBundleResponse resp = GROVE__V1__CREATE_REPOSITORY_FROM_BUNDLE_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT;
	struct strvec argv = STRVEC_INIT;
	char tmpl[4096], bundle[4200], staged[4200], *tmp = NULL;
	char *rel = NULL;
	int fd = -1, ret, r;
	uint64_t bytes = 0;

	ret = rpc_call_recv_one(call, &grove__v1__create_repository_from_bundle_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, false, &path);
	if (ret)
		goto out;
	rel = xstrdup(req->repository->relative_path);
	if (store_repo_exists(path.buf)) {
		ret = error_set(GROVE_EEXISTS, "repository %s already exists: remove it first", rel);
		goto out;
	}
	snprintf(tmpl, sizeof(tmpl), "%s/bundle-XXXXXX", st->tmp_dir);
	tmp = mkdtemp(tmpl);
	if (!tmp) {
		ret = error_set(GROVE_EIO, "mkdtemp in %s: %s", st->tmp_dir, strerror(errno));
		goto out;
	}
	snprintf(bundle, sizeof(bundle), "%s/in.bundle", tmp);
	fd = open(bundle, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = error_set(GROVE_EIO, "cannot create %s: %s", bundle, strerror(errno));
		goto out;
	}
	/* The bundle goes to disk as it arrives: nothing holds it in memory. */
	for (;;) {
		if (req->data.len) {
			ret = write_all(fd, req->data.data, req->data.len);
			if (ret)
				goto out;
			bytes += req->data.len;
		}
		FREE_MSG(req);
		req = NULL;
		r = rpc_call_recv(call, &grove__v1__create_repository_from_bundle_request__descriptor, (ProtobufCMessage **)&req);
		if (r < 0) {
			ret = r;
			goto out;
		}
		if (r == 0)
			break;
	}
	if (fsync(fd) || close(fd)) {
		fd = -1;
		ret = error_set(GROVE_EIO, "cannot write the bundle: %s", strerror(errno));
		goto out;
	}
	fd = -1;
	snprintf(staged, sizeof(staged), "%s/repo.git", tmp);
	/* A truncated bundle (client gone mid-stream) fails git's pack checks
	 * below, so nothing half-received ever becomes a repository. */
	ret = store_repo_create(st, staged, rel, "main");
	if (ret)
		goto out;
	gitcmd_init(&argv, &st->git_nohooks, staged);
	strvec_push(&argv, "fetch");
	strvec_push(&argv, "--quiet");
	strvec_push(&argv, "--no-write-fetch-head");
	strvec_push(&argv, "--");
	strvec_push(&argv, bundle);
	strvec_push(&argv, "+refs/*:refs/*");
	ret = store_git(st, &argv, NULL, NULL);
	if (ret) {
		ret = error_wrap(GROVE_EINVAL, "the bundle cannot be applied");
		goto out;
	}
	ret = head_from_bundle(st, staged, bundle);
	if (ret)
		goto out;
	if (rpc_call_cancelled(call)) {
		ret = error_set(GROVE_ECANCELLED, "the client cancelled");
		goto out;
	}
	ret = store_repo_install(staged, path.buf, rel);
	if (ret)
		goto out;
	log_info("repo.from_bundle", "repo=%s bytes=%llu", rel, (unsigned long long)bytes);
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		fs_rmtree(tmp);
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	free(rel);
	strvec_clear(&argv);
	strbuf_release(&path);
}

/* ---- replication ---- */

static int address_validate(const char *addr)
{
	if (!addr || !*addr)
		return error_set(GROVE_EINVAL, "source_address is empty");
	if (strlen(addr) > 256)
		return error_set(GROVE_EINVAL, "source_address is longer than 256 bytes");
	for (const char *p = addr; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(".:_/[]-", c)))
			return error_set(GROVE_EINVAL, "source_address contains '%c': expected host:port or unix:/path", c);
	}
	return 0;
}

/* What is wrong with a replication request before anything runs. */
static int replicate_check(struct store *st, const Grove__V1__ReplicateRepositoryRequest *req, struct strbuf *path)
{
	int ret = store_repo_path(st, req->repository, false, path);
	if (!ret)
		ret = address_validate(req->source_address);
	if (!ret && !req->source)
		ret = error_set(GROVE_EINVAL, "source is empty: name the repository to copy");
	if (!ret)
		ret = storage_name_validate(req->source->storage_name);
	if (!ret)
		ret = repopath_validate(req->source->relative_path);
	return ret;
}

/*
 * git fetches through grove-connect, which speaks SSHService to the
 * source: objects and refs exactly as the source has them, refs it no
 * longer has pruned. GIT_SSH_COMMAND (it beats core.sshCommand) names
 * only our own program, quoted; the address, which came from the
 * request, travels in the environment and never meets a shell.
 */
static int replicate_fetch(struct store *st, const Grove__V1__ReplicateRepositoryRequest *req, const char *path)
{
	struct strvec argv = STRVEC_INIT, extra = STRVEC_INIT;
	char **env;
	int ret;

	gitcmd_init(&argv, &st->git_nohooks, path);
	strvec_push(&argv, "-c");
	strvec_push(&argv, "protocol.version=2");
	strvec_push(&argv, "fetch");
	strvec_push(&argv, "--quiet");
	strvec_push(&argv, "--prune");
	strvec_push(&argv, "--no-tags");
	strvec_push(&argv, "--no-write-fetch-head");
	strvec_push(&argv, "--");
	strvec_pushf(&argv, "ssh://%s/%s", req->source->storage_name, req->source->relative_path);
	strvec_push(&argv, "+refs/*:refs/*");
	strvec_pushf(&extra, "GIT_SSH_COMMAND='%s'", st->connect_bin);
	strvec_push(&extra, "GIT_SSH_VARIANT=ssh");
	strvec_pushf(&extra, "GROVE_CONNECT_ADDRESS=%s", req->source_address);
	strvec_pushf(&extra, "GROVE_SECRET=%s", st->secret);
	strvec_pushf(&extra, "GROVE_CORRELATION_ID=%s", log_correlation_id());
	rpc_tls_env(&extra);
	env = proc_env(strvec_argv(&extra));
	ret = store_git(st, &argv, env, NULL);
	proc_env_free(env);
	strvec_clear(&argv);
	strvec_clear(&extra);
	return ret;
}

/* The copy at path must have the source's checksum now; sum gets it. */
static int replicate_verify(struct rpc_client *src, const Grove__V1__ReplicateRepositoryRequest *req, const char *path,
			    char sum[65])
{
	Grove__V1__CalculateChecksumRequest creq = GROVE__V1__CALCULATE_CHECKSUM_REQUEST__INIT;
	Grove__V1__CalculateChecksumResponse *cresp = NULL;
	uint64_t nrefs;
	int ret;

	creq.repository = req->source;
	ret = rpc_unary(src, "/grove.v1.RepositoryService/CalculateChecksum", &creq.base,
			&grove__v1__calculate_checksum_response__descriptor, (ProtobufCMessage **)&cresp, 30000);
	if (!ret)
		ret = store_repo_checksum(path, sum, &nrefs);
	if (!ret && strcmp(sum, cresp->checksum))
		ret = error_set(GROVE_EPRECOND, "checksums differ after replication (source %s, copy %s): the source changed during the copy; retry",
				cresp->checksum, sum);
	FREE_MSG(cresp);
	return ret;
}

static void replicate_repository(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__ReplicateRepositoryRequest *req = NULL;
	Grove__V1__ReplicateRepositoryResponse resp = GROVE__V1__REPLICATE_REPOSITORY_RESPONSE__INIT;
	Grove__V1__FindDefaultBranchRequest hreq = GROVE__V1__FIND_DEFAULT_BRANCH_REQUEST__INIT;
	Grove__V1__FindDefaultBranchResponse *hresp = NULL;
	struct rpc_client *src = NULL;
	struct strbuf path = STRBUF_INIT;
	char sum[65];
	int ret;

	ret = rpc_call_recv_one(call, &grove__v1__replicate_repository_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = replicate_check(st, req, &path);
	if (ret)
		goto out;
	ret = rpc_client_new(&src, req->source_address, st->secret);
	if (ret)
		goto out;
	/* The source's HEAD first: it also proves the source exists. */
	hreq.repository = req->source;
	ret = rpc_unary(src, "/grove.v1.RepositoryService/FindDefaultBranch", &hreq.base,
			&grove__v1__find_default_branch_response__descriptor, (ProtobufCMessage **)&hresp, 30000);
	if (ret) {
		ret = error_wrap(ret, "source %s", req->source_address);
		goto out;
	}
	if (!store_repo_exists(path.buf)) {
		ret = store_repo_create(st, path.buf, req->repository->relative_path, "main");
		if (ret && ret != GROVE_EEXISTS)
			goto out;
		resp.created = !ret;
	}
	if ((ret = replicate_fetch(st, req, path.buf)))
		goto out;
	if (skip_prefix(hresp->name, "refs/", NULL) && (ret = store_repo_set_head(path.buf, hresp->name)))
		goto out;
	if ((ret = replicate_verify(src, req, path.buf, sum)))
		goto out;
	resp.checksum = sum;
	log_info("repo.replicated", "repo=%s source=%s created=%b checksum=%s", req->repository->relative_path,
		 req->source_address, resp.created, sum);
out:
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
	FREE_MSG(hresp);
	rpc_client_free(src);
	strbuf_release(&path);
}

void store_register_repository_service(struct rpc_server *srv, struct store *st)
{
	static const struct {
		const char *name;
		rpc_handler_fn *fn;
	} methods[] = {
		{ "CreateRepository", create_repository },
		{ "RemoveRepository", remove_repository },
		{ "RepositoryExists", repository_exists },
		{ "RepositorySize", repository_size },
		{ "CalculateChecksum", calculate_checksum },
		{ "FindDefaultBranch", find_default_branch },
		{ "SetDefaultBranch", set_default_branch },
		{ "OptimizeRepository", optimize_repository },
		{ "Fsck", fsck },
		{ "CreateBundle", create_bundle },
		{ "GetArchive", get_archive },
		{ "CreateRepositoryFromBundle", create_repository_from_bundle },
		{ "ReplicateRepository", replicate_repository },
	};
	char path[128];
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
		snprintf(path, sizeof(path), "/grove.v1.RepositoryService/%s", methods[i].name);
		rpc_server_handle(srv, path, methods[i].fn, st);
	}
}
