/* pool_cases_life.h — pool life-cycle cases for both kinds: close, terminate, free, stats,
 * deadlines, recycling and initializers. Included by pool_cases.h. */
#ifndef CREW_TEST_POOL_CASES_LIFE_H
#define CREW_TEST_POOL_CASES_LIFE_H

#include <pthread.h>

#define IS_PROC (TEST_KIND == CREW_PROCESSES)

TEST(close_finishes_queued_work)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    enum { N = 12 };
    crew_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(submit_int(p, "sleep_ms", 10 + i, &fs[i]));
    CHECK_OK(crew_pool_close(p));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(crew_future_status(fs[i]), 0); /* done before close returned */
        CHECK_EQ_INT(result_int(fs[i]), 10 + i);
        crew_future_release(fs[i]);
    }
    CHECK_OK(crew_pool_close(p)); /* idempotent */
    crew_future *f = NULL;
    CHECK_EQ_INT(submit_int(p, "add1", 1, &f), CREW_ECLOSED);
    CHECK(f == NULL);
    crew_batch *b = NULL;
    int v = 1;
    const void *arg = &v;
    size_t len = sizeof v;
    CHECK_EQ_INT(crew_map(p, "add1", 1, &arg, &len, 0, &b), CREW_ECLOSED);
    crew_pool_free(p);
}

TEST(terminate_fails_pending_work)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    enum { N = 10 };
    crew_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(submit_int(p, "sleep_ms", 300, &fs[i]));
    test_sleep_us(30000);
    uint64_t t0 = test_now_ns();
    CHECK_OK(crew_pool_terminate(p));
    CHECK(elapsed_s(t0) < 0.25); /* it does not wait for the running tasks */
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(crew_future_status(fs[i]), -ECANCELED);
        CHECK_EQ_INT(crew_future_result(fs[i], NULL, NULL), -ECANCELED);
        crew_future_release(fs[i]);
    }
    CHECK_OK(crew_pool_terminate(p)); /* idempotent */
    CHECK_OK(crew_pool_close(p));
    crew_future *f = NULL;
    CHECK_EQ_INT(submit_int(p, "add1", 1, &f), CREW_ECLOSED);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT(st.cancelled, N);
    crew_pool_free(p);
}

static void *close_in_thread(void *arg)
{
    crew_pool_close(arg);
    return NULL;
}

TEST(terminate_while_another_thread_closes)
{
    /* close waits for a long task; terminate from here must stop it, and
     * both calls must come back (they once joined crew's threads twice) */
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *slow, *queued[4];
    CHECK_OK(submit_int(p, "sleep_ms", 1500, &slow));
    for (int i = 0; i < 4; i++)
        CHECK_OK(submit_int(p, "sleep_ms", 1500, &queued[i]));
    test_sleep_us(30000);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, close_in_thread, p), 0);
    test_sleep_us(30000);
    uint64_t t0 = test_now_ns();
    CHECK_OK(crew_pool_terminate(p));
    pthread_join(t, NULL);
    CHECK(elapsed_s(t0) < 1.0);
    CHECK_EQ_INT(crew_future_status(slow), -ECANCELED);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(crew_future_status(queued[i]), -ECANCELED);
        crew_future_release(queued[i]);
    }
    crew_future_release(slow);
    CHECK_OK(crew_pool_close(p)); /* and again: both return at once */
    CHECK_OK(crew_pool_terminate(p));
    crew_pool_free(p);
}

TEST(futures_outlive_the_pool)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    size_t big = 300000;
    unsigned char *in = malloc(big);
    CHECK(in);
    for (size_t i = 0; i < big; i++)
        in[i] = (unsigned char)(i * 13);
    crew_future *small, *large, *failed, *slow[6];
    CHECK_OK(submit_int(p, "add1", 41, &small));
    CHECK_OK(crew_submit(p, "echo", in, big, &large));
    CHECK_OK(submit_int(p, "fail", 9, &failed));
    crew_future *all[] = {small, large, failed};
    CHECK_OK(crew_wait_all(all, 3, -1));
    for (int i = 0; i < 6; i++)
        CHECK_OK(submit_int(p, "sleep_ms", 200, &slow[i]));
    crew_pool_free(p); /* terminates: the slow ones fail */
    CHECK_EQ_INT(result_int(small), 42);
    const void *d;
    size_t n;
    CHECK_OK(crew_future_result(large, &d, &n));
    CHECK_EQ_SZ(n, big);
    CHECK(memcmp(d, in, big) == 0);
    CHECK(strcmp(crew_future_error(failed), "bad input 9") == 0);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(crew_future_result(slow[i], NULL, NULL), -ECANCELED);
        crew_future_release(slow[i]);
    }
    crew_future_release(small);
    crew_future_release(failed);
    crew_future_release(large); /* the last one frees the pool's memory */
    free(in);
}

