/* test_ring.c — the SPSC message ring: order, full/empty, wrap-around and a two-thread stress. */
#include "test.h"
#include "helpers.h"

#include <pthread.h>

#include "transport/ring.h"

static crew__ring *ring_new(uint32_t cap)
{
    crew__ring *r = aligned_alloc(64, (crew__ring_bytes(cap) + 63) / 64 * 64);
    if (r)
        crew__ring_init(r, cap);
    return r;
}

static crew__msg msg_of(uint64_t v)
{
    crew__msg m;
    memset(&m, 0, sizeof m);
    m.tag = v;
    m.len = v * 3;
    m.data[0] = (uint8_t)v;
    m.data[CREW__INLINE - 1] = (uint8_t)(v >> 8);
    return m;
}

static int msg_is(const crew__msg *m, uint64_t v)
{
    return m->tag == v && m->len == v * 3 && m->data[0] == (uint8_t)v &&
           m->data[CREW__INLINE - 1] == (uint8_t)(v >> 8);
}

TEST(ring_bytes_cover_messages)
{
    CHECK(crew__ring_bytes(8) >= sizeof(crew__ring) + 8 * sizeof(crew__msg));
    CHECK_EQ_SZ(sizeof(crew__msg), 128);
}

TEST(ring_push_pop_in_order)
{
    crew__ring *r = ring_new(8);
    CHECK(r);
    crew__msg m;
    CHECK(!crew__ring_pop(r, &m));
    for (uint64_t i = 1; i <= 5; i++) {
        crew__msg in = msg_of(i);
        CHECK(crew__ring_push(r, &in));
    }
    CHECK_EQ_INT(crew__ring_count(r), 5);
    for (uint64_t i = 1; i <= 5; i++) {
        CHECK(crew__ring_pop(r, &m));
        CHECK(msg_is(&m, i));
    }
    CHECK_EQ_INT(crew__ring_count(r), 0);
    CHECK(!crew__ring_pop(r, &m));
    free(r);
}

TEST(ring_full_and_empty)
{
    crew__ring *r = ring_new(4);
    CHECK(r);
    crew__msg m = msg_of(7);
    for (int i = 0; i < 4; i++)
        CHECK(crew__ring_push(r, &m));
    CHECK_EQ_INT(crew__ring_count(r), 4);
    CHECK(!crew__ring_push(r, &m)); /* full */
    CHECK_EQ_INT(crew__ring_count(r), 4);
    crew__msg out;
    CHECK(crew__ring_pop(r, &out));
    CHECK(crew__ring_push(r, &m)); /* one slot free again */
    CHECK(!crew__ring_push(r, &m));
    for (int i = 0; i < 4; i++)
        CHECK(crew__ring_pop(r, &out));
    CHECK(!crew__ring_pop(r, &out)); /* empty */
    free(r);
}

TEST(ring_wraps_around)
{
    crew__ring *r = ring_new(4);
    CHECK(r);
    uint64_t next_in = 1, next_out = 1;
    /* indices run far past cap: every slot is reused many times */
    for (int round = 0; round < 1000; round++) {
        int k = 1 + round % 4;
        for (int i = 0; i < k; i++) {
            crew__msg m = msg_of(next_in++);
            CHECK(crew__ring_push(r, &m));
        }
        for (int i = 0; i < k; i++) {
            crew__msg m;
            CHECK(crew__ring_pop(r, &m));
            CHECK(msg_is(&m, next_out));
            next_out++;
        }
    }
    CHECK(atomic_load(&r->tail) > 1000);
    CHECK_EQ_INT(crew__ring_count(r), 0);
    free(r);
}

TEST(ring_reinit_empties)
{
    crew__ring *r = ring_new(8);
    CHECK(r);
    crew__msg m = msg_of(1);
    CHECK(crew__ring_push(r, &m));
    crew__ring_init(r, 8);
    CHECK_EQ_INT(crew__ring_count(r), 0);
    CHECK(!crew__ring_pop(r, &m));
    free(r);
}

/* -------------------------------------------------- two-thread SPSC stress -- */

struct spsc {
    crew__ring *r;
    uint64_t n;
    uint64_t bad; /* consumer: first out-of-order value + 1, 0 if none */
};

static void *producer(void *arg)
{
    struct spsc *s = arg;
    for (uint64_t i = 1; i <= s->n; i++) {
        crew__msg m = msg_of(i);
        while (!crew__ring_push(s->r, &m))
            sched_yield();
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct spsc *s = arg;
    for (uint64_t i = 1; i <= s->n; i++) {
        crew__msg m;
        while (!crew__ring_pop(s->r, &m))
            sched_yield();
        if (!msg_is(&m, i) && !s->bad)
            s->bad = i;
    }
    return NULL;
}

TEST(ring_spsc_two_threads_keep_order)
{
    struct spsc s = {.r = ring_new(256), .n = 1000000};
    CHECK(s.r);
    pthread_t a, b;
    CHECK_OK(pthread_create(&b, NULL, consumer, &s));
    CHECK_OK(pthread_create(&a, NULL, producer, &s));
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_EQ_INT(s.bad, 0);
    CHECK_EQ_INT(crew__ring_count(s.r), 0);
    CHECK_EQ_INT(atomic_load(&s.r->head), s.n);
    free(s.r);
}

TEST_MAIN()
