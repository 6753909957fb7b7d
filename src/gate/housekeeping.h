/*
 * Repository maintenance of an app where it lives: on the cluster route,
 * OptimizeRepository (eager) — a router runs it on every replica; on the
 * legacy route, git repack -a -d and pack-refs in the bare repository.
 */
#ifndef GROVE_GATE_HOUSEKEEPING_H
#define GROVE_GATE_HOUSEKEEPING_H

#include "gate/gate.h"
#include "gate/repos.h"
#include "lib/ticker.h"


int app_gc(const struct repo_env *env, struct db *db, const char *app, struct strbuf *report);

/*
 * Housekeeping: every gate.housekeeping seconds (0: never), app_gc of every
 * app, one at a time, on a thread of the api process.
 */
struct housekeeper {
	const struct gate_config *cfg;
	const struct repo_env *env;
	struct ticker ticker;
};
void housekeeping_start(struct housekeeper *hk, const struct gate_config *cfg, const struct repo_env *env);
/* Stops it after the app it is at. */
void housekeeping_stop(struct housekeeper *hk);

#endif
