/*
 * The admin API's apps and who may use them: /api/v1/apps, their
 * collaborators, housekeeping, and the apps found in the legacy directory.
 */
#include "gate/admin/admin_int.h"
#include "gate/gate.h"
#include "gate/housekeeping.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "grove/v1/cluster.pb-c.h"
#include "grove/v1/repository.pb-c.h"

#include <dirent.h>

/* Rows of (name, deploy_branch, route, locked, created_at, updated_at, max_push_mb). */
static int app_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(values[0]));
	json_object_set_new(o, "deploy_branch", jstr(values[1]));
	json_object_set_new(o, "route", jstr(values[2]));
	json_object_set_new(o, "locked", json_boolean(values[3] && strcmp(values[3], "0")));
	json_object_set_new(o, "created_at", jstr(values[4]));
	json_object_set_new(o, "updated_at", jstr(values[5]));
	json_object_set_new(o, "max_push_mb", json_integer(values[6] ? strtoll(values[6], NULL, 10) : 0));
	json_array_append_new(ctx, o);
	return 0;
}

static int collaborator_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_array_append_new(ctx, json_pack("{s:o,s:o}", "user", jstr(values[0]), "access", jstr(values[1])));
	return 0;
}

/* One app with its collaborators. */
static int app_json(struct db *db, const char *name, json_t **out)
{
	json_t *list = json_array(), *collab = json_array();
	int ret;

	*out = NULL;
	ret = db_apps_each(db, name, app_row, list);
	if (!ret && !json_array_size(list))
		ret = error_set(GROVE_ENOTFOUND, "no app named %s", name);
	if (!ret)
		ret = db_collaborators_each(db, name, collaborator_row, collab);
	if (!ret) {
		*out = json_incref(json_array_get(list, 0));
		json_object_set(*out, "collaborators", collab);
	}
	json_decref(list);
	json_decref(collab);
	return ret;
}

static int last_push_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_object_set_new(ctx, "last_push",
			    values[0] ? json_pack("{s:s?, s:s?, s:s?, s:s?}", "at", values[0], "by", values[1], "ref",
						  values[2], "commit", values[3])
				      : json_null());
	return 0;
}

static int last_deployment_row(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	json_object_set_new(ctx, "last_deployment", deployment_object(values));
	return 0;
}

/* One replica as the router reports it, with what its last verification found ("verified": null, never). */
static json_t *replica_json(const Grove__V1__ReplicaInfo *ri)
{
	json_t *v = json_null();
	if (ri->checked_at_ms) {
		char when[TIME_ISO_LEN];
		time_iso8601(ri->checked_at_ms / 1000, when);
		v = json_pack("{s:s, s:b, s:I, s:s}", "checksum", ri->checksum ? ri->checksum : "", "matches",
			      ri->checksum_matches, "generation", (json_int_t)ri->checksum_generation, "at", when);
	}
	return json_pack("{s:s, s:I, s:b, s:b, s:b, s:o}", "store", ri->node, "generation", (json_int_t)ri->generation,
			 "healthy", ri->healthy, "up_to_date", ri->up_to_date, "primary", ri->primary, "verified", v);
}

/* A legacy app's repository: its size on disk and its default branch. */
static void legacy_info(const struct repo_env *env, const char *rel, json_t *repo)
{
	char path[4096], head[256];
	uint64_t bytes = 0;

	if (fs_pathf(path, sizeof(path), "%s/%s", env->legacy_dir, rel) || access(path, F_OK)) {
		json_object_set_new(repo, "exists", json_false());
		return;
	}
	json_object_set_new(repo, "exists", json_true());
	/* Disk used, as du counts it (blocks, folders too), as the cluster's
	 * stores report theirs. */
	if (!fs_disk_usage(path, &bytes))
		json_object_set_new(repo, "size_bytes", json_integer((json_int_t)bytes));
	if (!repo_local_head(path, head, sizeof(head)))
		json_object_set_new(repo, "default_branch", json_string(head));
}

