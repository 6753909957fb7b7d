/*
 * Pushes per user per minute (gate.pushesPerMinute), counted across the
 * gate's session processes: a token bucket per user in a shared anonymous
 * mapping made before the first fork, as the metrics are. A burst of the
 * whole minute's share is allowed, then one push every 60/N seconds.
 */
#ifndef GROVE_GATE_RATELIMIT_H
#define GROVE_GATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* The shared table (NULL if it cannot be made: no limit is then kept),
 * made by the gate (create) or mapped by `grove shell`, as the metrics. */
struct ratelimit *ratelimit_create(const char *path, bool create);
/*
 * Takes one push of user at now_ms with per_minute allowed: 0 when it may
 * go, else the seconds until it may (at least 1).
 */
int ratelimit_take(struct ratelimit *rl, const char *user, int per_minute, int64_t now_ms);

/* Set once by the gate before it forks. */
extern struct ratelimit *gate_ratelimit;

#endif
