/* shared_semaphore.c — crew_semaphore: a counting (optionally bounded) semaphore on a shared futex word. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "shared/region.h"
#include "base/sync.h"

typedef struct sem_body {
    _Atomic uint32_t value;
    _Atomic uint32_t waiters;
    uint32_t max;                  /* 0: unbounded */
} sem_body;

struct crew_semaphore {
    crew__sh sh;
};

static sem_body *body(const crew_semaphore *s)
{
    return crew__sh_body(&s->sh);
}

int crew_semaphore_create(crew_semaphore **out, unsigned value, unsigned max)
{
    if (!out || (max && value > max) || value > INT_MAX || max > INT_MAX)
        return -EINVAL;
    crew_semaphore *s;
    int rc = CREW__SH_NEW(crew_semaphore, CREW_SHARED_SEMAPHORE, sizeof(sem_body), &s);
    if (rc)
        return rc;
    body(s)->value = value;
    body(s)->max = max;
    *out = s;
    return 0;
}

int crew_semaphore_acquire(crew_semaphore *s, double timeout)
{
    if (!s)
        return -EINVAL;
    sem_body *b = body(s);
    uint64_t deadline = crew__deadline(timeout);
    for (;;) {
        uint32_t v = atomic_load(&b->value);
        while (v > 0)
            if (atomic_compare_exchange_weak(&b->value, &v, v - 1))
                return 0;
        if (crew__remaining(deadline) == 0)
            return -EAGAIN;
        atomic_fetch_add(&b->waiters, 1);
        if (atomic_load(&b->value) == 0)
            crew__sh_wait(&b->value, 0, deadline, UINT64_MAX);
        atomic_fetch_sub(&b->waiters, 1);
    }
}

int crew_semaphore_release(crew_semaphore *s, unsigned n)
{
    if (!s)
        return -EINVAL;
    if (n == 0)
        return 0;
    sem_body *b = body(s);
    uint32_t v = atomic_load(&b->value);
    do {
        if ((b->max && (uint64_t)v + n > b->max) || (uint64_t)v + n > INT_MAX)
            return -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&b->value, &v, v + n));
    if (atomic_load(&b->waiters))
        crew__futex_wake(&b->value, (int)n, true);
    return 0;
}

unsigned crew_semaphore_value(const crew_semaphore *s)
{
    return s ? atomic_load(&body(s)->value) : 0;
}

CREW__SH_BOILERPLATE(semaphore, crew_semaphore, CREW_SHARED_SEMAPHORE)
