/* The pack-objects cache on disk: see packcache.h. */
#include "lib/common.h"
#include "lib/packcache.h"
#include "lib/crc32c.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

/* An entry's last bytes: magic, the pack's length, its CRC-32C (in 8
 * bytes). A CRC, not a hash: it guards against bytes damaged or cut short
 * on the store's own disk, in a folder only the store writes; it is
 * checked before every clone served, and SHA-256 cost ten times as much.
 * Entries of the first format (GROVEPC1, SHA-256) are not whole to this
 * one: they are dropped and made again. */
#define TRAILER_MAGIC "GROVEPC2"
#define TRAILER_LEN (8 + 8 + 8)
#define EVICT_MAX_ENTRIES 100000

void packcache_key(const char *repo, char *const *argv, const void *in, size_t inlen,
		   char key[PACKCACHE_KEY_HEX + 1])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char h[SHA256_DIGEST_LENGTH];
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, "grove-pack-cache-v1", 20);
	EVP_DigestUpdate(c, repo, strlen(repo) + 1);
	for (size_t i = 0; argv[i]; i++)
		EVP_DigestUpdate(c, argv[i], strlen(argv[i]) + 1);
	EVP_DigestUpdate(c, "", 1);
	EVP_DigestUpdate(c, in, inlen);
	EVP_DigestFinal_ex(c, h, NULL);
	EVP_MD_CTX_free(c);
	hex_encode(h, sizeof(h), key);
}

int packcache_prepare(const struct packcache *pc)
{
	char path[2300];
	int ret = fs_mkdir_p(pc->dir, 0700);
	if (!ret && !(ret = fs_pathf(path, sizeof(path), "%s/tmp", pc->dir)))
		ret = fs_mkdir_p(path, 0700);
	if (!ret && !(ret = fs_pathf(path, sizeof(path), "%s/locks", pc->dir)))
		ret = fs_mkdir_p(path, 0700);
	return ret;
}

int packcache_lock(const struct packcache *pc, const char *key)
{
	char path[2300];
	int fd;
	/* 4096 stripes: two different requests rarely wait for each other,
	 * and the lock files stay few. */
	if (fs_pathf(path, sizeof(path), "%s/locks/%.3s", pc->dir, key))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_set(GROVE_EIO, "cannot open the cache lock %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) && errno == EINTR)
		;
	return fd;
}

static int entry_path(const struct packcache *pc, const char *key, char *out, size_t size)
{
	return fs_pathf(out, size, "%s/%.2s/%s", pc->dir, key, key);
}

static void trailer_fill(unsigned char t[TRAILER_LEN], uint64_t len, uint32_t crc)
{
	uint64_t c = crc;
	memcpy(t, TRAILER_MAGIC, 8);
	memcpy(t + 8, &len, 8);
	memcpy(t + 16, &c, 8);
}

/* Whether the fd's bytes are a whole entry: the trailer's length and CRC
 * match what precedes it. Read through a mapping: the pages come from the
 * page cache without a copy. (A disk that fails to read a page then kills
 * the hook with SIGBUS, and that clone fails, to be tried again, where a
 * read error would have had the entry made again: a failing disk is rare,
 * and the copy is a fifth of this check's cost.) */
static bool entry_whole(int fd, uint64_t size, uint64_t *len)
{
	unsigned char t[TRAILER_LEN], want[TRAILER_LEN];
	uint32_t crc = 0;
	uint64_t n;

	if (size < TRAILER_LEN || pread(fd, t, sizeof(t), (off_t)(size - TRAILER_LEN)) != (ssize_t)sizeof(t) ||
	    memcmp(t, TRAILER_MAGIC, 8))
		return false;
	memcpy(&n, t + 8, 8);
	if (n != size - TRAILER_LEN || n > SIZE_MAX)
		return false;
	if (n) {
		void *m = mmap(NULL, (size_t)n, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			return false;
		madvise(m, (size_t)n, MADV_SEQUENTIAL);
		crc = crc32c(0, m, (size_t)n);
		munmap(m, (size_t)n);
	}
	trailer_fill(want, n, crc);
	*len = n;
	return !memcmp(t, want, sizeof(t));
}

int packcache_open(const struct packcache *pc, const char *key, int *fd, uint64_t *len)
{
	char path[2300];
	struct stat st;

	*fd = -1;
	if (entry_path(pc, key, path, sizeof(path)))
		return -1;
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? 0 : error_set(GROVE_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(f, &st) || time(NULL) - st.st_mtime > pc->max_age || !entry_whole(f, (uint64_t)st.st_size, len)) {
		/* Too old, cut short or damaged: never served, and gone. */
		close(f);
		unlink(path);
		return 0;
	}
	*fd = f;
	return 1;
}

int packcache_writer_start(const struct packcache *pc, struct packcache_writer *w)
{
	int ret;
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if ((ret = fs_pathf(w->tmp, sizeof(w->tmp), "%s/tmp/pack-XXXXXX", pc->dir)))
		return ret;
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0)
		return error_set(GROVE_EIO, "cannot create a cache file in %s/tmp: %s", pc->dir, strerror(errno));
	return 0;
}

void packcache_writer_add(struct packcache_writer *w, const void *buf, size_t n)
{
	if (w->failed)
		return;
	if (write_all(w->fd, buf, n)) {
		w->failed = true;
		return;
	}
	w->crc = crc32c(w->crc, buf, n);
	w->len += n;
}

void packcache_writer_abort(struct packcache_writer *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp);
	}
	w->fd = -1;
}

