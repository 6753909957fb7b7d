/*
 * The router's state in SQLite: see cluster.h. One handle, used under
 * db_mu: the statements are short and the router's hot path reads a
 * repository's few rows, so one handle serves every call.
 *
 * Every statement binds its values.
 */
#include "cluster/cluster.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/sqldb.h"
#include "lib/strbuf.h"

#include <openssl/sha.h>

#define NOW "{NOW}"

/* Schema steps, oldest first: never edit a released step; append a new one. */
static const char *const schema_steps[] = {
	/* 1: the initial schema. */
	"CREATE TABLE repositories ("
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  generation INTEGER NOT NULL DEFAULT -1,"
	"  primary_node TEXT,"
	"  replication_factor INTEGER NOT NULL,"
	"  created_at TEXT NOT NULL DEFAULT (" SQLDB_SQLITE_NOW "),"
	"  updated_at TEXT NOT NULL DEFAULT (" SQLDB_SQLITE_NOW "),"
	"  PRIMARY KEY (virtual_storage, relative_path));"
	"CREATE TABLE replicas ("
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  generation INTEGER NOT NULL DEFAULT -1,"
	"  assigned INTEGER NOT NULL DEFAULT 1 CHECK (assigned IN (0, 1)),"
	"  updated_at TEXT NOT NULL DEFAULT (" SQLDB_SQLITE_NOW "),"
	"  PRIMARY KEY (virtual_storage, relative_path, node),"
	"  FOREIGN KEY (virtual_storage, relative_path) REFERENCES repositories ON DELETE CASCADE);"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('update', 'delete', 'optimize', 'verify')),"
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  target_node TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'in_progress', 'dead')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  lease_owner TEXT,"
	"  lease_until INTEGER NOT NULL DEFAULT 0,"
	"  next_try INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  created_at TEXT NOT NULL DEFAULT (" SQLDB_SQLITE_NOW "),"
	"  updated_at TEXT NOT NULL DEFAULT (" SQLDB_SQLITE_NOW "));"
	/* One waiting job per (kind, repository, target): a second request is the same work. */
	"CREATE UNIQUE INDEX jobs_dedup ON jobs(kind, virtual_storage, relative_path, target_node)"
	"  WHERE state = 'ready';"
	"CREATE INDEX jobs_next ON jobs(state, next_try);"
	"CREATE TABLE node_health ("
	"  router TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  healthy INTEGER NOT NULL CHECK (healthy IN (0, 1)),"
	"  checked_at INTEGER NOT NULL,"
	"  PRIMARY KEY (router, node));",
	/* 2: writes in flight, so that a verification never compares replicas
	 * while a write moves their refs one store after the other; and the
	 * router processes alive, so that a dead one's writes stop counting. */
	"ALTER TABLE repositories ADD COLUMN writes_begun INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE writes_in_flight ("
	"  id INTEGER PRIMARY KEY,"
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  process TEXT NOT NULL,"
	"  started_at INTEGER NOT NULL);"
	"CREATE INDEX writes_in_flight_repo ON writes_in_flight(virtual_storage, relative_path);"
	"CREATE TABLE router_processes ("
	"  process TEXT PRIMARY KEY,"
	"  router TEXT NOT NULL,"
	"  seen_at INTEGER NOT NULL);",
	/* 3: what the last conclusive verification found, per replica. */
	"CREATE TABLE replica_checksums ("
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  checksum TEXT NOT NULL,"
	"  matches INTEGER NOT NULL CHECK (matches IN (0, 1)),"
	"  generation INTEGER NOT NULL,"
	"  checked_at INTEGER NOT NULL,"
	"  PRIMARY KEY (virtual_storage, relative_path, node),"
	"  FOREIGN KEY (virtual_storage, relative_path) REFERENCES repositories ON DELETE CASCADE);",
	/* 4: the replicas still ending a write that was answered (late.c),
	 * so that the next write through another router process waits for
	 * them too. Rows go with their write's (state_write_end). */
	"CREATE TABLE late_replicas ("
	"  write_id INTEGER NOT NULL,"
	"  node TEXT NOT NULL,"
	"  late_until INTEGER NOT NULL,"
	"  PRIMARY KEY (write_id, node));",
};

