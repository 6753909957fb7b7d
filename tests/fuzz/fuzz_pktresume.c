/*
 * libFuzzer target for src/lib/pktresume.c, which parses a store's output
 * (network input to the router). The input holds a mode byte, the length
 * of `seen` (two bytes), seen, then the second run's output, fed in pieces
 * of the size the mode byte picks. What goes to the client is never more
 * than the second run sent, and a second run that sends exactly what the
 * client saw gives it nothing more.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pktresume.h"

static void resume(const char *seen, size_t seen_len, const char *second, size_t len, bool advertised,
		   size_t step)
{
	struct pkt_resume r;
	struct strbuf out = STRBUF_INIT;
	int ret = pkt_resume_init(&r, seen, seen_len, advertised);

	if (ret && ret != GROVE_EPRECOND)
		abort();
	for (size_t o = 0; !ret && o < len; o += step)
		ret = pkt_resume_feed(&r, second + o, MIN(step, len - o), &out);
	if (!ret)
		ret = pkt_resume_end(&r, &out);
	if (ret && ret != GROVE_EPRECOND)
		abort();
	if (out.len > len)
		abort();
	pkt_resume_release(&r);
	strbuf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	bool advertised = data[0] & 1;
	size_t step = (size_t)(data[0] >> 1) + 1;
	size_t seen_len = MIN((size_t)(data[1] << 8 | data[2]), size - 3);
	const char *seen = (const char *)data + 3, *second = seen + seen_len;
	size_t len = size - 3 - seen_len;

	resume(seen, seen_len, second, len, advertised, step);
	/* The same run again: nothing new for the client. */
	struct pkt_resume r;
	struct strbuf out = STRBUF_INIT;
	if (!pkt_resume_init(&r, seen, seen_len, advertised)) {
		if (pkt_resume_feed(&r, seen, seen_len, &out) || pkt_resume_end(&r, &out) || out.len)
			abort();
	}
	pkt_resume_release(&r);
	strbuf_release(&out);
	return 0;
}
