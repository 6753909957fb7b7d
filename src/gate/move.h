/*
 * Moving an app between the legacy directory and the cluster, live: the app
 * is locked (new pushes wait at the gate), pushes already running finish
 * (they hold the app's push lock shared; a move takes it exclusive), the
 * repository is copied as a bundle stream (all refs and HEAD, nothing
 * else), the two copies' checksums must be equal, then the route switches
 * and the lock is released. On any failure the route is unchanged, the
 * partial copy removed and the lock released, with the reason.
 */
#ifndef GROVE_GATE_MOVE_H
#define GROVE_GATE_MOVE_H

#include "gate/repos.h"

/* report gets one line per step, for the operator. */
int app_move(const struct repo_env *env, struct db *db, const char *app, enum route to, struct strbuf *report);

/*
 * After a crash (of the gate, or of its api process) in the middle of
 * moves: each one in the journal is finished if its route had switched
 * (the old copy goes), else rolled back (the new copy goes, the route
 * stays); the app is unlocked if the move had locked it. Run at start,
 * before the admin API takes requests.
 */
int app_move_recover(const struct repo_env *env, struct db *db);

#endif