/* The same schema for PostgreSQL (several routers share it). */
#define PG_NOW "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
static const char *const pg_schema_steps[] = {
	"CREATE TABLE repositories ("
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  generation BIGINT NOT NULL DEFAULT -1,"
	"  primary_node TEXT,"
	"  replication_factor INTEGER NOT NULL,"
	"  created_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  updated_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  PRIMARY KEY (virtual_storage, relative_path));"
	"CREATE TABLE replicas ("
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  generation BIGINT NOT NULL DEFAULT -1,"
	"  assigned INTEGER NOT NULL DEFAULT 1 CHECK (assigned IN (0, 1)),"
	"  updated_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  PRIMARY KEY (virtual_storage, relative_path, node),"
	"  FOREIGN KEY (virtual_storage, relative_path) REFERENCES repositories ON DELETE CASCADE);"
	"CREATE TABLE jobs ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  kind TEXT NOT NULL CHECK (kind IN ('update', 'delete', 'optimize', 'verify')),"
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  target_node TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'in_progress', 'dead')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  lease_owner TEXT,"
	"  lease_until BIGINT NOT NULL DEFAULT 0,"
	"  next_try BIGINT NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  created_at TEXT NOT NULL DEFAULT " PG_NOW ","
	"  updated_at TEXT NOT NULL DEFAULT " PG_NOW ");"
	"CREATE UNIQUE INDEX jobs_dedup ON jobs(kind, virtual_storage, relative_path, target_node)"
	"  WHERE state = 'ready';"
	"CREATE INDEX jobs_next ON jobs(state, next_try);"
	"CREATE TABLE node_health ("
	"  router TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  healthy INTEGER NOT NULL CHECK (healthy IN (0, 1)),"
	"  checked_at BIGINT NOT NULL,"
	"  PRIMARY KEY (router, node));",
	"ALTER TABLE repositories ADD COLUMN writes_begun BIGINT NOT NULL DEFAULT 0;"
	"CREATE TABLE writes_in_flight ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  process TEXT NOT NULL,"
	"  started_at BIGINT NOT NULL);"
	"CREATE INDEX writes_in_flight_repo ON writes_in_flight(virtual_storage, relative_path);"
	"CREATE TABLE router_processes ("
	"  process TEXT PRIMARY KEY,"
	"  router TEXT NOT NULL,"
	"  seen_at BIGINT NOT NULL);",
	"CREATE TABLE replica_checksums ("
	"  virtual_storage TEXT NOT NULL,"
	"  relative_path TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  checksum TEXT NOT NULL,"
	"  matches INTEGER NOT NULL CHECK (matches IN (0, 1)),"
	"  generation BIGINT NOT NULL,"
	"  checked_at BIGINT NOT NULL,"
	"  PRIMARY KEY (virtual_storage, relative_path, node),"
	"  FOREIGN KEY (virtual_storage, relative_path) REFERENCES repositories ON DELETE CASCADE);",
	"CREATE TABLE late_replicas ("
	"  write_id BIGINT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  late_until BIGINT NOT NULL,"
	"  PRIMARY KEY (write_id, node));",
};

static const char *const kind_names[] = { "update", "delete", "optimize", "verify" };

