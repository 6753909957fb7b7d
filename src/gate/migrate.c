/* Live migration of an app between the routes: see migrate.h. */
#include "gate/gate.h"
#include "gate/migrate.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/gitcmd.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/repocheck.h"
#include "lib/rpc.h"
#include "lib/strvec.h"
#include "grove/v1/repository.pb-c.h"

#include <dirent.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

static int lock_open(const char *locks_dir, const char *app)
{
	char path[4096];
	if (fs_mkdir_p(locks_dir, 0700))
		return -1;
	snprintf(path, sizeof(path), "%s/%s.lock", locks_dir, app);
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

int push_lock_try_shared(const char *locks_dir, const char *app)
{
	int fd = lock_open(locks_dir, app);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_SH | LOCK_NB)) {
		close(fd);
		return errno == EWOULDBLOCK ? -2 : -1;
	}
	return fd;
}

int push_lock_shared(const char *locks_dir, const char *app)
{
	int fd = lock_open(locks_dir, app);
	if (fd >= 0 && flock(fd, LOCK_SH)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void say(struct strbuf *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct strbuf *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(r, fmt, ap);
	va_end(ap);
	strbuf_addch(r, '\n');
}

static int git(const char *dir, const char *const *args)
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

/* HEAD's target ("refs/heads/main") of a local bare repository. */
static int local_head(const char *dir, char *out, size_t n)
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

struct remote {
	struct rpc_client *cl;
	Grove__V1__Repository repo;
};

static int remote_checksum(struct remote *r, char out[65])
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

static int remote_exists(struct remote *r, bool *exists)
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

static int remote_remove(struct remote *r)
{
	Grove__V1__RemoveRepositoryRequest req = GROVE__V1__REMOVE_REPOSITORY_REQUEST__INIT;
	Grove__V1__RemoveRepositoryResponse *resp = NULL;
	req.repository = &r->repo;
	int ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/RemoveRepository", &req.base,
			    &grove__v1__remove_repository_response__descriptor, (ProtobufCMessage **)&resp, 60000);
	FREE_MSG(resp);
	return ret == GROVE_ENOTFOUND ? 0 : ret;
}

static int remote_set_head(struct remote *r, const char *ref)
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
static int send_bundle(struct remote *r, int fd)
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

/* legacy → cluster: git bundle create … | CreateRepositoryFromBundle, then HEAD. */
static int copy_to_cluster(const char *src, struct remote *r, const char *head, uint64_t nrefs)
{
	struct proc p = { .pid = -1 };
	struct strvec argv = STRVEC_INIT;
	int ret;

	if (nrefs <= 1) {
		Grove__V1__CreateRepositoryRequest req = GROVE__V1__CREATE_REPOSITORY_REQUEST__INIT;
		Grove__V1__CreateRepositoryResponse *resp = NULL;
		const char *branch = head;
		skip_prefix(head, "refs/heads/", &branch);
		req.repository = &r->repo;
		req.default_branch = (char *)branch;
		ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/CreateRepository", &req.base,
				&grove__v1__create_repository_response__descriptor, (ProtobufCMessage **)&resp, 30000);
		FREE_MSG(resp);
		return ret;
	}
	gitcmd_init(&argv, NULL, src);
	strvec_push(&argv, "bundle");
	strvec_push(&argv, "create");
	strvec_push(&argv, "--quiet");
	strvec_push(&argv, "-");
	strvec_push(&argv, "--all");
	if ((ret = proc_start(&p, strvec_argv(&argv), NULL, NULL, PROC_STDOUT)))
		goto out;
	ret = send_bundle(r, p.out);
	int code = proc_wait(&p);
	if (code && !ret)
		ret = error_set(GROVE_EINTERNAL, "git bundle create failed (exit %d)", code);
	if (!ret)
		ret = remote_set_head(r, head);
out:
	strvec_clear(&argv);
	return ret;
}

/*
 * The repository as a bundle from the cluster (CreateBundle), written to fd.
 * GROVE_EPRECOND, as the store answers, for an empty repository (no bundle).
 */
static int receive_bundle(struct remote *r, int fd)
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

