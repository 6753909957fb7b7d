/* Shared-memory Prometheus metrics: see metrics.h. */
#include "lib/common.h"
#include "gate/metrics.h"
#include "lib/fs.h"


struct gate_metrics *gate_metrics;

static const double bucket_le[METRICS_BUCKETS] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

struct gate_metrics *metrics_create(const char *path, bool create)
{
	/* A new mapping is zeroes: counters start from nothing. */
	return fs_map_shared(path, sizeof(struct gate_metrics), create);
}

void metrics_observe(struct histogram *h, int64_t ms)
{
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		if ((double)ms / 1000.0 <= bucket_le[i]) {
			atomic_fetch_add(&h->buckets[i], 1);
			break;
		}
	}
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_ms, (unsigned long long)(ms > 0 ? ms : 0));
}

static void render_histogram(struct strbuf *out, const char *name, const char *help, const struct histogram *h)
{
	unsigned long long cum = 0;
	strbuf_addf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += atomic_load(&h->buckets[i]);
		strbuf_addf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i], cum);
	}
	strbuf_addf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)atomic_load(&h->count));
	strbuf_addf(out, "%s_sum %.3f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_ms) / 1000.0, name,
		    (unsigned long long)atomic_load(&h->count));
}

void metrics_refusal(enum metrics_refusal why)
{
	if (gate_metrics && why < RR_COUNT)
		atomic_fetch_add(&gate_metrics->refusals[why], 1);
}

void metrics_render(const struct gate_metrics *m, struct strbuf *out)
{
	static const char *const services[MS_COUNT] = { "git-upload-pack", "git-receive-pack", "git-upload-archive", "none" };
	static const char *const results[MR_COUNT] = { "ok", "rejected", "failed", "refused" };
	static const char *const reasons[RR_COUNT] = { "access", "locked", "too_large", "branch", "namespace",
							"ref_name", "deploy_branch_delete", "app_gone", "lost_race", "busy", "rate", "user_busy",
							"user_connections" };
	if (!m)
		return;
	strbuf_addf(out, "# HELP grove_gate_sessions_in_flight SSH sessions running a git command now.\n"
			 "# TYPE grove_gate_sessions_in_flight gauge\ngrove_gate_sessions_in_flight %lld\n",
		    (long long)atomic_load(&m->sessions_in_flight));
	strbuf_addstr(out, "# HELP grove_gate_sessions_total SSH sessions by command and result.\n"
			   "# TYPE grove_gate_sessions_total counter\n");
	for (int s = 0; s < MS_COUNT; s++)
		for (int r = 0; r < MR_COUNT; r++)
			strbuf_addf(out, "grove_gate_sessions_total{command=\"%s\",result=\"%s\"} %llu\n", services[s],
				    results[r], (unsigned long long)atomic_load(&m->sessions[s][r]));
	strbuf_addf(out, "# HELP grove_gate_bytes_pushed_total Bytes received from pushing clients.\n"
			 "# TYPE grove_gate_bytes_pushed_total counter\ngrove_gate_bytes_pushed_total %llu\n",
		    (unsigned long long)atomic_load(&m->bytes_pushed));
	strbuf_addf(out, "# HELP grove_gate_bytes_fetched_total Bytes sent to fetching clients.\n"
			 "# TYPE grove_gate_bytes_fetched_total counter\ngrove_gate_bytes_fetched_total %llu\n",
		    (unsigned long long)atomic_load(&m->bytes_fetched));
	strbuf_addf(out, "# HELP grove_gate_auth_failures_total Signed authentications with a key no user has.\n"
			 "# TYPE grove_gate_auth_failures_total counter\ngrove_gate_auth_failures_total %llu\n",
		    (unsigned long long)atomic_load(&m->auth_failures));
	strbuf_addf(out, "# HELP grove_gate_deploys_total Deployments by final status.\n"
			 "# TYPE grove_gate_deploys_total counter\n"
			 "grove_gate_deploys_total{status=\"succeeded\"} %llu\n"
			 "grove_gate_deploys_total{status=\"failed\"} %llu\n",
		    (unsigned long long)atomic_load(&m->deploys_succeeded),
		    (unsigned long long)atomic_load(&m->deploys_failed));
	strbuf_addf(out, "# HELP grove_gate_authz_total Answers to the gate's questions to the authorization API (auth.url).\n"
			 "# TYPE grove_gate_authz_total counter\n"
			 "grove_gate_authz_total{result=\"allowed\"} %llu\n"
			 "grove_gate_authz_total{result=\"denied\"} %llu\n"
			 "grove_gate_authz_total{result=\"unavailable\"} %llu\n"
			 "grove_gate_authz_total{result=\"cached\"} %llu\n",
		    (unsigned long long)atomic_load(&m->authz[MA_ALLOWED]),
		    (unsigned long long)atomic_load(&m->authz[MA_DENIED]),
		    (unsigned long long)atomic_load(&m->authz[MA_UNAVAILABLE]),
		    (unsigned long long)atomic_load(&m->authz[MA_CACHED]));
	strbuf_addstr(out, "# HELP grove_gate_push_refusals_total Pushes (or ref updates of one) refused, by reason.\n"
			   "# TYPE grove_gate_push_refusals_total counter\n");
	for (int r = 0; r < RR_COUNT; r++)
		strbuf_addf(out, "grove_gate_push_refusals_total{reason=\"%s\"} %llu\n", reasons[r],
			    (unsigned long long)atomic_load(&m->refusals[r]));
	render_histogram(out, "grove_gate_push_duration_seconds", "Duration of git-receive-pack sessions.", &m->push_seconds);
	render_histogram(out, "grove_gate_deploy_duration_seconds", "Duration of deployments.", &m->deploy_seconds);
	render_histogram(out, "grove_gate_queue_wait_seconds",
			 "Time git commands waited for one of gate.maxOpsPerApp slots of their app.", &m->queue_seconds);
}
