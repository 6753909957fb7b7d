/*
 * Repositories on the store's disk: locating them from a request, creating
 * and removing them atomically, and the in-process reads (HEAD, checksum)
 * done with libgit2.
 */
#include "store/store.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/repopath.h"
#include "lib/repocheck.h"
#include "lib/strvec.h"

#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

int store_repo_path(struct store *st, const Grove__V1__Repository *repo, bool must_exist, struct strbuf *out)
{
	int ret;
	if (!repo)
		return error_set(GROVE_EINVAL, "the request names no repository: set repository.storage_name and repository.relative_path");
	if (!repo->storage_name || !*repo->storage_name)
		return error_set(GROVE_EINVAL, "repository.storage_name is empty");
	if (strcmp(repo->storage_name, st->name))
		return error_set(GROVE_ENOTFOUND, "unknown storage \"%.64s\": this store serves \"%s\"",
				 repo->storage_name, st->name);
	ret = repopath_map(st->root, repo->relative_path, out);
	if (ret)
		return error_wrap(ret, "invalid repository.relative_path");
	if (must_exist && !store_repo_exists(out->buf))
		return error_set(GROVE_ENOTFOUND, "repository %s does not exist on storage %s: create it first",
				 repo->relative_path, st->name);
	return 0;
}

bool store_repo_exists(const char *path)
{
	struct stat sb;
	char head[4096];
	snprintf(head, sizeof(head), "%s/HEAD", path);
	return !stat(head, &sb) && S_ISREG(sb.st_mode);
}

int store_branch_ref(const char *name, struct strbuf *out)
{
	int valid = 0;
	if (!name || !*name)
		return error_set(GROVE_EINVAL, "branch name is empty");
	if (strlen(name) > 255)
		return error_set(GROVE_EINVAL, "branch name longer than 255 bytes");
	if (!skip_prefix(name, "refs/heads/", NULL))
		strbuf_addstr(out, "refs/heads/");
	strbuf_addstr(out, name);
	if (git_reference_name_is_valid(&valid, out->buf) < 0 || !valid || name[0] == '-')
		return error_set(GROVE_EINVAL, "\"%.255s\" is not a valid branch name", name);
	return 0;
}

/* The subcommand of a gitcmd_init command line, for messages. */
static const char *git_subcommand(const struct strvec *argv)
{
	for (size_t i = 1; i < argv->n; i++) {
		if (!strcmp(argv->v[i], "-c"))
			i++;
		else if (argv->v[i][0] != '-')
			return argv->v[i];
	}
	return "?";
}

int store_git(struct store *st, const struct strvec *argv, char *const *env, struct strbuf *out)
{
	struct strbuf err;
	int ret;
	strbuf_init(&err, 1 << 20);
	ret = proc_run(strvec_argv(argv), env, NULL, NULL, 0, out, &err);
	if (ret > 0) {
		strbuf_rtrim(&err);
		ret = error_set(GROVE_EINTERNAL, "git %s failed (exit %d): %s", git_subcommand(argv), ret,
				err.len ? err.buf : "no message");
	}
	strbuf_release(&err);
	return ret;
}

static int set_grove_path(const char *repo, const char *rel)
{
	git_config *cfg = NULL;
	char path[4096];
	int ret;
	if ((ret = fs_pathf(path, sizeof(path), "%s/config", repo)))
		return ret;
	/* Operators can map a hashed directory back to its name. */
	if (git_config_open_ondisk(&cfg, path) < 0 || git_config_set_string(cfg, "grove.relativepath", rel) < 0)
		ret = error_set(GROVE_EIO, "cannot write %s: %s", path,
				git_error_last() ? git_error_last()->message : "?");
	git_config_free(cfg);
	return ret;
}

int store_repo_install(const char *staged, const char *path, const char *rel)
{
	char parent[4096];
	int ret;
	strlcpy_(parent, path, sizeof(parent));
	*strrchr(parent, '/') = '\0';
	ret = fs_mkdir_p(parent, 0750);
	if (ret)
		return ret;
	/* rename(2) makes the repository appear whole or not at all; a racing
	 * create of the same path finds the target in place and loses. */
	if (rename(staged, path)) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return error_set(GROVE_EEXISTS, "repository %s already exists", rel);
		return error_set(GROVE_EIO, "rename into %s: %s", path, strerror(errno));
	}
	return 0;
}

/* Free bytes under the root, or -1 when statvfs cannot tell. */
static int64_t free_space(const struct store *st)
{
	struct statvfs vfs;
	if (statvfs(st->root, &vfs))
		return -1;
	return (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize);
}

