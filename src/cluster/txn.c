/*
 * Vote-committed writes: TransactionService and the transactions the router
 * opens for each write.
 *
 * Each store of a write runs the same git command on the same bytes; git's
 * reference-transaction hook makes each store vote the SHA-256 of the ref
 * updates it is about to make before it makes them. git may open several
 * reference transactions in one command (receive-pack opens one per ref
 * unless the push is atomic), so a transaction has rounds: a store's k-th
 * vote belongs to round k. A round commits when the primary voted and a
 * quorum (a majority of the repository's assigned replicas, the primary
 * among them) voted the same hash; it aborts when the primary ends without
 * voting, when too few stores are left to reach the quorum, or when the
 * vote timeout passes. A store whose vote is not the winner is told ABORT:
 * its git makes no change, and the router marks it outdated.
 *
 * All transactions share one lock and one condition: votes are few and
 * short, and one broadcast wakes every waiter to re-check its own round.
 */
#include "cluster/cluster.h"
#include "cluster/txnpriv.h"
#include "lib/error.h"
#include "lib/log.h"
#include "grove/v1/transaction.pb-c.h"

#include <time.h>

int txn_registry_new(struct txn_registry **out)
{
	struct txn_registry *reg = xcalloc(1, sizeof(*reg));
	struct timespec ts;
	pthread_mutex_init(&reg->mu, NULL);
	cond_init_monotonic(&reg->cv);
	/* Ids unique across restarts of this router: a store that still votes
	 * for a transaction of a router that died is told it does not exist. */
	clock_gettime(CLOCK_REALTIME, &ts);
	reg->next_id = ((uint64_t)ts.tv_sec << 20) | ((uint64_t)ts.tv_nsec >> 10 & 0xfffff);
	*out = reg;
	return 0;
}

void txn_registry_free(struct txn_registry *reg)
{
	if (!reg)
		return;
	pthread_mutex_destroy(&reg->mu);
	pthread_cond_destroy(&reg->cv);
	free(reg);
}

struct txn *txn_begin(struct cluster *c, char *const *voters, size_t n, int quorum)
{
	struct txn_registry *reg = c->txns;
	struct txn *t = xcalloc(1, sizeof(*t));
	t->quorum = quorum;
	t->n = MIN(n, (size_t)CLUSTER_NODES_MAX);
	for (size_t i = 0; i < t->n; i++)
		strlcpy_(t->v[i].node, voters[i], sizeof(t->v[i].node));
	pthread_mutex_lock(&reg->mu);
	t->id = ++reg->next_id;
	t->next = reg->head;
	reg->head = t;
	pthread_mutex_unlock(&reg->mu);
	return t;
}

struct txn *txn_find_locked(struct txn_registry *reg, uint64_t id)
{
	struct txn *t = reg->head;
	while (t && t->id != id)
		t = t->next;
	return t;
}

size_t txn_voter(const struct txn *t, const char *node)
{
	size_t i = 0;
	while (i < t->n && strcmp(t->v[i].node, node ? node : ""))
		i++;
	return i;
}

uint64_t txn_id(const struct txn *t)
{
	return t->id;
}

/* Decides round r if it can be decided now. Under reg->mu. */
static void round_eval(struct txn *t, size_t r)
{
	struct round *rd = &t->rounds[r];
	int agree = 0, could = 0;

	if (rd->state != ROUND_OPEN)
		return;
	if (!rd->voted[0]) {
		if (t->v[0].done || t->ended) {
			rd->state = ROUND_ABORTED;
			rd->why = "the write was not made on the primary replica";
		}
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (rd->voted[i] && !memcmp(rd->vote[i], rd->vote[0], SHA256_DIGEST_LENGTH))
			agree++;
		else if (!rd->voted[i] && !t->v[i].done && !t->ended)
			could++;
	}
	if (agree >= t->quorum) {
		rd->state = ROUND_COMMITTED;
	} else if (agree + could < t->quorum) {
		rd->state = ROUND_ABORTED;
		rd->why = "too few replicas made the same ref updates as the primary";
	}
}

static void eval_all(struct txn *t)
{
	for (size_t r = 0; r < t->nrounds; r++)
		round_eval(t, r);
}

void txn_node_done(struct cluster *c, struct txn *t, const char *node, bool ok)
{
	struct txn_registry *reg = c->txns;
	pthread_mutex_lock(&reg->mu);
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].node, node))
			t->v[i].done = true;
	eval_all(t);
	pthread_cond_broadcast(&reg->cv);
	pthread_mutex_unlock(&reg->mu);
}

bool txn_node_agreed(struct cluster *c, struct txn *t, const char *node, int *rounds)
{
	struct txn_registry *reg = c->txns;
	bool agreed = false;
	int committed = 0;
	pthread_mutex_lock(&reg->mu);
	for (size_t r = 0; r < t->nrounds; r++)
		committed += t->rounds[r].state == ROUND_COMMITTED;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].node, node))
			continue;
		agreed = !t->v[i].disagreed;
		for (size_t r = 0; r < t->nrounds && agreed; r++)
			if (t->rounds[r].state == ROUND_COMMITTED &&
			    (!t->rounds[r].voted[i] || memcmp(t->rounds[r].vote[i], t->rounds[r].vote[0], SHA256_DIGEST_LENGTH)))
				agreed = false;
	}
	pthread_mutex_unlock(&reg->mu);
	if (rounds)
		*rounds = committed;
	return agreed;
}

