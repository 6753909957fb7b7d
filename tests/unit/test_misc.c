/*
 * Unit tests for the small shared pieces of src/lib/: bounded strbufs and
 * their JSON escaping, the hook payload's base64 encoding, the generated
 * RPC method table, the per-thread error messages, fixed-size paths and
 * the fsck ids git command lines let through, and the ticker thread.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/gitcmd.h"
#include "lib/hookpayload.h"
#include "lib/methods.h"
#include "lib/strbuf.h"
#include "lib/ticker.h"

#include <pthread.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- strbuf ---- */

static void test_strbuf_basic(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_addstr(&sb, "hello"), 0);
	assert_int_equal(strbuf_addch(&sb, ' '), 0);
	assert_int_equal(strbuf_add(&sb, "world!!", 5), 0);
	assert_int_equal(sb.len, 11);
	assert_string_equal(sb.buf, "hello world");
	assert_true(sb.alloc > sb.len);
	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
	/* A released buffer is empty and usable again. */
	assert_string_equal(sb.buf, "");
	assert_int_equal(strbuf_addstr(&sb, "again"), 0);
	assert_string_equal(sb.buf, "again");
	strbuf_release(&sb);
}

static void test_strbuf_empty_is_string(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");
	strbuf_rtrim(&sb);
	strbuf_consume(&sb, 3);
	assert_string_equal(sb.buf, "");
	size_t len = 7;
	char *s = strbuf_detach(&sb, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	strbuf_release(&sb);
}

static void test_strbuf_binary(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_add(&sb, "a\0b", 3), 0);
	assert_int_equal(sb.len, 3);
	assert_memory_equal(sb.buf, "a\0b", 4);   /* still NUL-terminated */
	strbuf_release(&sb);
}

static void test_strbuf_max(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 8);
	assert_int_equal(strbuf_addstr(&sb, "12345"), 0);
	assert_int_equal(strbuf_addstr(&sb, "678"), 0);   /* exactly at the maximum */
	assert_int_equal(sb.len, 8);

	error_clear();
	assert_int_equal(strbuf_addstr(&sb, "9"), GROVE_ETOOBIG);
	assert_non_null(strstr(error_msg(), "8"));
	assert_int_equal(sb.len, 8);
	assert_string_equal(sb.buf, "12345678");
	assert_int_equal(strbuf_addch(&sb, 'x'), GROVE_ETOOBIG);
	assert_int_equal(strbuf_addf(&sb, "%d", 1), GROVE_ETOOBIG);
	assert_int_equal(strbuf_add(&sb, "", 0), 0);   /* nothing is always fine */
	assert_string_equal(sb.buf, "12345678");

	/* After consuming there is room again, up to the same maximum. */
	strbuf_consume(&sb, 3);
	assert_string_equal(sb.buf, "45678");
	assert_int_equal(strbuf_addf(&sb, "%s", "abcd"), GROVE_ETOOBIG);
	assert_string_equal(sb.buf, "45678");
	assert_int_equal(strbuf_addf(&sb, "%s", "abc"), 0);
	assert_string_equal(sb.buf, "45678abc");

	/* A single add larger than the maximum, or one that would overflow size_t. */
	strbuf_reset(&sb);
	assert_int_equal(strbuf_add(&sb, "123456789", 9), GROVE_ETOOBIG);
	assert_int_equal(sb.len, 0);
	assert_int_equal(strbuf_grow(&sb, SIZE_MAX), GROVE_ETOOBIG);
	assert_int_equal(strbuf_grow(&sb, 9), GROVE_ETOOBIG);
	assert_int_equal(strbuf_grow(&sb, 8), 0);
	strbuf_release(&sb);

	/* Max 0 means "practically unbounded", not "nothing". */
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_grow(&sb, SIZE_MAX), GROVE_ETOOBIG);
	assert_int_equal(strbuf_addstr(&sb, "fine"), 0);
	strbuf_release(&sb);
}

