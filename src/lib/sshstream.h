/*
 * The client side of an SSHService stream: its input: what a git client writes
 * (grove connect's stdin, or the gate's pipe from an SSH channel) sent as
 * SSHRequest messages of at most rpc_stream_stdin_max bytes.
 */
#ifndef GROVE_SSHSTREAM_H
#define GROVE_SSHSTREAM_H

#include "lib/rpc.h"

/*
 * Reads fd until EOF, one message per read, then half-closes the stream.
 * Returns 0, or the error of the send that failed (the call is over then).
 */
int ssh_stream_send_fd(struct rpc_stream *st, int fd);

/*
 * An SSHRequest whose only field is stdin, of more than max bytes, cut into
 * messages of at most max: for a server that takes no more (a store of an
 * earlier release: rpc_stream_stdin_max). Returns the number of messages in
 * *parts (an array to free, each message to destroy), or 0 when msg is to go
 * as it is: short enough, or not stdin alone (an earlier message of a
 * stream, with the repository, is small).
 */
size_t ssh_request_split(grpc_byte_buffer *msg, size_t max, grpc_byte_buffer ***parts);

/*
 * After rpc_stream_finish failed: whether the answer was whole all the same.
 * A server sends the exit status last, and only when the call is to end OK
 * (said_exit: the answer carried it). A server draining for an upgrade has
 * gRPC close its connection as soon as its last call ended; a client's
 * half-close sent just after that meets a closed socket, and the call fails
 * UNAVAILABLE before its status is read, though nothing of the answer was
 * lost: the call counts as ended OK.
 */
bool ssh_answer_whole(const struct rpc_stream *st, bool said_exit);

/* Field numbers of grove.v1.SSHResponse (proto/grove/v1/ssh.proto). */
enum { SSH_RESPONSE_STDOUT = 1, SSH_RESPONSE_STDERR = 2, SSH_RESPONSE_EXIT = 3, SSH_RESPONSE_REFS_CHECKSUM = 4 };

/*
 * An SSHResponse read in place, without unpacking: the output a gate passes
 * on points into the received buffer, which saves two copies of every byte
 * of a clone. out and err point into buf; has_exit says whether exit_status
 * was present (the last occurrence of a field wins, as protobuf-c decodes
 * it; the fuzz target fuzz_sshresponse holds the two to the same answers).
 */
struct ssh_response_view {
	const uint8_t *out, *err;
	size_t outlen, errlen;
	bool has_exit;
	int32_t exit;
};

/* 0, or GROVE_EPROTO when buf is not a well-formed SSHResponse. */
int ssh_response_parse(const uint8_t *buf, size_t len, struct ssh_response_view *v);

/*
 * Whether buf starts with the key and length of a stdout or stderr field
 * (then *err, the header's length and the field's length are set): enough
 * to tell, from the first of the slices a message arrived in, that it is a
 * single such field, as a store sends git's output, and to pass the rest on
 * slice by slice without flattening it first. 1 if so, else 0.
 */
int ssh_response_head(const uint8_t *buf, size_t len, bool *err, size_t *hdrlen, uint64_t *vlen);

/* The most ssh_response_header writes: a one-byte key and a length. */
#define SSH_RESPONSE_HEADER_MAX 11

/*
 * Writes the start of an SSHResponse whose only field is stdout (stderr when
 * err) of len bytes: followed by those bytes, it is the whole message. So a
 * store sends git's output without packing it into a message of its own.
 * Returns the header's length.
 */
size_t ssh_response_header(uint8_t out[SSH_RESPONSE_HEADER_MAX], bool err, size_t len);

#endif
