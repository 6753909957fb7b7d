/*
 * The router: every routable grove.v1 RPC, by the kind its proto declares
 * (lib/methods.h), reading only the first request message to find the
 * repository (field 1, proto/README.md). Messages pass through as bytes;
 * only field 1 is rewritten with each store's storage name.
 *
 * A call is relayed by a proxy with one target per store it goes to. Each
 * target has a sender thread with a bounded queue (the client's messages,
 * fanned out) and a reader thread (the store's answers: the primary's go to
 * the client, the others' are drained). A secondary that falls a whole queue
 * behind for lagTimeout is dropped from the write, so one slow store cannot
 * stall a push; the primary is the push, and the client waits for it.
 */
#include "cluster/cluster.h"
#include "cluster/resume.h"
#include "lib/error.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/methods.h"
#include "lib/pbcheck.h"
#include "lib/pbwire.h"
#include "lib/repopath.h"
#include "lib/sshstream.h"
#include "grove/v1/shared.pb-c.h"

#include <assert.h>
#include <time.h>

#define TARGET_QUEUE_MAX 32           /* messages */
#define TARGET_QUEUE_BYTES (4 << 20)  /* and bytes: 4 messages of RPC_STDIN_MAX, 32 of RPC_CHUNK_MAX */

struct target {
	struct proxy *px;
	struct node *node;
	bool primary;
	struct rpc_stream *st;
	pthread_t sender, reader;
	bool sender_started, reader_started;

	/* Guarded by px->mu. */
	pthread_cond_t wake;     /* the sender's alone: q got a message, or anything proxy_wake says */
	grpc_byte_buffer *q[TARGET_QUEUE_MAX];
	size_t qhead, qlen, qbytes;
	bool sent_first;         /* q's first message went: the kept ones follow */
	size_t replay_next, replay_to;   /* the client's kept messages it is sent before q's (resume.h) */
	bool closing;            /* the client ended its stream */
	bool dropped;            /* cancelled: lagging, or the client went away */
	bool finished;           /* the reader has the store's status */
	bool answered;           /* the store sent a first message */
	bool cancelled_here;     /* this router cancelled its call (target_drop) */

	grpc_status_code code;
	char details[1024];
	int64_t responses;
	char checksum[65];       /* a voted push's refs_checksum, "" if none */
	bool said_exit;          /* it sent the command's exit status: its answer is whole */
	bool trailing;           /* beyond the push's quorum: its git yields the CPU (TRAILING_METADATA_KEY) */
	bool late;               /* still running when the client was answered (proxy_end_late) */
};

struct proxy {
	struct cluster *c;
	struct rpc_call *call;
	const struct rpc_method_info *info;
	struct txn *txn;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct target t[CLUSTER_NODES_MAX];
	size_t n;
	bool client_gone;
	bool client_first;       /* smart HTTP's receive-pack: the client speaks first (stateless_rpc) */
	int64_t relayed;         /* messages sent to the client */
	pthread_t client_reader;
	bool client_reader_started;
	bool client_done;        /* the client ended its stream */
	bool fanning;            /* the client reader hands a message to the targets */
	bool retargeting;        /* the targets change: the client reader waits */
	bool resumable;          /* a voted push, or a read: kept for resuming (resume.h) */
	bool read;               /* an accessor: goes to another replica if its store fails before a word */
	bool ssh;                /* an SSHService call: its answer ends with git's exit status */
	bool resume_failed;      /* the new primary showed other refs */
	int quorum;              /* a voted push's: replicas that must take it, the primary among them */
	struct resume rs;
};

/* ---- the first message ---- */

/* Finds and checks the repository in the first message's bytes. */
static int first_repository(struct cluster *c, const grpc_slice *first, Grove__V1__Repository **out)
{
	const uint8_t *val;
	size_t vlen;
	int ret = pbwire_find(GRPC_SLICE_START_PTR(*first), GRPC_SLICE_LENGTH(*first), 1, &val, &vlen);

	*out = NULL;
	if (ret < 0)
		return error_wrap(GROVE_EINVAL, "malformed request");
	if (ret == 0)
		return error_set(GROVE_EINVAL, "the request names no repository (field 1): nothing to route");
	if (pbcheck_strings(&grove__v1__repository__descriptor, val, vlen))
		return error_wrap(GROVE_EINVAL, "malformed repository in the request");
	*out = grove__v1__repository__unpack(NULL, vlen, val);
	if (!*out)
		return error_set(GROVE_EINVAL, "the request's repository does not decode as grove.v1.Repository");
	if (!(*out)->storage_name || strcmp((*out)->storage_name, c->virtual_storage)) {
		ret = error_set(GROVE_ENOTFOUND, "storage \"%.64s\" is not served here: this cluster serves \"%s\"",
				(*out)->storage_name ? (*out)->storage_name : "", c->virtual_storage);
		goto fail;
	}
	if ((ret = repopath_validate((*out)->relative_path)))
		goto fail;
	return 0;
fail:
	FREE_MSG(*out);
	*out = NULL;
	return ret;
}

/* SSHRequest.stateless_rpc (field 6) is set: one request of smart HTTP,
 * where the client speaks first, even to receive-pack. */
static bool first_is_stateless(const grpc_slice *first)
{
	struct pbwire_field f;
	size_t pos = 0;
	bool set = false;
	while (pbwire_next(GRPC_SLICE_START_PTR(*first), GRPC_SLICE_LENGTH(*first), &pos, &f) == 1)
		if (f.num == 6 && f.type == 0)
			set = f.varint != 0;
	return set;
}

/* The first message for one store: field 1 names the store's storage. */
static grpc_byte_buffer *first_for(const grpc_slice *first, const struct node *n, const char *path)
{
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	struct strbuf out = STRBUF_INIT;
	uint8_t *packed;
	size_t len;
	grpc_byte_buffer *bb = NULL;

	repo.storage_name = n->storage;
	repo.relative_path = (char *)path;
	len = grove__v1__repository__get_packed_size(&repo);
	packed = xmalloc(len ? len : 1);
	grove__v1__repository__pack(&repo, packed);
	if (!pbwire_replace(GRPC_SLICE_START_PTR(*first), GRPC_SLICE_LENGTH(*first), 1, packed, len, &out))
		bb = rpc_bb_from(out.buf, out.len);
	free(packed);
	strbuf_release(&out);
	return bb;
}

/* ---- targets ---- */

/* Wakes whoever waits on the proxy: its cv, and every sender (each waits
 * on its own, so that a message queued for one wakes no other). Under
 * px->mu. */
static void proxy_wake(struct proxy *px)
{
	pthread_cond_broadcast(&px->cv);
	for (size_t i = 0; i < px->n; i++)
		pthread_cond_broadcast(&px->t[i].wake);
}

static bool is_method(const struct rpc_method_info *info, const char *name)
{
	const char *slash = strrchr(info->path, '/');
	return slash && !strcmp(slash + 1, name);
}


/* Whether t's queue takes no more now. Under px->mu. */
static bool target_full(const struct target *t)
{
	return t->qlen == TARGET_QUEUE_MAX || t->qbytes >= TARGET_QUEUE_BYTES;
}

/*
 * Sends bb to t's store: a client's stdin in messages larger than the store
 * takes (one of an earlier release: rpc_stream_stdin_max) goes in pieces.
 */
static int target_send(struct target *t, grpc_byte_buffer *bb)
{
	grpc_byte_buffer **parts;
	size_t n = t->px->ssh ? ssh_request_split(bb, rpc_stream_stdin_max(t->st), &parts) : 0;
	int ret = 0;

	if (!n)
		return rpc_stream_send_bb(t->st, bb);
	for (size_t i = 0; i < n; i++) {
		if (!ret)
			ret = rpc_stream_send_bb(t->st, parts[i]);
		grpc_byte_buffer_destroy(parts[i]);
	}
	free(parts);
	return ret;
}

