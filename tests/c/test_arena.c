/* test_arena.c — the lock-free chunk arena: sizes, exhaustion, first-fit reuse, no overlap, threads. */
#include "test.h"
#include "helpers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "transport/arena.h"

#define K CREW__CHUNK
#define DATA_OFF 4096u /* offset of chunk 0 from the control block, as in shm.c */

/* An arena of `chunks` chunks on malloc'd memory: control block, then data. */
static crew__arena *arena_new(uint64_t chunks)
{
    if (crew__arena_ctl_bytes(chunks) > DATA_OFF)
        return NULL;
    crew__arena *a = malloc(sizeof *a);
    crew__arena_ctl *ctl = aligned_alloc(4096, DATA_OFF + chunks * K);
    if (!a || !ctl) {
        free(a);
        free(ctl);
        return NULL;
    }
    memset(ctl, 0, DATA_OFF); /* as a fresh memfd's pages are */
    crew__arena_init(a, ctl, chunks, DATA_OFF);
    return a;
}

static void arena_del(crew__arena *a)
{
    free(a->ctl);
    free(a);
}

static int64_t chunk_of(int64_t off)
{
    return (off - (int64_t)DATA_OFF) / K;
}

static bool all_free(crew__arena *a)
{
    for (uint64_t w = 0; w < a->nwords; w++)
        if (atomic_load(&a->ctl->bits[w]))
            return false;
    return atomic_load(&a->ctl->used) == 0;
}

TEST(arena_ctl_bytes_grow_with_chunks)
{
    CHECK(crew__arena_ctl_bytes(64) >= sizeof(crew__arena_ctl) + 8);
    CHECK_EQ_SZ(crew__arena_ctl_bytes(128) - crew__arena_ctl_bytes(64), 8);
}

TEST(arena_small_allocs_are_chunk_granular)
{
    crew__arena *a = arena_new(256);
    CHECK(a);
    int64_t x = crew__arena_alloc(a, 1);
    int64_t y = crew__arena_alloc(a, K);
    int64_t z = crew__arena_alloc(a, K + 1); /* two chunks */
    int64_t w = crew__arena_alloc(a, 1);
    CHECK_EQ_INT(x, DATA_OFF);
    CHECK_EQ_INT(y, DATA_OFF + K);
    CHECK_EQ_INT(z, DATA_OFF + 2 * K);
    CHECK_EQ_INT(w, DATA_OFF + 4 * K);
    CHECK_EQ_INT(atomic_load(&a->ctl->used), 5);
    CHECK((char *)crew__arena_ptr(a, x) == (char *)a->ctl + DATA_OFF);
    crew__arena_free(a, x, 1);
    crew__arena_free(a, y, K);
    crew__arena_free(a, z, K + 1);
    crew__arena_free(a, w, 1);
    CHECK(all_free(a));
    arena_del(a);
}

TEST(arena_64_chunks_fill_one_word)
{
    crew__arena *a = arena_new(128);
    CHECK(a);
    int64_t s = crew__arena_alloc(a, 1);
    int64_t x = crew__arena_alloc(a, 64 * K); /* does not fit beside s: next word */
    CHECK_EQ_INT(chunk_of(s), 0);
    CHECK_EQ_INT(chunk_of(x), 64);
    CHECK_EQ_INT(atomic_load(&a->ctl->bits[1]), ~0ull);
    CHECK_EQ_INT(crew__arena_alloc(a, 64 * K), -1);
    crew__arena_free(a, x, 64 * K);
    crew__arena_free(a, s, 1);
    CHECK(all_free(a));
    arena_del(a);
}

TEST(arena_large_allocs_take_whole_words)
{
    crew__arena *a = arena_new(512);
    CHECK(a);
    int64_t s = crew__arena_alloc(a, 100);          /* word 0 is now partly used */
    int64_t big = crew__arena_alloc(a, 65 * K);     /* words 1 and 2 (one bit) */
    CHECK_EQ_INT(chunk_of(s), 0);
    CHECK_EQ_INT(chunk_of(big), 64);
    CHECK_EQ_INT(atomic_load(&a->ctl->bits[2]), 1);
    /* a small allocation may share the large one's last word */
    int64_t t = crew__arena_alloc(a, 63 * K);
    CHECK(t > 0);
    int64_t u = crew__arena_alloc(a, 63 * K);
    CHECK_EQ_INT(chunk_of(u), 129); /* the rest of word 2 */
    crew__arena_free(a, big, 65 * K);
    CHECK_EQ_INT(atomic_load(&a->ctl->bits[1]), 0);
    CHECK_EQ_INT(atomic_load(&a->ctl->bits[2]), ~0ull << 1); /* u's bits stay */
    int64_t huge = crew__arena_alloc(a, 3 * 64 * K);  /* words 3..5 */
    CHECK_EQ_INT(chunk_of(huge), 192);
    crew__arena_free(a, huge, 3 * 64 * K);
    crew__arena_free(a, u, 63 * K);
    crew__arena_free(a, t, 63 * K);
    crew__arena_free(a, s, 100);
    CHECK(all_free(a));
    arena_del(a);
}

