/*
 * The pack index a push's primary shares with its secondaries, the store's
 * two ends (the router's, and why: cluster/packindex.c).
 *
 * The primary's pre-receive sends the router the index its git made of the
 * push's pack, found in the push's quarantine, before it votes. A
 * secondary's git (the replica git, patched by scripts/build-replica-git)
 * runs `grove-hook pack-index` when its receive-pack starts index-pack;
 * that reaches store_pack_index_serve over the hook wire, which asks the
 * router and relays the answer: "PACKSIZE IDXSIZE\n" and the index, or
 * "none\n". git checks it against the bytes it received and indexes the
 * pack itself on any doubt, so nothing here can make a replica hold a
 * pack it cannot read.
 */
#include "store/store.h"
#include "lib/error.h"
#include "lib/hookpayload.h"
#include "lib/hookwire.h"
#include "lib/log.h"
#include "grove/v1/transaction.pb-c.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#define PACK_INDEX_CHUNK (512 * 1024)
/* Sharing waits for the router to take the index; asking, for the primary
 * to share it (the router gives up after cluster.voteTimeout). */
#define PACK_INDEX_CALL_MS (TXN_VOTE_TIMEOUT_MS + 30000)

/* The push's quarantine (GIT_QUARANTINE_PATH, which git gives pre-receive),
 * if it lies inside the repository at repo. */
static const char *quarantine_dir(const Grove__V1__HookRequest *first, const char *repo)
{
	const char *v;

	for (size_t i = 0; i < first->n_git_env; i++)
		if (skip_prefix(first->git_env[i], "GIT_QUARANTINE_PATH=", &v))
			return store_path_inside(v, repo) ? v : NULL;
	return NULL;
}

/* The pack's index in the quarantine dir q, when the push brought exactly
 * one pack (git unpacks a small push into loose objects: none). */
static int quarantine_index(const char *q, struct strbuf *idx, uint64_t *pack_size)
{
	char dir[4200], pack[4300];
	struct dirent *e;
	struct stat sb;
	int found = 0, ret;
	DIR *d;

	if ((ret = fs_pathf(dir, sizeof(dir), "%s/pack", q)))
		return ret;
	if (!(d = opendir(dir)))
		return error_set(GROVE_ENOTFOUND, "no pack in the push's quarantine");
	while ((e = readdir(d)))
		if (strlen(e->d_name) > 4 && !strcmp(e->d_name + strlen(e->d_name) - 4, ".idx") && !found++) {
			strbuf_reset(idx);
			strbuf_addf(idx, "%s/%s", dir, e->d_name);
		}
	closedir(d);
	if (found != 1)
		return error_set(GROVE_ENOTFOUND, "%d packs in the push's quarantine", found);
	if ((ret = fs_pathf(pack, sizeof(pack), "%.*s.pack", (int)idx->len - 4, idx->buf)))
		return ret;
	if (stat(pack, &sb))
		return error_set(GROVE_EIO, "the push's pack: %s", strerror(errno));
	*pack_size = (uint64_t)sb.st_size;
	return 0;
}

/* Sends the index in fd (size bytes) as PutPackIndex messages. */
static int share_send(struct rpc_stream *s, const Grove__V1__HookPayload *p, int fd, uint64_t size, uint64_t pack_size)
{
	Grove__V1__PackIndexChunk m = GROVE__V1__PACK_INDEX_CHUNK__INIT;
	uint8_t *buf = xmalloc(PACK_INDEX_CHUNK);
	uint64_t sent = 0;
	int ret = 0;

	m.transaction_id = p->transaction_id;
	m.node = p->node;
	m.pack_size = pack_size;
	m.index_size = size;
	do {
		ssize_t n = read(fd, buf, (size_t)MIN((uint64_t)PACK_INDEX_CHUNK, size - sent));
		if (n <= 0) {
			ret = error_set(GROVE_EIO, "reading the index: %s", n ? strerror(errno) : "it is shorter than it was");
			break;
		}
		m.data.data = buf;
		m.data.len = (size_t)n;
		ret = rpc_stream_send(s, &m.base);
		m = (Grove__V1__PackIndexChunk)GROVE__V1__PACK_INDEX_CHUNK__INIT;
		sent += (uint64_t)n;
	} while (!ret && sent < size);
	free(buf);
	return ret;
}

