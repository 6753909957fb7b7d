/* SSHService input from a file descriptor: see sshstream.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pbwire.h"
#include "lib/sshstream.h"
#include "grove/v1/ssh.pb-c.h"

int ssh_stream_send_fd(struct rpc_stream *st, int fd)
{
	Grove__V1__SSHRequest req = GROVE__V1__SSHREQUEST__INIT;
	char *buf = xmalloc(RPC_STDIN_MAX);
	int ret = 0;
	while (!ret) {
		/* As much as the server takes: known once it answered, which
		 * git's server side does first. */
		ssize_t n = read(fd, buf, rpc_stream_stdin_max(st));
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

/* Field number of grove.v1.SSHRequest.stdin (proto/grove/v1/ssh.proto). */
enum { SSH_REQUEST_STDIN = 2 };

/* A message whose only field is stdin: these len bytes. */
static grpc_byte_buffer *stdin_message(const uint8_t *data, size_t len)
{
	uint8_t hdr[1 + PBWIRE_VARINT_MAX];
	size_t h;
	hdr[0] = SSH_REQUEST_STDIN << 3 | 2;
	h = 1 + pbwire_put_varint(hdr + 1, len);
	grpc_slice s = grpc_slice_malloc(h + len);
	memcpy(GRPC_SLICE_START_PTR(s), hdr, h);
	memcpy(GRPC_SLICE_START_PTR(s) + h, data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

size_t ssh_request_split(grpc_byte_buffer *msg, size_t max, grpc_byte_buffer ***parts)
{
	struct pbwire_field f;
	uint8_t vl[PBWIRE_VARINT_MAX];
	size_t pos = 0, n = 0;
	grpc_slice all;

	*parts = NULL;
	/* Not longer than stdin of max bytes with its key and length: short
	 * enough, without a copy of the message to look. */
	if (!max || grpc_byte_buffer_length(msg) <= 1 + pbwire_put_varint(vl, max) + max || rpc_bb_slice(msg, &all))
		return 0;
	const uint8_t *buf = GRPC_SLICE_START_PTR(all);
	size_t len = GRPC_SLICE_LENGTH(all);
	/* One field, stdin, and nothing after it. */
	if (pbwire_next(buf, len, &pos, &f) == 1 && f.num == SSH_REQUEST_STDIN && f.type == 2 && pos == len &&
	    f.vlen > max) {
		n = (f.vlen + max - 1) / max;
		*parts = xcalloc(n, sizeof(**parts));
		for (size_t i = 0; i < n; i++)
			(*parts)[i] = stdin_message(f.val + i * max, MIN(max, f.vlen - i * max));
	}
	grpc_slice_unref(all);
	return n;
}

bool ssh_answer_whole(const struct rpc_stream *st, bool said_exit)
{
	return said_exit && rpc_stream_status(st) == GRPC_STATUS_UNAVAILABLE;
}

/* Field number of grove.v1.ExitStatus.value (proto/grove/v1/ssh.proto). */
enum { EXIT_STATUS_VALUE = 1 };

static int exit_status_parse(const uint8_t *buf, size_t len, int32_t *value)
{
	struct pbwire_field f;
	size_t pos = 0;
	int r;
	while ((r = pbwire_next(buf, len, &pos, &f)) == 1) {
		if (f.num != EXIT_STATUS_VALUE)
			continue;
		if (f.type != 0)
			return error_set(GROVE_EPROTO, "ExitStatus.value is not a varint");
		*value = (int32_t)(uint32_t)f.varint;
	}
	return r;
}

int ssh_response_parse(const uint8_t *buf, size_t len, struct ssh_response_view *v)
{
	struct pbwire_field f;
	size_t pos = 0;
	int r;

	memset(v, 0, sizeof(*v));
	while ((r = pbwire_next(buf, len, &pos, &f)) == 1) {
		if (f.num < SSH_RESPONSE_STDOUT || f.num > SSH_RESPONSE_REFS_CHECKSUM)
			continue;   /* a field this build does not know */
		if (f.type != 2)
			return error_set(GROVE_EPROTO, "SSHResponse field %u is not length-delimited", f.num);
		if (f.num == SSH_RESPONSE_REFS_CHECKSUM) {
			/* Not the gate's business (the router reads it), but a
			 * string as protobuf-c checks one: hex digits are. */
			for (size_t i = 0; i < f.vlen; i++)
				if (f.val[i] < 0x20 || f.val[i] > 0x7e)
					return error_set(GROVE_EPROTO, "SSHResponse refs_checksum is not text");
			continue;
		}
		if (f.num == SSH_RESPONSE_STDOUT) {
			v->out = f.val;
			v->outlen = f.vlen;
		} else if (f.num == SSH_RESPONSE_STDERR) {
			v->err = f.val;
			v->errlen = f.vlen;
		} else {
			/* The last occurrence wins whole, as protobuf-c decodes it. */
			v->has_exit = true;
			v->exit = 0;
			if ((r = exit_status_parse(f.val, f.vlen, &v->exit)))
				return r;
		}
	}
	return r;
}

/* The key of a length-delimited field: its number and wire type 2. */
#define LEN_KEY(field) ((uint8_t)(((field) << 3) | 2))

int ssh_response_head(const uint8_t *buf, size_t len, bool *err, size_t *hdrlen, uint64_t *vlen)
{
	size_t pos = 1;
	if (!len || (buf[0] != LEN_KEY(SSH_RESPONSE_STDOUT) && buf[0] != LEN_KEY(SSH_RESPONSE_STDERR)))
		return 0;
	/* Whether the length fits is known from its bytes: no error to set. */
	for (size_t i = 1; i < len && i <= PBWIRE_VARINT_MAX; i++)
		if (!(buf[i] & 0x80)) {
			if (pbwire_get_varint(buf, len, &pos, vlen))
				return 0;
			*err = buf[0] == LEN_KEY(SSH_RESPONSE_STDERR);
			*hdrlen = pos;
			return 1;
		}
	return 0;
}

size_t ssh_response_header(uint8_t out[SSH_RESPONSE_HEADER_MAX], bool err, size_t len)
{
	out[0] = LEN_KEY(err ? SSH_RESPONSE_STDERR : SSH_RESPONSE_STDOUT);
	return 1 + pbwire_put_varint(out + 1, len);
}
