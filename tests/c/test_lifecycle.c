/* test_lifecycle.c — start-method life cycle: fork-with-threads warning, RSS recycling, fork-server pool lives, CREW_ENOMAIN. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crew.h"
#include "pool/pool.h" /* internal: the arena's chunk count */
#include "launch/forkserver.h" /* internal: the servers' pids, the reply limit */

static int t_add1(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int v = 0;
    memcpy(&v, arg, len < sizeof v ? len : sizeof v);
    v++;
    return crew_out_set(out, &v, sizeof v);
}

static int t_pid(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)ud;
    int pid = getpid();
    return crew_out_set(out, &pid, sizeof pid);
}

static int t_echo(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    return crew_out_set(out, arg, len);
}

static int t_init_ok(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)out, (void)ud;
    return 0;
}

CREW_TASK("add1", t_add1)
CREW_TASK("pid", t_pid)
CREW_TASK("echo", t_echo)
CREW_TASK("init_ok", t_init_ok)

/* Runs fn with stderr sent to a temporary file; returns what it printed. */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/crew-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static int fork_pool_once(void)
{
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_FORK;
    o.workers = 1;
    crew_pool *p;
    int rc = crew_pool_create(&p, &o);
    if (rc == 0)
        crew_pool_free(p);
    return rc;
}

static void make_fork_pool(void)
{
    (void)fork_pool_once();
}

static atomic_int stop_sleeper;
static void *sleeper(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_sleeper))
        test_sleep_us(1000);
    return NULL;
}

TEST(fork_pool_without_other_threads_says_nothing)
{
    char *err = capture_stderr(make_fork_pool);
    CHECK(err != NULL);
    CHECK(strstr(err, "warning") == NULL);
}

TEST(fork_pool_with_a_running_thread_warns_once)
{
    pthread_t t;
    atomic_store(&stop_sleeper, 0);
    CHECK_EQ_INT(pthread_create(&t, NULL, sleeper, NULL), 0);
    char *err = capture_stderr(make_fork_pool);
    atomic_store(&stop_sleeper, 1);
    pthread_join(t, NULL);
    CHECK(err != NULL);
    CHECK(strstr(err, "crew: warning: the fork start method is used while this process runs 1 other thread") != NULL);
    CHECK(strstr(err, "deadlock") != NULL);
    CHECK(strstr(err, "CREW_START_FORKSERVER") != NULL);
    /* one warning, not one per worker */
    CHECK(strstr(strstr(err, "warning") + 1, "crew: warning") == NULL);
}

TEST(fork_server_and_spawn_pools_do_not_warn_with_threads)
{
    pthread_t t;
    atomic_store(&stop_sleeper, 0);
    CHECK_EQ_INT(pthread_create(&t, NULL, sleeper, NULL), 0);
    crew_options o;
    crew_options_init(&o);
    o.workers = 1;
    o.start = CREW_START_FORKSERVER;
    crew_pool *p = NULL;
    char path[] = "/tmp/crew-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = crew_pool_create(&p, &o);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[512] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    atomic_store(&stop_sleeper, 1);
    pthread_join(t, NULL);
    CHECK_OK(rc);
    crew_pool_free(p);
    CHECK(strstr(buf, "warning") == NULL);
}

TEST(default_start_method_is_forkserver_and_settable)
{
    CHECK_EQ_INT(crew_get_start_method(), CREW_START_FORKSERVER);
    CHECK(!strcmp(crew_start_method_name(crew_get_start_method()), "forkserver"));
    CHECK_EQ_INT(crew_set_start_method(CREW_START_DEFAULT), -EINVAL);
    CHECK_EQ_INT(crew_set_start_method((crew_start_method)9), -EINVAL);
    CHECK_OK(crew_set_start_method(CREW_START_SPAWN));
    CHECK_EQ_INT(crew_get_start_method(), CREW_START_SPAWN);
    CHECK_OK(crew_set_start_method(CREW_START_FORKSERVER));
    CHECK(crew_start_method_name((crew_start_method)9) == NULL);
}