static void *sender_main(void *arg)
{
	struct target *t = arg;
	struct proxy *px = t->px;
	for (;;) {
		grpc_byte_buffer *bb = NULL;
		pthread_mutex_lock(&px->mu);
		while (!t->qlen && t->replay_next == t->replay_to && !t->closing && !t->dropped)
			pthread_cond_wait(&t->wake, &px->mu);
		if (t->dropped) {
			/* nothing more */
		} else if (t->sent_first && t->replay_next < t->replay_to) {
			bb = grpc_byte_buffer_copy(px->rs.in[t->replay_next++]);
		} else if (t->qlen) {
			bool was_full = target_full(t);
			bb = t->q[t->qhead];
			t->qhead = (t->qhead + 1) % TARGET_QUEUE_MAX;
			t->qlen--;
			t->qbytes -= grpc_byte_buffer_length(bb);
			/* Only the client reader waits for room, on a full queue. */
			if (was_full)
				pthread_cond_broadcast(&px->cv);
			t->sent_first = true;
		}
		bool done = !bb;
		pthread_mutex_unlock(&px->mu);
		if (done)
			break;
		int ret = target_send(t, bb);
		grpc_byte_buffer_destroy(bb);
		if (ret)
			break;   /* the store ended the call: its reader gets the status */
	}
	pthread_mutex_lock(&px->mu);
	bool half_close = t->closing && !t->dropped;
	pthread_mutex_unlock(&px->mu);
	if (half_close)
		rpc_stream_close_send(t->st);
	return NULL;
}

/* The last message of an SSH command is small and its own: the exit
 * status and, for a voted push, the refs' checksum (ssh.proto); looked at
 * before it is relayed (sending takes its bytes). */
static void target_note_end(struct target *t, grpc_byte_buffer *bb, bool voted_push)
{
	grpc_slice sl;
	const uint8_t *val;
	size_t vlen;

	if (grpc_byte_buffer_length(bb) > 256 || rpc_bb_slice(bb, &sl))
		return;
	if (pbwire_find(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), SSH_RESPONSE_EXIT, &val, &vlen) == 1)
		t->said_exit = true;
	if (voted_push &&
	    pbwire_find(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), SSH_RESPONSE_REFS_CHECKSUM, &val, &vlen) == 1 &&
	    vlen < sizeof(t->checksum)) {
		memcpy(t->checksum, val, vlen);
		t->checksum[vlen] = '\0';
	}
	grpc_slice_unref(sl);
}

static void target_drop(struct target *t);

/* Every target leaves the call. */
static void proxy_drop_all(struct proxy *px)
{
	for (size_t i = 0; i < px->n; i++)
		target_drop(&px->t[i]);
}

/*
 * The primary's message as the client is to get it: kept, in case the
 * push has to be resumed; from a resumed push's new primary, only what the
 * client has not had (resume.h). False when nothing goes to the client
 * (*bb is then destroyed).
 */
static bool target_for_client(struct target *t, grpc_byte_buffer **bb)
{
	struct proxy *px = t->px;
	grpc_byte_buffer *out = NULL;

	if (!px->resumable)
		return true;
	if (px->read || !px->rs.resumed) {
		/* A read that answered cannot go to another replica: nothing more
		 * is kept for it (unless a second try's sender reads what was). */
		pthread_mutex_lock(&px->mu);
		if (!px->read)
			resume_note_out(&px->rs, *bb);
		else if (!px->rs.resumed)
			resume_give_up(&px->rs);
		pthread_mutex_unlock(&px->mu);
		return true;
	}
	if (!px->rs.splicing)
		return true;
	if (!px->resume_failed && resume_relay(&px->rs, *bb, &out)) {
		log_warn("cluster.resume_failed", "node=%s method=%s error=%s", t->node->name, px->info->path,
			 error_msg());
		px->resume_failed = true;
		proxy_drop_all(px);
	}
	grpc_byte_buffer_destroy(*bb);
	*bb = out;
	return out != NULL;
}

static void *reader_main(void *arg)
{
	struct target *t = arg;
	struct proxy *px = t->px;
	grpc_byte_buffer *bb = NULL;
	bool voted_push = px->txn && is_method(px->info, "SSHReceivePack");
	int r;

	while ((r = rpc_stream_recv_bb(t->st, &bb)) == 1) {
		if (!t->responses++) {
			pthread_mutex_lock(&px->mu);
			t->answered = true;
			pthread_cond_broadcast(&px->cv);
			pthread_mutex_unlock(&px->mu);
		}
		if (px->ssh)
			target_note_end(t, bb, voted_push);
		if (t->primary && !target_for_client(t, &bb))
			continue;
		if (t->primary) {
			pthread_mutex_lock(&px->mu);
			bool gone = px->client_gone;
			pthread_mutex_unlock(&px->mu);
			if (!gone && bb && rpc_call_send_bb(px->call, bb)) {
				pthread_mutex_lock(&px->mu);
				px->client_gone = true;
				pthread_cond_broadcast(&px->cv);
				pthread_mutex_unlock(&px->mu);
			} else if (!gone) {
				px->relayed++;
			}
		}
		grpc_byte_buffer_destroy(bb);
		bb = NULL;
	}
	rpc_stream_finish(t->st);
	t->code = rpc_stream_status(t->st);
	rpc_stream_details(t->st, t->details, sizeof(t->details));
	/* Its store sent all of its answer, exit status included, then went
	 * (an old process ending its drain for an upgrade): for a push, it
	 * moved its refs and voted; for a read, the client has everything. */
	if (px->ssh && ssh_answer_whole(t->st, t->said_exit)) {
		log_info("cluster.answer_whole", "node=%s method=%s note=%s transport=%s", t->node->name,
			 px->info->path, "the answer was whole when the store's connection ended", t->details);
		t->code = GRPC_STATUS_OK;
		t->details[0] = '\0';
	}
	if (t->code == GRPC_STATUS_UNAVAILABLE && !t->responses)
		cluster_node_suspect(px->c, t->node);
	if (px->txn)
		txn_node_done(px->c, px->txn, t->node->name, t->code == GRPC_STATUS_OK);
	pthread_mutex_lock(&px->mu);
	t->finished = true;
	t->dropped = true;     /* nothing more to send it */
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	return NULL;
}

static void target_drop(struct target *t)
{
	struct proxy *px = t->px;
	pthread_mutex_lock(&px->mu);
	bool was = t->dropped;
	t->dropped = true;
	if (!was && t->st)
		t->cancelled_here = true;
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	if (!was && t->st)
		rpc_stream_cancel(t->st);
}

/* Whether t's store is gone for this call: unreachable, or it cancelled the
 * call itself (a store that drains for an upgrade cancels the calls it had
 * not started), not this router. */
static bool target_store_gone(const struct target *t)
{
	return t->code == GRPC_STATUS_UNAVAILABLE || (t->code == GRPC_STATUS_CANCELLED && !t->cancelled_here);
}

/* Queues a copy of bb, the client's message number idx, for t; a secondary
 * that stays a full queue behind is dropped. One t was sent as a kept
 * message already (resume.h) is not queued again. */