TEST(arena_exhaustion_returns_minus_one)
{
    crew__arena *a = arena_new(256);
    CHECK(a);
    int64_t all = crew__arena_alloc(a, 256 * K);
    CHECK_EQ_INT(all, DATA_OFF);
    CHECK_EQ_INT(crew__arena_alloc(a, 1), -1);
    CHECK_EQ_INT(crew__arena_alloc(a, 65 * K), -1);
    CHECK_EQ_INT(crew__arena_alloc(a, 257 * K), -1);
    crew__arena_free(a, all, 256 * K);
    CHECK(all_free(a));
    CHECK_EQ_INT(crew__arena_alloc(a, 257 * K), -1); /* larger than the arena */
    /* fill it with single chunks, one too many fails */
    int64_t offs[256];
    for (int i = 0; i < 256; i++) {
        offs[i] = crew__arena_alloc(a, K);
        CHECK_EQ_INT(chunk_of(offs[i]), i);
    }
    CHECK_EQ_INT(crew__arena_alloc(a, 1), -1);
    crew__arena_free(a, offs[200], K);
    CHECK_EQ_INT(crew__arena_alloc(a, 2 * K), -1); /* one free chunk, no run of two */
    CHECK_EQ_INT(crew__arena_alloc(a, K), offs[200]);
    for (int i = 0; i < 256; i++)
        crew__arena_free(a, offs[i], K);
    CHECK(all_free(a));
    arena_del(a);
}

TEST(arena_first_fit_reuses_freed_space)
{
    crew__arena *a = arena_new(512);
    CHECK(a);
    int64_t x = crew__arena_alloc(a, 3 * K);
    int64_t y = crew__arena_alloc(a, 5 * K);
    int64_t z = crew__arena_alloc(a, 2 * K);
    crew__arena_free(a, y, 5 * K);
    CHECK_EQ_INT(crew__arena_alloc(a, 5 * K), y); /* the same hole comes back */
    crew__arena_free(a, y, 5 * K);
    CHECK_EQ_INT(crew__arena_alloc(a, 4 * K), y); /* a smaller one fits there too */
    crew__arena_free(a, y, 4 * K);
    crew__arena_free(a, x, 3 * K);
    CHECK_EQ_INT(crew__arena_alloc(a, 8 * K), x); /* x and y's holes merged */
    crew__arena_free(a, x, 8 * K);
    crew__arena_free(a, z, 2 * K);
    /* large: freed words come back */
    int64_t b1 = crew__arena_alloc(a, 100 * K), b2 = crew__arena_alloc(a, 100 * K);
    CHECK(b1 > 0 && b2 > 0);
    crew__arena_free(a, b1, 100 * K);
    CHECK_EQ_INT(crew__arena_alloc(a, 70 * K), b1);
    crew__arena_free(a, b1, 70 * K);
    crew__arena_free(a, b2, 100 * K);
    CHECK(all_free(a));
    arena_del(a);
}

/* Marks every chunk of an allocation with `id`; checks the marks later. */
static void mark(crew__arena *a, int64_t off, size_t len, uint64_t id)
{
    for (size_t c = 0; c < (len + K - 1) / K; c++) {
        uint64_t *p = (uint64_t *)((char *)crew__arena_ptr(a, off) + c * K);
        p[0] = id;
        p[K / 8 - 1] = ~id;
    }
}

