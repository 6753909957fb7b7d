/*
 * `grove cluster status|repo|dataloss|accept-dataloss|set-replication-factor|
 * verify|failover`: the operator's view of a cluster router, over its
 * ClusterService.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "cluster/main.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "grove/v1/cluster.pb-c.h"

static const struct cli_option cluster_cli_options[] = {
	{ "address", 'a', "ADDRESS", "the router (default: $GROVE_CLUSTER_ADDRESS, then $GROVE_ADDRESS)" },
	{ "secret-file", CLI_OPT_LONG, "F", "the shared secret (default: $GROVE_SECRET, $GROVE_SECRET_FILE)" },
	{ NULL },
};

/* The options before the command; the command's own follow it. */
static const struct cli_command cluster_cli_command = {
	"cluster", "[-a ADDRESS] [--secret-file F] COMMAND [ARGS]",
	"Asks a running cluster router: its stores, repositories and replicas.",
	cluster_cli_options, NULL, true,
};

static void print_repo(const Grove__V1__RepositoryInfo *r)
{
	printf("repository %s\n", r->relative_path);
	printf("  generation %lld, primary %s, replication factor %u%s\n", (long long)r->generation,
	       r->primary && *r->primary ? r->primary : "-", r->replication_factor,
	       r->unavailable ? ", UNAVAILABLE (no healthy up-to-date replica)" : "");
	printf("  %-16s %-10s %-9s %-8s %-10s %-8s %s\n", "STORE", "GENERATION", "ASSIGNED", "HEALTHY", "UP-TO-DATE",
	       "ROLE", "VERIFIED");
	for (size_t i = 0; i < r->n_replicas; i++) {
		const Grove__V1__ReplicaInfo *p = r->replicas[i];
		char gen[32], verified[64];
		if (p->generation < 0)
			snprintf(gen, sizeof(gen), "-");
		else
			snprintf(gen, sizeof(gen), "%lld", (long long)p->generation);
		/* What the last verification found, at which generation. */
		if (p->checked_at_ms)
			snprintf(verified, sizeof(verified), "%s at %lld", p->checksum_matches ? "same" : "DIFFERED",
				 (long long)p->checksum_generation);
		else
			snprintf(verified, sizeof(verified), "never");
		printf("  %-16s %-10s %-9s %-8s %-10s %-8s %s\n", p->node, gen, p->assigned ? "yes" : "no",
		       p->healthy ? "yes" : "no", p->up_to_date ? "yes" : "no", p->primary ? "primary" : "-", verified);
	}
}

/* One run of an operator's command, shared by the command's steps. */
struct cluster_cli {
	const char *addr, *secret_file;
	char *path, *number;       /* the command's operands: PATH, and N of set-replication-factor */
	const char *to, *authoritative;
	struct rpc_client *cl;
	ProtobufCMessage *resp;    /* the router's answer, freed at the end */
};

static int cluster_cli_status(struct cluster_cli *c)
{
	Grove__V1__GetStatusRequest req = GROVE__V1__GET_STATUS_REQUEST__INIT;
	Grove__V1__GetStatusResponse *r;
	int ret;

	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/GetStatus", &req.base,
			     &grove__v1__get_status_response__descriptor, &c->resp, 30000)))
		return ret;
	r = (Grove__V1__GetStatusResponse *)c->resp;
	printf("router %s, virtual storage %s\n", r->router, r->virtual_storage);
	printf("  %-16s %-24s %-8s %-8s %-9s %-7s %-9s %-9s %-14s %-16s %s\n", "STORE", "ADDRESS", "HEALTHY", "ROUTERS",
	       "REPLICAS", "BEHIND", "QUEUE", "CHECKED", "DISK FREE", "VERSION", "LAST ERROR");
	for (size_t k = 0; k < r->n_nodes; k++) {
		const Grove__V1__NodeStatus *n = r->nodes[k];
		char routers[32], checked[32], disk[32] = "-", queue[64];
		snprintf(routers, sizeof(routers), "%u/%u", n->routers_healthy, n->routers_total);
		/* Its own repairs: waiting/running/retrying. */
		snprintf(queue, sizeof(queue), "%llu/%llu/%llu", (unsigned long long)n->jobs_ready,
			 (unsigned long long)n->jobs_in_progress, (unsigned long long)n->jobs_failed);
		if (n->last_check_ms < 0)
			snprintf(checked, sizeof(checked), "not yet");
		else
			snprintf(checked, sizeof(checked), "%.1fs ago", (double)n->last_check_ms / 1000);
		if (n->disk_total)
			snprintf(disk, sizeof(disk), "%.1f/%.1fG", (double)n->disk_free / (1 << 30),
				 (double)n->disk_total / (1 << 30));
		printf("  %-16s %-24s %-8s %-8s %-9llu %-7llu %-9s %-9s %-14s %-16s %s\n", n->name, n->address,
		       !n->healthy ? "NO" : n->writable ? "yes" : "DISKFULL", routers, (unsigned long long)n->replicas,
		       (unsigned long long)n->behind, queue, checked, disk, n->version && *n->version ? n->version : "-",
		       n->healthy && !n->writable ? "disk below store.minFreeSpace: reads only, writes resume when it has room"
						  : n->last_error);
	}
	printf("repositories %llu, with outdated or missing replicas %llu\n", (unsigned long long)r->repositories,
	       (unsigned long long)r->dataloss);
	printf("replication queue: ready %llu, running %llu, retrying %llu, dead %llu\n",
	       (unsigned long long)r->jobs_ready, (unsigned long long)r->jobs_in_progress,
	       (unsigned long long)r->jobs_failed, (unsigned long long)r->jobs_dead);
	return 0;
}

