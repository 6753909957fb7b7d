/*
 * An empty repository's HEAD names the app's default branch before any
 * branch exists. When the first push brings other branches (a project whose
 * history is on "master"), HEAD would point at nothing: `git clone` would
 * check out nothing and libgit2-based clients (IDEs, build tools) could not
 * clone at all. So after a push, a HEAD that names a missing branch moves to
 * one that exists, as GitHub and GitLab choose it: the only branch, else
 * main, else master, else the first in name order. The choice depends on
 * the refs alone, so every replica of a repository makes the same one.
 */
#ifndef GROVE_REPOHEAD_H
#define GROVE_REPOHEAD_H

#include <stddef.h>

/* 0 and *moved false when HEAD was fine (or no branch exists yet); 0 and
 * *moved true with the new target in chosen ("refs/heads/master"). */
int repo_head_settle(const char *path, char *chosen, size_t n, int *moved);

#endif
