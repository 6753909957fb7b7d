/* Progress files of long operations: see progress.h. */
#include "gate/progress.h"
#include "lib/common.h"
#include "lib/fs.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>

#define PROGRESS_EVERY_MS 250

/* Writes the file whole (a temporary then a rename: a reader never sees half a line). */
static void progress_write(struct progress *p)
{
	char tmp[4300];
	FILE *f;

	p->written_ms = now_ms();
	if (p->show)
		p->show(p, p->show_arg);
	if (!p->path[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", p->path);
	if (!(f = fopen(tmp, "w")))
		return;
	fprintf(f, "%s %s %llu %llu %lld %ld\n", p->kind, p->phase, (unsigned long long)p->done,
		(unsigned long long)p->total, (long long)p->since, (long)getpid());
	if (fclose(f) || rename(tmp, p->path))
		unlink(tmp);
}

void progress_watch(struct progress *p, progress_show_fn *show, void *arg)
{
	p->show = show;
	p->show_arg = arg;
}

void progress_start(struct progress *p, const char *dir, const char *app, const char *kind)
{
	memset(p, 0, sizeof(*p));
	strlcpy_(p->kind, kind, sizeof(p->kind));
	strlcpy_(p->phase, "starting", sizeof(p->phase));
	p->since = wall_ms() / 1000;
	if (!dir || fs_mkdir_p(dir, 0700))
		return;
	snprintf(p->path, sizeof(p->path), "%s/%s.%s", dir, app, kind);
	progress_write(p);
}

void progress_phase(struct progress *p, const char *phase, uint64_t total)
{
	if (!p)
		return;
	strlcpy_(p->phase, phase, sizeof(p->phase));
	p->done = 0;
	p->total = total;
	progress_write(p);
}

void progress_add(struct progress *p, uint64_t n)
{
	if (!p)
		return;
	p->done += n;
	/* The first bytes of a phase at once: they tell a reader the work has begun, even if it then stalls. */
	if (p->done == n || now_ms() - p->written_ms >= PROGRESS_EVERY_MS)
		progress_write(p);
}

void progress_end(struct progress *p)
{
	if (p && p->path[0])
		unlink(p->path);
	if (p)
		p->path[0] = '\0';
}

/* One file's operation, or NULL (unreadable, malformed, or its process gone: then removed). */
static json_t *progress_read(const char *path, const char *app)
{
	char kind[16], phase[32];
	unsigned long long done, total;
	long long since;
	long pid;
	FILE *f = fopen(path, "r");
	int n;

	if (!f)
		return NULL;
	n = fscanf(f, "%15s %31s %llu %llu %lld %ld", kind, phase, &done, &total, &since, &pid);
	fclose(f);
	if (n != 6)
		return NULL;
	if (pid <= 0 || (kill((pid_t)pid, 0) && errno == ESRCH)) {
		unlink(path);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "app", app, "kind", kind, "phase", phase, "done_bytes",
			 (json_int_t)done, "total_bytes", (json_int_t)total, "since", (json_int_t)since);
}

void progress_list(const char *dir, json_t *arr)
{
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[4200], app[256];
		const char *dot = strrchr(e->d_name, '.');
		json_t *o;
		/* APP.KIND; app names have no dot, and APP.KIND.tmp is being written. */
		if (e->d_name[0] == '.' || !dot || dot == e->d_name || strchr(e->d_name, '.') != dot)
			continue;
		snprintf(app, sizeof(app), "%.*s", (int)(dot - e->d_name), e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if ((o = progress_read(path, app)))
			json_array_append_new(arr, o);
	}
	if (d)
		closedir(d);
}

json_t *progress_get(const char *dir, const char *app, const char *kind)
{
	char path[4200];
	if (!dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.%s", dir, app, kind);
	return progress_read(path, app);
}
