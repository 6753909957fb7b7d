/*
 * grove.v1.ServerService on a store: what it says of itself (server.proto),
 * for the cluster router's status.
 */
#include "store/store.h"
#include "lib/error.h"
#include "lib/version.h"
#include "grove/v1/server.pb-c.h"

#include <sys/statvfs.h>

static void server_info(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__ServerInfoRequest *req = NULL;
	Grove__V1__ServerInfoResponse resp = GROVE__V1__SERVER_INFO_RESPONSE__INIT;
	struct statvfs vfs;
	int ret = rpc_call_recv_one(call, &grove__v1__server_info_request__descriptor, (ProtobufCMessage **)&req);

	resp.version = (char *)grove_version();
	resp.storage = st->name;
	if (!statvfs(st->root, &vfs)) {
		resp.disk_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		resp.disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	}
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
}

void store_register_server_service(struct rpc_server *srv, struct store *st)
{
	rpc_server_handle(srv, "/grove.v1.ServerService/ServerInfo", server_info, st);
}
