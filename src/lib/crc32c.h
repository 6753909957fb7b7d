/*
 * CRC-32C (Castagnoli), as iSCSI and ext4 use it: a check against bytes
 * damaged or cut short at rest, not against someone choosing them (use
 * SHA-256 for that). With SSE 4.2 it runs at several GB/s, about ten times
 * SHA-256 here: the pack-objects cache checks a whole entry before every
 * clone it serves (packcache.h).
 */
#ifndef GROVE_CRC32C_H
#define GROVE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of n more bytes at buf, after crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t n);

#endif