static void target_push(struct target *t, grpc_byte_buffer *bb, size_t idx)
{
	struct proxy *px = t->px;
	struct timespec dl;
	bool lagging = false;

	deadline_after_ms(&dl, CLOCK_REALTIME, px->c->lag_timeout_ms);
	pthread_mutex_lock(&px->mu);
	if (t->closing || idx < t->replay_to) {
		/* Its input was closed early (the primary ended): nothing more goes to it. */
		pthread_mutex_unlock(&px->mu);
		return;
	}
	while (target_full(t) && !t->dropped && !px->client_gone) {
		if (t->primary)
			pthread_cond_wait(&px->cv, &px->mu);
		else if (pthread_cond_timedwait(&px->cv, &px->mu, &dl) == ETIMEDOUT) {
			lagging = true;
			break;
		}
	}
	if (!t->dropped && !lagging && !target_full(t)) {
		t->q[(t->qhead + t->qlen) % TARGET_QUEUE_MAX] = grpc_byte_buffer_copy(bb);
		t->qlen++;
		t->qbytes += grpc_byte_buffer_length(bb);
		pthread_cond_signal(&t->wake);
	}
	pthread_mutex_unlock(&px->mu);
	if (lagging) {
		log_warn("cluster.replica_lagging", "node=%s method=%s lag_timeout_ms=%d", t->node->name,
			 px->info->path, px->c->lag_timeout_ms);
		target_drop(t);
	}
}

static int target_start(struct proxy *px, struct target *t, grpc_byte_buffer *first)
{
	char txnmd[512];
	struct rpc_md md[2];
	size_t nmd = 0;
	int ret;

	if (px->txn) {
		struct txn_info ti = { 0 };
		ti.id = txn_id(px->txn);
		strlcpy_(ti.node, t->node->name, sizeof(ti.node));
		ti.secondary = !t->primary;
		strlcpy_(ti.address, px->c->txn_address, sizeof(ti.address));
		txn_info_format(&ti, txnmd, sizeof(txnmd));
		md[nmd].key = TXN_METADATA_KEY;
		md[nmd++].value = txnmd;
	}
	if (t->trailing) {
		md[nmd].key = TRAILING_METADATA_KEY;
		md[nmd++].value = "1";
	}
	ret = rpc_stream_open_md(t->node->client, px->info->path, 0, md, nmd, &t->st);
	if (ret)
		return ret;
	/* A resumed push: what the client sent so far follows the first message. */
	pthread_mutex_lock(&px->mu);
	t->q[0] = first;
	t->qlen = 1;
	t->qbytes = grpc_byte_buffer_length(first);
	t->replay_to = px->rs.nin;
	t->closing = px->client_done;
	pthread_mutex_unlock(&px->mu);
	if (pthread_create(&t->sender, NULL, sender_main, t))
		return error_set(GROVE_EINTERNAL, "cannot start a thread");
	t->sender_started = true;
	if (pthread_create(&t->reader, NULL, reader_main, t))
		return error_set(GROVE_EINTERNAL, "cannot start a thread");
	t->reader_started = true;
	return 0;
}

/* Waits until t's reader has the status, at most ms (0: forever); false on timeout. */
static bool target_wait(struct target *t, int ms)
{
	struct proxy *px = t->px;
	struct timespec dl;
	deadline_after_ms(&dl, CLOCK_REALTIME, ms);
	pthread_mutex_lock(&px->mu);
	while (!t->finished) {
		if (!ms)
			pthread_cond_wait(&px->cv, &px->mu);
		else if (pthread_cond_timedwait(&px->cv, &px->mu, &dl) == ETIMEDOUT)
			break;
	}
	bool done = t->finished;
	pthread_mutex_unlock(&px->mu);
	return done;
}

/* The client's further messages, to every target still in the call. */
static void *client_reader_main(void *arg)
{
	struct proxy *px = arg;
	for (;;) {
		grpc_byte_buffer *bb = NULL;
		int r = rpc_call_recv_bb(px->call, &bb);
		if (r < 0) {
			pthread_mutex_lock(&px->mu);
			while (px->retargeting)
				pthread_cond_wait(&px->cv, &px->mu);
			px->client_gone = px->client_done = true;
			pthread_mutex_unlock(&px->mu);
			proxy_drop_all(px);
			break;
		}
		if (r == 0)
			break;
		/* Kept and handed to the targets of one attempt: not while they change. */
		pthread_mutex_lock(&px->mu);
		while (px->retargeting)
			pthread_cond_wait(&px->cv, &px->mu);
		size_t idx = px->resumable ? resume_note_in(&px->rs, bb) : SIZE_MAX, n = px->n;
		px->fanning = true;
		pthread_mutex_unlock(&px->mu);
		for (size_t i = 0; i < n; i++)
			target_push(&px->t[i], bb, idx);
		grpc_byte_buffer_destroy(bb);
		pthread_mutex_lock(&px->mu);
		px->fanning = false;
		if (px->retargeting)   /* proxy_pause_client waits for this */
			proxy_wake(px);
		pthread_mutex_unlock(&px->mu);
	}
	pthread_mutex_lock(&px->mu);
	while (px->retargeting)
		pthread_cond_wait(&px->cv, &px->mu);
	px->client_done = true;
	for (size_t i = 0; i < px->n; i++)
		px->t[i].closing = true;
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	return NULL;
}

/* Drops the primary, whose store stopped answering health checks. */
static void primary_lost(struct proxy *px, struct target *pt)
{
	log_warn("cluster.primary_lost", "node=%s method=%s", pt->node->name, px->info->path);
	target_drop(pt);
	target_wait(pt, 0);
	pt->code = GRPC_STATUS_UNAVAILABLE;
	snprintf(pt->details, sizeof(pt->details), "it stopped answering health checks mid-call");
}

/* Whether a replica other than pt said its first word. */
static bool others_answered(struct proxy *px, const struct target *pt)
{
	bool any = false;
	pthread_mutex_lock(&px->mu);
	for (size_t i = 0; i < px->n; i++)
		any |= &px->t[i] != pt && px->t[i].answered;
	pthread_mutex_unlock(&px->mu);
	return any;
}

/*
 * Whether the primary of a call whose server speaks first (receive-pack)
 * answers: false if its store is dead (the call ended without a word) or
 * hung (it stopped answering health checks first). The client has then
 * been sent nothing, and has sent nothing but the first message: the
 * write can go to another primary as if this one had not been asked.
 */
static bool primary_answers(struct proxy *px, struct target *pt)
{
	int64_t give_up = now_ms() + px->c->primary_answer_ms;
	for (;;) {
		struct timespec dl;
		deadline_after_ms(&dl, CLOCK_REALTIME, 250);
		pthread_mutex_lock(&px->mu);
		while (!pt->answered && !pt->finished && pthread_cond_timedwait(&px->cv, &px->mu, &dl) != ETIMEDOUT)
			;
		bool answered = pt->answered, finished = pt->finished;
		pthread_mutex_unlock(&px->mu);
		if (answered)
			return true;
		/* Another end (the repository missing there, say) is its answer. */
		if (finished)
			return !target_store_gone(pt);
		if (!cluster_node_healthy(px->c, pt->node)) {
			primary_lost(px, pt);
			return pt->responses > 0;
		}
		/* Hung (stopped, stuck on its disk) while the others answered:
		 * the health checks would say so only later. */
		if (now_ms() >= give_up && others_answered(px, pt)) {
			log_warn("cluster.primary_silent", "node=%s method=%s ms=%d", pt->node->name, px->info->path,
				 px->c->primary_answer_ms);
			target_drop(pt);
			target_wait(pt, 0);
			return pt->responses > 0;
		}
	}
}

/* The targets that ended and took the push: OK, every round agreed, and
 * the primary's refs (pt's checksum). */
