/* File-system helpers several roles need. */
#ifndef GROVE_FS_H
#define GROVE_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * snprintf of a path into a fixed buffer: 0, or GROVE_ETOOBIG with a message
 * saying what did not fit when the whole path does not. A cut path names
 * another file, so it is never used.
 */
int fs_pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* mkdir -p: every missing component of path, with mode. */
int fs_mkdir_p(const char *path, mode_t mode);
/* rm -rf without following symlinks; a missing path is not an error. */
int fs_rmtree(const char *path);
/* The disk space the files and folders under path take, in bytes (like du): 0, or -1 with errno. */
int fs_disk_usage(const char *path, uint64_t *out);

/* The whole file at path appended to out (bounded by out's max: a longer
 * file is GROVE_ETOOBIG). */
struct strbuf;
int fs_read_all(const char *path, struct strbuf *out);

/* Writes text to a new file with mode; an existing file is left as it is (0). */
int fs_write_new(const char *path, const char *text, mode_t mode);

/*
 * A MAP_SHARED mapping of size bytes that processes share: anonymous when
 * path is NULL (only children forked later see it); else the file at path,
 * made anew and zeroed when create (whoever mapped the old one keeps it),
 * or, without create, one that exists with exactly that size (one another
 * process made). NULL on failure, with the error set.
 */
void *fs_map_shared(const char *path, size_t size, bool create);

#endif
