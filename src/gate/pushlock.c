/* The per-app push lock: see pushlock.h. */
#include "lib/common.h"
#include "gate/pushlock.h"
#include "lib/fs.h"

#include <fcntl.h>
#include <sys/file.h>

int push_lock_open(const char *locks_dir, const char *app)
{
	char path[4096];
	if (fs_mkdir_p(locks_dir, 0700))
		return -1;
	snprintf(path, sizeof(path), "%s/%s.lock", locks_dir, app);
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

int push_lock_try_shared(const char *locks_dir, const char *app)
{
	int fd = push_lock_open(locks_dir, app);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_SH | LOCK_NB)) {
		close(fd);
		return errno == EWOULDBLOCK ? -2 : -1;
	}
	return fd;
}

int push_lock_shared(const char *locks_dir, const char *app)
{
	int fd = push_lock_open(locks_dir, app);
	if (fd >= 0 && flock(fd, LOCK_SH)) {
		close(fd);
		fd = -1;
	}
	return fd;
}
