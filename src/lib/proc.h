/*
 * Child processes with pipes, in the spirit of git's run-command.h. Programs
 * are started with posix_spawn — never through a shell — with a clean
 * environment, default signal dispositions, every other descriptor closed,
 * and optionally in a process group of their own so that a whole git
 * pipeline (receive-pack and its index-pack) can be killed at once.
 *
 * Callers put user-chosen strings in argv only after "--".
 */
#ifndef GROVE_PROC_H
#define GROVE_PROC_H

#include "lib/strbuf.h"

enum {
	PROC_STDIN = 1 << 0,      /* give the child a pipe as stdin (else /dev/null) */
	PROC_STDOUT = 1 << 1,     /* read its stdout through a pipe (else /dev/null) */
	PROC_STDERR = 1 << 2,     /* read its stderr through a pipe (else our stderr) */
	PROC_NEWPGRP = 1 << 3,    /* its own process group; proc_kill kills the group */
	PROC_NONBLOCK = 1 << 4,   /* our ends of the pipes are non-blocking */
};

struct proc {
	pid_t pid;
	int in;    /* write end of the child's stdin, or -1 */
	int out;   /* read end of its stdout, or -1 */
	int err;   /* read end of its stderr, or -1 */
	int flags;
};

/*
 * An environment for children: the variables of ours that are safe to pass
 * (PATH, HOME, locale, TMPDIR, TZ; never GIT_*), then extra ("NAME=value").
 * Free with proc_env_free.
 */
char **proc_env(const char *const *extra);
/* Appends one NAME=VALUE to an environment from proc_env (which it may move). */
char **proc_env_push(char **env, const char *kv);
void proc_env_free(char **env);

/* Starts argv[0] (looked up in PATH). env NULL means proc_env(NULL). */
int proc_start(struct proc *p, const char *const *argv, char *const *env, const char *dir, int flags);
/* Starts a daemon with stdin from /dev/null and stdout and stderr appended to log_path. */
int proc_start_logged(struct proc *p, const char *const *argv, char *const *env, const char *log_path);
/* Closes our end of the child's stdin (EOF for it). */
void proc_close_in(struct proc *p);
/* Sends sig to the child, or to its group with PROC_NEWPGRP. */
void proc_kill(struct proc *p, int sig);
/*
 * Waits for the child and closes our pipe ends. Returns its exit code, or
 * 128 + signal number when a signal ended it, or a negative error.
 */
int proc_wait(struct proc *p);

/*
 * Runs a command to completion, feeding it in (may be NULL) and collecting
 * stdout and stderr into out and err (either may be NULL: discarded), each
 * bounded by its strbuf's maximum: past it, the child is killed and
 * GROVE_ETOOBIG returned. Returns the exit code as proc_wait does.
 */
int proc_run(const char *const *argv, char *const *env, const char *dir,
	     const void *in, size_t in_len, struct strbuf *out, struct strbuf *err);

/*
 * Reads the child's stdout and stderr until both reach EOF, handing each
 * chunk (at most chunk_max bytes, as much as is ready) to on_out or on_err.
 * A callback returning non-zero stops the pump with that value (the caller
 * then kills the child). The pipes must be non-blocking (PROC_NONBLOCK).
 */
typedef int proc_chunk_fn(void *ctx, const char *data, size_t len);
int proc_pump_output(struct proc *p, proc_chunk_fn *on_out, proc_chunk_fn *on_err, void *ctx,
		     size_t chunk_max);

/*
 * The same, but each chunk is read into a buffer of its own, headroom bytes
 * into it, and handed over: on_buf owns buf (to free()) and may write a
 * header in front of the data. For a caller that sends every chunk on in a
 * message, which then needs no copy of its own.
 */
typedef int proc_buf_fn(void *ctx, bool is_err, char *buf, size_t headroom, size_t len);
int proc_pump_output_bufs(struct proc *p, proc_buf_fn *on_buf, void *ctx, size_t chunk_max, size_t headroom);

/* Writes all of buf, retrying on EINTR and short writes (blocking fds). */
int write_all(int fd, const void *buf, size_t len);

#endif