/* A cluster app's repository: size, default branch, and where the copies are. */
static void cluster_info(const struct repo_env *env, const char *name, json_t *repo)
{
	Grove__V1__FindDefaultBranchRequest breq = GROVE__V1__FIND_DEFAULT_BRANCH_REQUEST__INIT;
	Grove__V1__GetRepositoryRequest greq = GROVE__V1__GET_REPOSITORY_REQUEST__INIT;
	Grove__V1__FindDefaultBranchResponse *bresp = NULL;
	Grove__V1__GetRepositoryResponse *gresp = NULL;
	struct repo_remote r = { .repo = GROVE__V1__REPOSITORY__INIT };
	char rel[128];
	uint64_t bytes = 0;
	int rc = repo_remote_open(env, name, rel, sizeof(rel), &r);

	if (!rc)
		rc = repo_remote_size(&r, &bytes);
	if (rc) {
		json_object_set_new(repo, "exists", json_false());
		if (rc != GROVE_ENOTFOUND)
			json_object_set_new(repo, "error", json_string(error_msg()));
		goto out;
	}
	json_object_set_new(repo, "exists", json_true());
	json_object_set_new(repo, "size_bytes", json_integer((json_int_t)bytes));
	breq.repository = &r.repo;
	if (!rpc_unary(r.cl, "/grove.v1.RepositoryService/FindDefaultBranch", &breq.base,
		       &grove__v1__find_default_branch_response__descriptor, (ProtobufCMessage **)&bresp, 10000))
		json_object_set_new(repo, "default_branch", json_string(bresp->name ? bresp->name : ""));
	/* A cluster router says where the copies are; a lone store does not know the method. */
	greq.relative_path = rel;
	if (!rpc_unary(r.cl, "/grove.v1.ClusterService/GetRepository", &greq.base,
		       &grove__v1__get_repository_response__descriptor, (ProtobufCMessage **)&gresp, 10000) &&
	    gresp->repository) {
		json_t *reps = json_array();
		for (size_t i = 0; i < gresp->repository->n_replicas; i++)
			json_array_append_new(reps, replica_json(gresp->repository->replicas[i]));
		json_object_set_new(repo, "generation", json_integer((json_int_t)gresp->repository->generation));
		json_object_set_new(repo, "replicas", reps);
	}
out:
	FREE_MSG(bresp);
	FREE_MSG(gresp);
	rpc_client_free(r.cl);
}

/* Size and default branch where the repository lives; replicas on a cluster. */
static void repository_info(struct call *x, const char *name, const char *route, json_t *o)
{
	const struct repo_env *env = x->a->repos;
	json_t *repo;
	char rel[128];

	if (!env)
		return;
	repo = json_object();
	snprintf(rel, sizeof(rel), "%s.git", name);
	if (!strcmp(route, "legacy"))
		legacy_info(env, rel, repo);
	else if (env->cluster_address)
		cluster_info(env, name, repo);
	json_object_set_new(o, "repository", repo);
}

/* ---- handlers ---- */

int apps_list(struct call *x)
{
	json_t *list = json_array();
	int ret = db_apps_each(x->db, NULL, app_row, list);
	if (ret) {
		json_decref(list);
		return reply_grove_error(x->out, ret);
	}
	return call_answer(x, MHD_HTTP_OK, list);
}

int app_describe(struct call *x, const char *name, bool repository, json_t **out)
{
	json_t *j = NULL;
	int ret = app_json(x->db, name, &j);

	*out = NULL;
	if (ret)
		return ret;
	json_object_set_new(j, "last_push", json_null());
	json_object_set_new(j, "last_deployment", json_null());
	ret = db_app_last_push(x->db, name, last_push_row, j);
	if (!ret)
		ret = db_deploys_each(x->db, name, 1, last_deployment_row, j);
	if (ret) {
		json_decref(j);
		return ret;
	}
	if (repository)
		repository_info(x, name, json_string_value(json_object_get(j, "route")) ?: "", j);
	*out = j;
	return 0;
}

int app_get(struct call *x)
{
	json_t *j = NULL;
	int ret = app_describe(x, x->arg[0], true, &j);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_OK, j);
}

int app_create(struct call *x)
{
	static const char *const fields[] = { "name", "deploy_branch", "route", "max_push_mb", NULL };
	const char *name, *branch, *route_s;
	enum route route;
	bool has_max = false;
	int64_t max_mb = 0;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "name", true, &name) || call_get_str(x, "deploy_branch", false, &branch) ||
	    call_get_str(x, "route", false, &route_s) || call_get_int(x, "max_push_mb", 0, GATE_MAX_PUSH_MB, &has_max, &max_mb))
		return x->out->status;
	branch = short_branch(branch ? branch : x->a->default_branch);
	if (check_branch(x->out, branch))
		return x->out->status;
	if (route_s) {
		if (route_parse(route_s, &route))
			return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"route\" must be \"legacy\" or \"cluster\"");
	} else {
		/* The canary: a fixed share of new apps, chosen by a stable hash of the
		 * name, so raising the share only ever adds apps to the cluster side. */
		bool set;
		route = (int)(fnv1a32(name) % 100) < canary_now(x, &set) ? ROUTE_CLUSTER : ROUTE_LEGACY;
	}
	ret = db_begin(x->db, "creating an app");
	if (!ret)
		ret = db_app_create(x->db, name, branch, route);
	if (!ret && has_max)
		ret = db_app_set_max_push(x->db, name, max_mb);
	if (call_txn_end(x, ret, "creating an app"))
		return x->out->status;
	x->arg[0] = name;
	if (app_get(x) == MHD_HTTP_OK)
		x->out->status = MHD_HTTP_CREATED;
	return x->out->status;
}