static int cluster_cli_repo(struct cluster_cli *c)
{
	Grove__V1__GetRepositoryRequest req = GROVE__V1__GET_REPOSITORY_REQUEST__INIT;
	int ret;

	req.relative_path = c->path;
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/GetRepository", &req.base,
			     &grove__v1__get_repository_response__descriptor, &c->resp, 30000)))
		return ret;
	print_repo(((Grove__V1__GetRepositoryResponse *)c->resp)->repository);
	return 0;
}

static int cluster_cli_dataloss(struct cluster_cli *c)
{
	Grove__V1__ListDatalossRequest req = GROVE__V1__LIST_DATALOSS_REQUEST__INIT;
	Grove__V1__ListDatalossResponse *r;
	int ret;

	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/ListDataloss", &req.base,
			     &grove__v1__list_dataloss_response__descriptor, &c->resp, 60000)))
		return ret;
	r = (Grove__V1__ListDatalossResponse *)c->resp;
	if (!r->n_repositories)
		printf("every repository has all its replicas up to date\n");
	for (size_t k = 0; k < r->n_repositories; k++)
		print_repo(r->repositories[k]);
	return 0;
}

static int cluster_cli_accept_dataloss(struct cluster_cli *c)
{
	Grove__V1__AcceptDatalossRequest req = GROVE__V1__ACCEPT_DATALOSS_REQUEST__INIT;
	int ret;

	req.relative_path = c->path;
	req.authoritative = (char *)c->authoritative;
	if (!req.authoritative)
		return error_set(GROVE_EINVAL, "accept-dataloss: name the copy to keep with --authoritative STORE");
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/AcceptDataloss", &req.base,
			     &grove__v1__accept_dataloss_response__descriptor, &c->resp, 30000)))
		return ret;
	printf("%s: %s's copy is now generation %lld; the other replicas are being repaired from it\n", c->path,
	       req.authoritative, (long long)((Grove__V1__AcceptDatalossResponse *)c->resp)->generation);
	return 0;
}

static int cluster_cli_set_replication_factor(struct cluster_cli *c)
{
	Grove__V1__SetReplicationFactorRequest req = GROVE__V1__SET_REPLICATION_FACTOR_REQUEST__INIT;
	Grove__V1__SetReplicationFactorResponse *r;
	int ret;

	req.relative_path = c->path;
	req.replication_factor = (uint32_t)strtoul(c->number, NULL, 10);
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/SetReplicationFactor", &req.base,
			     &grove__v1__set_replication_factor_response__descriptor, &c->resp, 30000)))
		return ret;
	r = (Grove__V1__SetReplicationFactorResponse *)c->resp;
	printf("%s: assigned to", c->path);
	for (size_t k = 0; k < r->n_assigned; k++)
		printf(" %s", r->assigned[k]);
	printf("\n");
	return 0;
}

