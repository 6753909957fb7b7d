/* Pushes per user per minute: see ratelimit.h. */
#include "lib/common.h"
#include "gate/ratelimit.h"
#include "lib/fs.h"

#include <pthread.h>

#define RL_SLOTS 4096   /* users tracked at once; the least recent gives way */
#define RL_PROBE 16

struct rl_slot {
	uint64_t key;           /* hash of the user's name; 0: free */
	double tokens;
	int64_t last_ms;
};

struct ratelimit {
	pthread_mutex_t mu;     /* process-shared, robust: a session may die holding it */
	struct rl_slot slots[RL_SLOTS];
};

struct ratelimit *gate_ratelimit;

struct ratelimit *ratelimit_create(const char *path, bool create)
{
	pthread_mutexattr_t a;
	struct ratelimit *rl = fs_map_shared(path, sizeof(*rl), create);
	if (!rl || (path && !create))
		return rl;   /* its maker set the mutex up */
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&rl->mu, &a);
	pthread_mutexattr_destroy(&a);
	return rl;
}

static uint64_t key_of(const char *user)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)user; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h ? h : 1;
}

/* The user's slot: theirs, a free one, or the least recently used nearby. */
static struct rl_slot *slot_of(struct ratelimit *rl, uint64_t key, double full)
{
	struct rl_slot *oldest = NULL;
	for (size_t i = 0; i < RL_PROBE; i++) {
		struct rl_slot *s = &rl->slots[(key + i) % RL_SLOTS];
		if (s->key == key)
			return s;
		if (!s->key || !oldest || s->last_ms < oldest->last_ms)
			oldest = s;
		if (!s->key)
			break;
	}
	oldest->key = key;
	oldest->tokens = full;
	oldest->last_ms = 0;
	return oldest;
}

int ratelimit_take(struct ratelimit *rl, const char *user, int per_minute, int64_t now_ms)
{
	double rate = per_minute / 60000.0, full = per_minute;   /* tokens per ms, burst */
	int wait_s = 0;

	if (!rl || per_minute <= 0)
		return 0;
	if (pthread_mutex_lock(&rl->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&rl->mu);
	struct rl_slot *s = slot_of(rl, key_of(user), full);
	if (s->last_ms)
		s->tokens = MIN(full, s->tokens + (double)(now_ms - s->last_ms) * rate);
	s->last_ms = now_ms;
	if (s->tokens >= 1.0)
		s->tokens -= 1.0;
	else
		wait_s = (int)((1.0 - s->tokens) / rate / 1000.0) + 1;
	pthread_mutex_unlock(&rl->mu);
	return wait_s;
}
