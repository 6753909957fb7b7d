/*
 * A growable byte buffer with a hard maximum, in the spirit of git's strbuf
 * and curl's dynbuf. Every buffer that holds network input is created with a
 * maximum; growing past it fails with GROVE_ETOOBIG instead of eating memory.
 * buf is always NUL-terminated, so text can be used as a C string.
 *
 * The strbuf owns buf; strbuf_detach hands it to the caller.
 */
#ifndef GROVE_STRBUF_H
#define GROVE_STRBUF_H

#include "lib/common.h"

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
	size_t max;   /* most bytes len may reach; 0 means SIZE_MAX/2 */
};

#define STRBUF_INIT { NULL, 0, 0, 0 }

void strbuf_init(struct strbuf *sb, size_t max);
void strbuf_release(struct strbuf *sb);
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_reset(struct strbuf *sb);

/* Each returns 0, or GROVE_ETOOBIG leaving the buffer as it was. */
int strbuf_grow(struct strbuf *sb, size_t extra);
int strbuf_add(struct strbuf *sb, const void *data, size_t len);
int strbuf_addstr(struct strbuf *sb, const char *s);
int strbuf_addch(struct strbuf *sb, int c);
int strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);

/* Drops the first n bytes. */
void strbuf_consume(struct strbuf *sb, size_t n);
/* Removes trailing whitespace. */
void strbuf_rtrim(struct strbuf *sb);
/* Appends s as a JSON string literal, quotes included. */
int strbuf_add_json_str(struct strbuf *sb, const char *s, size_t len);

#endif
