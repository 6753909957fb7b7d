/*
 * The counters of /metrics (gate/metrics.h) as they were each minute of the
 * last hour, for the dashboard's charts of pushes and errors per minute: the
 * counters only ever grow, so a minute's pushes are the difference between
 * two samples. A thread of the api process takes a sample a minute, from
 * admin_start to admin_stop; ui_history owns it and its ring of samples.
 */
#ifndef GROVE_GATE_ADMIN_UI_HISTORY_H
#define GROVE_GATE_ADMIN_UI_HISTORY_H

#include "lib/common.h"

#define UI_HISTORY_MINUTES 30

struct ui_history;

/* What is counted, per minute. */
struct ui_minute {
	uint64_t pushes;      /* git-receive-pack sessions, whatever their end */
	uint64_t errors;      /* sessions of any command that failed or were refused */
	uint64_t push_ms;     /* time spent in pushes: with pushes, their mean */
};

int ui_history_start(struct ui_history **out);
void ui_history_stop(struct ui_history *h);
/*
 * The last minutes, oldest first, the last one being the minute under way
 * (up to now); returns how many (at most UI_HISTORY_MINUTES). Before the
 * first sample a minute old, there is the minute under way only.
 */
size_t ui_history_minutes(struct ui_history *h, struct ui_minute out[UI_HISTORY_MINUTES]);

#endif
