/*
 * A check protobuf-c does not make: protobuf-c keeps string fields as C
 * strings, so a string with a NUL byte inside would silently lose its tail
 * ("a\0/../x" would arrive as "a"). pbcheck walks the encoded message with
 * its descriptor and refuses any string field, at any depth, that holds a
 * NUL byte, before the message is decoded.
 */
#ifndef GROVE_PBCHECK_H
#define GROVE_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* 0, or GROVE_EPROTO naming the field (and for malformed wire data). */
int pbcheck_strings(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len);

#endif
