/* A bounded gzip inflater: see gunzip.h. */
#include "lib/gunzip.h"
#include "lib/error.h"

int gunzip_init(struct gunzip *g, uint64_t max)
{
	memset(g, 0, sizeof(*g));
	g->max = max;
	/* 16 + MAX_WBITS: a gzip header and trailer, not raw deflate. */
	if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK)
		return error_set(GROVE_EINTERNAL, "cannot start zlib");
	g->init = true;
	return 0;
}

void gunzip_release(struct gunzip *g)
{
	if (g->init)
		inflateEnd(&g->z);
	g->init = false;
}

ssize_t gunzip_take(struct gunzip *g, const char **in, size_t *in_len, char *out, size_t size)
{
	if (!g->init)
		return error_set(GROVE_EINTERNAL, "gunzip_take before gunzip_init");
	if (g->end)
		return *in_len ? error_set(GROVE_EPROTO, "the request's body goes on after its gzip stream") : 0;
	if (!*in_len || !size)
		return 0;
	g->z.next_in = (Bytef *)*in;
	g->z.avail_in = (uInt)MIN(*in_len, (size_t)UINT32_MAX);
	g->z.next_out = (Bytef *)out;
	g->z.avail_out = (uInt)MIN(size, (size_t)UINT32_MAX);
	int zr = inflate(&g->z, Z_NO_FLUSH);
	size_t took = (size_t)((const char *)g->z.next_in - *in);
	size_t made = MIN(size, (size_t)UINT32_MAX) - g->z.avail_out;
	*in += took;
	*in_len -= took;
	if (zr == Z_STREAM_END)
		g->end = true;
	else if ((zr != Z_OK && zr != Z_BUF_ERROR) || (!took && !made))
		return error_set(GROVE_EPROTO, "the request's gzip stream is malformed");
	/* Counted as made: the bound holds whatever the ratio. */
	if ((g->total += made) > g->max)
		return error_set(GROVE_ETOOBIG, "the request's body is over %llu bytes once inflated",
				 (unsigned long long)g->max);
	if (g->end && *in_len)
		return error_set(GROVE_EPROTO, "the request's body goes on after its gzip stream");
	return (ssize_t)made;
}
