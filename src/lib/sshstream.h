/*
 * The client side of an SSHService stream's input: what a git client writes
 * (grove connect's stdin, or the gate's pipe from an SSH channel) sent as
 * SSHRequest messages of at most RPC_CHUNK_MAX bytes.
 */
#ifndef GROVE_SSHSTREAM_H
#define GROVE_SSHSTREAM_H

#include "lib/rpc.h"

/*
 * Reads fd until EOF, one message per read, then half-closes the stream.
 * Returns 0, or the error of the send that failed (the call is over then).
 */
int ssh_stream_send_fd(struct rpc_stream *st, int fd);

#endif
