/* test_lockorder.c — the CREW_LOCKCHECK build aborts on a lock taken out of order or a join under a lock, and a pool's work leaves no lock held. */
#include "test.h"
#include "helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/lockorder.h"
#include "crew.h"

static int t_echo(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    return crew_out_set(out, arg, len);
}
CREW_TASK("echo", t_echo)

static pthread_mutex_t m1 = PTHREAD_MUTEX_INITIALIZER, m2 = PTHREAD_MUTEX_INITIALIZER;

/* Runs fn in a child with stderr silenced: whether it was killed by SIGABRT. */
static bool aborts(void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void in_order(void)
{
    crew__lock(&m1, CREW__LOCK_POOL);
    crew__lock(&m2, CREW__LOCK_REGISTRY);
    crew__unlock(&m2, CREW__LOCK_REGISTRY);
    crew__unlock(&m1, CREW__LOCK_POOL);
    crew__lock_none_held("test");
}

static void out_of_order(void)
{
    crew__lock(&m2, CREW__LOCK_REGISTRY);
    crew__lock(&m1, CREW__LOCK_POOL); /* registry is a leaf: aborts */
}

static void same_rank_twice(void)
{
    crew__lock(&m1, CREW__LOCK_POOL);
    crew__lock(&m2, CREW__LOCK_POOL); /* two pools' locks at once: aborts */
}

static void join_under_lock(void)
{
    crew__lock(&m1, CREW__LOCK_POOL);
    crew__lock_none_held("joining a thread");
}

TEST(checker_aborts_out_of_order_and_only_then)
{
    if (crew__locks_held() < 0) {
        printf("  (not a CREW_LOCKCHECK build: the lockcheck variant runs this)\n");
        return;
    }
    CHECK(!aborts(in_order));
    CHECK(aborts(out_of_order));
    CHECK(aborts(same_rank_twice));
    CHECK(aborts(join_under_lock));
}

/* Every path the pool tests walk runs in the lockcheck variant too; this
 * one checks that a caller's thread gets its locks back. */
TEST(pool_calls_leave_no_lock_held)
{
    crew_kind kinds[] = {CREW_THREADS, CREW_PROCESSES};
    for (int k = 0; k < 2; k++) {
        crew_options o = test_fork_options(2);
        o.kind = kinds[k];
        o.max_tasks_per_worker = 3; /* recycling: retire, join, relaunch */
        crew_pool *p;
        CHECK_OK(crew_pool_create(&p, &o));
        crew_future *f[20];
        for (int i = 0; i < 20; i++)
            CHECK_OK(crew_submit(p, "echo", &i, sizeof i, &f[i]));
        CHECK_OK(crew_wait_all(f, 20, -1));
        for (int i = 0; i < 20; i++)
            crew_future_release(f[i]);
        CHECK(crew__locks_held() <= 0);
        CHECK_OK(crew_pool_close(p));
        crew_pool_free(p);
        CHECK(crew__locks_held() <= 0);
    }
}

TEST_MAIN()