static int proxy_took(struct proxy *px, const struct target *pt)
{
	int n = 0;
	for (size_t i = 0; i < px->n; i++) {
		struct target *t = &px->t[i];
		pthread_mutex_lock(&px->mu);
		bool ended = t->finished;
		pthread_mutex_unlock(&px->mu);
		n += ended && t->code == GRPC_STATUS_OK && !strcmp(t->checksum, pt->checksum) &&
		     txn_node_agreed(px->c, px->txn, t->node->name, NULL);
	}
	return n;
}

/* Whether the client may be answered before every replica ended: a voted
 * push its primary made, told its refs, with trailing replicas on. */
static bool proxy_may_trail(const struct proxy *px, const struct target *pt)
{
	return px->txn && is_method(px->info, "SSHReceivePack") && pt->code == GRPC_STATUS_OK && pt->checksum[0] &&
	       !px->resume_failed && px->c->trailing_wait_ms < px->c->lag_timeout_ms;
}

/*
 * Waits for the secondaries to end: up to lagTimeout, then the ones still
 * running are dropped. Once a quorum took a push (proxy_may_trail), the
 * others get trailingWait more: those still running then are late. They
 * end after the client was answered (proxy_end_late): a replica on a slow
 * disk or a busy machine delays no push, and what it took still counts.
 */
static void proxy_await_secondaries(struct proxy *px, size_t primary)
{
	const struct target *pt = &px->t[primary];
	bool may_trail = proxy_may_trail(px, pt);
	int64_t start = now_ms(), quorum_at = 0;

	for (;;) {
		size_t running = 0;
		pthread_mutex_lock(&px->mu);
		for (size_t i = 0; i < px->n; i++)
			running += i != primary && !px->t[i].finished;
		pthread_mutex_unlock(&px->mu);
		if (!running)
			return;
		int64_t now = now_ms(), until = start + px->c->lag_timeout_ms;
		if (may_trail && !quorum_at && proxy_took(px, pt) >= px->quorum)
			quorum_at = now;
		if (quorum_at)
			until = MIN(until, quorum_at + px->c->trailing_wait_ms);
		if (now >= until)
			break;
		struct timespec dl;
		deadline_after_ms(&dl, CLOCK_REALTIME, (int)(until - now));
		pthread_mutex_lock(&px->mu);
		size_t still = 0;
		for (size_t i = 0; i < px->n; i++)
			still += i != primary && !px->t[i].finished;
		if (still == running)
			pthread_cond_timedwait(&px->cv, &px->mu, &dl);
		pthread_mutex_unlock(&px->mu);
	}
	for (size_t i = 0; i < px->n; i++) {
		struct target *t = &px->t[i];
		pthread_mutex_lock(&px->mu);
		bool running = i != primary && !t->finished;
		if (running && quorum_at)
			t->late = true;
		pthread_mutex_unlock(&px->mu);
		if (!running || quorum_at)
			continue;
		log_warn("cluster.replica_slow", "node=%s method=%s", t->node->name, px->info->path);
		target_drop(t);
	}
}

/* Joins t's threads once its reader has the status (or t was dropped);
 * frees what its queue still holds. */
static void target_join(struct target *t)
{
	struct proxy *px = t->px;
	pthread_mutex_lock(&px->mu);
	bool cut = t->dropped && !t->finished;
	t->dropped = true;
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	if (t->sender_started)
		pthread_join(t->sender, NULL);
	if (t->reader_started)
		pthread_join(t->reader, NULL);
	t->sender_started = t->reader_started = false;
	pthread_mutex_lock(&px->mu);
	while (t->qlen) {
		grpc_byte_buffer_destroy(t->q[t->qhead]);
		t->qhead = (t->qhead + 1) % TARGET_QUEUE_MAX;
		t->qlen--;
	}
	t->qbytes = 0;
	pthread_mutex_unlock(&px->mu);
	if (cut && t->code == GRPC_STATUS_OK)
		t->code = GRPC_STATUS_CANCELLED;
}

/* Ends every target but the late ones: the others' input is closed (they
 * have what the client sent so far: after a failed primary, votes that
 * committed stand) and they get their time to finish
 * (proxy_await_secondaries); then their threads are joined. */
static void proxy_end_targets(struct proxy *px, size_t primary)
{
	pthread_mutex_lock(&px->mu);
	for (size_t i = 0; i < px->n; i++)
		px->t[i].closing = true;
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	proxy_await_secondaries(px, primary);
	for (size_t i = 0; i < px->n; i++)
		if (!px->t[i].late)
			target_join(&px->t[i]);
}

/* After the client was answered: the late targets get lagTimeout to end,
 * then are dropped. Whether there were any. */
static bool proxy_end_late(struct proxy *px)
{
	bool any = false;
	for (size_t i = 0; i < px->n; i++) {
		struct target *t = &px->t[i];
		if (!t->late)
			continue;
		any = true;
		if (!target_wait(t, px->c->lag_timeout_ms)) {
			log_warn("cluster.replica_slow", "node=%s method=%s late=%b", t->node->name, px->info->path, true);
			target_drop(t);
		}
		target_join(t);
	}
	return any;
}

/* How an attempt at a call ended (proxy_run). */
enum proxy_end {
	PX_DONE,       /* the primary's status is the call's */
	PX_REROUTE,    /* a push's primary never answered: nothing was relayed */
	PX_RESUME,     /* a push's primary died mid-call before any ref moved (resume.h) */
};

/* The client reader stops handing messages to the targets (it finishes the
 * one in hand): the targets may change. */
static void proxy_pause_client(struct proxy *px)
{
	pthread_mutex_lock(&px->mu);
	px->retargeting = true;
	while (px->fanning)
		pthread_cond_wait(&px->cv, &px->mu);
	pthread_mutex_unlock(&px->mu);
}

static void proxy_unpause_client(struct proxy *px)
{
	pthread_mutex_lock(&px->mu);
	px->retargeting = false;
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
}

/* Whether a push whose primary died can go on on the others (resume.h). */
static bool proxy_resumable(struct proxy *px, const struct target *pt)
{
	pthread_mutex_lock(&px->mu);
	bool died = px->resumable && !px->rs.resumed && !px->client_gone && target_store_gone(pt) &&
		    !(px->read && pt->responses);
	bool off = px->rs.off;
	pthread_mutex_unlock(&px->mu);
	if (died && off && !px->read)
		log_info("cluster.resume_refused", "node=%s method=%s reason=%s", pt->node->name, px->info->path,
			 "it sent or was sent more than cluster.resumeBuffer (or cluster.resumeBufferTotal) keeps");
	return died && !off;
}

/* After the primary died: PX_RESUME if no ref moved and the client's
 * stream can go on from another primary; else the error stands. */
static enum proxy_end proxy_try_resume(struct proxy *px, struct target *pt)
{
	int rounds = 0;

	if (px->txn)
		txn_node_agreed(px->c, px->txn, pt->node->name, &rounds);
	if (rounds > 0) {
		log_info("cluster.resume_refused", "node=%s method=%s reason=%s", pt->node->name, px->info->path,
			 "a vote had committed");
		return PX_DONE;
	}
	if (resume_start(&px->rs, !px->client_first)) {
		log_info("cluster.resume_refused", "node=%s method=%s reason=%s", pt->node->name, px->info->path,
			 error_msg());
		return PX_DONE;
	}
	return PX_RESUME;
}

/*
 * Relays the call to the proxy's targets: firsts[i] is target i's first
 * message (taken). Returns when every target ended; the primary's status is
 * in its target. The client's side may still be open: it ends when the
 * caller finishes the call, and proxy_release waits for it.
 *
 * Returns PX_REROUTE or PX_RESUME when the caller may send the write to
 * another primary (primary_answers, proxy_try_resume).
 */
