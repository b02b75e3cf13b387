/* test_terminate_signal.c — crew_pool_terminate_signal(): the chosen signal stops the
 * workers; running tasks fail as crashed (naming it), queued ones are cancelled; a
 * worker that ignores SIGTERM is stopped by a later call with SIGKILL. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "crew.h"

/* Sleeps the int milliseconds it is given (SIGTERM ignored when told so). */
static int t_nap(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int ms = 0;
    memcpy(&ms, arg, len < sizeof ms ? len : sizeof ms);
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
    crew_options o;
    crew_options_init(&o);
    o.kind = CREW_PROCESSES;
    o.start = CREW_START_FORK;
    o.workers = workers;
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
    crew_pool *p = fork_pool(2);
    CHECK(p != NULL);
    crew_future *run[2], *queued[3];
    for (int i = 0; i < 2; i++)
        CHECK((run[i] = nap(p, 20000)) != NULL);
    for (int i = 0; i < 3; i++)
        CHECK((queued[i] = nap(p, 20000)) != NULL);
    test_sleep_us(300000); /* both naps under way */
    CHECK_OK(crew_pool_terminate_signal(p, SIGTERM));
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(crew_future_result(run[i], NULL, NULL), CREW_ECRASHED);
        CHECK(strstr(crew_future_error(run[i]), "signal 15") != NULL);
        crew_future_release(run[i]);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(crew_future_result(queued[i], NULL, NULL), -ECANCELED);
        crew_future_release(queued[i]);
    }
    crew_future *late = NULL;
    CHECK_EQ_INT(crew_submit(p, "nap", "\0\0\0\0", 4, &late), CREW_ECLOSED);
    crew_pool_free(p);
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
