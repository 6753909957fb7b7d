/* File-system helpers several roles need. */
#ifndef GROVE_FS_H
#define GROVE_FS_H

#include <sys/types.h>

/* mkdir -p: every missing component of path, with mode. */
int fs_mkdir_p(const char *path, mode_t mode);
/* rm -rf without following symlinks; a missing path is not an error. */
int fs_rmtree(const char *path);

#endif
