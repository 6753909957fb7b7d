/* git-config files through libgit2: see config.h. */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/error.h"
#include "lib/proc.h"

#include <git2.h>
#include <libgen.h>
#include <sys/mman.h>

struct config {
	git_config *git;
	char *path;
	char *dir;
};

static const char *git_errmsg(void)
{
	const git_error *e = git_error_last();
	return e && e->message ? e->message : "unknown error";
}

/* Reads the file at path; messages and relative paths go by name. */
static int config_open_as(struct config **out, const char *path, const char *name)
{
	struct config *cfg = NULL;
	char *copy = NULL;
	int ret = 0;

	*out = NULL;
	git_libgit2_init();
	if (access(path, R_OK)) {
		ret = error_set(GROVE_ENOTFOUND, "cannot read config file %s: %s", name, strerror(errno));
		goto out;
	}
	cfg = xcalloc(1, sizeof(*cfg));
	/* Absolute: a path taken from the config (a hooks folder, a root) must
	 * not change meaning when the process or git runs elsewhere. */
	cfg->path = realpath(name, NULL);
	if (!cfg->path)
		cfg->path = xstrdup(name);
	copy = xstrdup(cfg->path);
	cfg->dir = xstrdup(dirname(copy));
	if (git_config_open_ondisk(&cfg->git, path) < 0) {
		ret = error_set(GROVE_EINVAL, "config file %s: %s", name, git_errmsg());
		goto out;
	}
	*out = cfg;
	cfg = NULL;
out:
	free(copy);
	config_free(cfg);
	return ret;
}

int config_open(struct config **out, const char *path)
{
	return config_open_as(out, path, path);
}

/*
 * libgit2 (1.5) parses config only from files, so the text goes through an
 * anonymous memory file: nothing is written to disk, nothing is left behind.
 */
int config_open_buffer(struct config **out, const char *name, const char *buf, size_t len)
{
	char path[64];
	int fd, ret = 0;

	*out = NULL;
	fd = memfd_create("grove-config", MFD_CLOEXEC);
	if (fd < 0)
		return error_set(GROVE_EIO, "config %s: cannot make a memory file: %s", name, strerror(errno));
	if (write_all(fd, buf, len)) {
		ret = error_set(GROVE_EIO, "config %s: cannot fill a memory file: %s", name, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = config_open_as(out, path, name);
out:
	close(fd);
	return ret;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	git_config_free(cfg->git);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

const char *config_file(const struct config *cfg)
{
	return cfg->path;
}

int config_get_str(struct config *cfg, const char *key, const char *def, char **out)
{
	git_buf buf = { 0 };
	int r = git_config_get_string_buf(&buf, cfg->git, key);
	*out = NULL;
	if (r == GIT_ENOTFOUND) {
		*out = def ? xstrdup(def) : NULL;
		return 0;
	}
	if (r < 0)
		return error_set(GROVE_EINVAL, "%s: %s: %s", cfg->path, key, git_errmsg());
	*out = xstrdup(buf.ptr);
	git_buf_dispose(&buf);
	return 0;
}

int config_get_path(struct config *cfg, const char *key, const char *def, char **out)
{
	int ret = config_get_str(cfg, key, def, out);
	if (ret || !*out || (*out)[0] == '/' || !(*out)[0])
		return ret;
	char *abs = xasprintf("%s/%s", cfg->dir, *out);
	free(*out);
	*out = abs;
	return 0;
}

int config_get_int(struct config *cfg, const char *key, int64_t def, int64_t min, int64_t max,
		   int64_t *out)
{
	int64_t v;
	int r = git_config_get_int64(&v, cfg->git, key);
	if (r == GIT_ENOTFOUND) {
		*out = def;
		return 0;
	}
	if (r < 0)
		return error_set(GROVE_EINVAL, "%s: %s: %s (expected an integer)", cfg->path, key, git_errmsg());
	if (v < min || v > max)
		return error_set(GROVE_EINVAL, "%s: %s = %lld is out of range [%lld, %lld]", cfg->path, key,
				 (long long)v, (long long)min, (long long)max);
	*out = v;
	return 0;
}

int config_get_bool(struct config *cfg, const char *key, bool def, bool *out)
{
	int v;
	int r = git_config_get_bool(&v, cfg->git, key);
	if (r == GIT_ENOTFOUND) {
		*out = def;
		return 0;
	}
	if (r < 0)
		return error_set(GROVE_EINVAL, "%s: %s: %s (expected true or false)", cfg->path, key, git_errmsg());
	*out = v != 0;
	return 0;
}

struct multi_ctx {
	char **v;
	size_t n;
};

static int collect(const git_config_entry *e, void *payload)
{
	struct multi_ctx *m = payload;
	m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
	m->v[m->n++] = xstrdup(e->value ? e->value : "");
	return 0;
}

int config_get_all(struct config *cfg, const char *key, char ***out, size_t *n)
{
	struct multi_ctx m = { NULL, 0 };
	int r = git_config_get_multivar_foreach(cfg->git, key, NULL, collect, &m);
	if (r < 0 && r != GIT_ENOTFOUND) {
		config_strv_free(m.v, m.n);
		return error_set(GROVE_EINVAL, "%s: %s: %s", cfg->path, key, git_errmsg());
	}
	*out = m.v;
	*n = m.n;
	return 0;
}

/*
 * All entries, filtered here: libgit2's regex variants leak their pcre2
 * match data (seen under LeakSanitizer), and a prefix is all we need.
 */
int config_subsections(struct config *cfg, const char *section, char ***out, size_t *n)
{
	struct multi_ctx m = { NULL, 0 };
	git_config_iterator *it = NULL;
	git_config_entry *e;
	size_t plen = strlen(section);
	int r;

	*out = NULL;
	*n = 0;
	if (git_config_iterator_new(&it, cfg->git) < 0)
		return error_set(GROVE_EINVAL, "%s: reading [%s \"…\"] sections: %s", cfg->path, section, git_errmsg());
	while ((r = git_config_next(&e, it)) == 0) {
		const char *name = e->name, *dot;
		size_t len;
		bool seen = false;
		if (strncmp(name, section, plen) || name[plen] != '.')
			continue;
		name += plen + 1;
		dot = strrchr(name, '.');
		if (!dot || dot == name)
			continue;
		len = (size_t)(dot - name);
		for (size_t i = 0; i < m.n && !seen; i++)
			seen = strlen(m.v[i]) == len && !memcmp(m.v[i], name, len);
		if (seen)
			continue;
		m.v = xrealloc(m.v, (m.n + 1) * sizeof(*m.v));
		m.v[m.n++] = xstrndup(name, len);
	}
	git_config_iterator_free(it);
	if (r != GIT_ITEROVER) {
		config_strv_free(m.v, m.n);
		return error_set(GROVE_EINVAL, "%s: reading [%s \"…\"] sections: %s", cfg->path, section, git_errmsg());
	}
	*out = m.v;
	*n = m.n;
	return 0;
}

void config_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}