TEST(stats_count_tasks)
{
    enum { W = 3, OK = 40, BAD = 7 };
    crew_options o = pool_opts(W);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *fs[OK + BAD];
    for (int i = 0; i < OK + BAD; i++)
        CHECK_OK(submit_int(p, i < OK ? "add1" : "fail", i, &fs[i]));
    CHECK_OK(crew_wait_all(fs, OK + BAD, -1));
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT(st.kind, TEST_KIND);
    CHECK_EQ_INT(st.workers, W);
    CHECK_EQ_INT(st.submitted, OK + BAD);
    CHECK_EQ_INT(st.done, OK);
    CHECK_EQ_INT(st.failed, BAD);
    CHECK_EQ_INT(st.crashed + st.timed_out + st.cancelled, 0);
    uint64_t sum = 0;
    for (int i = 0; i < W; i++) {
        sum += st.worker[i].tasks;
        /* a thread's id is known once it runs; tasks go to workers already
         * up, so a thread still starting may have had none */
        CHECK(st.worker[i].pid > 0 || (!IS_PROC && st.worker[i].tasks == 0));
        CHECK_EQ_INT(st.worker[i].restarts, 0);
        if (IS_PROC)
            CHECK(st.worker[i].pid != getpid());
    }
    CHECK_EQ_INT(sum, OK + BAD);
    for (int i = 0; i < OK + BAD; i++)
        crew_future_release(fs[i]);
    crew_pool_free(p);
}

TEST(task_timeout_fails_the_task)
{
    crew_options o = pool_opts(2);
    o.task_timeout = 0.15;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *slow, *quick;
    uint64_t t0 = test_now_ns();
    CHECK_OK(submit_int(p, "sleep_ms", 1500, &slow));
    CHECK_OK(submit_int(p, "sleep_ms", 10, &quick));
    CHECK_OK(crew_future_wait(slow, 5));
    double el = elapsed_s(t0);
    CHECK_EQ_INT(crew_future_status(slow), -ETIMEDOUT);
    CHECK(el >= 0.14 && el < 1.0); /* at the deadline, not when the task ends */
    CHECK(strstr(crew_future_error(slow), "deadline") != NULL);
    CHECK_EQ_INT(result_int(quick), 10);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT(st.timed_out, 1);
    if (IS_PROC) { /* its worker was killed and replaced */
        for (int i = 0; i < 200; i++) {
            CHECK_OK(crew_pool_stats(p, &st));
            if (st.worker[0].restarts + st.worker[1].restarts >= 1)
                break;
            test_sleep_us(5000);
        }
        CHECK_EQ_INT(st.worker[0].restarts + st.worker[1].restarts, 1);
    }
    /* the pool goes on working; a per-submit timeout overrides the pool's */
    crew_future *fs[8], *g;
    for (int i = 0; i < 8; i++)
        CHECK_OK(submit_int(p, "add1", i, &fs[i]));
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(result_int(fs[i]), i + 1);
        crew_future_release(fs[i]);
    }
    crew_submit_opts so = {.timeout = -1};
    CHECK_OK(crew_submit_ex(p, "sleep_ms", &(int){250}, sizeof(int), &so, &g));
    CHECK_EQ_INT(result_int(g), 250);
    crew_future_release(g);
    crew_future_release(slow);
    crew_future_release(quick);
    crew_pool_free(p);
}

