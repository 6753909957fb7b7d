/*
 * Unit tests for the descriptor-free protobuf reader the cluster router uses
 * on every request (lib/pbwire.h), the gate's in-place reading of a store's
 * SSHResponse (lib/sshstream.h), its cutting of a client's large stdin
 * messages for an older store, and the transaction metadata a router hands
 * a store (lib/hookpayload.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/error.h"
#include "lib/hookpayload.h"
#include "lib/pbwire.h"
#include "lib/rpc.h"
#include "lib/sshstream.h"
#include "grove/v1/repository.pb-c.h"
#include "grove/v1/ssh.pb-c.h"

static uint8_t *pack_ssh(const char *storage, const char *path, const char *stdin_data, size_t *len)
{
	Grove__V1__SSHRequest req = GROVE__V1__SSHREQUEST__INIT;
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	uint8_t *buf;
	repo.storage_name = (char *)storage;
	repo.relative_path = (char *)path;
	req.repository = &repo;
	req.stdin.data = (uint8_t *)stdin_data;
	req.stdin.len = strlen(stdin_data);
	req.git_protocol = "version=2";
	*len = grove__v1__sshrequest__get_packed_size(&req);
	buf = xmalloc(*len);
	grove__v1__sshrequest__pack(&req, buf);
	return buf;
}

static void test_find_repository(void **state)
{
	size_t len, vlen;
	const uint8_t *val;
	uint8_t *buf = pack_ssh("default", "app.git", "0000", &len);
	Grove__V1__Repository *r;

	assert_int_equal(pbwire_find(buf, len, 1, &val, &vlen), 1);
	r = grove__v1__repository__unpack(NULL, vlen, val);
	assert_non_null(r);
	assert_string_equal(r->storage_name, "default");
	assert_string_equal(r->relative_path, "app.git");
	grove__v1__repository__free_unpacked(r, NULL);
	/* Absent field: 0. */
	assert_int_equal(pbwire_find(buf, len, 9, &val, &vlen), 0);
	/* A varint field asked for as bytes is an error, not a misread. */
	free(buf);
}

static void test_replace_keeps_the_rest(void **state)
{
	size_t len;
	uint8_t *buf = pack_ssh("default", "app.git", "0032want", &len);
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	struct strbuf out = STRBUF_INIT;
	uint8_t packed[128];
	size_t plen;
	Grove__V1__SSHRequest *req;

	repo.storage_name = "s2";
	repo.relative_path = "app.git";
	plen = grove__v1__repository__pack(&repo, packed);
	assert_int_equal(pbwire_replace(buf, len, 1, packed, plen, &out), 0);
	req = grove__v1__sshrequest__unpack(NULL, out.len, (uint8_t *)out.buf);
	assert_non_null(req);
	assert_string_equal(req->repository->storage_name, "s2");
	assert_string_equal(req->repository->relative_path, "app.git");
	assert_int_equal(req->stdin.len, 8);
	assert_memory_equal(req->stdin.data, "0032want", 8);
	assert_string_equal(req->git_protocol, "version=2");
	grove__v1__sshrequest__free_unpacked(req, NULL);
	strbuf_release(&out);
	free(buf);
}

static void test_last_occurrence_wins(void **state)
{
	/* field 1 twice: protobuf merges; for routing the last one counts, and
	 * replace drops both. */
	const uint8_t msg[] = { 0x0a, 0x01, 'a', 0x10, 0x05, 0x0a, 0x01, 'b' };
	const uint8_t *val;
	size_t vlen;
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(pbwire_find(msg, sizeof(msg), 1, &val, &vlen), 1);
	assert_int_equal(vlen, 1);
	assert_int_equal(val[0], 'b');
	assert_int_equal(pbwire_replace(msg, sizeof(msg), 1, (const uint8_t *)"zz", 2, &out), 0);
	const uint8_t expect[] = { 0x10, 0x05, 0x0a, 0x02, 'z', 'z' };
	assert_int_equal(out.len, sizeof(expect));
	assert_memory_equal(out.buf, expect, sizeof(expect));
	strbuf_release(&out);
}