void txn_end(struct cluster *c, struct txn *t)
{
	struct txn_registry *reg = c->txns;
	if (!t)
		return;
	pthread_mutex_lock(&reg->mu);
	t->ended = true;
	eval_all(t);
	pthread_cond_broadcast(&reg->cv);
	while (t->refs > 0)
		pthread_cond_wait(&reg->cv, &reg->mu);
	for (struct txn **p = &reg->head; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	txn_pack_index_release(reg, t);
	pthread_mutex_unlock(&reg->mu);
	free(t->rounds);
	free(t);
}

/* ---- TransactionService ---- */

static void vote_transaction(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	struct txn_registry *reg = c->txns;
	Grove__V1__VoteTransactionRequest *req = NULL;
	Grove__V1__VoteTransactionResponse resp = GROVE__V1__VOTE_TRANSACTION_RESPONSE__INIT;
	struct txn *t = NULL;
	struct timespec deadline;
	char msg[256] = "";
	size_t vi = 0, r = 0;
	bool commit = false;
	int ret;

	ret = rpc_call_recv_one(call, &grove__v1__vote_transaction_request__descriptor, (ProtobufCMessage **)&req);
	if (ret)
		goto reply;
	if (req->vote.len != SHA256_DIGEST_LENGTH) {
		ret = error_set(GROVE_EINVAL, "a vote is a SHA-256 hash of 32 bytes, not %zu", req->vote.len);
		goto reply;
	}
	deadline_after_ms(&deadline, CLOCK_MONOTONIC, c->vote_timeout_ms);

	pthread_mutex_lock(&reg->mu);
	t = txn_find_locked(reg, req->transaction_id);
	if (t)
		vi = txn_voter(t, req->node);
	if (!t || vi == t->n || t->ended) {
		snprintf(msg, sizeof(msg), "transaction %llu has no voter %s (the write ended, or the router restarted)",
			 (unsigned long long)req->transaction_id, req->node ? req->node : "");
		t = NULL;
		goto unlock;
	}
	if (req->phase != GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__PREPARED) {
		/* git ignores the answer after the fact; nothing to decide. */
		commit = true;
		goto unlock;
	}
	t->refs++;
	r = (size_t)t->v[vi].nvotes++;
	if (r >= TXN_ROUNDS_MAX) {
		snprintf(msg, sizeof(msg), "more than %d reference transactions in one write", TXN_ROUNDS_MAX);
		t->v[vi].disagreed = true;
		goto release;
	}
	if (r >= t->nrounds) {
		t->rounds = xrealloc(t->rounds, (r + 1) * sizeof(*t->rounds));
		memset(&t->rounds[t->nrounds], 0, (r + 1 - t->nrounds) * sizeof(*t->rounds));
		t->nrounds = r + 1;
	}
	t->rounds[r].voted[vi] = true;
	memcpy(t->rounds[r].vote[vi], req->vote.data, SHA256_DIGEST_LENGTH);
	eval_all(t);
	pthread_cond_broadcast(&reg->cv);
	while (t->rounds[r].state == ROUND_OPEN) {
		if (pthread_cond_timedwait(&reg->cv, &reg->mu, &deadline) == ETIMEDOUT && t->rounds[r].state == ROUND_OPEN) {
			t->rounds[r].state = ROUND_ABORTED;
			t->rounds[r].why = "the other replicas did not vote in time";
			pthread_cond_broadcast(&reg->cv);
		}
	}
	commit = t->rounds[r].state == ROUND_COMMITTED &&
		 !memcmp(t->rounds[r].vote[vi], t->rounds[r].vote[0], SHA256_DIGEST_LENGTH);
	if (!commit) {
		t->v[vi].disagreed = true;
		snprintf(msg, sizeof(msg), "%s",
			 t->rounds[r].state == ROUND_ABORTED ? t->rounds[r].why
							     : "this replica's ref updates differ from the primary's");
	}
release:
	t->refs--;
	pthread_cond_broadcast(&reg->cv);
unlock:
	pthread_mutex_unlock(&reg->mu);
	if (req->phase == GROVE__V1__VOTE_TRANSACTION_REQUEST__PHASE__PREPARED) {
		pthread_mutex_lock(&c->mu);
		if (commit)
			c->m.votes_committed++;
		else
			c->m.votes_aborted++;
		pthread_mutex_unlock(&c->mu);
		log_info("cluster.vote", "txn=%llu node=%s round=%zu commit=%b reason=%s",
			 (unsigned long long)req->transaction_id, req->node, r, commit, msg);
	}
	resp.outcome = commit ? GROVE__V1__VOTE_TRANSACTION_RESPONSE__OUTCOME__COMMIT
			      : GROVE__V1__VOTE_TRANSACTION_RESPONSE__OUTCOME__ABORT;
	resp.message = msg;
reply:
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(req);
}

void txn_register(struct rpc_server *srv, struct cluster *c)
{
	static const char *const methods[] = { "/grove.v1.TransactionService/VoteTransaction",
					       "/grove.v1.TransactionService/PutPackIndex",
					       "/grove.v1.TransactionService/GetPackIndex" };
	rpc_server_handle(srv, methods[0], vote_transaction, c);
	pack_index_register(srv, c);
	/* Stores call with their own secrets. */
	for (size_t i = 0; i < c->nnodes; i++)
		for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
			if (strcmp(c->nodes[i].secret, c->secret))
				rpc_server_allow_secret(srv, methods[m], c->nodes[i].secret);
}
