/*
 * Moving an app between the legacy directory and the cluster, live: the app
 * is locked (new pushes wait at the gate), pushes already running finish
 * (they hold the app's push lock shared; a migration takes it exclusive),
 * the repository is copied as a bundle stream (all refs and HEAD, nothing
 * else), the two copies' checksums must be equal, then the route switches
 * and the lock is released. On any failure the route is unchanged, the
 * partial copy removed and the lock released, with the reason.
 */
#ifndef GROVE_GATE_MIGRATE_H
#define GROVE_GATE_MIGRATE_H

#include "gate/db.h"
#include "lib/strbuf.h"

struct migrate_env {
	const char *legacy_dir;
	const char *cluster_address;
	const char *cluster_storage;
	const char *secret;
	const char *locks_dir;   /* per-app push locks, shared with the sessions */
	const char *tmp_dir;
	const char *journal_dir; /* one file per migration in progress: what to undo after a crash */
	int lock_timeout;        /* seconds to wait for running pushes */
};

/* report gets one line per step, for the operator. */
int app_migrate(const struct migrate_env *env, struct db *db, const char *app, enum route to, struct strbuf *report);

/*
 * After a crash (of the gate, or of its api process) in the middle of
 * migrations: each one in the journal is finished if its route had switched
 * (the old copy goes), else rolled back (the new copy goes, the route
 * stays); the app is unlocked if the migration had locked it. Run at start,
 * before the admin API takes requests.
 */
int app_migrate_recover(const struct migrate_env *env, struct db *db);

/*
 * Repository maintenance of an app where it lives: on the cluster route,
 * OptimizeRepository (eager) — a router runs it on every replica; on the
 * legacy route, git repack -a -d and pack-refs in the bare repository.
 */
int app_gc(const struct migrate_env *env, struct db *db, const char *app, struct strbuf *report);

/*
 * Backups: the app's repository as a git bundle (all refs and HEAD) written
 * to out_fd, from where it lives; and back: a bundle read from in_fd becomes
 * the app's repository, with the app locked meanwhile. A restore over an
 * existing repository needs force (it replaces it). HEAD comes back as the
 * branch the bundle's HEAD pointed at (the app's deploy branch when several
 * match).
 */
int app_backup(const struct migrate_env *env, struct db *db, const char *app, int out_fd);
int app_restore(const struct migrate_env *env, struct db *db, const char *app, int in_fd, bool force,
		struct strbuf *report);

/*
 * A push session's side of the push lock: shared, taken once the app is
 * seen unlocked. Returns the descriptor (close it to release) or -1.
 */
int push_lock_shared(const char *locks_dir, const char *app);
/* Non-blocking variant: -2 when a migration holds it. */
int push_lock_try_shared(const char *locks_dir, const char *app);

#endif
