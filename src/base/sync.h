/* sync.h — futex wait/wake, adaptive spinning and the monotonic clock used across crew. */
#ifndef CREW_SYNC_H
#define CREW_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t crew__now_ns(void);

/*
 * Sleeps while *addr == expected, at most timeout_ns (UINT64_MAX: forever).
 * `shared` selects a futex visible across processes (shared mappings) or a
 * faster process-private one. Returns 0 when woken or the value differed,
 * -ETIMEDOUT, -EINTR.
 */
int crew__futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns, bool shared);

/* Wakes up to n sleepers on addr. Returns how many woke (>= 0). */
int crew__futex_wake(_Atomic uint32_t *addr, int n, bool shared);

/* One pause of a spin loop. */
static inline void crew__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* How long (ns) a side spins before it sleeps; 0 on a single CPU, where a
 * spinner only delays the side it waits for. */
uint64_t crew__spin_ns(void);

/* How many of a pool's workers may spin at once: the CPUs less one (the
 * parent's). A spinner beyond them only takes a core from a worker or a
 * parent with work to do (32 thread workers on 2 cores ran tiny calls at
 * half ThreadPoolExecutor's speed). Known once crew__spin_ns() has run. */
uint32_t crew__spinners_max(void);

#endif
