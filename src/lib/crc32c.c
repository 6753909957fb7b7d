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

/*
 * a * b modulo the polynomial, both in the bits-reversed form (x^0 is the
 * top bit): multiplying a CRC register by x^(8n) gives the register n zero
 * bytes later, which is how three lanes' CRCs join into one.
 */
static uint32_t mul_mod_poly(uint32_t a, uint32_t b)
{
	uint32_t p = 0;
	for (int i = 31; i >= 0; i--) {
		p ^= b & -((a >> i) & 1);   /* no branch: a's bits are data */
		b = (b >> 1) ^ (POLY & -(b & 1));
	}
	return p;
}

/* Bytes per lane (2^LANE_BITS): the CRC instruction takes 3 cycles to give
 * its result but starts one per cycle, so three independent lanes run it
 * ~2x as fast here; joining them costs two products per round, which
 * lanes this long make negligible (8 KiB lanes gained only a fifth). */
#define LANE_BITS 16
#define LANE ((size_t)1 << LANE_BITS)
static uint32_t lane_shift;   /* x^(8 LANE): a register moved past one lane */
static pthread_once_t lane_once = PTHREAD_ONCE_INIT;

static void lane_shift_fill(void)
{
	uint32_t x = 1u << 30;   /* x^1 */
	for (int i = 0; i < LANE_BITS + 3; i++)
		x = mul_mod_poly(x, x);
	lane_shift = x;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *p, size_t n)
{
	uint64_t c64 = c;
	if (n >= 3 * LANE)
		pthread_once(&lane_once, lane_shift_fill);
	for (; n >= 3 * LANE; p += 3 * LANE, n -= 3 * LANE) {
		uint64_t a = c64, b = 0, d = 0;
		for (size_t i = 0; i < LANE; i += 8) {
			uint64_t va, vb, vd;
			memcpy(&va, p + i, 8);
			memcpy(&vb, p + LANE + i, 8);
			memcpy(&vd, p + 2 * LANE + i, 8);
			a = _mm_crc32_u64(a, va);
			b = _mm_crc32_u64(b, vb);
			d = _mm_crc32_u64(d, vd);
		}
		c64 = mul_mod_poly(lane_shift, mul_mod_poly(lane_shift, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
	}
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
