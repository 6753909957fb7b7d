/*
 * The refs of the voted pushes running on this store.
 *
 * A push is voted once, in pre-receive (service_hook.c); git then moves
 * each ref on its own. When git is done, SSHReceivePack reports what the
 * push's refs are now, hashed (ssh.proto's refs_checksum), and the router
 * counts a replica as having taken the write only if that equals the
 * primary's. Only the push's own refs: another push running beside it on
 * the same repository moves other refs, at other moments on each replica.
 */
#include "store/store.h"
#include "lib/auth.h"
#include "lib/error.h"

#include <pthread.h>

struct pushed {
	struct pushed *next;
	uint64_t txn;
	char node[65];
	struct strbuf lines;    /* the ref update lines pre-receive voted */
};

static pthread_mutex_t pushed_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pushed *pushed_head;
static size_t pushed_count;

/* Bounded: an entry lives from a push's vote to its end, so there are at
 * most as many as calls running (store.maxCalls). */
#define PUSHED_MAX 100000

void store_push_refs_put(uint64_t txn, const char *node, const char *lines, size_t len)
{
	struct pushed *p = xcalloc(1, sizeof(*p));
	p->txn = txn;
	strlcpy_(p->node, node ? node : "", sizeof(p->node));
	strbuf_init(&p->lines, 0);
	strbuf_add(&p->lines, lines, len);
	pthread_mutex_lock(&pushed_mu);
	if (pushed_count < PUSHED_MAX) {
		p->next = pushed_head;
		pushed_head = p;
		pushed_count++;
		p = NULL;
	}
	pthread_mutex_unlock(&pushed_mu);
	if (p) {
		strbuf_release(&p->lines);
		free(p);
	}
}

static struct pushed *take(uint64_t txn, const char *node)
{
	struct pushed *p = NULL;
	pthread_mutex_lock(&pushed_mu);
	for (struct pushed **pp = &pushed_head; *pp; pp = &(*pp)->next)
		if ((*pp)->txn == txn && !strcmp((*pp)->node, node ? node : "")) {
			p = *pp;
			*pp = p->next;
			pushed_count--;
			break;
		}
	pthread_mutex_unlock(&pushed_mu);
	return p;
}

int store_push_refs_checksum(uint64_t txn, const char *node, const char *path, char out[65])
{
	struct pushed *p = take(txn, node);
	struct strbuf now = STRBUF_INIT;
	int ret = 0;

	out[0] = '\0';
	if (!p)
		return 0;   /* no vote (nothing to update, or refused): nothing to compare */
	ret = store_repo_ref_updates(path, p->lines.buf, p->lines.len, &now);
	if (!ret) {
		auth_sha256_hex(now.buf, now.len, out);
	}
	strbuf_release(&now);
	strbuf_release(&p->lines);
	free(p);
	return ret;
}

void store_push_refs_drop(uint64_t txn, const char *node)
{
	struct pushed *p = take(txn, node);
	if (p) {
		strbuf_release(&p->lines);
		free(p);
	}
}
