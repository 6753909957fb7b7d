/* File-system helpers: see fs.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/strbuf.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>

int fs_pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return error_set(GROVE_ETOOBIG, "a path longer than %zu bytes (starting %.64s): use shorter folder names",
				 size - 1, buf);
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlcpy_(buf, path, sizeof(buf));
	if (len >= sizeof(buf))
		return error_set(GROVE_EINVAL, "path too long: %s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return error_set(GROVE_EIO, "cannot create %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return error_set(GROVE_EIO, "cannot create %s: %s", buf, strerror(errno));
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_DP)
		return rmdir(path) ? -1 : 0;
	return unlink(path) ? -1 : 0;
}

int fs_rmtree(const char *path)
{
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
		return error_set(GROVE_EIO, "cannot remove %s: %s", path, strerror(errno));
	return 0;
}

int fs_read_all(const char *path, struct strbuf *out)
{
	char buf[16384];
	int ret = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(GROVE_EIO, "cannot read %s: %s", path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = error_set(GROVE_EIO, "cannot read %s: %s", path, strerror(errno));
		if (n <= 0)
			break;
		if (strbuf_add(out, buf, (size_t)n)) {
			ret = error_set(GROVE_ETOOBIG, "%s is larger than %zu bytes", path, out->max);
			break;
		}
	}
	close(fd);
	return ret;
}

int fs_write_new(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return errno == EEXIST ? 0 : error_set(GROVE_EIO, "cannot create %s: %s", path, strerror(errno));
	while (len) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = errno;
			close(fd);
			unlink(path);
			return error_set(GROVE_EIO, "cannot write %s: %s", path, strerror(e));
		}
		text += n;
		len -= (size_t)n;
	}
	if (close(fd))
		return error_set(GROVE_EIO, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

void *fs_map_shared(const char *path, size_t size, bool create)
{
	char tmp[4200];
	struct stat st;
	void *p = MAP_FAILED;
	int fd;

	if (!path) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			error_set(GROVE_EIO, "mmap: %s", strerror(errno));
		return p == MAP_FAILED ? NULL : p;
	}
	/* Made aside and renamed: a process that opens path sees the old
	 * file or the whole new one, never one still being sized. */
	if (create && fs_pathf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()))
		return NULL;
	fd = create ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		error_set(GROVE_EIO, "%s: %s", create ? tmp : path, strerror(errno));
		return NULL;
	}
	if (create ? ftruncate(fd, (off_t)size) : fstat(fd, &st)) {
		error_set(GROVE_EIO, "%s: %s", path, strerror(errno));
	} else if (!create && (size_t)st.st_size != size) {
		error_set(GROVE_EPROTO, "%s holds %lld bytes, not %zu: it was made by another version of grove", path,
			  (long long)st.st_size, size);
	} else {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			error_set(GROVE_EIO, "mmap %s: %s", path, strerror(errno));
	}
	if (create && p != MAP_FAILED && rename(tmp, path)) {
		error_set(GROVE_EIO, "rename %s: %s", path, strerror(errno));
		munmap(p, size);
		p = MAP_FAILED;
	}
	if (create && p == MAP_FAILED)
		unlink(tmp);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static _Thread_local uint64_t usage_acc;

static int usage_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)p;
	(void)ftw;
	if (type == FTW_F || type == FTW_D || type == FTW_DP)
		usage_acc += (uint64_t)sb->st_blocks * 512;
	return 0;
}

int fs_disk_usage(const char *path, uint64_t *out)
{
	usage_acc = 0;
	if (nftw(path, usage_entry, 16, FTW_PHYS))
		return -1;
	*out = usage_acc;
	return 0;
}