static enum proxy_end proxy_run(struct proxy *px, grpc_byte_buffer **firsts)
{
	size_t primary = 0;
	int ret = 0;

	for (size_t i = 0; i < px->n; i++) {
		struct target *t = &px->t[i];
		t->px = px;
		if (t->primary)
			primary = i;
		if (!ret && !firsts[i])
			ret = error_set(GROVE_EINTERNAL, "cannot rewrite the request for %s", t->node->name);
		if (!ret)
			ret = target_start(px, t, firsts[i]);
		else if (firsts[i])
			grpc_byte_buffer_destroy(firsts[i]);
		firsts[i] = NULL;
		if (ret) {
			t->code = GRPC_STATUS_INTERNAL;
			snprintf(t->details, sizeof(t->details), "%s", error_msg());
			t->finished = true;
		}
	}
	/* receive-pack speaks first: until the primary did, the client waits,
	 * so its messages are not read yet (see primary_answers). Not over
	 * smart HTTP: there the request comes first, and the primary answers
	 * it only once it has it all. */
	/* The targets are in place: a client reader of an earlier attempt goes on. */
	pthread_mutex_lock(&px->mu);
	px->retargeting = false;
	bool gone = px->client_gone;
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	if (gone)
		proxy_drop_all(px);
	if (!ret && px->txn && is_method(px->info, "SSHReceivePack") && !px->client_first &&
	    !px->client_reader_started && !primary_answers(px, &px->t[primary])) {
		proxy_end_targets(px, primary);
		return PX_REROUTE;
	}
	if (!ret && !px->client_reader_started && !pthread_create(&px->client_reader, NULL, client_reader_main, px))
		px->client_reader_started = true;

	/* The primary answers the client; when it ends, so does the call. */
	/* A primary whose store stops answering (stopped, cut off) is found by
	 * the health checks; the call then ends instead of hanging. */
	while (!target_wait(&px->t[primary], 250))
		if (!cluster_node_healthy(px->c, px->t[primary].node)) {
			primary_lost(px, &px->t[primary]);
			break;
		}
	struct target *pt = &px->t[primary];
	if (proxy_resumable(px, pt)) {
		/* The others are cut off now: they must not vote without it. */
		proxy_drop_all(px);
		/* The client reader waits from now until the next attempt's
		 * targets are in place: every message it read until then is
		 * kept, none went only to a target that is gone. */
		proxy_pause_client(px);
		proxy_end_targets(px, primary);
		if (proxy_try_resume(px, pt) == PX_RESUME)
			return PX_RESUME;
		proxy_unpause_client(px);
	} else {
		proxy_end_targets(px, primary);
	}
	if (px->resume_failed) {
		pt->code = GRPC_STATUS_ABORTED;
		snprintf(pt->details, sizeof(pt->details),
			 "the push's first storage server failed mid-push, and another push had landed on the others "
			 "meanwhile: fetch, then push again");
	}
	/* A primary that could not be reached: say which, and that a retry helps. */
	if (pt->code == GRPC_STATUS_UNAVAILABLE) {
		char was[sizeof(pt->details)];
		strlcpy_(was, pt->details, sizeof(was));
		snprintf(pt->details, sizeof(pt->details),
			 "store %s, the primary replica, %s (%.300s): a new primary is elected within seconds; retry",
			 pt->node->name, pt->responses ? "failed during the call" : "did not answer", was);
	}
	return PX_DONE;
}

/* The senders' condition variables, for every target slot: set up with
 * the proxy, and again when the targets of an attempt are reset. */
static void targets_cv_init(struct proxy *px)
{
	for (size_t i = 0; i < ARRAY_SIZE(px->t); i++)
		pthread_cond_init(&px->t[i].wake, NULL);
}

static void targets_cv_destroy(struct proxy *px)
{
	for (size_t i = 0; i < ARRAY_SIZE(px->t); i++)
		pthread_cond_destroy(&px->t[i].wake);
}

static void proxy_init(struct proxy *px, struct cluster *c, struct rpc_call *call, const struct rpc_method_info *info)
{
	memset(px, 0, sizeof(*px));
	px->c = c;
	px->call = call;
	px->info = info;
	px->ssh = skip_prefix(info->path, "/grove.v1.SSHService/", NULL);
	pthread_mutex_init(&px->mu, NULL);
	pthread_cond_init(&px->cv, NULL);
	targets_cv_init(px);
	resume_init(&px->rs, &c->resume_budget);
}

/* Before another attempt at the same call: the ended targets go, and the
 * client reader, if it runs, waits until the next ones are in place
 * (proxy_run). */
static void proxy_reset_targets(struct proxy *px)
{
	proxy_pause_client(px);
	for (size_t i = 0; i < px->n; i++)
		rpc_stream_free(px->t[i].st);
	pthread_mutex_lock(&px->mu);
	targets_cv_destroy(px);
	memset(px->t, 0, sizeof(px->t));
	px->n = 0;
	targets_cv_init(px);
	pthread_mutex_unlock(&px->mu);
}

/* After the call's status was sent: the client reader's receive has ended. */
static void proxy_release(struct proxy *px)
{
	pthread_mutex_lock(&px->mu);
	px->retargeting = false;   /* an attempt that never started: nothing to wait for */
	proxy_wake(px);
	pthread_mutex_unlock(&px->mu);
	if (px->client_reader_started)
		pthread_join(px->client_reader, NULL);
	px->client_reader_started = false;
	for (size_t i = 0; i < px->n; i++)
		rpc_stream_free(px->t[i].st);
	resume_release(&px->rs);
	pthread_mutex_destroy(&px->mu);
	pthread_cond_destroy(&px->cv);
	targets_cv_destroy(px);
}

/*
 * Ends the client's call with target t's status. While the router drains,
 * a call ending well ends once the client half-closed (up to
 * RPC_DRAIN_HALF_CLOSE_MS; rpc.h says why): a gate half-closes when git
 * has read the whole answer. Not after a failure (git waits for the status
 * first), nor while the client reader is held for another attempt.
 */
static void finish_as(struct proxy *px, const struct target *t)
{
	if (t->code == GRPC_STATUS_OK && px->client_reader_started && rpc_call_draining(px->call)) {
		struct timespec dl;
		deadline_after_ms(&dl, CLOCK_REALTIME, RPC_DRAIN_HALF_CLOSE_MS);
		pthread_mutex_lock(&px->mu);
		while (!px->client_done && !px->retargeting &&
		       pthread_cond_timedwait(&px->cv, &px->mu, &dl) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&px->mu);
	}
	rpc_call_finish_status(px->call, t->code, t->details);
}

/* ---- replicas ---- */

bool replica_up_to_date(struct cluster *c, const struct repo_state *r, const struct replica *rep)
{
	return rep->node && rep->assigned && rep->generation == r->generation && cluster_node_healthy(c, rep->node);
}

bool replica_writable(struct cluster *c, const struct repo_state *r, const struct replica *rep)
{
	if (!replica_up_to_date(c, r, rep))
		return false;
	pthread_mutex_lock(&c->mu);
	bool w = rep->node->writable;
	pthread_mutex_unlock(&c->mu);
	return w;
}

struct node *cluster_primary(struct cluster *c, struct repo_state *r, bool for_write)
{
	return cluster_primary_but(c, r, for_write, NULL);
}

