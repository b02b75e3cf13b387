/* arena.h — a lock-free chunk allocator over shared memory, for payloads too big for a ring message. */
#ifndef CREW_ARENA_H
#define CREW_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CREW__CHUNK 4096u /* allocation granule, bytes */

/*
 * The arena's control block lives in shared memory beside its data. Every
 * chunk has one bit in `bits`; allocation claims bits with compare-and-swap,
 * freeing clears them. No lock exists, so a process that dies inside an
 * allocation can leak the chunks it claimed but can never block another.
 * First fit from `low` (the lowest word that may have room) keeps the
 * touched, warm pages in use instead of faulting new ones in.
 *
 * Any process that maps the arena can write any of it (a task, a C
 * extension in a worker), so the geometry the allocator trusts is not read
 * from here: each process keeps its own crew__arena (below). The copies of
 * nwords and data_off in the block are for a worker to check once, when it
 * maps the region.
 */
typedef struct crew__arena_ctl {
    uint64_t nwords;            /* words in bits[] (as created)           */
    uint64_t data_off;          /* offset of chunk 0 from the block       */
    _Atomic uint64_t low;       /* first word that may have free chunks   */
    _Atomic uint64_t used;      /* chunks in use (statistics)             */
    _Atomic uint64_t returning; /* crew__arena_return calls under way: an
                                   allocation that fails meanwhile retries */
    _Atomic uint64_t bits[];
} crew__arena_ctl;

/* This process's handle on an arena: where its control block is mapped here
 * and its geometry, as this process created or checked it. Offsets count
 * from the control block. Every index the allocator computes is bounded by
 * these private copies, whatever the shared block holds. */
typedef struct crew__arena {
    crew__arena_ctl *ctl;
    uint64_t nwords;
    uint64_t data_off;
} crew__arena;

/* Bytes of control block for an arena of `chunks` chunks. */
size_t crew__arena_ctl_bytes(uint64_t chunks);

/* Initialises the control block at ctl and the handle *a; chunks must be a
 * multiple of 64 and data_off at least crew__arena_ctl_bytes(chunks). */
void crew__arena_init(crew__arena *a, crew__arena_ctl *ctl, uint64_t chunks, uint64_t data_off);

/* Fills *a for the control block at ctl, created by another process, with
 * the geometry the caller expects (never read back from the block). */
void crew__arena_attach(crew__arena *a, crew__arena_ctl *ctl, uint64_t nwords, uint64_t data_off);

/* Allocates len bytes (> 0). Returns the byte offset from the arena base
 * (the control block), or -1 when no run of free chunks is long enough. */
int64_t crew__arena_alloc(const crew__arena *a, size_t len);
/* crew__arena_alloc that, failing while a crew__arena_return holds free
 * chunks, waits for it (100 ms at most) and looks again. Sleeps: never
 * under a pool lock. */
int64_t crew__arena_alloc_wait(const crew__arena *a, size_t len);

/* Runs at least this long are big: freed, their pages go back to the
 * system (a pool that once carried a 512 MiB argument would otherwise keep
 * it resident until it closes), at once (crew__arena_free) or once the
 * run has sat unused a while (crew__arena_free_keep, then
 * crew__arena_return: a big argument handed over again and again then
 * finds its pages warm). Smaller runs keep their pages. */
#define CREW__ARENA_BIG_BYTES (64u << 20)

/* Frees the allocation of len bytes at off (the values alloc gave); a big
 * run's pages go back to the system first. A run that does not lie inside
 * the arena is ignored (nothing outside is touched, whatever a forged
 * offset says). */
void crew__arena_free(const crew__arena *a, int64_t off, size_t len);
/* Frees the allocation as crew__arena_free does but keeps its pages, even
 * a big run's. Returns 1 when the run was big (its pages are for the
 * caller to give back later with crew__arena_return), else 0. */
int crew__arena_free_keep(const crew__arena *a, int64_t off, size_t len);
/* Gives back to the system the pages of the chunks of [off, off+len) that
 * are free now (a chunk in use again keeps its pages: they are someone's),
 * claiming them a slice at a time so that no allocation takes one while its
 * pages go. Returns 1 when it gave back the whole run, else 0 (a run not
 * inside the arena: nothing touched). */
int crew__arena_return(const crew__arena *a, int64_t off, size_t len);

/* Whether [off, off+len) is a run of whole chunks' worth inside the arena's
 * data: what an offset read from shared memory must pass before use. */
static inline int crew__arena_holds(const crew__arena *a, uint64_t off, uint64_t len)
{
    uint64_t hi = a->data_off + a->nwords * 64 * CREW__CHUNK;
    return len > 0 && off >= a->data_off && off < hi && (off - a->data_off) % CREW__CHUNK == 0 &&
           len <= hi - off;
}

/* Chunks a run of len bytes takes (at least one), without overflow. */
static inline uint64_t crew__arena_chunks(uint64_t len)
{
    uint64_t n = len / CREW__CHUNK + (len % CREW__CHUNK != 0);
    return n ? n : 1;
}

/* Whether [off, off+len) is a run this allocator can hand out: inside the
 * arena (crew__arena_holds, over whole chunks), and either within one
 * bitmap word (64 chunks or fewer) or starting on a word (more). Freeing
 * any other run would clear bits of chunks that are not its own: what an
 * answer's run must pass before the parent keeps or frees it. */
static inline int crew__arena_is_run(const crew__arena *a, uint64_t off, uint64_t len)
{
    if (!crew__arena_holds(a, off, len)) /* first: len is bounded from here on */
        return 0;
    uint64_t n = crew__arena_chunks(len);
    if (!crew__arena_holds(a, off, n * CREW__CHUNK))
        return 0;
    uint64_t c = (off - a->data_off) / CREW__CHUNK;
    return n <= 64 ? c % 64 + n <= 64 : c % 64 == 0;
}

/* Address of offset off. */
static inline void *crew__arena_ptr(const crew__arena *a, int64_t off)
{
    return (char *)a->ctl + off;
}

#endif
