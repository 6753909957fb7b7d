/*
 * The grove executable: one binary, a subcommand per role, like git. Called
 * through a link named after a git hook or "grove-connect", it is that.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "hook/hook.h"
#include "store/main.h"
#include "gate/gate.h"
#include "gate/openssh.h"
#include "cluster/main.h"

#include "lib/error.h"
#include "lib/rpc.h"
#include "lib/version.h"

#include <libgen.h>

static const char usage[] =
	"usage: grove <command> [<args>]\n"
	"\n"
	"Start everything:\n"
	"  up         three stores, a cluster router and a gate on loopback, in one command\n"
	"  status     the running stack: gate, apps per route, cluster and stores, queue\n"
	"\n"
	"Daemons:\n"
	"  store      a storage node: bare repositories and the grove.v1 Git API over gRPC\n"
	"  gate       the SSH front door: keys, apps, access, routing, push policy, deploys\n"
	"  cluster    the router in front of the stores: every repository on several stores;\n"
	"             `grove cluster status|repo|dataloss|…` asks a running one\n"
	"\n"
	"Behind the system's OpenSSH (docs/openssh.md):\n"
	"  authorized-keys    sshd's AuthorizedKeysCommand: the line for a key Grove knows\n"
	"  shell      the forced command that line gives: one git command, as the gate runs it\n"
	"\n"
	"Operating the gate (its admin API):\n"
	"  user, key, token, app, access, deploy    e.g. grove app create web; grove key add alice key.pub\n"
	"  canary     show or set the share of new apps put on the cluster route\n"
	"  backup, restore    an app's repository as a git bundle: grove backup web > web.bundle\n"
	"  migrate    move apps, live, until N % are on the cluster: grove migrate --percent 50\n"
	"\n"
	"Tools:\n"
	"  connect    use a store from git: GIT_SSH_COMMAND='grove connect ADDRESS'\n"
	"  rpc        call any grove.v1 method: grove rpc -a ADDRESS Service/Method field=value…\n"
	"  tls        a CA and certificates for mutual TLS between the parts: grove tls ca DIR\n"
	"  hook       what git runs as a hook in a store's repositories\n"
	"  completion bash completion: source <(grove completion bash)\n"
	"  version    print the version\n"
	"\n"
	"`grove <command> --help` tells more; for the admin commands, `grove app --help`\n"
	"lists the verbs and `grove app create --help` tells about one.\n";

/* The commands that take the rest of the line as theirs (argv[0]: the
 * command's name). */
static int run_admin(int argc, char **argv)
{
	return admin_cli_main(argv[0], argc, argv);
}

static int run_backup(int argc, char **argv)
{
	return backup_main(argv[0], argc, argv);
}

static int run_hook(int argc, char **argv)
{
	return hook_main(argc > 1 ? argv[1] : NULL, argc - 1, argv + 1);
}

static int run_version(int argc, char **argv)
{
	printf("grove %s\n", grove_version());
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "store", store_main },     { "cluster", cluster_main }, { "gate", gate_main },
	{ "connect", connect_main }, { "user", run_admin },       { "key", run_admin },
	{ "token", run_admin },
	{ "app", run_admin },        { "access", run_admin },     { "deploy", run_admin },
	{ "canary", run_admin },     { "backup", run_backup },    { "restore", run_backup },
	{ "status", status_main },   { "migrate", migrate_main }, { "up", up_main },
	{ "rpc", rpc_main },         { "completion", completion_main }, { "hook", run_hook },
	{ "version", run_version },  { "--version", run_version },
	{ "authorized-keys", authorized_keys_main }, { "shell", shell_main }, { "tls", tls_main },
};

int main(int argc, char **argv)
{
	char *copy = xstrdup(argv[0]);
	const char *self = basename(copy);
	int ret;

	if (hook_is_hook_name(self)) {
		ret = hook_main(self, argc, argv);
		goto out;
	}
	/* gRPC clients (grove cluster, rpc, connect, status) dial TCP
	 * addresses with these; a daemon's config says its own. */
	if ((getenv("GROVE_TLS_CA") || getenv("GROVE_TLS_CERT") || getenv("GROVE_TLS_KEY")) && rpc_tls_from_env()) {
		fprintf(stderr, "grove: $GROVE_TLS_CA, $GROVE_TLS_CERT, $GROVE_TLS_KEY: %s\n", error_msg());
		ret = 2;
		goto out;
	}
	if (!strcmp(self, "grove-pack-objects")) {
		ret = packobjects_main(argc, argv);
		goto out;
	}
	if (!strcmp(self, "grove-connect")) {
		ret = connect_main(argc, argv);
		goto out;
	}
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		ret = argc < 2 ? 2 : 0;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name)) {
			ret = commands[i].run(argc - 1, argv + 1);
			goto out;
		}
	fprintf(stderr, "grove: '%s' is not a grove command. See 'grove --help'.\n", argv[1]);
	ret = 2;
out:
	free(copy);
	return ret;
}
