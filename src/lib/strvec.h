/* A NULL-terminated, growable array of owned strings, for argv and envp. */
#ifndef GROVE_STRVEC_H
#define GROVE_STRVEC_H

#include "lib/common.h"

struct strvec {
	char **v;      /* always NULL-terminated once anything is pushed */
	size_t n;
	size_t alloc;
};

#define STRVEC_INIT { NULL, 0, 0 }

void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strvec_clear(struct strvec *sv);
/* For APIs that want const char *const *. */
static inline const char *const *strvec_argv(const struct strvec *sv)
{
	return (const char *const *)sv->v;
}

#endif
