/*
 * The store's Prometheus metrics on store.metricsListen (GET /metrics):
 * whether its secondaries run the replica git, and the pack-objects
 * cache's counters, which its hook processes keep in the cache folder
 * (lib/packcache.h), read at each scrape.
 */
#include "store/store.h"
#include "lib/metricsd.h"

static void render(void *ctx, struct strbuf *sb)
{
	const struct store *st = ctx;
	struct packcache_stats s;

	strbuf_addf(sb, "# HELP grove_store_replica_git Whether secondary replicas run store.replicaGit (0: it is missing,"
			" and they run Debian's git, at about twice the CPU per push).\n"
			"# TYPE grove_store_replica_git gauge\n"
			"grove_store_replica_git{store=\"%s\"} %d\n", st->name, st->replica_git != NULL);
	strbuf_addf(sb, "# HELP grove_store_primary_git Whether pushes run store.primaryGit (0: it is missing, and they"
			" run Debian's git, at about a third more CPU for a big push).\n"
			"# TYPE grove_store_primary_git gauge\n"
			"grove_store_primary_git{store=\"%s\"} %d\n", st->name, st->primary_git != NULL);
	strbuf_addf(sb, "# HELP grove_store_pack_index_total Packs of pushes this store took as a secondary, by whether"
			" its git took the primary's index (took) or indexed the pack itself (indexed: a thin pack, no index).\n"
			"# TYPE grove_store_pack_index_total counter\n"
			"grove_store_pack_index_total{store=\"%s\",outcome=\"took\"} %llu\n"
			"grove_store_pack_index_total{store=\"%s\",outcome=\"indexed\"} %llu\n",
		    st->name, (unsigned long long)st->pack_index_took, st->name, (unsigned long long)st->pack_index_indexed);
	strbuf_addf(sb, "# HELP grove_store_pack_cache_enabled Whether the pack-objects cache is on.\n"
			"# TYPE grove_store_pack_cache_enabled gauge\n"
			"grove_store_pack_cache_enabled{store=\"%s\"} %d\n", st->name, st->pack_objects_hook != NULL);
	if (!st->pack_objects_hook || packcache_stats_read(st->pack_cache.dir, &s))
		return;
	strbuf_addf(sb,
		    "# HELP grove_store_pack_cache_requests_total Fetches and clones the pack-objects cache answered, by result.\n"
		    "# TYPE grove_store_pack_cache_requests_total counter\n"
		    "grove_store_pack_cache_requests_total{store=\"%s\",result=\"hit\"} %llu\n"
		    "grove_store_pack_cache_requests_total{store=\"%s\",result=\"miss\"} %llu\n"
		    "grove_store_pack_cache_requests_total{store=\"%s\",result=\"error\"} %llu\n"
		    "# HELP grove_store_pack_cache_served_bytes_total Pack bytes sent from the cache.\n"
		    "# TYPE grove_store_pack_cache_served_bytes_total counter\n"
		    "grove_store_pack_cache_served_bytes_total{store=\"%s\"} %llu\n"
		    "# HELP grove_store_pack_cache_written_bytes_total Pack bytes written into the cache.\n"
		    "# TYPE grove_store_pack_cache_written_bytes_total counter\n"
		    "grove_store_pack_cache_written_bytes_total{store=\"%s\"} %llu\n"
		    "# HELP grove_store_pack_cache_evictions_total Entries removed for age or to stay within maxBytes.\n"
		    "# TYPE grove_store_pack_cache_evictions_total counter\n"
		    "grove_store_pack_cache_evictions_total{store=\"%s\"} %llu\n",
		    st->name, (unsigned long long)s.hits, st->name, (unsigned long long)s.misses, st->name,
		    (unsigned long long)s.errors, st->name, (unsigned long long)s.bytes_served, st->name,
		    (unsigned long long)s.bytes_written, st->name, (unsigned long long)s.evictions);
}

int store_metrics_start(struct store *st, struct metricsd **out)
{
	*out = NULL;
	if (!st->metrics_listen)
		return 0;
	return metricsd_start(st->metrics_listen, "store.metricsListen", render, st, out);
}