/*
 * Apps found in the legacy directory (an existing NFS folder of a platform,
 * `<app>.git` each) but unknown to the gate become apps on the legacy route,
 * with HEAD's branch as their deploy branch. Names that are not app names
 * are listed, not imported.
 */
int apps_import_legacy(struct call *x)
{
	json_t *imported = json_array(), *skipped = json_array();
	DIR *d = x->a->repos ? opendir(x->a->repos->legacy_dir) : NULL;
	struct dirent *e;

	if (!d) {
		json_decref(imported);
		json_decref(skipped);
		return reply_error(x->out, MHD_HTTP_CONFLICT, "the legacy directory cannot be read: %s",
				   x->a->repos ? strerror(errno) : "no legacy directory configured");
	}
	while ((e = readdir(d))) {
		char name[GATE_APP_NAME_MAX + 1], head[1100] = "", path[4200];
		struct app existing = { 0 };
		if (e->d_name[0] == '.' || !ends_with(e->d_name, ".git"))
			continue;
		if (gate_app_from_path(e->d_name, name)) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "name", e->d_name, "reason", error_msg()));
			continue;
		}
		if (!db_app_get(x->db, name, &existing)) {
			app_release(&existing);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/HEAD", x->a->repos->legacy_dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "name", e->d_name, "reason", "not a bare repository (no HEAD)"));
			continue;
		}
		if (!fgets(head, sizeof(head), f))
			head[0] = '\0';
		fclose(f);
		head[strcspn(head, "\n")] = '\0';
		const char *branch = x->a->default_branch;
		const char *ref;
		if (skip_prefix(head, "ref: refs/heads/", &ref) && *ref)
			branch = ref;
		int ret = db_app_create(x->db, name, branch, ROUTE_LEGACY);
		if (ret)
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "name", e->d_name, "reason", error_msg()));
		else
			json_array_append_new(imported, json_pack("{s:s, s:s}", "name", name, "deploy_branch", branch));
	}
	closedir(d);
	log_info("admin.import_legacy", "imported=%zu skipped=%zu", json_array_size(imported), json_array_size(skipped));
	return call_answer(x, MHD_HTTP_OK, json_pack("{s:o, s:o}", "imported", imported, "skipped", skipped));
}

/* HEAD of the app's repository, where it lives, names branch from now on. */
static int app_set_default_branch(struct call *x, const char *branch)
{
	struct app app = { 0 };
	int ret;
	if (check_branch(x->out, branch))
		return x->out->status;
	if (!x->a->repos)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot reach the repositories");
	ret = db_app_get(x->db, x->arg[0], &app);
	if (!ret)
		ret = repo_set_default_branch(x->a->repos, app.route, app.name, branch);
	app_release(&app);
	if (ret)
		return reply_grove_error(x->out, ret);
	log_info("admin.default_branch", "app=%s branch=%s", x->arg[0], branch);
	return 0;
}

