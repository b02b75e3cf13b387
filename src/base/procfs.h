/* procfs.h — reading a small file of /proc or /sys without stdio (no malloc: safe in a forked child). */
#ifndef CREW_PROCFS_H
#define CREW_PROCFS_H

#include <stddef.h>

/* Reads up to n-1 bytes of the file at path into buf, NUL-terminated: the
 * length, or -1 when it cannot be opened or read. */
int crew__read_small(const char *path, char *buf, size_t n);

#endif
