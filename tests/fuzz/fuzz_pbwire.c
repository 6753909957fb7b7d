/*
 * libFuzzer target for the cluster router's reading of requests
 * (lib/pbwire.h): any bytes a client sends as the first message. Whatever
 * pbwire_find accepts, pbwire_replace must accept too and produce a message
 * in which field 1 is exactly the new value; the cutting of a client's stdin
 * message for an older store (lib/sshstream.h): every piece a message of
 * stdin alone, within the bound, the pieces the bytes in order; and the
 * transaction metadata parser a store runs on a router's header
 * (lib/hookpayload.h).
 */
#include "lib/common.h"
#include "lib/hookpayload.h"
#include "lib/pbwire.h"
#include "lib/rpc.h"
#include "lib/sshstream.h"

static void check_split(const uint8_t *data, size_t size)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, size);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1), **parts;
	size_t max = 1 + (size ? data[0] % 64 : 0), n = ssh_request_split(bb, max, &parts), off = 0;
	const uint8_t *whole;
	size_t wlen;

	grpc_slice_unref(s);
	if (n && pbwire_find(data, size, 2, &whole, &wlen) != 1)
		abort();
	for (size_t i = 0; i < n; i++) {
		grpc_slice piece;
		const uint8_t *val;
		size_t vlen, pos = 0;
		struct pbwire_field f;
		if (rpc_bb_slice(parts[i], &piece))
			abort();
		const uint8_t *p = GRPC_SLICE_START_PTR(piece);
		size_t plen = GRPC_SLICE_LENGTH(piece);
		if (pbwire_find(p, plen, 2, &val, &vlen) != 1 || !vlen || vlen > max || off + vlen > wlen ||
		    memcmp(val, whole + off, vlen) || pbwire_next(p, plen, &pos, &f) != 1 || pos != plen)
			abort();
		off += vlen;
		grpc_slice_unref(piece);
		grpc_byte_buffer_destroy(parts[i]);
	}
	if (n && off != wlen)
		abort();
	free(parts);
	grpc_byte_buffer_destroy(bb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *val;
	size_t vlen;
	struct strbuf out = STRBUF_INIT;
	struct txn_info t;
	int found = pbwire_find(data, size, 1, &val, &vlen);

	if (found >= 0) {
		if (pbwire_replace(data, size, 1, (const uint8_t *)"repo", 4, &out))
			abort();
		if (pbwire_find((const uint8_t *)out.buf, out.len, 1, &val, &vlen) != 1 || vlen != 4 ||
		    memcmp(val, "repo", 4))
			abort();
	}
	strbuf_release(&out);
	check_split(data, size);
	if (txn_info_parse((const char *)data, size, &t) == 0) {
		if (!txn_node_name_valid(t.node, strlen(t.node)) || !t.address[0] || strchr(t.address, ';'))
			abort();
	}
	return 0;
}