int app_patch(struct call *x)
{
	static const char *const fields[] = { "deploy_branch", "default_branch", "route", "locked", "max_push_mb", NULL };
	const char *branch, *head, *route_s;
	enum route route = ROUTE_LEGACY;
	bool has_locked = false, locked = false, has_max = false;
	int64_t max_mb = 0;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "deploy_branch", false, &branch) ||
	    call_get_str(x, "default_branch", false, &head) || call_get_str(x, "route", false, &route_s) ||
	    call_get_bool(x, "locked", &has_locked, &locked) ||
	    call_get_int(x, "max_push_mb", 0, GATE_MAX_PUSH_MB, &has_max, &max_mb))
		return x->out->status;
	if (branch) {
		branch = short_branch(branch);
		if (check_branch(x->out, branch))
			return x->out->status;
	}
	if (route_s && route_parse(route_s, &route))
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST, "field \"route\" must be \"legacy\" or \"cluster\"");
	/* The repository's HEAD first: it refuses a branch that does not exist,
	 * and then nothing else has changed. */
	if (head && app_set_default_branch(x, short_branch(head)))
		return x->out->status;
	/* All the changes or none. */
	ret = db_begin(x->db, "changing an app");
	if (!ret && branch)
		ret = db_app_set_deploy_branch(x->db, x->arg[0], branch);
	if (!ret && route_s)
		ret = db_app_set_route(x->db, x->arg[0], route);
	if (!ret && has_locked)
		ret = db_app_set_locked(x->db, x->arg[0], locked);
	if (!ret && has_max)
		ret = db_app_set_max_push(x->db, x->arg[0], max_mb);
	if (call_txn_end(x, ret, "changing an app"))
		return x->out->status;
	if (route_s || has_locked)
		log_info("admin.app_changed", "app=%s route=%s locked=%s", x->arg[0], route_s ? route_s : "",
			 has_locked ? (locked ? "true" : "false") : "");
	return app_get(x);
}

int app_gc_post(struct call *x)
{
	struct strbuf report;
	int ret;
	if (!x->a->repos)
		return reply_error(x->out, MHD_HTTP_CONFLICT, "this gate cannot reach the repositories");
	strbuf_init(&report, 16 * 1024);
	ret = app_gc(x->a->repos, x->db, x->arg[0], &report);
	if (!ret)
		call_answer(x, MHD_HTTP_OK, json_pack("{s:s, s:s}", "name", x->arg[0], "report", report.buf));
	strbuf_release(&report);
	return ret ? reply_grove_error(x->out, ret) : x->out->status;
}

/*
 * POST apps/NAME/verify: each replica's checksum of the app's repository on
 * the cluster, compared now (ClusterService/VerifyRepository); the router
 * queues a repair of any replica that differs.
 */
int app_verify_post(struct call *x)
{
	const struct repo_env *env = x->a->repos;
	Grove__V1__VerifyRepositoryRequest req = GROVE__V1__VERIFY_REPOSITORY_REQUEST__INIT;
	Grove__V1__VerifyRepositoryResponse *resp = NULL;
	struct rpc_client *cl = NULL;
	struct app app = { 0 };
	char rel[128];
	json_t *reps;
	int ret = db_app_get(x->db, x->arg[0], &app);

	if (ret)
		return reply_grove_error(x->out, ret);
	if (app.route != ROUTE_CLUSTER || !env || !env->cluster_address) {
		app_release(&app);
		return reply_error(x->out, MHD_HTTP_CONFLICT, "%s is not on the cluster route: only replicas are verified",
				   x->arg[0]);
	}
	snprintf(rel, sizeof(rel), "%s.git", x->arg[0]);
	req.relative_path = rel;
	if ((ret = rpc_client_new(&cl, env->cluster_address, env->secret)) ||
	    (ret = rpc_unary(cl, "/grove.v1.ClusterService/VerifyRepository", &req.base,
			     &grove__v1__verify_repository_response__descriptor, (ProtobufCMessage **)&resp, 120000))) {
		log_warn("admin.verify_failed", "app=%s error=%s", x->arg[0], error_msg());
		rpc_client_free(cl);
		app_release(&app);
		return reply_error(x->out, MHD_HTTP_SERVICE_UNAVAILABLE,
				   "the cluster could not verify %s now: try again in a minute", x->arg[0]);
	}
	reps = json_array();
	for (size_t i = 0; i < resp->n_replicas; i++) {
		const Grove__V1__ReplicaChecksum *rc = resp->replicas[i];
		json_array_append_new(reps, json_pack("{s:s, s:s, s:b, s:s}", "store", rc->node, "checksum",
						      rc->checksum ? rc->checksum : "", "matches", rc->matches, "error",
						      rc->error ? rc->error : ""));
	}
	log_info("admin.verified", "app=%s replicas=%zu mismatches=%u busy=%b", x->arg[0], resp->n_replicas,
		 resp->mismatches, resp->busy);
	call_answer(x, MHD_HTTP_OK, json_pack("{s:s, s:o, s:i, s:b}", "name", x->arg[0], "replicas", reps, "mismatches",
					      (int)resp->mismatches, "busy", resp->busy));
	FREE_MSG(resp);
	rpc_client_free(cl);
	app_release(&app);
	return x->out->status;
}

