/*
 * An app's repository where it lives, in the legacy directory or on the
 * cluster, for the gate's operations on it: moves between the routes
 * (move.c), backups and restores (backup.c), maintenance (housekeeping.c),
 * archives (archive.c). Each step says what it did as a line of a report
 * for the operator.
 */
#ifndef GROVE_GATE_REPOS_H
#define GROVE_GATE_REPOS_H

#include "gate/db.h"
#include "gate/progress.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "grove/v1/repository.pb-c.h"

/* Where the apps' repositories live and how to reach them. */
struct repo_env {
	const char *legacy_dir;
	const char *cluster_address;
	const char *cluster_storage;
	const char *secret;
	const char *locks_dir;   /* per-app push locks, shared with the sessions */
	const char *tmp_dir;
	const char *journal_dir; /* one file per move in progress: what to undo after a crash */
	const char *progress_dir; /* one file per long operation in progress (progress.h) */
	progress_show_fn *progress_show;   /* and who else is told (a command's bar), with progress_arg */
	void *progress_arg;
	int lock_timeout;        /* seconds to wait for running pushes */
};

/* A repository on the cluster, through a client of the router. */
struct repo_remote {
	struct rpc_client *cl;
	Grove__V1__Repository repo;
	struct progress *progress;   /* bundles sent or received count here (NULL: nowhere) */
};

/* Appends one line to an operator's report. */
void repo_report(struct strbuf *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* git ARGS in dir (NULL: none); its stderr becomes the error message. */
int repo_git(const char *dir, const char *const *args);
/* git bundle create of every ref of the bare repository dir, to p->out. */
struct proc;
int repo_bundle_start(const char *dir, struct proc *p);
/* HEAD's target ("refs/heads/main") of a local bare repository. */
int repo_local_head(const char *dir, char *out, size_t n);

/* The app's repository on the cluster (rel gets "<app>.git"). */
int repo_remote_open(const struct repo_env *env, const char *name, char *rel, size_t reln, struct repo_remote *r);
int repo_remote_checksum(struct repo_remote *r, char out[65]);
int repo_remote_exists(struct repo_remote *r, bool *exists);
/* Its size on disk (the primary's), in bytes. */
int repo_remote_size(struct repo_remote *r, uint64_t *bytes);
int repo_remote_remove(struct repo_remote *r);
int repo_remote_set_head(struct repo_remote *r, const char *ref);
/* A bundle read from fd becomes the remote repository; the remote's bundle written to fd. */
int repo_send_bundle(struct repo_remote *r, int fd);
int repo_receive_bundle(struct repo_remote *r, int fd);

/*
 * HEAD of the app's repository where it lives names branch (a short name,
 * already checked as a branch name) from now on: what a clone checks out.
 * GROVE_ENOTFOUND when the repository or that branch does not exist.
 */
int repo_set_default_branch(const struct repo_env *env, enum route route, const char *app, const char *branch);

#endif