TEST(rss_cap_recycles_workers_between_tasks_in_order)
{
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_FORKSERVER;
    o.workers = 1;
    o.max_worker_rss = 1; /* every worker is over it after its first task */
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    enum { N = 12 };
    crew_future *f[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(crew_submit(p, i % 2 ? "pid" : "add1", &i, sizeof i, &f[i]));
    int last_pid = 0, pids = 0;
    for (int i = 0; i < N; i++) {
        const void *d;
        CHECK_OK(crew_future_result(f[i], &d, NULL));
        if (i % 2 == 0)
            CHECK_EQ_INT(*(const int *)d, i + 1);
        else {
            if (*(const int *)d != last_pid)
                pids++;
            last_pid = *(const int *)d;
        }
        crew_future_release(f[i]);
    }
    CHECK(pids == N / 2); /* every "pid" task ran in a fresh worker */
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK(st.worker[0].restarts >= N - 1);
    CHECK_EQ_INT((int)st.failed, 0);
    crew_pool_free(p);
}

/* Zombie children of this process (state Z in /proc/<pid>/stat). */
static int zombies(void)
{
    int n = 0;
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r <= 0)
            break;
        n++; /* a child nobody reaped: crew should have */
    }
    return n;
}

TEST(fork_server_pool_lives_leave_nothing_behind)
{
    int rounds = (int)test_scale(300, 60);
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_FORKSERVER;
    o.workers = 1;
    o.arena_size = 16u << 20;
    /* warm up once: the fork server and lazily opened files exist from here */
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_pool_free(p);
    int fds = test_fd_count();
    long rss = test_rss_kb();
    for (int r = 0; r < rounds; r++) {
        CHECK_OK(crew_pool_create(&p, &o));
        crew_future *f;
        CHECK_OK(crew_submit(p, "add1", &r, sizeof r, &f));
        const void *d;
        CHECK_OK(crew_future_result(f, &d, NULL));
        CHECK_EQ_INT(*(const int *)d, r + 1);
        crew_future_release(f);
        if (r % 2)
            crew_pool_close(p);
        crew_pool_free(p);
    }
    CHECK_EQ_INT(test_fd_count(), fds);
    CHECK(test_rss_kb() - rss < (TEST_SANITIZED ? 32768 : 4096));
    CHECK_EQ_INT(zombies(), 0);
}

/* *pp: a pool of one worker started by start, once that worker has
 * answered (NULL when the pool could not be made). */
static void one_worker_up(crew_pool **pp, crew_start_method start)
{
    crew_options o;
    crew_options_init(&o);
    o.start = start;
    o.workers = 1;
    *pp = NULL;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    *pp = p;
    int one = 1;
    crew_future *f;
    CHECK_OK(crew_submit(p, "add1", &one, sizeof one, &f));
    CHECK_OK(crew_future_wait(f, 30));
    crew_future_release(f);
}

/* A fork server that takes a request and never answers (stopped, or hung
 * in a fork handler of the program it imported) held every fork-server
 * launch of the process, and close and terminate with them, for good: the
 * owner waited for its answer without a limit, under the servers' lock.
 * Now it is killed after crew__forkserver_reply_ms and another one serves. */
