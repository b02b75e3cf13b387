/* shm.h — the layout of a pool's shared memory: header, one slot per worker, rings, arena. */
#ifndef CREW_SHM_H
#define CREW_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/arena.h"
#include "transport/ring.h"

/* "crew" plus the protocol's version in the top byte: a worker of another
 * libcrew (a stale build, another spawn_argv) refuses to map the region
 * rather than misread it. 1: workers say HELLO before they take tasks;
 * 2: workers claim each request before they run it (crew__slot.claimed);
 * 3: rings lie where the layout puts them (no offsets in the slots). */
#define CREW__MAGIC (0x00726577u | (4u << 24))
#define CREW__RING_CAP 256u     /* messages per ring                          */
#define CREW__MAX_WORKERS 256
_Static_assert(CREW__RING_CAP == CREW__RING_MAXCAP, "shared rings have room for the largest");

/* Slot states, written by the parent. */
/* parent-side slot states (STARTING: its launcher runs, outside the pool lock) */
enum { CREW__SLOT_EMPTY = 0, CREW__SLOT_LIVE = 1, CREW__SLOT_DEAD = 2, CREW__SLOT_STARTING = 3 };

/*
 * One worker's place. The parent owns `req` as producer and `resp` as
 * consumer; the worker the opposite. The futex words are wake-up counters:
 * a side that goes to sleep first sets its `*_sleeping` flag, and the other
 * side bumps the counter and wakes it only when that flag is set, so a busy
 * pipeline makes no syscalls at all.
 */
typedef struct crew__slot {
    _Alignas(64) _Atomic uint32_t req_bell;       /* parent -> worker wake-ups */
    _Atomic uint32_t worker_sleeping;
    _Atomic uint32_t worker_spinning;             /* it spins for work: read by
                                                     the other workers alone */
    _Atomic int32_t pid;                          /* worker pid (or tid)       */
    _Atomic uint32_t quit;                        /* parent asks it to leave   */
    _Alignas(64) _Atomic uint64_t cur_tag;        /* task running now, 0: none */
    _Atomic uint64_t cur_start_ns;
    _Atomic uint64_t tasks;                       /* finished by this worker   */
    _Atomic uint64_t busy_ns;
    /* the next request index the worker may run: it claims each request
     * (CAS claimed from its index to the next) before running it, and the
     * parent takes back requests not yet claimed by moving claimed past
     * them (pool.c: recall), so a request runs once, here or elsewhere */
    _Alignas(64) _Atomic uint64_t claimed;
} crew__slot;

/*
 * The region's header. Every worker can write all of it, so the structural
 * fields (magic, nslots, size, shared_futex, arena_off) are only what a
 * spawned worker checks once against the mapping it got; from then on each
 * process reads its own crew__region (below) and never these again.
 */
typedef struct crew__shm {
    uint32_t magic;
    uint32_t nslots;
    uint64_t size;                                /* bytes mapped              */
    uint32_t shared_futex;                        /* 1: process pool           */
    uint64_t max_rss;                             /* worker leaves past this (bytes) */
    _Alignas(64) _Atomic uint32_t doorbell;       /* worker -> parent wake-ups */
    _Atomic uint32_t parent_sleeping;
    uint64_t arena_off;                           /* crew__arena control block */
    _Alignas(64) crew__slot slots[];
} crew__shm;

/*
 * This process's own view of a region: where it is mapped, and its layout as
 * this process computed it (the creator) or checked it once (a worker that
 * mapped it). Rings, the arena and the mapping's size are found through
 * here, so nothing a task writes into the shared header can move a ring,
 * resize the arena or make a process unmap the wrong range.
 *
 *   [header + slots][2 rings per slot, in slot order][arena control][chunks]
 */
typedef struct crew__region {
    crew__shm *shm;
    uint64_t size;            /* bytes mapped                             */
    uint32_t nslots;
    int shared_futex;         /* 1: the futex words are shared (processes) */
    uint64_t rings_off;       /* ring 2i: slot i's requests; 2i+1: answers */
    uint64_t ring_stride;
    crew__arena arena;        /* the arena's handle (its own geometry)    */
} crew__region;

/* Creates the shared region for nslots workers and an arena of arena_bytes,
 * backed by a sealed memfd (no name in /dev/shm; its size cannot change).
 * Returns 0, *R (mapped) and *fd_out (close-on-exec), or a negative errno. */
int crew__region_create(uint32_t nslots, size_t arena_bytes, int shared_futex, crew__region *R,
                        int *fd_out);

/* Maps an existing region from its fd (a worker process) and checks its
 * header against the mapping before *R is filled from it: the magic and
 * protocol version, a slot count within CREW__MAX_WORKERS, and a layout
 * that fills exactly the memfd's size. Returns 0, -EINVAL (not a region of
 * this libcrew, or an inconsistent one) or what fstat/mmap said. */
int crew__region_map(int fd, crew__region *R);

/* Unmaps the region (the size this process mapped). */
void crew__region_unmap(crew__region *R);

static inline crew__ring *crew__region_req(const crew__region *R, uint32_t i)
{
    return (crew__ring *)((char *)R->shm + R->rings_off + 2 * (uint64_t)i * R->ring_stride);
}
static inline crew__ring *crew__region_resp(const crew__region *R, uint32_t i)
{
    return (crew__ring *)((char *)R->shm + R->rings_off + (2 * (uint64_t)i + 1) * R->ring_stride);
}

/* Payload address of a message (inline or in the arena). The caller has
 * checked an arena message's offset (crew__arena_holds) when it came from
 * another process. */
static inline const void *crew__msg_payload(const crew__region *R, const crew__msg *m)
{
    return (m->flags & CREW__MSG_ARENA) ? crew__arena_ptr(&R->arena, (int64_t)m->off)
                                        : (const void *)m->data;
}

/* Fills m's payload with len bytes at data: inline when it fits, else a
 * fresh allocation in arena a. Returns 0 or CREW_ETOOBIG. */
int crew__msg_put(const crew__arena *a, crew__msg *m, const void *data, size_t len);

/* Frees m's arena payload, if any. */
void crew__msg_free(const crew__arena *a, const crew__msg *m);

/* This process's record of which 2 MiB granules of an arena it has mapped
 * in already (each process has its own page tables). Covers 8 GiB. */
#define CREW__PREFAULT_MIN (64u * 1024)  /* smaller payloads just fault */
typedef struct crew__prefault {
    _Atomic uint64_t done[64];
} crew__prefault;

/* Maps in [off, off+len) of s's arena for this process with one madvise per
 * new granule (MADV_POPULATE_WRITE) instead of one page fault per 4 KiB: a
 * fault can cost ~20 us on a VM, 300 ms for a first 64 MiB payload. Only
 * for len >= CREW__PREFAULT_MIN; a kernel without it just faults. */
void crew__arena_prefault(const crew__region *R, crew__prefault *pf, int64_t off, size_t len);

#endif
