/* fdset.c — a lock-free bitmap of the descriptors crew's pools hold, closed in forked workers. */
#include "base/fdset.h"

#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

static _Atomic uint64_t owned[CREW__FDSET_MAX / 64];

void crew__fd_own(int fd)
{
    if (fd >= 0 && fd < CREW__FDSET_MAX)
        atomic_fetch_or(&owned[fd / 64], 1ull << (fd % 64));
}

void crew__fd_disown(int fd)
{
    if (fd >= 0 && fd < CREW__FDSET_MAX)
        atomic_fetch_and(&owned[fd / 64], ~(1ull << (fd % 64)));
}

void crew__fd_close(int fd)
{
    crew__fd_disown(fd);
    close(fd);
}

void crew__fd_close_others(int keep)
{
    for (int w = 0; w < CREW__FDSET_MAX / 64; w++) {
        uint64_t bits = atomic_exchange_explicit(&owned[w], 0, memory_order_relaxed);
        while (bits) {
            int fd = w * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            if (fd != keep)
                close(fd);
        }
    }
}
