/*
 * `grove migrate --percent N [--batch K] [--rate R] [--dry-run] [--to cluster|legacy]`:
 * asks the gate (POST /api/v1/migrations) to move apps between the legacy
 * directory and the cluster until N % of all apps are on the cluster, one live
 * migration at a time (each: lock, copy, verify, switch, unlock; pushes wait,
 * fetches go on), and follows the batch (GET /api/v1/migrations). The gate
 * runs it, so closing this command does not stop it. Apps are taken in name
 * order, so a batch that ended early and is asked again goes on where it was.
 *
 * Progress: on a terminal, a bar on stderr (apps done / to do, rate, ETA);
 * otherwise one JSON line per app on stdout, for scripts.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/error.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>

enum { OPT_PERCENT = CLI_OPT_LONG, OPT_BATCH, OPT_RATE, OPT_TO, OPT_DRY_RUN };

static const struct cli_option migrate_options[] = {
	{ "percent", OPT_PERCENT, "N", "the share of all apps to have on the cluster route, 0 to 100" },
	{ "batch", OPT_BATCH, "K", "move at most K apps this run" },
	{ "rate", OPT_RATE, "R", "move at most R apps a minute" },
	{ "dry-run", OPT_DRY_RUN, NULL, "list what would move, and move nothing" },
	{ "to", OPT_TO, "cluster|legacy", "the direction (default: cluster)" },
	{ NULL },
};

const struct cli_command migrate_command = {
	"migrate", "--percent N [--batch K] [--rate R] [--dry-run] [--to cluster|legacy]",
	"Moves apps, live, until N % of all apps are on the cluster route.",
	migrate_options,
	"Legacy apps go to the cluster (--to cluster, the default) or, with --to legacy,\n"
	"cluster apps back until at most N % are left there. Uses the gate's admin API\n"
	"like `grove app` ($GROVE_ADMIN_URL, $GROVE_ADMIN_TOKEN_FILE).\n",
	false,
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void fmt_duration(double s, char *buf, size_t n)
{
	long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
	if (t >= 3600)
		snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Failed apps among the first n results. */
static int failed_before(json_t *results, size_t n)
{
	int f = 0;
	for (size_t i = 0; i < n && i < json_array_size(results); i++)
		f += !json_is_true(json_object_get(json_array_get(results, i), "ok"));
	return f;
}

static void progress(bool tty, const char *app, bool ok, const char *err, int done, int failed, int total, double rate,
		     double eta)
{
	if (tty) {
		char e[32];
		int width = 30, fill = total ? (done + failed) * width / total : width;
		fmt_duration(eta, e, sizeof(e));
		fprintf(stderr, "\r[%.*s%.*s] %d/%d apps  %.1f/min  ETA %s  %-30.30s", fill,
			"##############################", width - fill, "..............................", done + failed,
			total, rate, e, app);
		if (!ok)
			fprintf(stderr, "\n%s: %s\n", app, err);
	} else {
		json_t *j = json_pack("{s:s, s:b, s:i, s:i, s:i, s:f, s:f}", "app", app, "ok", ok, "done", done, "failed",
				      failed, "total", total, "rate_per_min", rate, "eta_s", eta);
		if (!ok)
			json_object_set_new(j, "error", json_string(err));
		char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(line);
		fflush(stdout);
		free(line);
		json_decref(j);
	}
}

/* One `grove migrate`: what it asks the gate for, and how far it has followed the batch. */
struct migrate {
	const char *base, *to;
	double percent;
	long batch, rate;
	bool dry, tty;
	char *token;
	json_t *body, *resp;       /* the request, and the gate's answer: the apps it moves */
	size_t n;                  /* how many it moves */
	size_t shown;              /* results already shown */
};

/* Returns the exit code when the command line says to stop here (help, a mistake), else -1. */
static int migrate_parse_args(struct migrate *m, int argc, char **argv)
{
	struct cli_parse p;
	int o, code;

	cli_parse_init(&p, &migrate_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		switch (o) {
		case OPT_PERCENT: m->percent = strtod(optarg, NULL); break;
		case OPT_BATCH: m->batch = strtol(optarg, NULL, 10); break;
		case OPT_RATE: m->rate = strtol(optarg, NULL, 10); break;
		case OPT_TO: m->to = optarg; break;
		case OPT_DRY_RUN: m->dry = true; break;
		}
	}
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (p.nargs)
		return cli_usage_error(&migrate_command, "unknown argument '%s'", p.args[0]);
	if (m->percent < 0 || m->percent > 100 || (strcmp(m->to, "cluster") && strcmp(m->to, "legacy")) ||
	    m->batch == 0 || m->rate < 0)
		return cli_usage_error(&migrate_command,
				       "give --percent from 0 to 100, --to cluster or legacy, --batch > 0, --rate >= 0");
	return -1;
}

