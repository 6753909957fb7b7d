/*
 * `grove cluster status|repo|dataloss|accept-dataloss|set-replication-factor|
 * verify|failover`: the operator's view of a cluster router, over its
 * ClusterService.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cluster/main.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "grove/v1/cluster.pb-c.h"

static const char usage[] =
	"usage: grove cluster [-a ADDRESS] [--secret-file F] COMMAND\n"
	"\n"
	"  status                               stores and their health, queue depth, dataloss count\n"
	"  repo PATH                            replicas, generations and primary of a repository\n"
	"  dataloss                             repositories with outdated or missing replicas\n"
	"  accept-dataloss PATH --authoritative STORE\n"
	"                                       make STORE's copy the latest; repair the others from it\n"
	"  set-replication-factor PATH N        add or remove replicas\n"
	"  verify PATH                          compare the replicas' checksums now\n"
	"  failover PATH --to STORE             make STORE the repository's primary\n"
	"\n"
	"ADDRESS defaults to $GROVE_CLUSTER_ADDRESS, then $GROVE_ADDRESS; the secret\n"
	"to $GROVE_SECRET or $GROVE_SECRET_FILE.\n";

static void print_repo(const Grove__V1__RepositoryInfo *r)
{
	printf("repository %s\n", r->relative_path);
	printf("  generation %lld, primary %s, replication factor %u%s\n", (long long)r->generation,
	       r->primary && *r->primary ? r->primary : "-", r->replication_factor,
	       r->unavailable ? ", UNAVAILABLE (no healthy up-to-date replica)" : "");
	printf("  %-16s %-10s %-9s %-8s %-10s %s\n", "STORE", "GENERATION", "ASSIGNED", "HEALTHY", "UP-TO-DATE", "ROLE");
	for (size_t i = 0; i < r->n_replicas; i++) {
		const Grove__V1__ReplicaInfo *p = r->replicas[i];
		char gen[32];
		if (p->generation < 0)
			snprintf(gen, sizeof(gen), "-");
		else
			snprintf(gen, sizeof(gen), "%lld", (long long)p->generation);
		printf("  %-16s %-10s %-9s %-8s %-10s %s\n", p->node, gen, p->assigned ? "yes" : "no",
		       p->healthy ? "yes" : "no", p->up_to_date ? "yes" : "no", p->primary ? "primary" : "");
	}
}

static int need(int argc, char **argv, int n, const char *what)
{
	if (argc < n)
		return error_set(GROVE_EINVAL, "%s: missing %s (see `grove cluster help`)", argv[0], what);
	return 0;
}

static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

/* One run of an operator's command, shared by the command's steps. */
struct cluster_cli {
	const char *addr, *secret_file;
	int argc;
	char **argv;               /* the command and its arguments */
	struct rpc_client *cl;
	ProtobufCMessage *resp;    /* the router's answer, freed at the end */
};

/* Returns the exit code when the command line says to stop here (help, a mistake), else -1. */
static int cluster_cli_parse_args(struct cluster_cli *c, int argc, char **argv)
{
	int i;

	c->addr = getenv("GROVE_CLUSTER_ADDRESS");
	if (!c->addr)
		c->addr = getenv("GROVE_ADDRESS");
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-a") && i + 1 < argc)
			c->addr = argv[++i];
		else if (!strcmp(argv[i], "--secret-file") && i + 1 < argc)
			c->secret_file = argv[++i];
		else {
			fprintf(stderr, "grove cluster: unknown option %s\n%s", argv[i], usage);
			return 2;
		}
	}
	c->argc = argc - i;
	c->argv = argv + i;
	if (c->argc < 1 || !strcmp(c->argv[0], "help") || !strcmp(c->argv[0], "-h") || !strcmp(c->argv[0], "--help")) {
		fputs(usage, c->argc < 1 ? stderr : stdout);
		return c->argc < 1 ? 2 : 0;
	}
	if (!c->addr) {
		fprintf(stderr, "grove cluster: no router address: give -a ADDRESS or set GROVE_CLUSTER_ADDRESS\n");
		return 2;
	}
	return -1;
}

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
	printf("  %-16s %-24s %-8s %-8s %s\n", "STORE", "ADDRESS", "HEALTHY", "ROUTERS", "LAST ERROR");
	for (size_t k = 0; k < r->n_nodes; k++) {
		const Grove__V1__NodeStatus *n = r->nodes[k];
		char routers[32];
		snprintf(routers, sizeof(routers), "%u/%u", n->routers_healthy, n->routers_total);
		printf("  %-16s %-24s %-8s %-8s %s\n", n->name, n->address,
		       !n->healthy ? "NO" : n->writable ? "yes" : "DISKFULL", routers,
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

	if ((ret = need(c->argc, c->argv, 2, "PATH")))
		return ret;
	req.relative_path = c->argv[1];
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

	if ((ret = need(c->argc, c->argv, 2, "PATH")))
		return ret;
	req.relative_path = c->argv[1];
	req.authoritative = (char *)opt(c->argc, c->argv, "--authoritative");
	if (!req.authoritative)
		return error_set(GROVE_EINVAL, "accept-dataloss: name the copy to keep with --authoritative STORE");
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/AcceptDataloss", &req.base,
			     &grove__v1__accept_dataloss_response__descriptor, &c->resp, 30000)))
		return ret;
	printf("%s: %s's copy is now generation %lld; the other replicas are being repaired from it\n", c->argv[1],
	       req.authoritative, (long long)((Grove__V1__AcceptDatalossResponse *)c->resp)->generation);
	return 0;
}

