/*
 * Repository maintenance of an app where it lives: on the cluster route,
 * OptimizeRepository (eager) — a router runs it on every replica; on the
 * legacy route, git repack -a -d and pack-refs in the bare repository.
 */
#ifndef GROVE_GATE_HOUSEKEEPING_H
#define GROVE_GATE_HOUSEKEEPING_H

#include "gate/repos.h"

int app_gc(const struct repo_env *env, struct db *db, const char *app, struct strbuf *report);

#endif
