/* memfd.c — anonymous shared memory: a memfd (nothing in /dev/shm to leak) mapped shared. */
#include "base/memfd.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

int crew__memfd_map(const char *name, size_t size, int *fd_out, void **map_out)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        int e = -errno;
        close(fd);
        return e;
    }
    *fd_out = fd;
    *map_out = p;
    return 0;
}
