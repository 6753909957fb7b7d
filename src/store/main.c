/* `grove store`: configuration, start-up, and a clean drain on SIGTERM. */
#include "store/store.h"
#include "lib/version.h"
#include "lib/metricsd.h"
#include "store/main.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/config.h"
#include "lib/daemon.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/repopath.h"
#include "lib/rpc.h"

#include <fcntl.h>
#include <git2.h>
#include <signal.h>
#include <sys/stat.h>

enum { OPT_INIT = CLI_OPT_LONG, OPT_NAME, OPT_LISTEN, OPT_CHECK };

static const struct cli_option store_options[] = {
	{ "config", 'c', "FILE", "run the node this configuration describes" },
	{ "init", OPT_INIT, "DIR", "write DIR/store.conf and DIR/secret (if missing) and print the config's path" },
	{ "name", OPT_NAME, "NAME", "with --init: the storage name (default: default)" },
	{ "listen", OPT_LISTEN, "ADDR", "with --init: the address to serve (default: 127.0.0.1:8075)" },
	{ "check-config", OPT_CHECK, NULL, "with -c: read the configuration and the files it names, say what is wrong, run nothing" },
	{ NULL },
};

const struct cli_command store_command = {
	"store", "-c FILE [--check-config]\n--init DIR [--name NAME] [--listen ADDR]",
	"Runs a storage node: bare repositories under its root, served over gRPC (grove.v1).",
	store_options,
	"Config (git-config syntax):\n"
	"  [store]\n"
	"    name = default            storage name requests must use\n"
	"    root = repositories       storage root (relative: to the config file)\n"
	"    listen = 127.0.0.1:8075   repeatable; host:port or unix:/path\n"
	"    secretFile = secret       shared secret of all Grove parts\n"
	"    threads = 2               gRPC completion queue pollers\n"
	"    maxCalls = 1024           calls in flight before RESOURCE_EXHAUSTED\n"
	"    maxMessage = 4m           largest gRPC message accepted\n"
	"    shutdownGrace = 30        seconds SIGTERM waits for calls in flight\n"
	"    fsckObjects = true        check every pushed object\n"
	"    fsckIgnore = " GITCMD_FSCK_IGNORE "\n"
	"                              fsck message ids let through: historic quirks\n"
	"    minFreeSpace = 16m        a push is refused when the root's disk has less free\n"
	"    runtimeDir = …            where the hook socket lives (default root/+grove/run)\n"
	"    metricsListen = …         IPv4 host:port for GET /metrics (Prometheus)\n"
	"    maxRefListSize = 16m      bytes of a push's list of refs and push options\n"
	"    trailingNice = 0          1-19: a push's git on a replica the router does not\n"
	"                              wait for runs at this nice, fed through a spool file\n"
	"                              (0: as the others, straight from the stream)\n"
	"    trailingSpool = 256m      bytes such a push may be ahead of its git in the spool\n"
	"    primaryGit = " STORE_PRIMARY_GIT "\n"
	"                              the git of a push with the store's hooks (any through a\n"
	"                              gate or router) but a secondary's: git's own SHA-1\n"
	"                              collision detection for objects, a cheaper read of the\n"
	"                              pack (scripts/build-replica-git); missing or \"\": git\n"
	"                              from PATH\n"
	"    replicaGit = " STORE_REPLICA_GIT "\n"
	"                              the git a secondary replica of a voted push runs: one\n"
	"                              without SHA-1 collision detection, which the primary\n"
	"                              does (scripts/build-replica-git); missing or \"\": git\n"
	"                              from PATH, as the primary's\n"
	"    takePackIndex = true      such a secondary takes the primary's index of the pack\n"
	"                              instead of indexing it again (its git checks it fits)\n"
	"    packedRefUpdates = 32     such a secondary writes a push of this many new ref\n"
	"                              values or more to packed-refs at once (0: never)\n"
	"  [packCache]                  the pack-objects cache: repeated clones from a file\n"
	"    enabled = false           on: upload-pack's pack-objects runs go through it\n"
	"    dir = …                   default root/+grove/pack-cache\n"
	"    maxBytes = 1g             disk it may use; the oldest entries go first\n"
	"    maxAge = 300              seconds an entry is served\n"
	"  [hooks]\n"
	"    customDir = …             operator's pre-receive / post-receive programs\n"
	RPC_TLS_CONFIG_HELP
	"  [log]\n"
	"    level = info              debug, info, warn, error\n",
	false,
};

