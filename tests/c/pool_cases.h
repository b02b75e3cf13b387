/* pool_cases.h — pool test cases run for both kinds: results, errors, cancel, waits, callbacks, map.
 * Include after defining TEST_KIND; the life-cycle cases follow in pool_cases_life.h. */
#ifndef CREW_TEST_POOL_CASES_H
#define CREW_TEST_POOL_CASES_H

#include "test.h"
#include "pool_tasks.h"

#include <pthread.h>

TEST(cpu_count_is_sane)
{
    int n = crew_cpu_count();
    CHECK(n >= 1);
    CHECK(n <= sysconf(_SC_NPROCESSORS_ONLN));
}

TEST(create_rejects_bad_options)
{
    crew_pool *p = NULL;
    crew_options o = pool_opts(-1);
    CHECK_EQ_INT(crew_pool_create(&p, &o), -EINVAL);
    o = pool_opts(1);
    o.initializer = "no such task";
    CHECK_EQ_INT(crew_pool_create(&p, &o), CREW_ENOTASK);
    CHECK(p == NULL);
}

TEST(echo_small_payloads_inline)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    CHECK_EQ_INT(crew_pool_workers(p), 2);
    const size_t sizes[] = {0, 1, 7, 87, 88, 89, 200};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int alloc = 0; alloc < 2; alloc++) {
            unsigned char in[200];
            for (size_t i = 0; i < sizes[k]; i++)
                in[i] = (unsigned char)(i * 7 + k + (size_t)alloc);
            crew_future *f;
            CHECK_OK(crew_submit(p, alloc ? "echo_alloc" : "echo", in, sizes[k], &f));
            const void *d;
            size_t n;
            CHECK_OK(crew_future_result(f, &d, &n));
            CHECK_EQ_SZ(n, sizes[k]);
            CHECK(n == 0 || memcmp(d, in, n) == 0);
            CHECK_EQ_INT(crew_future_status(f), 0);
            CHECK(strcmp(crew_future_error(f), "") == 0);
            crew_future_release(f);
        }
    }
    crew_pool_free(p);
}

TEST(echo_large_payloads_through_arena)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    const size_t sizes[] = {4096, 100000, 1u << 20, 5u << 20};
    crew_future *f[8];
    unsigned char *in[4];
    for (int k = 0; k < 4; k++) {
        in[k] = malloc(sizes[k]);
        CHECK(in[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            in[k][i] = (unsigned char)((i * 31) ^ (i >> 9) ^ (size_t)k);
        CHECK_OK(crew_submit(p, "echo", in[k], sizes[k], &f[k]));
        CHECK_OK(crew_submit(p, "echo_alloc", in[k], sizes[k], &f[4 + k]));
    }
    for (int k = 0; k < 8; k++) {
        const void *d;
        size_t n;
        CHECK_OK(crew_future_result(f[k], &d, &n));
        CHECK_EQ_SZ(n, sizes[k % 4]);
        CHECK(memcmp(d, in[k % 4], n) == 0);
        crew_future_release(f[k]);
    }
    for (int k = 0; k < 4; k++)
        free(in[k]);
    crew_pool_free(p);
}

TEST(payload_larger_than_arena_is_too_big)
{
    crew_options o = pool_opts(1);
    o.arena_size = 1u << 20;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    size_t big = 2u << 20;
    char *buf = calloc(1, big);
    CHECK(buf);
    crew_future *f = NULL;
    CHECK_EQ_INT(crew_submit(p, "echo", buf, big, &f), CREW_ETOOBIG);
    free(buf);
    CHECK_OK(submit_int(p, "add1", 1, &f)); /* still usable */
    CHECK_EQ_INT(result_int(f), 2);
    crew_future_release(f);
    crew_pool_free(p);
}

TEST(many_futures_all_resolve)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    int n = (int)test_scale(20000, 5000);
    crew_future **fs = calloc((size_t)n, sizeof *fs);
    CHECK(fs);
    for (int i = 0; i < n; i++)
        CHECK_OK(submit_int(p, "add1", i, &fs[i]));
    CHECK_OK(crew_wait_all(fs, (size_t)n, 60));
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (result_int(fs[i]) != i + 1)
            bad++;
        crew_future_release(fs[i]);
    }
    free(fs);
    CHECK_EQ_INT(bad, 0);
    crew_pool_free(p);
}