static void test_strbuf_addf(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_addf(&sb, "%d-%s-%c-%05.1f", 42, "x", 'y', 2.5), 0);
	assert_string_equal(sb.buf, "42-x-y-002.5");
	assert_int_equal(strbuf_addf(&sb, "%s", ""), 0);
	assert_string_equal(sb.buf, "42-x-y-002.5");
	/* Longer than any first allocation, appended after what was there. */
	char big[3000];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(strbuf_addf(&sb, "[%s]", big), 0);
	assert_int_equal(sb.len, 12 + 2 + 2999);
	assert_int_equal(sb.buf[12], '[');
	assert_int_equal(sb.buf[sb.len - 1], ']');
	assert_int_equal(sb.buf[sb.len], '\0');
	assert_int_equal(strlen(sb.buf), sb.len);
	strbuf_release(&sb);
}

static void test_strbuf_consume(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_addstr(&sb, "hello world"), 0);
	strbuf_consume(&sb, 0);
	assert_string_equal(sb.buf, "hello world");
	strbuf_consume(&sb, 6);
	assert_string_equal(sb.buf, "world");
	assert_int_equal(sb.len, 5);
	strbuf_consume(&sb, 5);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	assert_int_equal(strbuf_addstr(&sb, "abc"), 0);
	strbuf_consume(&sb, 100);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
}

static void test_strbuf_rtrim(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_addstr(&sb, "  abc \t\r\n \n"), 0);
	strbuf_rtrim(&sb);
	assert_string_equal(sb.buf, "  abc");
	assert_int_equal(sb.len, 5);
	strbuf_rtrim(&sb);
	assert_string_equal(sb.buf, "  abc");
	strbuf_reset(&sb);
	assert_int_equal(strbuf_addstr(&sb, " \n\t\r"), 0);
	strbuf_rtrim(&sb);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
}

static void test_strbuf_detach(void **state)
{
	struct strbuf sb;
	size_t len = 0;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_addstr(&sb, "owned"), 0);
	char *s = strbuf_detach(&sb, &len);
	assert_string_equal(s, "owned");
	assert_int_equal(len, 5);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	assert_ptr_not_equal(sb.buf, s);
	free(s);
	strbuf_release(&sb);
}

static void expect_json(const char *in, size_t len, const char *want)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_add_json_str(&sb, in, len), 0);
	assert_string_equal(sb.buf, want);
	strbuf_release(&sb);
}

static void test_json_escaping(void **state)
{
	expect_json("", 0, "\"\"");
	expect_json("plain text", 10, "\"plain text\"");
	expect_json("a\"b", 3, "\"a\\\"b\"");
	expect_json("a\\b", 3, "\"a\\\\b\"");
	expect_json("\n\r\t", 3, "\"\\n\\r\\t\"");
	expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
	expect_json("\x08\x0c", 2, "\"\\u0008\\u000c\"");
	/* A NUL inside the length is escaped, not a terminator. */
	expect_json("a\0b", 3, "\"a\\u0000b\"");
	/* Non-ASCII bytes are escaped one by one, so the line stays ASCII. */
	expect_json("caf\xc3\xa9", 5, "\"caf\\u00c3\\u00a9\"");
	expect_json("\xff", 1, "\"\\u00ff\"");
	/* Only len bytes are read. */
	expect_json("abcdef", 3, "\"abc\"");
	expect_json("</script>'", 10, "\"</script>'\"");
}

static void test_json_appends_and_limit(void **state)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	assert_int_equal(strbuf_addstr(&sb, "{\"k\":"), 0);
	assert_int_equal(strbuf_add_json_str(&sb, "v", 1), 0);
	assert_int_equal(strbuf_addch(&sb, '}'), 0);
	assert_string_equal(sb.buf, "{\"k\":\"v\"}");
	strbuf_release(&sb);

	strbuf_init(&sb, 10);
	assert_int_equal(strbuf_add_json_str(&sb, "12345678", 8), 0);   /* 10 with quotes */
	strbuf_reset(&sb);
	assert_int_equal(strbuf_add_json_str(&sb, "123456789", 9), GROVE_ETOOBIG);
	assert_true(sb.len <= 10);
	strbuf_reset(&sb);
	assert_int_equal(strbuf_add_json_str(&sb, "\x01\x02", 2), GROVE_ETOOBIG);
	assert_true(sb.len <= 10);
	strbuf_release(&sb);
}

/* ---- hook payload ---- */