/* The gate runs the batch: it goes on if this command is closed. */
static int migrate_ask(struct migrate *m)
{
	long status = 0;

	m->body = json_pack("{s:f, s:s, s:b}", "percent", m->percent, "to", m->to, "dry_run", m->dry);
	if (m->batch > 0)
		json_object_set_new(m->body, "batch", json_integer(m->batch));
	if (m->rate > 0)
		json_object_set_new(m->body, "rate", json_integer(m->rate));
	if (admin_call(m->base, m->token, "POST", "/api/v1/migrations", m->body, &status, &m->resp) || status >= 400) {
		fprintf(stderr, "grove migrate: %s\n",
			status ? json_string_value(json_object_get(m->resp, "error")) ?: "the gate refused" : error_msg());
		return -1;
	}
	json_t *moving = json_object_get(m->resp, "moving");
	json_int_t total = json_integer_value(json_object_get(m->resp, "apps"));
	json_int_t on_cluster = json_integer_value(json_object_get(m->resp, "on_cluster"));
	m->n = json_array_size(moving);
	fprintf(stderr, "%lld apps, %lld on the cluster (%.1f %%); %s %zu to the %s route%s\n", (long long)total,
		(long long)on_cluster, total ? 100.0 * (double)on_cluster / (double)total : 0.0,
		m->dry ? "would move" : "moving", m->n, m->to, m->dry ? "" : ", one at a time, live");
	return 0;
}

/* Each app finished since the last look, in order. */
static void migrate_show_results(struct migrate *m, json_t *b)
{
	json_t *results = json_object_get(b, "results");
	int btotal = (int)json_integer_value(json_object_get(b, "total"));

	for (; m->shown < json_array_size(results); m->shown++) {
		json_t *r = json_array_get(results, m->shown);
		bool ok = json_is_true(json_object_get(r, "ok"));
		const char *err = json_string_value(json_object_get(r, "error")) ?: "";
		progress(m->tty, json_string_value(json_object_get(r, "app")) ?: "?", ok, err,
			 (int)(m->shown + 1) - failed_before(results, m->shown + 1), failed_before(results, m->shown + 1),
			 btotal, json_number_value(json_object_get(b, "rate_per_min")),
			 json_number_value(json_object_get(b, "eta_s")));
	}
}

/* Follows the batch until it ends or we are told to stop watching; returns the exit code. */
static int migrate_follow(struct migrate *m)
{
	long status = 0;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (;;) {
		json_t *st = NULL;
		if (admin_call(m->base, m->token, "GET", "/api/v1/migrations", NULL, &status, &st) || status >= 400) {
			fprintf(stderr, "\ngrove migrate: cannot follow the batch: %s\n", status ? "the gate refused" : error_msg());
			json_decref(st);
			return 1;
		}
		json_t *b = json_object_get(st, "batch");
		int done = (int)json_integer_value(json_object_get(b, "done"));
		int failed = (int)json_integer_value(json_object_get(b, "failed"));
		int btotal = (int)json_integer_value(json_object_get(b, "total"));
		migrate_show_results(m, b);
		bool running = json_is_true(json_object_get(b, "running"));
		json_decref(st);
		if (!running) {
			if (m->tty)
				fputc('\n', stderr);
			fprintf(stderr, "done: %d moved, %d failed, %d left of %d\n", done, failed, btotal - done - failed, btotal);
			return failed || done + failed < btotal ? 1 : 0;
		}
		if (stop) {
			fprintf(stderr, "\nstopped watching: the batch goes on in the gate (GET /api/v1/migrations)\n");
			return 1;
		}
		usleep(250 * 1000);
	}
}

int migrate_main(int argc, char **argv)
{
	struct migrate m = { .base = cli_admin_url(), .to = "cluster", .percent = -1, .batch = -1, .tty = isatty(2) };
	int code;

	if ((code = migrate_parse_args(&m, argc, argv)) >= 0)
		return code;
	code = 1;
	if (cli_admin_token(&m.token)) {
		fprintf(stderr, "grove migrate: %s\n", error_msg());
		goto out;
	}
	if (migrate_ask(&m))
		goto out;
	if (m.dry || !m.n) {
		json_t *moving = json_object_get(m.resp, "moving");
		for (size_t i = 0; i < m.n; i++)
			puts(json_string_value(json_array_get(moving, i)));
		code = 0;
		goto out;
	}
	code = migrate_follow(&m);
out:
	json_decref(m.body);
	json_decref(m.resp);
	free(m.token);
	return code;
}
