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

int cluster_cli_main(int argc, char **argv)
{
	const char *addr = getenv("GROVE_CLUSTER_ADDRESS"), *secret_file = NULL;
	struct rpc_client *cl = NULL;
	ProtobufCMessage *resp = NULL;
	char *secret = NULL;
	int i, ret = 0;

	log_init("cli", LOG_WARN, 2);
	if (!addr)
		addr = getenv("GROVE_ADDRESS");
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-a") && i + 1 < argc)
			addr = argv[++i];
		else if (!strcmp(argv[i], "--secret-file") && i + 1 < argc)
			secret_file = argv[++i];
		else {
			fprintf(stderr, "grove cluster: unknown option %s\n%s", argv[i], usage);
			return 2;
		}
	}
	argc -= i;
	argv += i;
	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
		fputs(usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	if (!addr) {
		fprintf(stderr, "grove cluster: no router address: give -a ADDRESS or set GROVE_CLUSTER_ADDRESS\n");
		return 2;
	}
	if ((ret = cli_load_secret(secret_file, &secret)))
		goto out;
	if (!secret) {
		ret = error_set(GROVE_EINVAL, "no shared secret: give --secret-file or set GROVE_SECRET_FILE");
		goto out;
	}
	if ((ret = rpc_client_new(&cl, addr, secret)))
		goto out;

	if (!strcmp(argv[0], "status")) {
		Grove__V1__GetStatusRequest req = GROVE__V1__GET_STATUS_REQUEST__INIT;
		Grove__V1__GetStatusResponse *r;
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/GetStatus", &req.base,
				     &grove__v1__get_status_response__descriptor, &resp, 30000)))
			goto out;
		r = (Grove__V1__GetStatusResponse *)resp;
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
	} else if (!strcmp(argv[0], "repo")) {
		Grove__V1__GetRepositoryRequest req = GROVE__V1__GET_REPOSITORY_REQUEST__INIT;
		if ((ret = need(argc, argv, 2, "PATH")))
			goto out;
		req.relative_path = argv[1];
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/GetRepository", &req.base,
				     &grove__v1__get_repository_response__descriptor, &resp, 30000)))
			goto out;
		print_repo(((Grove__V1__GetRepositoryResponse *)resp)->repository);
	} else if (!strcmp(argv[0], "dataloss")) {
		Grove__V1__ListDatalossRequest req = GROVE__V1__LIST_DATALOSS_REQUEST__INIT;
		Grove__V1__ListDatalossResponse *r;
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/ListDataloss", &req.base,
				     &grove__v1__list_dataloss_response__descriptor, &resp, 60000)))
			goto out;
		r = (Grove__V1__ListDatalossResponse *)resp;
		if (!r->n_repositories)
			printf("every repository has all its replicas up to date\n");
		for (size_t k = 0; k < r->n_repositories; k++)
			print_repo(r->repositories[k]);
	} else if (!strcmp(argv[0], "accept-dataloss")) {
		Grove__V1__AcceptDatalossRequest req = GROVE__V1__ACCEPT_DATALOSS_REQUEST__INIT;
		if ((ret = need(argc, argv, 2, "PATH")))
			goto out;
		req.relative_path = argv[1];
		req.authoritative = (char *)opt(argc, argv, "--authoritative");
		if (!req.authoritative) {
			ret = error_set(GROVE_EINVAL, "accept-dataloss: name the copy to keep with --authoritative STORE");
			goto out;
		}
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/AcceptDataloss", &req.base,
				     &grove__v1__accept_dataloss_response__descriptor, &resp, 30000)))
			goto out;
		printf("%s: %s's copy is now generation %lld; the other replicas are being repaired from it\n", argv[1],
		       req.authoritative, (long long)((Grove__V1__AcceptDatalossResponse *)resp)->generation);
	} else if (!strcmp(argv[0], "set-replication-factor")) {
		Grove__V1__SetReplicationFactorRequest req = GROVE__V1__SET_REPLICATION_FACTOR_REQUEST__INIT;
		Grove__V1__SetReplicationFactorResponse *r;
		if ((ret = need(argc, argv, 3, "PATH and N")))
			goto out;
		req.relative_path = argv[1];
		req.replication_factor = (uint32_t)strtoul(argv[2], NULL, 10);
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/SetReplicationFactor", &req.base,
				     &grove__v1__set_replication_factor_response__descriptor, &resp, 30000)))
			goto out;
		r = (Grove__V1__SetReplicationFactorResponse *)resp;
		printf("%s: assigned to", argv[1]);
		for (size_t k = 0; k < r->n_assigned; k++)
			printf(" %s", r->assigned[k]);
		printf("\n");
	} else if (!strcmp(argv[0], "verify")) {
		Grove__V1__VerifyRepositoryRequest req = GROVE__V1__VERIFY_REPOSITORY_REQUEST__INIT;
		Grove__V1__VerifyRepositoryResponse *r;
		if ((ret = need(argc, argv, 2, "PATH")))
			goto out;
		req.relative_path = argv[1];
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/VerifyRepository", &req.base,
				     &grove__v1__verify_repository_response__descriptor, &resp, 120000)))
			goto out;
		r = (Grove__V1__VerifyRepositoryResponse *)resp;
		for (size_t k = 0; k < r->n_replicas; k++)
			printf("  %-16s %-66s %s%s\n", r->replicas[k]->node, r->replicas[k]->checksum,
			       r->replicas[k]->matches ? "ok" : "DIFFERS", r->replicas[k]->error);
		printf("%s: %u replica(s) differ%s\n", argv[1], r->mismatches,
		       r->mismatches ? ": marked outdated, repair queued" : "");
	} else if (!strcmp(argv[0], "failover")) {
		Grove__V1__FailoverRequest req = GROVE__V1__FAILOVER_REQUEST__INIT;
		Grove__V1__FailoverResponse *r;
		if ((ret = need(argc, argv, 2, "PATH")))
			goto out;
		req.relative_path = argv[1];
		req.to = (char *)opt(argc, argv, "--to");
		if (!req.to) {
			ret = error_set(GROVE_EINVAL, "failover: name the new primary with --to STORE");
			goto out;
		}
		if ((ret = rpc_unary(cl, "/grove.v1.ClusterService/Failover", &req.base,
				     &grove__v1__failover_response__descriptor, &resp, 30000)))
			goto out;
		r = (Grove__V1__FailoverResponse *)resp;
		printf("%s: primary %s (was %s)\n", argv[1], r->primary, *r->previous ? r->previous : "-");
	} else {
		fprintf(stderr, "grove cluster: unknown command '%s'\n%s", argv[0], usage);
		ret = -1;
		goto out;
	}
out:
	if (ret > 0 || (ret < 0 && ret != -1))
		fprintf(stderr, "grove cluster: %s\n", error_msg());
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	rpc_client_free(cl);
	free(secret);
	return ret ? 1 : 0;
}