/* cluster → legacy: the bundle to a file, applied in a staging repository. */
static int copy_to_legacy(struct remote *r, const char *tmp, const char *staged)
{
	Grove__V1__FindDefaultBranchRequest hreq = GROVE__V1__FIND_DEFAULT_BRANCH_REQUEST__INIT;
	Grove__V1__FindDefaultBranchResponse *hresp = NULL;
	char bundle[4200];
	int fd = -1, ret;
	bool empty = false;

	hreq.repository = &r->repo;
	ret = rpc_unary(r->cl, "/grove.v1.RepositoryService/FindDefaultBranch", &hreq.base,
			&grove__v1__find_default_branch_response__descriptor, (ProtobufCMessage **)&hresp, 30000);
	if (ret)
		goto out;
	snprintf(bundle, sizeof(bundle), "%s/in.bundle", tmp);
	fd = open(bundle, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = error_set(GROVE_EIO, "cannot create %s: %s", bundle, strerror(errno));
		goto out;
	}
	ret = receive_bundle(r, fd);
	if (ret == GROVE_EPRECOND) {
		empty = true;   /* an empty repository has no bundle */
		ret = 0;
	}
	if (ret)
		goto out;
	close(fd);
	fd = -1;
	const char *branch = hresp->name;
	skip_prefix(branch, "refs/heads/", &branch);
	char initial[300];
	snprintf(initial, sizeof(initial), "--initial-branch=%s", branch);
	const char *init[] = { "init", "--bare", "--quiet", "--template=", initial, "--", staged, NULL };
	if ((ret = git(NULL, init)))
		goto out;
	if (!empty) {
		const char *fetch[] = { "fetch", "--quiet", "--no-write-fetch-head", "--", bundle, "+refs/*:refs/*", NULL };
		if ((ret = git(staged, fetch)))
			goto out;
	}
	const char *head[] = { "symbolic-ref", "HEAD", hresp->name, NULL };
	ret = git(staged, head);
out:
	if (fd >= 0)
		close(fd);
	FREE_MSG(hresp);
	return ret;
}

/* ---- the journal: what a crash would leave half-done ---- */

static void journal_path(const struct migrate_env *env, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", env->journal_dir, name);
}

