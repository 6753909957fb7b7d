/* CRC-32C: see crc32c.h. */
#include "lib/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u   /* Castagnoli, bits reversed */

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_fill(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
}

/* A byte at a time: where the CPU has no CRC instruction. */
static uint32_t crc_soft(uint32_t c, const unsigned char *p, size_t n)
{
	pthread_once(&table_once, table_fill);
	while (n--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *p, size_t n)
{
	uint64_t c64 = c;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = _mm_crc32_u64(c64, v);
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}

static int have_sse42(void)
{
	static int have = -1;   /* the same answer whoever asks first */
	int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
	if (h < 0) {
		h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&have, h, __ATOMIC_RELAXED);
	}
	return h;
}
#endif

uint32_t crc32c(uint32_t crc, const void *buf, size_t n)
{
	uint32_t c = ~crc;
#if defined(__x86_64__)
	if (have_sse42())
		return ~crc_sse42(c, buf, n);
#endif
	return ~crc_soft(c, buf, n);
}
