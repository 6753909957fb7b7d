/*
 * The gate's api process: the grove.v1.HookService that a push's hooks call
 * (hooksvc.c: the push policy, deployments by deploy.c), the admin HTTP API
 * (admin/), and housekeeping (housekeeping.c). It is the only gate process
 * with gRPC threads.
 */
#include "gate/gate.h"
#include "gate/admin.h"
#include "gate/db.h"
#include "gate/deploy.h"
#include "gate/hooksvc.h"
#include "gate/housekeeping.h"
#include "gate/move.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>

int api_run(const struct gate_config *cfg)
{
	struct rpc_server *srv = NULL;
	struct rpc_server_opts ropts = { .role = "gate", .secret = cfg->secret, .threads = 2 };
	struct admin *admin = NULL;
	struct admin_opts aopts = { 0 };
	struct repo_env menv = { 0 };
	struct housekeeper hk = { 0 };
	char *locks = xasprintf("%s/locks", cfg->data_dir), *tmp = xasprintf("%s/tmp", cfg->data_dir);
	char *journal = xasprintf("%s/migrations", cfg->data_dir);
	char *progress = xasprintf("%s/progress", cfg->data_dir);
	sigset_t sigs;
	int sig, ret;

	log_init("gate-api", LOG_INFO, 2);
	/* Before any thread: curl_global_init is not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, GATE_SIG_DRAINING);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* A TCP hook port is shared with the api process of a gate that takes
	 * over in an upgrade (SO_REUSEPORT); a second gate started by mistake
	 * fails on its SSH port before it gets here. */
	rpc_server_listen_beside();
	if ((ret = rpc_server_new(&srv, &ropts)))
		goto out;
	hooksvc_register(srv, cfg);
	if ((ret = rpc_server_listen(srv, cfg->hook_listen)) || (ret = rpc_server_start(srv)))
		goto out;
	aopts.listen = cfg->admin_listen;
	aopts.public_listen = cfg->public_listen;
	aopts.token = cfg->admin_token;
	aopts.db_path = cfg->db_path;
	aopts.default_deploy_branch = cfg->deploy_branch;
	aopts.canary_percent = cfg->canary_percent;
	aopts.max_conns = (unsigned)cfg->admin_max_conns;
	aopts.max_per_addr = (unsigned)cfg->admin_max_per_addr;
	aopts.timeout_s = (unsigned)cfg->admin_timeout;
	aopts.request_timeout_s = (unsigned)cfg->admin_request_timeout;
	menv.legacy_dir = cfg->legacy_dir;
	menv.cluster_address = cfg->cluster_address;
	menv.cluster_storage = cfg->cluster_storage;
	menv.secret = cfg->secret;
	menv.locks_dir = locks;
	menv.tmp_dir = tmp;
	menv.journal_dir = journal;
	menv.progress_dir = progress;
	menv.lock_timeout = 600;
	aopts.repos = &menv;
	/* Before the API takes requests: no migration stays half-done after a crash. */
	{
		struct db *db = NULL;
		if (!db_open(&db, cfg->db_path))
			app_move_recover(&menv, db);
		db_close(db);
	}
	if ((ret = admin_start(&admin, &aopts)))
		goto out;
	log_info("gate.api_started", "hook_listen=%s admin_listen=%s", cfg->hook_listen, cfg->admin_listen);
	housekeeping_start(&hk, cfg, &menv);
	/* The acceptor says when it starts draining: /ready turns 503 at once,
	 * while the hooks of the pushes still running are served on until
	 * SIGTERM comes, once they are done. */
	for (;;) {
		if (sigwait(&sigs, &sig))
			continue;
		if (sig == SIGHUP) {
			/* From the acceptor, once its reload went through. */
			if (rpc_tls_reload())
				log_error("gate.api_reload_failed", "error=%s", error_msg());
			else
				log_info("gate.api_reloaded", "tls=%b", rpc_tls_on());
			continue;
		}
		if (sig != GATE_SIG_DRAINING)
			break;
		admin_set_draining(admin);
		/* The stores' hook calls move to the api process of a gate
		 * that took over (an upgrade), before this one's drain can
		 * close a connection under a call (rpc.h); on a stop they
		 * come back here, as before. */
		rpc_server_leave(srv);
		log_info("gate.api_draining", NULL);
	}
	housekeeping_stop(&hk);
	deploy_interrupt_all();
	admin_set_draining(admin);
	rpc_server_drain(srv, cfg->shutdown_grace * 1000);
out:
	if (ret)
		log_error("gate.api_failed", "error=%s", error_msg());
	admin_stop(admin);
	rpc_server_free(srv);
	free(locks);
	free(tmp);
	free(journal);
	free(progress);
	return ret ? 1 : 0;
}
