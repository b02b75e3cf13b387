/* ring.c — the SPSC message ring: acquire/release indices, no locks, no syscalls. */
#include "transport/ring.h"

#include <string.h>

size_t crew__ring_bytes(uint32_t cap)
{
    return sizeof(crew__ring) + (size_t)cap * sizeof(crew__msg);
}

void crew__ring_init(crew__ring *r, uint32_t cap)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->cap = cap;
    r->mask = cap - 1;
}

/* Slot of index i: r->mask lives in shared memory, so it is bounded by the
 * largest ring (tests/fuzz/fuzz_answer.c forges it). */
static inline uint32_t slot_of(const crew__ring *r, uint64_t i)
{
    return (uint32_t)(i & r->mask & (CREW__RING_MAXCAP - 1));
}

bool crew__ring_push(crew__ring *r, const crew__msg *m)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t cap = r->cap < CREW__RING_MAXCAP ? r->cap : CREW__RING_MAXCAP;
    if (t - h >= cap)
        return false;
    memcpy(&r->msgs[slot_of(r, t)], m, sizeof *m);
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

bool crew__ring_pop(crew__ring *r, crew__msg *m)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == t)
        return false;
    memcpy(m, &r->msgs[slot_of(r, h)], sizeof *m);
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return true;
}

bool crew__ring_push_own(crew__ring *r, uint64_t *tail, const crew__msg *m)
{
    uint64_t t = *tail;
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (h > t || t - h >= CREW__RING_MAXCAP)
        return false;
    memcpy(&r->msgs[t & (CREW__RING_MAXCAP - 1)], m, sizeof *m);
    *tail = t + 1;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return true;
}

int crew__ring_pop_own(crew__ring *r, uint64_t *head, crew__msg *m)
{
    uint64_t h = *head;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (t == h)
        return 0;
    if (t < h || t - h > CREW__RING_MAXCAP)
        return -1;
    memcpy(m, &r->msgs[h & (CREW__RING_MAXCAP - 1)], sizeof *m);
    *head = h + 1;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return 1;
}
