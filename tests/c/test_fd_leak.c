/* test_fd_leak.c — creating, using and freeing pools many times leaks no fds, memory, threads or zombies. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crew.h"

static int t_add1(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int v = 0;
    memcpy(&v, arg, len < sizeof v ? len : sizeof v);
    v++;
    return crew_out_set(out, &v, sizeof v);
}

CREW_TASK("add1", t_add1)

/* Threads of this process, from /proc/self/status. */
static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* One pool life: create, a few tasks (one large), close or terminate, free. */
static int one_pool(crew_kind kind, int round)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = kind;
    o.start = CREW_START_FORK;
    o.workers = 1;
    o.arena_size = 16u << 20;
    crew_pool *p;
    int rc = crew_pool_create(&p, &o);
    if (rc < 0)
        return rc;
    static char big[100000];
    crew_future *fs[4];
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = crew_submit(p, "add1", &i, sizeof i, &fs[i]);
    if (rc == 0)
        rc = crew_submit(p, "add1", big, sizeof big, &fs[3]);
    if (rc == 0) {
        for (int i = 0; i < 4; i++) {
            const void *d;
            int r = crew_future_result(fs[i], &d, NULL);
            if (r == 0 && i < 3 && *(const int *)d != i + 1)
                r = -EPROTO;
            if (r < 0 && rc == 0)
                rc = r;
            crew_future_release(fs[i]);
        }
    }
    if (round % 2)
        crew_pool_close(p); /* odd rounds close first, even ones only free */
    crew_pool_free(p);
    return rc;
}

static void churn_test(crew_kind kind)
{
    int rounds = (int)test_scale(1000, 200), warm = 20;
    for (int i = 0; i < warm; i++)
        CHECK_OK(one_pool(kind, i));
    test_sleep_us(20000);
    int fds0 = test_fd_count(), threads0 = thread_count();
    long rss0 = test_rss_kb();
    for (int i = 0; i < rounds; i++)
        CHECK_OK(one_pool(kind, i));
    int threads = thread_count();
    for (int i = 0; i < 100 && threads > threads0; i++) { /* detached workers leave */
        test_sleep_us(10000);
        threads = thread_count();
    }
    int fds = test_fd_count();
    long rss = test_rss_kb();
    printf("  %d pools: fds %d -> %d, threads %d -> %d, VmRSS %ld -> %ld KiB\n", rounds, fds0,
           fds, threads0, threads, rss0, rss);
    CHECK(fds0 > 0);
    CHECK_EQ_INT(fds, fds0);
    CHECK(threads <= threads0);
    /* ASan keeps freed blocks in quarantine: its RSS only tells of big leaks */
    CHECK(rss - rss0 < (TEST_SANITIZED ? 32768 : 4096));
    CHECK_EQ_INT(test_zombie_children(getpid()), 0);
    errno = 0;
    pid_t w = waitpid(-1, NULL, WNOHANG);
    CHECK(w == 0 || (w == -1 && errno == ECHILD));
}

TEST(thread_pools_leak_nothing)
{
    churn_test(CREW_THREADS);
}

TEST(process_pools_leak_nothing)
{
    churn_test(CREW_PROCESSES);
}

TEST_MAIN()
