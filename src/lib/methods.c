/* Lookups in the generated method table: see methods.h. */
#include "lib/common.h"
#include "lib/methods.h"

const struct rpc_method_info *rpc_method_find(const char *path)
{
	for (const struct rpc_method_info *m = rpc_methods; m->path; m++)
		if (!strcmp(m->path, path))
			return m;
	return NULL;
}

const char *rpc_kind_name(enum rpc_kind kind)
{
	switch (kind) {
	case RPC_KIND_ACCESSOR: return "accessor";
	case RPC_KIND_MUTATOR: return "mutator";
	case RPC_KIND_MAINTENANCE: return "maintenance";
	case RPC_KIND_INTERNAL: return "internal";
	default: return "none";
	}
}
