/*
 * The spool (spool.h): an unlinked file between a writer and a feeder
 * thread. Offsets, not a ring: the writer appends at `written`, the feeder
 * reads at `fed`, and the range before `fed` is punched out now and then,
 * so the file's size grows but its blocks do not.
 */
#include "lib/spool.h"
#include "lib/common.h"
#include "lib/error.h"
#include "lib/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_CHUNK (128 * 1024)
#define SPOOL_PUNCH_EVERY (8 << 20)   /* bytes passed on between two punches */

/* Frees the blocks already passed on. Best effort: a file system without
 * hole punching keeps them until the spool ends. */
static void spool_punch(struct spool *sp, uint64_t upto)
{
	if (upto - sp->punched < SPOOL_PUNCH_EVERY)
		return;
	fallocate(sp->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)sp->punched, (off_t)(upto - sp->punched));
	sp->punched = upto;
}

/* The next range to pass on, under mu: false when the feeder is to end. */
static bool spool_next(struct spool *sp, size_t *n)
{
	while (sp->fed == sp->written && !sp->ended && !sp->stopped && !sp->detaching)
		pthread_cond_wait(&sp->cv, &sp->mu);
	if (sp->stopped || sp->fed == sp->written)
		return false;
	*n = (size_t)MIN(sp->written - sp->fed, (uint64_t)SPOOL_CHUNK);
	return true;
}

static void *spool_feed(void *arg)
{
	struct spool *sp = arg;
	char *buf = xmalloc(SPOOL_CHUNK);
	size_t n;

	pthread_mutex_lock(&sp->mu);
	while (spool_next(sp, &n)) {
		uint64_t at = sp->fed;
		pthread_mutex_unlock(&sp->mu);
		/* Only this thread reads; [fed, written) is never rewritten. */
		ssize_t got = pread(sp->fd, buf, n, (off_t)at);
		bool ok = got == (ssize_t)n && !write_all(sp->out, buf, n);
		pthread_mutex_lock(&sp->mu);
		if (!ok) {
			sp->out_failed = true;
			break;
		}
		sp->fed += n;
		spool_punch(sp, sp->fed);
		pthread_cond_broadcast(&sp->cv);
	}
	/* Detached and caught up: out goes back to the writer. */
	if (!(sp->detaching && !sp->out_failed && !sp->stopped)) {
		close(sp->out);
		sp->out = -1;
	}
	sp->done = true;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	free(buf);
	return NULL;
}

int spool_start(struct spool *sp, const char *dir, int out, uint64_t max_lag)
{
	memset(sp, 0, sizeof(*sp));
	sp->out = out;
	sp->max_lag = max_lag ? max_lag : SPOOL_CHUNK;
	sp->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (sp->fd < 0)
		return error_set(GROVE_EIO, "cannot make a spool file in %s: %s", dir, strerror(errno));
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	if (pthread_create(&sp->feeder, NULL, spool_feed, sp)) {
		close(sp->fd);
		pthread_mutex_destroy(&sp->mu);
		pthread_cond_destroy(&sp->cv);
		return error_set(GROVE_EINTERNAL, "cannot start a thread");
	}
	sp->started = true;
	return 0;
}

int spool_write(struct spool *sp, const void *buf, size_t len)
{
	pthread_mutex_lock(&sp->mu);
	while (sp->written - sp->fed >= sp->max_lag && !sp->done)
		pthread_cond_wait(&sp->cv, &sp->mu);
	bool gone = sp->done;
	uint64_t at = sp->written;
	pthread_mutex_unlock(&sp->mu);
	if (gone)
		return error_set(GROVE_ECANCELLED, "the spool's reader is gone");
	/* The writer alone moves `written`: the range it writes is not read yet. */
	for (size_t off = 0; off < len;) {
		ssize_t w = pwrite(sp->fd, (const char *)buf + off, len - off, (off_t)(at + off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return error_set(GROVE_EIO, "cannot write the spool file: %s", w < 0 ? strerror(errno) : "no progress");
		off += (size_t)w;
	}
	pthread_mutex_lock(&sp->mu);
	sp->written += len;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	return 0;
}

int spool_detach(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	sp->detaching = true;
	pthread_cond_broadcast(&sp->cv);
	while (!sp->done)
		pthread_cond_wait(&sp->cv, &sp->mu);
	int out = sp->out;
	sp->out = -1;
	pthread_mutex_unlock(&sp->mu);
	return out;
}

static void spool_mark(struct spool *sp, bool *flag)
{
	pthread_mutex_lock(&sp->mu);
	*flag = true;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

void spool_end(struct spool *sp)
{
	spool_mark(sp, &sp->ended);
}

void spool_stop(struct spool *sp)
{
	spool_mark(sp, &sp->stopped);
}

void spool_finish(struct spool *sp)
{
	if (!sp->started)
		return;
	pthread_join(sp->feeder, NULL);
	sp->started = false;
	if (sp->out >= 0)
		close(sp->out);
	sp->out = -1;
	close(sp->fd);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
}