const char *job_kind_name(enum job_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

int state_open(struct cluster *c, const char *name)
{
	const struct sqldb_schema schema = { schema_steps, ARRAY_SIZE(schema_steps), pg_schema_steps, ARRAY_SIZE(pg_schema_steps),
					   "cluster" };
	return sqldb_open(&c->db, name, &schema);
}

void state_close(struct cluster *c)
{
	sqldb_close(c->db);
	c->db = NULL;
}

#define LOCK() pthread_mutex_lock(&c->db_mu)
#define UNLOCK() pthread_mutex_unlock(&c->db_mu)

static int repo_read(struct cluster *c, const char *path, struct repo_state *out)
{
	struct sqldb_rows *st = NULL;
	char copy[CLUSTER_PATH_MAX + 1];
	int ret;

	/* path may point into out. */
	strlcpy_(copy, path, sizeof(copy));
	path = copy;
	memset(out, 0, sizeof(*out));
	strlcpy_(out->path, path, sizeof(out->path));
	out->generation = -1;
	ret = sqldb_query(c->db, &st, "reading a repository",
			    "SELECT generation, primary_node, replication_factor FROM repositories"
			    " WHERE virtual_storage = ? AND relative_path = ?",
			    "ss", c->virtual_storage, path);
	if (!ret && (ret = sqldb_next(st)) == 1) {
		const char *p = sqldb_text(st, 1);
		out->exists = true;
		out->generation = sqldb_int(st, 0);
		strlcpy_(out->primary, p ? p : "", sizeof(out->primary));
		out->replication_factor = (int)sqldb_int(st, 2);
		ret = 0;
	}
	sqldb_rows_free(st);
	if (ret || !out->exists)
		return ret;
	ret = sqldb_query(c->db, &st, "reading replicas",
			    "SELECT node, generation, assigned FROM replicas"
			    " WHERE virtual_storage = ? AND relative_path = ? ORDER BY node",
			    "ss", c->virtual_storage, path);
	while (!ret && (ret = sqldb_next(st)) == 1) {
		struct replica *rep;
		ret = 0;
		if (out->nreplicas == CLUSTER_NODES_MAX)
			break;
		rep = &out->replicas[out->nreplicas++];
		strlcpy_(rep->name, sqldb_text(st, 0), sizeof(rep->name));
		rep->generation = sqldb_int(st, 1);
		rep->assigned = (int)sqldb_int(st, 2) != 0;
		rep->node = cluster_node(c, rep->name);
	}
	sqldb_rows_free(st);
	return ret;
}

struct replica *repo_replica(struct repo_state *r, const char *name)
{
	for (size_t i = 0; i < r->nreplicas; i++)
		if (!strcmp(r->replicas[i].name, name))
			return &r->replicas[i];
	return NULL;
}

int state_repo_get(struct cluster *c, const char *path, struct repo_state *out)
{
	LOCK();
	int ret = repo_read(c, path, out);
	UNLOCK();
	return ret;
}

void cluster_node_order(struct cluster *c, const char *path, size_t *order)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	uint64_t score[CLUSTER_NODES_MAX];
	struct strbuf key = STRBUF_INIT;
	for (size_t i = 0; i < c->nnodes; i++) {
		strbuf_reset(&key);
		strbuf_addstr(&key, c->nodes[i].name);
		strbuf_addch(&key, '\0');
		strbuf_addstr(&key, path);
		SHA256((const unsigned char *)key.buf, key.len, h);
		memcpy(&score[i], h, sizeof(score[i]));
		order[i] = i;
	}
	strbuf_release(&key);
	/* Rendezvous hashing: highest score first. */
	for (size_t i = 1; i < c->nnodes; i++)
		for (size_t j = i; j > 0 && score[order[j]] > score[order[j - 1]]; j--) {
			size_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
}

/* Nodes to add so that r has rf assigned replicas: healthy ones first. */
static int assign_more(struct cluster *c, struct repo_state *r, int rf)
{
	size_t order[CLUSTER_NODES_MAX];
	int have = 0, ret = 0;

	for (size_t i = 0; i < r->nreplicas; i++)
		have += r->replicas[i].assigned && r->replicas[i].node;
	cluster_node_order(c, r->path, order);
	for (int pass = 0; pass < 2 && have < rf; pass++) {
		for (size_t k = 0; k < c->nnodes && have < rf && !ret; k++) {
			struct node *n = &c->nodes[order[k]];
			bool known = false, assigned = false;
			if (pass == 0 && !cluster_node_healthy(c, n))
				continue;
			for (size_t i = 0; i < r->nreplicas; i++)
				if (!strcmp(r->replicas[i].name, n->name)) {
					known = true;
					assigned = r->replicas[i].assigned;
				}
			if (assigned)
				continue;
			if (known)
				ret = sqldb_exec(c->db, NULL, "assigning a replica",
						"UPDATE replicas SET assigned = 1, updated_at = " NOW
						" WHERE virtual_storage = ? AND relative_path = ? AND node = ?",
						"sss", c->virtual_storage, r->path, n->name);
			else
				ret = sqldb_exec(c->db, NULL, "assigning a replica",
						"INSERT INTO replicas (virtual_storage, relative_path, node, generation, assigned)"
						" VALUES (?, ?, ?, -1, 1) ON CONFLICT DO NOTHING",
						"sss", c->virtual_storage, r->path, n->name);
			/* Seen by the next pass too. */
			if (!known && r->nreplicas < CLUSTER_NODES_MAX) {
				struct replica *rep = &r->replicas[r->nreplicas++];
				memset(rep, 0, sizeof(*rep));
				strlcpy_(rep->name, n->name, sizeof(rep->name));
				rep->node = n;
				rep->generation = -1;
			}
			for (size_t i = 0; i < r->nreplicas; i++)
				if (!strcmp(r->replicas[i].name, n->name))
					r->replicas[i].assigned = true;
			have++;
		}
	}
	return ret;
}

/*
 * Records a write about to start on path (its row id into *write_id): the
 * repository's writes_begun moves, and a row says which router runs it.
 * Done before the read, in the same transaction: the update locks the
 * repository's row, so a verification's marks (state_verify_mark) come
 * wholly before this read or see this write and mark nothing.
 */
static int write_register(struct cluster *c, const char *path, int64_t *write_id)
{
	int ret = sqldb_exec(c->db, NULL, "registering a write",
			     "UPDATE repositories SET writes_begun = writes_begun + 1"
			     " WHERE virtual_storage = ? AND relative_path = ?",
			     "ss", c->virtual_storage, path);
	if (!ret)
		ret = sqldb_query_ints(c->db, write_id, 1, "registering a write",
				       "INSERT INTO writes_in_flight (virtual_storage, relative_path, process, started_at)"
				       " VALUES (?, ?, ?, ?) RETURNING id",
				       "sssi", c->virtual_storage, path, c->process, wall_ms());
	if (ret == GROVE_ENOTFOUND)
		ret = error_set(GROVE_EINTERNAL, "registering a write on %s gave no row id", path);
	return ret;
}

int state_write_begin(struct cluster *c, const char *path, struct repo_state *out, int64_t *write_id)
{
	int ret;
	*write_id = 0;
	LOCK();
	ret = sqldb_begin(c->db, "registering a repository");
	if (ret)
		goto out;
	ret = write_register(c, path, write_id);
	if (!ret)
		ret = repo_read(c, path, out);
	if (!ret && !out->exists) {
		/* Another router may register it at the same moment: one row wins. */
		ret = sqldb_exec(c->db, NULL, "registering a repository",
				"INSERT INTO repositories (virtual_storage, relative_path, generation, replication_factor)"
				" VALUES (?, ?, -1, ?) ON CONFLICT DO NOTHING",
				"ssi", c->virtual_storage, path, (int64_t)c->replication_factor);
		if (!ret)
			ret = repo_read(c, path, out);
		if (!ret)
			ret = assign_more(c, out, c->replication_factor);
		if (!ret)
			ret = repo_read(c, path, out);
	}
	if (!ret)
		ret = sqldb_commit(c->db, "registering a repository");
	if (ret) {
		sqldb_rollback(c->db);
		*write_id = 0;
	}
out:
	UNLOCK();
	return ret;
}

int state_write_end(struct cluster *c, int64_t write_id)
{
	if (!write_id)
		return 0;
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "ending a write", "DELETE FROM late_replicas WHERE write_id = ?", "i",
			     write_id);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "ending a write", "DELETE FROM writes_in_flight WHERE id = ?", "i",
				 write_id);
	UNLOCK();
	return ret;
}

