/* test_forkserver_locks.c — fork-server workers (raw CLONE_PARENT forks) keep lock semantics: mutual exclusion, dead owners reported. */
#include "test.h"
#include "helpers.h"

#include <signal.h>
#include <unistd.h>

#include "crew.h"

typedef struct args {
    crew_shared_ref lock, counter;
    int rounds;
    int die_holding; /* 1: take the lock and SIGKILL ourselves */
} args;

/* Adds 1 to a shared counter `rounds` times under the lock, with a window
 * between read and write that another owner would fall into. */
static int t_add(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud, (void)len;
    const args *a = arg;
    crew_lock *l;
    crew_array *c;
    int rc = crew_lock_open(&l, &a->lock);
    if (rc)
        return crew_out_error(out, "lock open: %s", crew_strerror(rc));
    if ((rc = crew_array_open(&c, &a->counter)))
        return crew_out_error(out, "array open: %s", crew_strerror(rc));
    volatile long *v = crew_array_data(c);
    int owner_died = 0;
    for (int i = 0; i < a->rounds; i++) {
        rc = crew_lock_acquire(l, 10);
        if (rc == CREW_EOWNERDEAD)
            owner_died++;
        else if (rc)
            return crew_out_error(out, "acquire: %s", crew_strerror(rc));
        if (a->die_holding)
            raise(SIGKILL);
        long x = *v;
        for (volatile int k = 0; k < 50; k++)
            ;
        *v = x + 1;
        crew_lock_release(l);
    }
    crew_array_free(c);
    crew_lock_free(l);
    return crew_out_set(out, &owner_died, sizeof owner_died);
}

CREW_TASK("fsl.add", t_add)

static crew_pool *pool(void)
{
    crew_options o;
    crew_options_init(&o);
    o.start = CREW_START_FORKSERVER;
    o.workers = 2;
    crew_pool *p = NULL;
    return crew_pool_create(&p, &o) == 0 ? p : NULL;
}

TEST(forkserver_workers_exclude_each_other)
{
    crew_pool *p = pool();
    CHECK(p != NULL);
    crew_lock *l;
    crew_array *c;
    CHECK_OK(crew_lock_create(&l, 0));
    CHECK_OK(crew_array_create(&c, sizeof(long), "int64"));
    args a = {.rounds = (int)test_scale(20000, 2000)};
    CHECK_OK(crew_lock_ref(l, &a.lock));
    CHECK_OK(crew_array_ref(c, &a.counter));
    crew_future *f[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(crew_submit(p, "fsl.add", &a, sizeof a, &f[i]));
    for (int i = 0; i < 4; i++) {
        int rc = crew_future_result(f[i], NULL, NULL);
        if (rc)
            printf("task: %s\n", crew_future_error(f[i]));
        CHECK_OK(rc);
        crew_future_release(f[i]);
    }
    CHECK_EQ_INT((int)*(long *)crew_array_data(c), 4 * a.rounds);
    crew_array_free(c);
    crew_lock_free(l);
    crew_pool_free(p);
}

TEST(forkserver_worker_dying_with_the_lock_is_reported)
{
    crew_pool *p = pool();
    CHECK(p != NULL);
    crew_lock *l;
    crew_array *c;
    CHECK_OK(crew_lock_create(&l, 0));
    CHECK_OK(crew_array_create(&c, sizeof(long), "int64"));
    args a = {.rounds = 1, .die_holding = 1};
    CHECK_OK(crew_lock_ref(l, &a.lock));
    CHECK_OK(crew_array_ref(c, &a.counter));
    crew_future *f;
    CHECK_OK(crew_submit(p, "fsl.add", &a, sizeof a, &f));
    CHECK_EQ_INT(crew_future_result(f, NULL, NULL), CREW_ECRASHED);
    crew_future_release(f);
    /* the next locker, in another fork-server worker, is told */
    a.die_holding = 0;
    CHECK_OK(crew_submit(p, "fsl.add", &a, sizeof a, &f));
    const void *d;
    CHECK_OK(crew_future_result(f, &d, NULL));
    CHECK_EQ_INT(*(const int *)d, 1);
    crew_future_release(f);
    crew_array_free(c);
    crew_lock_free(l);
    crew_pool_free(p);
}

TEST_MAIN_AFTER(if (crew_main(argc, argv) < 0) return 1)
