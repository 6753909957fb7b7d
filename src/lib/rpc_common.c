/* What the gRPC server and client wrappers share: see rpc.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/pbcheck.h"
#include "lib/rpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <pthread.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* gRPC's own complaints (a failed TLS handshake, a broken peer) as the
 * daemon's JSON log lines, not bare text in the middle of the log. */
static void log_grpc(gpr_log_func_args *a)
{
	const char *file = strrchr(a->file, '/');
	enum log_level lvl = a->severity == GPR_LOG_SEVERITY_ERROR ? LOG_ERROR
			     : a->severity == GPR_LOG_SEVERITY_INFO ? LOG_INFO
								     : LOG_DEBUG;
	log_event(lvl, "grpc.log", "file=%s line=%d message=%s", file ? file + 1 : a->file, a->line, a->message);
}

static void do_init(void)
{
	gpr_set_log_function(log_grpc);
	grpc_init();
}

void rpc_global_init(void)
{
	pthread_once(&init_once, do_init);
}

grpc_status_code rpc_status_from_err(int err)
{
	switch (err) {
	case GROVE_OK: return GRPC_STATUS_OK;
	case GROVE_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
	case GROVE_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
	case GROVE_EEXISTS: return GRPC_STATUS_ALREADY_EXISTS;
	case GROVE_ETOOBIG: return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case GROVE_EAUTH: return GRPC_STATUS_UNAUTHENTICATED;
	case GROVE_EDENIED: return GRPC_STATUS_PERMISSION_DENIED;
	case GROVE_EUNAVAIL: return GRPC_STATUS_UNAVAILABLE;
	case GROVE_EPRECOND: return GRPC_STATUS_FAILED_PRECONDITION;
	case GROVE_ECANCELLED: return GRPC_STATUS_CANCELLED;
	case GROVE_ETIMEOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
	case GROVE_EPROTO: return GRPC_STATUS_INVALID_ARGUMENT;
	default: return GRPC_STATUS_INTERNAL;
	}
}

int rpc_err_from_status(grpc_status_code status)
{
	switch (status) {
	case GRPC_STATUS_OK: return GROVE_OK;
	case GRPC_STATUS_INVALID_ARGUMENT: return GROVE_EINVAL;
	case GRPC_STATUS_NOT_FOUND: return GROVE_ENOTFOUND;
	case GRPC_STATUS_ALREADY_EXISTS: return GROVE_EEXISTS;
	case GRPC_STATUS_RESOURCE_EXHAUSTED: return GROVE_ETOOBIG;
	case GRPC_STATUS_UNAUTHENTICATED: return GROVE_EAUTH;
	case GRPC_STATUS_PERMISSION_DENIED: return GROVE_EDENIED;
	case GRPC_STATUS_UNAVAILABLE: return GROVE_EUNAVAIL;
	case GRPC_STATUS_FAILED_PRECONDITION: return GROVE_EPRECOND;
	case GRPC_STATUS_ABORTED: return GROVE_EPRECOND;
	case GRPC_STATUS_CANCELLED: return GROVE_ECANCELLED;
	case GRPC_STATUS_DEADLINE_EXCEEDED: return GROVE_ETIMEOUT;
	default: return GROVE_EINTERNAL;
	}
}

const char *rpc_status_name(grpc_status_code status)
{
	static const char *names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};
	if ((unsigned)status < ARRAY_SIZE(names))
		return names[status];
	return "UNKNOWN";
}

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(len ? len : 1);
	protobuf_c_message_pack(m, buf);
	/* The slice takes the buffer: no second copy of a 128 KiB chunk. */
	grpc_slice slice = grpc_slice_new(buf, len, free);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

int rpc_bb_slice(grpc_byte_buffer *bb, grpc_slice *out)
{
	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return error_set(GROVE_EPROTO, "cannot read a message (bad compression?)");
	*out = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	return 0;
}

grpc_byte_buffer *rpc_bb_from(const void *data, size_t len)
{
	grpc_slice slice = grpc_slice_from_copied_buffer(data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

int rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	grpc_slice all;
	*out = NULL;
	if (rpc_bb_slice(bb, &all))
		return error_wrap(GROVE_EPROTO, "%s", d->name);
	if (pbcheck_strings(d, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all))) {
		grpc_slice_unref(all);
		return error_wrap(GROVE_EPROTO, "malformed %s message", d->name);
	}
	*out = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	if (!*out)
		return error_set(GROVE_EPROTO, "malformed %s message: it does not decode as protobuf", d->name);
	return 0;
}
