/* Live moves of an app between the routes: see move.h. */
#include "gate/move.h"
#include "gate/gate.h"
#include "gate/pushlock.h"
#include "gate/repos.h"
#include "lib/error.h"
#include "lib/proc.h"
#include "lib/gitcmd.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/repocheck.h"
#include "lib/strvec.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

/* legacy → cluster: git bundle create … | CreateRepositoryFromBundle, then HEAD. */
static int copy_to_cluster(const char *src, struct repo_remote *r, const char *head, uint64_t nrefs)
{
	struct proc p = { .pid = -1 };
	int ret, code;

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
	if ((ret = repo_bundle_start(src, &p)))
		return ret;
	ret = repo_send_bundle(r, p.out);
	code = proc_wait(&p);
	if (code && !ret)
		ret = error_set(GROVE_EINTERNAL, "git bundle create failed (exit %d)", code);
	if (!ret)
		ret = repo_remote_set_head(r, head);
	return ret;
}

/* cluster → legacy: the bundle to a file, applied in a staging repository. */
static int copy_to_legacy(struct repo_remote *r, const char *tmp, const char *staged)
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
	ret = repo_receive_bundle(r, fd);
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
	if ((ret = repo_git(NULL, init)))
		goto out;
	if (!empty) {
		const char *fetch[] = { "fetch", "--quiet", "--no-write-fetch-head", "--", bundle, "+refs/*:refs/*", NULL };
		if ((ret = repo_git(staged, fetch)))
			goto out;
	}
	const char *head[] = { "symbolic-ref", "HEAD", hresp->name, NULL };
	ret = repo_git(staged, head);
out:
	if (fd >= 0)
		close(fd);
	FREE_MSG(hresp);
	return ret;
}

/* ---- the journal: what a crash would leave half-done ---- */

static void journal_path(const struct repo_env *env, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", env->journal_dir, name);
}

/* Written before anything changes; removed when the migration ended either way. */
static int journal_write(const struct repo_env *env, const char *name, enum route to, bool locked_here)
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

static void journal_remove(const struct repo_env *env, const char *name)
{
	char path[4096];
	journal_path(env, name, path, sizeof(path));
	unlink(path);
}

/* One move of an app between the routes, from its lock to its cleanup. */
struct move {
	const struct repo_env *env;
	struct db *db;
	const char *name;
	enum route to;
	struct strbuf *report;
	struct app app;
	struct repo_remote r;
	char rel[128], legacy[4096], tmpl[4096], staged[4200], head[1024];
	char sum_src[65], sum_dst[65];
	char *tmp;               /* the staging folder of a move to legacy */
	bool locked_here, copied, exists, journaled;
	int lock_fd;
	uint64_t nrefs;
	struct progress prog;    /* for the dashboard: which step, how many bytes copied */
};

/* 1. Lock: new pushes wait at the gate; running ones finish first. */
static int move_lock(struct move *m)
{
	int ret;
	if ((ret = journal_write(m->env, m->name, m->to, !m->app.locked)))
		return ret;
	m->journaled = true;
	progress_phase(&m->prog, "locking", 0);
	log_info("gate.migrating", "app=%s to=%s", m->name, route_name(m->to));
	if (!m->app.locked) {
		if ((ret = db_app_set_locked(m->db, m->name, true)))
			return ret;
		m->locked_here = true;
	}
	m->lock_fd = push_lock_open(m->env->locks_dir, m->name);
	if (m->lock_fd < 0)
		return error_set(GROVE_EIO, "cannot open the push lock of %s: %s", m->name, strerror(errno));
	for (int waited = 0; flock(m->lock_fd, LOCK_EX | LOCK_NB); waited += 100) {
		if (waited >= m->env->lock_timeout * 1000)
			return error_set(GROVE_ETIMEOUT, "pushes to %s still running after %ds: try again later", m->name,
					 m->env->lock_timeout);
		usleep(100 * 1000);
	}
	repo_report(m->report, "locked %s: pushes wait, fetches go on", m->name);
	return 0;
}

