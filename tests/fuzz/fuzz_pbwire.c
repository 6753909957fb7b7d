/*
 * libFuzzer target for the cluster router's reading of requests
 * (lib/pbwire.h): any bytes a client sends as the first message. Whatever
 * pbwire_find accepts, pbwire_replace must accept too and produce a message
 * in which field 1 is exactly the new value; and the transaction metadata
 * parser a store runs on a router's header (lib/hookpayload.h).
 */
#include "lib/common.h"
#include "lib/hookpayload.h"
#include "lib/pbwire.h"

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
	if (txn_info_parse((const char *)data, size, &t) == 0) {
		if (!txn_node_name_valid(t.node, strlen(t.node)) || !t.address[0] || strchr(t.address, ';'))
			abort();
	}
	return 0;
}