/* The index of the pack in quarantine q, to the router of payload p. */
static int share(struct store *st, const Grove__V1__HookPayload *p, const char *q, uint64_t *bytes)
{
	Grove__V1__PutPackIndexResponse *resp = NULL;
	struct strbuf idx = STRBUF_INIT;
	struct rpc_client *cl = NULL;
	struct rpc_stream *s = NULL;
	uint64_t pack_size = 0;
	struct stat sb;
	int fd = -1, ret;

	if ((ret = quarantine_index(q, &idx, &pack_size)))
		goto out;
	if ((fd = open(idx.buf, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb)) {
		ret = error_set(GROVE_EIO, "the push's pack index: %s", strerror(errno));
		goto out;
	}
	*bytes = (uint64_t)sb.st_size;
	if ((ret = rpc_client_new(&cl, p->transaction_address, st->secret)))
		goto out;
	rpc_client_set_wait_for_ready(cl, true);
	if ((ret = rpc_stream_open(cl, "/grove.v1.TransactionService/PutPackIndex", PACK_INDEX_CALL_MS, &s)) ||
	    (ret = share_send(s, p, fd, *bytes, pack_size)) || (ret = rpc_stream_close_send(s)))
		goto out;
	/* The status says whether the router took it; the empty answer, nothing. */
	rpc_stream_recv(s, &grove__v1__put_pack_index_response__descriptor, (ProtobufCMessage **)&resp);
	ret = rpc_stream_finish(s);
out:
	FREE_MSG(resp);
	if (s)
		rpc_stream_free(s);
	rpc_client_free(cl);
	if (fd >= 0)
		close(fd);
	strbuf_release(&idx);
	return ret;
}

void store_pack_index_share(struct store *st, const struct hook_run *h)
{
	const Grove__V1__HookPayload *p = h->first->payload;
	struct strbuf repo = STRBUF_INIT;
	const char *q = NULL;
	uint64_t bytes = 0;
	int64_t start = now_ms();
	int ret;

	if (p->secondary || !p->transaction_address || !*p->transaction_address)
		return;
	if (!store_repo_path(st, p->repository, true, &repo))
		q = quarantine_dir(h->first, repo.buf);
	ret = q ? share(st, p, q, &bytes) : error_set(GROVE_ENOTFOUND, "no quarantine inside the repository");
	if (!ret)
		log_info("txn.pack_index_shared", "txn=%llu repo=%s bytes=%llu ms=%lld", (unsigned long long)p->transaction_id,
			 p->repository->relative_path, (unsigned long long)bytes, (long long)(now_ms() - start));
	else if (ret != GROVE_ENOTFOUND)
		/* The secondaries index the pack themselves: slower, not wrong. */
		log_warn("txn.pack_index_not_shared", "txn=%llu repo=%s error=%s", (unsigned long long)p->transaction_id,
			 p->repository->relative_path, error_msg());
	strbuf_release(&repo);
}

/* Passes len bytes of the index on in frames the hook can take. */
static int say_index(int (*say)(void *, const char *, size_t, bool), void *sink, const uint8_t *data, size_t len)
{
	for (size_t at = 0, n; at < len; at += n) {
		n = MIN(len - at, (size_t)(HOOKWIRE_ANSWER_MAX - HOOKWIRE_HEAD));
		if (say(sink, (const char *)data + at, n, false))
			return -1;
	}
	return 0;
}

/* Relays the router's answer: the header line, then the index as it comes
 * (in the router's chunks, split again if one is larger than a frame). */
static int serve_relay(struct rpc_stream *s, int (*say)(void *, const char *, size_t, bool), void *sink,
		       uint64_t *bytes, bool *none)
{
	Grove__V1__PackIndexChunk *m = NULL;
	uint64_t want = 0;
	char head[64];
	int r;

	*none = true;
	while ((r = rpc_stream_recv(s, &grove__v1__pack_index_chunk__descriptor, (ProtobufCMessage **)&m)) == 1) {
		int gone = 0;
		if (*none) {
			*none = false;
			want = m->index_size;
			snprintf(head, sizeof(head), "%llu %llu\n", (unsigned long long)m->pack_size,
				 (unsigned long long)m->index_size);
			gone = say(sink, head, strlen(head), false);
		}
		if (!gone)
			gone = say_index(say, sink, m->data.data, m->data.len);
		*bytes += m->data.len;
		FREE_MSG(m);
		if (gone)
			return error_set(GROVE_EIO, "git went before the index was sent");
	}
	if (r < 0)
		return r;
	if (!*none && *bytes != want)
		return error_set(GROVE_EPROTO, "the router sent %llu of the index's %llu bytes", (unsigned long long)*bytes,
				 (unsigned long long)want);
	return 0;
}

int store_pack_index_serve(struct store *st, const Grove__V1__HookPayload *p,
			   int (*say)(void *, const char *, size_t, bool), void *sink)
{
	Grove__V1__GetPackIndexRequest req = GROVE__V1__GET_PACK_INDEX_REQUEST__INIT;
	struct rpc_client *cl = NULL;
	struct rpc_stream *s = NULL;
	uint64_t bytes = 0;
	int64_t start = now_ms();
	bool none = true;
	int ret = 0;

	if (!p->secondary || !p->transaction_address || !*p->transaction_address)
		goto out;
	req.transaction_id = p->transaction_id;
	req.node = p->node;
	if ((ret = rpc_client_new(&cl, p->transaction_address, st->secret)))
		goto out;
	rpc_client_set_wait_for_ready(cl, true);
	if ((ret = rpc_stream_open(cl, "/grove.v1.TransactionService/GetPackIndex", PACK_INDEX_CALL_MS, &s)) ||
	    (ret = rpc_stream_send(s, &req.base)) || (ret = rpc_stream_close_send(s)))
		goto out;
	if ((ret = serve_relay(s, say, sink, &bytes, &none)))
		rpc_stream_cancel(s);
	else
		ret = rpc_stream_finish(s);
out:
	if (ret)
		log_warn("txn.pack_index_failed", "txn=%llu error=%s", (unsigned long long)p->transaction_id, error_msg());
	else
		log_info("txn.pack_index_taken", "txn=%llu repo=%s bytes=%llu none=%b waited_ms=%lld",
			 (unsigned long long)p->transaction_id, p->repository ? p->repository->relative_path : "",
			 (unsigned long long)bytes, none, (long long)(now_ms() - start));
	if (!ret && none)
		ret = say(sink, "none\n", 5, false) ? GROVE_EIO : 0;
	if (s)
		rpc_stream_free(s);
	rpc_client_free(cl);
	return ret;
}

int store_pack_index_outcome(struct store *st, const Grove__V1__HookPayload *p, const char *what, size_t len)
{
	bool took = len == 4 && !memcmp(what, "took", 4);

	if (took)
		st->pack_index_took++;
	else
		st->pack_index_indexed++;
	log_info("txn.pack_index_used", "txn=%llu repo=%s took=%b outcome=%.*s", (unsigned long long)p->transaction_id,
		 p->repository ? p->repository->relative_path : "", took, (int)MIN(len, (size_t)200), what);
	return 0;
}
