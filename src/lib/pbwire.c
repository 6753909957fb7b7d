/* Protocol buffers' wire format without a descriptor: see pbwire.h. */
#include "lib/pbwire.h"
#include "lib/error.h"

static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 10; i++) {
		if (*pos >= len)
			return error_set(GROVE_EPROTO, "message ends inside a varint");
		uint8_t b = buf[(*pos)++];
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return error_set(GROVE_EPROTO, "varint longer than 10 bytes");
}

int pbwire_get_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
	return read_varint(buf, len, pos, out);
}

/* Reads one field's key and skips its value: start and end of the whole field, and of a LEN value. */
struct field {
	uint32_t num;
	int type;
	size_t start, end;
	size_t vstart, vlen;
	uint64_t varint;
};

static int next_field(const uint8_t *buf, size_t len, size_t *pos, struct field *f)
{
	uint64_t key, n;
	int ret;

	f->start = *pos;
	if ((ret = read_varint(buf, len, pos, &key)))
		return ret;
	/* A key is a 32-bit varint: protobuf-c, which decodes what this
	 * accepts, refuses one padded beyond 5 bytes. */
	if (*pos - f->start > 5)
		return error_set(GROVE_EPROTO, "field key longer than 5 bytes");
	if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return error_set(GROVE_EPROTO, "field number %llu is out of range", (unsigned long long)(key >> 3));
	f->num = (uint32_t)(key >> 3);
	f->type = (int)(key & 7);
	switch (f->type) {
	case 0:
		if ((ret = read_varint(buf, len, pos, &f->varint)))
			return ret;
		break;
	case 1:
	case 5: {
		size_t w = f->type == 1 ? 8 : 4;
		if (len - *pos < w)
			return error_set(GROVE_EPROTO, "message ends inside a fixed-size field");
		*pos += w;
		break;
	}
	case 2: {
		size_t at = *pos;
		if ((ret = read_varint(buf, len, pos, &n)))
			return ret;
		if (*pos - at > 5)
			return error_set(GROVE_EPROTO, "field %u: length longer than 5 bytes", f->num);
		if (n > len - *pos)
			return error_set(GROVE_EPROTO, "field %u claims %llu bytes, %zu are left", f->num,
					 (unsigned long long)n, len - *pos);
		f->vstart = *pos;
		f->vlen = (size_t)n;
		*pos += (size_t)n;
		break;
	}
	default:
		return error_set(GROVE_EPROTO, "field %u has wire type %d, which Grove does not accept", f->num, f->type);
	}
	f->end = *pos;
	return 0;
}

int pbwire_next(const uint8_t *buf, size_t len, size_t *pos, struct pbwire_field *out)
{
	struct field f = { 0 };
	int ret;

	if (*pos >= len)
		return 0;
	if ((ret = next_field(buf, len, pos, &f)))
		return ret;
	out->num = f.num;
	out->type = f.type;
	out->varint = f.varint;   /* 0 unless a varint */
	out->val = f.type == 2 ? buf + f.vstart : NULL;
	out->vlen = f.type == 2 ? f.vlen : 0;
	return 1;
}

int pbwire_find(const uint8_t *buf, size_t len, uint32_t field, const uint8_t **val, size_t *vlen)
{
	struct field f;
	size_t pos = 0;
	int found = 0, ret;

	*val = NULL;
	*vlen = 0;
	while (pos < len) {
		if ((ret = next_field(buf, len, &pos, &f)))
			return ret;
		if (f.num != field)
			continue;
		if (f.type != 2)
			return error_set(GROVE_EPROTO, "field %u is not length-delimited", field);
		*val = buf + f.vstart;
		*vlen = f.vlen;
		found = 1;
	}
	return found;
}

size_t pbwire_put_varint(uint8_t out[PBWIRE_VARINT_MAX], uint64_t v)
{
	size_t n = 0;
	do {
		out[n] = v & 0x7f;
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static int add_varint(struct strbuf *out, uint64_t v)
{
	uint8_t b[PBWIRE_VARINT_MAX];
	return strbuf_add(out, b, pbwire_put_varint(b, v));
}

int pbwire_replace(const uint8_t *buf, size_t len, uint32_t field, const uint8_t *val, size_t vlen,
		   struct strbuf *out)
{
	struct field f;
	size_t pos = 0;
	int ret = 0;

	while (pos < len) {
		if ((ret = next_field(buf, len, &pos, &f)))
			return ret;
		if (f.num != field && (ret = strbuf_add(out, buf + f.start, f.end - f.start)))
			return ret;
	}
	if (!ret)
		ret = add_varint(out, ((uint64_t)field << 3) | 2);
	if (!ret)
		ret = add_varint(out, vlen);
	if (!ret)
		ret = strbuf_add(out, val, vlen);
	return ret;
}