/* Written before anything changes; removed when the migration ended either way. */
static int journal_write(const struct migrate_env *env, const char *name, enum route to, bool locked_here)
{
	char path[4096], tmp[4200];
	char *text = xasprintf("to=%s\nlocked_here=%d\n", route_name(to), locked_here ? 1 : 0);
	int ret = fs_mkdir_p(env->journal_dir, 0700);
	journal_path(env, name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (!ret)
		ret = fs_write_new(tmp, text, 0600);
	if (!ret && rename(tmp, path))
		ret = error_set(GROVE_EIO, "cannot write the migration journal %s: %s", path, strerror(errno));
	free(text);
	return ret;
}

static void journal_remove(const struct migrate_env *env, const char *name)
{
	char path[4096];
	journal_path(env, name, path, sizeof(path));
	unlink(path);
}

int app_migrate(const struct migrate_env *env, struct db *db, const char *name, enum route to, struct strbuf *report)
{
	struct app app = { 0 };
	struct remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
	char rel[128], legacy[4096], tmpl[4096], staged[4200], head[1024] = "refs/heads/main";
	char sum_src[65] = "", sum_dst[65] = "";
	char *tmp = NULL;
	bool locked_here = false, copied = false, exists = false, journaled = false;
	int lock_fd = -1, ret;
	uint64_t nrefs = 0;
	int64_t start = now_ms();
	struct stat sb;

	if ((ret = db_app_get(db, name, &app)))
		goto out;
	if (app.route == to) {
		say(report, "%s is on the %s route already: nothing to do.", name, route_name(to));
		goto out;
	}
	if (!env->cluster_address) {
		ret = error_set(GROVE_EPRECOND, "no cluster is configured ([route] cluster): there is nowhere to migrate to or from");
		goto out;
	}
	snprintf(rel, sizeof(rel), "%s.git", name);
	snprintf(legacy, sizeof(legacy), "%s/%s", env->legacy_dir, rel);
	r.repo.storage_name = (char *)env->cluster_storage;
	r.repo.relative_path = rel;
	if ((ret = rpc_client_new(&r.cl, env->cluster_address, env->secret)))
		goto out;

	/* 1. Lock: new pushes wait at the gate; running ones finish first. */
	if ((ret = journal_write(env, name, to, !app.locked)))
		goto out;
	journaled = true;
	log_info("gate.migrating", "app=%s to=%s", name, route_name(to));
	if (!app.locked) {
		if ((ret = db_app_set_locked(db, name, true)))
			goto out;
		locked_here = true;
	}
	lock_fd = lock_open(env->locks_dir, name);
	if (lock_fd < 0) {
		ret = error_set(GROVE_EIO, "cannot open the push lock of %s: %s", name, strerror(errno));
		goto out;
	}
	for (int waited = 0; flock(lock_fd, LOCK_EX | LOCK_NB); waited += 100) {
		if (waited >= env->lock_timeout * 1000) {
			ret = error_set(GROVE_ETIMEOUT, "pushes to %s still running after %ds: try again later", name,
					env->lock_timeout);
			goto out;
		}
		usleep(100 * 1000);
	}
	say(report, "locked %s: pushes wait, fetches go on", name);

	/* 2. Copy. */
	if (to == ROUTE_CLUSTER) {
		if (stat(legacy, &sb)) {
			say(report, "%s has no repository in the legacy directory yet: nothing to copy", name);
		} else {
			if ((ret = repo_checksum(legacy, sum_src, &nrefs)) || (ret = local_head(legacy, head, sizeof(head))))
				goto out;
			if ((ret = remote_exists(&r, &exists)))
				goto out;
			if (exists && (ret = remote_remove(&r)))   /* a stale copy of an earlier migration */
				goto out;
			copied = true;
			if ((ret = copy_to_cluster(legacy, &r, head, nrefs)) || (ret = remote_checksum(&r, sum_dst)))
				goto out;
		}
	} else {
		if ((ret = remote_exists(&r, &exists)))
			goto out;
		if (!exists) {
			say(report, "%s has no repository on the cluster yet: nothing to copy", name);
		} else {
			if ((ret = fs_mkdir_p(env->tmp_dir, 0700)))
				goto out;
			snprintf(tmpl, sizeof(tmpl), "%s/migrate-XXXXXX", env->tmp_dir);
			if (!(tmp = mkdtemp(tmpl))) {
				ret = error_set(GROVE_EIO, "mkdtemp: %s", strerror(errno));
				goto out;
			}
			snprintf(staged, sizeof(staged), "%s/repo.git", tmp);
			if ((ret = remote_checksum(&r, sum_src)) || (ret = copy_to_legacy(&r, tmp, staged)) ||
			    (ret = repo_checksum(staged, sum_dst, &nrefs)))
				goto out;
		}
	}

	/* 3. Verify: the copy has exactly the source's refs and HEAD. */
	if (strcmp(sum_src, sum_dst)) {
		ret = error_set(GROVE_EPRECOND, "checksums differ after the copy (source %s, copy %s)", sum_src, sum_dst);
		goto out;
	}
	if (sum_src[0])
		say(report, "copied %s: %llu refs, checksum %s on both sides", name, (unsigned long long)nrefs, sum_src);
	if (to == ROUTE_LEGACY && tmp) {
		if (!stat(legacy, &sb)) {
			/* a stale copy of an earlier migration */
			char aside[4200];
			snprintf(aside, sizeof(aside), "%s/stale.git", tmp);
			if (rename(legacy, aside)) {
				ret = error_set(GROVE_EIO, "cannot move the stale %s aside: %s", legacy, strerror(errno));
				goto out;
			}
		}
		if (rename(staged, legacy)) {
			ret = error_set(GROVE_EIO, "cannot move the copy into %s: %s", legacy, strerror(errno));
			goto out;
		}
		copied = true;
	}

	/* 4. Switch; the source copy goes. */
	if ((ret = db_app_set_route(db, name, to)))
		goto out;
	copied = false;
	say(report, "switched %s to the %s route", name, route_name(to));
	if (to == ROUTE_CLUSTER && !stat(legacy, &sb)) {
		char aside[4096];
		snprintf(aside, sizeof(aside), "%s/%s.migrated-%lld", env->legacy_dir, name, (long long)time(NULL));
		if (!rename(legacy, aside))
			fs_rmtree(aside);
	} else if (to == ROUTE_LEGACY && exists) {
		remote_remove(&r);
	}
	log_info("gate.migrated", "app=%s to=%s checksum=%s ms=%lld", name, route_name(to), sum_src,
		 (long long)(now_ms() - start));
out:
	if (ret && copied) {
		/* Nothing half-done stays behind: the copy goes, the route stays. */
		if (to == ROUTE_CLUSTER)
			remote_remove(&r);
		else
			fs_rmtree(legacy);
	}
	if (locked_here)
		db_app_set_locked(db, name, false);
	if (lock_fd >= 0)
		close(lock_fd);
	if (tmp)
		fs_rmtree(tmp);
	if (journaled)
		journal_remove(env, name);
	if (ret)
		log_warn("gate.migrate_failed", "app=%s to=%s error=%s", name, route_name(to), error_msg());
	rpc_client_free(r.cl);
	app_release(&app);
	return ret;
}

int app_gc(const struct migrate_env *env, struct db *db, const char *name, struct strbuf *report)
{
	struct app app = { 0 };
	char rel[128], legacy[4096];
	int64_t start = now_ms();
	int ret;

	if ((ret = db_app_get(db, name, &app)))
		goto out;
	snprintf(rel, sizeof(rel), "%s.git", name);
	if (app.route == ROUTE_LEGACY) {
		static const char *const repack[] = { "repack", "-a", "-d", "-q", NULL };
		static const char *const packrefs[] = { "pack-refs", "--all", NULL };
		snprintf(legacy, sizeof(legacy), "%s/%s", env->legacy_dir, rel);
		if (access(legacy, F_OK)) {
			ret = error_set(GROVE_ENOTFOUND, "%s has no repository yet: push to it first", name);
			goto out;
		}
		if ((ret = git(legacy, repack)) || (ret = git(legacy, packrefs)))
			goto out;
		say(report, "optimized %s in the legacy directory: repacked fully, refs packed (%lld ms).", name,
		    (long long)(now_ms() - start));
	} else {
		Grove__V1__OptimizeRepositoryRequest req = GROVE__V1__OPTIMIZE_REPOSITORY_REQUEST__INIT;
		Grove__V1__OptimizeRepositoryResponse *resp = NULL;
		Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
		struct rpc_client *cl = NULL;
		if (!env->cluster_address) {
			ret = error_set(GROVE_EPRECOND, "no cluster is configured ([route] cluster)");
			goto out;
		}
		repo.storage_name = (char *)env->cluster_storage;
		repo.relative_path = rel;
		req.repository = &repo;
		req.strategy = GROVE__V1__OPTIMIZE_REPOSITORY_REQUEST__STRATEGY__EAGER;
		ret = rpc_client_new(&cl, env->cluster_address, env->secret);
		if (!ret)
			ret = rpc_unary(cl, "/grove.v1.RepositoryService/OptimizeRepository", &req.base,
					&grove__v1__optimize_repository_response__descriptor, (ProtobufCMessage **)&resp,
					60 * 60 * 1000);
		if (!ret)
			say(report, "optimized %s on the cluster (every replica): repacked %s, refs %s, commit-graph %s (%lld ms).",
			    name, resp->repacked_fully ? "fully" : resp->repacked_incrementally ? "incrementally" : "not",
			    resp->packed_refs ? "packed" : "as they were", resp->wrote_commit_graph ? "written" : "unchanged",
			    (long long)(now_ms() - start));
		FREE_MSG(resp);
		rpc_client_free(cl);
		if (ret)
			error_wrap(ret, "optimizing %s", name);
	}
	if (!ret)
		log_info("gate.gc", "app=%s route=%s ms=%lld", name, route_name(app.route), (long long)(now_ms() - start));
out:
	app_release(&app);
	return ret;
}

/* Finishes or rolls back the migration of one app that a crash interrupted. */
static int recover_one(const struct migrate_env *env, struct db *db, const char *name)
{
	struct app app = { 0 };
	struct remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
	char path[4096], text[128] = "", rel[128], legacy[4096];
	enum route to;
	bool locked_here, exists = false, finished;
	FILE *f;
	int ret;

	journal_path(env, name, path, sizeof(path));
	if (!(f = fopen(path, "r")))
		return error_set(GROVE_EIO, "cannot read %s: %s", path, strerror(errno));
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (strstr(text, "to=cluster\n"))
		to = ROUTE_CLUSTER;
	else if (strstr(text, "to=legacy\n"))
		to = ROUTE_LEGACY;
	else
		return error_set(GROVE_EINVAL, "migration journal %s is not one this gate wrote", path);
	locked_here = strstr(text, "locked_here=1\n") != NULL;
	if ((ret = db_app_get(db, name, &app))) {
		if (ret == GROVE_ENOTFOUND) {   /* deleted since: nothing to keep consistent */
			unlink(path);
			ret = 0;
		}
		goto out;
	}
	snprintf(rel, sizeof(rel), "%s.git", name);
	snprintf(legacy, sizeof(legacy), "%s/%s", env->legacy_dir, rel);
	r.repo.storage_name = (char *)env->cluster_storage;
	r.repo.relative_path = rel;
	if (!env->cluster_address) {
		ret = error_set(GROVE_EPRECOND, "no cluster configured to finish the migration of %s", name);
		goto out;
	}
	if ((ret = rpc_client_new(&r.cl, env->cluster_address, env->secret)))
		goto out;
	/* The route is the truth: switched means the copy was verified. The
	 * copy on the app's route now stays; the other one goes. */
	finished = app.route == to;
	if (app.route == ROUTE_CLUSTER) {
		if (!access(legacy, F_OK)) {
			char aside[4200];
			snprintf(aside, sizeof(aside), "%s/%s.migrated-%lld", env->legacy_dir, name, (long long)time(NULL));
			if (!rename(legacy, aside))
				fs_rmtree(aside);
		}
	} else {
		if ((ret = remote_exists(&r, &exists)))
			goto out;
		if (exists && (ret = remote_remove(&r)))
			goto out;
	}
	if (locked_here && (ret = db_app_set_locked(db, name, false)))
		goto out;
	unlink(path);
	log_warn(finished ? "gate.migration_finished" : "gate.migration_rolled_back", "app=%s to=%s route=%s", name,
		 route_name(to), route_name(app.route));
out:
	rpc_client_free(r.cl);
	app_release(&app);
	return ret;
}

int app_migrate_recover(const struct migrate_env *env, struct db *db)
{
	DIR *d = opendir(env->journal_dir);
	struct dirent *e;
	int ret = 0;
	if (!d)
		return 0;
	/* Staged copies of interrupted migrations back to legacy: no one uses them. */
	fs_rmtree(env->tmp_dir);
	while ((e = readdir(d))) {
		char name[GATE_APP_NAME_MAX + 1];
		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue;    /* ".", "..", and "<app>.tmp" of a journal being written */
		if (gate_app_from_path(e->d_name, name) || strcmp(name, e->d_name))
			continue;
		int r = recover_one(env, db, name);
		if (r) {
			log_error("gate.migration_recovery_failed", "app=%s error=%s", name, error_msg());
			ret = r;
		}
	}
	closedir(d);
	return ret;
}

/* ---- backups ---- */

static int remote_for(const struct migrate_env *env, const char *name, char *rel, size_t reln, struct remote *r)
{
	snprintf(rel, reln, "%s.git", name);
	r->repo.storage_name = (char *)env->cluster_storage;
	r->repo.relative_path = rel;
	if (!env->cluster_address)
		return error_set(GROVE_EPRECOND, "no cluster is configured ([route] cluster)");
	return rpc_client_new(&r->cl, env->cluster_address, env->secret);
}

int app_backup(const struct migrate_env *env, struct db *db, const char *name, int out_fd)
{
	struct app app = { 0 };
	struct remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
	char rel[128], legacy[4096];
	int ret;

	if ((ret = db_app_get(db, name, &app)))
		goto out;
	if (app.route == ROUTE_LEGACY) {
		struct proc p = { .pid = -1 };
		struct strvec argv = STRVEC_INIT;
		snprintf(legacy, sizeof(legacy), "%s/%s.git", env->legacy_dir, name);
		if (access(legacy, F_OK)) {
			ret = error_set(GROVE_ENOTFOUND, "%s has no repository yet: nothing to back up", name);
			goto out;
		}
		gitcmd_init(&argv, NULL, legacy);
		strvec_push(&argv, "bundle");
		strvec_push(&argv, "create");
		strvec_push(&argv, "--quiet");
		strvec_push(&argv, "-");
		strvec_push(&argv, "--all");
		ret = proc_start(&p, strvec_argv(&argv), NULL, NULL, PROC_STDOUT);
		strvec_clear(&argv);
		if (ret)
			goto out;
		for (;;) {
			char buf[65536];
			ssize_t n = read(p.out, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			if (!ret && write_all(out_fd, buf, (size_t)n))
				ret = error_set(GROVE_EIO, "writing the bundle: %s", strerror(errno));
		}
		int code = proc_wait(&p);
		if (code && !ret)
			ret = error_set(GROVE_EINTERNAL, "git bundle create failed in %s (exit %d)", legacy, code);
		goto out;
	}
	if (!(ret = remote_for(env, name, rel, sizeof(rel), &r)))
		ret = receive_bundle(&r, out_fd);
	if (ret == GROVE_EPRECOND)
		error_wrap(ret, "backing up %s", name);
out:
	rpc_client_free(r.cl);
	app_release(&app);
	return ret;
}

/* The branch HEAD should name after a restore: from the bundle's list of heads. */
static int bundle_head(const char *bundle, const char *deploy_branch, char *out, size_t n)
{
	const char *args[] = { "git", "bundle", "list-heads", bundle, NULL };
	struct strbuf heads;
	char head_oid[65] = "", want[300];
	int ret;

	strbuf_init(&heads, 4 << 20);
	snprintf(want, sizeof(want), "refs/heads/%s", deploy_branch);
	ret = proc_run(args, NULL, NULL, NULL, 0, &heads, NULL);
	if (ret) {
		strbuf_release(&heads);
		return error_set(GROVE_EINVAL, "the input is not a git bundle (git bundle list-heads refused it)");
	}
	out[0] = '\0';
	/* First HEAD's object, then a branch with it: the deploy branch first. */
	for (int pass = 0; pass < 3 && !out[0]; pass++) {
		char *save = NULL, *copy = xstrdup(heads.buf);
		for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');
			if (!sp)
				continue;
			*sp = '\0';
			const char *ref = sp + 1;
			if (pass == 0 && !strcmp(ref, "HEAD"))
				strlcpy_(head_oid, line, sizeof(head_oid));
			else if (pass == 1 && head_oid[0] && !strcmp(ref, want) && !strcmp(line, head_oid))
				strlcpy_(out, ref, n);
			else if (pass == 2 && skip_prefix(ref, "refs/heads/", NULL) && (!head_oid[0] || !strcmp(line, head_oid)))
				strlcpy_(out, ref, n);
			if (out[0])
				break;
		}
		free(copy);
	}
	if (!out[0])
		snprintf(out, n, "refs/heads/%s", deploy_branch);
	strbuf_release(&heads);
	return 0;
}

int app_restore(const struct migrate_env *env, struct db *db, const char *name, int in_fd, bool force,
		struct strbuf *report)
{
	struct app app = { 0 };
	struct remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
	char rel[128], legacy[4096], tmpl[4096], bundle[4200], staged[4200], head[300], sum[65] = "";
	char *tmp = NULL;
	bool locked_here = false, exists = false;
	int lock_fd = -1, fd = -1, ret;
	uint64_t nrefs = 0;

	if ((ret = db_app_get(db, name, &app)))
		goto out;
	/* The bundle first, to a file: git needs to read it twice, and a broken
	 * input must not cost the app its lock time. */
	if ((ret = fs_mkdir_p(env->tmp_dir, 0700)))
		goto out;
	snprintf(tmpl, sizeof(tmpl), "%s/restore-XXXXXX", env->tmp_dir);
	if (!(tmp = mkdtemp(tmpl))) {
		ret = error_set(GROVE_EIO, "mkdtemp: %s", strerror(errno));
		goto out;
	}
	snprintf(bundle, sizeof(bundle), "%s/in.bundle", tmp);
	fd = open(bundle, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = error_set(GROVE_EIO, "cannot create %s: %s", bundle, strerror(errno));
		goto out;
	}
	for (;;) {
		char buf[65536];
		ssize_t n = read(in_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = error_set(GROVE_EIO, "reading the bundle: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((ret = write_all(fd, buf, (size_t)n))) {
			error_set(GROVE_EIO, "writing %s: %s", bundle, strerror(errno));
			goto out;
		}
	}
	close(fd);
	fd = -1;
	if ((ret = bundle_head(bundle, app.deploy_branch, head, sizeof(head))))
		goto out;

	/* Locked as for a migration: new pushes wait, running ones finish. */
	if (!app.locked) {
		if ((ret = db_app_set_locked(db, name, true)))
			goto out;
		locked_here = true;
	}
	lock_fd = lock_open(env->locks_dir, name);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX)) {
		ret = error_set(GROVE_EIO, "cannot take the push lock of %s: %s", name, strerror(errno));
		goto out;
	}
	snprintf(legacy, sizeof(legacy), "%s/%s.git", env->legacy_dir, name);
	if (app.route == ROUTE_CLUSTER) {
		if ((ret = remote_for(env, name, rel, sizeof(rel), &r)) || (ret = remote_exists(&r, &exists)))
			goto out;
		if (exists && !force) {
			ret = error_set(GROVE_EEXISTS, "%s has a repository already: restore --force replaces it", name);
			goto out;
		}
		if (exists && (ret = remote_remove(&r)))
			goto out;
		if ((fd = open(bundle, O_RDONLY | O_CLOEXEC)) < 0) {
			ret = error_set(GROVE_EIO, "cannot read %s: %s", bundle, strerror(errno));
			goto out;
		}
		if ((ret = send_bundle(&r, fd)) || (ret = remote_set_head(&r, head)) || (ret = remote_checksum(&r, sum)))
			goto out;
	} else {
		exists = !access(legacy, F_OK);
		if (exists && !force) {
			ret = error_set(GROVE_EEXISTS, "%s has a repository already: restore --force replaces it", name);
			goto out;
		}
		snprintf(staged, sizeof(staged), "%s/repo.git", tmp);
		const char *init[] = { "init", "--bare", "--quiet", "--template=", "--", staged, NULL };
		const char *fetch[] = { "fetch", "--quiet", "--no-write-fetch-head", "--", bundle, "+refs/*:refs/*", NULL };
		const char *sym[] = { "symbolic-ref", "HEAD", head, NULL };
		if ((ret = git(NULL, init)) || (ret = git(staged, fetch)) || (ret = git(staged, sym)) ||
		    (ret = repo_checksum(staged, sum, &nrefs)))
			goto out;
		if (exists) {
			char aside[4200];
			snprintf(aside, sizeof(aside), "%s/replaced.git", tmp);
			if (rename(legacy, aside)) {
				ret = error_set(GROVE_EIO, "cannot move %s aside: %s", legacy, strerror(errno));
				goto out;
			}
		}
		if (rename(staged, legacy)) {
			ret = error_set(GROVE_EIO, "cannot move the restored copy into %s: %s", legacy, strerror(errno));
			goto out;
		}
	}
	say(report, "restored %s on the %s route%s: HEAD %s, checksum %s", name, route_name(app.route),
	    exists ? " (replacing its repository)" : "", head, sum);
	log_info("gate.restored", "app=%s route=%s replaced=%b checksum=%s", name, route_name(app.route), exists, sum);
out:
	if (fd >= 0)
		close(fd);
	if (locked_here)
		db_app_set_locked(db, name, false);
	if (lock_fd >= 0)
		close(lock_fd);
	if (tmp)
		fs_rmtree(tmp);
	rpc_client_free(r.cl);
	app_release(&app);
	return ret;
}
