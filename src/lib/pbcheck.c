/* NUL bytes in protobuf string fields: see pbcheck.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pbcheck.h"

#define PBCHECK_MAX_DEPTH 32

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth)
{
	if (depth > PBCHECK_MAX_DEPTH)
		return error_set(GROVE_EPROTO, "message nested deeper than %d levels", PBCHECK_MAX_DEPTH);
	while (p < end) {
		uint64_t key, n;
		if (varint(&p, end, &key))
			return error_set(GROVE_EPROTO, "malformed field key in %s", d->name);
		unsigned wire = key & 7;
		uint64_t tag = key >> 3;
		switch (wire) {
		case 0:
			if (varint(&p, end, &n))
				return error_set(GROVE_EPROTO, "malformed varint in %s", d->name);
			break;
		case 1:
			if (end - p < 8)
				return error_set(GROVE_EPROTO, "truncated 64-bit field in %s", d->name);
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return error_set(GROVE_EPROTO, "truncated 32-bit field in %s", d->name);
			p += 4;
			break;
		case 2: {
			if (varint(&p, end, &n) || n > (uint64_t)(end - p))
				return error_set(GROVE_EPROTO, "truncated length-delimited field in %s", d->name);
			const ProtobufCFieldDescriptor *f =
				tag <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)tag) : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)n))
				return error_set(GROVE_EPROTO, "field %s.%s contains a NUL byte", d->name, f->name);
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int ret = walk(f->descriptor, p, p + n, depth + 1);
				if (ret)
					return ret;
			}
			p += n;
			break;
		}
		default:
			/* Groups (3, 4) are gone from proto3; anything else is garbage. */
			return error_set(GROVE_EPROTO, "unsupported wire type %u in %s", wire, d->name);
		}
	}
	return 0;
}

int pbcheck_strings(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len)
{
	return walk(d, data, data + len, 0);
}
