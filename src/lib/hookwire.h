/*
 * How git's hooks reach the store that runs the push, without gRPC: the
 * hook binary (src/hook/light.c, `grove-hook`) starts in about a
 * millisecond because it links nothing but libc, where `grove hook`,
 * loading gRPC and ninety-odd libraries, takes ~17 ms of CPU; a push on
 * the cluster route runs one on every replica.
 *
 * Over the store's own unix socket (hookw.PID in its runtime directory,
 * GROVE_HOOK_SOCKET), one connection per hook run. Both ways, frames:
 *
 *     type (1 byte)  length (4 bytes, big-endian)  data (length bytes)
 *
 * The hook sends N (the hook's name), A (its argument, if any), V
 * ("NAME=VALUE": the variables of git's environment the store needs, see
 * hookwire_vars), then I (git's input, once), and closes its writing side.
 * The store answers O (for the hook's stdout) and E (stderr) as they come,
 * then X (the exit status, in decimal), and closes.
 *
 * No C library of Grove's but this file goes into the hook binary, so it
 * uses libc only.
 */
#ifndef GROVE_HOOKWIRE_H
#define GROVE_HOOKWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOOKWIRE_HEAD 5
#define HOOKWIRE_IN_MAX (16u << 20)        /* git's input: the ref update lines */
#define HOOKWIRE_VARS_MAX 80               /* V frames */
#define HOOKWIRE_VAR_MAX (128u << 10)      /* one "NAME=VALUE" (the payload is the largest) */
#define HOOKWIRE_REQUEST_MAX (HOOKWIRE_IN_MAX + HOOKWIRE_VARS_MAX * (HOOKWIRE_VAR_MAX + HOOKWIRE_HEAD) + 4096)
#define HOOKWIRE_ANSWER_MAX (1u << 20)     /* the hook's buffer for the store's answer: a frame with its head */

/* A request as the store parsed it: pointers into the caller's buffer. */
struct hookwire_req {
	const char *name;
	size_t name_len;
	const char *arg;          /* NULL: none */
	size_t arg_len;
	const char *vars[HOOKWIRE_VARS_MAX];
	size_t var_lens[HOOKWIRE_VARS_MAX];
	size_t nvars;
	const char *in;           /* NULL: no I frame */
	size_t in_len;
};

/*
 * Parses a whole request (len bytes at buf). 0, or -1 with *why: a
 * truncated frame, an unknown type, a frame out of order or repeated, a
 * limit passed, or no N frame.
 */
int hookwire_parse(const uint8_t *buf, size_t len, struct hookwire_req *req, const char **why);

/* The value of variable name in req (not NUL-terminated: *len), or NULL. */
const char *hookwire_var(const struct hookwire_req *req, const char *name, size_t *len);

/* One frame's head for data of len bytes. */
void hookwire_head(uint8_t head[HOOKWIRE_HEAD], char type, uint32_t len);
/* Writes all of data to fd (through EINTR and short writes): 0, or -1. */
int hookwire_write_all(int fd, const void *data, size_t len);
/* One frame to fd: 0, or -1. */
int hookwire_send(int fd, char type, const void *data, size_t len);

/*
 * The next frame of an answer in buf[0..len): 1 with its type, data and
 * size (*used: the bytes it took), 0 when buf holds less than a frame,
 * -1 when a frame is longer than max.
 */
int hookwire_next(const uint8_t *buf, size_t len, size_t max, char *type, const uint8_t **data, uint32_t *dlen,
		  size_t *used);

/*
 * The variables by which git points a pre-receive hook at the objects of
 * a push still in quarantine: the store's hook passes them on, so that
 * what it runs sees the objects. One list for every way a hook travels.
 */
#define HOOKWIRE_QUARANTINE_VARS 3
extern const char *const hookwire_quarantine_vars[HOOKWIRE_QUARANTINE_VARS];

/* Whether a variable of git's environment goes to the store (hookwire_vars). */
bool hookwire_var_wanted(const char *name_eq_value);

#endif