TEST(task_errors_carry_their_message)
{
    crew_options o = pool_opts(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *f, *g;
    CHECK_OK(submit_int(p, "fail", 42, &f));
    CHECK_OK(crew_submit(p, "fail_eio", NULL, 0, &g));
    const void *d;
    size_t n;
    CHECK_EQ_INT(crew_future_result(f, &d, &n), CREW_ETASK);
    CHECK(n == strlen("bad input 42") + 1);
    CHECK(strcmp(d, "bad input 42") == 0);
    CHECK_EQ_INT(crew_future_status(f), CREW_ETASK);
    CHECK(strcmp(crew_future_error(f), "bad input 42") == 0);
    CHECK_EQ_INT(crew_future_result(g, NULL, NULL), -EIO);
    CHECK(strlen(crew_future_error(g)) > 0);
    crew_future_release(f);
    crew_future_release(g);
    crew_pool_free(p);
}

TEST(unknown_task_fails_at_submit)
{
    crew_options o = pool_opts(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *f = NULL;
    CHECK_EQ_INT(crew_submit(p, "no such task", "x", 1, &f), CREW_ENOTASK);
    CHECK(f == NULL);
    crew_batch *b = NULL;
    CHECK_EQ_INT(crew_map(p, "no such task", 0, NULL, NULL, 0, &b), CREW_ENOTASK);
    CHECK(strlen(crew_strerror(CREW_ENOTASK)) > 0);
    crew_pool_free(p);
}

TEST(cancel_queued_and_running)
{
    /* the workers' rings hold at most 2 * 252 tasks: with W slow tasks
     * running, most of the quick ones behind them are still queued */
    enum { W = 2, QUICK = 600 };
    crew_options o = pool_opts(W);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *slow[W], *quick[QUICK];
    for (int i = 0; i < W; i++)
        CHECK_OK(submit_int(p, "sleep_ms", 200, &slow[i]));
    for (int i = 0; i < QUICK; i++)
        CHECK_OK(submit_int(p, "add1", i, &quick[i]));
    test_sleep_us(30000); /* the slow ones are running now */
    for (int i = 0; i < W; i++)
        CHECK_EQ_INT(crew_future_cancel(slow[i]), -EBUSY);
    int cancelled = 0, busy = 0;
    for (int i = QUICK - 1; i >= 0; i--) {
        int rc = crew_future_cancel(quick[i]);
        CHECK(rc == 0 || rc == -EBUSY);
        if (rc == 0) {
            cancelled++;
            CHECK_EQ_INT(crew_future_status(quick[i]), -ECANCELED);
            CHECK_EQ_INT(crew_future_result(quick[i], NULL, NULL), -ECANCELED);
            CHECK_EQ_INT(crew_future_cancel(quick[i]), -EBUSY); /* done already */
        } else {
            busy++;
        }
    }
    CHECK(cancelled >= QUICK - 2 * 252);
    for (int i = 0; i < W; i++) {
        CHECK_EQ_INT(result_int(slow[i]), 200);
        crew_future_release(slow[i]);
    }
    for (int i = 0; i < QUICK; i++) { /* the ones sent already ran normally */
        if (crew_future_status(quick[i]) != -ECANCELED)
            CHECK_EQ_INT(result_int(quick[i]), i + 1);
        crew_future_release(quick[i]);
    }
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT(st.cancelled, cancelled);
    CHECK_EQ_INT(st.done, W + busy);
    crew_pool_free(p);
}

TEST(wait_any_and_all_with_timeouts)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *fs[2];
    CHECK_OK(submit_int(p, "sleep_ms", 400, &fs[0]));
    CHECK_OK(submit_int(p, "sleep_ms", 1, &fs[1]));
    CHECK_EQ_INT(crew_wait_any(fs, 0, 1), -EINVAL);
    CHECK_EQ_INT(crew_wait_all(fs, 0, 1), -EINVAL);
    CHECK_EQ_INT(crew_wait_any(fs, 2, 5), 1);
    uint64_t t0 = test_now_ns();
    CHECK_EQ_INT(crew_wait_any(fs, 1, 0.05), -EAGAIN);
    CHECK_EQ_INT(crew_wait_all(fs, 2, 0.05), -EAGAIN);
    double el = elapsed_s(t0);
    CHECK(el >= 0.09 && el < 0.35);
    CHECK_EQ_INT(crew_future_status(fs[0]), -EINPROGRESS);
    CHECK_OK(crew_wait_all(fs, 2, -1));
    CHECK_EQ_INT(crew_wait_any(fs, 2, 0), 0); /* both done: the first */
    CHECK_OK(crew_wait_all(fs, 2, 0));
    crew_future_release(fs[0]);
    crew_future_release(fs[1]);
    crew_pool_free(p);
}

TEST(future_wait_times_out)
{
    crew_options o = pool_opts(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *f;
    CHECK_OK(submit_int(p, "sleep_ms", 200, &f));
    uint64_t t0 = test_now_ns();
    CHECK_EQ_INT(crew_future_wait(f, 0.03), -EAGAIN);
    CHECK(elapsed_s(t0) >= 0.025);
    CHECK_EQ_INT(crew_future_wait(f, 0), -EAGAIN);
    CHECK_EQ_INT(crew_future_status(f), -EINPROGRESS);
    CHECK(strlen(crew_future_error(f)) > 0);
    CHECK_OK(crew_future_wait(f, -1));
    CHECK_OK(crew_future_wait(f, 0));
    CHECK_EQ_INT(result_int(f), 200);
    crew_future_release(f);
    crew_pool_free(p);
}

/* ---------------------------------------------------------------- callbacks -- */

struct cb_state {
    _Atomic int calls;
    _Atomic int status;
    pthread_t thread;
    crew_pool *pool;
    crew_future *_Atomic more; /* submitted by the callback */
};

static void on_done_record(crew_future *f, void *ud)
{
    struct cb_state *s = ud;
    s->thread = pthread_self();
    atomic_store(&s->status, crew_future_status(f));
    atomic_fetch_add(&s->calls, 1);
}

static void on_done_submit(crew_future *f, void *ud)
{
    struct cb_state *s = ud;
    crew_future *g = NULL;
    if (submit_int(s->pool, "add1", result_int(f), &g) == 0)
        atomic_store(&s->more, g);
    atomic_fetch_add(&s->calls, 1);
}

static bool wait_calls(struct cb_state *s, int n)
{
    for (int i = 0; i < 5000 && atomic_load(&s->calls) < n; i++)
        test_sleep_us(1000);
    return atomic_load(&s->calls) == n;
}

TEST(callbacks_before_and_after_completion)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    struct cb_state before = {0}, after = {0};
    crew_future *f, *g;
    CHECK_OK(submit_int(p, "sleep_ms", 50, &f));
    CHECK_OK(crew_future_on_done(f, on_done_record, &before));
    CHECK_EQ_INT(crew_future_on_done(f, on_done_record, &before), -EBUSY);
    CHECK(wait_calls(&before, 1));
    CHECK_EQ_INT(atomic_load(&before.status), 0);
    CHECK(!pthread_equal(before.thread, pthread_self())); /* crew's collector */
    CHECK_OK(submit_int(p, "fail", 3, &g));
    CHECK_OK(crew_future_wait(g, -1));
    CHECK_OK(crew_future_on_done(g, on_done_record, &after)); /* runs at once, here */
    CHECK_EQ_INT(atomic_load(&after.calls), 1);
    CHECK(pthread_equal(after.thread, pthread_self()));
    CHECK_EQ_INT(atomic_load(&after.status), CREW_ETASK);
    test_sleep_us(20000);
    CHECK_EQ_INT(atomic_load(&before.calls), 1); /* once only */
    crew_future_release(f);
    crew_future_release(g);
    crew_pool_free(p);
}

TEST(a_callback_taken_back_never_runs)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    struct cb_state taken = {0}, late = {0};
    crew_future *f, *g, *h;
    CHECK_OK(submit_int(p, "sleep_ms", 50, &f));
    CHECK_EQ_INT(crew_future_take_callback(f), 0); /* none set */
    CHECK_OK(crew_future_on_done(f, on_done_record, &taken));
    CHECK_EQ_INT(crew_future_take_callback(f), 1); /* taken: it will never run */
    CHECK_EQ_INT(crew_future_take_callback(f), 0); /* only once */
    CHECK_OK(crew_future_wait(f, -1));
    CHECK_EQ_INT(result_int(f), 50);
    /* one that has run cannot be taken back */
    CHECK_OK(submit_int(p, "add1", 1, &g));
    CHECK_OK(crew_future_wait(g, -1));
    CHECK_OK(crew_future_on_done(g, on_done_record, &late));
    CHECK_EQ_INT(atomic_load(&late.calls), 1);
    CHECK_EQ_INT(crew_future_take_callback(g), 0);
    /* one set on a running task that is then taken back: the task's end runs nothing */
    CHECK_OK(submit_int(p, "sleep_ms", 20, &h));
    CHECK_OK(crew_future_on_done(h, on_done_record, &late));
    CHECK_EQ_INT(crew_future_take_callback(h), 1);
    CHECK_OK(crew_future_wait(h, -1));
    test_sleep_us(20000);
    CHECK_EQ_INT(atomic_load(&taken.calls), 0);
    CHECK_EQ_INT(atomic_load(&late.calls), 1);
    CHECK_EQ_INT(crew_future_take_callback(NULL), 0);
    crew_future_release(f);
    crew_future_release(g);
    crew_future_release(h);
    crew_pool_free(p);
}

