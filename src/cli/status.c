/*
 * `grove status [--data DIR]`: the running stack in one table, a row per
 * part (colour on a terminal, not with $NO_COLOR) — the gate
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
#include <unistd.h>

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

/* Colour for a state word on a terminal (not with $NO_COLOR, as
 * no-color.org asks): green when all is well, red when not, yellow between. */
enum tone { TONE_OK, TONE_WARN, TONE_BAD };

static bool use_colour(void)
{
	static int on = -1;
	if (on < 0)
		on = isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && getenv("TERM") && strcmp(getenv("TERM"), "dumb");
	return on;
}

/* The table, printed once every part has answered: columns as wide as
 * their widest cell. */
#define STATUS_ROWS 40

static struct status_row {
	char part[32], addr[256], state[16], detail[600];
	enum tone tone;
} rows[STATUS_ROWS];
static size_t nrows;

static void row(const char *part, const char *addr, const char *state, enum tone t, const char *detail)
{
	if (nrows == STATUS_ROWS)
		return;
	struct status_row *r = &rows[nrows++];
	snprintf(r->part, sizeof(r->part), "%s", part);
	snprintf(r->addr, sizeof(r->addr), "%s", addr);
	snprintf(r->state, sizeof(r->state), "%s", state);
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
	r->tone = t;
}

static void table_print(void)
{
	static const char *const colour[] = { "\033[32m", "\033[33m", "\033[31m" };
	int wp = 4, wa = 7, ws = 5;
	for (size_t i = 0; i < nrows; i++) {
		wp = MAX(wp, (int)strlen(rows[i].part));
		wa = MAX(wa, (int)strlen(rows[i].addr));
		ws = MAX(ws, (int)strlen(rows[i].state));
	}
	printf("%-*s  %-*s  %-*s  %s\n", wp, "PART", wa, "ADDRESS", ws, "STATE", "DETAIL");
	for (size_t i = 0; i < nrows; i++)
		printf("%-*s  %-*s  %s%-*s%s  %s\n", wp, rows[i].part, wa, rows[i].addr,
		       use_colour() ? colour[rows[i].tone] : "", ws, rows[i].state, use_colour() ? "\033[0m" : "",
		       rows[i].detail);
}

static bool show_gate(const char *base)
{
	char *token = NULL, detail[512];
	json_t *st = NULL;
	long status = 0;
	bool ok = false;

	if (cli_admin_token(&token)) {
		row("gate", base, "UNKNOWN", TONE_BAD, error_msg());
		return false;
	}
	if (admin_call(base, token, "GET", "/api/v1/status", NULL, &status, &st) || status != 200) {
		row("gate", base, "DOWN", TONE_BAD, status ? "the admin API answered with an error" : error_msg());
		goto out;
	}
	ok = !json_is_true(json_object_get(st, "draining"));
	snprintf(detail, sizeof(detail),
		 "apps %lld: %lld on the cluster, %lld legacy; new apps: %lld %% to the cluster; %lld locked; "
		 "deployments: %lld running, %lld queued; users %lld",
		 (long long)num(st, "apps"), (long long)num(st, "cluster"), (long long)num(st, "legacy"),
		 (long long)num(st, "canary_percent"), (long long)num(st, "locked"),
		 (long long)num(st, "deployments_running"), (long long)num(st, "deployments_queued"),
		 (long long)num(st, "users"));
	row("gate", base, ok ? "up" : "DRAINING", ok ? TONE_OK : TONE_WARN, detail);
out:
	json_decref(st);
	free(token);
	return ok;
}

static void show_store(const Grove__V1__NodeStatus *n)
{
	char part[64], detail[512];
	const char *state = !n->healthy ? "DOWN" : !n->writable ? "read-only" : "healthy";
	snprintf(part, sizeof(part), "store %s", n->name);
	snprintf(detail, sizeof(detail), "%llu replicas, %llu behind; healthy as %u of %u routers see it%s%.300s%s",
		 (unsigned long long)n->replicas, (unsigned long long)n->behind, n->routers_healthy,
		 n->routers_total, n->last_error && *n->last_error ? " (last error: " : "",
		 n->last_error ? n->last_error : "", n->last_error && *n->last_error ? ")" : "");
	row(part, n->address, state, !n->healthy ? TONE_BAD : !n->writable ? TONE_WARN : TONE_OK, detail);
}

static bool show_cluster(const char *addr, const char *secret_file)
{
	Grove__V1__GetStatusRequest req = GROVE__V1__GET_STATUS_REQUEST__INIT;
	Grove__V1__GetStatusResponse *r = NULL;
	struct rpc_client *cl = NULL;
	char *secret = NULL, detail[512];
	bool ok = false;

	if (cli_load_secret(getenv("GROVE_SECRET_FILE") || getenv("GROVE_SECRET") ? NULL : secret_file, &secret) ||
	    !secret) {
		row("router", addr, "UNKNOWN", TONE_BAD, secret ? "no secret" : error_msg());
		goto out;
	}
	if (rpc_client_new(&cl, addr, secret) ||
	    rpc_unary(cl, "/grove.v1.ClusterService/GetStatus", &req.base, &grove__v1__get_status_response__descriptor,
		      (ProtobufCMessage **)&r, 10000)) {
		row("router", addr, "DOWN", TONE_BAD, error_msg());
		goto out;
	}
	ok = r->dataloss == 0 && r->jobs_dead == 0;
	snprintf(detail, sizeof(detail),
		 "%s, virtual storage %s; repositories %llu, with outdated or missing replicas %llu; "
		 "replication queue: ready %llu, running %llu, retrying %llu, dead %llu",
		 r->router, r->virtual_storage, (unsigned long long)r->repositories, (unsigned long long)r->dataloss,
		 (unsigned long long)r->jobs_ready, (unsigned long long)r->jobs_in_progress,
		 (unsigned long long)r->jobs_failed, (unsigned long long)r->jobs_dead);
	row("router", addr, "up", ok ? TONE_OK : TONE_WARN, detail);
	ok = true;
	for (size_t i = 0; i < r->n_nodes; i++) {
		show_store(r->nodes[i]);
		ok &= r->nodes[i]->healthy;
	}
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
	table_print();
	return ok ? 0 : 1;
}
