/*
 * One error convention for all of Grove: functions return 0 on success or a
 * negative GROVE_E* code, and set a per-thread message that says what was
 * wrong and, where it helps, what to do. Callers that add context wrap the
 * message (error_wrap); the RPC layer maps codes to gRPC status codes.
 */
#ifndef GROVE_ERROR_H
#define GROVE_ERROR_H

enum grove_err {
	GROVE_OK = 0,
	GROVE_EINTERNAL = -1,   /* a bug or an unexpected system failure */
	GROVE_EINVAL = -2,      /* the caller's input is malformed */
	GROVE_ENOTFOUND = -3,   /* the thing named does not exist */
	GROVE_EEXISTS = -4,     /* the thing to create exists already */
	GROVE_EIO = -5,         /* a file or pipe failed */
	GROVE_ETOOBIG = -6,     /* a bounded buffer or limit was exceeded */
	GROVE_EAUTH = -7,       /* missing or wrong credentials */
	GROVE_EDENIED = -8,     /* authenticated, but not allowed */
	GROVE_EUNAVAIL = -9,    /* a peer is down or unreachable */
	GROVE_EPRECOND = -10,   /* the state does not allow it (CAS, empty repo) */
	GROVE_ECANCELLED = -11, /* the peer went away */
	GROVE_ETIMEOUT = -12,   /* a deadline passed */
	GROVE_EPROTO = -13,     /* the peer broke the protocol */
};

/* Sets the thread's error message and returns code, for `return error_set(...)`. */
int error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context; returns code. */
int error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The thread's last message ("" when none). */
const char *error_msg(void);
void error_clear(void);
/* A short name for a code, like "not found". */
const char *error_code_name(int code);

/* The current error to syslog (LOG_ERR), prefixed: for a process whose
 * stderr is a user's and that has no log file yet. Kept here, apart from
 * log.h: <syslog.h>'s LOG_INFO and the like are macros that would replace
 * log.h's levels in any file that includes both. */
void error_to_syslog(const char *prefix);

#endif
