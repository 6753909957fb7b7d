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
#include "cli/cli.h"
#include "gate/gate.h"
#include "gate/db.h"
#include "gate/backup.h"
#include "lib/error.h"
#include "lib/log.h"

static const char usage[] =
	"usage: grove backup APP [-c GATE_CONFIG] > APP.bundle\n"
	"       grove restore APP [--force] [-c GATE_CONFIG] < APP.bundle\n"
	"\n"
	"The app's repository as a git bundle (all refs and HEAD), from where it lives,\n"
	"and back; --force replaces an existing repository. GATE_CONFIG defaults to\n"
	"$GROVE_GATE_CONFIG, then ./grove-data/gate/gate.conf.\n";

int backup_main(const char *verb, int argc, char **argv)
{
	const char *conf = getenv("GROVE_GATE_CONFIG") ? getenv("GROVE_GATE_CONFIG") : "grove-data/gate/gate.conf";
	const char *app = NULL;
	bool restore = !strcmp(verb, "restore"), force = false;
	struct gate_config cfg = { 0 };
	struct repo_env env = { 0 };
	struct db *db = NULL;
	struct strbuf report = STRBUF_INIT;
	char *locks = NULL, *tmp = NULL;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conf = argv[++i];
		else if (restore && !strcmp(argv[i], "--force"))
			force = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (argv[i][0] != '-' && !app)
			app = argv[i];
		else {
			fprintf(stderr, "grove %s: unknown argument '%s'\n%s", verb, argv[i], usage);
			return 2;
		}
	}
	if (!app) {
		fputs(usage, stderr);
		return 2;
	}
	if (!restore && isatty(1)) {
		fprintf(stderr, "grove backup: the bundle goes to standard output: redirect it to a file\n");
		return 2;
	}
	if ((ret = gate_config_load(&cfg, conf)))
		goto out;
	log_init("cli", LOG_WARN, 2);
	locks = xasprintf("%s/locks", cfg.data_dir);
	tmp = xasprintf("%s/tmp", cfg.data_dir);
	env.legacy_dir = cfg.legacy_dir;
	env.cluster_address = cfg.cluster_address;
	env.cluster_storage = cfg.cluster_storage;
	env.secret = cfg.secret;
	env.locks_dir = locks;
	env.tmp_dir = tmp;
	env.lock_timeout = 600;
	if ((ret = db_open(&db, cfg.db_path)))
		goto out;
	strbuf_init(&report, 4096);
	if (restore)
		ret = app_restore(&env, db, app, 0, force, &report);
	else
		ret = app_backup(&env, db, app, 1);
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
	return ret ? 1 : 0;
}
