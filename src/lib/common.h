/*
 * The first header every Grove source file includes: the standard headers
 * nearly all of them need, a few helpers, and — last, so that it only touches
 * our code — the list of banned libc calls.
 */
#ifndef GROVE_COMMON_H
#define GROVE_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Frees and clears a pointer, so that a second free is harmless. */
#define FREE_AND_NULL(p) do { free(p); (p) = NULL; } while (0)

/* Allocation failure is not an error Grove recovers from: it aborts. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst of size n, always NUL-terminated; returns strlen(src). */
size_t strlcpy_(char *dst, const char *src, size_t n);

/* Whether s starts with prefix; if so and rest is not NULL, points it past. */
bool skip_prefix(const char *s, const char *prefix, const char **rest);
/* Two strings alike, NULL being one value. */
bool same_str(const char *a, const char *b);
bool ends_with(const char *s, const char *suffix);

/* Monotonic clock in milliseconds, for durations and deadlines. */
int64_t now_ms(void);
/* The same in microseconds. */
int64_t now_us(void);
/*
 * Wall clock in milliseconds since the epoch: for times other processes
 * compare, through a shared database (job leases, health reports). A
 * monotonic clock counts from each machine's boot, so two routers on two
 * machines would disagree by their uptimes.
 */
int64_t wall_ms(void);
/* "12.5 MiB", "512 bytes": a size for a person, in out. */
void bytes_human(uint64_t bytes, char *out, size_t n);
/* "2026-12-04T14:05:44Z": the UTC time t (seconds since the epoch), in out. */
#define TIME_ISO_LEN 32
void time_iso8601(int64_t t, char out[TIME_ISO_LEN]);
/* *ts = now on clock plus ms: the deadline of a pthread_cond_timedwait (or another wait). */
void deadline_after_ms(struct timespec *ts, clockid_t clock, int64_t ms);
/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines:
 * a change of the wall clock moves none. */
void cond_init_monotonic(pthread_cond_t *cv);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* FNV-1a of a string: stable across versions and machines (an app's canary
 * bucket must never move), not for anything an attacker must not steer. */
uint32_t fnv1a32(const char *s);
uint64_t fnv1a64(const char *s);

#include "lib/banned.h"

#endif