int state_write_late(struct cluster *c, int64_t write_id, const struct late_write *w, int64_t until_ms)
{
	int ret = 0;
	if (!write_id)
		return 0;
	LOCK();
	for (size_t i = 0; i < w->nnodes && !ret; i++)
		ret = sqldb_exec(c->db, NULL, "recording a late replica",
				 "INSERT INTO late_replicas (write_id, node, late_until) VALUES (?, ?, ?)"
				 " ON CONFLICT DO NOTHING",
				 "isi", write_id, w->nodes[i]->name, until_ms);
	UNLOCK();
	return ret;
}

/*
 * A write counts as in flight while its router process lives: this one, or
 * one that said so lately (state_heartbeat, with every health check: at
 * most a minute apart). The rows of a process that died stop holding
 * verification back after PROCESS_GONE_MS; a row whose end could not be
 * recorded, after WRITE_MAX_MS. Per process, not per router name: a router
 * restarted after a crash has its name, and an upgrade runs the old and
 * the new process side by side.
 */
#define PROCESS_GONE_MS (5 * 60 * 1000)
#define WRITE_MAX_MS (24 * 3600 * 1000LL)
#define LIVE_WRITES                                                                                   \
	"SELECT COUNT(*) FROM writes_in_flight w WHERE w.virtual_storage = ? AND w.relative_path = ?" \
	" AND w.started_at > ? AND (w.process = ? OR EXISTS (SELECT 1 FROM router_processes p"        \
	" WHERE p.process = w.process AND p.seen_at > ?))"

/* The late replicas of path's writes through other router processes,
 * alive (as in LIVE_WRITES); on one store (?6) or any (?6 = ''). */
#define LATE_ELSEWHERE                                                                                       \
	"SELECT COUNT(*) FROM late_replicas l JOIN writes_in_flight w ON w.id = l.write_id"                  \
	" WHERE w.virtual_storage = ?1 AND w.relative_path = ?2 AND w.process <> ?3 AND l.late_until > ?4" \
	" AND (?6 = '' OR l.node = ?6) AND EXISTS (SELECT 1 FROM router_processes p"                        \
	" WHERE p.process = w.process AND p.seen_at > ?5)"

int state_late_elsewhere(struct cluster *c, const char *path, const char *node, int64_t *n)
{
	int64_t now = wall_ms();
	LOCK();
	int ret = sqldb_query_ints(c->db, n, 1, "reading late replicas", LATE_ELSEWHERE, "sssiis", c->virtual_storage,
				   path, c->process, now, now - PROCESS_GONE_MS, node ? node : "");
	UNLOCK();
	return ret;
}

/* The repository's generation and writes_begun, locked until the transaction ends (PostgreSQL). */
static int repo_counters(struct cluster *c, const char *path, int64_t *gen, int64_t *begun)
{
	int64_t v[2] = { 0, 0 };
	int ret = sqldb_query_ints(c->db, v, 2, "reading a repository",
				   "SELECT generation, writes_begun FROM repositories"
				   " WHERE virtual_storage = ? AND relative_path = ?{FOR_UPDATE}",
				   "ss", c->virtual_storage, path);
	if (ret == GROVE_ENOTFOUND)
		ret = error_set(GROVE_ENOTFOUND, "repository %s is not known to the cluster", path);
	*gen = v[0];
	*begun = v[1];
	return ret;
}

/* The counters and the writes in flight, as state_write_activity reads them. */
static int activity_read(struct cluster *c, const char *path, struct write_activity *out)
{
	int64_t now = wall_ms();
	int ret = repo_counters(c, path, &out->generation, &out->begun);
	if (!ret)
		ret = sqldb_query_ints(c->db, &out->in_flight, 1, "reading writes in flight", LIVE_WRITES, "ssisi",
				       c->virtual_storage, path, now - WRITE_MAX_MS, c->process, now - PROCESS_GONE_MS);
	return ret;
}

int state_write_activity(struct cluster *c, const char *path, struct write_activity *out)
{
	LOCK();
	int ret = activity_read(c, path, out);
	UNLOCK();
	return ret;
}

int state_verify_mark(struct cluster *c, const char *path, const struct write_activity *seen, char names[][65],
		      size_t n)
{
	struct write_activity now = { 0 };
	int ret;
	LOCK();
	if ((ret = sqldb_begin(c->db, "marking replicas outdated")))
		goto out;
	ret = activity_read(c, path, &now);
	if (!ret && (now.generation != seen->generation || now.begun != seen->begun || now.in_flight)) {
		sqldb_rollback(c->db);
		ret = 1;
		goto out;
	}
	for (size_t i = 0; i < n && !ret; i++)
		ret = sqldb_exec(c->db, NULL, "marking replicas outdated",
				 "UPDATE replicas SET generation = ?, updated_at = " NOW
				 " WHERE virtual_storage = ? AND relative_path = ? AND node = ? AND generation = ?",
				 "isssi", seen->generation - 1, c->virtual_storage, path, names[i], seen->generation);
	if (!ret)
		ret = sqldb_commit(c->db, "marking replicas outdated");
	if (ret)
		sqldb_rollback(c->db);
out:
	UNLOCK();
	return ret;
}