struct node *cluster_primary_but(struct cluster *c, struct repo_state *r, bool for_write, const struct node *skip)
{
	bool (*ok)(struct cluster *, const struct repo_state *, const struct replica *) =
		for_write ? replica_writable : replica_up_to_date;
	struct replica *cur = NULL, *pick = NULL;
	size_t order[CLUSTER_NODES_MAX];
	for (size_t i = 0; i < r->nreplicas; i++)
		if (ok(c, r, &r->replicas[i]) && r->replicas[i].node != skip && !strcmp(r->replicas[i].name, r->primary))
			cur = &r->replicas[i];
	/* A new primary: the first qualifying replica in the path's node order,
	 * so primaries spread over the stores. A primary whose disk filled up
	 * hands the role over at the next write. */
	cluster_node_order(c, r->path, order);
	for (size_t k = 0; k < c->nnodes && !cur && !pick; k++)
		for (size_t i = 0; i < r->nreplicas; i++)
			if (r->replicas[i].node == &c->nodes[order[k]] && r->replicas[i].node != skip &&
			    ok(c, r, &r->replicas[i]))
				pick = &r->replicas[i];
	if (cur)
		return cur->node;
	if (!pick && for_write) {
		for (size_t i = 0; i < r->nreplicas; i++)
			if (replica_up_to_date(c, r, &r->replicas[i])) {
				error_set(GROVE_EUNAVAIL,
					  "no up-to-date replica of %s can take writes now: their stores' disks are full. "
					  "Reads go on; writes resume when space is freed (see `grove cluster status`)",
					  r->path);
				return NULL;
			}
	}
	if (!pick) {
		error_set(GROVE_EUNAVAIL,
			  "repository %s has no healthy up-to-date replica: it is unavailable until one of its stores comes back (see `grove cluster repo %s`)",
			  r->path, r->path);
		return NULL;
	}
	if (state_set_primary(c, r->path, pick->name))
		return NULL;
	pthread_mutex_lock(&c->mu);
	c->m.elections++;
	pthread_mutex_unlock(&c->mu);
	log_info("cluster.elected", "repo=%s previous=%s primary=%s generation=%lld", r->path,
		 r->primary[0] ? r->primary : "-", pick->name, (long long)r->generation);
	strlcpy_(r->primary, pick->name, sizeof(r->primary));
	return pick->node;
}

/* ---- accessors ---- */

static void route_accessor(struct cluster *c, struct rpc_call *call, const struct rpc_method_info *info,
			   grpc_slice *first, const char *path)
{
	struct repo_state *r = xcalloc(1, sizeof(*r));
	struct node *cand[CLUSTER_NODES_MAX];
	size_t ncand = 0, start;
	struct proxy px;
	int ret;

	if ((ret = state_repo_get(c, path, r)))
		goto fail;
	if (r->exists && r->generation >= 0) {
		for (size_t i = 0; i < r->nreplicas; i++)
			if (replica_up_to_date(c, r, &r->replicas[i]))
				cand[ncand++] = r->replicas[i].node;
		if (!ncand) {
			ret = error_set(GROVE_EUNAVAIL,
					"repository %s has no healthy up-to-date replica: it is unavailable until one of its stores comes back (see `grove cluster repo %s`)",
					path, path);
			goto fail;
		}
	} else {
		/* Unknown here: any healthy store says what it knows (RepositoryExists: no). */
		for (size_t i = 0; i < c->nnodes; i++)
			if (cluster_node_healthy(c, &c->nodes[i]))
				cand[ncand++] = &c->nodes[i];
		if (!ncand) {
			ret = error_set(GROVE_EUNAVAIL, "no store of the cluster is healthy: retry when one is back");
			goto fail;
		}
	}
	pthread_mutex_lock(&c->mu);
	start = c->rr++ % ncand;
	pthread_mutex_unlock(&c->mu);

	/* A replica whose store turns out gone before it said a word (its
	 * health check had not run yet) leaves the read to the next one. */
	proxy_init(&px, c, call, info);
	px.resumable = px.read = ncand > 1;
	for (size_t tried = 0;; tried++) {
		struct node *n = cand[(start + tried) % ncand];
		px.n = 1;
		px.t[0].node = n;
		px.t[0].primary = true;
		grpc_byte_buffer *f = first_for(first, n, path);
		if (proxy_run(&px, &f) != PX_RESUME || tried + 1 >= ncand)
			break;
		log_warn("cluster.read_rerouted", "repo=%s method=%s node=%s", path, info->path, n->name);
		cluster_node_suspect(c, n);
		proxy_reset_targets(&px);
	}
	finish_as(&px, &px.t[0]);
	proxy_release(&px);
	free(r);
	return;
fail:
	rpc_call_fail(call, ret);
	free(r);
}

/* ---- mutators and maintenance ---- */

/*
 * A push is voted once, before any ref moves (store/service_hook.c), and
 * git then updates each ref on its own: a replica that failed one the
 * primary made (or the other way round) ends with other refs. It has
 * not taken the write, and is repaired.
 */
static bool same_refs(const struct proxy *px, const char *want, const struct target *t)
{
	if (!is_method(px->info, "SSHReceivePack") || (want[0] && !strcmp(t->checksum, want)))
		return true;
	log_warn("cluster.diverged", "node=%s checksum=%s expected=%s", t->node->name,
		 t->checksum[0] ? t->checksum : "-", want[0] ? want : "-");
	return false;
}

/* The refs a voted push should have left: the primary's; if it ended
 * without a checksum (it died after the vote), the one most of the
 * others ended with. */
static const char *expected_checksum(const struct proxy *px, const struct target *pt)
{
	const char *best = "";
	int best_n = 0;
	if (pt->code == GRPC_STATUS_OK && pt->checksum[0])
		return pt->checksum;
	for (size_t i = 0; i < px->n; i++) {
		int n = 0;
		if (px->t[i].code != GRPC_STATUS_OK || !px->t[i].checksum[0])
			continue;
		for (size_t k = 0; k < px->n; k++)
			n += px->t[k].code == GRPC_STATUS_OK && !strcmp(px->t[k].checksum, px->t[i].checksum);
		if (n > best_n) {
			best = px->t[i].checksum;
			best_n = n;
		}
	}
	return best;
}

/* Whether node is one of px's late targets: it ends after the client was
 * answered, and after_late says what it took. */
static bool late_node(const struct proxy *px, const char *node)
{
	for (size_t i = 0; i < px->n; i++)
		if (px->t[i].late && !strcmp(px->t[i].node->name, node))
			return true;
	return false;
}

/* Records what the write changed, and who took it; *gen: the generation it
 * made, or -1. */