static bool marked(crew__arena *a, int64_t off, size_t len, uint64_t id)
{
    for (size_t c = 0; c < (len + K - 1) / K; c++) {
        uint64_t *p = (uint64_t *)((char *)crew__arena_ptr(a, off) + c * K);
        if (p[0] != id || p[K / 8 - 1] != ~id)
            return false;
    }
    return true;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

TEST(arena_random_allocs_never_overlap)
{
    crew__arena *a = arena_new(1024);
    CHECK(a);
    enum { LIVE = 64 };
    int64_t off[LIVE];
    size_t len[LIVE];
    uint64_t seed = 88172645463325252ull;
    for (int i = 0; i < LIVE; i++)
        off[i] = -1;
    for (uint64_t step = 1; step <= 20000; step++) {
        int i = (int)(rnd(&seed) % LIVE);
        if (off[i] >= 0) {
            CHECK(marked(a, off[i], len[i], (uint64_t)i << 32 | (uint32_t)off[i]));
            crew__arena_free(a, off[i], len[i]);
            off[i] = -1;
            continue;
        }
        len[i] = rnd(&seed) % 8 == 0 ? (65 + rnd(&seed) % 100) * K : 1 + rnd(&seed) % (20 * K);
        off[i] = crew__arena_alloc(a, len[i]);
        if (off[i] < 0)
            continue; /* fragmented: allowed, the arena is small */
        CHECK(off[i] >= DATA_OFF && off[i] + (int64_t)len[i] <= DATA_OFF + 1024 * (int64_t)K);
        mark(a, off[i], len[i], (uint64_t)i << 32 | (uint32_t)off[i]);
    }
    for (int i = 0; i < LIVE; i++)
        if (off[i] >= 0) {
            CHECK(marked(a, off[i], len[i], (uint64_t)i << 32 | (uint32_t)off[i]));
            crew__arena_free(a, off[i], len[i]);
        }
    CHECK(all_free(a));
    arena_del(a);
}

/* ------------------------------------------------- concurrent alloc/free -- */

#define THREADS 4
#define HOLD 16

struct stress {
    crew__arena *a;
    int id;
    long steps;
    long overlaps, fails, allocs;
};

static void *stress_main(void *arg)
{
    struct stress *s = arg;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(s->id + 1);
    int64_t off[HOLD];
    size_t len[HOLD];
    uint64_t tag[HOLD];
    for (int i = 0; i < HOLD; i++)
        off[i] = -1;
    for (long step = 0; step < s->steps; step++) {
        int i = (int)(rnd(&seed) % HOLD);
        if (off[i] >= 0) {
            if (!marked(s->a, off[i], len[i], tag[i]))
                s->overlaps++;
            crew__arena_free(s->a, off[i], len[i]);
            off[i] = -1;
            continue;
        }
        /* one slot holds large (multi-word) allocations, the others small */
        len[i] = i == 0 ? (65 + rnd(&seed) % 130) * K : 1 + rnd(&seed) % (16 * K);
        off[i] = crew__arena_alloc(s->a, len[i]);
        if (off[i] < 0) {
            s->fails++;
            continue;
        }
        s->allocs++;
        tag[i] = (uint64_t)s->id << 48 | (uint64_t)step;
        mark(s->a, off[i], len[i], tag[i]);
    }
    for (int i = 0; i < HOLD; i++)
        if (off[i] >= 0) {
            if (!marked(s->a, off[i], len[i], tag[i]))
                s->overlaps++;
            crew__arena_free(s->a, off[i], len[i]);
        }
    return NULL;
}

TEST(arena_threads_alloc_and_free_without_overlap)
{
    /* 16 MiB: enough that the live set (at most ~1000 small chunks and
     * 4 large runs) always fits; a failure then is an allocator bug */
    crew__arena *a = arena_new(4096);
    CHECK(a);
    struct stress s[THREADS];
    pthread_t t[THREADS];
    long steps = test_scale(300000, 100000);
    for (int i = 0; i < THREADS; i++) {
        s[i] = (struct stress){.a = a, .id = i + 1, .steps = steps};
        CHECK_OK(pthread_create(&t[i], NULL, stress_main, &s[i]));
    }
    long overlaps = 0, fails = 0, allocs = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        overlaps += s[i].overlaps;
        fails += s[i].fails;
        allocs += s[i].allocs;
    }
    printf("  %ld allocations, %ld failed, %ld overlaps\n", allocs, fails, overlaps);
    CHECK_EQ_INT(overlaps, 0);
    CHECK(allocs > steps);
    /* a racing large allocation may briefly hold words it then rolls back,
     * so a rare failure is allowed; a steady stream is not */
    CHECK(fails * 1000 <= allocs);
    CHECK(all_free(a));
    arena_del(a);
}

/* An arena on a memfd, as a pool's is: MADV_REMOVE really drops its pages
 * (on malloc'd memory it fails, and a page dropped under its owner would go
 * unseen). */
