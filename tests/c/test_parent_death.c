/* test_parent_death.c — when a pool's owner process is SIGKILLed, its process workers die within 1 s. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crew.h"

enum { WORKERS = 3 };

static int t_sleep_ms(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud, (void)out;
    int ms = 0;
    memcpy(&ms, arg, len < sizeof ms ? len : sizeof ms);
    test_sleep_us(ms * 1000L);
    return 0;
}

/* The doomed owner: creates a pool, optionally keeps its workers busy,
 * writes the worker pids to fd and waits to be killed. Never returns. */
static void owner_main(int fd, bool busy)
{
    (void)crew_register("sleep_ms", t_sleep_ms, NULL);
    crew_options o;
    crew_options_init(&o);
    o.kind = CREW_PROCESSES;
    o.start = CREW_START_FORK;
    o.workers = WORKERS;
    crew_pool *p;
    if (crew_pool_create(&p, &o) < 0)
        _exit(2);
    crew_future *f;
    for (int i = 0; busy && i < 2 * WORKERS; i++)
        if (crew_submit(p, "sleep_ms", &(int){60000}, sizeof(int), &f) < 0)
            _exit(3);
    crew_stats st;
    if (crew_pool_stats(p, &st) < 0)
        _exit(4);
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pids[i] = st.worker[i].pid;
    if (write(fd, pids, sizeof pids) != (ssize_t)sizeof pids)
        _exit(5);
    for (;;)
        pause();
}

/* Gone, or a zombie waiting for a reaper that is not us. */
static bool worker_gone(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    return test_proc_state(pid) == 'Z' || test_proc_state(pid) == 0;
}

static void owner_death_test(bool busy)
{
    int fds[2];
    CHECK_OK(pipe(fds));
    fflush(stdout);
    pid_t owner = fork();
    CHECK(owner >= 0);
    if (owner == 0) {
        close(fds[0]);
        owner_main(fds[1], busy);
    }
    close(fds[1]);
    pid_t pids[WORKERS];
    ssize_t n = read(fds[0], pids, sizeof pids);
    close(fds[0]);
    if (n != (ssize_t)sizeof pids)
        kill(owner, SIGKILL);
    CHECK_EQ_INT(n, sizeof pids);
    if (busy)
        test_sleep_us(50000); /* let the tasks start */
    for (int i = 0; i < WORKERS; i++) {
        CHECK(pids[i] > 0 && pids[i] != owner);
        CHECK(!worker_gone(pids[i]));
    }
    CHECK_OK(kill(owner, SIGKILL));
    uint64_t t0 = test_now_ns();
    int status;
    CHECK_EQ_INT(waitpid(owner, &status, 0), owner);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int alive = WORKERS;
    while (alive && test_now_ns() - t0 < 1000000000ull) {
        alive = 0;
        for (int i = 0; i < WORKERS; i++)
            alive += !worker_gone(pids[i]);
        if (alive)
            test_sleep_us(2000);
    }
    printf("  workers gone after %.1f ms\n", (double)(test_now_ns() - t0) / 1e6);
    for (int i = 0; i < WORKERS; i++)
        if (!worker_gone(pids[i]))
            kill(pids[i], SIGKILL); /* clean up before failing */
    CHECK_EQ_INT(alive, 0);
}

TEST(idle_workers_die_with_their_owner)
{
    owner_death_test(false);
}

TEST(busy_workers_die_with_their_owner)
{
    owner_death_test(true);
}

TEST_MAIN()