TEST(a_stopped_fork_server_is_replaced_not_waited_for)
{
    int keep_ms = crew__forkserver_reply_ms;
    crew__forkserver_reply_ms = 300;
    crew_pool *p;
    one_worker_up(&p, CREW_START_FORKSERVER);
    CHECK(p != NULL);
    pid_t servers[8];
    int n = crew__forkserver_pids(servers, 8);
    CHECK(n >= 1);
    if (n > 8)
        n = 8;
    for (int k = 0; k < n; k++)
        kill(servers[k], SIGSTOP);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    kill(st.worker[0].pid, SIGKILL); /* its restart asks a stopped server */
    int one = 1;
    crew_future *f;
    CHECK_OK(crew_submit(p, "add1", &one, sizeof one, &f));
    int rc = crew_future_wait(f, 20);
    for (int k = 0; k < n; k++) /* (killed by now, unless the test fails) */
        kill(servers[k], SIGCONT);
    CHECK_OK(rc);
    const void *d;
    CHECK_OK(crew_future_result(f, &d, NULL));
    CHECK_EQ_INT(*(const int *)d, 2);
    crew_future_release(f);
    pid_t now[8];
    int m = crew__forkserver_pids(now, 8);
    CHECK(m >= 1);
    for (int k = 0; k < m && k < 8; k++)
        for (int j = 0; j < n; j++)
            CHECK(now[k] != servers[j]);
    crew_pool_free(p);
    crew__forkserver_reply_ms = keep_ms;
}

/* A spawned worker gets stdio, its region and its prelude, nothing else the
 * program left inheritable: it held a pipe's write end for its whole life,
 * so the reader never saw EOF. */
TEST(a_spawned_worker_keeps_no_inheritable_descriptor_of_the_program)
{
    int pp[2];
    CHECK_OK(pipe(pp) < 0 ? -errno : 0); /* inheritable: no O_CLOEXEC */
    crew_pool *p;
    one_worker_up(&p, CREW_START_SPAWN);
    CHECK(p != NULL);
    close(pp[1]);
    struct pollfd pf = {pp[0], POLLIN, 0};
    int n = poll(&pf, 1, 2000);
    char c;
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT((int)read(pp[0], &c, 1), 0); /* EOF: no one else holds the write end */
    close(pp[0]);
    crew_pool_free(p);
}

TEST(initializer_argument_in_the_arena_is_freed_once_across_recycling)
{
    /* an initializer argument too big for a ring message lives in the arena;
     * it was freed when answered and again when its worker left, handing
     * its chunks to two owners at once */
    static char init_arg[4000], payload[100000];
    memset(init_arg, 'i', sizeof init_arg);
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_FORK;
    o.workers = 1;
    o.initializer = "init_ok";
    o.init_arg = init_arg;
    o.init_len = sizeof init_arg;
    o.max_tasks_per_worker = 1; /* a new worker, and a new initializer, per task */
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    for (int i = 0; i < 12; i++) {
        memset(payload, 'a' + i, sizeof payload);
        crew_future *f;
        CHECK_OK(crew_submit(p, "echo", payload, sizeof payload, &f));
        const void *d;
        size_t len;
        CHECK_OK(crew_future_result(f, &d, &len));
        CHECK(len == sizeof payload && !memcmp(d, payload, len));
        crew_future_release(f);
    }
    crew_pool_close(p);
    CHECK_EQ_INT((int)(int64_t)atomic_load(&p->reg.arena.ctl->used), 0);
    crew_pool_free(p);
}

static int t_sleep_ms(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int ms = 0;
    memcpy(&ms, arg, len < sizeof ms ? len : sizeof ms);
    test_sleep_us(ms * 1000L);
    return crew_out_set(out, &ms, sizeof ms);
}

CREW_TASK("sleep_ms", t_sleep_ms)

TEST(workers_that_die_as_they_start_fail_the_queue_without_a_restart_storm)
{
    char *argv[] = {(char *)"/nonexistent/crew-worker", NULL};
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_SPAWN;
    o.spawn_argv = argv; /* every worker's exec fails: exit status 127 */
    o.workers = 2;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *f;
    int one = 1;
    CHECK_OK(crew_submit(p, "add1", &one, sizeof one, &f));
    CHECK_OK(crew_future_wait(f, 10));
    CHECK_EQ_INT(crew_future_status(f), CREW_ECRASHED);
    CHECK(strstr(crew_future_error(f), "die as they start") != NULL);
    CHECK(strstr(crew_future_error(f), "status 127") != NULL);
    crew_future_release(f);
    test_sleep_us(1000000);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK(st.worker[0].restarts + st.worker[1].restarts < 30); /* backs off: no storm */
    crew_pool_free(p);
}

