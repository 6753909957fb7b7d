/*
 * The router's Prometheus metrics on `cluster.metricsListen` (GET /metrics):
 * health per store, elections, votes, refused writes, replication lag, the
 * queue by state, verification mismatches, repairs. Counters live in
 * cluster.m; gauges are read from the state at each scrape.
 */
#include "cluster/cluster.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/strbuf.h"

#include "lib/metricsd.h"

/* Each store's own replication queue, by state. */
static void store_queues(struct cluster *c, struct strbuf *sb)
{
	uint64_t *r = xcalloc(c->nnodes + 1, sizeof(*r)), *p = xcalloc(c->nnodes + 1, sizeof(*p)),
		 *f = xcalloc(c->nnodes + 1, sizeof(*f));
	if (!state_node_jobs(c, r, p, f)) {
		strbuf_addstr(sb, "# HELP grove_cluster_store_jobs Replication jobs of the store, by state.\n"
				  "# TYPE grove_cluster_store_jobs gauge\n");
		for (size_t i = 0; i < c->nnodes; i++)
			strbuf_addf(sb,
				    "grove_cluster_store_jobs{store=\"%s\",state=\"ready\"} %llu\n"
				    "grove_cluster_store_jobs{store=\"%s\",state=\"in_progress\"} %llu\n"
				    "grove_cluster_store_jobs{store=\"%s\",state=\"failed\"} %llu\n",
				    c->nodes[i].name, (unsigned long long)r[i], c->nodes[i].name, (unsigned long long)p[i],
				    c->nodes[i].name, (unsigned long long)f[i]);
	}
	free(r);
	free(p);
	free(f);
}

static void render(void *ctx, struct strbuf *sb)
{
	struct cluster *c = ctx;
	struct cluster_metrics m;
	uint64_t ready = 0, running = 0, failed = 0, dead = 0, outdated = 0, behind = 0;

	pthread_mutex_lock(&c->mu);
	m = c->m;
	strbuf_addstr(sb, "# HELP grove_cluster_store_healthy Whether the routers agree the store is healthy.\n"
			  "# TYPE grove_cluster_store_healthy gauge\n");
	for (size_t i = 0; i < c->nnodes; i++)
		strbuf_addf(sb, "grove_cluster_store_healthy{store=\"%s\"} %d\n", c->nodes[i].name, c->nodes[i].healthy);
	strbuf_addstr(sb, "# HELP grove_cluster_store_writable Whether the store can take writes (0: its disk is full).\n"
			  "# TYPE grove_cluster_store_writable gauge\n");
	for (size_t i = 0; i < c->nnodes; i++)
		strbuf_addf(sb, "grove_cluster_store_writable{store=\"%s\"} %d\n", c->nodes[i].name, c->nodes[i].writable);
	pthread_mutex_unlock(&c->mu);
	store_queues(c, sb);
	state_job_counts(c, &ready, &running, &failed, &dead);
	state_lag(c, &outdated, &behind);
	strbuf_addf(sb,
		    "# HELP grove_cluster_elections_total Primaries elected (failover included).\n"
		    "# TYPE grove_cluster_elections_total counter\n"
		    "grove_cluster_elections_total %llu\n"
		    "# HELP grove_cluster_votes_total Reference-transaction votes answered, by outcome.\n"
		    "# TYPE grove_cluster_votes_total counter\n"
		    "grove_cluster_votes_total{outcome=\"commit\"} %llu\n"
		    "grove_cluster_votes_total{outcome=\"abort\"} %llu\n"
		    "# HELP grove_cluster_writes_refused_total Writes refused for want of a majority of replicas.\n"
		    "# TYPE grove_cluster_writes_refused_total counter\n"
		    "grove_cluster_writes_refused_total %llu\n"
		    "# HELP grove_cluster_verify_mismatches_total Replicas found to differ from their primary.\n"
		    "# TYPE grove_cluster_verify_mismatches_total counter\n"
		    "grove_cluster_verify_mismatches_total %llu\n"
		    "# HELP grove_cluster_repairs_total Replicas brought up to date.\n"
		    "# TYPE grove_cluster_repairs_total counter\n"
		    "grove_cluster_repairs_total %llu\n"
		    "# HELP grove_cluster_late_replicas_total Replicas still ending a push when it was answered, by outcome.\n"
		    "# TYPE grove_cluster_late_replicas_total counter\n"
		    "grove_cluster_late_replicas_total{outcome=\"caught_up\"} %llu\n"
		    "grove_cluster_late_replicas_total{outcome=\"outdated\"} %llu\n"
		    "# HELP grove_cluster_late_waits_total Writes that waited for the late replicas of the last push, by outcome.\n"
		    "# TYPE grove_cluster_late_waits_total counter\n"
		    "grove_cluster_late_waits_total{outcome=\"ended\"} %llu\n"
		    "grove_cluster_late_waits_total{outcome=\"gave_up\"} %llu\n"
		    "# HELP grove_cluster_jobs Replication jobs by state.\n"
		    "# TYPE grove_cluster_jobs gauge\n"
		    "grove_cluster_jobs{state=\"ready\"} %llu\n"
		    "grove_cluster_jobs{state=\"in_progress\"} %llu\n"
		    "grove_cluster_jobs{state=\"retrying\"} %llu\n"
		    "grove_cluster_jobs{state=\"dead\"} %llu\n"
		    "# HELP grove_cluster_replicas_outdated Assigned replicas behind their repository's generation.\n"
		    "# TYPE grove_cluster_replicas_outdated gauge\n"
		    "grove_cluster_replicas_outdated %llu\n"
		    "# HELP grove_cluster_replication_lag_generations Sum of the generations outdated replicas are behind.\n"
		    "# TYPE grove_cluster_replication_lag_generations gauge\n"
		    "grove_cluster_replication_lag_generations %llu\n",
		    (unsigned long long)m.elections, (unsigned long long)m.votes_committed,
		    (unsigned long long)m.votes_aborted, (unsigned long long)m.writes_refused,
		    (unsigned long long)m.verify_mismatches, (unsigned long long)m.repairs,
		    (unsigned long long)m.late_caught_up, (unsigned long long)m.late_outdated,
		    (unsigned long long)(m.late_waits - m.late_waits_gave_up), (unsigned long long)m.late_waits_gave_up,
		    (unsigned long long)ready,
		    (unsigned long long)running, (unsigned long long)failed, (unsigned long long)dead,
		    (unsigned long long)outdated, (unsigned long long)behind);
}

int metrics_start(struct cluster *c, const char *listen, struct metricsd **out)
{
	return metricsd_start(listen, "cluster.metricsListen", render, c, out);
}