bool store_writable(void *data)
{
	const struct store *st = data;
	int64_t free_bytes;
	/* Not knowing is no reason to refuse: git reports a real ENOSPC. */
	return !st->min_free || (free_bytes = free_space(st)) < 0 || free_bytes >= st->min_free;
}

int store_check_space(struct store *st)
{
	int64_t free_bytes;

	if (store_writable(st))
		return 0;
	free_bytes = free_space(st);
	log_warn("store.disk_full", "root=%s free_bytes=%lld min_free=%lld", st->root, (long long)free_bytes,
		 (long long)st->min_free);
	return error_set(GROVE_ETOOBIG,
			 "store %s: its disk is full (%lld KiB free under %s, store.minFreeSpace is %lld KiB): the push "
			 "was refused before anything was written; free space on that disk (or grow it) and push again",
			 st->name, (long long)(free_bytes >> 10), st->root, (long long)(st->min_free >> 10));
}

int store_repo_create(struct store *st, const char *path, const char *rel, const char *default_branch)
{
	struct strbuf ref = STRBUF_INIT;
	struct strvec argv = STRVEC_INIT;
	char tmpl[4096], staged[4200];
	char *tmp = NULL;
	int ret;

	ret = store_branch_ref(default_branch && *default_branch ? default_branch : "main", &ref);
	if (ret)
		goto out;
	if (store_repo_exists(path)) {
		ret = error_set(GROVE_EEXISTS, "repository %s already exists", rel);
		goto out;
	}
	snprintf(tmpl, sizeof(tmpl), "%s/create-XXXXXX", st->tmp_dir);
	tmp = mkdtemp(tmpl);
	if (!tmp) {
		ret = error_set(GROVE_EIO, "mkdtemp in %s: %s", st->tmp_dir, strerror(errno));
		goto out;
	}
	snprintf(staged, sizeof(staged), "%s/repo.git", tmp);
	gitcmd_init(&argv, &st->git_nohooks, NULL);
	strvec_push(&argv, "init");
	strvec_push(&argv, "--bare");
	strvec_push(&argv, "--quiet");
	/* No templates: no sample hooks, no description, nothing to trust. */
	strvec_push(&argv, "--template=");
	strvec_pushf(&argv, "--initial-branch=%s", ref.buf + strlen("refs/heads/"));
	strvec_push(&argv, "--");
	strvec_push(&argv, staged);
	ret = store_git(st, &argv, NULL, NULL);
	if (ret)
		goto out;
	ret = set_grove_path(staged, rel);
	if (ret)
		goto out;
	ret = store_repo_install(staged, path, rel);
out:
	if (tmp)
		fs_rmtree(tmp);
	strvec_clear(&argv);
	strbuf_release(&ref);
	return ret;
}

int store_repo_remove(struct store *st, const char *path)
{
	char tmpl[4096];
	char *dir;
	snprintf(tmpl, sizeof(tmpl), "%s/remove-XXXXXX", st->trash_dir);
	dir = mkdtemp(tmpl);
	if (!dir)
		return error_set(GROVE_EIO, "mkdtemp in %s: %s", st->trash_dir, strerror(errno));
	char target[4200];
	snprintf(target, sizeof(target), "%s/repo.git", dir);
	/* Gone from its place in one step; the slow delete happens after. */
	if (rename(path, target)) {
		int e = errno;
		rmdir(dir);
		if (e == ENOENT)
			return error_set(GROVE_ENOTFOUND, "repository does not exist");
		return error_set(GROVE_EIO, "cannot move %s to the trash: %s", path, strerror(e));
	}
	return fs_rmtree(dir);
}

static int open_repo(const char *path, git_repository **repo)
{
	if (git_repository_open_bare(repo, path) < 0)
		return error_set(GROVE_EIO, "cannot open repository: %s",
				 git_error_last() ? git_error_last()->message : "?");
	return 0;
}

int store_repo_checksum(const char *path, char out[65], uint64_t *nrefs)
{
	return repo_checksum(path, out, nrefs);
}

