/* File-system helpers: see fs.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"

#include <fcntl.h>
#include <ftw.h>
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