static int cluster_cli_verify(struct cluster_cli *c)
{
	Grove__V1__VerifyRepositoryRequest req = GROVE__V1__VERIFY_REPOSITORY_REQUEST__INIT;
	Grove__V1__VerifyRepositoryResponse *r;
	int ret;

	req.relative_path = c->path;
	/* Seconds on a busy repository (the router waits for a quiet moment): say what runs. */
	bool tty = isatty(2);
	if (tty)
		fprintf(stderr, "grove cluster verify %s: comparing the replicas' checksums…", c->path);
	ret = rpc_unary(c->cl, "/grove.v1.ClusterService/VerifyRepository", &req.base,
			&grove__v1__verify_repository_response__descriptor, &c->resp, 120000);
	if (tty)
		fprintf(stderr, "\r\033[K");
	if (ret)
		return ret;
	r = (Grove__V1__VerifyRepositoryResponse *)c->resp;
	if (r->busy) {
		printf("%s: not compared: writes kept running meanwhile; verify again when it is quieter\n", c->path);
		return 0;
	}
	for (size_t k = 0; k < r->n_replicas; k++)
		printf("  %-16s %-66s %s%s\n", r->replicas[k]->node, r->replicas[k]->checksum,
		       r->replicas[k]->matches ? "ok" : "DIFFERS", r->replicas[k]->error);
	printf("%s: %u replica(s) differ%s\n", c->path, r->mismatches,
	       r->mismatches ? ": marked outdated, repair queued" : "");
	return 0;
}

static int cluster_cli_failover(struct cluster_cli *c)
{
	Grove__V1__FailoverRequest req = GROVE__V1__FAILOVER_REQUEST__INIT;
	Grove__V1__FailoverResponse *r;
	int ret;

	req.relative_path = c->path;
	req.to = (char *)c->to;
	if (!req.to)
		return error_set(GROVE_EINVAL, "failover: name the new primary with --to STORE");
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/Failover", &req.base,
			     &grove__v1__failover_response__descriptor, &c->resp, 30000)))
		return ret;
	r = (Grove__V1__FailoverResponse *)c->resp;
	printf("%s: primary %s (was %s)\n", c->path, r->primary, *r->previous ? r->previous : "-");
	return 0;
}

enum { OPT_TO = CLI_OPT_LONG, OPT_AUTHORITATIVE };

static const struct cli_option accept_dataloss_options[] = {
	{ "authoritative", OPT_AUTHORITATIVE, "STORE", "the store whose copy is kept" },
	{ NULL },
};

static const struct cli_option failover_options[] = {
	{ "to", OPT_TO, "STORE", "the new primary" },
	{ NULL },
};

/* A command of `grove cluster`: its help, how many operands it takes, and what it does. */
static const struct cluster_cli_cmd {
	struct cli_command cmd;
	int operands;             /* PATH, then N */
	int (*fn)(struct cluster_cli *c);
} cluster_cli_cmds[] = {
	{ { "cluster status", "", "Stores and their health, queue depth, dataloss count" }, 0, cluster_cli_status },
	{ { "cluster repo", "PATH", "Replicas, generations and primary of a repository" }, 1, cluster_cli_repo },
	{ { "cluster dataloss", "", "Repositories with outdated or missing replicas" }, 0, cluster_cli_dataloss },
	{ { "cluster accept-dataloss", "PATH --authoritative STORE",
	    "Makes STORE's copy the latest and repairs the others from it", accept_dataloss_options },
	  1, cluster_cli_accept_dataloss },
	{ { "cluster set-replication-factor", "PATH N", "Adds or removes replicas" }, 2,
	  cluster_cli_set_replication_factor },
	{ { "cluster verify", "PATH", "Compares the replicas' checksums now" }, 1, cluster_cli_verify },
	{ { "cluster failover", "PATH --to STORE", "Makes STORE the repository's primary", failover_options }, 1,
	  cluster_cli_failover },
};

/* The verb of a row: "repo" of "cluster repo". */
static const char *cmd_verb(const struct cluster_cli_cmd *cmd)
{
	return cmd->cmd.name + strlen("cluster ");
}

static const struct cluster_cli_cmd *cluster_cli_find(const char *verb)
{
	for (size_t k = 0; k < ARRAY_SIZE(cluster_cli_cmds); k++)
		if (!strcmp(verb, cmd_verb(&cluster_cli_cmds[k])))
			return &cluster_cli_cmds[k];
	return NULL;
}