int state_checksums_record(struct cluster *c, const char *path, const struct replica_check *checks, size_t n)
{
	int ret;
	LOCK();
	ret = sqldb_begin(c->db, "recording checksums");
	for (size_t i = 0; i < n && !ret; i++)
		ret = sqldb_exec(c->db, NULL, "recording checksums",
				 "INSERT INTO replica_checksums (virtual_storage, relative_path, node, checksum, matches,"
				 " generation, checked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
				 " ON CONFLICT (virtual_storage, relative_path, node) DO UPDATE SET checksum = ?4,"
				 " matches = ?5, generation = ?6, checked_at = ?7",
				 "ssssbii", c->virtual_storage, path, checks[i].node, checks[i].checksum,
				 (int)checks[i].matches, checks[i].generation, checks[i].checked_at);
	if (!ret)
		ret = sqldb_commit(c->db, "recording checksums");
	if (ret)
		sqldb_rollback(c->db);
	UNLOCK();
	return ret;
}

int state_checksums_get(struct cluster *c, const char *path, struct replica_check *out, size_t max, size_t *n)
{
	struct sqldb_rows *st = NULL;
	int ret;
	*n = 0;
	LOCK();
	ret = sqldb_query(c->db, &st, "reading checksums",
			  "SELECT node, checksum, matches, generation, checked_at FROM replica_checksums"
			  " WHERE virtual_storage = ? AND relative_path = ? ORDER BY node",
			  "ss", c->virtual_storage, path);
	while (!ret && (ret = sqldb_next(st)) == 1) {
		ret = 0;
		if (*n == max)
			break;
		struct replica_check *k = &out[(*n)++];
		strlcpy_(k->node, sqldb_text(st, 0), sizeof(k->node));
		strlcpy_(k->checksum, sqldb_text(st, 1), sizeof(k->checksum));
		k->matches = sqldb_int(st, 2) != 0;
		k->generation = sqldb_int(st, 3);
		k->checked_at = sqldb_int(st, 4);
	}
	sqldb_rows_free(st);
	UNLOCK();
	return ret;
}

int state_repo_delete(struct cluster *c, const char *path)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "forgetting a repository",
			    "DELETE FROM repositories WHERE virtual_storage = ? AND relative_path = ?", "ss",
			    c->virtual_storage, path);
	UNLOCK();
	return ret;
}

int state_set_primary(struct cluster *c, const char *path, const char *node)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "recording a primary",
			    "UPDATE repositories SET primary_node = ?, updated_at = " NOW
			    " WHERE virtual_storage = ? AND relative_path = ?",
			    "sss", node, c->virtual_storage, path);
	UNLOCK();
	return ret;
}

static int read_generation(struct cluster *c, const char *path, int64_t *out)
{
	int64_t begun;
	return repo_counters(c, path, out, &begun);
}

int state_write_done(struct cluster *c, const char *path, char *const *nodes, size_t n, int64_t *new_gen)
{
	int64_t cur = -1;
	int ret;
	LOCK();
	ret = sqldb_begin(c->db, "recording a write");
	if (ret)
		goto out;
	/* Writes to one repository may run at once: each takes the next
	 * generation, and only replicas that held every earlier one move up. */
	ret = read_generation(c, path, &cur);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "recording a write",
				"UPDATE repositories SET generation = ?, updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ?",
				"iss", cur + 1, c->virtual_storage, path);
	for (size_t i = 0; i < n && !ret; i++)
		ret = sqldb_exec(c->db, NULL, "recording a write",
				"UPDATE replicas SET generation = ?, updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ? AND node = ? AND generation = ?",
				"isssi", cur + 1, c->virtual_storage, path, nodes[i], cur);
	if (!ret)
		ret = sqldb_commit(c->db, "recording a write");
	if (ret)
		sqldb_rollback(c->db);
	else if (new_gen)
		*new_gen = cur + 1;
out:
	UNLOCK();
	return ret;
}

int state_force_generation(struct cluster *c, const char *path, const char *node, int64_t gen)
{
	int ret;
	LOCK();
	ret = sqldb_begin(c->db, "accepting data loss");
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "accepting data loss",
				"UPDATE repositories SET generation = ?, primary_node = ?, updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ?",
				"isss", gen, node, c->virtual_storage, path);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "accepting data loss",
				"UPDATE replicas SET generation = ?, updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ? AND node = ?",
				"isss", gen, c->virtual_storage, path, node);
	if (!ret)
		ret = sqldb_commit(c->db, "accepting data loss");
	if (ret)
		sqldb_rollback(c->db);
	UNLOCK();
	return ret;
}

