/*
 * The hook payload travels from a store to `grove hook` through git's
 * environment, as base64 of the packed grove.v1.HookPayload message: typed,
 * and safe in an environment variable whatever the names it carries.
 */
#ifndef GROVE_HOOKPAYLOAD_H
#define GROVE_HOOKPAYLOAD_H

#include "grove/v1/shared.pb-c.h"

#define HOOK_PAYLOAD_ENV "GROVE_HOOK_PAYLOAD"
#define HOOK_PAYLOAD_MAX (64 * 1024)   /* encoded bytes */

/* malloc'd base64; NULL when the payload is too big. */
char *hook_payload_encode(const Grove__V1__HookPayload *p);
/* 0, or GROVE_EINVAL / GROVE_ETOOBIG; free *out with protobuf_c_message_free_unpacked. */
int hook_payload_decode(const char *s, size_t len, Grove__V1__HookPayload **out);

/*
 * The environment for a git that runs grove's hooks for a push: the payload
 * (with repository filled in), where the hooks call back (hook_address, a
 * grove.v1.HookService) with which secret, which hooks have someone to
 * answer them ("pre-receive,post-receive,"), and GIT_PROTOCOL; hook_socket
 * (or NULL): a store's hook wire, for `grove-hook`. Built on
 * proc_env(); free with proc_env_free.
 */
char **hook_env_build(const Grove__V1__HookPayload *payload, const Grove__V1__Repository *repo,
		      const char *hook_address, const char *hook_socket, const char *secret, const char *active,
		      const char *git_protocol);

/*
 * What git runs as hook NAME in dir: a shell script that starts `exe hook
 * NAME` only when the hook has someone to answer it (GROVE_HOOKS_ACTIVE
 * names it; for reference-transaction, only the "prepared" state votes),
 * and otherwise just takes git's input: a hook with nothing to do costs a
 * shell (about 1 ms), not a Grove process (~17 ms of loading libraries).
 * Replaced atomically: a git starting meanwhile runs the old or the new.
 * light: a store's, whose hooks call back over the hook wire: the script
 * runs EXE-hook (`grove-hook`, lib/hookwire.h) instead, if it is there.
 */
int hook_script_install(const char *dir, const char *name, const char *exe, bool light);

/*
 * A cluster router sends each store of a write the transaction it takes part
 * in, in request metadata, so that any mutating RPC — also one added later —
 * votes without a field of its own:
 *
 *     x-grove-transaction: 1;<id>;<node>;<p|s>;<transaction service address>
 *
 * p: primary (runs pre-receive and post-receive), s: secondary.
 */
#define TXN_METADATA_KEY "x-grove-transaction"
/*
 * A store of a push the router answers without waiting for (the others make
 * its quorum: cluster/router.c) is told so in request metadata, with any
 * value. Its git yields the CPU to the replicas the client waits for, fed
 * through a spool (store.trailingNice, store.trailingSpool). A store that
 * does not know the key ignores it.
 */
#define TRAILING_METADATA_KEY "x-grove-trailing"
#define TXN_NODE_MAX 64
#define TXN_ADDRESS_MAX 255
/* How long a store waits for the router to answer a vote; the hook waits a little longer. */
#define TXN_VOTE_TIMEOUT_MS 60000

struct txn_info {
	uint64_t id;
	char node[TXN_NODE_MAX + 1];
	bool secondary;
	char address[TXN_ADDRESS_MAX + 1];
};

/* 0, or GROVE_EINVAL saying what is wrong with s. */
int txn_info_parse(const char *s, size_t len, struct txn_info *out);
void txn_info_format(const struct txn_info *t, char *buf, size_t size);
/* Node names: [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */
bool txn_node_name_valid(const char *s, size_t len);

#endif
