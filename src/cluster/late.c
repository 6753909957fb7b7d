/*
 * Writes with late replicas: a push answered at its quorum whose other
 * replicas are still finishing it (router.c, proxy_end_late). The next
 * write to the same repository waits a little for them (cluster.lateWait):
 * left out, such a replica would miss that write and cost a repair; waited
 * for, it is up to date again and takes it like the others.
 *
 * A router knows its own writes (a list, woken when one ends); those of
 * other router processes sharing the database, from their rows there
 * (state_write_late), asked again every few milliseconds while it waits.
 */
#include "cluster/cluster.h"
#include "lib/error.h"
#include "lib/log.h"
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct late_registry {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* an entry ended */
	struct late_write *head;
};

int late_registry_new(struct late_registry **out)
{
	struct late_registry *reg = xcalloc(1, sizeof(*reg));
	pthread_mutex_init(&reg->mu, NULL);
	cond_init_monotonic(&reg->cv);
	*out = reg;
	return 0;
}

void late_registry_free(struct late_registry *reg)
{
	if (!reg)
		return;
	pthread_mutex_destroy(&reg->mu);
	pthread_cond_destroy(&reg->cv);
	free(reg);
}

void late_begin(struct cluster *c, struct late_write *w, const char *path)
{
	struct late_registry *reg = c->lates;
	strlcpy_(w->path, path, sizeof(w->path));   /* w->nodes: the caller's */
	pthread_mutex_lock(&reg->mu);
	w->next = reg->head;
	reg->head = w;
	pthread_mutex_unlock(&reg->mu);
}

void late_end(struct cluster *c, struct late_write *w)
{
	struct late_registry *reg = c->lates;
	pthread_mutex_lock(&reg->mu);
	for (struct late_write **p = &reg->head; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	pthread_cond_broadcast(&reg->cv);
	pthread_mutex_unlock(&reg->mu);
}

static bool late_has(const struct late_registry *reg, const char *path)
{
	for (const struct late_write *w = reg->head; w; w = w->next)
		if (!strcmp(w->path, path))
			return true;
	return false;
}

bool late_running(struct cluster *c, const char *path, const struct node *node)
{
	struct late_registry *reg = c->lates;
	bool found = false;
	pthread_mutex_lock(&reg->mu);
	for (const struct late_write *w = reg->head; w && !found; w = w->next)
		for (size_t i = 0; i < w->nnodes && !found; i++)
			found = w->nodes[i] == node && !strcmp(w->path, path);
	pthread_mutex_unlock(&reg->mu);
	return found;
}

int64_t late_wait(struct cluster *c, const char *path, int max_ms, bool *still)
{
	struct late_registry *reg = c->lates;
	int64_t start = now_ms();
	bool waited = false;
	struct timespec dl;

	*still = false;
	if (max_ms <= 0)
		return -1;
	deadline_after_ms(&dl, CLOCK_MONOTONIC, max_ms);
	pthread_mutex_lock(&reg->mu);
	while ((*still = late_has(reg, path))) {
		if (!waited)
			log_info("cluster.late_wait", "repo=%s max_ms=%d elsewhere=%b", path, max_ms, false);
		waited = true;
		if (pthread_cond_timedwait(&reg->cv, &reg->mu, &dl) == ETIMEDOUT) {
			*still = late_has(reg, path);
			break;
		}
	}
	pthread_mutex_unlock(&reg->mu);
	return waited ? now_ms() - start : -1;
}

int64_t late_wait_elsewhere(struct cluster *c, const char *path, int max_ms, bool *still)
{
	int64_t start = now_ms(), n = 0, left;
	int pause_ms = 5;
	bool waited = false;

	*still = false;
	if (max_ms <= 0)
		return -1;
	for (;;) {
		if (state_late_elsewhere(c, path, NULL, &n)) {
			/* Not known: the write goes on, as without a database. */
			log_warn("cluster.state_failed", "repo=%s error=%s", path, error_msg());
			n = 0;
		}
		*still = n > 0;
		left = max_ms - (now_ms() - start);
		if (!*still || left <= 0)
			break;
		if (!waited)
			log_info("cluster.late_wait", "repo=%s max_ms=%d elsewhere=%b", path, max_ms, true);
		waited = true;
		usleep((useconds_t)MIN(pause_ms, left) * 1000);
		pause_ms = MIN(pause_ms * 2, 50);
	}
	return waited ? now_ms() - start : -1;
}