/*
 * The copy's phase, its bytes out of the source's size on disk (legacy, or
 * the cluster's answer): a bundle is about as big as the packs it comes
 * from, so the bar ends near its end.
 */
static void copy_phase_start(struct move *m, const char *legacy)
{
	uint64_t total = 0;
	if (legacy)
		fs_disk_usage(legacy, &total);
	else
		repo_remote_size(&m->r, &total);
	progress_phase(&m->prog, "copying", total);
	m->r.progress = &m->prog;
}

/* 2. Copy, to the cluster: the legacy repository, if there is one. */
static int move_copy_to_cluster(struct move *m)
{
	struct stat sb;
	int ret;
	if (stat(m->legacy, &sb)) {
		repo_report(m->report, "%s has no repository in the legacy directory yet: nothing to copy", m->name);
		return 0;
	}
	if ((ret = repo_checksum(m->legacy, m->sum_src, &m->nrefs)) ||
	    (ret = repo_local_head(m->legacy, m->head, sizeof(m->head))))
		return ret;
	if ((ret = repo_remote_exists(&m->r, &m->exists)))
		return ret;
	if (m->exists && (ret = repo_remote_remove(&m->r)))   /* a stale copy of an earlier migration */
		return ret;
	m->copied = true;
	copy_phase_start(m, m->legacy);
	if ((ret = copy_to_cluster(m->legacy, &m->r, m->head, m->nrefs)))
		return ret;
	return repo_remote_checksum(&m->r, m->sum_dst);
}

/* 2. Copy, to legacy: the cluster's repository, if there is one, into a staging folder. */
static int move_copy_to_legacy(struct move *m)
{
	int ret;
	if ((ret = repo_remote_exists(&m->r, &m->exists)))
		return ret;
	if (!m->exists) {
		repo_report(m->report, "%s has no repository on the cluster yet: nothing to copy", m->name);
		return 0;
	}
	if ((ret = fs_mkdir_p(m->env->tmp_dir, 0700)))
		return ret;
	snprintf(m->tmpl, sizeof(m->tmpl), "%s/migrate-XXXXXX", m->env->tmp_dir);
	if (!(m->tmp = mkdtemp(m->tmpl)))
		return error_set(GROVE_EIO, "mkdtemp: %s", strerror(errno));
	snprintf(m->staged, sizeof(m->staged), "%s/repo.git", m->tmp);
	if ((ret = repo_remote_checksum(&m->r, m->sum_src)))
		return ret;
	copy_phase_start(m, NULL);
	if ((ret = copy_to_legacy(&m->r, m->tmp, m->staged)))
		return ret;
	return repo_checksum(m->staged, m->sum_dst, &m->nrefs);
}

/* 3. Verify: the copy has exactly the source's refs and HEAD; a copy to
 * legacy is put in place. */
static int move_verify(struct move *m)
{
	struct stat sb;
	m->r.progress = NULL;
	progress_phase(&m->prog, "checking", 0);
	if (strcmp(m->sum_src, m->sum_dst))
		return error_set(GROVE_EPRECOND, "checksums differ after the copy (source %s, copy %s)", m->sum_src,
				 m->sum_dst);
	if (m->sum_src[0])
		repo_report(m->report, "copied %s: %llu refs, checksum %s on both sides", m->name,
			    (unsigned long long)m->nrefs, m->sum_src);
	if (m->to != ROUTE_LEGACY || !m->tmp)
		return 0;
	if (!stat(m->legacy, &sb)) {
		/* a stale copy of an earlier migration */
		char aside[4200];
		snprintf(aside, sizeof(aside), "%s/stale.git", m->tmp);
		if (rename(m->legacy, aside))
			return error_set(GROVE_EIO, "cannot move the stale %s aside: %s", m->legacy, strerror(errno));
	}
	if (rename(m->staged, m->legacy))
		return error_set(GROVE_EIO, "cannot move the copy into %s: %s", m->legacy, strerror(errno));
	m->copied = true;
	return 0;
}

