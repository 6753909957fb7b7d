/*
 * libFuzzer target for src/lib/pbcheck.c, which walks every gRPC request's
 * encoded bytes before protobuf-c decodes them. Whatever the bytes, it must
 * terminate without reading out of bounds; when it accepts a message that
 * protobuf-c also decodes, no string field of the decoded message may be
 * shorter than on the wire (which is what a NUL would cause).
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/pbcheck.h"
#include "grove/v1/repository.pb-c.h"
#include "grove/v1/ssh.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *descs[] = {
		&grove__v1__create_repository_request__descriptor,
		&grove__v1__replicate_repository_request__descriptor,
		&grove__v1__sshrequest__descriptor,
	};
	for (size_t i = 0; i < ARRAY_SIZE(descs); i++) {
		if (pbcheck_strings(descs[i], data, size))
			continue;
		ProtobufCMessage *m = protobuf_c_message_unpack(descs[i], NULL, size, data);
		if (!m)
			continue;
		/* Re-encoding drops unknown and repeated-scalar quirks but never
		 * makes a message longer than its strings allow: a string cut at a
		 * NUL would shrink it below what pbcheck accepted. */
		if (descs[i] == &grove__v1__create_repository_request__descriptor) {
			Grove__V1__CreateRepositoryRequest *r = (Grove__V1__CreateRepositoryRequest *)m;
			if (r->repository && r->repository->relative_path &&
			    memchr(r->repository->relative_path, '\0', strlen(r->repository->relative_path) + 1) !=
				    r->repository->relative_path + strlen(r->repository->relative_path))
				abort();
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}
