/*
 * Where an SSH session's bytes go: git run by this process on a local
 * directory (legacy route), or a store's or cluster's SSHService stream
 * (cluster route). The session loop writes stdin to in (non-blocking) and
 * takes the output, then asks for the exit code.
 *
 * Output: git's stdout and stderr pipes (out and err, non-blocking), or, for
 * a gRPC backend, the received messages themselves, queued by the thread that
 * receives them and taken with peek/consume straight from gRPC's buffer into
 * the SSH channel. Through pipes, every byte of a clone was copied twice more
 * and each message woke two threads several times; the queue also lets the
 * receiver go on receiving while the session loop encrypts. out is then an
 * eventfd that is readable while there is something to peek (or the end).
 */
#ifndef GROVE_GATE_BACKEND_H
#define GROVE_GATE_BACKEND_H

#include "lib/common.h"
#include "grove/v1/ssh.pb-c.h"

struct backend {
	int in, out, err;
	/*
	 * Queued output (out is the eventfd, err is -1): 1 with the next chunk
	 * (stderr when *is_err), 0 when nothing is queued right now, -1 at the
	 * end. consume drops n bytes of that chunk. NULL for pipes.
	 */
	int (*peek)(struct backend *b, const uint8_t **data, size_t *len, bool *is_err);
	void (*consume)(struct backend *b, size_t n);
	/* After out and err hit EOF: git's exit code (128 for a backend failure,
	 * with the reason already written to err). */
	int (*wait)(struct backend *b);
	/* The client went away: stop the backend without effects. */
	void (*abort)(struct backend *b);
	void (*free)(struct backend *b);
};

/* How git speaks: a whole conversation (SSH), or smart HTTP's one request
 * and its answer (--stateless-rpc), or only the refs (info/refs). */
enum backend_mode { BACKEND_STREAM = 0, BACKEND_STATELESS, BACKEND_ADVERTISE };

/* git <service> <dir> with env; hooks_dir is core.hooksPath (NULL: none);
 * receive-pack refuses a pack larger than max_input_size bytes (0: any),
 * and an object with an fsck error but those of fsck_ignore. */
int backend_start_local(struct backend **out, const char *service, const char *dir, const char *hooks_dir,
			const char *const *fsck_ignore, char **env, uint64_t max_input_size, enum backend_mode mode);
/* method: "/grove.v1.SSHService/SSHReceivePack", …; first: repository, protocol, payload. */
/* user: who runs it, told to the router (its per-user cap, RPC_USER_KEY). */
int backend_start_grpc(struct backend **out, const char *addr, const char *secret, const char *method,
		       const Grove__V1__SSHRequest *first, const char *user);

#endif