static void test_malformed(void **state)
{
	const uint8_t *val;
	size_t vlen;
	struct strbuf out = STRBUF_INIT;
	/* Length past the end. */
	const uint8_t past[] = { 0x0a, 0x10, 'a' };
	assert_int_equal(pbwire_find(past, sizeof(past), 1, &val, &vlen), GROVE_EPROTO);
	/* Truncated varint. */
	const uint8_t trunc[] = { 0x08, 0x80 };
	assert_int_equal(pbwire_find(trunc, sizeof(trunc), 1, &val, &vlen), GROVE_EPROTO);
	/* Eleven-byte varint. */
	const uint8_t longv[] = { 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	assert_int_equal(pbwire_find(longv, sizeof(longv), 1, &val, &vlen), GROVE_EPROTO);
	/* Field number 0. */
	const uint8_t zero[] = { 0x02, 0x00 };
	assert_int_equal(pbwire_find(zero, sizeof(zero), 1, &val, &vlen), GROVE_EPROTO);
	/* A group (wire type 3). */
	const uint8_t group[] = { 0x0b, 0x0c };
	assert_int_equal(pbwire_find(group, sizeof(group), 1, &val, &vlen), GROVE_EPROTO);
	/* Truncated fixed64. */
	const uint8_t fixed[] = { 0x09, 1, 2, 3 };
	assert_int_equal(pbwire_find(fixed, sizeof(fixed), 1, &val, &vlen), GROVE_EPROTO);
	/* Field 1 not length-delimited. */
	const uint8_t notlen[] = { 0x08, 0x01 };
	assert_int_equal(pbwire_find(notlen, sizeof(notlen), 1, &val, &vlen), GROVE_EPROTO);
	assert_int_equal(pbwire_replace(past, sizeof(past), 1, (const uint8_t *)"x", 1, &out), GROVE_EPROTO);
	/* An empty message has no field 1, and is well-formed. */
	assert_int_equal(pbwire_find(past, 0, 1, &val, &vlen), 0);
	strbuf_release(&out);
}

static void test_padded_key_and_length(void **state)
{
	const uint8_t *val;
	size_t vlen;
	/* Field 1, LEN 1, with the key padded to 6 bytes: refused, as
	 * protobuf-c refuses it (the fuzz target found the difference). */
	const uint8_t key6[] = { 0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01, 'a' };
	assert_int_equal(pbwire_find(key6, sizeof(key6), 1, &val, &vlen), GROVE_EPROTO);
	/* Padded to 5 bytes: a 32-bit varint, accepted. */
	const uint8_t key5[] = { 0x8a, 0x80, 0x80, 0x80, 0x00, 0x01, 'a' };
	assert_int_equal(pbwire_find(key5, sizeof(key5), 1, &val, &vlen), 1);
	assert_int_equal(vlen, 1);
	/* A length padded to 6 bytes. */
	const uint8_t len6[] = { 0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 'a' };
	assert_int_equal(pbwire_find(len6, sizeof(len6), 1, &val, &vlen), GROVE_EPROTO);
}

static void test_next_walks_fields(void **state)
{
	const uint8_t msg[] = { 0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i', 0x1d, 1, 2, 3, 4 };
	struct pbwire_field f;
	size_t pos = 0;
	assert_int_equal(pbwire_next(msg, sizeof(msg), &pos, &f), 1);
	assert_int_equal(f.num, 1);
	assert_int_equal(f.type, 0);
	assert_int_equal(f.varint, 150);
	assert_int_equal(pbwire_next(msg, sizeof(msg), &pos, &f), 1);
	assert_int_equal(f.num, 2);
	assert_int_equal(f.type, 2);
	assert_int_equal(f.vlen, 2);
	assert_memory_equal(f.val, "hi", 2);
	assert_int_equal(pbwire_next(msg, sizeof(msg), &pos, &f), 1);
	assert_int_equal(f.num, 3);
	assert_int_equal(f.type, 5);
	assert_int_equal(pbwire_next(msg, sizeof(msg), &pos, &f), 0);
	assert_int_equal(pos, sizeof(msg));
}

static uint8_t *pack_response(const char *out, const char *err, bool has_exit, int exit_code, size_t *len)
{
	Grove__V1__SSHResponse r = GROVE__V1__SSHRESPONSE__INIT;
	Grove__V1__ExitStatus st = GROVE__V1__EXIT_STATUS__INIT;
	uint8_t *buf;
	r.stdout.data = (uint8_t *)out;
	r.stdout.len = out ? strlen(out) : 0;
	r.stderr.data = (uint8_t *)err;
	r.stderr.len = err ? strlen(err) : 0;
	if (has_exit) {
		st.value = exit_code;
		r.exit_status = &st;
	}
	*len = grove__v1__sshresponse__get_packed_size(&r);
	buf = xmalloc(*len ? *len : 1);
	grove__v1__sshresponse__pack(&r, buf);
	return buf;
}

static void test_ssh_response(void **state)
{
	struct ssh_response_view v;
	size_t len;
	uint8_t *buf = pack_response("0008NAK\n", "remote: counting\n", false, 0, &len);
	assert_int_equal(ssh_response_parse(buf, len, &v), 0);
	assert_int_equal(v.outlen, 8);
	assert_memory_equal(v.out, "0008NAK\n", 8);
	assert_int_equal(v.errlen, 17);
	assert_memory_equal(v.err, "remote: counting\n", 17);
	assert_false(v.has_exit);
	/* The bytes are read in place, not copied. */
	assert_true(v.out > buf && v.out < buf + len);
	free(buf);

	buf = pack_response(NULL, NULL, true, 0, &len);
	assert_int_equal(ssh_response_parse(buf, len, &v), 0);
	assert_true(v.has_exit);
	assert_int_equal(v.exit, 0);
	assert_int_equal(v.outlen + v.errlen, 0);
	free(buf);
	buf = pack_response(NULL, NULL, true, -1, &len);
	assert_int_equal(ssh_response_parse(buf, len, &v), 0);
	assert_int_equal(v.exit, -1);
	free(buf);

	/* A field a later store may add is skipped. */
	const uint8_t unknown[] = { 0x22, 0x01, 'x', 0x0a, 0x01, 'y' };
	assert_int_equal(ssh_response_parse(unknown, sizeof(unknown), &v), 0);
	assert_int_equal(v.outlen, 1);
	assert_int_equal(v.out[0], 'y');
	/* stdout as a varint, a cut length, an exit status that is not a message. */
	const uint8_t bad1[] = { 0x08, 0x01 };
	const uint8_t bad2[] = { 0x0a, 0x05, 'a' };
	const uint8_t bad3[] = { 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x01, 0x08 };
	assert_int_equal(ssh_response_parse(bad1, sizeof(bad1), &v), GROVE_EPROTO);
	assert_int_equal(ssh_response_parse(bad2, sizeof(bad2), &v), GROVE_EPROTO);
	assert_int_equal(ssh_response_parse(bad3, sizeof(bad3), &v), GROVE_EPROTO);
	/* The last exit_status wins whole, as protobuf-c decodes it. */
	const uint8_t two[] = { 0x1a, 0x02, 0x08, 0x05, 0x1a, 0x00 };
	assert_int_equal(ssh_response_parse(two, sizeof(two), &v), 0);
	assert_true(v.has_exit);
	assert_int_equal(v.exit, 0);
}

static void test_ssh_response_header(void **state)
{
	/* A header followed by the bytes is the message protobuf-c would pack. */
	static const size_t lens[] = { 0, 1, 127, 128, 16383, 16384, 512 * 1024 };
	uint8_t *msg = xmalloc(SSH_RESPONSE_HEADER_MAX + 512 * 1024);
	struct ssh_response_view v;
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		for (int err = 0; err < 2; err++) {
			size_t n = ssh_response_header(msg, err, lens[i]);
			memset(msg + n, 'x', lens[i]);
			assert_int_equal(ssh_response_parse(msg, n + lens[i], &v), 0);
			assert_int_equal(err ? v.errlen : v.outlen, lens[i]);
			assert_int_equal(err ? v.outlen : v.errlen, 0);
			/* The gate's fast path reads the same header, even from a
			 * first slice that holds only the header. */
			bool head_err = !err;
			size_t hdr = 0;
			uint64_t vlen = 0;
			assert_int_equal(ssh_response_head(msg, n, &head_err, &hdr, &vlen), 1);
			assert_int_equal(head_err, err);
			assert_int_equal(hdr, n);
			assert_int_equal(vlen, lens[i]);
			/* A header cut inside its length is not taken. */
			assert_int_equal(ssh_response_head(msg, n - 1, &head_err, &hdr, &vlen), 0);
			Grove__V1__SSHResponse r = GROVE__V1__SSHRESPONSE__INIT;
			ProtobufCBinaryData *field = err ? &r.stderr : &r.stdout;
			field->data = msg + n;
			field->len = lens[i];
			if (lens[i]) {
				assert_int_equal(grove__v1__sshresponse__get_packed_size(&r), n + lens[i]);
				uint8_t *packed = xmalloc(n + lens[i]);
				grove__v1__sshresponse__pack(&r, packed);
				assert_memory_equal(packed, msg, n + lens[i]);
				free(packed);
			}
		}
	}
	free(msg);
	/* Not an output field: an exit status, an unknown field, nothing. */
	static const uint8_t exit_first[] = { 0x1a, 0x02, 0x08, 0x00 };
	static const uint8_t unknown[] = { 0x22, 0x01, 'x' };
	bool e;
	size_t h;
	uint64_t l;
	assert_int_equal(ssh_response_head(exit_first, sizeof(exit_first), &e, &h, &l), 0);
	assert_int_equal(ssh_response_head(unknown, sizeof(unknown), &e, &h, &l), 0);
	assert_int_equal(ssh_response_head(unknown, 0, &e, &h, &l), 0);
}

/* An SSHRequest of stdin alone, of len bytes (a pattern), packed by protobuf-c. */
static grpc_byte_buffer *stdin_request(size_t len, uint8_t **data)
{
	Grove__V1__SSHRequest req = GROVE__V1__SSHREQUEST__INIT;
	*data = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		(*data)[i] = (uint8_t)(i * 7 + i / 251);
	req.stdin.data = *data;
	req.stdin.len = len;
	return rpc_pack(&req.base);
}

/* A router cuts a large stdin message for a store of an earlier release:
 * each piece is a well-formed SSHRequest of stdin alone, at most max, and
 * together they are the bytes in order. */
static void test_ssh_request_split(void **state)
{
	uint8_t *data;
	size_t len = 300 * 1024 + 5, max = 128 * 1024, off = 0;
	grpc_byte_buffer *bb = stdin_request(len, &data), **parts;
	size_t n = ssh_request_split(bb, max, &parts);
	(void)state;

	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		Grove__V1__SSHRequest *req = NULL;
		assert_int_equal(rpc_unpack(parts[i], &grove__v1__sshrequest__descriptor, (ProtobufCMessage **)&req), 0);
		assert_null(req->repository);
		assert_true(req->stdin.len <= max && req->stdin.len > 0);
		assert_memory_equal(req->stdin.data, data + off, req->stdin.len);
		off += req->stdin.len;
		FREE_MSG(req);
		grpc_byte_buffer_destroy(parts[i]);
	}
	assert_int_equal(off, len);
	free(parts);
	/* Small enough as it is: nothing to cut. */
	assert_int_equal(ssh_request_split(bb, len, &parts), 0);
	assert_null(parts);
	assert_int_equal(ssh_request_split(bb, 0, &parts), 0);
	grpc_byte_buffer_destroy(bb);
	free(data);
	/* At the bound: as it is; one byte over: two pieces. */
	bb = stdin_request(max, &data);
	assert_int_equal(ssh_request_split(bb, max, &parts), 0);
	grpc_byte_buffer_destroy(bb);
	free(data);
	bb = stdin_request(max + 1, &data);
	n = ssh_request_split(bb, max, &parts);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		grpc_byte_buffer_destroy(parts[i]);
	free(parts);
	grpc_byte_buffer_destroy(bb);
	free(data);
}

