/* test_lockorder.c — the CREW_LOCKCHECK build aborts on a lock taken out of order or a join under a lock, and a pool's work leaves no lock held. */
#include "test.h"
#include "helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
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

/* A custom launcher that, once held, waits for the test to let it go. */
static atomic_int launcher_held, launcher_inside, launcher_locks = -2, launcher_gave_up;

static pid_t slow_launch(int shm_fd, int slot, void *ud)
{
    (void)ud;
    if (atomic_load(&launcher_held)) {
        atomic_store(&launcher_locks, crew__locks_held());
        atomic_store(&launcher_inside, 1);
        for (int k = 0; k < 2000 && atomic_load(&launcher_held); k++) /* 20 s at most */
            test_sleep_us(10000);
        if (atomic_load(&launcher_held))
            atomic_store(&launcher_gave_up, 1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        crew_worker_run(shm_fd, slot);
        _exit(0);
    }
    return pid;
}

/* A worker's launch runs outside the pool lock: while one slot's launcher
 * is slow (a fork server far away, Python's launcher waiting for the GIL),
 * the other workers take and answer tasks. Under the lock, every submit and
 * every answer waited for the launcher. */
TEST(a_slow_launch_does_not_stall_the_pool)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = CREW_PROCESSES;
    o.workers = 2;
    o.launch = slow_launch;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    int one = 1;
    crew_future *f;
    CHECK_OK(crew_submit(p, "echo", &one, sizeof one, &f));
    CHECK_OK(crew_future_wait(f, 10.0));
    crew_future_release(f);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    atomic_store(&launcher_held, 1);
    CHECK(kill(st.worker[0].pid, SIGKILL) == 0); /* its replacement's launch is held */
    for (int k = 0; k < 2000 && !atomic_load(&launcher_inside); k++)
        test_sleep_us(1000);
    CHECK(atomic_load(&launcher_inside));
    int done = 0;
    for (int i = 0; i < 20; i++) {
        if (crew_submit(p, "echo", &i, sizeof i, &f) != 0)
            break;
        if (crew_future_wait(f, 10.0) == 0 && crew_future_status(f) == 0)
            done++;
        crew_future_release(f);
    }
    int gave_up = atomic_load(&launcher_gave_up);
    atomic_store(&launcher_held, 0);
    CHECK_EQ_INT(done, 20);     /* all answered by the other worker...   */
    CHECK_EQ_INT(gave_up, 0);   /* ...while the launch was still held     */
    if (crew__locks_held() >= 0) /* a CREW_LOCKCHECK build: it ran unlocked */
        CHECK_EQ_INT(atomic_load(&launcher_locks), 0);
    CHECK_OK(crew_pool_close(p));
    crew_pool_free(p);
}

TEST_MAIN_AFTER(if (crew_main(argc, argv) < 0) return 1)
