/*
 * The per-app push lock, a file lock in the gate's locks folder: a push
 * holds it shared from the moment it sees its app unlocked until its session
 * ends; a move between the routes or a restore takes it exclusive, so it
 * waits for the pushes already running and none starts meanwhile.
 */
#ifndef GROVE_GATE_PUSHLOCK_H
#define GROVE_GATE_PUSHLOCK_H

/* The lock file of app, opened (made if missing): flock it. -1 on error. */
int push_lock_open(const char *locks_dir, const char *app);
/*
 * A push session's side: shared, taken once the app is seen unlocked.
 * Returns the descriptor (close it to release) or -1.
 */
int push_lock_shared(const char *locks_dir, const char *app);
/* Non-blocking variant: -2 when a move or restore holds it. */
int push_lock_try_shared(const char *locks_dir, const char *app);

#endif
