/* git-config files through libgit2: see config.h. */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/error.h"
#include "lib/proc.h"
#include "lib/strvec.h"

#include <ctype.h>
#include <git2.h>
#include <libgen.h>
#include <sys/mman.h>

struct config {
	git_config *git;
	char *path;
	char *dir;
	struct strvec asked;   /* every key a role read, as git names it (config_check_unknown) */
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
	git_config *live = NULL;
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
	if (git_config_open_ondisk(&live, path) < 0) {
		ret = error_set(GROVE_EINVAL, "config file %s: %s", name, git_errmsg());
		goto out;
	}
	/* The file as it is now: libgit2 would read it again whenever it
	 * changes, and a reload compares the old settings with the new. */
	if (git_config_snapshot(&cfg->git, live) < 0) {
		ret = error_set(GROVE_EINVAL, "config file %s: %s", name, git_errmsg());
		goto out;
	}
	*out = cfg;
	cfg = NULL;
out:
	git_config_free(live);
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
	strvec_clear(&cfg->asked);
	free(cfg);
}

const char *config_file(const struct config *cfg)
{
	return cfg->path;
}

/* key as git names it: the section and the name in lower case, a
 * subsection as it is ("store.S1.Address" is "store.S1.address"). */
static void key_normalize(const char *key, char *out, size_t size)
{
	const char *first = strchr(key, '.'), *last = strrchr(key, '.');

	strlcpy_(out, key, size);
	for (size_t i = 0; out[i]; i++)
		if (!first || key + i < first || key + i > last)
			out[i] = (char)tolower((unsigned char)out[i]);
}

/* The role reads key: it is one the role knows. */
static void config_ask(struct config *cfg, const char *key)
{
	char norm[512];

	key_normalize(key, norm, sizeof(norm));
	for (size_t i = 0; i < cfg->asked.n; i++)
		if (!strcmp(cfg->asked.v[i], norm))
			return;
	strvec_push(&cfg->asked, norm);
}

