/*
 * The per-app concurrency limiter (Gitaly's concurrency limiter, per gate):
 * at most gate.maxOpsPerApp git commands (fetches, clones, pushes, archives)
 * run on one app at once. A session takes a slot, one byte of the app's
 * slot file under a POSIX record lock, and holds it until it ends: the lock
 * goes with the process, so a killed session frees its slot. Sessions are
 * processes of their own, which is what record locks count.
 */
#ifndef GROVE_GATE_OPSLOTS_H
#define GROVE_GATE_OPSLOTS_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Takes one of max slots of app: the descriptor that holds it (close it to
 * free the slot), -2 when all are taken, -1 on error (message set).
 */
int op_slot_try(const char *locks_dir, const char *app, int max);

#endif