static Grove__V1__HookPayload *full_payload(Grove__V1__HookPayload *p, Grove__V1__Repository *r)
{
	grove__v1__repository__init(r);
	r->storage_name = (char *)"default";
	r->relative_path = (char *)"group/app.git";
	grove__v1__hook_payload__init(p);
	p->app = (char *)"my-app";
	p->user = (char *)"alice";
	p->key_fingerprint = (char *)"SHA256:abc+/=def";
	p->correlation_id = (char *)"0123456789abcdef";
	p->hook_address = (char *)"unix:/run/grove/gate.sock";
	p->transaction_address = (char *)"127.0.0.1:9001";
	p->transaction_id = UINT64_C(0xfedcba9876543210);
	p->node = (char *)"store-2";
	p->secondary = 1;
	p->repository = r;
	return p;
}

static bool is_base64(const char *s)
{
	size_t len = strlen(s);
	if (len % 4)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", s[i]) &&
		    !(s[i] == '=' && i >= len - 2))
			return false;
	return true;
}

static void test_payload_roundtrip(void **state)
{
	Grove__V1__HookPayload p, *back = NULL;
	Grove__V1__Repository r;
	char *enc = hook_payload_encode(full_payload(&p, &r));

	assert_non_null(enc);
	assert_true(is_base64(enc));
	assert_int_equal(setenv(HOOK_PAYLOAD_ENV, enc, 1), 0);   /* safe in the environment */
	assert_int_equal(hook_payload_decode(enc, strlen(enc), &back), 0);
	assert_non_null(back);
	assert_string_equal(back->app, "my-app");
	assert_string_equal(back->user, "alice");
	assert_string_equal(back->key_fingerprint, "SHA256:abc+/=def");
	assert_string_equal(back->correlation_id, "0123456789abcdef");
	assert_string_equal(back->hook_address, "unix:/run/grove/gate.sock");
	assert_string_equal(back->transaction_address, "127.0.0.1:9001");
	assert_true(back->transaction_id == UINT64_C(0xfedcba9876543210));
	assert_string_equal(back->node, "store-2");
	assert_true(back->secondary);
	assert_non_null(back->repository);
	assert_string_equal(back->repository->storage_name, "default");
	assert_string_equal(back->repository->relative_path, "group/app.git");

	/* Encoding the decoded message gives the same text. */
	char *again = hook_payload_encode(back);
	assert_string_equal(again, enc);
	free(again);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	unsetenv(HOOK_PAYLOAD_ENV);
	free(enc);
}

static void test_payload_empty(void **state)
{
	Grove__V1__HookPayload p, *back = NULL;
	grove__v1__hook_payload__init(&p);
	char *enc = hook_payload_encode(&p);
	assert_non_null(enc);
	assert_string_equal(enc, "");
	assert_int_equal(hook_payload_decode(enc, 0, &back), 0);
	assert_non_null(back);
	assert_string_equal(back->app, "");
	assert_null(back->repository);
	assert_false(back->secondary);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(enc);
}

static void test_payload_padding(void **state)
{
	/* Lengths 1..9 of one field give every amount of base64 padding. */
	char app[10] = "abcdefghi";
	for (size_t n = 1; n <= 9; n++) {
		Grove__V1__HookPayload p, *back = NULL;
		char saved = app[n];
		app[n] = '\0';
		grove__v1__hook_payload__init(&p);
		p.app = app;
		char *enc = hook_payload_encode(&p);
		assert_non_null(enc);
		assert_true(is_base64(enc));
		assert_int_equal(hook_payload_decode(enc, strlen(enc), &back), 0);
		assert_string_equal(back->app, app);
		protobuf_c_message_free_unpacked(&back->base, NULL);
		free(enc);
		app[n] = saved;
	}
}

