/* test_terminate_signal.c — crew_pool_terminate_signal(): the chosen signal stops the
 * workers; running tasks fail as crashed (naming it), queued ones are cancelled; a
 * worker that ignores SIGTERM is stopped by a later call with SIGKILL. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crew.h"

/* Naps under way, counted in a page the forked workers share (NULL: none). */
static _Atomic int *napping;

/* Sleeps the int milliseconds it is given (SIGTERM ignored when told so). */
static int t_nap(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int ms = 0;
    memcpy(&ms, arg, len < sizeof ms ? len : sizeof ms);
    if (napping)
        atomic_fetch_add(napping, 1);
    if (ms < 0) {
        signal(SIGTERM, SIG_IGN);
        ms = -ms;
    }
    test_sleep_us((long)ms * 1000);
    return crew_out_set(out, &ms, sizeof ms);
}

CREW_TASK("nap", t_nap)

static crew_pool *fork_pool(int workers)
{
    crew_options o = test_fork_options(workers);
    crew_pool *p = NULL;
    if (crew_pool_create(&p, &o) < 0)
        return NULL;
    return p;
}

static crew_future *nap(crew_pool *p, int ms)
{
    crew_future *f = NULL;
    if (crew_submit(p, "nap", &ms, sizeof ms, &f) < 0)
        return NULL;
    return f;
}

TEST(sigterm_fails_running_and_cancels_queued)
{
    napping = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(napping != MAP_FAILED);
    atomic_store(napping, 0);
    crew_pool *p = fork_pool(2);
    CHECK(p != NULL);
    crew_future *fs[5];
    for (int i = 0; i < 5; i++)
        CHECK((fs[i] = nap(p, 20000)) != NULL);
    /* both workers napping (which tasks they took is theirs to choose) */
    for (int waited = 0; atomic_load(napping) < 2 && waited < 20000; waited++)
        test_sleep_us(1000);
    CHECK_EQ_INT(atomic_load(napping), 2);
    CHECK_OK(crew_pool_terminate_signal(p, SIGTERM));
    int crashed = 0, cancelled = 0;
    for (int i = 0; i < 5; i++) {
        int st = crew_future_result(fs[i], NULL, NULL);
        if (st == CREW_ECRASHED && strstr(crew_future_error(fs[i]), "signal 15"))
            crashed++; /* it was running: its worker got the signal */
        else if (st == -ECANCELED)
            cancelled++; /* it had not started */
        else
            printf("  task %d: status %d (%s)\n", i, st, crew_future_error(fs[i]));
        crew_future_release(fs[i]);
    }
    CHECK_EQ_INT(crashed, 2);
    CHECK_EQ_INT(cancelled, 3);
    crew_future *late = NULL;
    CHECK_EQ_INT(crew_submit(p, "nap", "\0\0\0\0", 4, &late), CREW_ECLOSED);
    crew_pool_free(p);
    munmap((void *)napping, 4096);
    napping = NULL;
}

static void *terminate_main(void *arg)
{
    crew_pool_terminate_signal(arg, SIGTERM);
    return NULL;
}

TEST(sigkill_after_an_ignored_sigterm)
{
    crew_pool *p = fork_pool(1);
    CHECK(p != NULL);
    crew_future *f = nap(p, -20000);
    CHECK(f != NULL);
    test_sleep_us(300000);
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, terminate_main, p)); /* waits: SIGTERM is ignored */
    test_sleep_us(300000);
    CHECK_EQ_INT(crew_future_status(f), -EINPROGRESS); /* still running */
    CHECK_OK(crew_pool_terminate_signal(p, SIGKILL));
    pthread_join(t, NULL);
    CHECK_EQ_INT(crew_future_result(f, NULL, NULL), CREW_ECRASHED);
    CHECK(strstr(crew_future_error(f), "signal 9") != NULL);
    crew_future_release(f);
    crew_pool_free(p);
}

TEST(bad_signal)
{
    crew_pool *p = fork_pool(1);
    CHECK(p != NULL);
    CHECK_EQ_INT(crew_pool_terminate_signal(p, -1), -EINVAL);
    CHECK_EQ_INT(crew_pool_terminate_signal(p, 100000), -EINVAL);
    CHECK_EQ_INT(crew_pool_terminate_signal(NULL, SIGTERM), -EINVAL);
    crew_pool_free(p);
}

TEST_MAIN()