static crew__arena *arena_new_memfd(uint64_t chunks)
{
    crew__arena *a = malloc(sizeof *a);
    int fd = memfd_create("test-arena", 0);
    size_t size = DATA_OFF + chunks * K;
    void *m = MAP_FAILED;
    if (a && fd >= 0 && ftruncate(fd, (off_t)size) == 0)
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED || crew__arena_ctl_bytes(chunks) > DATA_OFF) {
        free(a);
        return NULL;
    }
    crew__arena_init(a, m, chunks, DATA_OFF);
    return a;
}

static void arena_del_memfd(crew__arena *a)
{
    munmap(a->ctl, DATA_OFF + a->nwords * 64 * K);
    free(a);
}

static unsigned char byte_at(crew__arena *a, int64_t off)
{
    return *(volatile unsigned char *)crew__arena_ptr(a, off);
}

/* crew__arena_return gives back the pages of a run's free chunks only: a
 * chunk someone holds again keeps its bits and its bytes; the rest of the
 * span goes back (a small argument placed at its start must not keep a
 * 64 MiB run resident); the span comes back free for the next allocation.
 * free_keep says which runs are big. */
TEST(arena_return_gives_back_free_chunks_only)
{
    enum { CHUNKS = 16384 + 256 }; /* room for one big run (64 MiB) and more */
    crew__arena *a = arena_new_memfd(CHUNKS);
    CHECK(a);
    size_t big = CREW__ARENA_BIG_BYTES, small = 200 * K;
    int64_t r = crew__arena_alloc(a, big);
    CHECK(r >= 0);
    memset(crew__arena_ptr(a, r), 0x11, big);
    CHECK_EQ_INT(crew__arena_free_keep(a, r, big), 1); /* big: for the caller to return */
    CHECK(all_free(a));
    CHECK(byte_at(a, r + (int64_t)big - 1) == 0x11); /* kept its pages */
    /* the run is taken again (first fit: the same place): its bytes stay */
    int64_t again = crew__arena_alloc(a, big);
    CHECK_EQ_INT((int)(again == r), 1);
    memset(crew__arena_ptr(a, again), 0x5a, big);
    CHECK_EQ_INT(crew__arena_return(a, r, big), 0);
    CHECK(byte_at(a, again) == 0x5a && byte_at(a, again + (int64_t)big - 1) == 0x5a);
    int64_t other = crew__arena_alloc(a, small); /* lands after it: its bits held */
    CHECK(other >= r + (int64_t)big);
    crew__arena_free(a, other, small);
    crew__arena_free_keep(a, again, big);
    CHECK(all_free(a));
    /* part of the span taken by a small run: that part stays, the rest goes */
    int64_t s1 = crew__arena_alloc(a, small);
    CHECK_EQ_INT((int)(s1 == r), 1);
    memset(crew__arena_ptr(a, s1), 0x77, small);
    CHECK_EQ_INT(crew__arena_return(a, r, big), 0);
    CHECK(byte_at(a, s1) == 0x77 && byte_at(a, s1 + (int64_t)small - 1) == 0x77);
    CHECK(byte_at(a, r + (int64_t)big - 1) == 0); /* dropped: reads back zero */
    CHECK(crew__arena_alloc(a, CHUNKS * (size_t)K) < 0); /* s1 still held */
    crew__arena_free(a, s1, small);
    CHECK(all_free(a));
    /* a free run: returned, and free again afterwards */
    memset(crew__arena_ptr(a, r), 0x22, big);
    CHECK_EQ_INT(crew__arena_return(a, r, big), 1);
    CHECK(byte_at(a, r) == 0 && byte_at(a, r + (int64_t)big - 1) == 0);
    CHECK(all_free(a));
    int64_t whole = crew__arena_alloc(a, CHUNKS * (size_t)K);
    CHECK_EQ_INT((int)(whole == (int64_t)DATA_OFF), 1);
    crew__arena_free(a, whole, CHUNKS * (size_t)K);
    /* small runs are not big; a forged run outside the arena is refused */
    int64_t s2 = crew__arena_alloc(a, small);
    CHECK_EQ_INT(crew__arena_free_keep(a, s2, small), 0);
    CHECK_EQ_INT(crew__arena_return(a, -4096, big), 0);
    CHECK_EQ_INT(crew__arena_return(a, (int64_t)DATA_OFF + CHUNKS * (int64_t)K, K), 0);
    CHECK(all_free(a));
    arena_del_memfd(a);
}

TEST_MAIN()