/* A launcher whose every worker is SIGKILLed as it starts (an OOM killer
 * at start-up, say). */
static pid_t killed_at_start(int shm_fd, int slot, void *ud)
{
    (void)shm_fd, (void)slot, (void)ud;
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGKILL);
        _exit(0);
    }
    return pid;
}

/* SIGKILLs of workers still starting are taken for kills from outside: a
 * few only slow restarts down (chaos: test_kills_before_hello), but a slot
 * whose every start is killed is a start loop too, and the queue fails. */
TEST(workers_killed_at_every_start_still_fail_the_queue)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = CREW_PROCESSES;
    o.workers = 2;
    o.launch = killed_at_start;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_future *f;
    int one = 1;
    CHECK_OK(crew_submit(p, "add1", &one, sizeof one, &f));
    CHECK_OK(crew_future_wait(f, 30));
    CHECK_EQ_INT(crew_future_status(f), CREW_ECRASHED);
    CHECK(strstr(crew_future_error(f), "die as they start") != NULL);
    CHECK(strstr(crew_future_error(f), "signal 9") != NULL);
    crew_future_release(f);
    crew_pool_free(p);
}

TEST(a_worker_reaped_by_someone_else_still_fails_only_its_task)
{
    struct sigaction old, ign = {.sa_handler = SIG_IGN};
    sigaction(SIGCHLD, &ign, &old); /* children are reaped by the kernel */
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_FORK;
    o.workers = 1;
    crew_pool *p;
    int rc = crew_pool_create(&p, &o);
    CHECK_OK(rc);
    crew_future *f;
    int ms = 5000;
    CHECK_OK(crew_submit(p, "sleep_ms", &ms, sizeof ms, &f));
    test_sleep_us(100000);
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    kill(st.worker[0].pid, SIGKILL);
    CHECK_OK(crew_future_wait(f, 5));
    CHECK_EQ_INT(crew_future_status(f), CREW_ECRASHED);
    CHECK(strstr(crew_future_error(f), "reaped elsewhere") != NULL);
    crew_future_release(f);
    int one = 1;
    CHECK_OK(crew_submit(p, "add1", &one, sizeof one, &f)); /* the pool goes on */
    const void *d;
    CHECK_OK(crew_future_result(f, &d, NULL));
    CHECK_EQ_INT(*(const int *)d, 2);
    crew_future_release(f);
    crew_pool_free(p);
    sigaction(SIGCHLD, &old, NULL);
}

/* Allocates and frees all the time, so that its allocator's locks are often
 * held when a worker is forked. */
static atomic_bool churn_stop;
static void *churn_main(void *arg)
{
    (void)arg;
    void *keep[64] = {0};
    for (unsigned i = 0; !atomic_load(&churn_stop); i++) {
        unsigned k = (i * 2654435761u) % 64;
        free(keep[k]);
        keep[k] = malloc(16 + (i * 40503u) % 4000);
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
    return NULL;
}

/* The first pool of a fresh process (CREW_TEST_FORK_CHURN set: this test
 * program started again by the test below), created while another thread
 * allocates: 0 when its tasks were answered, 1 when they were not. */
static int fork_churn_child(void)
{
    atomic_store(&churn_stop, false);
    pthread_t t;
    if (pthread_create(&t, NULL, churn_main, NULL) != 0)
        return 2;
    test_sleep_us(1000); /* the allocator is busy before the first fork */
    crew_options o = test_fork_options(2);
    crew_pool *p;
    int err = dup(2), null = open("/dev/null", O_WRONLY); /* the warning is known */
    dup2(null, 2);
    int rc = crew_pool_create(&p, &o);
    dup2(err, 2);
    close(err);
    close(null);
    if (rc != 0)
        return 2;
    int stuck = 0, v = 1;
    crew_future *f[2];
    for (int k = 0; k < 2; k++)
        if (crew_submit(p, "add1", &v, sizeof v, &f[k]) != 0)
            f[k] = NULL;
    for (int k = 0; k < 2; k++) {
        if (!f[k] || crew_future_wait(f[k], 10.0) != 0)
            stuck = 1;
        crew_future_release(f[k]);
    }
    crew_pool_terminate(p);
    crew_pool_free(p);
    atomic_store(&churn_stop, true);
    pthread_join(t, NULL);
    return stuck;
}

/* A forked worker runs no allocation of crew's own before its first task:
 * a lock another parent thread held at fork time stays held in the child
 * (GCC 12's AddressSanitizer allocator has no fork handlers), and a worker
 * that worked out its spin time by reading /proc with stdio as it started
 * hung there, its task with it. That happens in a process's first pool,
 * before crew caches the figure: each try is a fresh process. */
TEST(forked_workers_start_while_another_thread_allocates)
{
    int tries = (int)test_scale(40, 60), stuck = 0;
    for (int k = 0; k < tries; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            setenv("CREW_TEST_FORK_CHURN", "1", 1);
            execl("/proc/self/exe", "test_lifecycle", (char *)NULL);
            _exit(3);
        }
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 2 && WEXITSTATUS(st) != 3);
        stuck += WEXITSTATUS(st);
    }
    CHECK_EQ_INT(stuck, 0);
}

