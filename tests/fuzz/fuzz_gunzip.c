/*
 * libFuzzer target for a smart HTTP request body's gzip stream
 * (lib/gunzip.h), the one decoder of network input the HTTP door keeps
 * (libmicrohttpd parses the rest). Fed in pieces of varying size: it never
 * makes more than its bound (plus the last output piece), always moves on,
 * and stops at its first error.
 */
#include "lib/common.h"
#include "lib/gunzip.h"

#define FUZZ_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gunzip g;
	char out[64];
	size_t step = size ? (size_t)data[0] % 13 + 1 : 1;
	const char *p = (const char *)data;
	size_t left = size;

	if (gunzip_init(&g, FUZZ_MAX))
		abort();
	while (left) {
		size_t piece = MIN(step, left), l = piece;
		const char *q = p;
		ssize_t n = gunzip_take(&g, &q, &l, out, sizeof(out));
		if (n < 0)
			break;
		if ((size_t)n > sizeof(out) || l > piece || (!n && l == piece) || g.total > FUZZ_MAX + sizeof(out))
			abort();
		left -= piece - l;
		p = q;
	}
	gunzip_release(&g);
	return 0;
}