TEST(per_submit_timeout)
{
    crew_options o = pool_opts(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_submit_opts so = {.timeout = 0.1};
    crew_future *f, *g;
    CHECK_OK(crew_submit_ex(p, "sleep_ms", &(int){1000}, sizeof(int), &so, &f));
    CHECK_OK(crew_future_wait(f, 5));
    CHECK_EQ_INT(crew_future_status(f), -ETIMEDOUT);
    CHECK_OK(submit_int(p, "add1", 1, &g)); /* a thread worker is busy ~1 s more */
    CHECK_OK(crew_future_wait(g, 5));
    CHECK_EQ_INT(result_int(g), 2);
    crew_future_release(f);
    crew_future_release(g);
    crew_pool_free(p);
}

TEST(max_tasks_per_worker_recycles)
{
    enum { W = 2, MAX = 5, N = 60 };
    crew_options o = pool_opts(W);
    o.max_tasks_per_worker = MAX;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(submit_int(p, "whoami", i, &fs[i]));
    CHECK_OK(crew_wait_all(fs, N, 30));
    int ids[N], nids = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t n;
        int r[2] = {-1, 0};
        if (crew_future_result(fs[i], &d, &n) == 0 && n == sizeof r)
            memcpy(r, d, sizeof r);
        if (r[0] != i)
            bad++;
        int k = 0;
        while (k < nids && ids[k] != r[1])
            k++;
        if (k == nids)
            ids[nids++] = r[1];
        crew_future_release(fs[i]);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(nids >= N / MAX); /* every worker ran at most MAX tasks */
    crew_stats st;
    uint32_t restarts = 0;
    for (int t = 0; t < 200; t++) { /* the last replacements may still start */
        CHECK_OK(crew_pool_stats(p, &st));
        restarts = st.worker[0].restarts + st.worker[1].restarts;
        if (restarts >= N / MAX - W)
            break;
        test_sleep_us(5000);
    }
    CHECK(restarts >= N / MAX - W);
    CHECK_EQ_INT(st.done, N);
    crew_pool_free(p);
}

TEST(initializer_runs_once_per_worker_first)
{
    enum { W = 2, N = 20 };
    crew_options o = pool_opts(W);
    int magic = 4242;
    o.initializer = "init";
    o.init_arg = &magic;
    o.init_len = sizeof magic;
    atomic_store(&g_init_calls, 0);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    magic = 0; /* the pool copied it */
    crew_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(crew_submit(p, "read_init", NULL, 0, &fs[i]));
    CHECK_OK(crew_wait_all(fs, N, 10));
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t n;
        int r[2] = {0, 0};
        CHECK_OK(crew_future_result(fs[i], &d, &n));
        CHECK_EQ_SZ(n, sizeof r);
        memcpy(r, d, sizeof r);
        CHECK_EQ_INT(r[0], 4242); /* a process worker sees the global it set */
        CHECK_EQ_INT(r[1], 1);    /* once in this worker, before the task */
        crew_future_release(fs[i]);
    }
    /* tasks go to the workers already up, so one may have run them all:
     * once closed, every worker has started, and run the initializer */
    CHECK_OK(crew_pool_close(p));
    if (IS_PROC)
        CHECK_EQ_INT(atomic_load(&g_init_calls), 0); /* never in the parent */
    else
        CHECK_EQ_INT(atomic_load(&g_init_calls), W);
    crew_pool_free(p);
    g_init_value = 0;
}

TEST(failing_initializer_fails_tasks)
{
    crew_options o = pool_opts(2);
    o.initializer = "init_fail";
    o.init_arg = &(int){77};
    o.init_len = sizeof(int);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *fs[6];
    for (int i = 0; i < 6; i++)
        CHECK_OK(submit_int(p, "add1", i, &fs[i]));
    CHECK_OK(crew_wait_all(fs, 6, 10)); /* no hang */
    for (int i = 0; i < 6; i++) {
        const void *d;
        size_t n;
        CHECK_EQ_INT(crew_future_result(fs[i], &d, &n), CREW_EINIT);
        CHECK(n > 0 && strstr(d, "init broke 77") != NULL);
        CHECK(strstr(crew_future_error(fs[i]), "init broke 77") != NULL);
        crew_future_release(fs[i]);
    }
    crew_pool_free(p);
}

#endif
