/* grove.v1.RefService on a store: see proto/grove/v1/ref.proto. */
#include "store/store.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/strvec.h"
#include "grove/v1/ref.pb-c.h"

#include <git2.h>

#define REFS_PER_MESSAGE 200

struct ref_row {
	char *name;
	char target[GIT_OID_HEXSZ + 1];
	char peeled[GIT_OID_HEXSZ + 1];
	char *symbolic;
};

static int cmp_rows(const void *a, const void *b)
{
	return strcmp(((const struct ref_row *)a)->name, ((const struct ref_row *)b)->name);
}

static bool matches(const Grove__V1__ListRefsRequest *req, const char *name)
{
	if (!req->n_patterns)
		return true;
	for (size_t i = 0; i < req->n_patterns; i++)
		if (skip_prefix(name, req->patterns[i], NULL))
			return true;
	return false;
}

static void fill_row(git_repository *repo, git_reference *ref, struct ref_row *row)
{
	row->name = xstrdup(git_reference_name(ref));
	if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC) {
		git_reference *resolved = NULL;
		row->symbolic = xstrdup(git_reference_symbolic_target(ref));
		if (!git_reference_resolve(&resolved, ref))
			git_oid_tostr(row->target, sizeof(row->target), git_reference_target(resolved));
		git_reference_free(resolved);
		return;
	}
	git_oid_tostr(row->target, sizeof(row->target), git_reference_target(ref));
	/* Annotated tags: what they finally point at, as `git show-ref -d` does. */
	git_object *obj = NULL, *peeled = NULL;
	if (!git_object_lookup(&obj, repo, git_reference_target(ref), GIT_OBJECT_ANY) &&
	    git_object_type(obj) == GIT_OBJECT_TAG && !git_tag_peel(&peeled, (git_tag *)obj))
		git_oid_tostr(row->peeled, sizeof(row->peeled), git_object_id(peeled));
	git_object_free(peeled);
	git_object_free(obj);
}

static void list_refs(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__ListRefsRequest *req = NULL;
	struct strbuf path = STRBUF_INIT;
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	struct ref_row *rows = NULL;
	size_t n = 0, cap = 0;
	int ret, r;

	ret = rpc_call_recv_one(call, &grove__v1__list_refs_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (ret)
		goto out;
	if (git_repository_open_bare(&repo, path.buf) < 0 || git_reference_iterator_new(&it, repo) < 0) {
		ret = error_set(GROVE_EIO, "cannot read refs: %s", git_error_last()->message);
		goto out;
	}
	while (!(r = git_reference_next(&ref, it))) {
		if (matches(req, git_reference_name(ref))) {
			if (n == cap)
				rows = xrealloc(rows, (cap = cap ? cap * 2 : 64) * sizeof(*rows));
			memset(&rows[n], 0, sizeof(rows[n]));
			fill_row(repo, ref, &rows[n++]);
		}
		git_reference_free(ref);
	}
	qsort(rows, n, sizeof(*rows), cmp_rows);
	if (req->head && !git_reference_lookup(&ref, repo, "HEAD")) {
		/* HEAD first, as the proto promises. */
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		memmove(rows + 1, rows, n * sizeof(*rows));
		memset(&rows[0], 0, sizeof(rows[0]));
		fill_row(repo, ref, &rows[0]);
		n++;
		git_reference_free(ref);
	}
	for (size_t i = 0; !ret && (i < n || i == 0); i += REFS_PER_MESSAGE) {
		Grove__V1__ListRefsResponse resp = GROVE__V1__LIST_REFS_RESPONSE__INIT;
		Grove__V1__ListRefsResponse__Ref refs[REFS_PER_MESSAGE];
		Grove__V1__ListRefsResponse__Ref *ptrs[REFS_PER_MESSAGE];
		size_t k = 0;
		for (; k < REFS_PER_MESSAGE && i + k < n; k++) {
			struct ref_row *row = &rows[i + k];
			grove__v1__list_refs_response__ref__init(&refs[k]);
			refs[k].name = row->name;
			refs[k].target = row->target;
			refs[k].peeled_target = row->peeled;
			refs[k].symbolic_target = row->symbolic ? row->symbolic : "";
			ptrs[k] = &refs[k];
		}
		if (!k)
			break;   /* no refs: the stream ends with no message */
		resp.n_references = k;
		resp.references = ptrs;
		ret = rpc_call_send(call, &resp.base);
	}
out:
	rpc_call_done(call, ret);
	for (size_t i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].symbolic);
	}
	free(rows);
	git_reference_iterator_free(it);
	git_repository_free(repo);
	FREE_MSG(req);
	strbuf_release(&path);
}