static int cluster_cli_set_replication_factor(struct cluster_cli *c)
{
	Grove__V1__SetReplicationFactorRequest req = GROVE__V1__SET_REPLICATION_FACTOR_REQUEST__INIT;
	Grove__V1__SetReplicationFactorResponse *r;
	int ret;

	if ((ret = need(c->argc, c->argv, 3, "PATH and N")))
		return ret;
	req.relative_path = c->argv[1];
	req.replication_factor = (uint32_t)strtoul(c->argv[2], NULL, 10);
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/SetReplicationFactor", &req.base,
			     &grove__v1__set_replication_factor_response__descriptor, &c->resp, 30000)))
		return ret;
	r = (Grove__V1__SetReplicationFactorResponse *)c->resp;
	printf("%s: assigned to", c->argv[1]);
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

	if ((ret = need(c->argc, c->argv, 2, "PATH")))
		return ret;
	req.relative_path = c->argv[1];
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/VerifyRepository", &req.base,
			     &grove__v1__verify_repository_response__descriptor, &c->resp, 120000)))
		return ret;
	r = (Grove__V1__VerifyRepositoryResponse *)c->resp;
	for (size_t k = 0; k < r->n_replicas; k++)
		printf("  %-16s %-66s %s%s\n", r->replicas[k]->node, r->replicas[k]->checksum,
		       r->replicas[k]->matches ? "ok" : "DIFFERS", r->replicas[k]->error);
	printf("%s: %u replica(s) differ%s\n", c->argv[1], r->mismatches,
	       r->mismatches ? ": marked outdated, repair queued" : "");
	return 0;
}

static int cluster_cli_failover(struct cluster_cli *c)
{
	Grove__V1__FailoverRequest req = GROVE__V1__FAILOVER_REQUEST__INIT;
	Grove__V1__FailoverResponse *r;
	int ret;

	if ((ret = need(c->argc, c->argv, 2, "PATH")))
		return ret;
	req.relative_path = c->argv[1];
	req.to = (char *)opt(c->argc, c->argv, "--to");
	if (!req.to)
		return error_set(GROVE_EINVAL, "failover: name the new primary with --to STORE");
	if ((ret = rpc_unary(c->cl, "/grove.v1.ClusterService/Failover", &req.base,
			     &grove__v1__failover_response__descriptor, &c->resp, 30000)))
		return ret;
	r = (Grove__V1__FailoverResponse *)c->resp;
	printf("%s: primary %s (was %s)\n", c->argv[1], r->primary, *r->previous ? r->previous : "-");
	return 0;
}

static const struct cluster_cli_cmd {
	const char *name;
	int (*fn)(struct cluster_cli *c);
} cluster_cli_cmds[] = {
	{ "status", cluster_cli_status },
	{ "repo", cluster_cli_repo },
	{ "dataloss", cluster_cli_dataloss },
	{ "accept-dataloss", cluster_cli_accept_dataloss },
	{ "set-replication-factor", cluster_cli_set_replication_factor },
	{ "verify", cluster_cli_verify },
	{ "failover", cluster_cli_failover },
};

int cluster_cli_main(int argc, char **argv)
{
	struct cluster_cli c = { 0 };
	const struct cluster_cli_cmd *cmd = NULL;
	char *secret = NULL;
	int code, ret = 0;

	log_init("cli", LOG_WARN, 2);
	if ((code = cluster_cli_parse_args(&c, argc, argv)) >= 0)
		return code;
	if ((ret = cli_load_secret(c.secret_file, &secret)))
		goto out;
	if (!secret) {
		ret = error_set(GROVE_EINVAL, "no shared secret: give --secret-file or set GROVE_SECRET_FILE");
		goto out;
	}
	if ((ret = rpc_client_new(&c.cl, c.addr, secret)))
		goto out;
	for (size_t k = 0; k < ARRAY_SIZE(cluster_cli_cmds) && !cmd; k++)
		if (!strcmp(c.argv[0], cluster_cli_cmds[k].name))
			cmd = &cluster_cli_cmds[k];
	if (!cmd) {
		fprintf(stderr, "grove cluster: unknown command '%s'\n%s", c.argv[0], usage);
		ret = -1;
		goto out;
	}
	ret = cmd->fn(&c);
out:
	if (ret > 0 || (ret < 0 && ret != -1))
		fprintf(stderr, "grove cluster: %s\n", error_msg());
	if (c.resp)
		protobuf_c_message_free_unpacked(c.resp, NULL);
	rpc_client_free(c.cl);
	free(secret);
	return ret ? 1 : 0;
}
