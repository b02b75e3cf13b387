/* arena.c — bitmap chunk allocation with compare-and-swap: runs within a word, or whole words. */
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "transport/arena.h"

#include <stdbool.h>

size_t crew__arena_ctl_bytes(uint64_t chunks)
{
    return sizeof(crew__arena_ctl) + (chunks / 64) * sizeof(uint64_t);
}

void crew__arena_attach(crew__arena *a, crew__arena_ctl *ctl, uint64_t nwords, uint64_t data_off)
{
    a->ctl = ctl;
    a->nwords = nwords;
    a->data_off = data_off;
}

void crew__arena_init(crew__arena *a, crew__arena_ctl *ctl, uint64_t chunks, uint64_t data_off)
{
    crew__arena_attach(a, ctl, chunks / 64, data_off);
    ctl->nwords = chunks / 64;
    ctl->data_off = data_off;
    atomic_init(&ctl->low, 0);
    atomic_init(&ctl->used, 0);
    atomic_init(&ctl->returning, 0);
    for (uint64_t i = 0; i < a->nwords; i++) /* skip pages that are zero already */
        if (atomic_load_explicit(&ctl->bits[i], memory_order_relaxed))
            atomic_store_explicit(&ctl->bits[i], 0, memory_order_relaxed);
}

/* Bit mask of n (1..64) low bits. */
static inline uint64_t low_bits(unsigned n)
{
    return n >= 64 ? ~0ull : ((1ull << n) - 1);
}

/* Positions p where bits p..p+n-1 of free are all set, as a mask. */
static uint64_t runs_of(uint64_t free, unsigned n)
{
    uint64_t r = free;
    unsigned have = 1;
    while (have < n && r) {
        unsigned s = have < n - have ? have : n - have;
        r &= r >> s;
        have += s;
    }
    return r;
}

static void lower_hint(const crew__arena *a, uint64_t w)
{
    uint64_t cur = atomic_load_explicit(&a->ctl->low, memory_order_relaxed);
    while (w < cur && !atomic_compare_exchange_weak(&a->ctl->low, &cur, w))
        ;
}

/* Claims n <= 64 chunks inside one word, searching from word `start`.
 * Returns the chunk index or -1. Moves the `low` hint past full words. */
static int64_t alloc_small(const crew__arena *a, unsigned n, uint64_t start)
{
    uint64_t first_open = a->nwords;
    int64_t got = -1;
    for (uint64_t w = start; w < a->nwords && got < 0; w++) {
        uint64_t v = atomic_load_explicit(&a->ctl->bits[w], memory_order_relaxed);
        for (;;) {
            if (v != ~0ull && first_open == a->nwords)
                first_open = w;
            uint64_t r = runs_of(~v, n);
            if (!r)
                break;
            unsigned p = (unsigned)__builtin_ctzll(r);
            uint64_t m = low_bits(n) << p;
            if (atomic_compare_exchange_weak_explicit(&a->ctl->bits[w], &v, v | m,
                                                      memory_order_acquire,
                                                      memory_order_relaxed)) {
                got = (int64_t)(w * 64 + p);
                break;
            }
        }
    }
    if (first_open > start) {
        uint64_t cur = start; /* a hint only: a racing free may lower it again */
        atomic_compare_exchange_strong(&a->ctl->low, &cur, first_open);
    }
    return got;
}

/* Claims ceil(n/64) consecutive words (the last one partly). */
static int64_t alloc_large(const crew__arena *a, uint64_t n, uint64_t start)
{
    uint64_t nw = (n + 63) / 64;
    uint64_t last = low_bits((unsigned)(n - (nw - 1) * 64));
    uint64_t w = start;
    while (nw <= a->nwords && w <= a->nwords - nw) { /* no wrap, whatever start is */
        uint64_t k;
        for (k = 0; k < nw; k++) {
            uint64_t want = k + 1 == nw ? last : ~0ull, zero = 0;
            if (!atomic_compare_exchange_strong_explicit(&a->ctl->bits[w + k], &zero, want,
                                                         memory_order_acquire,
                                                         memory_order_relaxed))
                break;
        }
        if (k == nw)
            return (int64_t)(w * 64);
        for (uint64_t j = 0; j < k; j++) /* roll back what we claimed */
            atomic_store_explicit(&a->ctl->bits[w + j], 0, memory_order_release);
        /* (a partial last word is never claimed before a failure: k < nw) */
        w += k + 1;
    }
    return -1;
}

int64_t crew__arena_alloc(const crew__arena *a, size_t len)
{
    uint64_t n = (len + CREW__CHUNK - 1) / CREW__CHUNK;
    if (n == 0)
        n = 1;
    uint64_t start = atomic_load_explicit(&a->ctl->low, memory_order_relaxed);
    if (start >= a->nwords) /* a hint in shared memory: any process may have written it */
        start = 0;
    int64_t c = n <= 64 ? alloc_small(a, (unsigned)n, start) : alloc_large(a, n, start);
    if (c < 0 && start > 0) /* the hint can run ahead of a racing free: look again */
        c = n <= 64 ? alloc_small(a, (unsigned)n, 0) : alloc_large(a, n, 0);
    if (c < 0)
        return -1;
    atomic_fetch_add_explicit(&a->ctl->used, n, memory_order_relaxed);
    return (int64_t)a->data_off + c * (int64_t)CREW__CHUNK;
}

