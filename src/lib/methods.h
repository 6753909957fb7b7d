/*
 * Every RPC of proto/ with its declared kind and streaming shape; the table
 * is generated from the .proto files by scripts/gen-methods.awk, so a router
 * can route any method — also one added later — by its path alone.
 */
#ifndef GROVE_METHODS_H
#define GROVE_METHODS_H

enum rpc_kind {
	RPC_KIND_NONE = 0,
	RPC_KIND_ACCESSOR,
	RPC_KIND_MUTATOR,
	RPC_KIND_MAINTENANCE,
	RPC_KIND_INTERNAL,      /* between Grove's parts: never routed */
};

struct rpc_method_info {
	const char *path;        /* "/grove.v1.RepositoryService/CreateRepository" */
	enum rpc_kind kind;
	int client_streaming;
	int server_streaming;
};

/* Terminated by an entry whose path is NULL. */
extern const struct rpc_method_info rpc_methods[];

/* The entry for path, or NULL. */
const struct rpc_method_info *rpc_method_find(const char *path);
const char *rpc_kind_name(enum rpc_kind kind);

#endif
