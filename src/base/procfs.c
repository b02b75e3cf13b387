/* procfs.c — reading a small file of /proc or /sys without stdio: no malloc, so a forked child may do it. */

#include <fcntl.h>
#include <unistd.h>

#include "base/procfs.h"

/*
 * Reads up to n-1 bytes of a small file into buf, NUL-terminated: the
 * length, or -1 when it cannot be opened or read. Plain open/read, no stdio:
 * a worker forked from a threaded parent may call this (crew__spin_ns), and
 * fopen's malloc can deadlock there on a lock another parent thread held at
 * fork time (seen with GCC 12's AddressSanitizer allocator).
 */
int crew__read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < n) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    return (int)got;
}