int64_t crew__arena_alloc_wait(const crew__arena *a, size_t len)
{
    int64_t off = crew__arena_alloc(a, len);
    /* free chunks held for a moment by crew__arena_return (a slice at a
     * time): look again once it lets go. Bounded (100 ms), as the counter
     * lives in shared memory anyone may write */
    for (int k = 0; off < 0 && k < 1000 && atomic_load(&a->ctl->returning); k++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
        off = crew__arena_alloc(a, len);
    }
    return off;
}

/* Gives the whole pages inside [off, off + n chunks) back to the system. A
 * memfd's pages go from every mapping. Only whole pages inside the run: a
 * page may be bigger than a chunk (arm64), and its neighbour's bytes are not
 * ours to drop. */
static void drop_pages(const crew__arena *a, int64_t off, uint64_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)a->ctl + (uintptr_t)off, hi = lo + n * CREW__CHUNK;
    lo = (lo + page - 1) & ~(page - 1);
    hi &= ~(page - 1);
    if (page && hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_REMOVE);
}

/* Whether the run of len bytes at off lies inside the arena, its n chunks
 * included: checked before any bit or page of a run is touched, so that a
 * forged offset never clears, frees or drops anything outside. */
static bool in_arena(const crew__arena *a, int64_t off, size_t len, uint64_t *n)
{
    *n = crew__arena_chunks(len);
    return off >= 0 && crew__arena_holds(a, (uint64_t)off, *n * CREW__CHUNK);
}

#define RETURN_SLICE_WORDS 64 /* 16 MiB claimed at a time: an allocation waits that long at most */

/* Drops the pages of chunks [c, e) (chunk indices). */
static void drop_chunks(const crew__arena *a, uint64_t c, uint64_t e)
{
    drop_pages(a, (int64_t)(a->data_off + c * CREW__CHUNK), e - c);
}

int crew__arena_return(const crew__arena *a, int64_t off, size_t len)
{
    uint64_t n;
    if (!in_arena(a, off, len, &n))
        return 0;
    uint64_t c0 = (uint64_t)(off - (int64_t)a->data_off) / CREW__CHUNK, end = c0 + n;
    uint64_t dropped = 0;
    atomic_fetch_add(&a->ctl->returning, 1); /* before any claim is seen */
    for (uint64_t s = c0; s < end;) {
        uint64_t e = (s / 64 + RETURN_SLICE_WORDS) * 64;
        if (e > end)
            e = end;
        uint64_t w0 = s / 64, w1 = (e - 1) / 64, mine[RETURN_SLICE_WORDS];
        /* claim the free chunks of [s, e), as an allocation would: the bits
         * this call sets (mine) were nobody's, and are nobody else's until
         * it clears them again */
        for (uint64_t w = w0; w <= w1; w++) {
            uint64_t lo = w == w0 ? s % 64 : 0, hi = w == w1 ? (e - 1) % 64 + 1 : 64;
            uint64_t m = low_bits((unsigned)(hi - lo)) << lo;
            uint64_t old = atomic_fetch_or_explicit(&a->ctl->bits[w], m, memory_order_acq_rel);
            mine[w - w0] = m & ~old;
        }
        /* drop the pages of each stretch of claimed chunks */
        uint64_t from = UINT64_MAX;
        for (uint64_t k = s; k <= e; k++) {
            bool claimed = k < e && (mine[k / 64 - w0] >> (k % 64) & 1);
            if (claimed && from == UINT64_MAX)
                from = k;
            else if (!claimed && from != UINT64_MAX) {
                drop_chunks(a, from, k);
                dropped += k - from;
                from = UINT64_MAX;
            }
        }
        for (uint64_t w = w0; w <= w1; w++)
            if (mine[w - w0])
                atomic_fetch_and_explicit(&a->ctl->bits[w], ~mine[w - w0], memory_order_release);
        s = e;
    }
    atomic_fetch_sub_explicit(&a->ctl->returning, 1, memory_order_release);
    lower_hint(a, c0 / 64);
    return dropped == n;
}

/* Frees the run's chunks; its pages stay mapped. */
static void free_chunks(const crew__arena *a, int64_t off, uint64_t n)
{
    uint64_t c = (uint64_t)(off - (int64_t)a->data_off) / CREW__CHUNK;
    uint64_t w = c / 64;
    if (n <= 64) {
        uint64_t m = low_bits((unsigned)n) << (c % 64);
        atomic_fetch_and_explicit(&a->ctl->bits[w], ~m, memory_order_release);
    } else {
        uint64_t nw = (n + 63) / 64;
        for (uint64_t k = 0; k + 1 < nw; k++)
            atomic_store_explicit(&a->ctl->bits[w + k], 0, memory_order_release);
        /* the last word may be shared with small allocations: clear ours only */
        uint64_t last = low_bits((unsigned)(n - (nw - 1) * 64));
        atomic_fetch_and_explicit(&a->ctl->bits[w + nw - 1], ~last, memory_order_release);
    }
    atomic_fetch_sub_explicit(&a->ctl->used, n, memory_order_relaxed);
    lower_hint(a, w);
}

void crew__arena_free(const crew__arena *a, int64_t off, size_t len)
{
    uint64_t n;
    if (!in_arena(a, off, len, &n))
        return;
    if (n * CREW__CHUNK >= CREW__ARENA_BIG_BYTES)
        drop_pages(a, off, n); /* before the chunks are free: no new owner's bytes yet */
    free_chunks(a, off, n);
}

int crew__arena_free_keep(const crew__arena *a, int64_t off, size_t len)
{
    uint64_t n;
    if (!in_arena(a, off, len, &n))
        return 0;
    free_chunks(a, off, n);
    return n * CREW__CHUNK >= CREW__ARENA_BIG_BYTES;
}