TEST(callback_may_submit_more_work)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    struct cb_state s = {.pool = p};
    crew_future *f;
    CHECK_OK(submit_int(p, "sleep_ms", 20, &f));
    CHECK_OK(crew_future_on_done(f, on_done_submit, &s));
    CHECK(wait_calls(&s, 1));
    crew_future *g = atomic_load(&s.more);
    CHECK(g);
    CHECK_EQ_INT(result_int(g), 21);
    crew_future_release(g);
    crew_future_release(f);
    crew_pool_free(p);
}

/* --------------------------------------------------------------------- map -- */

static void check_map(crew_pool *p, const char *name, size_t n, size_t chunk, bool fail_odd,
                      int *failures)
{
    int *vals = malloc((n ? n : 1) * sizeof *vals);
    const void **args = malloc((n ? n : 1) * sizeof *args);
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    for (size_t i = 0; i < n; i++) {
        vals[i] = (int)i;
        args[i] = &vals[i];
        lens[i] = sizeof vals[i];
    }
    crew_batch *b = NULL;
    int rc = crew_map(p, name, n, args, lens, chunk, &b);
    *failures = rc ? 1000000 : 0;
    if (rc == 0) {
        if (crew_batch_size(b) != n)
            (*failures)++;
        for (size_t i = 0; i < n; i++) {
            const void *d;
            size_t len;
            int st = crew_batch_get(b, i, &d, &len);
            int v = 0;
            if (st == 0 && len == sizeof v)
                memcpy(&v, d, sizeof v);
            char msg[32];
            snprintf(msg, sizeof msg, "odd %zu", i);
            bool ok = fail_odd && i % 2 ? st == CREW_ETASK && strcmp(d, msg) == 0
                    : fail_odd          ? st == 0 && v == (int)i * 10
                                        : st == 0 && v == (int)i + 1;
            if (!ok)
                (*failures)++;
        }
        if (crew_batch_get(b, n, NULL, NULL) != -EINVAL)
            (*failures)++;
        crew_batch_release(b);
    }
    free(vals);
    free(args);
    free(lens);
}