int state_replica_set(struct cluster *c, const char *path, const char *node, int64_t gen, bool only_raise)
{
	int ret;
	LOCK();
	if (only_raise)
		ret = sqldb_exec(c->db, NULL, "recording a replica's generation",
				"UPDATE replicas SET generation = {GREATEST}(generation, ?), updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ? AND node = ?",
				"isss", gen, c->virtual_storage, path, node);
	else
		ret = sqldb_exec(c->db, NULL, "recording a replica's generation",
				"UPDATE replicas SET generation = ?, updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ? AND node = ?",
				"isss", gen, c->virtual_storage, path, node);
	UNLOCK();
	return ret;
}

int state_replica_caught_up(struct cluster *c, const char *path, const char *node, int64_t gen, bool *moved)
{
	int64_t changes = 0;
	int ret;
	LOCK();
	ret = sqldb_exec(c->db, &changes, "recording a trailing replica",
			"UPDATE replicas SET generation = ?, updated_at = " NOW
			" WHERE virtual_storage = ? AND relative_path = ? AND node = ? AND generation = ?",
			"isssi", gen, c->virtual_storage, path, node, gen - 1);
	UNLOCK();
	*moved = !ret && changes > 0;
	return ret;
}

int state_replica_assign(struct cluster *c, const char *path, const char *node, bool assigned)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "assigning a replica",
			    "INSERT INTO replicas (virtual_storage, relative_path, node, generation, assigned)"
			    " VALUES (?1, ?2, ?3, -1, ?4)"
			    " ON CONFLICT (virtual_storage, relative_path, node) DO UPDATE SET assigned = ?4,"
			    " updated_at = " NOW,
			    "sssb", c->virtual_storage, path, node, (int)assigned);
	UNLOCK();
	return ret;
}

int state_replica_forget(struct cluster *c, const char *path, const char *node)
{
	LOCK();
	/* Only while unassigned: assigned again meanwhile, it stays (at -1, so it gets repaired). */
	int ret = sqldb_exec(c->db, NULL, "forgetting a replica",
			    "DELETE FROM replicas WHERE virtual_storage = ? AND relative_path = ? AND node = ? AND assigned = 0",
			    "sss",
			    c->virtual_storage, path, node);
	UNLOCK();
	return ret;
}

int state_set_replication_factor(struct cluster *c, const char *path, int rf)
{
	struct repo_state *r = xcalloc(1, sizeof(*r));
	int ret;
	LOCK();
	ret = sqldb_begin(c->db, "setting the replication factor");
	if (ret)
		goto out;
	ret = repo_read(c, path, r);
	if (!ret && !r->exists)
		ret = error_set(GROVE_ENOTFOUND, "repository %s is not known to the cluster", path);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "setting the replication factor",
				"UPDATE repositories SET replication_factor = ?, updated_at = " NOW
				" WHERE virtual_storage = ? AND relative_path = ?",
				"iss", (int64_t)rf, c->virtual_storage, path);
	if (!ret) {
		/* Fewer: unassign the replicas furthest behind, never the primary. */
		int have = 0;
		for (size_t i = 0; i < r->nreplicas; i++)
			have += r->replicas[i].assigned;
		while (!ret && have > rf) {
			struct replica *worst = NULL;
			for (size_t i = 0; i < r->nreplicas; i++) {
				struct replica *p = &r->replicas[i];
				if (!p->assigned || !strcmp(p->name, r->primary))
					continue;
				if (!worst || p->generation < worst->generation)
					worst = p;
			}
			if (!worst)
				break;
			worst->assigned = false;
			ret = sqldb_exec(c->db, NULL, "unassigning a replica",
					"UPDATE replicas SET assigned = 0, updated_at = " NOW
					" WHERE virtual_storage = ? AND relative_path = ? AND node = ?",
					"sss", c->virtual_storage, path, worst->name);
			have--;
		}
		if (!ret && have < rf)
			ret = assign_more(c, r, rf);
	}
	if (!ret)
		ret = sqldb_commit(c->db, "setting the replication factor");
	if (ret)
		sqldb_rollback(c->db);
out:
	UNLOCK();
	free(r);
	return ret;
}

int state_repo_each(struct cluster *c, int (*fn)(struct cluster *c, const char *path, void *ctx), void *ctx)
{
	char **paths = NULL;
	size_t n = 0, alloc = 0;
	struct sqldb_rows *st = NULL;
	int ret;

	/* Collected first: fn takes the lock again. */
	LOCK();
	ret = sqldb_query(c->db, &st, "listing repositories",
			    "SELECT relative_path FROM repositories WHERE virtual_storage = ? ORDER BY relative_path", "s",
			    c->virtual_storage);
	while (!ret && (ret = sqldb_next(st)) == 1) {
		ret = 0;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			paths = xrealloc(paths, alloc * sizeof(*paths));
		}
		paths[n++] = xstrdup(sqldb_text(st, 0));
	}
	sqldb_rows_free(st);
	UNLOCK();
	for (size_t i = 0; i < n && !ret && !c->stopping; i++)
		ret = fn(c, paths[i], ctx);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return ret;
}

#define HEARTBEAT_MS 1000

