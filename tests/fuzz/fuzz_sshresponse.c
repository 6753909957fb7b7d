/*
 * libFuzzer target for ssh_response_parse (lib/sshstream.h): the gate reads
 * every SSHResponse a store or router sends in place instead of unpacking
 * it. Differential: whatever it accepts, protobuf-c must decode to the same
 * stdout, stderr and exit status (the two may differ only in what they
 * refuse: Grove also refuses deprecated groups). ssh_response_head, the
 * gate's fast path for a message of one output field, must agree with both
 * about any input it claims: the same field, bytes and length.
 */
#include "lib/common.h"
#include "lib/sshstream.h"
#include "grove/v1/ssh.pb-c.h"

static bool same(const uint8_t *a, size_t alen, const ProtobufCBinaryData *b)
{
	return alen == b->len && (alen == 0 || !memcmp(a, b->data, alen));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ssh_response_view v;
	bool head_err;
	size_t hdr;
	uint64_t vlen;
	bool head = ssh_response_head(data, size, &head_err, &hdr, &vlen) && hdr <= size && vlen == size - hdr;
	if (ssh_response_parse(data, size, &v)) {
		if (head)
			abort();   /* the fast path took what the parser refuses */
		return 0;
	}
	if (head && (v.has_exit || (head_err ? v.err != data + hdr || v.errlen != vlen || v.outlen
				       : v.out != data + hdr || v.outlen != vlen || v.errlen)))
		abort();
	if (v.outlen && (v.out < data || v.out + v.outlen > data + size))
		abort();
	if (v.errlen && (v.err < data || v.err + v.errlen > data + size))
		abort();
	Grove__V1__SSHResponse *m = grove__v1__sshresponse__unpack(NULL, size, data);
	if (!m)
		abort();
	if (!same(v.out, v.outlen, &m->stdout) || !same(v.err, v.errlen, &m->stderr) ||
	    v.has_exit != (m->exit_status != NULL) || (v.has_exit && v.exit != m->exit_status->value))
		abort();
	grove__v1__sshresponse__free_unpacked(m, NULL);
	return 0;
}
