/*
 * JSON-lines logging. Each event is one line, one write(2):
 *
 *   {"time":"2026-11-25T14:03:07.123Z","level":"info","role":"store",
 *    "pid":42,"event":"rpc.done","correlation_id":"c0ffee…","method":"…"}
 *
 * The correlation id is per thread: the RPC layer sets it from the caller's
 * metadata (or makes one) so that one push can be followed from the SSH
 * session through the cluster to the stores and the deploy.
 *
 * Fields are given as a format of space-separated key=%conv pairs, where conv
 * is one of s, .*s, d, u, ld, lu, lld, llu, zu, f or b (an int shown as
 * true/false): strings become JSON strings, the rest JSON numbers.
 *   log_info("push.done", "repo=%s bytes=%zu ok=%b", path, n, ok);
 */
#ifndef GROVE_LOG_H
#define GROVE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* role names the process in every line; lines below min_level are dropped. */
void log_init(const char *role, enum log_level min_level, int fd);
int log_level_parse(const char *name, enum log_level *out);
/* The least level written now (a reload may change it). */
enum log_level log_level_now(void);
/* Where the lines go from now on, as role (the level stays). */
void log_set_output(const char *role, int fd);

void log_set_correlation_id(const char *id);
const char *log_correlation_id(void);
/* Fills out (33 bytes) with a fresh random id. */
void log_new_correlation_id(char out[33]);

/*
 * The fields are checked by the compiler like printf's: GCC (12 and later)
 * knows %b as C2x's binary conversion of an unsigned int, which is what a
 * bool is passed as. Clang 14 does not know %b, so only GCC checks (it
 * builds every object but the fuzz targets').
 */
#if defined(__clang__)
#define LOG_FORMAT_CHECK(f, a)
#else
#define LOG_FORMAT_CHECK(f, a) __attribute__((format(printf, f, a)))
#endif

void log_event(enum log_level level, const char *event, const char *fmt, ...) LOG_FORMAT_CHECK(3, 4);

#define log_debug(event, ...) log_event(LOG_DEBUG, event, __VA_ARGS__)
#define log_info(event, ...) log_event(LOG_INFO, event, __VA_ARGS__)
#define log_warn(event, ...) log_event(LOG_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_event(LOG_ERROR, event, __VA_ARGS__)

#endif
