/* Repository path validation and the hashed layout: see repopath.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/repopath.h"

#include <openssl/sha.h>

int repopath_validate(const char *rel)
{
	size_t len;
	const char *comp;

	if (!rel || !*rel)
		return error_set(GROVE_EINVAL, "repository path is empty");
	len = strnlen(rel, REPOPATH_MAX + 1);
	if (len > REPOPATH_MAX)
		return error_set(GROVE_EINVAL, "repository path is longer than %d bytes", REPOPATH_MAX);
	if (rel[0] == '/')
		return error_set(GROVE_EINVAL, "repository path must be relative, not start with '/'");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)rel[i];
		if (c <= 0x20 || c >= 0x7f)
			return error_set(GROVE_EINVAL,
					 "repository path contains a control, space or non-ASCII byte (0x%02x) at offset %zu",
					 c, i);
		if (c == '\\' || c == '\'' || c == '"' || c == '`')
			return error_set(GROVE_EINVAL, "repository path contains a forbidden character '%c'", c);
	}
	comp = rel;
	for (;;) {
		const char *slash = strchr(comp, '/');
		size_t clen = slash ? (size_t)(slash - comp) : strlen(comp);
		if (clen == 0)
			return error_set(GROVE_EINVAL, "repository path has an empty component ('//' or a trailing '/')");
		if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.'))
			return error_set(GROVE_EINVAL, "repository path must not contain '.' or '..' components");
		if (comp[0] == '-' || comp[0] == '~')
			return error_set(GROVE_EINVAL, "repository path components must not start with '%c'", comp[0]);
		if (!slash)
			break;
		comp = slash + 1;
	}
	return 0;
}

int storage_name_validate(const char *name)
{
	size_t len;
	if (!name || !*name)
		return error_set(GROVE_EINVAL, "storage name is empty");
	len = strnlen(name, STORAGE_NAME_MAX + 1);
	if (len > STORAGE_NAME_MAX)
		return error_set(GROVE_EINVAL, "storage name is longer than %d bytes", STORAGE_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '.' || c == '_' || c == '-'));
		if (!ok)
			return error_set(GROVE_EINVAL, "storage name may only use letters, digits, '.', '_' and '-'");
	}
	return 0;
}

int repopath_map(const char *root, const char *rel, struct strbuf *out)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	int ret = repopath_validate(rel);
	if (ret)
		return ret;
	SHA256((const unsigned char *)rel, strlen(rel), digest);
	hex_encode(digest, sizeof(digest), hex);
	return strbuf_addf(out, "%s/@hashed/%.2s/%.2s/%s.git", root, hex, hex + 2, hex);
}