/* 4. Switch; the source copy goes. */
static int move_switch(struct move *m)
{
	struct stat sb;
	int ret;
	progress_phase(&m->prog, "switching", 0);
	if ((ret = db_app_set_route(m->db, m->name, m->to)))
		return ret;
	m->copied = false;
	repo_report(m->report, "switched %s to the %s route", m->name, route_name(m->to));
	if (m->to == ROUTE_CLUSTER && !stat(m->legacy, &sb)) {
		char aside[4096];
		snprintf(aside, sizeof(aside), "%s/%s.migrated-%lld", m->env->legacy_dir, m->name, (long long)time(NULL));
		if (!rename(m->legacy, aside))
			fs_rmtree(aside);
	} else if (m->to == ROUTE_LEGACY && m->exists) {
		repo_remote_remove(&m->r);
	}
	return 0;
}

/* Whatever the outcome: nothing half-done stays behind, the lock goes. */
static void move_finish(struct move *m, int ret)
{
	if (ret && m->copied) {
		/* The copy goes, the route stays. */
		if (m->to == ROUTE_CLUSTER)
			repo_remote_remove(&m->r);
		else
			fs_rmtree(m->legacy);
	}
	if (m->locked_here)
		db_app_set_locked(m->db, m->name, false);
	if (m->lock_fd >= 0)
		close(m->lock_fd);
	if (m->tmp)
		fs_rmtree(m->tmp);
	if (m->journaled)
		journal_remove(m->env, m->name);
	progress_end(&m->prog);
	if (ret)
		log_warn("gate.migrate_failed", "app=%s to=%s error=%s", m->name, route_name(m->to), error_msg());
	rpc_client_free(m->r.cl);
	app_release(&m->app);
}

int app_move(const struct repo_env *env, struct db *db, const char *name, enum route to, struct strbuf *report)
{
	struct move m = { .env = env, .db = db, .name = name, .to = to, .report = report,
			  .r = { .repo = GROVE__V1__REPOSITORY__INIT }, .head = "refs/heads/main", .lock_fd = -1 };
	int64_t start = now_ms();
	int ret;

	if ((ret = db_app_get(db, name, &m.app)))
		goto out;
	if (m.app.route == to) {
		repo_report(report, "%s is on the %s route already: nothing to do.", name, route_name(to));
		goto out;
	}
	if (!env->cluster_address) {
		ret = error_set(GROVE_EPRECOND, "no cluster is configured ([route] cluster): there is nowhere to migrate to or from");
		goto out;
	}
	snprintf(m.rel, sizeof(m.rel), "%s.git", name);
	snprintf(m.legacy, sizeof(m.legacy), "%s/%s", env->legacy_dir, m.rel);
	m.r.repo.storage_name = (char *)env->cluster_storage;
	m.r.repo.relative_path = m.rel;
	if ((ret = rpc_client_new(&m.r.cl, env->cluster_address, env->secret)))
		goto out;
	progress_start(&m.prog, env->progress_dir, name, "move");
	progress_watch(&m.prog, env->progress_show, env->progress_arg);
	if ((ret = move_lock(&m)) ||
	    (ret = to == ROUTE_CLUSTER ? move_copy_to_cluster(&m) : move_copy_to_legacy(&m)) ||
	    (ret = move_verify(&m)) || (ret = move_switch(&m)))
		goto out;
	log_info("gate.migrated", "app=%s to=%s checksum=%s ms=%lld", name, route_name(to), m.sum_src,
		 (long long)(now_ms() - start));
out:
	move_finish(&m, ret);
	return ret;
}

/* Finishes or rolls back the migration of one app that a crash interrupted. */
static int recover_one(const struct repo_env *env, struct db *db, const char *name)
{
	struct app app = { 0 };
	struct repo_remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
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
		if ((ret = repo_remote_exists(&r, &exists)))
			goto out;
		if (exists && (ret = repo_remote_remove(&r)))
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

int app_move_recover(const struct repo_env *env, struct db *db)
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
