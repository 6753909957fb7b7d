/*
 * The progress of a long operation on an app (a move between the routes, a
 * backup, a restore), in a one-line file that the admin API reads
 * (GET /api/v1/operations) and the dashboard draws as a bar. A move runs
 * in the gate, a backup or a restore in a `grove` command beside it: a
 * file in the gate's data folder is what both see.
 *
 * Best effort: an operation never fails because its progress could not be
 * written. The file goes when the operation ends; one left by a process
 * that died is skipped (its pid is gone) and removed by the next reader.
 */
#ifndef GROVE_GATE_PROGRESS_H
#define GROVE_GATE_PROGRESS_H

#include <jansson.h>
#include <stdint.h>

struct progress;
/* Told of every change a reader would see (a command's bar: cli/bar.h). */
typedef void progress_show_fn(const struct progress *p, void *arg);

struct progress {
	progress_show_fn *show;   /* NULL: none */
	void *show_arg;
	char path[4200];          /* "": not recorded */
	char kind[16];            /* move, backup, restore */
	char phase[32];           /* locking, copying, checking, switching, receiving, … */
	uint64_t done, total;     /* bytes; total 0: not known */
	int64_t since;            /* wall clock, s */
	int64_t written_ms;       /* monotonic: when the file was last written */
};

/* Starts recording kind on app under dir (NULL: nowhere). */
void progress_start(struct progress *p, const char *dir, const char *app, const char *kind);
/* Also tells show (NULL: nobody) of each change. */
void progress_watch(struct progress *p, progress_show_fn *show, void *arg);
/* A new phase, whose bytes count from 0 up to total (0: not known). */
void progress_phase(struct progress *p, const char *phase, uint64_t total);
/* n more bytes done (the file is rewritten at most every 250 ms). */
void progress_add(struct progress *p, uint64_t n);
void progress_end(struct progress *p);

/* Every operation in progress under dir, appended to arr as objects (app, kind, phase, done_bytes, total_bytes, since). */
void progress_list(const char *dir, json_t *arr);
/* The one of app and kind, or NULL. */
json_t *progress_get(const char *dir, const char *app, const char *kind);

#endif