/* What Python does with the GIL: a task keeps something past its end while
 * more may be queued; crew_worker_hooks.idle lets go of it. Each worker
 * thread must let go before it waits for work and before it leaves. */
static _Atomic int kept_now, idle_calls;
static __thread int kept_here;

static int t_keep(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)out, (void)ud;
    if (!kept_here) {
        kept_here = 1;
        atomic_fetch_add(&kept_now, 1);
    }
    return 0;
}
CREW_TASK("keep", t_keep)

static void idle_lets_go(void)
{
    atomic_fetch_add(&idle_calls, 1);
    if (kept_here) {
        kept_here = 0;
        atomic_fetch_sub(&kept_now, 1);
    }
}

static bool nothing_kept_soon(void)
{
    for (int i = 0; i < 2000 && atomic_load(&kept_now) != 0; i++)
        test_sleep_us(1000);
    return atomic_load(&kept_now) == 0;
}

TEST(workers_let_go_of_what_tasks_kept_before_they_wait_or_leave)
{
    crew_worker_hooks h = {.idle = idle_lets_go};
    crew_set_worker_hooks(&h);
    for (unsigned max_tasks = 0; max_tasks <= 1; max_tasks++) { /* 1: each worker leaves */
        crew_options o;
        crew_options_init(&o);
        o.kind = CREW_THREADS;
        o.workers = 3;
        o.max_tasks_per_worker = max_tasks;
        crew_pool *p;
        CHECK_OK(crew_pool_create(&p, &o));
        crew_future *f[200];
        int n = max_tasks ? 20 : 200;
        for (int i = 0; i < n; i++)
            CHECK_OK(crew_submit(p, "keep", NULL, 0, &f[i]));
        for (int i = 0; i < n; i++) {
            CHECK_OK(crew_future_wait(f[i], -1));
            CHECK_EQ_INT(crew_future_status(f[i]), 0);
            crew_future_release(f[i]);
        }
        CHECK(nothing_kept_soon()); /* every worker waits for work: none keeps it */
        CHECK(atomic_load(&idle_calls) > 0);
        CHECK_OK(crew_submit(p, "keep", NULL, 0, &f[0]));
        CHECK_OK(crew_future_wait(f[0], -1));
        crew_future_release(f[0]);
        /* the workers leave (crew_pool_free terminates: a thread worker
         * leaves after its task, on its own): none keeps it */
        crew_pool_free(p);
        CHECK(nothing_kept_soon());
    }
    crew_set_worker_hooks(NULL);
}

TEST_MAIN_AFTER(if (getenv("CREW_TEST_FORK_CHURN")) return fork_churn_child();
                if (crew_main(argc, argv) < 0) return 1)