static void test_payload_size_limits(void **state)
{
	Grove__V1__HookPayload p, *back = NULL;
	/* 48000 bytes of field encode to about 64000 characters: still allowed. */
	size_t fits = 48000, too_big = 50000;
	char *field = xmalloc(too_big + 1);
	memset(field, 'f', too_big);
	field[fits] = '\0';
	grove__v1__hook_payload__init(&p);
	p.app = field;
	char *enc = hook_payload_encode(&p);
	assert_non_null(enc);
	assert_true(strlen(enc) <= HOOK_PAYLOAD_MAX);
	assert_int_equal(hook_payload_decode(enc, strlen(enc), &back), 0);
	assert_int_equal(strlen(back->app), fits);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(enc);

	/* Past HOOK_PAYLOAD_MAX encoded bytes, encoding refuses. */
	field[fits] = 'f';
	field[too_big] = '\0';
	assert_null(hook_payload_encode(&p));
	free(field);

	/* And decoding refuses anything longer before looking at it. */
	char *big = xmalloc(HOOK_PAYLOAD_MAX + 4);
	memset(big, 'A', HOOK_PAYLOAD_MAX + 4);
	back = (Grove__V1__HookPayload *)&p;
	assert_int_equal(hook_payload_decode(big, HOOK_PAYLOAD_MAX + 4, &back), GROVE_ETOOBIG);
	assert_null(back);
	free(big);
}

static void expect_bad_payload(const char *s, size_t len)
{
	Grove__V1__HookPayload dummy, *back = &dummy;
	error_clear();
	int ret = hook_payload_decode(s, len, &back);
	if (ret != GROVE_EINVAL)
		fail_msg("payload \"%.*s\" gave %d, want GROVE_EINVAL", (int)len, s, ret);
	assert_null(back);
	assert_non_null(strstr(error_msg(), "hook payload"));
}

