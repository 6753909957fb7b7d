/*
 * libFuzzer target for push_head_feed (lib/pktline.h): the gate feeds it
 * what a pushing client sends, in whatever pieces the network delivers.
 * Differential: the answer (done, failed, hdr_len) is the same whether the
 * bytes come at once, in two pieces split where the input says, or one by
 * one; and a pack start found lies within what was fed.
 */
#include "lib/common.h"
#include "lib/pktline.h"

static char b1[PKT_MAX], b2[PKT_MAX], b3[PKT_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct push_head whole, halves, bytes;
	size_t cut = size ? data[0] % (size + 1) : 0;

	push_head_init(&whole, b1);
	push_head_init(&halves, b2);
	push_head_init(&bytes, b3);
	push_head_feed(&whole, data, size);
	push_head_feed(&halves, data, cut);
	push_head_feed(&halves, data + cut, size - cut);
	for (size_t i = 0; i < size; i++)
		push_head_feed(&bytes, data + i, 1);
	if (whole.done != halves.done || whole.done != bytes.done || whole.failed != halves.failed ||
	    whole.failed != bytes.failed)
		abort();
	if (whole.done && (whole.hdr_len != halves.hdr_len || whole.hdr_len != bytes.hdr_len || whole.hdr_len > size))
		abort();
	return 0;
}
