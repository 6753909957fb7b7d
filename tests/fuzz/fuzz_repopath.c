/*
 * libFuzzer target for src/lib/repopath.c. Whatever path repopath_validate
 * accepts must be harmless as a name (relative, no "." or ".." or empty
 * component, no leading '-' or '~', printable ASCII), and must map to a
 * location inside the root's @hashed folder; whatever it refuses, mapping
 * must refuse too.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/repopath.h"

#define ROOT "/srv/grove/root"

static void check_accepted(const char *s)
{
	size_t len = strlen(s);
	struct strbuf sb;
	const char *rest;

	if (len == 0 || len > REPOPATH_MAX || s[0] == '/')
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '\'' || c == '"')
			abort();
	}
	for (const char *comp = s;;) {
		const char *slash = strchr(comp, '/');
		size_t clen = slash ? (size_t)(slash - comp) : strlen(comp);
		if (clen == 0 || (clen == 1 && comp[0] == '.') || (clen == 2 && !memcmp(comp, "..", 2)) ||
		    comp[0] == '-' || comp[0] == '~')
			abort();
		if (!slash)
			break;
		comp = slash + 1;
	}

	strbuf_init(&sb, 0);
	if (repopath_map(ROOT, s, &sb))
		abort();
	if (!skip_prefix(sb.buf, ROOT "/@hashed/", &rest) || !strstr(sb.buf, "/@hashed/"))
		abort();
	/* xx/yy/<64 hex>.git and nothing else: the path itself never shows. */
	if (strlen(rest) != 2 + 1 + 2 + 1 + 64 + 4 || rest[2] != '/' || rest[5] != '/' ||
	    strcmp(rest + 70, ".git") || memcmp(rest, rest + 6, 2) || memcmp(rest + 3, rest + 8, 2))
		abort();
	for (int i = 0; i < 64; i++)
		if (!strchr("0123456789abcdef", rest[6 + i]) || !rest[6 + i])
			abort();
	if (strstr(sb.buf, ".."))
		abort();
	strbuf_release(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	struct strbuf sb;

	memcpy(s, data, size);
	s[size] = '\0';
	if (repopath_validate(s) == 0) {
		check_accepted(s);
	} else {
		strbuf_init(&sb, 0);
		if (repopath_map(ROOT, s, &sb) != GROVE_EINVAL || sb.len)
			abort();
		strbuf_release(&sb);
	}
	if (storage_name_validate(s) == 0) {
		size_t len = strlen(s);
		if (len == 0 || len > STORAGE_NAME_MAX || s[0] == '.' || s[0] == '-' || s[0] == '_')
			abort();
		for (size_t i = 0; i < len; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
				abort();
	}
	free(s);
	return 0;
}