/* Only a message of stdin alone is cut: one with the repository, or with a
 * field after stdin, or malformed, goes as it is (the store then says what
 * it refuses). A message in several slices is read whole. */
static void test_ssh_request_split_leaves(void **state)
{
	size_t len;
	char big[4096];
	grpc_byte_buffer **parts;
	(void)state;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	uint8_t *buf = pack_ssh("s1", "a.git", big, &len);
	grpc_byte_buffer *bb = rpc_bb_from(buf, len);
	assert_int_equal(ssh_request_split(bb, 1024, &parts), 0);
	grpc_byte_buffer_destroy(bb);
	/* Truncated: pbwire refuses it. */
	bb = rpc_bb_from(buf, len - 1);
	assert_int_equal(ssh_request_split(bb, 1024, &parts), 0);
	grpc_byte_buffer_destroy(bb);
	free(buf);

	/* stdin, then git_protocol (field 3). */
	uint8_t msg[8192];
	size_t m = 0;
	msg[m++] = 2 << 3 | 2;
	m += pbwire_put_varint(msg + m, 5000);
	memset(msg + m, 'y', 5000);
	m += 5000;
	msg[m++] = 3 << 3 | 2;
	msg[m++] = 1;
	msg[m++] = '2';
	bb = rpc_bb_from(msg, m);
	assert_int_equal(ssh_request_split(bb, 1024, &parts), 0);
	grpc_byte_buffer_destroy(bb);

	/* The same stdin alone, in two slices: cut in five. */
	m -= 3;
	grpc_slice sl[2] = { grpc_slice_from_copied_buffer((const char *)msg, 100),
			     grpc_slice_from_copied_buffer((const char *)msg + 100, m - 100) };
	bb = grpc_raw_byte_buffer_create(sl, 2);
	grpc_slice_unref(sl[0]);
	grpc_slice_unref(sl[1]);
	size_t n = ssh_request_split(bb, 1024, &parts);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		grpc_byte_buffer_destroy(parts[i]);
	free(parts);
	grpc_byte_buffer_destroy(bb);
}

