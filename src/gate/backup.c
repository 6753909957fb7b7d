/* Backups of an app's repository as a bundle, and restores: see backup.h. */
#include "gate/backup.h"
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

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

int app_backup(const struct repo_env *env, struct db *db, const char *name, int out_fd)
{
	struct app app = { 0 };
	struct repo_remote r = { .repo = GROVE__V1__REPOSITORY__INIT, .progress = NULL };
	struct progress prog = { .path = "" };
	char rel[128], legacy[4096];
	uint64_t total = 0;
	int ret;

	if ((ret = db_app_get(db, name, &app)))
		goto out;
	progress_start(&prog, env->progress_dir, name, "backup");
	progress_watch(&prog, env->progress_show, env->progress_arg);
	if (app.route == ROUTE_LEGACY) {
		struct proc p = { .pid = -1 };
		snprintf(legacy, sizeof(legacy), "%s/%s.git", env->legacy_dir, name);
		if (access(legacy, F_OK)) {
			ret = error_set(GROVE_ENOTFOUND, "%s has no repository yet: nothing to back up", name);
			goto out;
		}
		fs_disk_usage(legacy, &total);
		progress_phase(&prog, "copying", total);
		if ((ret = repo_bundle_start(legacy, &p)))
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
			progress_add(&prog, (uint64_t)n);
		}
		int code = proc_wait(&p);
		if (code && !ret)
			ret = error_set(GROVE_EINTERNAL, "git bundle create failed in %s (exit %d)", legacy, code);
		goto out;
	}
	if (!(ret = repo_remote_open(env, name, rel, sizeof(rel), &r))) {
		repo_remote_size(&r, &total);
		progress_phase(&prog, "copying", total);
		r.progress = &prog;
		ret = repo_receive_bundle(&r, out_fd);
	}
	if (ret == GROVE_EPRECOND)
		error_wrap(ret, "backing up %s", name);
out:
	progress_end(&prog);
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

/* in_fd's bytes into the file bundle: git needs to read a bundle twice. */
static int save_bundle(int in_fd, const char *bundle, struct progress *prog)
{
	int fd = open(bundle, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), ret = 0;
	if (fd < 0)
		return error_set(GROVE_EIO, "cannot create %s: %s", bundle, strerror(errno));
	for (;;) {
		char buf[65536];
		ssize_t n = read(in_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = error_set(GROVE_EIO, "reading the bundle: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((ret = write_all(fd, buf, (size_t)n))) {
			error_set(GROVE_EIO, "writing %s: %s", bundle, strerror(errno));
			break;
		}
		progress_add(prog, (uint64_t)n);
	}
	close(fd);
	return ret;
}

/* The bundle becomes the app's repository on the cluster; *exists: it replaced one. */
static int restore_cluster(const struct repo_env *env, const char *name, const char *bundle, const char *head,
			   bool force, struct repo_remote *r, bool *exists, char sum[65])
{
	char rel[128];
	int fd, ret;
	if ((ret = repo_remote_open(env, name, rel, sizeof(rel), r)) || (ret = repo_remote_exists(r, exists)))
		return ret;
	if (*exists && !force)
		return error_set(GROVE_EEXISTS, "%s has a repository already: restore --force replaces it", name);
	if (*exists && (ret = repo_remote_remove(r)))
		return ret;
	if ((fd = open(bundle, O_RDONLY | O_CLOEXEC)) < 0)
		return error_set(GROVE_EIO, "cannot read %s: %s", bundle, strerror(errno));
	if (r->progress) {
		struct stat sb;
		progress_phase(r->progress, "applying", fstat(fd, &sb) ? 0 : (uint64_t)sb.st_size);
	}
	if (!(ret = repo_send_bundle(r, fd)) && !(ret = repo_remote_set_head(r, head)))
		ret = repo_remote_checksum(r, sum);
	close(fd);
	return ret;
}

/* The bundle becomes the bare repository legacy, staged in tmp first; *exists: it replaced one. */
static int restore_legacy(const char *name, const char *tmp, const char *legacy, const char *bundle,
			  const char *head, bool force, bool *exists, char sum[65])
{
	char staged[4200], aside[4200];
	uint64_t nrefs = 0;
	int ret;

	*exists = !access(legacy, F_OK);
	if (*exists && !force)
		return error_set(GROVE_EEXISTS, "%s has a repository already: restore --force replaces it", name);
	snprintf(staged, sizeof(staged), "%s/repo.git", tmp);
	const char *init[] = { "init", "--bare", "--quiet", "--template=", "--", staged, NULL };
	const char *fetch[] = { "fetch", "--quiet", "--no-write-fetch-head", "--", bundle, "+refs/*:refs/*", NULL };
	const char *sym[] = { "symbolic-ref", "HEAD", head, NULL };
	if ((ret = repo_git(NULL, init)) || (ret = repo_git(staged, fetch)) || (ret = repo_git(staged, sym)) ||
	    (ret = repo_checksum(staged, sum, &nrefs)))
		return ret;
	if (*exists) {
		snprintf(aside, sizeof(aside), "%s/replaced.git", tmp);
		if (rename(legacy, aside))
			return error_set(GROVE_EIO, "cannot move %s aside: %s", legacy, strerror(errno));
	}
	if (rename(staged, legacy))
		return error_set(GROVE_EIO, "cannot move the restored copy into %s: %s", legacy, strerror(errno));
	return 0;
}

int app_restore(const struct repo_env *env, struct db *db, const char *name, int in_fd, bool force,
		struct strbuf *report)
{
	struct app app = { 0 };
	struct repo_remote r = { .repo = GROVE__V1__REPOSITORY__INIT, .progress = NULL };
	struct progress prog = { .path = "" };
	char legacy[4096], tmpl[4096], bundle[4200], head[300], sum[65] = "";
	char *tmp = NULL;
	bool locked_here = false, exists = false;
	int lock_fd = -1, ret;

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
	progress_start(&prog, env->progress_dir, name, "restore");
	progress_watch(&prog, env->progress_show, env->progress_arg);
	progress_phase(&prog, "receiving", 0);
	if ((ret = save_bundle(in_fd, bundle, &prog)) || (ret = bundle_head(bundle, app.deploy_branch, head, sizeof(head))))
		goto out;
	progress_phase(&prog, "locking", 0);

	/* Locked as for a migration: new pushes wait, running ones finish. */
	if (!app.locked) {
		if ((ret = db_app_set_locked(db, name, true)))
			goto out;
		locked_here = true;
	}
	lock_fd = push_lock_open(env->locks_dir, name);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX)) {
		ret = error_set(GROVE_EIO, "cannot take the push lock of %s: %s", name, strerror(errno));
		goto out;
	}
	snprintf(legacy, sizeof(legacy), "%s/%s.git", env->legacy_dir, name);
	progress_phase(&prog, "applying", 0);
	r.progress = &prog;
	ret = app.route == ROUTE_CLUSTER ? restore_cluster(env, name, bundle, head, force, &r, &exists, sum)
					 : restore_legacy(name, tmp, legacy, bundle, head, force, &exists, sum);
	if (ret)
		goto out;
	repo_report(report, "restored %s on the %s route%s: HEAD %s, checksum %s", name, route_name(app.route),
	    exists ? " (replacing its repository)" : "", head, sum);
	log_info("gate.restored", "app=%s route=%s replaced=%b checksum=%s", name, route_name(app.route), exists, sum);
out:
	progress_end(&prog);
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
