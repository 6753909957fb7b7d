/* What the test tools share (each is one program, built on its own). */
#ifndef GROVE_TESTS_TOOL_H
#define GROVE_TESTS_TOOL_H

#include <errno.h>
#include <unistd.h>

/* Writes all n bytes at p to fd; -1 when it cannot. */
static inline int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

#endif
