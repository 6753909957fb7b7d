/*
 * Deployments of pushes (deploy.c): the configured command or webhook, run
 * for a push that moved its app's deploy branch, its output streamed to the
 * pusher and recorded.
 */
#ifndef GROVE_GATE_DEPLOY_H
#define GROVE_GATE_DEPLOY_H

#include "gate/db.h"
#include "gate/gate.h"
#include "lib/rpc.h"

struct deploy_target {
	struct app *app;
	char old[41], new[41], ref[1024];
	bool found;
};

/*
 * Deploys t for pusher, one deployment at a time per app, the output sent
 * on call as the hook's stdout; start: when the push's post-receive began
 * (the "Deployed in" time counts from there). *client_gone: the pusher
 * stopped listening (the deployment went on).
 */
void deploy_push(const struct gate_config *cfg, struct rpc_call *call, struct db *db, const struct deploy_target *t,
		 const char *pusher, int64_t start, bool *client_gone);
/* From now on running deployments are interrupted (the gate is stopping). */
void deploy_interrupt_all(void);

#endif
