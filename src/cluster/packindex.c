/*
 * The primary's pack index, shared with the secondaries of its push
 * (docs/cluster.md, "secondaries do not index twice").
 *
 * Every replica of a push is sent the same pack. The primary's git indexes
 * it (object names with SHA-1 collision detection, objects checked): most
 * of a big push's CPU. Before it votes, its store sends the index here
 * (PutPackIndex); a secondary's git, the replica git built with
 * scripts/build-replica-git, asks for it (GetPackIndex, through its store)
 * instead of indexing the same bytes again, and uses it only if it is the
 * index of exactly the pack it received (the checks are git's, in the
 * patch). No replica moves a ref before the primary voted, which it does
 * only once its own checks passed: the guarantee stays the one the votes
 * give.
 *
 * The index is held in memory until the push's transaction ends: at most
 * cluster.maxPackIndex per push and cluster.packIndexTotal for all. A
 * bigger one is refused, and the secondaries index the pack themselves.
 */
#include "cluster/txnpriv.h"
#include "lib/error.h"
#include "lib/log.h"
#include "grove/v1/transaction.pb-c.h"

#define PACK_INDEX_CHUNK (512 * 1024)

/* Whether a secondary of t can stop waiting: the index is all in, or
 * none will be (refused, cut short, or the primary voted, ended, or the
 * write did without sharing one). Under reg->mu. */
static bool settled_locked(const struct txn *t)
{
	if (t->pack_index_ready || t->ended)
		return true;
	if (t->pack_index)
		return false;   /* coming in */
	return t->pack_index_said || t->v[0].done || (t->nrounds && t->rounds[0].voted[0]);
}

void txn_pack_index_release(struct txn_registry *reg, struct txn *t)
{
	if (!t->pack_index)
		return;
	reg->pack_index_bytes -= t->pack_index_len;
	free(t->pack_index);
	t->pack_index = NULL;
	t->pack_index_len = 0;
	t->pack_index_ready = false;
}

/* The transaction of the first message, its sender the primary, and room
 * for its index: t with a reference held, or NULL with why. Under reg->mu. */
static struct txn *put_claim(struct cluster *c, const Grove__V1__PackIndexChunk *m, char *why, size_t size)
{
	struct txn_registry *reg = c->txns;
	struct txn *t = txn_find_locked(reg, m->transaction_id);

	if (!t || t->ended || txn_voter(t, m->node) != 0 || t->pack_index_said) {
		snprintf(why, size, "transaction %llu has no primary %s that may share an index",
			 (unsigned long long)m->transaction_id, m->node ? m->node : "");
		return NULL;
	}
	/* Refused or not, nobody waits for another. */
	t->pack_index_said = true;
	pthread_cond_broadcast(&reg->cv);
	if (m->index_size > (uint64_t)c->max_pack_index ||
	    reg->pack_index_bytes + m->index_size > (uint64_t)c->pack_index_total) {
		snprintf(why, size, "an index of %llu bytes is over cluster.maxPackIndex or cluster.packIndexTotal",
			 (unsigned long long)m->index_size);
		return NULL;
	}
	t->pack_index_len = (size_t)m->index_size;
	reg->pack_index_bytes += t->pack_index_len;
	t->pack_index = xmalloc(t->pack_index_len ? t->pack_index_len : 1);
	t->pack_size = m->pack_size;
	t->refs++;
	return t;
}

/* The index, in order, up to its announced size. */
static int put_receive(struct rpc_call *call, struct txn *t, const Grove__V1__PackIndexChunk *first)
{
	const Grove__V1__PackIndexChunk *m = first;
	Grove__V1__PackIndexChunk *next = NULL;
	size_t have = 0, size = t->pack_index_len;
	int ret;

	for (;;) {
		if (m->data.len > size - have) {
			ret = error_set(GROVE_EINVAL, "the index is longer than the %zu bytes announced", size);
			break;
		}
		memcpy(t->pack_index + have, m->data.data, m->data.len);
		have += m->data.len;
		FREE_MSG(next);
		ret = rpc_call_recv(call, &grove__v1__pack_index_chunk__descriptor, (ProtobufCMessage **)&next);
		if (ret <= 0)
			break;
		m = next;
	}
	FREE_MSG(next);
	if (!ret && have != size)
		ret = error_set(GROVE_EINVAL, "the index ended after %zu of the %zu bytes announced", have, size);
	return ret;
}