int packcache_writer_finish(const struct packcache *pc, struct packcache_writer *w, const char *key, int *fd)
{
	unsigned char t[TRAILER_LEN];
	char path[2300], dir[2300];
	int ret = 0;

	*fd = -1;
	trailer_fill(t, w->len, w->crc);
	if (w->failed || write_all(w->fd, t, sizeof(t))) {
		ret = error_set(GROVE_EIO, "cannot write the cache file %s (disk full?)", w->tmp);
		packcache_writer_abort(w);
		return ret;
	}
	/* Too big for the whole cache: served once from where it is, not kept. */
	if (w->len + TRAILER_LEN > pc->max_bytes || entry_path(pc, key, path, sizeof(path)) ||
	    fs_pathf(dir, sizeof(dir), "%s/%.2s", pc->dir, key) || fs_mkdir_p(dir, 0700) || rename(w->tmp, path))
		unlink(w->tmp);
	*fd = w->fd;
	w->fd = -1;
	return 0;
}

struct entry {
	char path[2300];
	time_t mtime;
	uint64_t size;
};

static int by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

/* The entries in one ab/ folder, appended to *e. */
static void scan_bucket(const char *bucket, struct entry **e, size_t *n, size_t *cap)
{
	DIR *d = opendir(bucket);
	struct dirent *de;
	struct stat st;
	while (d && (de = readdir(d)) && *n < EVICT_MAX_ENTRIES) {
		if (strlen(de->d_name) != PACKCACHE_KEY_HEX)
			continue;
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			*e = xrealloc(*e, *cap * sizeof(**e));
		}
		if (fs_pathf((*e)[*n].path, sizeof((*e)[*n].path), "%s/%s", bucket, de->d_name) ||
		    stat((*e)[*n].path, &st))
			continue;
		(*e)[*n].mtime = st.st_mtime;
		(*e)[(*n)++].size = (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
}

/* Files in tmp/ older than the maximum age (and a minute): their writer died. */
static void clean_tmp(const struct packcache *pc, time_t now)
{
	char tmp[2300], path[2600];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (fs_pathf(tmp, sizeof(tmp), "%s/tmp", pc->dir) || !(d = opendir(tmp)))
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !fs_pathf(path, sizeof(path), "%s/%s", tmp, de->d_name) &&
		    !lstat(path, &st) && now - st.st_mtime > pc->max_age + 60)
			unlink(path);
	closedir(d);
}

void packcache_evict(const struct packcache *pc)
{
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0, evicted = 0;
	time_t now = time(NULL);
	char bucket[2300];
	DIR *d = opendir(pc->dir);
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strlen(de->d_name) == 2 && !fs_pathf(bucket, sizeof(bucket), "%s/%s", pc->dir, de->d_name))
			scan_bucket(bucket, &e, &n, &cap);
	if (d)
		closedir(d);
	qsort(e, n, sizeof(*e), by_age);
	for (size_t i = 0; i < n; i++)
		total += e[i].size;
	for (size_t i = 0; i < n; i++) {
		if (now - e[i].mtime <= pc->max_age && total <= pc->max_bytes)
			break;
		if (!unlink(e[i].path)) {
			total -= e[i].size;
			evicted++;
		}
	}
	free(e);
	clean_tmp(pc, now);
	if (evicted)
		packcache_count(pc, &(struct packcache_stats){ .evictions = evicted });
}

void packcache_count(const struct packcache *pc, const struct packcache_stats *add)
{
	char path[2300];
	struct packcache_stats s = { 0 };
	int fd;

	if (fs_pathf(path, sizeof(path), "%s/stats", pc->dir))
		return;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (!flock(fd, LOCK_EX)) {
		if (pread(fd, &s, sizeof(s), 0) != (ssize_t)sizeof(s))
			memset(&s, 0, sizeof(s));
		s.hits += add->hits;
		s.misses += add->misses;
		s.bytes_served += add->bytes_served;
		s.bytes_written += add->bytes_written;
		s.evictions += add->evictions;
		s.errors += add->errors;
		if (pwrite(fd, &s, sizeof(s), 0) != (ssize_t)sizeof(s))
			(void)0;   /* best effort: a full disk loses a count, not a clone */
	}
	close(fd);
}

int packcache_stats_read(const char *dir, struct packcache_stats *out)
{
	char path[2300];
	int fd, ret = 0;

	memset(out, 0, sizeof(*out));
	if ((ret = fs_pathf(path, sizeof(path), "%s/stats", dir)))
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : error_set(GROVE_EIO, "cannot read %s: %s", path, strerror(errno));
	if (!flock(fd, LOCK_SH) && pread(fd, out, sizeof(*out), 0) != (ssize_t)sizeof(*out))
		memset(out, 0, sizeof(*out));
	close(fd);
	return 0;
}
