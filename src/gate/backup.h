/*
 * Backups: the app's repository as a git bundle (all refs and HEAD) written
 * to out_fd, from where it lives; and back: a bundle read from in_fd becomes
 * the app's repository, with the app locked meanwhile. A restore over an
 * existing repository needs force (it replaces it). HEAD comes back as the
 * branch the bundle's HEAD pointed at (the app's deploy branch when several
 * match).
 */
#ifndef GROVE_GATE_BACKUP_H
#define GROVE_GATE_BACKUP_H

#include "gate/repos.h"

int app_backup(const struct repo_env *env, struct db *db, const char *app, int out_fd);
int app_restore(const struct repo_env *env, struct db *db, const char *app, int in_fd, bool force,
		struct strbuf *report);

#endif
