/* sync.c — futex wait/wake and the clock: the only place crew makes these syscalls. */

#include "base/sync.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crew.h"

uint64_t crew__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int crew__futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns, bool shared)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tp = &ts;
    }
    int op = shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE;
    long r = syscall(SYS_futex, (uint32_t *)addr, op, expected, tp, NULL, 0);
    if (r == 0)
        return 0;
    if (errno == EAGAIN)
        return 0; /* the value had already changed */
    return -errno;
}

int crew__futex_wake(_Atomic uint32_t *addr, int n, bool shared)
{
    int op = shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE;
    long r = syscall(SYS_futex, (uint32_t *)addr, op, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

static _Atomic uint32_t spinners_max;

uint64_t crew__spin_ns(void)
{
    static _Atomic uint64_t cached = UINT64_MAX;
    uint64_t v = atomic_load_explicit(&cached, memory_order_acquire);
    if (v == UINT64_MAX) {
        int n = crew_cpu_count();
        v = n > 1 ? 50000 : 0; /* 50 us: about two futex round trips */
        atomic_store_explicit(&spinners_max, n > 1 ? (uint32_t)n - 1 : 0, memory_order_relaxed);
        atomic_store_explicit(&cached, v, memory_order_release); /* after spinners_max */
    }
    return v;
}

uint32_t crew__spinners_max(void)
{
    (void)crew__spin_ns(); /* its acquire orders the load below */
    return atomic_load_explicit(&spinners_max, memory_order_relaxed);
}
