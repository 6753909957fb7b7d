/* The per-app concurrency limiter: see opslots.h. */
#include "lib/common.h"
#include "gate/opslots.h"
#include "lib/error.h"
#include "lib/fs.h"

#include <fcntl.h>

int op_slot_try(const char *locks_dir, const char *app, int max)
{
	char path[4096];
	int fd;

	if (fs_mkdir_p(locks_dir, 0700) || fs_pathf(path, sizeof(path), "%s/%s.ops", locks_dir, app))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_set(GROVE_EIO, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < max; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = i, .l_len = 1 };
		if (!fcntl(fd, F_SETLK, &fl))
			return fd;
		if (errno != EACCES && errno != EAGAIN) {
			error_set(GROVE_EIO, "cannot lock a slot of %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	return -2;
}
