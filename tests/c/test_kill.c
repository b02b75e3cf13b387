/* test_kill.c — process workers SIGKILLed at random under load: every future resolves, the pool recovers. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "crew.h"

/* Sleeps a pseudo-random 0-200 us (from its input) and returns its input. */
static int t_jitter(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    uint32_t v = 0;
    memcpy(&v, arg, len < sizeof v ? len : sizeof v);
    test_sleep_us((long)((v * 2654435761u) >> 16) % 201);
    return crew_out_set(out, &v, sizeof v);
}

CREW_TASK("jitter", t_jitter)

struct killer {
    crew_pool *pool;
    int max_kills;
    _Atomic bool stop;
    _Atomic int kills;
};

static void *killer_main(void *arg)
{
    struct killer *k = arg;
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    while (!atomic_load(&k->stop) && atomic_load(&k->kills) < k->max_kills) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        test_sleep_us(2000 + (long)(seed % 4000)); /* every 2-6 ms */
        crew_stats st;
        if (crew_pool_stats(k->pool, &st) < 0)
            break;
        pid_t pid = st.worker[seed % (uint64_t)st.workers].pid;
        if (pid > 0 && pid != getpid() && kill(pid, SIGKILL) == 0)
            atomic_fetch_add(&k->kills, 1);
    }
    return NULL;
}

/* Submits n jitter tasks numbered from base, waits, counts outcomes. */
static int run_batch(crew_pool *p, uint32_t base, int n, int *ok, int *crashed, int *other)
{
    crew_future **fs = calloc((size_t)n, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    *ok = *crashed = *other = 0;
    for (int i = 0; i < n; i++) {
        uint32_t v = base + (uint32_t)i;
        int rc = crew_submit(p, "jitter", &v, sizeof v, &fs[i]);
        if (rc < 0)
            return rc;
    }
    int rc = crew_wait_all(fs, (size_t)n, 120);
    for (int i = 0; i < n; i++) {
        const void *d;
        size_t len;
        int st = crew_future_result(fs[i], &d, &len);
        uint32_t v = 0;
        if (st == 0 && len == sizeof v)
            memcpy(&v, d, sizeof v);
        if (st == 0 && v == base + (uint32_t)i)
            (*ok)++;
        else if (st == CREW_ECRASHED && strstr(crew_future_error(fs[i]), "signal 9"))
            (*crashed)++;
        else {
            (*other)++;
            printf("  task %d: status %d (%s)\n", i, st, crew_future_error(fs[i]));
        }
        crew_future_release(fs[i]);
    }
    free(fs);
    return rc;
}

static void kill_test(int workers)
{
    crew_options o = test_fork_options(workers);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    struct killer k = {.pool = p, .max_kills = 20};
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, killer_main, &k));
    int ok, crashed, other;
    int n = (int)test_scale(10000, 3000);
    int rc = run_batch(p, 0, n, &ok, &crashed, &other);
    atomic_store(&k.stop, true);
    pthread_join(t, NULL);
    int kills = atomic_load(&k.kills);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    uint32_t restarts = 0;
    for (int i = 0; i < st.workers; i++)
        restarts += st.worker[i].restarts;
    printf("  %d workers: %d kills, %d ok, %d crashed, %u restarts\n", workers, kills, ok,
           crashed, restarts);
    CHECK_OK(rc);
    CHECK_EQ_INT(other, 0);
    CHECK_EQ_INT(ok + crashed, n);
    CHECK(crashed <= kills);
    CHECK(kills >= 1);
    CHECK_EQ_INT(st.crashed, crashed);
    /* the pool works on */
    rc = run_batch(p, 1000000, 1000, &ok, &crashed, &other);
    CHECK_OK(rc);
    CHECK_EQ_INT(ok, 1000);
    crew_pool_free(p);
}

TEST(kill_workers_of_two)
{
    kill_test(2);
}

TEST(kill_workers_of_four)
{
    kill_test(4);
}

/* Where a running "nap" task says which process runs it: a page shared with
 * the forked workers (made before the pool). */
static _Atomic int32_t *running_pid;

/* Publishes its pid, sleeps 20 ms and returns its input. */
static int t_nap(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    atomic_store(running_pid, (int32_t)getpid());
    test_sleep_us(20000);
    return crew_out_set(out, arg, len);
}

CREW_TASK("nap", t_nap)

/* A kill storm on a worker that started fine: killed from outside five times
 * in a row, each time while it runs its first task (it has answered nothing
 * yet). Each kill fails the task it ran; the queue is not failed as if the
 * workers could not start (they could: each said it was up). */
TEST(kill_storm_on_started_workers_fails_only_their_tasks)
{
    running_pid = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(running_pid != MAP_FAILED);
    atomic_store(running_pid, 0);
    crew_options o = test_fork_options(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    enum { N = 30, KILLS = 5 };
    crew_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(crew_submit(p, "nap", &i, sizeof i, &fs[i]));
    int kills = 0;
    int32_t last = 0;
    /* kill each new worker as soon as it runs a task (no new one may come if
     * the queue was failed: give up after 20 s, the checks below then fail) */
    for (int waited = 0; kills < KILLS && waited < 100000; waited++) {
        int32_t pid = atomic_load(running_pid);
        if (pid > 0 && pid != last) {
            CHECK_OK(kill(pid, SIGKILL));
            last = pid;
            kills++;
        }
        test_sleep_us(200);
    }
    CHECK_OK(crew_wait_all(fs, N, 60));
    int ok = 0, crashed = 0;
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t len;
        int st = crew_future_result(fs[i], &d, &len);
        if (st == 0)
            ok++;
        else if (st == CREW_ECRASHED && strstr(crew_future_error(fs[i]), "while running"))
            crashed++;
        else
            printf("  task %d: status %d (%s)\n", i, st, crew_future_error(fs[i]));
        crew_future_release(fs[i]);
    }
    printf("  %d kills: %d ok, %d crashed\n", kills, ok, crashed);
    CHECK_EQ_INT(crashed, KILLS);
    CHECK_EQ_INT(ok, N - KILLS);
    crew_pool_free(p);
    munmap((void *)running_pid, 4096);
}

TEST_MAIN()