static void test_payload_garbage(void **state)
{
	static const char *bad[] = {
		"abc",          /* not a multiple of 4 */
		"a",
		"!!!!",
		"ab c",
		"abc\n",
		"AAAA\n",
		"A===",         /* too much padding */
		"====",
		"=AAA",
		"AA=A",         /* padding that is not at the end */
		"A=AA",
		"AAAA====",
		"AB-_",         /* base64url is not accepted */
		"CgVhYg==",     /* base64, but a truncated protobuf field */
		"/////////w==", /* base64, but a bad varint */
		/* Field number 0, hidden in a padded tag varint ("81 00"): protobuf-c
		 * keeps it as an unknown field but packs it as "01", which it then
		 * refuses, so the payload would not survive a re-encoding. */
		"gQAAggAAAAD//w==",
		"UgqBAAECAwQFBgcI",   /* the same inside the nested repository */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_bad_payload(bad[i], strlen(bad[i]));
	/* A NUL inside the stated length. */
	expect_bad_payload("AA\0A", 4);
}

static void test_payload_unknown_fields_kept(void **state)
{
	/* A field this version does not know (number 15, varint) survives a
	 * decode and re-encode, so older hooks pass newer payloads through. */
	Grove__V1__HookPayload *back = NULL;
	const char *enc = "eAcKAWE=";   /* 78 07 0a 01 61: field 15 = 7, app = "a" */
	assert_int_equal(hook_payload_decode(enc, strlen(enc), &back), 0);
	assert_string_equal(back->app, "a");
	assert_int_equal(back->base.n_unknown_fields, 1);
	char *again = hook_payload_encode(back);
	Grove__V1__HookPayload *back2 = NULL;
	assert_int_equal(hook_payload_decode(again, strlen(again), &back2), 0);
	assert_int_equal(back2->base.n_unknown_fields, 1);
	assert_string_equal(back2->app, "a");
	protobuf_c_message_free_unpacked(&back2->base, NULL);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(again);
}

static void test_payload_uses_len(void **state)
{
	/* Only len bytes are decoded; what follows is not looked at. */
	Grove__V1__HookPayload p, *back = NULL;
	grove__v1__hook_payload__init(&p);
	p.user = (char *)"bob";
	char *enc = hook_payload_encode(&p);
	char *more = xasprintf("%s!!garbage", enc);
	assert_int_equal(hook_payload_decode(more, strlen(enc), &back), 0);
	assert_string_equal(back->user, "bob");
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(more);
	free(enc);
}

/* ---- method table ---- */

static void test_methods(void **state)
{
	const struct rpc_method_info *m;

	m = rpc_method_find("/grove.v1.SSHService/SSHReceivePack");
	assert_non_null(m);
	assert_string_equal(m->path, "/grove.v1.SSHService/SSHReceivePack");
	assert_int_equal(m->kind, RPC_KIND_MUTATOR);
	assert_true(m->client_streaming);
	assert_true(m->server_streaming);

	m = rpc_method_find("/grove.v1.SSHService/SSHUploadPack");
	assert_non_null(m);
	assert_int_equal(m->kind, RPC_KIND_ACCESSOR);
	assert_true(m->client_streaming && m->server_streaming);

	m = rpc_method_find("/grove.v1.RepositoryService/CreateRepository");
	assert_non_null(m);
	assert_int_equal(m->kind, RPC_KIND_MUTATOR);
	assert_false(m->client_streaming);
	assert_false(m->server_streaming);

	m = rpc_method_find("/grove.v1.RepositoryService/RepositoryExists");
	assert_non_null(m);
	assert_int_equal(m->kind, RPC_KIND_ACCESSOR);
	assert_false(m->client_streaming || m->server_streaming);

	m = rpc_method_find("/grove.v1.RepositoryService/OptimizeRepository");
	assert_non_null(m);
	assert_int_equal(m->kind, RPC_KIND_MAINTENANCE);

	m = rpc_method_find("/grove.v1.RepositoryService/CreateBundle");
	assert_non_null(m);
	assert_false(m->client_streaming);
	assert_true(m->server_streaming);

	m = rpc_method_find("/grove.v1.RepositoryService/CreateRepositoryFromBundle");
	assert_non_null(m);
	assert_int_equal(m->kind, RPC_KIND_MUTATOR);
	assert_true(m->client_streaming);
	assert_false(m->server_streaming);
}

static void test_methods_unknown(void **state)
{
	static const char *unknown[] = {
		"", "/", "/grove.v1.SSHService/Nope", "/grove.v1.SSHService/SSHReceivePack/",
		"grove.v1.SSHService/SSHReceivePack", "/grove.v1.sshservice/sshreceivepack",
		"/grove.v1.SSHService/SSHReceivePac", "/grove.v2.RepositoryService/CreateRepository",
	};
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
		assert_null(rpc_method_find(unknown[i]));
}

static void test_methods_table(void **state)
{
	/* Every entry is well-formed, found by its own path, and unique; every
	 * grove.v1 method declares a kind. */
	size_t n = 0;
	for (const struct rpc_method_info *m = rpc_methods; m->path; m++, n++) {
		assert_int_equal(m->path[0], '/');
		assert_non_null(strchr(m->path + 1, '/'));
		assert_ptr_equal(rpc_method_find(m->path), m);
		if (skip_prefix(m->path, "/grove.v1.", NULL) && m->kind == RPC_KIND_NONE)
			fail_msg("%s has no kind", m->path);
		assert_true(m->client_streaming == 0 || m->client_streaming == 1);
		assert_true(m->server_streaming == 0 || m->server_streaming == 1);
	}
	assert_true(n >= 20);
	assert_string_equal(rpc_kind_name(RPC_KIND_ACCESSOR), "accessor");
	assert_string_equal(rpc_kind_name(RPC_KIND_MUTATOR), "mutator");
	assert_string_equal(rpc_kind_name(RPC_KIND_MAINTENANCE), "maintenance");
	assert_string_equal(rpc_kind_name(RPC_KIND_NONE), "none");
}

/* ---- ticker ---- */

struct ticks {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
};

static void count_tick(void *arg)
{
	struct ticks *t = arg;
	pthread_mutex_lock(&t->mu);
	t->n++;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* It ticks again and again, and not once more after ticker_stop returned. */
static void test_ticker_ticks_until_stopped(void **state)
{
	struct ticks t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct ticker tk;
	int seen;

	assert_int_equal(ticker_start(&tk, 5, count_tick, &t, "a test ticker"), 0);
	assert_false(ticker_stopping(&tk));
	pthread_mutex_lock(&t.mu);
	while (t.n < 3)
		pthread_cond_wait(&t.cv, &t.mu);
	pthread_mutex_unlock(&t.mu);
	ticker_stop(&tk);
	pthread_mutex_lock(&t.mu);
	seen = t.n;
	pthread_mutex_unlock(&t.mu);
	usleep(20000);
	assert_int_equal(t.n, seen);
	ticker_stop(&tk);   /* twice: harmless */
}

/* A stop does not wait for the period: an hour's ticker stops at once
 * (if it did wait, this test would hang until the suite's timeout). */
static void test_ticker_stop_wakes(void **state)
{
	struct ticks t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct ticker tk;

	assert_int_equal(ticker_start(&tk, 3600 * 1000, count_tick, &t, "a test ticker"), 0);
	ticker_stop(&tk);
	assert_true(ticker_stopping(&tk));
	assert_int_equal(t.n, 0);
}

/* ---- errors ---- */

static void test_error_set(void **state)
{
	error_clear();
	assert_string_equal(error_msg(), "");
	assert_int_equal(error_set(GROVE_ENOTFOUND, "repository %s not found (%d)", "a.git", 7),
			 GROVE_ENOTFOUND);
	assert_string_equal(error_msg(), "repository a.git not found (7)");
	/* A second set replaces the message. */
	assert_int_equal(error_set(GROVE_EINVAL, "other"), GROVE_EINVAL);
	assert_string_equal(error_msg(), "other");
	error_clear();
	assert_string_equal(error_msg(), "");
}

static void test_error_wrap(void **state)
{
	error_set(GROVE_EIO, "disk full");
	assert_int_equal(error_wrap(GROVE_EIO, "writing %s", "HEAD"), GROVE_EIO);
	assert_string_equal(error_msg(), "writing HEAD: disk full");
	assert_int_equal(error_wrap(GROVE_EINTERNAL, "CreateRepository"), GROVE_EINTERNAL);
	assert_string_equal(error_msg(), "CreateRepository: writing HEAD: disk full");
	/* With no message yet, the context alone. */
	error_clear();
	error_wrap(GROVE_EIO, "context only");
	assert_string_equal(error_msg(), "context only");
	error_clear();
}

static void test_error_truncation(void **state)
{
	char big[4000];
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	error_set(GROVE_EINVAL, "%s", big);
	size_t len = strlen(error_msg());
	assert_true(len > 500 && len < sizeof(big));
	/* A message that did not fit shows it was cut. */
	assert_true(ends_with(error_msg(), "..."));
	error_wrap(GROVE_EINVAL, "%s", big);
	assert_true(strlen(error_msg()) <= len);
	assert_int_equal(error_msg()[0], 'e');
	error_set(GROVE_EINVAL, "short");
	error_wrap(GROVE_EINVAL, "%s", big);
	assert_true(strlen(error_msg()) < sizeof(big));
	error_clear();
}

static void test_error_code_names(void **state)
{
	assert_string_equal(error_code_name(GROVE_OK), "ok");
	assert_string_equal(error_code_name(GROVE_ENOTFOUND), "not found");
	assert_string_equal(error_code_name(GROVE_EINVAL), "invalid argument");
	assert_string_equal(error_code_name(GROVE_ETOOBIG), "too big");
	assert_string_equal(error_code_name(GROVE_EAUTH), "unauthenticated");
	assert_string_equal(error_code_name(GROVE_EPROTO), "protocol error");
	assert_string_equal(error_code_name(GROVE_EINTERNAL), "internal error");
	assert_string_equal(error_code_name(-999), "internal error");
	/* Every code has its own name. */
	for (int a = GROVE_EPROTO; a <= GROVE_OK; a++)
		for (int b = a + 1; b <= GROVE_OK; b++)
			assert_string_not_equal(error_code_name(a), error_code_name(b));
}

static void *thread_main(void *arg)
{
	char *seen = arg;
	strlcpy_(seen, error_msg(), 64);
	error_set(GROVE_EIO, "from the thread");
	return NULL;
}

static void test_error_per_thread(void **state)
{
	char seen[64] = "unset";
	pthread_t t;
	error_set(GROVE_EINVAL, "from main");
	assert_int_equal(pthread_create(&t, NULL, thread_main, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "");
	assert_string_equal(error_msg(), "from main");
	error_clear();
}

/* ---- fs_pathf and gitcmd ---- */

static void test_pathf(void **state)
{
	char buf[16];
	assert_int_equal(fs_pathf(buf, sizeof(buf), "%s/%s", "/a", "b"), 0);
	assert_string_equal(buf, "/a/b");
	/* A path that does not fit is refused, never used cut. */
	assert_int_equal(fs_pathf(buf, sizeof(buf), "%s/secret", "/a/long/folder"), GROVE_ETOOBIG);
	assert_non_null(strstr(error_msg(), "longer than 15 bytes"));
}

/* The argv's "-c" values that let fsck id through. */
static size_t count_ignored(const struct strvec *argv, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < argv->n; i++)
		if (strstr(argv->v[i], id) && ends_with(argv->v[i], "=ignore"))
			n++;
	return n;
}

static void test_time_iso8601(void **state)
{
	char out[TIME_ISO_LEN];
	(void)state;
	time_iso8601(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	time_iso8601(1796392744, out);
	assert_string_equal(out, "2026-12-04T13:59:04Z");
}

static void test_fsck_ignore(void **state)
{
	struct strvec ids = STRVEC_INIT, argv = STRVEC_INIT;
	struct gitcmd_opts o = { 0 };
	static const char *const none[] = { NULL };

	assert_int_equal(gitcmd_fsck_ignore_parse(" badTimezone,zeroPaddedFilemode\tmissingEmail ", &ids), 0);
	assert_int_equal(ids.n, 3);
	assert_string_equal(ids.v[2], "missingEmail");
	assert_int_equal(gitcmd_fsck_ignore_parse("", &ids), 0);
	assert_int_equal(ids.n, 0);
	/* Nothing that could change another setting: letters only. */
	assert_int_equal(gitcmd_fsck_ignore_parse("badTimezone core.hooksPath=/tmp", &ids), GROVE_EINVAL);
	assert_non_null(strstr(error_msg(), "is not an fsck message id"));

	/* Default: the historic quirks, for fsck, pushes and fetches alike. */
	gitcmd_init(&argv, NULL, NULL);
	assert_int_equal(count_ignored(&argv, "zeroPaddedFilemode"), 3);
	assert_int_equal(count_ignored(&argv, "badTimezone"), 3);
	assert_int_equal(count_ignored(&argv, "missingSpaceBeforeDate"), 3);
	strvec_clear(&argv);
	o.fsck_ignore = none;
	gitcmd_init(&argv, &o, NULL);
	assert_int_equal(count_ignored(&argv, "Filemode"), 0);
	strvec_clear(&argv);
	assert_int_equal(gitcmd_fsck_ignore_parse("missingEmail", &ids), 0);
	o.fsck_ignore = strvec_argv(&ids);
	gitcmd_init(&argv, &o, NULL);
	assert_int_equal(count_ignored(&argv, "missingEmail"), 3);
	assert_int_equal(count_ignored(&argv, "badTimezone"), 0);
	strvec_clear(&argv);
	strvec_clear(&ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pathf),
		cmocka_unit_test(test_ticker_ticks_until_stopped),
		cmocka_unit_test(test_ticker_stop_wakes),
		cmocka_unit_test(test_fsck_ignore),
		cmocka_unit_test(test_time_iso8601),
		cmocka_unit_test(test_strbuf_basic),
		cmocka_unit_test(test_strbuf_empty_is_string),
		cmocka_unit_test(test_strbuf_binary),
		cmocka_unit_test(test_strbuf_max),
		cmocka_unit_test(test_strbuf_addf),
		cmocka_unit_test(test_strbuf_consume),
		cmocka_unit_test(test_strbuf_rtrim),
		cmocka_unit_test(test_strbuf_detach),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_json_appends_and_limit),
		cmocka_unit_test(test_payload_roundtrip),
		cmocka_unit_test(test_payload_empty),
		cmocka_unit_test(test_payload_padding),
		cmocka_unit_test(test_payload_size_limits),
		cmocka_unit_test(test_payload_garbage),
		cmocka_unit_test(test_payload_unknown_fields_kept),
		cmocka_unit_test(test_payload_uses_len),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_methods_unknown),
		cmocka_unit_test(test_methods_table),
		cmocka_unit_test(test_error_set),
		cmocka_unit_test(test_error_wrap),
		cmocka_unit_test(test_error_truncation),
		cmocka_unit_test(test_error_code_names),
		cmocka_unit_test(test_error_per_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
