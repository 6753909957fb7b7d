/* Repository maintenance of the apps: see housekeeping.h. */
#include "gate/housekeeping.h"
#include "gate/repos.h"
#include "lib/error.h"
#include "lib/proc.h"
#include "lib/gitcmd.h"
#include "lib/log.h"
#include "lib/strvec.h"

#include <time.h>

#include <sys/stat.h>

int app_gc(const struct repo_env *env, struct db *db, const char *name, struct strbuf *report)
{
	struct app app = { 0 };
	char rel[128], legacy[4096];
	int64_t start = now_ms();
	int ret;

	if ((ret = db_app_get(db, name, &app)))
		goto out;
	snprintf(rel, sizeof(rel), "%s.git", name);
	if (app.route == ROUTE_LEGACY) {
		static const char *const repack[] = { "repack", "-a", "-d", "-q", NULL };
		static const char *const packrefs[] = { "pack-refs", "--all", NULL };
		snprintf(legacy, sizeof(legacy), "%s/%s", env->legacy_dir, rel);
		if (access(legacy, F_OK)) {
			ret = error_set(GROVE_ENOTFOUND, "%s has no repository yet: push to it first", name);
			goto out;
		}
		if ((ret = repo_git(legacy, repack)) || (ret = repo_git(legacy, packrefs)))
			goto out;
		repo_report(report, "optimized %s in the legacy directory: repacked fully, refs packed (%lld ms).", name,
		    (long long)(now_ms() - start));
	} else {
		Grove__V1__OptimizeRepositoryRequest req = GROVE__V1__OPTIMIZE_REPOSITORY_REQUEST__INIT;
		Grove__V1__OptimizeRepositoryResponse *resp = NULL;
		Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
		struct rpc_client *cl = NULL;
		if (!env->cluster_address) {
			ret = error_set(GROVE_EPRECOND, "no cluster is configured ([route] cluster)");
			goto out;
		}
		repo.storage_name = (char *)env->cluster_storage;
		repo.relative_path = rel;
		req.repository = &repo;
		req.strategy = GROVE__V1__OPTIMIZE_REPOSITORY_REQUEST__STRATEGY__EAGER;
		ret = rpc_client_new(&cl, env->cluster_address, env->secret);
		if (!ret)
			ret = rpc_unary(cl, "/grove.v1.RepositoryService/OptimizeRepository", &req.base,
					&grove__v1__optimize_repository_response__descriptor, (ProtobufCMessage **)&resp,
					60 * 60 * 1000);
		if (!ret)
			repo_report(report, "optimized %s on the cluster (every replica): repacked %s, refs %s, commit-graph %s (%lld ms).",
			    name, resp->repacked_fully ? "fully" : resp->repacked_incrementally ? "incrementally" : "not",
			    resp->packed_refs ? "packed" : "as they were", resp->wrote_commit_graph ? "written" : "unchanged",
			    (long long)(now_ms() - start));
		FREE_MSG(resp);
		rpc_client_free(cl);
		if (ret)
			error_wrap(ret, "optimizing %s", name);
	}
	if (!ret)
		log_info("gate.gc", "app=%s route=%s ms=%lld", name, route_name(app.route), (long long)(now_ms() - start));
out:
	app_release(&app);
	return ret;
}

/* ---- every app's repository optimized, one at a time, now and then ---- */

static int collect_name(void *ctx, int ncols, const char *const *names, const char *const *values)
{
	struct strvec *v = ctx;
	if (values[0])
		strvec_push(v, values[0]);
	return 0;
}

/* One round: every app's repository, one at a time. */
static void housekeeping_round(void *arg)
{
	struct housekeeper *hk = arg;
	struct strvec apps = STRVEC_INIT;
	struct db *db = NULL;
	int64_t start = now_ms();
	size_t done = 0, failed = 0;

	if (db_attach(&db, hk->cfg->db_path) || db_apps_each(db, NULL, collect_name, &apps)) {
		log_warn("gate.housekeeping_failed", "error=%s", error_msg());
		goto out;
	}
	for (size_t i = 0; i < apps.n && !ticker_stopping(&hk->ticker); i++) {
		struct strbuf report = STRBUF_INIT;
		strbuf_init(&report, 4096);
		int r = app_gc(hk->env, db, apps.v[i], &report);
		/* An app without code yet has nothing to optimize. */
		if (r && r != GROVE_ENOTFOUND) {
			failed++;
			log_warn("gate.housekeeping_app_failed", "app=%s error=%s", apps.v[i], error_msg());
		} else if (!r) {
			done++;
		}
		strbuf_release(&report);
	}
	log_info("gate.housekeeping", "apps=%zu optimized=%zu failed=%zu ms=%lld", apps.n, done, failed,
		 (long long)(now_ms() - start));
out:
	db_close(db);
	strvec_clear(&apps);
}

void housekeeping_start(struct housekeeper *hk, const struct gate_config *cfg, const struct repo_env *env)
{
	*hk = (struct housekeeper){ .cfg = cfg, .env = env };
	if (cfg->housekeeping > 0 &&
	    ticker_start(&hk->ticker, (int64_t)cfg->housekeeping * 1000, housekeeping_round, hk, "housekeeping"))
		log_warn("gate.housekeeping_failed", "error=%s", error_msg());
}

void housekeeping_stop(struct housekeeper *hk)
{
	ticker_stop(&hk->ticker);
}