/* The usage, the options and a line for each command, aligned. */
static void cluster_cli_usage(FILE *f)
{
	cli_command_usage(&cluster_cli_command, f, true);
	fputs("\ncommands:\n", f);
	for (size_t k = 0; k < ARRAY_SIZE(cluster_cli_cmds); k++) {
		const struct cli_command *cmd = &cluster_cli_cmds[k].cmd;
		char left[128];
		snprintf(left, sizeof(left), "%s%s%s", cmd->name + strlen("cluster "), *cmd->synopsis ? " " : "",
			 cmd->synopsis);
		fprintf(f, "  %-42s %s\n", left, cmd->what);
	}
	fputs("\n`grove cluster COMMAND --help` tells about one.\n", f);
}

void cluster_cli_complete(struct completion *comp)
{
	completion_add(comp, "cluster", NULL, cluster_cli_options);
	for (size_t k = 0; k < ARRAY_SIZE(cluster_cli_cmds); k++)
		completion_add(comp, "cluster", cmd_verb(&cluster_cli_cmds[k]), cluster_cli_cmds[k].cmd.opts);
}

/* The options and operands of one command (args[0] is its name). */
static int cluster_cli_parse_cmd(struct cluster_cli *c, const struct cluster_cli_cmd *cmd, int argc, char **argv)
{
	static const char *const names[] = { "PATH", "N" };
	struct cli_parse p;
	int o, code;

	cli_parse_init(&p, &cmd->cmd, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		if (o == OPT_TO)
			c->to = optarg;
		else if (o == OPT_AUTHORITATIVE)
			c->authoritative = optarg;
	}
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (p.nargs < cmd->operands)
		return cli_usage_error(&cmd->cmd, "missing %s", names[p.nargs]);
	if (p.nargs > cmd->operands)
		return cli_usage_error(&cmd->cmd, "'%s' is one argument too many", p.args[cmd->operands]);
	c->path = p.nargs > 0 ? p.args[0] : NULL;
	c->number = p.nargs > 1 ? p.args[1] : NULL;
	return -1;
}

/*
 * Returns the exit code when the command line says to stop here (help, a
 * mistake), else -1 with *cmd the command to run.
 */
static int cluster_cli_parse_args(struct cluster_cli *c, int argc, char **argv, const struct cluster_cli_cmd **cmd)
{
	struct cli_parse p;
	int o;

	c->addr = getenv("GROVE_CLUSTER_ADDRESS");
	if (!c->addr)
		c->addr = getenv("GROVE_ADDRESS");
	cli_parse_init(&p, &cluster_cli_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		if (o == 'a')
			c->addr = optarg;
		else if (o == CLI_OPT_LONG)
			c->secret_file = optarg;
	}
	if (p.help || (p.nargs && !*p.err && !strcmp(p.args[0], "help"))) {
		cluster_cli_usage(stdout);
		return 0;
	}
	if (*p.err)
		return cli_usage_error(&cluster_cli_command, "%s", p.err);
	if (!p.nargs)
		return cli_usage_error(&cluster_cli_command, "missing a command: see `grove cluster help`");
	if (!(*cmd = cluster_cli_find(p.args[0])))
		return cli_usage_error(&cluster_cli_command, "unknown command '%s'", p.args[0]);
	/* The command's arguments, with its name where getopt expects the program's. */
	if ((o = cluster_cli_parse_cmd(c, *cmd, p.nargs, p.args)) >= 0)
		return o;
	if (!c->addr) {
		fprintf(stderr, "grove cluster: no router address: give -a ADDRESS or set GROVE_CLUSTER_ADDRESS\n");
		return 2;
	}
	return -1;
}

int cluster_cli_main(int argc, char **argv)
{
	struct cluster_cli c = { 0 };
	const struct cluster_cli_cmd *cmd = NULL;
	char *secret = NULL;
	int code, ret = 0;

	log_init("cli", LOG_WARN, 2);
	if ((code = cluster_cli_parse_args(&c, argc, argv, &cmd)) >= 0)
		return code;
	if ((ret = cli_load_secret(c.secret_file, &secret)))
		goto out;
	if (!secret) {
		ret = error_set(GROVE_EINVAL, "no shared secret: give --secret-file or set GROVE_SECRET_FILE");
		goto out;
	}
	if ((ret = rpc_client_new(&c.cl, c.addr, secret)))
		goto out;
	ret = cmd->fn(&c);
out:
	if (ret)
		fprintf(stderr, "grove cluster: %s\n", error_msg());
	if (c.resp)
		protobuf_c_message_free_unpacked(c.resp, NULL);
	rpc_client_free(c.cl);
	free(secret);
	return ret ? 1 : 0;
}
