/*
 * libFuzzer target for what a smart HTTP client sends the gate before git
 * sees anything (lib/httphead.h): a request head, a chunked body's framing
 * and Basic credentials. A head's end is within the input; a parsed head
 * has a method, a target starting with '/' and a length that is not
 * negative unless absent; the chunked decoder always moves on and never
 * gives more body bytes than it was given.
 */
#include "lib/common.h"
#include "lib/httphead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct http_head h;
	struct http_chunked c = { 0 };
	char user[64], pass[128], *z;
	size_t end = http_head_end(s, size), pos = 0, body = 0;
	int status;

	if (end > size)
		abort();
	if (end && end <= HTTP_HEAD_MAX && !http_head_parse(&h, s, end, &status)) {
		if (!h.method[0] || h.target[0] != '/' || h.content_length < -1 || (h.chunked && h.content_length >= 0))
			abort();
	}
	while (pos < size && !c.done) {
		const char *d;
		size_t dl;
		ssize_t r = http_chunked_take(&c, s + pos, MIN(size - pos, (size_t)7), &d, &dl);
		if (r < 0)
			break;
		if (r == 0 || (size_t)r > size - pos || dl > (size_t)r || (dl && d != s + pos))
			abort();
		body += dl;
		pos += (size_t)r;
	}
	if (body > size)
		abort();
	z = xstrndup(s, MIN(size, (size_t)2048));
	if (!http_basic_credentials(z, user, sizeof(user), pass, sizeof(pass)) && (strlen(user) >= sizeof(user)))
		abort();
	free(z);
	return 0;
}
