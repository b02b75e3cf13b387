/* shared_condition.c — crew_condition: a condition variable over a shared futex sequence, used with a crew_lock. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "shared/region.h"
#include "base/sync.h"

typedef struct cond_body {
    _Atomic uint32_t seq;          /* bumped by every notify */
    _Atomic uint32_t waiters;
} cond_body;

struct crew_condition {
    crew__sh sh;
};

static cond_body *body(const crew_condition *c)
{
    return crew__sh_body(&c->sh);
}

int crew_condition_create(crew_condition **out)
{
    if (!out)
        return -EINVAL;
    return CREW__SH_NEW(crew_condition, CREW_SHARED_CONDITION, sizeof(cond_body), out);
}

int crew_condition_wait(crew_condition *c, crew_lock *l, double timeout)
{
    if (!c || !l)
        return -EINVAL;
    cond_body *b = body(c);
    uint64_t deadline = crew__deadline(timeout);
    uint32_t s = atomic_load(&b->seq);
    atomic_fetch_add(&b->waiters, 1);
    int rc = crew__rmutex_unlock(crew__lock_mutex(l));
    if (rc) {
        atomic_fetch_sub(&b->waiters, 1);
        return rc;
    }
    int w = crew__sh_wait(&b->seq, s, deadline, UINT64_MAX);
    atomic_fetch_sub(&b->waiters, 1);
    if (w == 0 && atomic_load(&b->seq) == s && crew__remaining(deadline) == 0)
        w = -EAGAIN; /* the futex timed out */
    rc = crew__rmutex_lock(crew__lock_mutex(l), UINT64_MAX);
    return rc ? rc : w;
}

int crew_condition_notify(crew_condition *c, int n)
{
    if (!c || n < 0)
        return -EINVAL;
    cond_body *b = body(c);
    atomic_fetch_add(&b->seq, 1);
    if (n && atomic_load(&b->waiters))
        crew__futex_wake(&b->seq, n, true);
    return 0;
}

int crew_condition_notify_all(crew_condition *c)
{
    return crew_condition_notify(c, INT_MAX);
}

CREW__SH_BOILERPLATE(condition, crew_condition, CREW_SHARED_CONDITION)
