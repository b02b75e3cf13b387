/* test_shared_queue.c — crew_queue across processes: order, limits, many producers/consumers, a producer killed mid-put, peers gone. */
#include "test.h"
#include "helpers.h"
#include "shared_helpers.h"

#include <errno.h>
#include <pthread.h>
#include <sys/uio.h>

static crew_queue *g_q;

TEST(queue_fifo_sizes_and_errors)
{
    crew_queue *q;
    CHECK_OK(crew_queue_create(&q, 0, 4096));
    unsigned char buf[4096], out[4096];
    size_t len;
    CHECK_EQ_INT(crew_queue_get(q, out, sizeof out, &len, 0), -EAGAIN);
    for (uint32_t i = 0; i < 20; i++) {
        sh_fill(buf, i * 7, i);
        CHECK_OK(crew_queue_put(q, buf, i * 7, 0));
    }
    CHECK_EQ_SZ(crew_queue_size(q), 20);
    CHECK_EQ_INT(crew_queue_get(q, out, 0, &len, 0), 0); /* the empty message */
    CHECK_EQ_SZ(len, 0);
    CHECK_EQ_INT(crew_queue_get(q, out, 3, &len, 0), -EMSGSIZE);
    CHECK_EQ_SZ(len, 7);
    for (uint32_t i = 1; i < 20; i++) {
        CHECK_OK(crew_queue_get(q, out, sizeof out, &len, 0));
        CHECK_EQ_SZ(len, i * 7);
        CHECK(sh_check(out, len, i));
    }
    CHECK_EQ_INT(crew_queue_put(q, buf, 4096 / 2, 0), CREW_ETOOBIG);
    /* fill up: -EAGAIN, then wrap around many times */
    int n = 0;
    while (crew_queue_put(q, buf, 100, 0) == 0)
        n++;
    CHECK(n >= 30 && n <= 40);
    CHECK_EQ_INT(crew_queue_put(q, buf, 100, 0.02), -EAGAIN);
    while (crew_queue_get(q, out, sizeof out, &len, 0) == 0)
        ;
    for (uint32_t i = 0; i < 2000; i++) { /* wrap around many times */
        sh_fill(buf, 1 + i % 300, i);
        CHECK_OK(crew_queue_put(q, buf, 1 + i % 300, 0));
        CHECK_OK(crew_queue_put(q, buf, 1 + i % 300, 0));
        void *p;
        CHECK_OK(crew_queue_get_alloc(q, &p, &len, 0));
        CHECK(len == 1 + i % 300 && sh_check(p, len, i));
        free(p);
        CHECK_OK(crew_queue_get(q, out, sizeof out, &len, 0));
        CHECK(len == 1 + i % 300 && sh_check(out, len, i));
    }
    crew_queue_free(q);
    /* item limit */
    CHECK_OK(crew_queue_create(&q, 2, 0));
    CHECK_OK(crew_queue_put(q, "a", 1, 0));
    CHECK_OK(crew_queue_put(q, "b", 1, 0));
    CHECK_EQ_INT(crew_queue_put(q, "c", 1, 0), -EAGAIN);
    crew_queue_free(q);
}