static void test_txn_roundtrip(void **state)
{
	struct txn_info t = { 0 }, back;
	char buf[512];
	t.id = 18446744073709551615ULL;
	strlcpy_(t.node, "store-1.a_b", sizeof(t.node));
	t.secondary = true;
	strlcpy_(t.address, "unix:/run/grove/cluster.sock", sizeof(t.address));
	txn_info_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "1;18446744073709551615;store-1.a_b;s;unix:/run/grove/cluster.sock");
	assert_int_equal(txn_info_parse(buf, strlen(buf), &back), 0);
	assert_true(back.id == t.id);
	assert_string_equal(back.node, t.node);
	assert_true(back.secondary);
	assert_string_equal(back.address, t.address);
	assert_int_equal(txn_info_parse("1;7;s1;p;127.0.0.1:8090", 23, &back), 0);
	assert_false(back.secondary);
	assert_true(back.id == 7);
}

static void test_txn_rejects(void **state)
{
	struct txn_info t;
	static const char *const bad[] = {
		"",
		"2;1;s1;p;addr",                 /* unknown version */
		"1;;s1;p;addr",                  /* no id */
		"1;x;s1;p;addr",                 /* id not a number */
		"1;18446744073709551616;s1;p;a", /* id overflows */
		"1;1;;p;addr",                   /* no node */
		"1;1;-s1;p;addr",                /* node starts with '-' */
		"1;1;s 1;p;addr",                /* space in node */
		"1;1;s1;x;addr",                 /* role */
		"1;1;s1;p;",                     /* no address */
		"1;1;s1;p;a;b",                  /* ';' in address */
		"1;1;s1;p;a b",                  /* space in address */
		"1;1;s1",                        /* cut short */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = txn_info_parse(bad[i], strlen(bad[i]), &t);
		if (r != GROVE_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* The length is honoured: no reading past it. */
	assert_int_equal(txn_info_parse("1;1;s1;p;addrXXXX", 13, &t), 0);
	assert_string_equal(t.address, "addr");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_repository),
		cmocka_unit_test(test_replace_keeps_the_rest),
		cmocka_unit_test(test_last_occurrence_wins),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_padded_key_and_length),
		cmocka_unit_test(test_next_walks_fields),
		cmocka_unit_test(test_ssh_response),
		cmocka_unit_test(test_ssh_response_header),
		cmocka_unit_test(test_ssh_request_split),
		cmocka_unit_test(test_ssh_request_split_leaves),
		cmocka_unit_test(test_txn_roundtrip),
		cmocka_unit_test(test_txn_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
