/*
 * grove store: a storage node. It owns bare repositories under its storage
 * root and serves the grove.v1 Git API over gRPC (RepositoryService,
 * RefService, SSHService, HookService), running git for the wire protocol
 * and maintenance and reading refs in process with libgit2.
 *
 * On disk, under the root:
 *   @hashed/ab/cd/<sha256 of relative path>.git   the repositories
 *   +grove/tmp/     repositories being created, bundles being received
 *   +grove/trash/   repositories being removed
 *   +grove/hooks/   core.hooksPath for git: links to this grove binary
 *   +grove/hooks-push/  the same for receive-pack (no reference-transaction)
 *   +grove/pack-cache/  the pack-objects cache, when on (packcache.c)
 *   +grove/bin/     grove-connect, the ssh stand-in git uses to replicate
 * The "+grove" name cannot collide with "@hashed".
 */
#ifndef GROVE_STORE_H
#define GROVE_STORE_H

/* Where scripts/build-replica-git puts the gits of secondary replicas and
 * of the primary. */
#define STORE_REPLICA_GIT "/usr/local/lib/grove/git/git"
#define STORE_PRIMARY_GIT "/usr/local/lib/grove/git-primary/git"

#include "lib/common.h"
#include "lib/gitcmd.h"
#include "lib/hookpayload.h"
#include "lib/config.h"
#include "lib/fs.h"
#include "lib/packcache.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "grove/v1/hook.pb-c.h"
#include "grove/v1/shared.pb-c.h"
#include "grove/v1/transaction.pb-c.h"

struct store {
	char *name;            /* storage name requests must use */
	char *root;            /* storage root */
	char *state_dir;       /* root/+grove */
	char *tmp_dir;
	char *trash_dir;
	char *hooks_dir;
	char *push_hooks_dir;  /* pre-receive and post-receive only: for receive-pack */
	char *connect_bin;     /* state_dir/bin/grove-connect */
	char *hook_address;    /* "unix:…": where `grove hook` calls back */
	char *hook_socket;     /* the hook wire's path, where `grove-hook` calls back (hooksock.c) */
	char *custom_hooks;    /* operator's pre-receive/post-receive, or NULL */
	char *secret;
	char *self_exe;
	_Atomic bool fsck_objects;   /* receive.fsckObjects for pushes (a reload may change it) */
	bool check_only;       /* --check-config: read and check, make and change nothing */
	struct strvec fsck_ignore;   /* fsck message ids let through (store.fsckIgnore) */
	_Atomic int64_t min_free;    /* bytes the root's filesystem keeps free, or a push is refused */
	struct gitcmd_opts git_nohooks;   /* git with no hooks at all */
	struct gitcmd_opts git_hooks;     /* git with the store's hooks */
	struct gitcmd_opts git_push;      /* receive-pack: voted once, in pre-receive */
	struct gitcmd_opts git_push_secondary;   /* the same for a secondary: store.replicaGit */
	char *replica_git;                /* store.replicaGit, or NULL: git from PATH */
	char *primary_git;                /* store.primaryGit, or NULL: git from PATH */
	char *pack_index_hook;            /* what a secondary's git runs for the primary's pack index, or NULL */
	int packed_ref_updates;           /* a secondary's push of this many refs goes to packed-refs
					     (0: never, or no replica git) */
	_Atomic uint64_t pack_index_took, pack_index_indexed;   /* what those gits did with it */
	struct packcache pack_cache;      /* packCache.*; used when pack_objects_hook is set */
	char *pack_objects_hook;          /* hooks/grove-pack-objects, or NULL: no cache */
	char *metrics_listen;             /* store.metricsListen, or NULL */
	_Atomic int64_t max_ref_list;     /* bytes of a push's ref list (store.maxRefListSize) */
	_Atomic int trailing_nice;        /* a trailing replica's git (store.trailingNice); 0: no spool either (the default) */
	_Atomic int64_t trailing_spool;   /* bytes its push may be ahead of it (store.trailingSpool) */
};

/*
 * Resolves a request's repository to its directory (into out). Checks the
 * storage name and the path; with must_exist, GROVE_ENOTFOUND when absent.
 */
int store_repo_path(struct store *st, const Grove__V1__Repository *repo, bool must_exist, struct strbuf *out);
bool store_repo_exists(const char *path);

/*
 * GROVE_ETOOBIG, with a message naming the store, its root and the free
 * space, when the root's filesystem has less than st->min_free bytes free:
 * a push refused before it starts says "disk full" instead of git's
 * "unpacker error" halfway through.
 */
int store_check_space(struct store *st);
/* Whether the root's filesystem has st->min_free bytes free (an rpc_health_fn). */
bool store_writable(void *data);

