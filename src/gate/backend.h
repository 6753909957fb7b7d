/*
 * Where an SSH session's bytes go: git run by this process on a local
 * directory (legacy route), or a store's or cluster's SSHService stream
 * (cluster route) turned into three pipes by two threads, so the session
 * loop treats both alike: write stdin to in, read stdout and stderr from
 * out and err (all non-blocking), then ask for the exit code.
 */
#ifndef GROVE_GATE_BACKEND_H
#define GROVE_GATE_BACKEND_H

#include "lib/common.h"
#include "grove/v1/ssh.pb-c.h"

struct backend {
	int in, out, err;
	/* After out and err hit EOF: git's exit code (128 for a backend failure,
	 * with the reason already written to err). */
	int (*wait)(struct backend *b);
	/* The client went away: stop the backend without effects. */
	void (*abort)(struct backend *b);
	void (*free)(struct backend *b);
};

/* git <service> <dir> with env; hooks_dir is core.hooksPath (NULL: none). */
int backend_start_local(struct backend **out, const char *service, const char *dir, const char *hooks_dir,
			char **env);
/* method: "/grove.v1.SSHService/SSHReceivePack", …; first: repository, protocol, payload. */
int backend_start_grpc(struct backend **out, const char *addr, const char *secret, const char *method,
		       const Grove__V1__SSHRequest *first);

#endif
