/*
 * The router's transactions as txn.c and packindex.c share them: one lock
 * and one condition for all (txn.c says why).
 */
#ifndef GROVE_CLUSTER_TXNPRIV_H
#define GROVE_CLUSTER_TXNPRIV_H

#include "cluster/cluster.h"

#include <openssl/sha.h>

#define TXN_ROUNDS_MAX 4096

enum round_state { ROUND_OPEN, ROUND_COMMITTED, ROUND_ABORTED };

struct round {
	enum round_state state;
	bool voted[CLUSTER_NODES_MAX];
	uint8_t vote[CLUSTER_NODES_MAX][SHA256_DIGEST_LENGTH];
	const char *why;        /* why it aborted */
};

struct voter {
	char node[65];
	int nvotes;             /* PREPARED votes cast */
	bool disagreed;         /* was told ABORT at least once */
	bool done;              /* its stream ended */
};

struct txn {
	uint64_t id;
	struct txn *next;
	int quorum;
	size_t n;
	struct voter v[CLUSTER_NODES_MAX];  /* v[0] is the primary */
	struct round *rounds;
	size_t nrounds;
	int refs;               /* handlers inside (votes, pack indexes) */
	bool ended;
	/* The primary's index of the push's pack (packindex.c). */
	char *pack_index;       /* NULL: none (yet) */
	size_t pack_index_len;  /* its size, counted in pack_index_bytes from the first message on */
	uint64_t pack_size;
	bool pack_index_said;   /* the primary began to share it, or was refused */
	bool pack_index_ready;  /* all of it is in */
};

struct txn_registry {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct txn *head;
	uint64_t next_id;
	size_t pack_index_bytes;  /* held by pack indexes: within cluster.packIndexTotal */
};

/* The transaction of id, if it is running. Under reg->mu. */
struct txn *txn_find_locked(struct txn_registry *reg, uint64_t id);
/* The index of node among t's voters, or t->n. */
size_t txn_voter(const struct txn *t, const char *node);
/* Frees what a pack index holds, when its transaction ends. Under reg->mu. */
void txn_pack_index_release(struct txn_registry *reg, struct txn *t);
/* PutPackIndex and GetPackIndex (packindex.c). */
void pack_index_register(struct rpc_server *srv, struct cluster *c);

#endif