/*
 * POST apps/NAME/accept-dataloss {"authoritative": STORE}: STORE's copy of
 * the app's repository becomes the latest (a generation above every
 * replica's) and the others are repaired from it, whatever they held
 * (ClusterService/AcceptDataloss, as `grove cluster accept-dataloss`):
 * what an operator does when the primary's copy is gone and a replica
 * behind it is the best there is. Writes newer than STORE's copy, on any
 * other replica, are lost.
 */
int app_accept_dataloss_post(struct call *x)
{
	static const char *const fields[] = { "authoritative", NULL };
	const struct repo_env *env = x->a->repos;
	Grove__V1__AcceptDatalossRequest req = GROVE__V1__ACCEPT_DATALOSS_REQUEST__INIT;
	Grove__V1__AcceptDatalossResponse *resp = NULL;
	struct rpc_client *cl = NULL;
	struct app app = { 0 };
	const char *store;
	char rel[128];
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "authoritative", true, &store))
		return x->out->status;
	if ((ret = db_app_get(x->db, x->arg[0], &app)))
		return reply_grove_error(x->out, ret);
	if (app.route != ROUTE_CLUSTER || !env || !env->cluster_address) {
		ret = reply_error(x->out, MHD_HTTP_CONFLICT, "%s is not on the cluster route: it has no replicas",
				  x->arg[0]);
		goto out;
	}
	snprintf(rel, sizeof(rel), "%s.git", x->arg[0]);
	req.relative_path = rel;
	req.authoritative = (char *)store;
	if ((ret = rpc_client_new(&cl, env->cluster_address, env->secret)) ||
	    (ret = rpc_unary(cl, "/grove.v1.ClusterService/AcceptDataloss", &req.base,
			     &grove__v1__accept_dataloss_response__descriptor, (ProtobufCMessage **)&resp, 30000))) {
		log_warn("admin.accept_dataloss_failed", "app=%s store=%s error=%s", x->arg[0], store, error_msg());
		/* The router's words name its own commands: the caller gets ours. */
		if (ret == GROVE_EINVAL)
			ret = reply_error(x->out, MHD_HTTP_BAD_REQUEST,
					  "%s holds no copy of %s: name a store among the app's replicas", store, x->arg[0]);
		else if (ret == GROVE_EUNAVAIL && strstr(error_msg(), "not healthy"))
			ret = reply_error(x->out, MHD_HTTP_CONFLICT,
					  "store %s is down: its copy cannot be made the latest now; choose another, or "
					  "wait until it is up", store);
		else
			ret = reply_error(x->out, MHD_HTTP_SERVICE_UNAVAILABLE,
					  "the cluster could not take that now: try again in a minute");
		goto out;
	}
	log_warn("admin.dataloss_accepted", "app=%s authoritative=%s generation=%lld", x->arg[0], store,
		 (long long)resp->generation);
	ret = call_answer(x, MHD_HTTP_OK, json_pack("{s:s, s:s, s:I}", "name", x->arg[0], "authoritative", store,
						   "generation", (json_int_t)resp->generation));
out:
	FREE_MSG(resp);
	rpc_client_free(cl);
	app_release(&app);
	return ret;
}

int app_delete(struct call *x)
{
	int ret = db_app_delete(x->db, x->arg[0]);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_NO_CONTENT, NULL);
}

int collaborator_put(struct call *x)
{
	static const char *const fields[] = { "access", NULL };
	const char *access_s;
	enum access access;
	int ret;

	if (call_check_fields(x, fields) || call_get_str(x, "access", true, &access_s))
		return x->out->status;
	if (!strcmp(access_s, "read"))
		access = ACCESS_READ;
	else if (!strcmp(access_s, "write"))
		access = ACCESS_WRITE;
	else
		return reply_error(x->out, MHD_HTTP_BAD_REQUEST,
				   "field \"access\" must be \"read\" or \"write\"; to take access away, DELETE the collaborator");
	ret = db_access_grant(x->db, x->arg[0], x->arg[1], access);
	if (ret)
		return reply_grove_error(x->out, ret);
	return call_answer(x, MHD_HTTP_OK,
		      json_pack("{s:s,s:s,s:s}", "app", x->arg[0], "user", x->arg[1], "access", access_name(access)));
}

int collaborator_delete(struct call *x)
{
	int ret = db_access_revoke(x->db, x->arg[0], x->arg[1]);
	return ret ? reply_grove_error(x->out, ret) : call_answer(x, MHD_HTTP_NO_CONTENT, NULL);
}