/* "[name]" or "[name \"sub\"]" at p: the section as git names it. */
static void section_parse(const char *p, char *out, size_t size)
{
	size_t n = 0;

	for (p++; *p && *p != ']' && *p != ' ' && *p != '"' && n + 1 < size; p++)
		out[n++] = (char)tolower((unsigned char)*p);
	while (*p == ' ')
		p++;
	if (*p == '"' && n + 1 < size) {
		out[n++] = '.';
		for (p++; *p && *p != '"' && n + 1 < size; p++) {
			if (*p == '\\' && p[1])
				p++;
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

/*
 * The line of the file that sets key (the last one: git takes the last),
 * or 0 when it cannot be told (a config from memory); spelled gets the key
 * as the file spells its name. A line scan, not a parser: libgit2 does not
 * say where an entry came from.
 */
static int config_line(const struct config *cfg, const char *key, char *spelled, size_t size)
{
	char line[4096], section[512] = "", full[1100];
	FILE *f = fopen(cfg->path, "r");
	int n = 0, found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = line;
		size_t len = 0;
		char name[256], raw[256];
		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			section_parse(p, section, sizeof(section));
			continue;
		}
		while ((isalnum((unsigned char)p[len]) || p[len] == '-') && len + 1 < sizeof(name)) {
			name[len] = (char)tolower((unsigned char)p[len]);
			raw[len] = p[len];
			len++;
		}
		name[len] = raw[len] = '\0';
		snprintf(full, sizeof(full), "%s.%s", section, name);
		if (len && !strcmp(full, key)) {
			found = n;
			if (spelled)
				snprintf(spelled, size, "%.*s%s", (int)(strrchr(key, '.') - key + 1), key, raw);
		}
	}
	fclose(f);
	return found;
}

/* "FILE:LINE" where key is set, or "FILE" when the line is not known. */
static const char *where(const struct config *cfg, const char *key, char *buf, size_t size)
{
	char norm[512];
	int line;

	key_normalize(key, norm, sizeof(norm));
	line = config_line(cfg, norm, NULL, 0);
	if (line)
		snprintf(buf, size, "%s:%d", cfg->path, line);
	else
		snprintf(buf, size, "%s", cfg->path);
	return buf;
}

int config_check_unknown(struct config *cfg)
{
	git_config_iterator *it = NULL;
	git_config_entry *e;
	char first[1200] = "";
	int unknown = 0, r;

	if (git_config_iterator_new(&it, cfg->git) < 0)
		return error_set(GROVE_EINVAL, "%s: %s", cfg->path, git_errmsg());
	while ((r = git_config_next(&e, it)) == 0) {
		bool known = !strncmp(e->name, "include.", 8) || !strncmp(e->name, "includeif.", 10);
		for (size_t i = 0; i < cfg->asked.n && !known; i++)
			known = !strcmp(cfg->asked.v[i], e->name);
		if (known)
			continue;
		if (!unknown++) {
			char spelled[600];
			int line = config_line(cfg, e->name, spelled, sizeof(spelled));
			if (line)
				snprintf(first, sizeof(first), "%s:%d: unknown key %s", cfg->path, line, spelled);
			else
				snprintf(first, sizeof(first), "%s: unknown key %s", cfg->path, e->name);
		}
	}
	git_config_iterator_free(it);
	if (r != GIT_ITEROVER)
		return error_set(GROVE_EINVAL, "%s: %s", cfg->path, git_errmsg());
	if (unknown > 1)
		return error_set(GROVE_EINVAL, "%s (and %d more unknown keys): a typo, or a key of another part? "
				 "--help lists the keys", first, unknown - 1);
	if (unknown)
		return error_set(GROVE_EINVAL, "%s: a typo, or a key of another part? --help lists the keys", first);
	return 0;
}

int config_get_str(struct config *cfg, const char *key, const char *def, char **out)
{
	git_buf buf = { 0 };
	int r = git_config_get_string_buf(&buf, cfg->git, key);
	config_ask(cfg, key);
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
	char at[1200];
	int64_t v;
	int r = git_config_get_int64(&v, cfg->git, key);
	config_ask(cfg, key);
	if (r == GIT_ENOTFOUND) {
		*out = def;
		return 0;
	}
	if (r < 0)
		return error_set(GROVE_EINVAL, "%s: %s: %s (expected an integer)", where(cfg, key, at, sizeof(at)), key,
				 git_errmsg());
	if (v < min || v > max)
		return error_set(GROVE_EINVAL, "%s: %s = %lld is out of range [%lld, %lld]", where(cfg, key, at, sizeof(at)),
				 key,
				 (long long)v, (long long)min, (long long)max);
	*out = v;
	return 0;
}

int config_get_bool(struct config *cfg, const char *key, bool def, bool *out)
{
	char at[1200];
	int v;
	int r = git_config_get_bool(&v, cfg->git, key);
	config_ask(cfg, key);
	if (r == GIT_ENOTFOUND) {
		*out = def;
		return 0;
	}
	if (r < 0)
		return error_set(GROVE_EINVAL, "%s: %s: %s (expected true or false)", where(cfg, key, at, sizeof(at)), key,
				 git_errmsg());
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
	config_ask(cfg, key);
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

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every "name=value" of cfg but the reloadable keys', sorted. */
static int config_lines(struct config *cfg, const char *const *reloadable, struct strvec *out)
{
	git_config_iterator *it = NULL;
	git_config_entry *e;
	int r;

	if (git_config_iterator_new(&it, cfg->git) < 0)
		return error_set(GROVE_EINVAL, "%s: %s", cfg->path, git_errmsg());
	while ((r = git_config_next(&e, it)) == 0) {
		bool skip = false;
		for (size_t i = 0; reloadable && reloadable[i] && !skip; i++)
			skip = !strcmp(reloadable[i], e->name);
		if (!skip)
			strvec_pushf(out, "%s=%s", e->name, e->value ? e->value : "");
	}
	git_config_iterator_free(it);
	if (r != GIT_ITEROVER)
		return error_set(GROVE_EINVAL, "%s: %s", cfg->path, git_errmsg());
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_strp);
	return 0;
}

int config_same_but(struct config *a, struct config *b, const char *const *reloadable)
{
	struct strvec la = STRVEC_INIT, lb = STRVEC_INIT;
	int ret;

	if ((ret = config_lines(a, reloadable, &la)) || (ret = config_lines(b, reloadable, &lb)))
		goto out;
	for (size_t i = 0; i < la.n || i < lb.n; i++) {
		const char *d = i >= la.n ? lb.v[i] : i >= lb.n ? la.v[i] : strcmp(la.v[i], lb.v[i]) ? la.v[i] : NULL;
		if (d) {
			ret = error_set(GROVE_EINVAL, "%.*s changed: that takes a restart (SIGUSR2 upgrades in place)",
					(int)strcspn(d, "="), d);
			break;
		}
	}
out:
	strvec_clear(&la);
	strvec_clear(&lb);
	return ret;
}

void config_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}
