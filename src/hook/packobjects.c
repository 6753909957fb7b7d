/*
 * grove-pack-objects: git's uploadpack.packObjectsHook on a store (set on
 * the store's own command line, never from a repository's config). git
 * upload-pack runs it with the pack-objects command it would have run;
 * with the cache on (GROVE_PACK_CACHE, set by the store) the pack for the
 * same request on the same repository comes from the cache
 * (lib/packcache.h), and identical requests arriving together wait for one
 * pack-objects run instead of each starting its own.
 *
 * Whatever goes wrong with the cache (a full disk, a damaged entry), the
 * clone is served by git as without it. Nothing is written to stderr but
 * git's own: upload-pack sends it to the client as progress.
 */
#include "lib/common.h"
#include "hook/hook.h"
#include "lib/error.h"
#include "lib/packcache.h"
#include "lib/proc.h"
#include "lib/strbuf.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

/* pack-objects' input is object ids: a request past this goes uncached. */
#define REQUEST_MAX (8 << 20)

/* Runs git's command (argv) with in, then the rest of our stdin, on its
 * stdin; its stdout is out_fd (ours, or a pipe). Returns its pid. */
static pid_t spawn(char **argv, int out_fd, int *in_fd)
{
	int inp[2];
	pid_t pid;

	if (pipe2(inp, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(inp[0], 0);
		if (out_fd != 1)
			dup2(out_fd, 1);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(inp[0]);
	*in_fd = inp[1];
	return pid;
}

static int wait_code(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Feeds req and then the rest of our stdin to fd, and closes it: git's
 * pack-objects reads its whole input before it writes. */
static void feed(int fd, const struct strbuf *req, bool rest)
{
	char buf[65536];
	ssize_t n;
	if (!write_all(fd, req->buf, req->len))
		while (rest && ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)))
			if (n > 0 && write_all(fd, buf, (size_t)n))
				break;
	close(fd);
}

/* git as if there were no cache. */
static int run_plain(char **argv, const struct strbuf *req, bool rest)
{
	int in;
	pid_t pid = spawn(argv, 1, &in);
	if (pid < 0)
		return 1;
	feed(in, req, rest);
	return wait_code(pid);
}

/* Reads our stdin into req; false if it is larger than REQUEST_MAX (req
 * then holds what was read, and the rest is still on stdin). */
static bool read_request(struct strbuf *req)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return true;
		if (strbuf_add(req, buf, (size_t)n))
			return false;
	}
}

/*
 * The entry's len bytes to our stdout. upload-pack reads us through a pipe:
 * splice hands it the page cache's pages without copying them through
 * here. Anything else (a file, in a test) gets read and write.
 */
static int serve(int fd, uint64_t len)
{
	char buf[1 << 16];
	loff_t off = 0;
	/* A larger pipe: fewer wake-ups, here and in upload-pack, per MiB. */
	if (len > 1 << 16)
		fcntl(1, F_SETPIPE_SZ, 1 << 20);
	while ((uint64_t)off < len) {
		ssize_t n = splice(fd, &off, 1, NULL, MIN(len - (uint64_t)off, (uint64_t)1 << 20), SPLICE_F_MORE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS) && off == 0)
			break;   /* not a pipe: the copying way below */
		if (n <= 0)
			return 1;
	}
	while ((uint64_t)off < len) {
		ssize_t n = pread(fd, buf, MIN(sizeof(buf), len - (uint64_t)off), off);
		if (n <= 0 || write_all(1, buf, (size_t)n))
			return 1;
		off += n;
	}
	return 0;
}

/* Runs pack-objects into a new entry. 0 with *fd and *len to serve; >0 git's
 * own failure (its code); <0 the cache failed (nothing was sent). */
static int make_entry(const struct packcache *pc, char **argv, const struct strbuf *req, const char *key, int *fd,
		      uint64_t *len)
{
	struct packcache_writer w;
	char buf[1 << 16];
	int out[2], in, code;
	ssize_t n;
	pid_t pid;

	if (packcache_writer_start(pc, &w))
		return -1;
	if (pipe2(out, O_CLOEXEC)) {
		packcache_writer_abort(&w);
		return -1;
	}
	pid = spawn(argv, out[1], &in);
	close(out[1]);
	if (pid < 0) {
		close(out[0]);
		packcache_writer_abort(&w);
		return -1;
	}
	feed(in, req, false);
	/* All of it, even once the cache file failed: git must not block. */
	while ((n = read(out[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			packcache_writer_add(&w, buf, (size_t)n);
	close(out[0]);
	code = wait_code(pid);
	if (code) {
		packcache_writer_abort(&w);
		return code;
	}
	*len = w.len;
	return packcache_writer_finish(pc, &w, key, fd) ? -1 : 0;
}

static int cached(const struct packcache *pc, char **argv, const struct strbuf *req)
{
	struct packcache_stats add = { 0 };
	char key[PACKCACHE_KEY_HEX + 1], repo[4096];
	uint64_t len = 0;
	int lock, fd = -1, code, r;

	if (!realpath(".", repo) || packcache_prepare(pc))
		return run_plain(argv, req, false);
	packcache_key(repo, argv, req->buf, req->len, key);
	if ((lock = packcache_lock(pc, key)) < 0)
		return run_plain(argv, req, false);
	r = packcache_open(pc, key, &fd, &len);
	if (r > 0) {
		close(lock);
		add.hits = 1;
	} else {
		code = make_entry(pc, argv, req, key, &fd, &len);
		close(lock);
		if (code > 0)
			return code;
		if (code < 0) {
			packcache_count(pc, &(struct packcache_stats){ .errors = 1 });
			return run_plain(argv, req, false);
		}
		add.misses = 1;
		add.bytes_written = len;
		packcache_evict(pc);
	}
	code = serve(fd, len);
	close(fd);
	if (!code)
		add.bytes_served = len;
	packcache_count(pc, &add);
	return code;
}

int packobjects_main(int argc, char **argv)
{
	struct packcache pc = { .max_bytes = 1ULL << 30, .max_age = 300 };
	const char *dir = getenv("GROVE_PACK_CACHE");
	struct strbuf req;
	int code;

	if (argc < 3 || strcmp(argv[1], "git")) {
		fprintf(stderr, "usage: grove-pack-objects git pack-objects ARGS… (what git's uploadpack.packObjectsHook runs)\n");
		return 2;
	}
	if (!dir || !*dir || strlen(dir) >= sizeof(pc.dir)) {
		execvp(argv[1], argv + 1);
		return 127;
	}
	strlcpy_(pc.dir, dir, sizeof(pc.dir));
	if (getenv("GROVE_PACK_CACHE_MAX"))
		pc.max_bytes = strtoull(getenv("GROVE_PACK_CACHE_MAX"), NULL, 10);
	if (getenv("GROVE_PACK_CACHE_AGE"))
		pc.max_age = strtoll(getenv("GROVE_PACK_CACHE_AGE"), NULL, 10);
	/* A client gone mid-clone is a write error here, not a death. */
	signal(SIGPIPE, SIG_IGN);
	strbuf_init(&req, REQUEST_MAX);
	if (!read_request(&req))
		code = run_plain(argv + 1, &req, true);
	else
		code = cached(&pc, argv + 1, &req);
	strbuf_release(&req);
	return code;
}