static void after_write(struct cluster *c, struct proxy *px, struct repo_state *r, int64_t *gen)
{
	struct target *pt = NULL;
	char *took[CLUSTER_NODES_MAX];
	size_t ntook = 0;
	int rounds = 0;
	bool changed;

	*gen = -1;
	for (size_t i = 0; i < px->n; i++)
		if (px->t[i].primary)
			pt = &px->t[i];
	/* A write always has its primary among the targets (proxy_start). */
	assert(pt);
	txn_node_agreed(c, px->txn, pt->node->name, &rounds);
	/* With votes: a committed round changed refs. Without: the call's success did. */
	changed = rounds > 0 || (pt->code == GRPC_STATUS_OK && !is_method(px->info, "SSHReceivePack"));
	if (is_method(px->info, "RemoveRepository") && pt->code == GRPC_STATUS_OK) {
		for (size_t i = 0; i < r->nreplicas; i++) {
			bool removed = false;
			for (size_t k = 0; k < px->n; k++)
				if (!strcmp(px->t[k].node->name, r->replicas[i].name) && px->t[k].code == GRPC_STATUS_OK)
					removed = true;
			if (!removed && r->replicas[i].generation >= 0 && r->replicas[i].node)
				state_job_add(c, JOB_DELETE, r->path, r->replicas[i].name);
		}
		state_repo_delete(c, r->path);
		log_info("cluster.removed", "repo=%s", r->path);
		return;
	}
	if (!changed) {
		if (r->generation < 0)
			state_repo_delete(c, r->path);   /* nothing was created */
		return;
	}
	/* Took the write: ended well, and with votes, agreed in every round
	 * (and a push: ended with the expected refs). A primary that voted
	 * and then died may not have written its refs: it is repaired rather
	 * than trusted. */
	const char *want = expected_checksum(px, pt);
	for (size_t i = 0; i < px->n; i++) {
		struct target *t = &px->t[i];
		bool ok = t->code == GRPC_STATUS_OK && !t->late;
		if (rounds > 0)
			ok = ok && txn_node_agreed(c, px->txn, t->node->name, NULL);
		if (ok && !same_refs(px, want, t))
			ok = false;
		if (ok)
			took[ntook++] = t->node->name;
	}
	if (!ntook)
		return;
	if (state_write_done(c, r->path, took, ntook, gen)) {
		log_error("cluster.state_failed", "repo=%s error=%s", r->path, error_msg());
		return;
	}
	/* Who holds the new generation now (not who took this write: one that
	 * missed a write running beside it stays behind). */
	struct repo_state *now = xcalloc(1, sizeof(*now));
	if (!state_repo_get(c, r->path, now))
		for (size_t i = 0; i < now->nreplicas; i++)
			if (now->replicas[i].assigned && now->replicas[i].node && now->replicas[i].generation < now->generation &&
			    !late_node(px, now->replicas[i].name)) {
				log_info("cluster.outdated", "repo=%s node=%s generation=%lld behind=%lld", r->path,
					 now->replicas[i].name, (long long)now->generation,
					 (long long)now->replicas[i].generation);
				state_job_add(c, JOB_UPDATE, r->path, now->replicas[i].name);
			}
	free(now);
	if (ntook > 1)
		state_job_add(c, JOB_VERIFY, r->path, "*");
	log_info("cluster.write", "repo=%s method=%s generation=%lld replicas=%zu rounds=%d", r->path, px->info->path,
		 (long long)*gen, ntook, rounds);
}

/*
 * The late replicas of a push that made generation gen, once they ended:
 * one that took it holds gen now, if it held the one before (no write it
 * missed came first); it is repaired if it did not take it, or if another
 * write was recorded meanwhile (it was no target of that one).
 */
static void after_late(struct cluster *c, struct proxy *px, const char *path, int64_t gen)
{
	const struct target *pt = &px->t[0];
	const char *want = expected_checksum(px, pt);
	struct repo_state *now = xcalloc(1, sizeof(*now));

	for (size_t i = 0; i < px->n && gen >= 0; i++) {
		struct target *t = &px->t[i];
		bool moved = false;
		if (!t->late)
			continue;
		if (t->code == GRPC_STATUS_OK && txn_node_agreed(c, px->txn, t->node->name, NULL) &&
		    same_refs(px, want, t) && state_replica_caught_up(c, path, t->node->name, gen, &moved))
			log_error("cluster.state_failed", "repo=%s error=%s", path, error_msg());
		if (moved)
			log_info("cluster.caught_up", "repo=%s node=%s generation=%lld", path, t->node->name,
				 (long long)gen);
		/* Read after the move: a write recorded later saw it behind, and
		 * queued its repair; a repair (another router's) may have brought
		 * it up to date first. */
		const struct replica *rep = state_repo_get(c, path, now) ? NULL : repo_replica(now, t->node->name);
		bool current = rep && now->generation == gen && rep->generation == gen;
		pthread_mutex_lock(&c->mu);
		c->m.late_caught_up += moved && current;
		c->m.late_outdated += !current;
		pthread_mutex_unlock(&c->mu);
		if (current)
			continue;
		log_info("cluster.outdated", "repo=%s node=%s generation=%lld late=%b", path, t->node->name,
			 (long long)gen, true);
		state_job_add(c, JOB_UPDATE, path, t->node->name);
	}
	free(now);
}

/* A voted push's replicas beyond its quorum (the primary is first): the
 * client need not wait for them (proxy_await_secondaries), and their git
 * yields the CPU once the pack is in. */
static void mark_trailing(struct cluster *c, struct proxy *px, int quorum)
{
	if (!px->resumable || c->trailing_wait_ms >= c->lag_timeout_ms)
		return;
	for (size_t i = (size_t)MAX(quorum, 1); i < px->n; i++)
		px->t[i].trailing = true;
}

/*
 * The targets of a write into px: its primary (never skip) first, then every
 * replica that can take it. 0, or an error and whether the write is refused
 * (too few replicas: counted) rather than failed.
 */
static int write_targets(struct cluster *c, struct repo_state *r, bool maintenance, const struct node *skip,
			 struct proxy *px, int *assigned, bool *refused)
{
	struct node *primary;

	*assigned = 0;
	*refused = false;
	if (!(primary = cluster_primary_but(c, r, !maintenance, skip))) {
		*refused = !maintenance;
		return GROVE_EUNAVAIL;
	}
	px->t[px->n].node = primary;
	px->t[px->n++].primary = true;
	for (size_t i = 0; i < r->nreplicas; i++) {
		struct replica *rep = &r->replicas[i];
		*assigned += rep->assigned && rep->node;
		if (rep->node == primary || (skip && rep->node == skip))
			continue;
		/* A store with a full disk sits a write out: it is repaired once it has room. */
		if (maintenance ? (rep->node && rep->generation >= 0 && cluster_node_healthy(c, rep->node))
				: replica_writable(c, r, rep)) {
			px->t[px->n].node = rep->node;
			px->t[px->n++].primary = false;
		} else if (maintenance && rep->node && rep->generation >= 0) {
			state_job_add(c, JOB_OPTIMIZE, r->path, rep->name);
		}
	}
	if (!maintenance && (int)px->n < quorum_of(*assigned)) {
		size_t n = px->n;
		*refused = true;
		/* None of them started: a resumed push's client reader, let go
		 * when the call ends, must hand its message to no target. */
		px->n = 0;
		return error_set(GROVE_EUNAVAIL,
				 "only %zu of the %d replicas of %s are healthy and up to date; a write needs %d: "
				 "it is refused rather than kept on too few disks. Retry when the stores are back (see `grove cluster repo %s`)",
				 n, *assigned, r->path, quorum_of(*assigned), r->path);
	}
	return 0;
}

/* After lagTimeout, a late replica's end is recorded (after_late): the
 * time that may take, past which another router stops waiting for it. */
#define LATE_MARGIN_MS (60 * 1000)

/* The write is over: verifications of the repository may compare again. */
static void write_end(struct cluster *c, const char *path, int64_t write_id)
{
	/* Once more on failure: a row left behind holds verification back for a day. */
	if (state_write_end(c, write_id) && state_write_end(c, write_id))
		log_error("cluster.state_failed", "repo=%s write=%lld error=%s", path, (long long)write_id, error_msg());
}

/*
 * Before a write: the replicas still finishing the last push to the same
 * repository (late), through this router or another, get up to lateWait
 * to end. Once they took it they are up to date and take this write too;
 * left out, each would miss it and cost a repair, which back-to-back
 * pushes would make the rule.
 */
