/*
 * `grove status [--data DIR]`: the running stack in a few lines — the gate
 * (its admin API: apps per route, canary share, locks, deployments) and the
 * cluster router (stores and their health, repositories with outdated
 * replicas, the replication queue). Exit status 0 when every part answers
 * and every store is healthy, 1 otherwise, so scripts and probes can use it.
 *
 * Addresses: $GROVE_ADMIN_URL and the admin token as for `grove app`; the
 * router at $GROVE_CLUSTER_ADDRESS, else DIR/run/cluster.sock (the layout of
 * `grove up`, DIR defaulting to ./grove-data) with the secret in DIR/secret
 * or $GROVE_SECRET_FILE.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "grove/v1/cluster.pb-c.h"

#include <jansson.h>

enum { OPT_DATA = CLI_OPT_LONG };

static const struct cli_option status_options[] = {
	{ "data", OPT_DATA, "DIR", "the data of `grove up` (default: ./grove-data)" },
	{ NULL },
};

const struct cli_command status_command = {
	"status", "[--data DIR]",
	"The running stack in a few lines: gate, apps per route, cluster and stores, queue.",
	status_options,
	"Exit status 0 when every part answers and every store is healthy, 1 otherwise.\n",
	false,
};

static int64_t num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static bool show_gate(const char *base)
{
	char *token = NULL;
	json_t *st = NULL;
	long status = 0;
	bool ok = false;

	if (cli_admin_token(&token)) {
		printf("gate      %-40s  %s\n", base, error_msg());
		return false;
	}
	if (admin_call(base, token, "GET", "/api/v1/status", NULL, &status, &st) || status != 200) {
		printf("gate      %-40s  DOWN: %s\n", base, status ? "the admin API answered with an error" : error_msg());
		goto out;
	}
	ok = !json_is_true(json_object_get(st, "draining"));
	printf("gate      %-40s  %s\n", base, ok ? "up" : "DRAINING");
	printf("  apps %lld: %lld on the cluster, %lld legacy; new apps: %lld %% to the cluster; %lld locked\n",
	       (long long)num(st, "apps"), (long long)num(st, "cluster"), (long long)num(st, "legacy"),
	       (long long)num(st, "canary_percent"), (long long)num(st, "locked"));
	printf("  deployments: %lld running, %lld queued; users %lld\n", (long long)num(st, "deployments_running"),
	       (long long)num(st, "deployments_queued"), (long long)num(st, "users"));
out:
	json_decref(st);
	free(token);
	return ok;
}

static bool show_cluster(const char *addr, const char *secret_file)
{
	Grove__V1__GetStatusRequest req = GROVE__V1__GET_STATUS_REQUEST__INIT;
	Grove__V1__GetStatusResponse *r = NULL;
	struct rpc_client *cl = NULL;
	char *secret = NULL;
	bool ok = false;

	if (cli_load_secret(getenv("GROVE_SECRET_FILE") || getenv("GROVE_SECRET") ? NULL : secret_file, &secret) ||
	    !secret) {
		printf("cluster   %-40s  no secret (%s)\n", addr, secret ? "" : error_msg());
		goto out;
	}
	if (rpc_client_new(&cl, addr, secret) ||
	    rpc_unary(cl, "/grove.v1.ClusterService/GetStatus", &req.base, &grove__v1__get_status_response__descriptor,
		      (ProtobufCMessage **)&r, 10000)) {
		printf("cluster   %-40s  DOWN: %s\n", addr, error_msg());
		goto out;
	}
	ok = true;
	printf("cluster   %-40s  up (router %s, virtual storage %s)\n", addr, r->router, r->virtual_storage);
	printf("  stores:");
	for (size_t i = 0; i < r->n_nodes; i++) {
		printf(" %s %s%s", r->nodes[i]->name, r->nodes[i]->healthy ? "healthy" : "DOWN", i + 1 < r->n_nodes ? "," : "");
		ok &= r->nodes[i]->healthy;
	}
	printf("\n  repositories %llu, with outdated or missing replicas %llu\n", (unsigned long long)r->repositories,
	       (unsigned long long)r->dataloss);
	printf("  replication queue: ready %llu, running %llu, retrying %llu, dead %llu\n",
	       (unsigned long long)r->jobs_ready, (unsigned long long)r->jobs_in_progress,
	       (unsigned long long)r->jobs_failed, (unsigned long long)r->jobs_dead);
out:
	FREE_MSG(r);
	rpc_client_free(cl);
	free(secret);
	return ok;
}

/* Returns the exit code when the command line says to stop here (help, a mistake), else -1. */
static int status_parse_args(int argc, char **argv, const char **data)
{
	struct cli_parse p;
	int o, code;

	cli_parse_init(&p, &status_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1)
		if (o == OPT_DATA)
			*data = optarg;
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (p.nargs)
		return cli_usage_error(&status_command, "unknown argument '%s'", p.args[0]);
	return -1;
}

int status_main(int argc, char **argv)
{
	const char *data = "grove-data";
	char sock[4200], secret_file[4096];
	const char *base = cli_admin_url();
	const char *addr = getenv("GROVE_CLUSTER_ADDRESS");
	char *real;
	bool ok;
	int code;

	if ((code = status_parse_args(argc, argv, &data)) >= 0)
		return code;
	log_init("cli", LOG_ERROR, 2);
	real = realpath(data, NULL);
	snprintf(sock, sizeof(sock), "unix:%s/run/cluster.sock", real ? real : data);
	snprintf(secret_file, sizeof(secret_file), "%s/secret", real ? real : data);
	free(real);
	ok = show_gate(base);
	ok = show_cluster(addr ? addr : sock, secret_file) && ok;
	return ok ? 0 : 1;
}