static void put_pack_index(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	struct txn_registry *reg = c->txns;
	Grove__V1__PackIndexChunk *first = NULL;
	Grove__V1__PutPackIndexResponse resp = GROVE__V1__PUT_PACK_INDEX_RESPONSE__INIT;
	struct txn *t = NULL;
	char why[256] = "";
	int ret = rpc_call_recv(call, &grove__v1__pack_index_chunk__descriptor, (ProtobufCMessage **)&first);

	if (ret <= 0) {
		ret = ret ? ret : error_set(GROVE_EINVAL, "PutPackIndex needs at least one message");
		goto out;
	}
	pthread_mutex_lock(&reg->mu);
	t = put_claim(c, first, why, sizeof(why));
	pthread_mutex_unlock(&reg->mu);
	if (!t) {
		ret = error_set(GROVE_EPRECOND, "%s; the secondaries index the pack themselves", why);
		goto out;
	}
	ret = put_receive(call, t, first);
	pthread_mutex_lock(&reg->mu);
	if (ret)
		txn_pack_index_release(reg, t);
	else
		t->pack_index_ready = true;
	t->refs--;
	pthread_cond_broadcast(&reg->cv);
	pthread_mutex_unlock(&reg->mu);
out:
	log_info("cluster.pack_index_shared", "txn=%llu node=%s bytes=%llu ok=%b error=%s",
		 first ? (unsigned long long)first->transaction_id : 0ULL, first && first->node ? first->node : "",
		 first ? (unsigned long long)first->index_size : 0ULL, ret == 0, ret ? error_msg() : "");
	rpc_call_reply(call, ret, &resp.base);
	FREE_MSG(first);
}

/* Waits for t's index to be settled, up to the vote timeout: t with a
 * reference held if there is one to send, else NULL. Under reg->mu. */
static struct txn *get_wait(struct cluster *c, const Grove__V1__GetPackIndexRequest *req)
{
	struct txn_registry *reg = c->txns;
	struct timespec deadline;
	struct txn *t = txn_find_locked(reg, req->transaction_id);

	if (!t || txn_voter(t, req->node) == t->n)
		return NULL;
	t->refs++;
	deadline_after_ms(&deadline, CLOCK_MONOTONIC, c->vote_timeout_ms);
	while (!settled_locked(t))
		if (pthread_cond_timedwait(&reg->cv, &reg->mu, &deadline) == ETIMEDOUT)
			break;
	if (t->pack_index_ready && !t->ended)
		return t;
	t->refs--;
	pthread_cond_broadcast(&reg->cv);
	return NULL;
}

/* The index in chunks; the first names the sizes. It does not change once
 * ready, and the reference held keeps it. */
static int get_send(struct rpc_call *call, const struct txn *t)
{
	Grove__V1__PackIndexChunk m = GROVE__V1__PACK_INDEX_CHUNK__INIT;
	size_t at = 0;
	int ret = 0;

	m.pack_size = t->pack_size;
	m.index_size = t->pack_index_len;
	do {
		size_t n = MIN((size_t)PACK_INDEX_CHUNK, t->pack_index_len - at);
		m.data.data = (uint8_t *)t->pack_index + at;
		m.data.len = n;
		ret = rpc_call_send(call, &m.base);
		m.pack_size = m.index_size = 0;
		at += n;
	} while (!ret && at < t->pack_index_len);
	return ret;
}

static void get_pack_index(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	struct txn_registry *reg = c->txns;
	Grove__V1__GetPackIndexRequest *req = NULL;
	struct txn *t = NULL;
	int64_t start = now_ms();
	int ret = rpc_call_recv_one(call, &grove__v1__get_pack_index_request__descriptor, (ProtobufCMessage **)&req);

	if (ret)
		goto out;
	pthread_mutex_lock(&reg->mu);
	t = get_wait(c, req);
	pthread_mutex_unlock(&reg->mu);
	if (!t)
		goto out;
	ret = get_send(call, t);
	pthread_mutex_lock(&reg->mu);
	t->refs--;
	pthread_cond_broadcast(&reg->cv);
	pthread_mutex_unlock(&reg->mu);
out:
	if (req)
		log_info("cluster.pack_index_sent", "txn=%llu node=%s sent=%b waited_ms=%lld",
			 (unsigned long long)req->transaction_id, req->node ? req->node : "", t != NULL && !ret,
			 (long long)(now_ms() - start));
	rpc_call_done(call, ret);
	FREE_MSG(req);
}

void pack_index_register(struct rpc_server *srv, struct cluster *c)
{
	rpc_server_handle(srv, "/grove.v1.TransactionService/PutPackIndex", put_pack_index, c);
	rpc_server_handle(srv, "/grove.v1.TransactionService/GetPackIndex", get_pack_index, c);
}