static void await_late(struct cluster *c, const char *path, const struct rpc_method_info *info)
{
	int max_ms = c->late_wait_ms;
	bool still, still_elsewhere = false;
	int64_t here = late_wait(c, path, max_ms, &still), elsewhere = -1;
	if (!still)
		elsewhere = late_wait_elsewhere(c, path, max_ms - (int)MAX(here, 0), &still_elsewhere);
	if (here < 0 && elsewhere < 0)
		return;
	still = still || still_elsewhere;
	log_info("cluster.waited_late", "repo=%s method=%s ms=%lld still_running=%b elsewhere=%b", path, info->path,
		 (long long)(MAX(here, 0) + MAX(elsewhere, 0)), still, elsewhere >= 0);
	pthread_mutex_lock(&c->mu);
	c->m.late_waits++;
	c->m.late_waits_gave_up += still;
	pthread_mutex_unlock(&c->mu);
}

/*
 * A write goes to its primary and every replica that can take it. A push
 * whose primary's store turns out dead or hung goes once more, to another
 * primary: before it said a word (the client saw nothing), or mid-call
 * before any ref moved (resumed: resume.h). The push is taken by the
 * others instead of refused.
 */
static void route_write(struct cluster *c, struct rpc_call *call, const struct rpc_method_info *info,
			grpc_slice *first, const char *path)
{
	bool maintenance = info->kind == RPC_KIND_MAINTENANCE, refused = false, again;
	struct repo_state *r = xcalloc(1, sizeof(*r));
	char *voters[CLUSTER_NODES_MAX];
	grpc_byte_buffer *firsts[CLUSTER_NODES_MAX];
	struct node *skip = NULL;
	struct late_write lw;
	struct proxy px;
	int64_t write_id = 0;
	int assigned = 0, ret;

	proxy_init(&px, c, call, info);
	px.client_first = first_is_stateless(first);
	px.resumable = !maintenance && is_method(info, "SSHReceivePack");
	if (!maintenance)
		await_late(c, path, info);
	ret = maintenance ? state_repo_get(c, path, r) : state_write_begin(c, path, r, &write_id);
	if (ret)
		goto fail;
	if (!r->exists) {
		ret = error_set(GROVE_ENOTFOUND, "repository %s does not exist in %s", path, c->virtual_storage);
		goto fail;
	}
	do {
		if ((ret = write_targets(c, r, maintenance, skip, &px, &assigned, &refused)))
			goto fail;
		mark_trailing(c, &px, quorum_of(assigned));
		for (size_t i = 0; i < px.n; i++) {
			voters[i] = px.t[i].node->name;
			firsts[i] = first_for(first, px.t[i].node, path);
		}
		if (!maintenance) {
			px.quorum = quorum_of(assigned);
			px.txn = txn_begin(c, voters, px.n, px.quorum);
		}
		enum proxy_end end = proxy_run(&px, firsts);
		again = (end == PX_REROUTE && !skip) || end == PX_RESUME;
		if (again) {
			skip = px.t[0].node;
			if (end == PX_REROUTE)
				log_warn("cluster.write_rerouted", "repo=%s method=%s silent_primary=%s", path, info->path,
					 skip->name);
			else
				log_warn("cluster.push_resumed", "repo=%s failed_primary=%s kept_messages=%zu seen_bytes=%zu",
					 path, skip->name, px.rs.nin, px.rs.seen.len);
			cluster_node_suspect(c, skip);
			txn_end(c, px.txn);
			px.txn = NULL;
			proxy_reset_targets(&px);
		}
	} while (again);
	lw.nnodes = 0;
	for (size_t i = 0; i < px.n; i++)
		if (px.t[i].late)
			lw.nodes[lw.nnodes++] = px.t[i].node;
	bool late = lw.nnodes > 0;
	if (late) {
		late_begin(c, &lw, path);
		/* In the database too, before the client hears of the write: its
		 * next push may come through another router. Bounded by when the
		 * late replicas are dropped, should this process hang. */
		if (state_write_late(c, write_id, &lw, wall_ms() + c->lag_timeout_ms + LATE_MARGIN_MS))
			log_warn("cluster.state_failed", "repo=%s write=%lld error=%s", path, (long long)write_id,
				 error_msg());
	}
	int64_t gen = -1;
	if (!maintenance)
		after_write(c, &px, r, &gen);
	/* The write is over before its client hears so; with late replicas,
	 * only once they ended too (verifications wait for it). */
	if (!late)
		write_end(c, path, write_id);
	finish_as(&px, &px.t[0]);
	if (late && proxy_end_late(&px)) {
		after_late(c, &px, path, gen);
		write_end(c, path, write_id);
	}
	if (late)
		late_end(c, &lw);
	txn_end(c, px.txn);
	proxy_release(&px);
	free(r);
	return;
fail:
	if (refused) {
		pthread_mutex_lock(&c->mu);
		c->m.writes_refused++;
		pthread_mutex_unlock(&c->mu);
		log_warn("cluster.write_refused", "repo=%s method=%s reason=%s", path, info->path, error_msg());
	}
	rpc_call_fail(call, ret);
	write_end(c, path, write_id);
	proxy_release(&px);
	free(r);
}

/* ---- entry ---- */

static void route_user_call(struct cluster *c, struct rpc_call *call)
{
	const struct rpc_method_info *info = rpc_method_find(rpc_call_method(call));
	Grove__V1__Repository *repo = NULL;
	grpc_byte_buffer *bb = NULL;
	grpc_slice first = grpc_empty_slice();
	int ret;

	ret = rpc_call_recv_bb(call, &bb);
	if (ret == 0)
		ret = error_set(GROVE_EINVAL, "no request message was sent");
	if (ret < 0)
		goto fail;
	if ((ret = rpc_bb_slice(bb, &first)) || (ret = first_repository(c, &first, &repo)))
		goto fail;
	switch (info->kind) {
	case RPC_KIND_ACCESSOR:
		route_accessor(c, call, info, &first, repo->relative_path);
		break;
	case RPC_KIND_MUTATOR:
	case RPC_KIND_MAINTENANCE:
		route_write(c, call, info, &first, repo->relative_path);
		break;
	default:
		ret = error_set(GROVE_EINTERNAL, "%s has no routing kind", info->path);
		goto fail;
	}
	goto out;
fail:
	rpc_call_fail(call, ret);
out:
	FREE_MSG(repo);
	grpc_slice_unref(first);
	if (bb)
		grpc_byte_buffer_destroy(bb);
}

/* The user a gate named for the call (RPC_USER_KEY), "" when none. */
static void call_user(struct rpc_call *call, char *out, size_t size)
{
	size_t len = 0;
	const char *v = rpc_call_metadata(call, RPC_USER_KEY, &len);
	snprintf(out, size, "%.*s", v ? (int)MIN(len, size - 1) : 0, v ? v : "");
}

static void route_call(struct rpc_call *call, void *data)
{
	struct cluster *c = data;
	char user[USERCAP_NAME_MAX + 1];
	int running;

	call_user(call, user, sizeof(user));
	if (user[0] && usercap_take(&c->users, user, &running)) {
		char why[256];
		log_warn("cluster.user_busy", "user=%s running=%d method=%s", user, running, rpc_call_method(call));
		snprintf(why, sizeof(why), RPC_USER_BUSY "%s", error_msg());
		rpc_call_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
		return;
	}
	route_user_call(c, call);
	if (user[0])
		usercap_put(&c->users, user);
}

void router_register(struct rpc_server *srv, struct cluster *c)
{
	for (const struct rpc_method_info *m = rpc_methods; m->path; m++)
		if (m->kind == RPC_KIND_ACCESSOR || m->kind == RPC_KIND_MUTATOR || m->kind == RPC_KIND_MAINTENANCE)
			rpc_server_handle(srv, m->path, route_call, c);
}
