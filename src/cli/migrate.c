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
#include "lib/auth.h"
#include "lib/error.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>

static const char usage[] =
	"usage: grove migrate --percent N [--batch K] [--rate R] [--dry-run] [--to cluster|legacy]\n"
	"\n"
	"Moves apps, live, until N %% of all apps are on the cluster route: legacy\n"
	"apps to the cluster (--to cluster, the default) or, with --to legacy, cluster\n"
	"apps back until at most N %% are left there. At most K apps this run\n"
	"(--batch), at most R apps a minute (--rate). --dry-run lists what would move.\n"
	"Uses the gate's admin API like `grove app` ($GROVE_ADMIN_URL, $GROVE_ADMIN_TOKEN_FILE).\n";

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

int migrate_main(int argc, char **argv)
{
	const char *base = cli_admin_url();
	const char *to = "cluster";
	double percent = -1;
	long batch = -1, rate = 0;
	bool dry = false, tty = isatty(2);
	char *token = NULL;
	json_t *body = NULL, *resp = NULL;
	long status = 0;
	size_t shown = 0, n = 0;
	int code = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--percent") && i + 1 < argc)
			percent = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf(usage);
			return 0;
		} else {
			fprintf(stderr, "grove migrate: unknown argument '%s'\n", argv[i]);
			fprintf(stderr, usage);
			return 2;
		}
	}
	if (percent < 0 || percent > 100 || (strcmp(to, "cluster") && strcmp(to, "legacy")) || batch == 0 || rate < 0) {
		fprintf(stderr, "grove migrate: give --percent from 0 to 100, --to cluster or legacy, --batch > 0, --rate >= 0\n");
		fprintf(stderr, usage);
		return 2;
	}
	if (cli_admin_token(&token)) {
		fprintf(stderr, "grove migrate: %s\n", error_msg());
		goto out;
	}
	/* The gate runs the batch: it goes on if this command is closed. */
	body = json_pack("{s:f, s:s, s:b}", "percent", percent, "to", to, "dry_run", dry);
	if (batch > 0)
		json_object_set_new(body, "batch", json_integer(batch));
	if (rate > 0)
		json_object_set_new(body, "rate", json_integer(rate));
	if (admin_call(base, token, "POST", "/api/v1/migrations", body, &status, &resp) || status >= 400) {
		fprintf(stderr, "grove migrate: %s\n",
			status ? json_string_value(json_object_get(resp, "error")) ?: "the gate refused" : error_msg());
		goto out;
	}
	json_t *moving = json_object_get(resp, "moving");
	json_int_t total = json_integer_value(json_object_get(resp, "apps"));
	json_int_t on_cluster = json_integer_value(json_object_get(resp, "on_cluster"));
	n = json_array_size(moving);
	fprintf(stderr, "%lld apps, %lld on the cluster (%.1f %%); %s %zu to the %s route%s\n", (long long)total,
		(long long)on_cluster, total ? 100.0 * (double)on_cluster / (double)total : 0.0,
		dry ? "would move" : "moving", n, to, dry ? "" : ", one at a time, live");
	if (dry || !n) {
		for (size_t i = 0; i < n; i++)
			puts(json_string_value(json_array_get(moving, i)));
		code = 0;
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (;;) {
		json_t *st = NULL;
		if (admin_call(base, token, "GET", "/api/v1/migrations", NULL, &status, &st) || status >= 400) {
			fprintf(stderr, "\ngrove migrate: cannot follow the batch: %s\n", status ? "the gate refused" : error_msg());
			json_decref(st);
			goto out;
		}
		json_t *b = json_object_get(st, "batch"), *results = json_object_get(b, "results");
		int done = (int)json_integer_value(json_object_get(b, "done"));
		int failed = (int)json_integer_value(json_object_get(b, "failed"));
		int btotal = (int)json_integer_value(json_object_get(b, "total"));
		/* Each app finished since the last look, in order. */
		for (; shown < json_array_size(results); shown++) {
			json_t *r = json_array_get(results, shown);
			bool ok = json_is_true(json_object_get(r, "ok"));
			const char *err = json_string_value(json_object_get(r, "error")) ?: "";
			progress(tty, json_string_value(json_object_get(r, "app")) ?: "?", ok, err,
				 (int)(shown + 1) - failed_before(results, shown + 1), failed_before(results, shown + 1),
				 btotal, json_number_value(json_object_get(b, "rate_per_min")),
				 json_number_value(json_object_get(b, "eta_s")));
		}
		bool running = json_is_true(json_object_get(b, "running"));
		json_decref(st);
		if (!running) {
			if (tty)
				fputc('\n', stderr);
			fprintf(stderr, "done: %d moved, %d failed, %d left of %d\n", done, failed, btotal - done - failed, btotal);
			code = failed || done + failed < btotal ? 1 : 0;
			break;
		}
		if (stop) {
			fprintf(stderr, "\nstopped watching: the batch goes on in the gate (GET /api/v1/migrations)\n");
			code = 1;
			break;
		}
		usleep(250 * 1000);
	}
out:
	json_decref(body);
	json_decref(resp);
	free(token);
	return code;
}
