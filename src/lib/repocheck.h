/*
 * The checksum defined in proto/grove/v1/repository.proto (XOR over HEAD
 * and every ref of SHA-256("<target> <refname>\n")), computed with libgit2
 * on a local bare repository: by a store for CalculateChecksum, and by the
 * gate to verify a migration from or to its legacy directory.
 */
#ifndef GROVE_REPOCHECK_H
#define GROVE_REPOCHECK_H

#include <stdint.h>

/* out: 64 hex digits; *nrefs counts HEAD too. */
int repo_checksum(const char *path, char out[65], uint64_t *nrefs);

#endif