/* Creates an empty bare repository at path, atomically (via tmp_dir). */
int store_repo_create(struct store *st, const char *path, const char *rel, const char *default_branch);
/* Moves a prepared repository at staged to path (making its parents). */
int store_repo_install(const char *staged, const char *path, const char *rel);
/* Moves path to the trash and deletes it. */
int store_repo_remove(struct store *st, const char *path);
/* "main" or "refs/heads/main" → "refs/heads/main" into out; GROVE_EINVAL if not a valid branch. */
int store_branch_ref(const char *name, struct strbuf *out);
/* The checksum of refs and HEAD as defined in repository.proto. */
int store_repo_checksum(const char *path, char out[65], uint64_t *nrefs);
/* HEAD's symbolic target into out. */
/*
 * A push's ref update lines ("OLD NEW REF", as pre-receive reads them) as
 * this repository would make them: each with the ref's value here in
 * place of OLD (zeros: no such ref). Replicas that vote these agree on
 * where each ref is now, not only on what the pusher asked.
 */
int store_repo_ref_updates(const char *path, const char *in, size_t len, struct strbuf *out);
int store_repo_head(const char *path, struct strbuf *out);

/* packcache.c: the pack-objects cache's settings (packCache.*); the git
 * options and environment upload-pack gets to use it (none when off). */
int store_pack_cache_setup(struct store *st, struct config *cfg);
void store_pack_cache_argv(const struct store *st, struct strvec *argv);
char **store_pack_cache_env(const struct store *st, char **env);

/* metrics.c: GET /metrics on store.metricsListen, if set. */
struct metricsd;
int store_metrics_start(struct store *st, struct metricsd **out);

/* pushrefs.c: a voted push's refs, from its vote to its end. put keeps the
 * voted lines; checksum (after git) hashes what those refs are now into
 * out (64 hex digits, "" if the push voted nothing) and forgets them;
 * drop forgets them. */
void store_push_refs_put(uint64_t txn, const char *node, const char *lines, size_t len);
int store_push_refs_checksum(uint64_t txn, const char *node, const char *path, char out[65]);
void store_push_refs_drop(uint64_t txn, const char *node);
int store_repo_set_head(const char *path, const char *ref);

/*
 * The environment for git runs that trigger hooks for a push. *any_active
 * (if not NULL) says whether any hook has someone to call: if not, git can
 * run without hooks at all.
 */
char **store_hook_env(struct store *st, const Grove__V1__HookPayload *payload,
		      const Grove__V1__Repository *repo, const char *git_protocol, bool *any_active);

/*
 * The payload for a write's hooks: the request's (or an empty one) with the
 * transaction of a cluster router's metadata, if the call carries one, into
 * *out (which points into req_payload and txn: keep both alive).
 * GROVE_EINVAL for malformed transaction metadata.
 */
int store_write_payload(struct rpc_call *call, const Grove__V1__HookPayload *req_payload,
			Grove__V1__HookPayload *out, struct txn_info *txn);

/* Runs a git command to completion; its stderr (trimmed) becomes the error message. */
int store_git(struct store *st, const struct strvec *argv, char *const *env, struct strbuf *out);

void store_register_repository_service(struct rpc_server *srv, struct store *st);
void store_register_ref_service(struct rpc_server *srv, struct store *st);
void store_register_ssh_service(struct rpc_server *srv, struct store *st);
void store_register_hook_service(struct rpc_server *srv, struct store *st);

/*
 * A pre-receive or post-receive hook of a push, its request in (from gRPC
 * or the hook wire): the operator's hook, the gate's (forwarded), the
 * push's vote. Its output goes to say(sink, …), false for stdout. 0 with
 * the hook's exit status in *code, or an error (the hook could not run).
 */
struct hook_run {
	const char *name;                 /* "pre-receive" */
	Grove__V1__HookRequest *first;    /* payload, push options, git env */
	struct strbuf in;                 /* the ref update lines */
	int (*say)(void *sink, const char *data, size_t len, bool err);
	void *sink;
	const char *via;                  /* "wire" or "grpc", for the log */
};
int store_hook_run(struct store *st, struct hook_run *h, int *code);
/* Whether a path git gave a hook (its quarantine) lies inside the repository at repo. */
bool store_path_inside(const char *value, const char *repo);
/*
 * The pack index a push's primary shares with its secondaries
 * (packindex.c): share, from the primary's pre-receive (a failure is only
 * logged: the secondaries then index the pack themselves); serve, to a
 * secondary's git asking through `grove-hook pack-index`.
 */
void store_pack_index_share(struct store *st, const struct hook_run *h);
int store_pack_index_serve(struct store *st, const Grove__V1__HookPayload *p,
			   int (*say)(void *, const char *, size_t, bool), void *sink);
/* What the secondary's git did with it ("took", or "indexed: why"): the log
 * and the metrics. Returns the hook's exit code (0). */
int store_pack_index_outcome(struct store *st, const Grove__V1__HookPayload *p, const char *what, size_t len);
/* One vote of a write to the router of payload p: *commit, and its message. */
int store_hook_vote(struct store *st, const Grove__V1__HookPayload *p, Grove__V1__VoteTransactionRequest__Phase phase,
		    ProtobufCBinaryData vote, bool *commit, char *msg, size_t msgsize);

/* The hook wire (hooksock.c): `grove-hook` calls back here, at path. */
struct hooksock;
int hooksock_start(struct store *st, const char *path, struct hooksock **out);
/* Stops accepting, waits for the hooks running to end, removes the socket. */
void hooksock_stop(struct hooksock *hs);
void store_register_server_service(struct rpc_server *srv, struct store *st);


#endif
