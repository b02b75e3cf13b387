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
 */
typedef struct crew__arena {
    uint64_t nwords;            /* words in bits[]                        */
    uint64_t data_off;          /* offset of chunk 0 from the arena base  */
    _Atomic uint64_t low;       /* first word that may have free chunks   */
    _Atomic uint64_t used;      /* chunks in use (statistics)             */
    _Atomic uint64_t bits[];
} crew__arena;

/* Bytes of control block for an arena of `chunks` chunks. */
size_t crew__arena_ctl_bytes(uint64_t chunks);

/* Initialises the control block; chunks must be a multiple of 64. */
void crew__arena_init(crew__arena *a, uint64_t chunks, uint64_t data_off);

/* Allocates len bytes (> 0). Returns the byte offset from the arena base
 * (the address of *a), or -1 when no run of free chunks is long enough. */
int64_t crew__arena_alloc(crew__arena *a, size_t len);

/* Frees the allocation of len bytes at off (the values alloc gave). */
void crew__arena_free(crew__arena *a, int64_t off, size_t len);

/* Address of offset off. */
static inline void *crew__arena_ptr(crew__arena *a, int64_t off)
{
    return (char *)a + off;
}

#endif