/* The command line of `grove store`. */
struct store_args {
	const char *conf, *init, *name, *listen_addr;
	bool check;
};

/* Returns -1 to go on, or the exit code (help, or a wrong argument). */
static int store_parse_args(struct store_args *a, int argc, char **argv)
{
	struct cli_parse p;
	int o;

	cli_parse_init(&p, &store_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		switch (o) {
		case 'c': a->conf = optarg; break;
		case OPT_INIT: a->init = optarg; break;
		case OPT_NAME: a->name = optarg; break;
		case OPT_LISTEN: a->listen_addr = optarg; break;
		case OPT_CHECK: a->check = true; break;
		}
	}
	return cli_daemon_args_end(&p, a->conf, a->init, a->check);
}

static int store_init_dir(const char *dir, const char *name, const char *listen)
{
	char conf[4096], secret_path[4096];
	int ret = 0;
	char *secret = NULL, *text = NULL;

	if ((ret = fs_mkdir_p(dir, 0700)))
		return ret;
	snprintf(conf, sizeof(conf), "%s/store.conf", dir);
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	if (access(secret_path, F_OK)) {
		secret = auth_secret_generate();
		text = xasprintf("%s\n", secret);
		ret = fs_write_new(secret_path, text, 0600);
		if (ret)
			goto out;
	}
	if (access(conf, F_OK)) {
		free(text);
		text = xasprintf("# grove store configuration (git-config syntax); see `grove store --help`.\n"
				 "[store]\n"
				 "\tname = %s\n"
				 "\troot = repositories\n"
				 "\tlisten = %s\n"
				 "\tsecretFile = secret\n"
				 "[log]\n"
				 "\tlevel = info\n",
				 name, listen);
		ret = fs_write_new(conf, text, 0640);
		if (ret)
			goto out;
	}
	char *real = realpath(conf, NULL);
	printf("%s\n", real ? real : conf);
	free(real);
out:
	free(secret);
	free(text);
	return ret;
}

