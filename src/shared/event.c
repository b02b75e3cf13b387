/* shared_event.c — crew_event: a flag processes wait on, set and cleared across processes. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "shared/region.h"
#include "base/sync.h"

typedef struct event_body {
    _Atomic uint32_t flag;
    _Atomic uint32_t waiters;
    _Atomic uint32_t gen;   /* bumped by every set: a set then clear still wakes */
} event_body;

struct crew_event {
    crew__sh sh;
};

static event_body *body(const crew_event *e)
{
    return crew__sh_body(&e->sh);
}

int crew_event_create(crew_event **out)
{
    if (!out)
        return -EINVAL;
    return CREW__SH_NEW(crew_event, CREW_SHARED_EVENT, sizeof(event_body), out);
}

int crew_event_set(crew_event *e)
{
    if (!e)
        return -EINVAL;
    event_body *b = body(e);
    atomic_store(&b->flag, 1);
    atomic_fetch_add(&b->gen, 1);
    if (atomic_load(&b->waiters))
        crew__futex_wake(&b->gen, INT_MAX, true);
    return 0;
}

int crew_event_clear(crew_event *e)
{
    if (!e)
        return -EINVAL;
    atomic_store(&body(e)->flag, 0);
    return 0;
}

int crew_event_is_set(const crew_event *e)
{
    return e && atomic_load(&body(e)->flag) ? 1 : 0;
}

int crew_event_wait(crew_event *e, double timeout)
{
    if (!e)
        return -EINVAL;
    event_body *b = body(e);
    uint64_t deadline = crew__deadline(timeout);
    uint32_t gen = atomic_load(&b->gen);
    /* set, or set since we came (a set then clear must still wake us, as
     * threading.Event does) */
    while (!atomic_load(&b->flag) && atomic_load(&b->gen) == gen) {
        if (crew__remaining(deadline) == 0)
            return -EAGAIN;
        atomic_fetch_add(&b->waiters, 1);
        if (!atomic_load(&b->flag))
            crew__sh_wait(&b->gen, gen, deadline, UINT64_MAX);
        atomic_fetch_sub(&b->waiters, 1);
    }
    return 0;
}

CREW__SH_BOILERPLATE(event, crew_event, CREW_SHARED_EVENT)