TEST(map_with_auto_and_explicit_chunks)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    const size_t chunks[] = {0, 1, 7, 1000, 5000};
    int bad;
    for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
        check_map(p, "add1", 1000, chunks[k], false, &bad);
        CHECK_EQ_INT(bad, 0);
        check_map(p, "fail_odd", 101, chunks[k], true, &bad);
        CHECK_EQ_INT(bad, 0);
    }
    check_map(p, "add1", 1, 0, false, &bad);
    CHECK_EQ_INT(bad, 0);
    crew_pool_free(p);
}

/* The one chunk plan (crew_map_chunksize, which Python's maps call too
 * through _core.map_chunksize: tests/python/test_map_chunks.py pins the same
 * figures), and crew_map sends exactly the chunks it plans. */
TEST(map_chunks_follow_the_one_plan)
{
    CHECK_EQ_SZ(crew_map_chunksize(1000, 2, 0), 125); /* 4 chunks per worker */
    CHECK_EQ_SZ(crew_map_chunksize(1001, 2, 0), 126); /* rounded up */
    CHECK_EQ_SZ(crew_map_chunksize(5, 4, 0), 1);      /* never 0 */
    CHECK_EQ_SZ(crew_map_chunksize(0, 4, 0), 1);      /* unknown length: 1 */
    CHECK_EQ_SZ(crew_map_chunksize(10, 0, 0), 3);     /* no workers counts as 1 */
    CHECK_EQ_SZ(crew_map_chunksize(10, -3, 0), 3);
    CHECK_EQ_SZ(crew_map_chunksize(1000, 2, 7), 7);   /* an explicit size stands */
    CHECK_EQ_SZ(crew_map_chunksize(SIZE_MAX, 1, 0), SIZE_MAX / 4 + 1); /* no overflow */

    crew_options o = pool_opts(3);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    const size_t ns[] = {1, 11, 12, 13, 1000};
    const size_t chunks[] = {0, 1, 5};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            crew_stats before, after;
            CHECK_OK(crew_pool_stats(p, &before));
            int bad;
            check_map(p, "add1", ns[a], chunks[c], false, &bad);
            CHECK_EQ_INT(bad, 0);
            CHECK_OK(crew_pool_stats(p, &after));
            size_t size = crew_map_chunksize(ns[a], 3, chunks[c]);
            CHECK_EQ_SZ((size_t)(after.submitted - before.submitted), (ns[a] + size - 1) / size);
        }
    crew_pool_free(p);
}

TEST(map_of_zero_items)
{
    crew_options o = pool_opts(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_batch *b = NULL;
    CHECK_OK(crew_map(p, "add1", 0, NULL, NULL, 0, &b));
    CHECK(b);
    CHECK_EQ_SZ(crew_batch_size(b), 0);
    CHECK_EQ_INT(crew_batch_get(b, 0, NULL, NULL), -EINVAL);
    crew_batch_release(b);
    CHECK_OK(crew_map(p, "add1", 0, NULL, NULL, 3, &b));
    CHECK_EQ_SZ(crew_batch_size(b), 0);
    crew_batch_release(b);
    crew_pool_free(p);
}

#include "pool_cases_life.h"
#include "pool_cases_sched.h"

#endif
