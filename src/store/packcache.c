/*
 * The store's side of the pack-objects cache (lib/packcache.h): its
 * settings, and what upload-pack is given to use it. Off unless
 * packCache.enabled: the cache spends disk to save CPU, an operator's
 * choice (grove up turns it on).
 */
#include "store/store.h"
#include "lib/error.h"
#include "lib/proc.h"

int store_pack_cache_setup(struct store *st, struct config *cfg)
{
	bool on = false;
	int64_t max, age;
	char *dir = NULL, *lite = NULL;
	int ret;

	if ((ret = config_get_bool(cfg, "packCache.enabled", false, &on)) ||
	    (ret = config_get_path(cfg, "packCache.dir", NULL, &dir)) ||
	    (ret = config_get_int(cfg, "packCache.maxBytes", 1LL << 30, 1 << 20, INT64_MAX, &max)) ||
	    (ret = config_get_int(cfg, "packCache.maxAge", 300, 1, 7 * 86400, &age)))
		goto out;
	if (!on || st->check_only)
		goto out;   /* read and checked; --check-config makes nothing */
	st->pack_cache.max_bytes = (uint64_t)max;
	st->pack_cache.max_age = age;
	if ((ret = fs_pathf(st->pack_cache.dir, sizeof(st->pack_cache.dir), "%s", dir ? dir : "")))
		goto out;
	if (!dir && (ret = fs_pathf(st->pack_cache.dir, sizeof(st->pack_cache.dir), "%s/pack-cache", st->state_dir)))
		goto out;
	/* The hook runs through git's shell: the path goes in single quotes. */
	if (strchr(st->pack_cache.dir, '\'') || strchr(st->self_exe, '\'')) {
		ret = error_set(GROVE_EINVAL, "%s: packCache.dir must not contain a quote (\"'\")", config_file(cfg));
		goto out;
	}
	if ((ret = packcache_prepare(&st->pack_cache)))
		goto out;
	/* grove-pack-objects beside the binary starts in a millisecond; grove
	 * itself answers to the name too, at the cost of loading it all. */
	lite = xasprintf("%s-pack-objects", st->self_exe);
	st->pack_objects_hook = xasprintf("%s/grove-pack-objects", st->hooks_dir);
	unlink(st->pack_objects_hook);
	if (symlink(access(lite, X_OK) ? st->self_exe : lite, st->pack_objects_hook))
		ret = error_set(GROVE_EIO, "cannot link %s: %s", st->pack_objects_hook, strerror(errno));
out:
	free(lite);
	free(dir);
	return ret;
}

void store_pack_cache_argv(const struct store *st, struct strvec *argv)
{
	if (!st->pack_objects_hook)
		return;
	/* Only on git's command line: git never takes this setting from a
	 * repository's own config, and neither does Grove. */
	strvec_push(argv, "-c");
	strvec_pushf(argv, "uploadpack.packObjectsHook='%s'", st->pack_objects_hook);
}

char **store_pack_cache_env(const struct store *st, char **env)
{
	char kv[2400];
	if (!st->pack_objects_hook)
		return env;
	snprintf(kv, sizeof(kv), "GROVE_PACK_CACHE=%s", st->pack_cache.dir);
	env = proc_env_push(env, kv);
	snprintf(kv, sizeof(kv), "GROVE_PACK_CACHE_MAX=%llu", (unsigned long long)st->pack_cache.max_bytes);
	env = proc_env_push(env, kv);
	snprintf(kv, sizeof(kv), "GROVE_PACK_CACHE_AGE=%lld", (long long)st->pack_cache.max_age);
	return proc_env_push(env, kv);
}
