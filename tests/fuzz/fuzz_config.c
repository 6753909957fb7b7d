/*
 * libFuzzer target for src/lib/config.c: the git-config parser (libgit2's)
 * and Grove's typed getters, over the keys the daemons read. A file either
 * opens or is refused with a message; every getter either gives a value in
 * its range or refuses with a message. Nothing may crash or leak.
 *
 * Inputs with "include" are skipped: [include] and [includeIf] make libgit2
 * read other files, and from a memory file "path = 0" is /proc/self/fd/0
 * (the fuzzer's stdin). Following includes is libgit2's file I/O, not
 * parsing; an operator's config is trusted to name its own files.
 */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/error.h"

#include <strings.h>

static const char *const str_keys[] = {
	"store.name", "store.listen", "store.root", "gate.listen", "gate.database", "route.cluster",
	"log.level", "deploy.command", "cluster.virtualStorage", "gate.deployBranch",
};
static const char *const int_keys[] = { "store.threads", "store.maxCalls", "store.maxMessage", "store.shutdownGrace" };
static const char *const bool_keys[] = { "store.fsckObjects", "gate.otherBranches" };

static bool has_include(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 7 <= size; i++)
		if (!strncasecmp((const char *)data + i, "include", 7))
			return true;
	return false;
}

/* A refusal always comes with a message. */
static void check_refusal(void)
{
	const char *msg = error_msg();
	if (!msg[0])
		abort();
	error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char **v = NULL, *s = NULL;
	size_t n = 0;

	if (has_include(data, size))
		return 0;
	error_clear();
	if (config_open_buffer(&cfg, "/etc/grove/fuzz.conf", (const char *)data, size)) {
		check_refusal();
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(str_keys); i++) {
		if (config_get_str(cfg, str_keys[i], "def", &s))
			check_refusal();
		else if (!s)
			abort();
		free(s);
		s = NULL;
	}
	if (config_get_path(cfg, "store.root", NULL, &s))
		check_refusal();
	else if (s && s[0] && s[0] != '/')
		abort();   /* relative paths are made absolute */
	free(s);
	for (size_t i = 0; i < ARRAY_SIZE(int_keys); i++) {
		int64_t x = -7;
		if (config_get_int(cfg, int_keys[i], 5, 1, 1 << 20, &x))
			check_refusal();
		else if (x < 1 || x > (1 << 20))
			abort();
	}
	for (size_t i = 0; i < ARRAY_SIZE(bool_keys); i++) {
		bool b;
		if (config_get_bool(cfg, bool_keys[i], false, &b))
			check_refusal();
	}
	if (config_get_all(cfg, "route.storage", &v, &n))
		check_refusal();
	config_strv_free(v, n);
	v = NULL;
	n = 0;
	if (config_subsections(cfg, "store", &v, &n))
		check_refusal();
	for (size_t i = 0; i < n; i++)
		if (!v[i][0])
			abort();
	config_strv_free(v, n);
	config_free(cfg);
	return 0;
}
