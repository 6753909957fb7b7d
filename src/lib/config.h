/*
 * Configuration files in git-config syntax, read with libgit2's config
 * parser, so every git operator can read and write them (even with
 * `git config -f`). Keys are "section.name" as in git; errors name the file
 * and the key and say what was expected.
 */
#ifndef GROVE_CONFIG_H
#define GROVE_CONFIG_H

#include "lib/common.h"

struct config;

int config_open(struct config **out, const char *path);
/* The same from text in memory (tests, fuzzing); name stands for the file in
 * messages, and relative paths are taken from its folder. */
int config_open_buffer(struct config **out, const char *name, const char *buf, size_t len);
void config_free(struct config *cfg);
const char *config_file(const struct config *cfg);

/* *out is malloc'd; a missing key gives a copy of def, or NULL if def is NULL. */
int config_get_str(struct config *cfg, const char *key, const char *def, char **out);
/* Like config_get_str, but a relative path is taken from the config file's folder. */
int config_get_path(struct config *cfg, const char *key, const char *def, char **out);
/* Integers accept git's k/m/g suffixes; outside [min, max] is an error. */
int config_get_int(struct config *cfg, const char *key, int64_t def, int64_t min, int64_t max,
		   int64_t *out);
int config_get_bool(struct config *cfg, const char *key, bool def, bool *out);
/* Every value of a multi-valued key, in file order; free with config_strv_free. */
int config_get_all(struct config *cfg, const char *key, char ***out, size_t *n);
void config_strv_free(char **v, size_t n);
/* The names of [section "name"] subsections, in file order, each once. */
int config_subsections(struct config *cfg, const char *section, char ***out, size_t *n);

/*
 * After a role read every key it knows: GROVE_EINVAL, naming the file and
 * line, when the file sets one it never read (a typo, a key of another
 * part): like sshd and nginx, a mistyped key is an error, not a silently
 * ignored setting.
 */
int config_check_unknown(struct config *cfg);

/*
 * For a reload: 0 when b sets every key as a does, but those named in
 * reloadable (NULL-terminated, as git names them: "log.level"); else
 * GROVE_EINVAL naming the first key that changed.
 */
int config_same_but(struct config *a, struct config *b, const char *const *reloadable);

#endif