/* Says this process lives, at most once a second (under LOCK). */
static int heartbeat(struct cluster *c)
{
	int64_t now = wall_ms();
	int ret;
	if (now - c->heartbeat_at < HEARTBEAT_MS)
		return 0;
	ret = sqldb_exec(c->db, NULL, "recording a heartbeat",
			 "INSERT INTO router_processes (process, router, seen_at) VALUES (?1, ?2, ?3)"
			 " ON CONFLICT (process) DO UPDATE SET seen_at = ?3",
			 "ssi", c->process, c->router, now);
	if (!ret)
		c->heartbeat_at = now;
	return ret;
}

int state_forget_process(struct cluster *c)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "ending a router process",
			     "DELETE FROM late_replicas WHERE write_id IN (SELECT id FROM writes_in_flight WHERE process = ?)",
			     "s", c->process);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "ending a router process", "DELETE FROM writes_in_flight WHERE process = ?",
				 "s", c->process);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "ending a router process",
				 "DELETE FROM router_processes WHERE process = ? OR seen_at < ?", "si", c->process,
				 wall_ms() - 7 * 24 * 3600 * 1000LL);
	UNLOCK();
	return ret;
}

int state_record_health(struct cluster *c, struct node *n, bool healthy)
{
	LOCK();
	heartbeat(c);
	int ret = sqldb_exec(c->db, NULL, "recording a health check",
			    "INSERT INTO node_health (router, node, healthy, checked_at) VALUES (?1, ?2, ?3, ?4)"
			    " ON CONFLICT (router, node) DO UPDATE SET healthy = ?3, checked_at = ?4",
			    "ssbi", c->router, n->name, (int)healthy, wall_ms());
	UNLOCK();
	return ret;
}

int state_health_votes(struct cluster *c, const char *node, uint32_t *healthy, uint32_t *total)
{
	int64_t v[2] = { 0, 0 };
	LOCK();
	int ret = sqldb_query_ints(c->db, v, 2, "reading health votes",
				   "SELECT COALESCE(SUM(healthy), 0), COUNT(*) FROM node_health WHERE node = ? AND checked_at > ?",
				   "si", node, wall_ms() - 10000);
	UNLOCK();
	*healthy = (uint32_t)(int)v[0];
	*total = (uint32_t)(int)v[1];
	return ret;
}

/* ---- jobs ---- */

int state_job_add(struct cluster *c, enum job_kind kind, const char *path, const char *target)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "queueing a replication job",
			    "INSERT INTO jobs (kind, virtual_storage, relative_path, target_node)"
			    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			    "ssss", job_kind_name(kind), c->virtual_storage, path, target);
	UNLOCK();
	if (!ret)
		cluster_wake(c);
	return ret;
}

static int kind_parse(const char *s, enum job_kind *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
		if (s && !strcmp(s, kind_names[i])) {
			*out = (enum job_kind)i;
			return 0;
		}
	return error_set(GROVE_EINTERNAL, "unknown job kind %s", s ? s : "(null)");
}

int state_job_lease(struct cluster *c, struct job *out, int64_t lease_ms)
{
	struct sqldb_rows *st = NULL;
	int64_t now = wall_ms();
	int ret, found = 0;

	LOCK();
	ret = sqldb_begin(c->db, "leasing a job");
	if (ret)
		goto unlock;
	/* Ready jobs, and jobs whose router's lease ran out (it died). */
	ret = sqldb_query(c->db, &st, "leasing a job",
			    "SELECT id, kind, relative_path, target_node, attempts FROM jobs"
			    " WHERE virtual_storage = ?1 AND ((state = 'ready' AND next_try <= ?2)"
			    "   OR (state = 'in_progress' AND lease_until < ?2))"
			    /* One job at a time per repository: two repairs of one
			     * replica would fight over its ref locks. */
			    " AND NOT EXISTS (SELECT 1 FROM jobs AS busy WHERE busy.virtual_storage = jobs.virtual_storage"
			    "   AND busy.relative_path = jobs.relative_path AND busy.state = 'in_progress'"
			    "   AND busy.lease_until >= ?2 AND busy.id != jobs.id)"
			    " ORDER BY id LIMIT 200{SKIP_LOCKED}",
			    "si", c->virtual_storage, now);
	while (!ret && !found && (ret = sqldb_next(st)) == 1) {
		const char *target = sqldb_text(st, 3);
		struct node *n = cluster_node(c, target);
		ret = 0;
		if (strcmp(target, "*") && (!n || !cluster_node_healthy(c, n)))
			continue;   /* waits for its store to come back */
		out->id = sqldb_int(st, 0);
		ret = kind_parse(sqldb_text(st, 1), &out->kind);
		strlcpy_(out->path, sqldb_text(st, 2), sizeof(out->path));
		strlcpy_(out->target, target, sizeof(out->target));
		out->attempts = (int)sqldb_int(st, 4);
		found = !ret;
	}
	sqldb_rows_free(st);
	if (!ret && found)
		ret = sqldb_exec(c->db, NULL, "leasing a job",
				"UPDATE jobs SET state = 'in_progress', lease_owner = ?, lease_until = ?,"
				" attempts = attempts + 1, updated_at = " NOW " WHERE id = ?",
				"sii", c->router, now + lease_ms, out->id);
	if (!ret)
		ret = sqldb_commit(c->db, "leasing a job");
	if (ret)
		sqldb_rollback(c->db);
unlock:
	UNLOCK();
	return ret ? ret : found;
}

