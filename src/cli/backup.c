/*
 * `grove backup APP > app.bundle` and `grove restore APP [--force] < app.bundle`:
 * an app's repository as a git bundle (all refs and HEAD), from wherever it
 * lives — the legacy directory or the cluster — and back. Run on a gate's
 * machine: they read the gate's config (-c FILE, else $GROVE_GATE_CONFIG,
 * else ./grove-data/gate/gate.conf, the layout of `grove up`) for the
 * database, the legacy directory, the cluster and the secret. A restore
 * locks the app as a migration does (pushes wait, fetches go on).
 */
#include "lib/common.h"
#include "cli/bar.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "gate/gate.h"
#include "gate/db.h"
#include "gate/backup.h"
#include "lib/error.h"
#include "lib/log.h"

enum { OPT_FORCE = CLI_OPT_LONG };

static const struct cli_option backup_options[] = {
	{ "config", 'c', "GATE_CONFIG", "the gate's config (default: $GROVE_GATE_CONFIG, ./grove-data/gate/gate.conf)" },
	{ NULL },
};

static const struct cli_option restore_options[] = {
	{ "config", 'c', "GATE_CONFIG", "the gate's config (default: $GROVE_GATE_CONFIG, ./grove-data/gate/gate.conf)" },
	{ "force", OPT_FORCE, NULL, "replace an existing repository" },
	{ NULL },
};

const struct cli_command backup_command = {
	"backup", "APP [-c GATE_CONFIG] > APP.bundle",
	"Writes the app's repository, from where it lives, as a git bundle (all refs and HEAD).",
	backup_options, "`grove restore APP < APP.bundle` puts it back.\n", false,
};

const struct cli_command restore_command = {
	"restore", "APP [--force] [-c GATE_CONFIG] < APP.bundle",
	"Puts back an app's repository from a git bundle that grove backup wrote.",
	restore_options, "The app is locked meanwhile, as for a migration: pushes wait, fetches go on.\n", false,
};

/* Returns the exit code when the command line says to stop here (help, a mistake), else -1. */
static int backup_parse_args(const struct cli_command *cmd, int argc, char **argv, const char **conf,
			     const char **app, bool *force)
{
	struct cli_parse p;
	int o, code;

	cli_parse_init(&p, cmd, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		if (o == 'c')
			*conf = optarg;
		else if (o == OPT_FORCE)
			*force = true;
	}
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (!p.nargs)
		return cli_usage_error(cmd, "missing APP");
	if (p.nargs > 1)
		return cli_usage_error(cmd, "unknown argument '%s'", p.args[1]);
	*app = p.args[0];
	return -1;
}

/* The operation's progress, as a bar on a terminal (stderr) or a line per phase. */
static void show_progress(const struct progress *p, void *arg)
{
	cli_bar_show(arg, p->phase, p->done, p->total);
}

int backup_main(const char *verb, int argc, char **argv)
{
	const char *conf = getenv("GROVE_GATE_CONFIG") ? getenv("GROVE_GATE_CONFIG") : "grove-data/gate/gate.conf";
	const char *app = NULL;
	bool restore = !strcmp(verb, "restore"), force = false;
	struct gate_config cfg = { 0 };
	struct repo_env env = { 0 };
	struct db *db = NULL;
	struct strbuf report = STRBUF_INIT;
	struct cli_bar bar;
	char what[96];
	char *locks = NULL, *tmp = NULL, *progress = NULL;
	int ret = 0;

	if ((ret = backup_parse_args(restore ? &restore_command : &backup_command, argc, argv, &conf, &app, &force)) >= 0)
		return ret;
	ret = 0;
	if (!restore && isatty(1)) {
		fprintf(stderr, "grove backup: the bundle goes to standard output: redirect it to a file\n");
		return 2;
	}
	if ((ret = gate_config_load(&cfg, conf)))
		goto out;
	log_init("cli", LOG_WARN, 2);
	locks = xasprintf("%s/locks", cfg.data_dir);
	tmp = xasprintf("%s/tmp", cfg.data_dir);
	progress = xasprintf("%s/progress", cfg.data_dir);
	env.legacy_dir = cfg.legacy_dir;
	env.cluster_address = cfg.cluster_address;
	env.cluster_storage = cfg.cluster_storage;
	env.secret = cfg.secret;
	env.locks_dir = locks;
	env.tmp_dir = tmp;
	env.progress_dir = progress;
	snprintf(what, sizeof(what), "grove %s %s", verb, app);
	cli_bar_init(&bar, what, isatty(2));
	env.progress_show = show_progress;
	env.progress_arg = &bar;
	env.lock_timeout = 600;
	if ((ret = db_open(&db, cfg.db_path)))
		goto out;
	strbuf_init(&report, 4096);
	if (restore)
		ret = app_restore(&env, db, app, 0, force, &report);
	else
		ret = app_backup(&env, db, app, 1);
	cli_bar_done(&bar);
	if (!ret && report.len)
		fputs(report.buf, stderr);
out:
	if (ret)
		fprintf(stderr, "grove %s: %s\n", verb, error_msg());
	strbuf_release(&report);
	db_close(db);
	gate_config_release(&cfg);
	free(locks);
	free(tmp);
	free(progress);
	return ret ? 1 : 0;
}