TEST(queue_putv_put_many_get_many)
{
    crew_queue *q;
    CHECK_OK(crew_queue_create(&q, 0, 1 << 16));
    struct iovec iov[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
    CHECK_OK(crew_queue_putv(q, iov, 3, 0));
    const void *d[5] = {"1", "22", "333", "4444", "55555"};
    size_t l[5] = {1, 2, 3, 4, 5};
    CHECK_EQ_INT(crew_queue_put_many(q, 5, d, l, 0), 5);
    char buf[64];
    size_t lens[8];
    CHECK_EQ_INT(crew_queue_get_many(q, 8, buf, 9, lens, 0), 3); /* 5+1+2 fit in 9 */
    CHECK(!memcmp(buf, "abcde122", 8));
    CHECK_EQ_INT(crew_queue_get_many(q, 8, buf, sizeof buf, lens, 0), 3);
    CHECK(!memcmp(buf, "333444455555", 12));
    CHECK_EQ_SZ(lens[2], 5);
    crew_queue_free(q);
}

/* ------------------------------------------------- many producers/consumers */

#define PER 20000

static int producer(void *arg)
{
    uint32_t base = (uint32_t)(uintptr_t)arg;
    unsigned char buf[256];
    for (uint32_t i = 0; i < PER; i++) {
        uint32_t id = base + i;
        size_t len = 4 + id % 200;
        sh_fill(buf, len, id);
        memcpy(buf, &id, 4);
        if (crew_queue_put(g_q, buf, len, 10))
            return 2;
    }
    return 0;
}

static crew_array *g_sums;

static int consumer(void *arg)
{
    long n = PER, who = (long)arg;
    unsigned char buf[256];
    size_t len;
    uint64_t sum = 0;
    for (long i = 0; i < n; i++) {
        if (crew_queue_get(g_q, buf, sizeof buf, &len, 10))
            return 2;
        uint32_t id;
        memcpy(&id, buf, 4);
        if (len != 4 + id % 200)
            return 3;
        unsigned char ref[256];
        sh_fill(ref, len, id);
        if (memcmp(ref + 4, buf + 4, len - 4))
            return 4;
        sum += id;
    }
    ((uint64_t *)crew_array_data(g_sums))[who] = sum;
    return 0;
}

TEST(queue_two_producers_two_consumers)
{
    CHECK_OK(crew_queue_create(&g_q, 0, 1 << 14));
    CHECK_OK(crew_array_create(&g_sums, 2 * sizeof(uint64_t), "u64[2]"));
    pid_t p1 = sh_fork(producer, (void *)(uintptr_t)0);
    pid_t p2 = sh_fork(producer, (void *)(uintptr_t)1000000);
    pid_t c1 = sh_fork(consumer, (void *)0L);
    pid_t c2 = sh_fork(consumer, (void *)1L);
    CHECK_EQ_INT(sh_join(p1), 0);
    CHECK_EQ_INT(sh_join(p2), 0);
    CHECK_EQ_INT(sh_join(c1), 0);
    CHECK_EQ_INT(sh_join(c2), 0);
    uint64_t *sums = crew_array_data(g_sums), total = sums[0] + sums[1];
    crew_array_free(g_sums);
    uint64_t want = 0;
    for (uint64_t i = 0; i < PER; i++)
        want += i + (1000000 + i);
    CHECK_EQ_INT(total, want);
    CHECK_EQ_SZ(crew_queue_size(g_q), 0);
    crew_queue_free(g_q);
}

/* ------------------------------------------------------ death and closing */

static int producer_killed(void *arg)
{
    (void)arg;
    unsigned char buf[64];
    sh_kill_at("queue.put.written", 11); /* dies inside its 11th put */
    for (uint32_t i = 0; i < 100; i++) {
        sh_fill(buf, sizeof buf, i);
        if (crew_queue_put(g_q, buf, sizeof buf, 10))
            return 2;
    }
    return 0;
}

TEST(queue_producer_killed_mid_put_leaves_whole_messages)
{
    CHECK_OK(crew_queue_create(&g_q, 0, 1 << 14));
    CHECK_EQ_INT(sh_join(sh_fork(producer_killed, NULL)), 128 + SIGKILL);
    /* the queue's lock was held by the dead producer: the next caller repairs */
    CHECK_EQ_SZ(crew_queue_size(g_q), 10);
    unsigned char buf[64];
    size_t len;
    for (uint32_t i = 0; i < 10; i++) {
        CHECK_OK(crew_queue_get(g_q, buf, sizeof buf, &len, 0));
        CHECK(len == 64 && sh_check(buf, len, i));
    }
    CHECK_EQ_INT(crew_queue_get(g_q, buf, sizeof buf, &len, 0), -EAGAIN);
    CHECK_OK(crew_queue_put(g_q, "x", 1, 0)); /* still usable */
    CHECK_OK(crew_queue_get(g_q, buf, sizeof buf, &len, 0));
    crew_queue_free(g_q);
}

static int open_and_leave(void *arg)
{
    crew_queue *q;
    if (crew_queue_open(&q, arg))
        return 2;
    test_sleep_us(50000);
    return 0; /* exits holding it */
}

TEST(queue_get_reports_a_gone_peer_not_a_hang)
{
    crew_queue *q;
    CHECK_OK(crew_queue_create(&q, 0, 0));
    crew_shared_ref ref;
    CHECK_OK(crew_queue_ref(q, &ref));
    pid_t c = sh_fork(open_and_leave, &ref);
    CHECK_EQ_INT(sh_join(c), 0);
    char buf[8];
    size_t len;
    uint64_t t0 = test_now_ns();
    CHECK_EQ_INT(crew_queue_get(q, buf, sizeof buf, &len, 5), -EPIPE);
    CHECK(test_now_ns() - t0 < 1000000000u);
    crew_queue_free(q);
}

static int close_later(void *arg)
{
    (void)arg;
    test_sleep_us(50000);
    return crew_queue_close(g_q) ? 2 : 0;
}

TEST(queue_close_wakes_getters_and_drains)
{
    CHECK_OK(crew_queue_create(&g_q, 0, 0));
    pid_t c = sh_fork(close_later, NULL);
    char buf[8];
    size_t len;
    CHECK_EQ_INT(crew_queue_get(g_q, buf, sizeof buf, &len, 10), -EPIPE);
    CHECK_EQ_INT(sh_join(c), 0);
    CHECK_EQ_INT(crew_queue_put(g_q, "x", 1, 0), CREW_ECLOSED);
    crew_queue_free(g_q);
    CHECK_OK(crew_queue_create(&g_q, 0, 0));
    CHECK_OK(crew_queue_put(g_q, "x", 1, 0));
    CHECK_OK(crew_queue_close(g_q));
    CHECK_OK(crew_queue_get(g_q, buf, sizeof buf, &len, 0));
    CHECK_EQ_INT(crew_queue_get(g_q, buf, sizeof buf, &len, -1), -EPIPE);
    crew_queue_free(g_q);
}

/* ------------------------------------------------------ threads (TSan) */

static void *thread_prod(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < 5000; i++)
        crew_queue_put(g_q, &i, sizeof i, -1);
    return NULL;
}

TEST(queue_threads_mpmc)
{
    CHECK_OK(crew_queue_create(&g_q, 64, 0));
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, thread_prod, NULL);
    uint64_t sum = 0;
    for (int i = 0; i < 10000; i++) {
        uint32_t v;
        size_t len;
        CHECK_OK(crew_queue_get(g_q, &v, sizeof v, &len, 10));
        sum += v;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(sum, 2ull * 4999 * 5000 / 2);
    crew_queue_free(g_q);
}

TEST_MAIN()
