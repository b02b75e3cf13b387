/* pool_cases_sched.h — scheduling cases shared by every pool kind: no task waits behind a long one while a worker idles, no waiter spins on a busy machine. */
#ifndef CREW_POOL_CASES_SCHED_H
#define CREW_POOL_CASES_SCHED_H

/* Waits (up to 60 s) until each of p's two workers has answered a task:
 * both are up. Pairs of 20 ms sleeps keep both busy at once. */
static bool both_workers_up(crew_pool *p)
{
    for (int round = 0; round < 600; round++) {
        crew_stats st;
        if (crew_pool_stats(p, &st) != 0)
            return false;
        if (st.worker[0].tasks > 0 && st.worker[1].tasks > 0)
            return true;
        crew_future *f[2];
        for (int k = 0; k < 2; k++)
            if (submit_int(p, "sleep_ms", 20, &f[k]) != 0)
                return false;
        crew_wait_all(f, 2, 60);
        crew_future_release(f[0]);
        crew_future_release(f[1]);
    }
    return false;
}

/* After many quick tasks (rings then hold ~200 us of work each), a long
 * task with quick ones queued behind it in its worker's ring: the other
 * worker, once idle, takes those over. Before, about half of them waited
 * for the long task to end. */
TEST(a_long_task_does_not_hold_back_the_tasks_queued_behind_it)
{
    crew_options o = pool_opts(2);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    CHECK(both_workers_up(p)); /* a worker still starting takes no task */
    crew_stats st0;
    CHECK_OK(crew_pool_stats(p, &st0));
    enum { WARM = 3000, QUICK = 40 };
    static crew_future *warm[WARM];
    for (int i = 0; i < WARM; i++)
        CHECK_OK(submit_int(p, "echo", i, &warm[i]));
    CHECK_OK(crew_wait_all(warm, WARM, 60));
    for (int i = 0; i < WARM; i++)
        crew_future_release(warm[i]);
    crew_future *lng, *quick[QUICK];
    CHECK_OK(submit_int(p, "sleep_ms", 1500, &lng));
    for (int i = 0; i < QUICK; i++)
        CHECK_OK(submit_int(p, "sleep_ms", 1, &quick[i]));
    CHECK_OK(crew_wait_all(quick, QUICK, 30));
    int still_running = crew_future_status(lng) == -EINPROGRESS;
    for (int i = 0; i < QUICK; i++) {
        const void *d;
        size_t n;
        CHECK_OK(crew_future_result(quick[i], &d, &n));
        CHECK(n == sizeof(int) && *(const int *)d == 1);
        crew_future_release(quick[i]);
    }
    CHECK_OK(crew_future_wait(lng, 30));
    CHECK_EQ_INT(crew_future_status(lng), 0);
    crew_future_release(lng);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT(st.done - st0.done, WARM + QUICK + 1); /* every task answered once */
    CHECK_EQ_INT(st.failed, 0);
    crew_pool_free(p);
    CHECK(still_running); /* the quick ones did not wait for the long one */
}

/* Requests taken back and sent elsewhere run once: a burst of tasks of
 * mixed lengths, many steals, every answer accounted for. */
TEST(tasks_taken_back_run_exactly_once)
{
    crew_options o = pool_opts(3);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    enum { N = 600 };
    static crew_future *f[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            CHECK_OK(submit_int(p, i % 97 == 0 ? "sleep_ms" : "echo", i % 97 == 0 ? 30 : i,
                                &f[i]));
        CHECK_OK(crew_wait_all(f, N, 60));
        for (int i = 0; i < N; i++) {
            const void *d;
            size_t n;
            CHECK_OK(crew_future_result(f[i], &d, &n));
            CHECK(n == sizeof(int) && *(const int *)d == (i % 97 == 0 ? 30 : i));
            crew_future_release(f[i]);
        }
    }
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT(st.done, 3 * N);
    uint64_t ran = 0;
    for (int w = 0; w < st.workers; w++)
        ran += st.worker[w].tasks;
    CHECK_EQ_INT(ran, 3 * N); /* the workers ran each once: none twice */
    crew_pool_free(p);
}

/* CPU time this thread has used, in ns. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* With every CPU running a task of a few ms, a thread waiting for one
 * sleeps at once instead of spinning for it (crew__parent_may_spin): the
 * cores are the workers'. Before, each such wait spun for 50 us first,
 * taking that CPU time from a worker. (One CPU: nobody spins anyway.) */
TEST(a_waiter_does_not_spin_while_every_cpu_runs_a_task)
{
    int n = crew_cpu_count(); /* one task in flight per CPU: none free */
    if (n > 32) {
        printf("    skipped: %d CPUs, more workers than this case starts\n", n);
        return;
    }
    crew_options o = pool_opts(n);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    enum { WARM = 5, ROUNDS = 20 };
    crew_future *f[32];
    uint64_t cpu = 0;
    int up = 0, warm = 0;
    for (int round = 0; round < 600 + ROUNDS && warm < ROUNDS; round++) {
        for (int k = 0; k < n; k++)
            CHECK_OK(submit_int(p, "sleep_ms", 4, &f[k]));
        /* the first wait starts with all n tasks in flight, once every
         * worker is up (a starting one takes no task) and the first answers
         * have told the pool how long tasks take */
        bool measured = up == n && round >= WARM;
        uint64_t t0 = thread_cpu_ns();
        CHECK_OK(crew_future_wait(f[0], 30));
        if (measured) {
            cpu += thread_cpu_ns() - t0;
            warm++;
        }
        for (int k = 0; k < n; k++) {
            CHECK_OK(crew_future_wait(f[k], 30));
            CHECK_EQ_INT(crew_future_status(f[k]), 0);
            crew_future_release(f[k]);
        }
        crew_stats st;
        CHECK_OK(crew_pool_stats(p, &st));
        up = 0;
        for (int k = 0; k < n; k++)
            up += st.worker[k].tasks > 0;
    }
    CHECK_EQ_INT(warm, ROUNDS);
    crew_pool_free(p);
    printf("    waiting with every CPU busy: %.1f us of CPU per wait\n", (double)cpu / 1e3 / ROUNDS);
    CHECK(cpu / ROUNDS < 25000); /* a spin is 50 us; a sleep a few syscalls */
}

#endif
