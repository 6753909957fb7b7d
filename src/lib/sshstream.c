/* SSHService input from a file descriptor: see sshstream.h. */
#include "lib/common.h"
#include "lib/sshstream.h"
#include "grove/v1/ssh.pb-c.h"

int ssh_stream_send_fd(struct rpc_stream *st, int fd)
{
	Grove__V1__SSHRequest req = GROVE__V1__SSHREQUEST__INIT;
	char *buf = xmalloc(RPC_CHUNK_MAX);
	int ret = 0;
	while (!ret) {
		ssize_t n = read(fd, buf, RPC_CHUNK_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		req.stdin.data = (uint8_t *)buf;
		req.stdin.len = (size_t)n;
		ret = rpc_stream_send(st, &req.base);
	}
	if (!ret)
		rpc_stream_close_send(st);
	free(buf);
	return ret;
}
