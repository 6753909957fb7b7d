/*
 * The pack-objects cache: packs a store's upload-pack made, kept on disk so
 * that the same request (CI cloning one commit again and again) is served
 * from a file instead of another git pack-objects run. Written and read by
 * the pack-objects hook (hook/packobjects.c); its counters are read by the
 * store for /metrics.
 *
 * Layout under the cache folder: ab/<key> entries (the pack as git made
 * it, then a trailer: magic, length, CRC-32C of the pack), tmp/ for entries
 * being written, locks/<3 hex digits> (one stripe of keys each: identical
 * requests wait for one run instead of starting their own) and stats (the
 * counters, updated under a lock). An entry whose trailer does not match
 * its bytes, or older than the maximum age, is never served.
 */
#ifndef GROVE_PACKCACHE_H
#define GROVE_PACKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACKCACHE_KEY_HEX 64

struct packcache {
	char dir[2048];
	uint64_t max_bytes;     /* the whole cache; beyond it the oldest go */
	int64_t max_age;        /* seconds an entry is served */
};

struct packcache_stats {
	uint64_t hits, misses, bytes_served, bytes_written, evictions, errors;
};

/* The key of a request: the repository (its real path), git's arguments
 * (NULL-terminated) and what pack-objects reads on stdin. */
void packcache_key(const char *repo, char *const *argv, const void *in, size_t inlen,
		   char key[PACKCACHE_KEY_HEX + 1]);

/* Creates the folders (mode 0700). */
int packcache_prepare(const struct packcache *pc);

/* Takes the key's stripe lock (blocking); returns the fd, or -1 with the
 * error set. Closing the fd releases it. */
int packcache_lock(const struct packcache *pc, const char *key);

/*
 * Opens the key's entry if it is there, young enough and whole (the trailer
 * matches its bytes): 1 with *fd at the pack's first byte and *len its
 * length; 0 if there is none (a bad one is removed); <0 on error.
 */
int packcache_open(const struct packcache *pc, const char *key, int *fd, uint64_t *len);

/* An entry being written: the pack's bytes go to fd (through _write). */
struct packcache_writer {
	int fd;
	char tmp[2200];
	uint64_t len;
	uint32_t crc;          /* CRC-32C of the pack's bytes so far */
	bool failed;           /* a write failed (disk full): nothing is kept */
};

int packcache_writer_start(const struct packcache *pc, struct packcache_writer *w);
/* Appends; on a failed write the writer turns failed (not an error to the
 * caller: the clone goes on without the cache). */
void packcache_writer_add(struct packcache_writer *w, const void *buf, size_t n);
/*
 * Adds the trailer and puts the entry in place if it fits in the cache.
 * Returns 0 with *fd open on the pack's bytes (w->len of them, from offset
 * 0) for the caller to serve and close, whether or not the entry was kept;
 * <0 (writer failed or error) with nothing to serve. Ends the writer.
 */
int packcache_writer_finish(const struct packcache *pc, struct packcache_writer *w, const char *key, int *fd);
void packcache_writer_abort(struct packcache_writer *w);

/* Removes entries past their age, then the oldest until the cache fits;
 * and files left in tmp/ by writers that died. */
void packcache_evict(const struct packcache *pc);

/* Adds to the counters (under their lock); best effort. */
void packcache_count(const struct packcache *pc, const struct packcache_stats *add);
int packcache_stats_read(const char *dir, struct packcache_stats *out);

#endif
