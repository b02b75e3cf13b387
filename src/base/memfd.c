/* memfd.c — anonymous shared memory: a memfd (nothing in /dev/shm to leak) mapped shared. */
#include "base/memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int crew__memfd_map(const char *name, size_t size, int *fd_out, void **map_out)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    /* sealed at its size: a process holding the fd (every worker does) can
     * neither shrink it, which would turn every other mapping's access past
     * the new end into SIGBUS, nor grow it */
    if (ftruncate(fd, (off_t)size) < 0 ||
        (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 &&
         errno != EINVAL)) { /* EINVAL: a kernel (or sandbox) without seals: unsealed */
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
