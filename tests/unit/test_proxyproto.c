/* Unit tests for the PROXY protocol parser and address ranges (lib/proxyproto.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/error.h"
#include "lib/proxyproto.h"

#include <arpa/inet.h>

#define P(s) (const uint8_t *)(s), strlen(s)

static void test_v1(void **state)
{
	struct proxy_addr a;
	const char *h = "PROXY TCP4 203.0.113.7 10.0.0.1 40001 22\r\nSSH-2.0-OpenSSH";
	assert_int_equal(proxy_parse(P(h), &a), 42);
	assert_false(a.local);
	assert_string_equal(a.ip, "203.0.113.7");
	assert_int_equal(a.port, 40001);
	assert_int_equal(proxy_parse(P("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"), &a), 40);
	assert_string_equal(a.ip, "2001:db8::1");
	assert_int_equal(proxy_parse(P("PROXY UNKNOWN\r\n"), &a), 15);
	assert_true(a.local);
	/* Incomplete: more bytes needed, not an error. */
	assert_int_equal(proxy_parse(P("PROX"), &a), 0);
	assert_int_equal(proxy_parse(P("PROXY TCP4 203.0.113.7 10.0.0.1 40001 22\r"), &a), 0);
}

static void test_v1_bad(void **state)
{
	struct proxy_addr a;
	static const char *const bad[] = {
		"SSH-2.0-OpenSSH_9.2\r\n",
		"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
		"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
		"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
		"PROXY TCP4 1.2.3.4\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (proxy_parse(P(bad[i]), &a) >= 0)
			fail_msg("accepted \"%s\"", bad[i]);
	char longline[200];
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY ", 6);
	assert_int_equal(proxy_parse((const uint8_t *)longline, sizeof(longline), &a), GROVE_EPROTO);
}

static void test_v2(void **state)
{
	uint8_t h[64] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12 };
	struct proxy_addr a;
	inet_pton(AF_INET, "198.51.100.9", h + 16);
	inet_pton(AF_INET, "10.0.0.1", h + 20);
	h[24] = 0x9c;
	h[25] = 0x42;
	assert_int_equal(proxy_parse(h, 28, &a), 28);
	assert_string_equal(a.ip, "198.51.100.9");
	assert_int_equal(a.port, 0x9c42);
	assert_int_equal(proxy_parse(h, 27, &a), 0);
	assert_int_equal(proxy_parse(h, 10, &a), 0);
	/* LOCAL: a health check of the balancer. */
	h[12] = 0x20;
	h[13] = 0;
	h[15] = 0;
	assert_int_equal(proxy_parse(h, 16, &a), 16);
	assert_true(a.local);
	/* Version 3, command 2, UNIX family, too short a block, too long a block. */
	h[12] = 0x31;
	assert_int_equal(proxy_parse(h, 16, &a), GROVE_EPROTO);
	h[12] = 0x22;
	assert_int_equal(proxy_parse(h, 16, &a), GROVE_EPROTO);
	h[12] = 0x21;
	h[13] = 0x31;
	assert_int_equal(proxy_parse(h, 16, &a), GROVE_EPROTO);
	h[13] = 0x11;
	h[15] = 4;
	assert_int_equal(proxy_parse(h, 20, &a), GROVE_EPROTO);
	h[14] = 0xff;
	assert_int_equal(proxy_parse(h, 16, &a), GROVE_EPROTO);
}

static void test_cidr(void **state)
{
	struct cidr c;
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };

	assert_int_equal(cidr_parse("10.0.0.0/8", &c), 0);
	inet_pton(AF_INET, "10.200.3.4", &v4.sin_addr);
	assert_true(cidr_match(&c, (struct sockaddr *)&v4));
	inet_pton(AF_INET, "11.0.0.1", &v4.sin_addr);
	assert_false(cidr_match(&c, (struct sockaddr *)&v4));
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr);
	assert_true(cidr_match(&c, (struct sockaddr *)&v6));
	assert_int_equal(cidr_parse("192.0.2.7", &c), 0);
	assert_int_equal(c.bits, 32);
	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	assert_true(cidr_match(&c, (struct sockaddr *)&v4));
	inet_pton(AF_INET, "192.0.2.8", &v4.sin_addr);
	assert_false(cidr_match(&c, (struct sockaddr *)&v4));
	assert_int_equal(cidr_parse("2001:db8::/33", &c), 0);
	inet_pton(AF_INET6, "2001:db8:7fff::1", &v6.sin6_addr);
	assert_true(cidr_match(&c, (struct sockaddr *)&v6));
	inet_pton(AF_INET6, "2001:db8:8000::1", &v6.sin6_addr);
	assert_false(cidr_match(&c, (struct sockaddr *)&v6));
	assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
	assert_true(cidr_match(&c, (struct sockaddr *)&v4));
	assert_int_equal(cidr_parse("10.0.0.0/33", &c), GROVE_EINVAL);
	assert_int_equal(cidr_parse("10.0.0/8", &c), GROVE_EINVAL);
	assert_int_equal(cidr_parse("/8", &c), GROVE_EINVAL);
	assert_int_equal(cidr_parse("10.0.0.0/x", &c), GROVE_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_cidr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