int store_repo_ref_updates(const char *path, const char *in, size_t len, struct strbuf *out)
{
	git_repository *repo = NULL;
	const char *end = in + len;
	int ret = open_repo(path, &repo);

	while (!ret && in < end) {
		const char *nl = memchr(in, '\n', (size_t)(end - in));
		size_t n = nl ? (size_t)(nl - in) : (size_t)(end - in);
		char line[1200], cur[GIT_OID_HEXSZ + 1];
		const char *sp1, *sp2;
		git_oid oid;
		int r;

		if (n >= sizeof(line) || !(sp1 = memchr(in, ' ', n)) || !(sp2 = memchr(sp1 + 1, ' ', (size_t)(in + n - sp1 - 1)))) {
			ret = error_set(GROVE_EINVAL, "a malformed ref update line");
			break;
		}
		memcpy(line, sp2 + 1, (size_t)(in + n - sp2 - 1));
		line[in + n - sp2 - 1] = '\0';
		r = git_reference_name_to_id(&oid, repo, line);
		if (r == GIT_ENOTFOUND)
			memset(cur, '0', GIT_OID_HEXSZ), cur[GIT_OID_HEXSZ] = '\0';
		else if (r < 0)
			snprintf(cur, sizeof(cur), "unreadable");
		else
			git_oid_tostr(cur, sizeof(cur), &oid);
		strbuf_addf(out, "%s %.*s\n", cur, (int)(in + n - sp1 - 1), sp1 + 1);
		in += n + (nl != NULL);
	}
	git_repository_free(repo);
	return ret;
}

int store_repo_head(const char *path, struct strbuf *out)
{
	git_repository *repo = NULL;
	git_reference *head = NULL;
	int ret = open_repo(path, &repo);
	if (ret)
		goto out;
	if (git_reference_lookup(&head, repo, "HEAD") < 0) {
		ret = error_set(GROVE_EIO, "cannot read HEAD: %s", git_error_last()->message);
		goto out;
	}
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		strbuf_addstr(out, git_reference_symbolic_target(head));
	} else {
		char hex[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hex, sizeof(hex), git_reference_target(head));
		strbuf_addstr(out, hex);
	}
out:
	git_reference_free(head);
	git_repository_free(repo);
	return ret;
}

int store_repo_set_head(const char *path, const char *refname)
{
	git_repository *repo = NULL;
	git_reference *head = NULL;
	int ret = open_repo(path, &repo);
	if (ret)
		goto out;
	if (git_reference_symbolic_create(&head, repo, "HEAD", refname, 1, "grove: set default branch") < 0)
		ret = error_set(GROVE_EIO, "cannot set HEAD: %s", git_error_last()->message);
out:
	git_reference_free(head);
	git_repository_free(repo);
	return ret;
}

char **store_hook_env(struct store *st, const Grove__V1__HookPayload *payload,
		      const Grove__V1__Repository *repo, const char *git_protocol, bool *any_active)
{
	char custom_pre[4096], custom_post[4096], active[128];
	bool remote = payload && payload->hook_address && *payload->hook_address;
	bool vote = payload && payload->transaction_address && *payload->transaction_address;
	/* The push's checks and its deploy are the primary's; a secondary
	 * only votes (in pre-receive, see service_hook.c). */
	bool primary = !payload || !payload->secondary;

	/* Tell the hook which callbacks have someone to answer them, so that a
	 * push with nothing to check costs no round trip. */
	snprintf(custom_pre, sizeof(custom_pre), "%s/pre-receive", st->custom_hooks ? st->custom_hooks : "/nonexistent");
	snprintf(custom_post, sizeof(custom_post), "%s/post-receive", st->custom_hooks ? st->custom_hooks : "/nonexistent");
	snprintf(active, sizeof(active), "%s%s%s",
		 vote || (primary && (remote || !access(custom_pre, X_OK))) ? "pre-receive," : "",
		 primary && (remote || !access(custom_post, X_OK)) ? "post-receive," : "",
		 vote ? "reference-transaction," : "");
	if (any_active)
		*any_active = active[0] != '\0';
	return hook_env_build(payload, repo, st->hook_address, st->hook_socket, st->secret, active, git_protocol);
}

int store_write_payload(struct rpc_call *call, const Grove__V1__HookPayload *req_payload,
			Grove__V1__HookPayload *out, struct txn_info *txn)
{
	size_t len;
	const char *v = rpc_call_metadata(call, TXN_METADATA_KEY, &len);
	int ret;

	grove__v1__hook_payload__init(out);
	if (req_payload)
		*out = *req_payload;
	if (!v)
		return 0;
	if ((ret = txn_info_parse(v, len, txn)))
		return ret;
	/* The router's word replaces whatever the request said. */
	out->transaction_address = txn->address;
	out->transaction_id = txn->id;
	out->node = txn->node;
	out->secondary = txn->secondary;
	return 0;
}
