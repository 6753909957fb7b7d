/*
 * `grove migrate --percent N [--batch K] [--rate R] [--dry-run] [--to cluster|legacy]`:
 * moves apps between the legacy directory and the cluster until N % of all
 * apps are on the cluster, one live migration at a time through the gate's
 * admin API (each: lock, copy, verify, switch, unlock; pushes wait, fetches go
 * on). Apps are taken in name order, so a run that stops (Ctrl-C, --batch)
 * and is started again goes on where it was.
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

static void progress(bool tty, const char *app, bool ok, const char *err, int done, int failed, int total,
		     int64_t start_ms)
{
	double el = (double)(now_ms() - start_ms) / 1000.0;
	double rate = el > 0 ? (done + failed) / el * 60.0 : 0;
	double eta = rate > 0 ? (total - done - failed) / rate * 60.0 : 0;
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
	const char *base = getenv("GROVE_ADMIN_URL") ? getenv("GROVE_ADMIN_URL") : "http://127.0.0.1:8080";
	const char *to = "cluster";
	double percent = -1;
	long batch = -1, rate = 0;
	bool dry = false, tty = isatty(2);
	char *token = NULL;
	json_t *apps = NULL;
	const char **pick = NULL;
	long status = 0;
	int total, on_cluster = 0, want, n = 0, done = 0, failed = 0, code = 1;
	int64_t start;

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
	if (getenv("GROVE_ADMIN_TOKEN"))
		token = xstrdup(getenv("GROVE_ADMIN_TOKEN"));
	else if (auth_secret_load(getenv("GROVE_ADMIN_TOKEN_FILE") ? getenv("GROVE_ADMIN_TOKEN_FILE")
								   : "grove-data/gate/admin-token",
				  &token)) {
		fprintf(stderr, "grove migrate: no admin token: set GROVE_ADMIN_TOKEN or GROVE_ADMIN_TOKEN_FILE (%s)\n",
			error_msg());
		goto out;
	}
	if (admin_call(base, token, "GET", "/api/v1/apps", NULL, &status, &apps) || status != 200 || !json_is_array(apps)) {
		fprintf(stderr, "grove migrate: cannot list the apps (HTTP %ld): %s\n", status,
			status ? "see the gate's log" : error_msg());
		goto out;
	}
	total = (int)json_array_size(apps);
	for (int i = 0; i < total; i++)
		on_cluster += !strcmp(json_string_value(json_object_get(json_array_get(apps, (size_t)i), "route")) ?: "",
				      "cluster");
	/* How many move: to reach ceil(N %) on the cluster, or to come down to floor(N %). */
	if (!strcmp(to, "cluster"))
		want = MAX(0, (int)ceil(total * percent / 100.0 - 1e-9) - on_cluster);
	else
		want = MAX(0, on_cluster - (int)floor(total * percent / 100.0 + 1e-9));
	if (batch > 0)
		want = (int)MIN((long)want, batch);
	pick = xcalloc((size_t)want + 1, sizeof(*pick));
	for (int i = 0; i < total && n < want; i++) {
		json_t *a = json_array_get(apps, (size_t)i);
		const char *route = json_string_value(json_object_get(a, "route"));
		if (route && strcmp(route, to))
			pick[n++] = json_string_value(json_object_get(a, "name"));
	}
	fprintf(stderr, "%d apps, %d on the cluster (%.1f %%); %s %d to the %s route%s\n", total, on_cluster,
		total ? 100.0 * on_cluster / total : 0.0, dry ? "would move" : "moving", n, to,
		dry ? "" : ", one at a time, live");
	if (dry) {
		for (int i = 0; i < n; i++)
			puts(pick[i]);
		code = 0;
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	start = now_ms();
	for (int i = 0; i < n && !stop; i++) {
		char path[256];
		json_t *body = json_pack("{s:s}", "to", to), *resp = NULL;
		const char *err = "";
		/* --rate: the i-th app starts no sooner than i minutes / R after the first. */
		if (rate > 0) {
			int64_t at = start + (int64_t)i * 60000 / rate;
			while (!stop && now_ms() < at)
				usleep(100 * 1000);
			if (stop)
				break;
		}
		snprintf(path, sizeof(path), "/api/v1/apps/%s/migrate", pick[i]);
		int r = admin_call(base, token, "POST", path, body, &status, &resp);
		bool ok = !r && status < 400;
		if (r)
			err = error_msg();
		else if (!ok)
			err = json_is_string(json_object_get(resp, "error")) ? json_string_value(json_object_get(resp, "error"))
									       : "no message";
		if (ok)
			done++;
		else
			failed++;
		progress(tty, pick[i], ok, err, done, failed, n, start);
		json_decref(body);
		json_decref(resp);
	}
	if (tty)
		fputc('\n', stderr);
	fprintf(stderr, "%s: %d moved, %d failed, %d left of %d\n", stop ? "stopped" : "done", done, failed,
		n - done - failed, n);
	code = failed || stop ? 1 : 0;
out:
	free(pick);
	json_decref(apps);
	free(token);
	return code;
}
