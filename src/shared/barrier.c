/* shared_barrier.c — crew_barrier: N processes meet, round after round; timeouts and aborts break it. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "shared/region.h"
#include "base/sync.h"

typedef struct barrier_body {
    pthread_mutex_t mu;            /* robust; guards count and broken */
    uint32_t parties, count;
    uint32_t broken;               /* sticky: new waits fail until reset */
    _Atomic uint32_t broken_round; /* round r broken: r + 1 */
    _Atomic uint32_t gen;          /* the round; bumped when a round ends */
} barrier_body;

struct crew_barrier {
    crew__sh sh;
};

static barrier_body *body(const crew_barrier *b)
{
    return crew__sh_body(&b->sh);
}

int crew_barrier_create(crew_barrier **out, unsigned parties)
{
    if (!out || parties == 0 || parties > INT_MAX)
        return -EINVAL;
    crew_barrier *b;
    int rc = CREW__SH_NEW(crew_barrier, CREW_SHARED_BARRIER, sizeof(barrier_body), &b);
    if (rc)
        return rc;
    body(b)->parties = parties;
    if ((rc = crew__rmutex_init(&body(b)->mu, false)) != 0) {
        crew_barrier_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

static void lock(barrier_body *bb)
{
    (void)crew__rmutex_lock(&bb->mu, UINT64_MAX); /* a dead holder left whole fields */
}

/* Ends the current round as broken (called locked). */
static void break_round(barrier_body *bb)
{
    uint32_t g = atomic_load(&bb->gen);
    atomic_store(&bb->broken_round, g + 1);
    bb->count = 0;
    atomic_store(&bb->gen, g + 1);
    crew__futex_wake(&bb->gen, INT_MAX, true);
}

int crew_barrier_wait(crew_barrier *b, double timeout)
{
    if (!b)
        return -EINVAL;
    barrier_body *bb = body(b);
    uint64_t deadline = crew__deadline(timeout);
    lock(bb);
    if (bb->broken) {
        crew__rmutex_unlock(&bb->mu);
        return CREW_EBROKEN;
    }
    uint32_t g = atomic_load(&bb->gen);
    int idx = (int)bb->count++;
    if (bb->count == bb->parties) {
        bb->count = 0;
        atomic_store(&bb->gen, g + 1);
        crew__rmutex_unlock(&bb->mu);
        crew__futex_wake(&bb->gen, INT_MAX, true);
        return idx;
    }
    crew__rmutex_unlock(&bb->mu);
    for (;;) {
        if (atomic_load(&bb->gen) != g)
            return atomic_load(&bb->broken_round) == g + 1 ? CREW_EBROKEN : idx;
        if (crew__sh_wait(&bb->gen, g, deadline, UINT64_MAX) == -EAGAIN) {
            lock(bb);
            int timed_out = atomic_load(&bb->gen) == g;
            if (timed_out) {
                bb->broken = 1;
                break_round(bb);
            }
            crew__rmutex_unlock(&bb->mu);
            if (timed_out)
                return -EAGAIN;
        }
    }
}

int crew_barrier_abort(crew_barrier *b)
{
    if (!b)
        return -EINVAL;
    barrier_body *bb = body(b);
    lock(bb);
    bb->broken = 1;
    if (bb->count)
        break_round(bb);
    crew__rmutex_unlock(&bb->mu);
    return 0;
}

int crew_barrier_reset(crew_barrier *b)
{
    if (!b)
        return -EINVAL;
    barrier_body *bb = body(b);
    lock(bb);
    if (bb->count)
        break_round(bb);
    bb->broken = 0;
    crew__rmutex_unlock(&bb->mu);
    return 0;
}

unsigned crew_barrier_parties(const crew_barrier *b)
{
    return b ? body(b)->parties : 0;
}

CREW__SH_BOILERPLATE(barrier, crew_barrier, CREW_SHARED_BARRIER)
