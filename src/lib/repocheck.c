/* The repository checksum of repository.proto, computed in process: see repocheck.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/repocheck.h"

#include <git2.h>
#include <openssl/sha.h>

static void checksum_add(unsigned char acc[32], const char *target, const char *name)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	char line[2200];
	int n = snprintf(line, sizeof(line), "%s %s\n", target, name);
	SHA256((const unsigned char *)line, (size_t)MIN(n, (int)sizeof(line) - 1), d);
	for (int i = 0; i < 32; i++)
		acc[i] ^= d[i];
}

static void ref_target(git_reference *ref, char *buf, size_t n)
{
	if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC) {
		snprintf(buf, n, "ref:%s", git_reference_symbolic_target(ref));
	} else {
		char hex[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hex, sizeof(hex), git_reference_target(ref));
		snprintf(buf, n, "%s", hex);
	}
}

int repo_checksum(const char *path, char out[65], uint64_t *nrefs)
{
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	unsigned char acc[32] = { 0 };
	char target[1100];
	int ret = 0, r;

	*nrefs = 0;
	if (git_repository_open_bare(&repo, path) < 0) {
		ret = error_set(GROVE_EIO, "cannot open repository %s: %s", path,
				git_error_last() ? git_error_last()->message : "?");
		goto out;
	}
	if (!git_reference_lookup(&ref, repo, "HEAD")) {
		ref_target(ref, target, sizeof(target));
		checksum_add(acc, target, "HEAD");
		(*nrefs)++;
		git_reference_free(ref);
		ref = NULL;
	}
	if (git_reference_iterator_new(&it, repo) < 0) {
		ret = error_set(GROVE_EIO, "cannot list refs: %s", git_error_last()->message);
		goto out;
	}
	while (!(r = git_reference_next(&ref, it))) {
		ref_target(ref, target, sizeof(target));
		checksum_add(acc, target, git_reference_name(ref));
		(*nrefs)++;
		git_reference_free(ref);
		ref = NULL;
	}
	if (r != GIT_ITEROVER) {
		ret = error_set(GROVE_EIO, "cannot list refs: %s", git_error_last()->message);
		goto out;
	}
	hex_encode(acc, sizeof(acc), out);
out:
	git_reference_iterator_free(it);
	git_repository_free(repo);
	return ret;
}

