/*
 * libFuzzer target for src/lib/hookpayload.c. The input is decoded as it
 * comes (mostly refused as base64), and also base64-encoded first so that
 * the protobuf decoding behind it is reached. A payload that decodes must
 * encode again, and that encoding must decode and re-encode to itself.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/hookpayload.h"

#include <openssl/evp.h>

static bool has_field_zero(const ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	return false;
}

static void check_decoded(Grove__V1__HookPayload *p)
{
	Grove__V1__HookPayload *again = NULL;
	char *enc = hook_payload_encode(p);
	if (!enc) {
		/* Only a payload too large for the environment may be refused. */
		size_t packed = protobuf_c_message_get_packed_size(&p->base);
		if (4 * ((packed + 2) / 3) <= HOOK_PAYLOAD_MAX)
			abort();
		return;
	}
	if (hook_payload_decode(enc, strlen(enc), &again))
		abort();
	char *enc2 = hook_payload_encode(again);
	if (!enc2 || strcmp(enc, enc2))
		abort();
	if (strcmp(again->app, p->app) || strcmp(again->node, p->node) ||
	    again->transaction_id != p->transaction_id || !again->secondary != !p->secondary ||
	    !again->repository != !p->repository)
		abort();
	if (p->repository && (strcmp(again->repository->storage_name, p->repository->storage_name) ||
			      strcmp(again->repository->relative_path, p->repository->relative_path)))
		abort();
	free(enc2);
	free(enc);
	protobuf_c_message_free_unpacked(&again->base, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grove__V1__HookPayload *p = NULL;
	int ret;

	/* As given: most inputs are not base64. */
	ret = hook_payload_decode((const char *)data, size, &p);
	if (ret == 0) {
		if (!p)
			abort();
		check_decoded(p);
		protobuf_c_message_free_unpacked(&p->base, NULL);
	} else if (p || (ret != GROVE_EINVAL && ret != GROVE_ETOOBIG)) {
		abort();
	}

	/* As the packed message: decode must agree with protobuf-c itself. */
	if (size <= HOOK_PAYLOAD_MAX / 4 * 3) {
		char *b64 = xmalloc(4 * ((size + 2) / 3) + 1);
		int n = EVP_EncodeBlock((unsigned char *)b64, data, (int)size);
		Grove__V1__HookPayload *direct = grove__v1__hook_payload__unpack(NULL, size, data);
		p = NULL;
		ret = hook_payload_decode(b64, (size_t)n, &p);
		/* Except that hook_payload_decode also refuses field number 0,
		 * which protobuf-c keeps when its tag is padded. */
		bool want = direct && !has_field_zero(&direct->base) &&
			    !(direct->repository && has_field_zero(&direct->repository->base));
		if ((ret == 0) != want)
			abort();
		if (ret == 0) {
			check_decoded(p);
			protobuf_c_message_free_unpacked(&p->base, NULL);
		}
		if (direct)
			protobuf_c_message_free_unpacked(&direct->base, NULL);
		free(b64);
	}
	return 0;
}