int state_job_renew(struct cluster *c, int64_t id, int64_t lease_ms)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "renewing a job's lease",
			   "UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'in_progress' AND lease_owner = ?",
			   "iis", wall_ms() + lease_ms, id, c->router);
	UNLOCK();
	return ret;
}

int state_job_done(struct cluster *c, const struct job *j)
{
	LOCK();
	int ret = sqldb_exec(c->db, NULL, "completing a job", "DELETE FROM jobs WHERE id = ?", "i", j->id);
	UNLOCK();
	return ret;
}

int state_job_failed(struct cluster *c, const struct job *j, const char *error)
{
	int attempts = j->attempts + 1;
	/* 1 s, 2 s, 4 s … up to a minute between tries. */
	int64_t backoff = 1000LL << MIN(attempts - 1, 6);
	bool dead = attempts >= c->job_attempts;
	LOCK();
	/* A same job queued meanwhile makes this one redundant. */
	int ret = sqldb_exec(c->db, NULL, "recording a failed job",
			   "DELETE FROM jobs WHERE state = 'ready' AND id <> ?1 AND (kind, virtual_storage, relative_path, target_node) ="
			   " (SELECT kind, virtual_storage, relative_path, target_node FROM jobs WHERE id = ?1)",
			   "i", j->id);
	if (!ret)
		ret = sqldb_exec(c->db, NULL, "recording a failed job",
			       "UPDATE jobs SET state = ?, next_try = ?, last_error = ?, lease_owner = NULL,"
			       " updated_at = " NOW " WHERE id = ?",
			       "sisi", dead ? "dead" : "ready", wall_ms() + MIN(backoff, 60000), error, j->id);
	UNLOCK();
	if (dead)
		log_error("cluster.job_dead", "job=%lld kind=%s repo=%s target=%s attempts=%d error=%s", (long long)j->id,
			  job_kind_name(j->kind), j->path, j->target, attempts, error);
	return ret;
}

int state_job_counts(struct cluster *c, uint64_t *ready, uint64_t *running, uint64_t *failed, uint64_t *dead)
{
	int64_t v[4] = { 0, 0, 0, 0 };
	LOCK();
	int ret = sqldb_query_ints(c->db, v, 4, "counting jobs",
				   "SELECT COALESCE(SUM(CASE WHEN state = 'ready' AND attempts = 0 THEN 1 ELSE 0 END), 0),"
				   " COALESCE(SUM(CASE WHEN state = 'in_progress' THEN 1 ELSE 0 END), 0),"
				   " COALESCE(SUM(CASE WHEN state = 'ready' AND attempts > 0 THEN 1 ELSE 0 END), 0),"
				   " COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) FROM jobs WHERE virtual_storage = ?",
				   "s", c->virtual_storage);
	UNLOCK();
	*ready = (uint64_t)v[0];
	*running = (uint64_t)v[1];
	*failed = (uint64_t)v[2];
	*dead = (uint64_t)v[3];
	return ret;
}

int state_node_jobs(struct cluster *c, uint64_t *ready, uint64_t *running, uint64_t *failed)
{
	struct sqldb_rows *st = NULL;
	int ret;
	for (size_t i = 0; i < c->nnodes; i++)
		ready[i] = running[i] = failed[i] = 0;
	LOCK();
	ret = sqldb_query(c->db, &st, "counting jobs",
			  "SELECT target_node, COALESCE(SUM(CASE WHEN state = 'ready' AND attempts = 0 THEN 1 ELSE 0 END), 0),"
			  " COALESCE(SUM(CASE WHEN state = 'in_progress' THEN 1 ELSE 0 END), 0),"
			  " COALESCE(SUM(CASE WHEN state = 'ready' AND attempts > 0 THEN 1 ELSE 0 END), 0)"
			  " FROM jobs WHERE virtual_storage = ? GROUP BY target_node",
			  "s", c->virtual_storage);
	while (!ret && (ret = sqldb_next(st)) == 1) {
		struct node *n = cluster_node(c, sqldb_text(st, 0));
		ret = 0;
		if (!n)
			continue;   /* a verification ("*"), or a store no longer configured */
		size_t k = (size_t)(n - c->nodes);
		ready[k] = (uint64_t)sqldb_int(st, 1);
		running[k] = (uint64_t)sqldb_int(st, 2);
		failed[k] = (uint64_t)sqldb_int(st, 3);
	}
	sqldb_rows_free(st);
	UNLOCK();
	return ret;
}

int state_lag(struct cluster *c, uint64_t *outdated, uint64_t *behind)
{
	int64_t v[2] = { 0, 0 };
	LOCK();
	int ret = sqldb_query_ints(c->db, v, 2, "measuring replication lag",
				   "SELECT COUNT(*), COALESCE(SUM(r.generation - p.generation), 0) FROM replicas AS p"
				   " JOIN repositories AS r USING (virtual_storage, relative_path)"
				   " WHERE p.virtual_storage = ? AND p.assigned = 1 AND p.generation < r.generation",
				   "s", c->virtual_storage);
	UNLOCK();
	*outdated = (uint64_t)v[0];
	*behind = (uint64_t)v[1];
	return ret;
}