static int mkdirs(const char *path, mode_t mode)
{
	if (mkdir(path, mode) && errno != EEXIST)
		return error_set(GROVE_EIO, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

/*
 * (Re)writes the scripts git runs as hooks (hook_script_install), and the
 * grove-connect link.
 *
 * receive-pack gets a folder without reference-transaction: git 2.39 opens
 * one reference transaction per ref of a push (two hook runs each, and a
 * vote round across the replicas), which made a push of 200 tags take
 * 24 s instead of 0.15 s. A push is voted once instead, in pre-receive,
 * and the router compares the replicas' checksums afterwards (txn.c).
 */
static int install_links(struct store *st)
{
	static const struct { const char *name; bool push; } hooks[] = {
		{ "pre-receive", true }, { "post-receive", true }, { "reference-transaction", false },
	};
	int ret;
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++) {
		const char *dirs[] = { st->hooks_dir, hooks[i].push ? st->push_hooks_dir : NULL };
		for (size_t d = 0; d < ARRAY_SIZE(dirs) && dirs[d]; d++)
			if ((ret = hook_script_install(dirs[d], hooks[i].name, st->self_exe, true)))
				return ret;
	}
	unlink(st->connect_bin);
	if (symlink(st->self_exe, st->connect_bin))
		return error_set(GROVE_EIO, "cannot link %s: %s", st->connect_bin, strerror(errno));
	return 0;
}

/* The settings that are numbers, each within its bounds. */
static int store_setup_limits(struct store *st, struct config *cfg, struct rpc_server_opts *ropts)
{
	int64_t v;
	int ret;
	if ((ret = config_get_int(cfg, "store.threads", 2, 1, 64, &v)))
		return ret;
	ropts->threads = (int)v;
	if ((ret = config_get_int(cfg, "store.maxCalls", 1024, 1, 100000, &v)))
		return ret;
	ropts->max_calls = (int)v;
	if ((ret = config_get_int(cfg, "store.maxMessage", RPC_DEFAULT_MAX_MESSAGE, 256 * 1024, 64 << 20, &v)))
		return ret;
	ropts->max_message = (size_t)v;
	if ((ret = config_get_int(cfg, "store.maxRefListSize", 16 << 20, 64 << 10, 1 << 30, &v)))
		return ret;
	st->max_ref_list = v;
	if ((ret = config_get_int(cfg, "store.trailingNice", 0, 0, 19, &v)))
		return ret;
	st->trailing_nice = (int)v;
	if ((ret = config_get_int(cfg, "store.trailingSpool", 256 << 20, 1 << 20, 1LL << 40, &v)))
		return ret;
	st->trailing_spool = v;
	if ((ret = config_get_int(cfg, "store.minFreeSpace", 16 << 20, 0, INT64_MAX, &v)))
		return ret;
	st->min_free = v;
	return 0;
}

/* The store's own folders under its root, and its hook socket in runtime
 * (NULL: root/+grove/run). */
static int store_setup_dirs(struct store *st, struct config *cfg, const char *runtime)
{
	char buf[4200], *run = NULL;
	int ret;

	st->state_dir = xasprintf("%s/+grove", st->root);
	st->tmp_dir = xasprintf("%s/tmp", st->state_dir);
	st->trash_dir = xasprintf("%s/trash", st->state_dir);
	st->hooks_dir = xasprintf("%s/hooks", st->state_dir);
	st->push_hooks_dir = xasprintf("%s/hooks-push", st->state_dir);
	snprintf(buf, sizeof(buf), "%s/bin", st->state_dir);
	st->connect_bin = xasprintf("%s/grove-connect", buf);
	if (!runtime)
		runtime = run = xasprintf("%s/run", st->state_dir);
	if (strchr(st->root, '\'')) {
		ret = error_set(GROVE_EINVAL, "%s: store.root must not contain a quote (\"'\")", config_file(cfg));
		goto out;
	}
	if (st->check_only)
		goto sock;
	if ((ret = mkdirs(st->root, 0750)) || (ret = mkdirs(st->state_dir, 0700)) ||
	    (ret = mkdirs(st->tmp_dir, 0700)) || (ret = mkdirs(st->trash_dir, 0700)) ||
	    (ret = mkdirs(st->hooks_dir, 0700)) || (ret = mkdirs(st->push_hooks_dir, 0700)) ||
	    (ret = mkdirs(buf, 0700)) || (ret = mkdirs(runtime, 0700)))
		goto out;
sock:
	snprintf(buf, sizeof(buf), "%s/hook.sock", runtime);
	if (strlen(buf) >= 100) {
		ret = error_set(GROVE_EINVAL, "%s: the hook socket path %s is too long for a unix socket: set store.runtimeDir to a shorter directory",
				config_file(cfg), buf);
		goto out;
	}
	if (!st->check_only)
		unlink(buf);
	st->hook_address = xasprintf("unix:%s", buf);
out:
	free(run);
	return ret;
}

/*
 * path if the store can run it, else NULL: missing (logged as event, with
 * note) or "" (on purpose); git from PATH runs instead. Not an error: the
 * same pushes are taken, at more CPU.
 */
static char *store_git_at(const char *path, const char *event, const char *note)
{
	if (!path || !*path)
		return NULL;
	if (access(path, X_OK)) {
		log_warn(event, "path=%s error=%s note=%s", path, strerror(errno), note);
		return NULL;
	}
	return xstrdup(path);
}

/* The git of a push's receive-pack with the store's hooks but a
 * secondary's (store.primaryGit). */
static void store_setup_primary_git(struct store *st, const char *path)
{
	st->primary_git = store_git_at(path, "store.primary_git_missing",
				       "pushes run git from PATH: scripts/build-replica-git builds this one");
	if (st->primary_git)
		st->git_push.git = st->primary_git;
}

/* The git of a secondary replica's receive-pack (store.replicaGit), which
 * does not check objects for a SHA-1 collision attack a second time. */
static void store_setup_replica_git(struct store *st, const char *path, bool take_index, int64_t packed_refs)
{
	char *hook;

	st->git_push_secondary = st->git_push;
	if (!(st->replica_git = store_git_at(path, "store.replica_git_missing",
					"secondaries run git from PATH: scripts/build-replica-git builds this one")))
		return;
	st->git_push_secondary.git = st->replica_git;
	st->packed_ref_updates = (int)packed_refs;
	/* It asks through the hook wire (store/packindex.c): grove-hook only. */
	hook = xasprintf("%s-hook", st->self_exe);
	if (take_index && !access(hook, X_OK))
		st->pack_index_hook = hook;
	else
		free(hook);
}

static int store_setup(struct store *st, struct config *cfg, struct rpc_server_opts *ropts, char ***listen,
		       size_t *nlisten)
{
	char *secret_file = NULL, *level = NULL, *runtime = NULL, *fsck_ignore = NULL, *replica_git = NULL;
	char *primary_git = NULL;
	enum log_level lvl;
	bool fsck, take_index;
	int64_t packed_refs;
	int ret;

	if ((ret = config_get_str(cfg, "store.name", "default", &st->name)) ||
	    (ret = config_get_path(cfg, "store.root", NULL, &st->root)) ||
	    (ret = config_get_path(cfg, "store.secretFile", NULL, &secret_file)) ||
	    (ret = config_get_path(cfg, "hooks.customDir", NULL, &st->custom_hooks)) ||
	    (ret = config_get_path(cfg, "store.runtimeDir", NULL, &runtime)) ||
	    (ret = config_get_str(cfg, "store.metricsListen", NULL, &st->metrics_listen)) ||
	    (ret = config_get_bool(cfg, "store.fsckObjects", true, &fsck)) ||
	    (ret = config_get_str(cfg, "store.fsckIgnore", GITCMD_FSCK_IGNORE, &fsck_ignore)) ||
	    (ret = config_get_str(cfg, "store.replicaGit", STORE_REPLICA_GIT, &replica_git)) ||
	    (ret = config_get_str(cfg, "store.primaryGit", STORE_PRIMARY_GIT, &primary_git)) ||
	    (ret = config_get_bool(cfg, "store.takePackIndex", true, &take_index)) ||
	    (ret = config_get_int(cfg, "store.packedRefUpdates", 32, 0, 1 << 30, &packed_refs)) ||
	    (ret = config_get_str(cfg, "log.level", "info", &level)) ||
	    (ret = config_get_all(cfg, "store.listen", listen, nlisten)))
		goto out;
	st->fsck_objects = fsck;
	if ((ret = gitcmd_fsck_ignore_parse(fsck_ignore, &st->fsck_ignore))) {
		ret = error_wrap(ret, "%s: store.fsckIgnore", config_file(cfg));
		goto out;
	}
	if (log_level_parse(level, &lvl)) {
		ret = error_set(GROVE_EINVAL, "%s: log.level must be debug, info, warn or error", config_file(cfg));
		goto out;
	}
	log_init("store", lvl, 2);
	if ((ret = storage_name_validate(st->name))) {
		ret = error_wrap(ret, "%s: store.name", config_file(cfg));
		goto out;
	}
	if (!st->root) {
		ret = error_set(GROVE_EINVAL, "%s: store.root is not set: name the directory that holds the repositories",
				config_file(cfg));
		goto out;
	}
	if (!secret_file) {
		ret = error_set(GROVE_EINVAL, "%s: store.secretFile is not set: every Grove part needs the shared secret",
				config_file(cfg));
		goto out;
	}
	if (!*nlisten) {
		ret = error_set(GROVE_EINVAL, "%s: no store.listen address", config_file(cfg));
		goto out;
	}
	if ((ret = auth_secret_load(secret_file, &st->secret)) || (ret = store_setup_limits(st, cfg, ropts)) ||
	    (ret = store_setup_dirs(st, cfg, runtime)))
		goto out;
	st->self_exe = realpath("/proc/self/exe", NULL);
	if (!st->self_exe) {
		ret = error_set(GROVE_EIO, "cannot find my own executable: %s", strerror(errno));
		goto out;
	}
	if (st->hooks_dir[0] != '/') {
		/* git resolves a relative core.hooksPath inside each repository,
		 * where no hook is: every check would be skipped. */
		ret = error_set(GROVE_EINVAL, "the hooks folder %s is not an absolute path", st->hooks_dir);
		goto out;
	}
	if (!st->check_only)
		ret = install_links(st);
	if (!ret)
		ret = store_pack_cache_setup(st, cfg);
	st->git_nohooks.hooks_dir = NULL;
	st->git_hooks.hooks_dir = st->hooks_dir;
	st->git_push.hooks_dir = st->push_hooks_dir;
	st->git_nohooks.fsck_ignore = st->git_hooks.fsck_ignore = st->git_push.fsck_ignore =
		gitcmd_fsck_ignore_ids(&st->fsck_ignore);
	/* The secondary's options start from the primary's: its git first. */
	store_setup_primary_git(st, primary_git);
	store_setup_replica_git(st, replica_git, take_index, packed_refs);
out:
	free(primary_git);
	free(replica_git);
	free(fsck_ignore);
	free(secret_file);
	free(level);
	free(runtime);
	return ret;
}

static void store_release(struct store *st)
{
	free(st->name);
	free(st->root);
	free(st->state_dir);
	free(st->tmp_dir);
	free(st->trash_dir);
	free(st->hooks_dir);
	free(st->push_hooks_dir);
	free(st->pack_objects_hook);
	free(st->metrics_listen);
	free(st->replica_git);
	free(st->primary_git);
	free(st->pack_index_hook);
	free(st->connect_bin);
	free(st->hook_address);
	free(st->hook_socket);
	free(st->custom_hooks);
	strvec_clear(&st->fsck_ignore);
	if (st->secret)
		explicit_bzero(st->secret, strlen(st->secret));
	free(st->secret);
	free(st->self_exe);
}

/*
 * --check-config: what a start would read (the config, its secret, the TLS
 * files, every limit), making and changing nothing, like sshd -t: before a
 * reload, an upgrade (SIGUSR2) or a restart. 0 with a summary on stdout,
 * 1 with what is wrong.
 */
/* The whole configuration, as a start and --check-config read it. */
static int store_load(struct store *st, const char *conf, struct config **cfg, struct rpc_server_opts *ropts,
		      char ***listen, size_t *nlisten, int64_t *grace)
{
	int ret;

	if ((ret = config_open(cfg, conf)) || (ret = rpc_tls_from_config(*cfg)) ||
	    (ret = store_setup(st, *cfg, ropts, listen, nlisten)) ||
	    (ret = config_get_int(*cfg, "store.shutdownGrace", 30, 0, 3600, grace)))
		return ret;
	return config_check_unknown(*cfg);
}

/* A running store: its configuration as it was last read. */
struct store_run {
	struct store *st;
	const char *conf;
	struct config *cfg;
};

/*
 * SIGHUP (daemon.h): the configuration and its TLS files read again. The
 * log level and the limits below change for the calls that come next;
 * any other change takes a restart, and is refused: what is in use stays.
 */
static int store_reload(void *arg)
{
	static const char *const reloadable[] = { "log.level", "store.maxreflistsize", "store.minfreespace",
						  "store.fsckobjects", "store.trailingnice",
						  "store.trailingspool", "tls.ca", "tls.cert", "tls.key", NULL };
	struct store_run *run = arg;
	struct store ns = { .check_only = true };
	struct rpc_server_opts ro = { .role = "store" };
	struct config *cfg = NULL;
	char **listen = NULL;
	size_t nlisten = 0;
	enum log_level was = log_level_now();
	struct rpc_tls_saved *tls_was = rpc_tls_save();
	int64_t grace;
	int ret;

	if (!(ret = store_load(&ns, run->conf, &cfg, &ro, &listen, &nlisten, &grace)))
		ret = config_same_but(run->cfg, cfg, reloadable);
	if (ret) {
		log_init("store", was, 2);   /* the new file's level is not taken either, */
		rpc_tls_restore(tls_was);    /* nor its TLS files */
	} else {
		rpc_tls_saved_free(tls_was);
		run->st->max_ref_list = ns.max_ref_list;
		run->st->min_free = ns.min_free;
		run->st->trailing_nice = ns.trailing_nice;
		run->st->trailing_spool = ns.trailing_spool;
		run->st->fsck_objects = ns.fsck_objects;
		config_free(run->cfg);
		run->cfg = cfg;
		cfg = NULL;
	}
	config_free(cfg);
	config_strv_free(listen, nlisten);
	store_release(&ns);
	return ret;
}

static int store_check_config(const char *conf)
{
	struct store st = { .check_only = true };
	struct config *cfg = NULL;
	struct rpc_server_opts ropts = { .role = "store" };
	char **listen = NULL;
	size_t nlisten = 0;
	int ret;

	int64_t grace;

	if ((ret = store_load(&st, conf, &cfg, &ropts, &listen, &nlisten, &grace)))
		fprintf(stderr, "grove store: %s\n", error_msg());
	else
		printf("%s: good. storage %s, root %s, listening on %s%s; TLS on TCP links: %s\n", conf, st.name, st.root,
		       listen[0], nlisten > 1 ? " and more" : "", rpc_tls_on() ? "on" : "off");
	config_strv_free(listen, nlisten);
	config_free(cfg);
	store_release(&st);
	return ret ? 1 : 0;
}

/*
 * Where a push's hooks call back. The hook socket has a server of its own,
 * drained last: the hooks of the pushes still running while the store
 * drains must get through. And a push's hooks call back the process that
 * runs the push, not the one an upgrade put in its place meanwhile (that
 * one knows nothing of it): its own socket, not the path an upgrade moves;
 * and the hook wire beside it (hooksock.c), this process's own as well.
 */
static int store_listen_hooks(struct store *st, const struct rpc_server_opts *ropts, struct rpc_server **hsrv,
			      struct hooksock **wire)
{
	char *own, *slash;
	int ret;

	if ((ret = rpc_server_new(hsrv, ropts)))
		return ret;
	store_register_hook_service(*hsrv, st);
	if ((ret = rpc_server_listen(*hsrv, st->hook_address)))
		return ret;
	own = xstrdup(rpc_server_own_address(*hsrv, st->hook_address));
	free(st->hook_address);
	st->hook_address = own;
	/* "unix:DIR/hook.sock.PID" → DIR/hookw.PID */
	slash = strrchr(own, '/');
	st->hook_socket = xasprintf("%.*s/hookw.%d", (int)(slash - own - 5), own + 5, (int)getpid());
	return hooksock_start(st, st->hook_socket, wire);
}

int store_main(int argc, char **argv)
{
	struct store st = { 0 };
	struct config *cfg = NULL;
	struct rpc_server *srv = NULL, *hsrv = NULL;
	struct rpc_server_opts ropts = { .role = "store" };
	struct store_args args = { .name = "default", .listen_addr = "127.0.0.1:8075" };
	const char *conf;
	char **listen = NULL;
	size_t nlisten = 0;
	struct daemon d;
	struct store_run run = { &st, NULL, NULL };
	struct metricsd *metrics = NULL;
	struct hooksock *wire = NULL;
	int ret = 0;
	int64_t grace;

	if ((ret = store_parse_args(&args, argc, argv)) >= 0)
		return ret;
	if (args.init) {
		if (storage_name_validate(args.name) || store_init_dir(args.init, args.name, args.listen_addr)) {
			fprintf(stderr, "grove store: %s\n", error_msg());
			return 1;
		}
		return 0;
	}
	conf = args.conf;
	ret = 0;
	if (args.check)
		return store_check_config(conf);

	/* Signals are taken synchronously by this thread, never by a worker. */
	daemon_init(&d, "store", NULL, argv);
	git_libgit2_init();

	if ((ret = store_load(&st, conf, &cfg, &ropts, &listen, &nlisten, &grace)))
		goto out;
	run.conf = conf;
	run.cfg = cfg;   /* the reloads' from now on */
	cfg = NULL;
	ropts.secret = st.secret;
	/* SSHService takes RPC_STDIN_MAX a message (service_ssh.c); the hook
	 * server, from the same options, has no SSHService. */
	struct rpc_server_opts main_opts = ropts;
	main_opts.stdin_max = true;
	if ((ret = rpc_server_new(&srv, &main_opts)))
		goto out;
	store_register_repository_service(srv, &st);
	store_register_ref_service(srv, &st);
	store_register_ssh_service(srv, &st);
	store_register_hook_service(srv, &st);
	store_register_server_service(srv, &st);
	/* A router asks this before it makes a store part of a write. */
	if ((ret = rpc_server_health_service(srv, RPC_HEALTH_WRITES, store_writable, &st)))
		goto out;
	for (size_t i = 0; i < nlisten; i++)
		if ((ret = rpc_server_listen(srv, listen[i])))
			goto out;
	if ((ret = store_listen_hooks(&st, &ropts, &hsrv, &wire)))
		goto out;
	if ((ret = rpc_server_start(hsrv)) || (ret = rpc_server_start(srv)) ||
	    (ret = store_metrics_start(&st, &metrics)))
		goto out;
	log_info("store.started", "version=%s name=%s root=%s listen=%s hook_socket=%s primary_git=%s replica_git=%s "
		 "take_pack_index=%b packed_ref_updates=%d",
		 grove_version(), st.name, st.root, listen[0], st.hook_address, st.primary_git ? st.primary_git : "",
		 st.replica_git ? st.replica_git : "",
		 st.pack_index_hook != NULL, st.packed_ref_updates);
	d.reload = store_reload;
	d.reload_arg = &run;
	daemon_serve_rpc(&d, (struct rpc_server *[]){ srv, hsrv }, 2, grace);
	hooksock_stop(wire);
	wire = NULL;
out:
	if (ret) {
		log_error("store.failed", "error=%s", error_msg());
		fprintf(stderr, "grove store: %s\n", error_msg());
	}
	metricsd_stop(metrics);
	hooksock_stop(wire);
	rpc_server_free(srv);
	rpc_server_free(hsrv);
	config_strv_free(listen, nlisten);
	config_free(cfg);
	config_free(run.cfg);
	store_release(&st);
	daemon_release(&d);
	return ret ? 1 : 0;
}