static bool is_oid(const char *s, bool allow_empty)
{
	if (!s || !*s)
		return allow_empty;
	if (strlen(s) != GIT_OID_HEXSZ)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void update_reference(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__UpdateReferenceRequest *req = NULL;
	Grove__V1__UpdateReferenceResponse resp = GROVE__V1__UPDATE_REFERENCE_RESPONSE__INIT;
	struct strbuf path = STRBUF_INIT, err;
	struct strvec argv = STRVEC_INIT;
	char **env = NULL;
	int valid = 0, ret;
	Grove__V1__HookPayload payload;
	struct txn_info txn;
	static const char zero[] = "0000000000000000000000000000000000000000";

	strbuf_init(&err, 64 * 1024);
	ret = rpc_call_recv_one(call, &grove__v1__update_reference_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (ret)
		goto out;
	if (!req->reference || !skip_prefix(req->reference, "refs/", NULL) ||
	    git_reference_name_is_valid(&valid, req->reference) < 0 || !valid) {
		ret = error_set(GROVE_EINVAL, "\"%.200s\" is not a valid ref name under refs/", req->reference ? req->reference : "");
		goto out;
	}
	if (!is_oid(req->new_oid, false) || !is_oid(req->old_oid, true)) {
		ret = error_set(GROVE_EINVAL, "new_oid and old_oid must be 40 lowercase hex digits (old_oid may be empty)");
		goto out;
	}
	/* Through git, so that the reference-transaction hook votes on it just
	 * as it does for a push. */
	gitcmd_init(&argv, &st->git_hooks, path.buf);
	strvec_push(&argv, "update-ref");
	strvec_push(&argv, "-m");
	strvec_push(&argv, "grove: UpdateReference");
	if (!strcmp(req->new_oid, zero)) {
		strvec_push(&argv, "-d");
		strvec_push(&argv, "--");
		strvec_push(&argv, req->reference);
	} else {
		strvec_push(&argv, "--");
		strvec_push(&argv, req->reference);
		strvec_push(&argv, req->new_oid);
	}
	if (req->old_oid && *req->old_oid)
		strvec_push(&argv, req->old_oid);
	if ((ret = store_write_payload(call, req->hook_payload, &payload, &txn)))
		goto out;
	env = store_hook_env(st, &payload, req->repository, NULL, NULL);
	ret = proc_run(strvec_argv(&argv), env, NULL, NULL, 0, NULL, &err);
	if (ret > 0) {
		strbuf_rtrim(&err);
		/* git says "cannot lock ref …: is at X but expected Y": the CAS failed. */
		ret = error_set(strstr(err.buf, "but expected") || strstr(err.buf, "already exists") ||
						strstr(err.buf, "unable to resolve")
					? GROVE_EPRECOND
					: (strstr(err.buf, "not a valid") || strstr(err.buf, "nonexistent object") ||
					   strstr(err.buf, "trying to write")
						   ? GROVE_EINVAL
						   : GROVE_EINTERNAL),
				"update of %s refused: %s", req->reference, err.buf);
	}
	if (!ret)
		log_info("ref.updated", "repo=%s ref=%s old=%s new=%s", req->repository->relative_path,
			 req->reference, req->old_oid, req->new_oid);
out:
	rpc_call_reply(call, ret, &resp.base);
	proc_env_free(env);
	strvec_clear(&argv);
	FREE_MSG(req);
	strbuf_release(&path);
	strbuf_release(&err);
}

static void fill_author(Grove__V1__CommitAuthor *a, const git_signature *sig)
{
	grove__v1__commit_author__init(a);
	a->name = sig->name;
	a->email = sig->email;
	a->date = sig->when.time;
	a->timezone_offset = sig->when.offset;
}

static void find_commit(struct rpc_call *call, void *data)
{
	struct store *st = data;
	Grove__V1__FindCommitRequest *req = NULL;
	Grove__V1__FindCommitResponse resp = GROVE__V1__FIND_COMMIT_RESPONSE__INIT;
	Grove__V1__FindCommitResponse__Commit c = GROVE__V1__FIND_COMMIT_RESPONSE__COMMIT__INIT;
	Grove__V1__CommitAuthor author, committer;
	struct strbuf path = STRBUF_INIT, subject = STRBUF_INIT;
	git_repository *repo = NULL;
	git_object *obj = NULL;
	git_commit *commit = NULL;
	char id[GIT_OID_HEXSZ + 1], tree[GIT_OID_HEXSZ + 1];
	char parents[16][GIT_OID_HEXSZ + 1];
	char *parent_ptrs[16];
	int ret;

	ret = rpc_call_recv_one(call, &grove__v1__find_commit_request__descriptor, (ProtobufCMessage **)&req);
	if (!ret)
		ret = store_repo_path(st, req->repository, true, &path);
	if (ret)
		goto out;
	if (!req->revision || !*req->revision || req->revision[0] == '-' || strlen(req->revision) > 1024) {
		ret = error_set(GROVE_EINVAL, "revision must be 1 to 1024 bytes and not start with '-'");
		goto out;
	}
	if (git_repository_open_bare(&repo, path.buf) < 0) {
		ret = error_set(GROVE_EIO, "cannot open repository: %s", git_error_last()->message);
		goto out;
	}
	/* A revision that names no commit is an answer: no commit. */
	if (git_revparse_single(&obj, repo, req->revision) < 0 ||
	    git_object_peel((git_object **)&commit, obj, GIT_OBJECT_COMMIT) < 0)
		goto out;
	git_oid_tostr(id, sizeof(id), git_commit_id(commit));
	git_oid_tostr(tree, sizeof(tree), git_commit_tree_id(commit));
	c.id = id;
	c.tree_id = tree;
	const char *summary = git_commit_summary(commit);
	strbuf_addstr(&subject, summary ? summary : "");
	c.subject = subject.buf;
	c.body = (char *)(git_commit_message(commit) ? git_commit_message(commit) : "");
	fill_author(&author, git_commit_author(commit));
	fill_author(&committer, git_commit_committer(commit));
	c.author = &author;
	c.committer = &committer;
	unsigned np = git_commit_parentcount(commit);
	for (unsigned i = 0; i < np && i < 16; i++) {
		git_oid_tostr(parents[i], sizeof(parents[i]), git_commit_parent_id(commit, i));
		parent_ptrs[i] = parents[i];
	}
	c.n_parent_ids = np < 16 ? np : 16;
	c.parent_ids = parent_ptrs;
	resp.commit = &c;
out:
	rpc_call_reply(call, ret, &resp.base);
	git_commit_free(commit);
	git_object_free(obj);
	git_repository_free(repo);
	FREE_MSG(req);
	strbuf_release(&path);
	strbuf_release(&subject);
}

void store_register_ref_service(struct rpc_server *srv, struct store *st)
{
	rpc_server_handle(srv, "/grove.v1.RefService/ListRefs", list_refs, st);
	rpc_server_handle(srv, "/grove.v1.RefService/UpdateReference", update_reference, st);
	rpc_server_handle(srv, "/grove.v1.RefService/FindCommit", find_commit, st);
}
