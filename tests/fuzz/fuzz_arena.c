/* fuzz_arena.c — libFuzzer target: the arena's shared bitmap as forged bytes, and the arena offsets the parent accepts from answers and frees. */
/*
 * The words a worker writes in the arena's control block (its bitmap, the
 * `low` hint, the `used` count) come from the input; so do the answers'
 * (offset, length) pairs, which the parent frees when it accepts them by the
 * rule crew__bad_answer applies (inside the parent's own copy of the
 * arena's bounds, on a chunk boundary). The parent's own allocations must
 * then always lie inside the arena, whatever the bitmap said, and nothing
 * the parent does may touch memory outside the control block (ASan).
 *
 * Input: [u64 low][u64 bits[NW]] then operations of 3 bytes [op][u16 arg]:
 *   0 alloc arg*37 bytes   1 free the arg-th live allocation
 *   2 set bitmap word arg%NW to a pattern   3 free a forged answer at
 *   chunk arg%NCHUNK of arg%5+... bytes, if the parent's check accepts it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/arena.h"

#define NW 4
#define NCHUNK (NW * 64)
#define DATA_OFF 4096u
#define MAXLIVE 64

static crew__arena g_arena;
static crew__arena_ctl *g_ctl;

/* The parent's rule for an arena answer (crew__bad_answer): accepted? */
static int parent_accepts(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
    return len != 0 && off >= lo && off < hi && (off - lo) % CREW__CHUNK == 0 && len <= hi - off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ctl) {
        g_ctl = calloc(1, crew__arena_ctl_bytes(NCHUNK)); /* exactly the control block */
        if (!g_ctl)
            abort();
    }
    crew__arena *a = &g_arena;
    crew__arena_init(a, g_ctl, NCHUNK, DATA_OFF);
    const uint64_t lo = DATA_OFF, hi = DATA_OFF + (uint64_t)NCHUNK * CREW__CHUNK;
    if (size < 8 * (1 + NW))
        return 0;
    uint64_t low;
    memcpy(&low, data, 8);
    atomic_store(&g_ctl->low, low);
    g_ctl->nwords = low * 31;          /* the shared copies of the geometry: */
    g_ctl->data_off = low >> 7;        /* anything, never read by the allocator */
    for (int w = 0; w < NW; w++) {
        uint64_t v;
        memcpy(&v, data + 8 + 8 * w, 8);
        atomic_store(&g_ctl->bits[w], v);
    }
    data += 8 * (1 + NW);
    size -= 8 * (1 + NW);

    int64_t live_off[MAXLIVE];
    size_t live_len[MAXLIVE];
    int nlive = 0;
    for (; size >= 3; data += 3, size -= 3) {
        unsigned op = data[0] & 3;
        uint16_t arg;
        memcpy(&arg, data + 1, 2);
        if (op == 0 && nlive < MAXLIVE) {
            size_t len = (size_t)arg * 37;
            int64_t off = crew__arena_alloc(a, len);
            if (off >= 0) {
                uint64_t n = len ? len : 1;
                if ((uint64_t)off < lo || (uint64_t)off + n > hi ||
                    ((uint64_t)off - lo) % CREW__CHUNK)
                    abort(); /* the parent would write outside its arena */
                live_off[nlive] = off;
                live_len[nlive++] = len;
            }
        } else if (op == 1 && nlive) {
            int k = arg % nlive;
            crew__arena_free(a, live_off[k], live_len[k]);
            live_off[k] = live_off[--nlive];
            live_len[k] = live_len[nlive];
        } else if (op == 2) {
            uint64_t v = (uint64_t)arg * 0x0001000100010001ull;
            atomic_store(&g_ctl->bits[arg % NW], v);
        } else if (op == 3) {
            uint64_t off = lo + (uint64_t)(arg % (NCHUNK + 2)) * CREW__CHUNK - (arg & 0x8000 ? 1 : 0);
            uint64_t len = (uint64_t)(arg >> 7) * 997;
            if (parent_accepts(off, len, lo, hi) != crew__arena_holds(a, off, len))
                abort(); /* the arena's own check is the parent's rule */
            crew__arena_free(a, (int64_t)off, len); /* ignored when outside */
        }
    }
    return 0;
}
