/* test_shared_sync.c — Lock, RLock, Semaphore, Event, Condition and Barrier across forked processes; dead holders reported. */
#include "test.h"
#include "helpers.h"
#include "shared_helpers.h"

#include <errno.h>
#include <pthread.h>

/* TSan reports an unlock of a lock not held, which some checks do on purpose */
#if defined(__SANITIZE_THREAD__)
#define WRONG_UNLOCKS 0
#else
#define WRONG_UNLOCKS 1
#endif

/* --------------------------------------------------------------- locks */

static crew_lock *g_lock;
static crew_array *g_arr;

static int child_count(void *arg)
{
    long n = (long)arg;
    volatile long *ctr = crew_array_data(g_arr);
    for (long i = 0; i < n; i++) {
        if (crew_lock_acquire(g_lock, -1))
            return 2;
        long v = *ctr; /* not atomic: only the lock keeps it right */
        *ctr = v + 1;
        if (crew_lock_release(g_lock))
            return 3;
    }
    return 0;
}

TEST(lock_mutual_exclusion_across_processes)
{
    long n = test_scale(20000, 2000);
    CHECK_OK(crew_lock_create(&g_lock, 0));
    CHECK_OK(crew_array_create(&g_arr, sizeof(long), NULL));
    pid_t a = sh_fork(child_count, (void *)n), b = sh_fork(child_count, (void *)n);
    CHECK_EQ_INT(child_count((void *)n), 0);
    CHECK_EQ_INT(sh_join(a), 0);
    CHECK_EQ_INT(sh_join(b), 0);
    CHECK_EQ_INT(*(long *)crew_array_data(g_arr), 3 * n);
    crew_array_free(g_arr);
    crew_lock_free(g_lock);
}

static int child_die_holding(void *arg)
{
    (void)arg;
    if (crew_lock_acquire(g_lock, -1))
        return 2;
    raise(SIGKILL); /* dies holding it */
    return 0;
}

TEST(lock_dead_holder_is_reported_to_next_locker)
{
    CHECK_OK(crew_lock_create(&g_lock, 0));
    CHECK_EQ_INT(sh_join(sh_fork(child_die_holding, NULL)), 128 + SIGKILL);
    CHECK_EQ_INT(crew_lock_acquire(g_lock, 1.0), CREW_EOWNERDEAD);
    CHECK_OK(crew_lock_release(g_lock));
    CHECK_OK(crew_lock_acquire(g_lock, 0)); /* usable again, no error */
    CHECK_OK(crew_lock_release(g_lock));
    CHECK(strstr(crew_strerror(CREW_EOWNERDEAD), "died") != NULL);
    crew_lock_free(g_lock);
}

static int child_hold_briefly(void *arg)
{
    (void)arg;
    if (crew_lock_acquire(g_lock, -1))
        return 2;
    test_sleep_us(300000);
    return crew_lock_release(g_lock) ? 3 : 0;
}

TEST(lock_timeout_try_and_errors)
{
    CHECK_OK(crew_lock_create(&g_lock, 0));
    CHECK_OK(crew_lock_acquire(g_lock, 0));
    CHECK_EQ_INT(crew_lock_acquire(g_lock, 0), -EDEADLK);
    CHECK_OK(crew_lock_release(g_lock));
    if (WRONG_UNLOCKS)
        CHECK_EQ_INT(crew_lock_release(g_lock), -EPERM);
    pid_t c = sh_fork(child_hold_briefly, NULL);
    test_sleep_us(100000);
    uint64_t t0 = test_now_ns();
    CHECK_EQ_INT(crew_lock_acquire(g_lock, 0), -EAGAIN);
    CHECK_EQ_INT(crew_lock_acquire(g_lock, 0.05), -EAGAIN);
    CHECK(test_now_ns() - t0 >= 40000000u);
    CHECK_OK(crew_lock_acquire(g_lock, 5.0));
    CHECK_OK(crew_lock_release(g_lock));
    CHECK_EQ_INT(sh_join(c), 0);
    crew_lock_free(g_lock);
}

TEST(rlock_is_reentrant)
{
    crew_lock *l;
    CHECK_OK(crew_lock_create(&l, 1));
    CHECK_OK(crew_lock_acquire(l, 0));
    CHECK_OK(crew_lock_acquire(l, 0));
    CHECK_OK(crew_lock_release(l));
    CHECK_OK(crew_lock_release(l));
    if (WRONG_UNLOCKS)
        CHECK_EQ_INT(crew_lock_release(l), -EPERM);
    crew_lock_free(l);
}

/* ----------------------------------------------------------- semaphore */

static crew_semaphore *g_sem;

static int child_sem(void *arg)
{
    (void)arg;
    volatile long *inside = crew_array_data(g_arr);
    for (int i = 0; i < 200; i++) {
        if (crew_semaphore_acquire(g_sem, 10))
            return 2;
        long v = __atomic_add_fetch(&inside[0], 1, __ATOMIC_SEQ_CST);
        if (v > 2)
            __atomic_store_n(&inside[1], v, __ATOMIC_SEQ_CST);
        __atomic_sub_fetch(&inside[0], 1, __ATOMIC_SEQ_CST);
        if (crew_semaphore_release(g_sem, 1))
            return 3;
    }
    return 0;
}

TEST(semaphore_bounds_concurrency)
{
    CHECK_OK(crew_semaphore_create(&g_sem, 2, 2));
    CHECK_OK(crew_array_create(&g_arr, 2 * sizeof(long), NULL));
    pid_t c[4];
    for (int i = 0; i < 4; i++)
        c[i] = sh_fork(child_sem, NULL);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(sh_join(c[i]), 0);
    CHECK_EQ_INT(((long *)crew_array_data(g_arr))[1], 0); /* never more than 2 inside */
    CHECK_EQ_INT(crew_semaphore_value(g_sem), 2);
    CHECK_EQ_INT(crew_semaphore_release(g_sem, 1), -EOVERFLOW);
    CHECK_OK(crew_semaphore_acquire(g_sem, 0));
    CHECK_OK(crew_semaphore_acquire(g_sem, 0));
    CHECK_EQ_INT(crew_semaphore_acquire(g_sem, 0), -EAGAIN);
    CHECK_EQ_INT(crew_semaphore_acquire(g_sem, 0.02), -EAGAIN);
    CHECK_OK(crew_semaphore_release(g_sem, 2));
    crew_array_free(g_arr);
    crew_semaphore_free(g_sem);
    CHECK_EQ_INT(crew_semaphore_create(&g_sem, 3, 2), -EINVAL);
}

/* ------------------------------------------------------- event, barrier */

static crew_event *g_ev;

static int child_wait_event(void *arg)
{
    (void)arg;
    return crew_event_wait(g_ev, 10) ? 2 : 0;
}

TEST(event_wakes_every_waiter)
{
    CHECK_OK(crew_event_create(&g_ev));
    CHECK_EQ_INT(crew_event_is_set(g_ev), 0);
    CHECK_EQ_INT(crew_event_wait(g_ev, 0.02), -EAGAIN);
    pid_t c[3];
    for (int i = 0; i < 3; i++)
        c[i] = sh_fork(child_wait_event, NULL);
    test_sleep_us(50000);
    CHECK_OK(crew_event_set(g_ev));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(sh_join(c[i]), 0);
    CHECK_EQ_INT(crew_event_is_set(g_ev), 1);
    CHECK_OK(crew_event_wait(g_ev, 0));
    CHECK_OK(crew_event_clear(g_ev));
    CHECK_EQ_INT(crew_event_wait(g_ev, 0), -EAGAIN);
    crew_event_free(g_ev);
}

static crew_barrier *g_bar;

static int child_barrier(void *arg)
{
    (void)arg;
    int seen = 0;
    for (int r = 0; r < 50; r++) {
        int i = crew_barrier_wait(g_bar, 10);
        if (i < 0 || i > 2)
            return 2;
        seen |= 1 << i;
    }
    return seen ? 0 : 3;
}

TEST(barrier_rounds_timeout_and_reset)
{
    CHECK_OK(crew_barrier_create(&g_bar, 3));
    CHECK_EQ_INT(crew_barrier_parties(g_bar), 3);
    pid_t a = sh_fork(child_barrier, NULL), b = sh_fork(child_barrier, NULL);
    CHECK_EQ_INT(child_barrier(NULL), 0);
    CHECK_EQ_INT(sh_join(a), 0);
    CHECK_EQ_INT(sh_join(b), 0);
    /* alone: the timeout breaks it */
    CHECK_EQ_INT(crew_barrier_wait(g_bar, 0.05), -EAGAIN);
    CHECK_EQ_INT(crew_barrier_wait(g_bar, 0.05), CREW_EBROKEN);
    CHECK_OK(crew_barrier_reset(g_bar));
    a = sh_fork(child_barrier, NULL), b = sh_fork(child_barrier, NULL);
    CHECK_EQ_INT(child_barrier(NULL), 0);
    CHECK_EQ_INT(sh_join(a), 0);
    CHECK_EQ_INT(sh_join(b), 0);
    crew_barrier_free(g_bar);
}

static int child_abort_later(void *arg)
{
    (void)arg;
    test_sleep_us(50000);
    return crew_barrier_abort(g_bar) ? 2 : 0;
}

TEST(barrier_abort_wakes_waiters)
{
    CHECK_OK(crew_barrier_create(&g_bar, 2));
    pid_t c = sh_fork(child_abort_later, NULL);
    CHECK_EQ_INT(crew_barrier_wait(g_bar, 10), CREW_EBROKEN);
    CHECK_EQ_INT(sh_join(c), 0);
    crew_barrier_free(g_bar);
}

/* ------------------------------------------------------------ condition */

static crew_condition *g_cond;

static int child_producer(void *arg)
{
    (void)arg;
    volatile long *v = crew_array_data(g_arr);
    for (int i = 0; i < 100; i++) {
        if (crew_lock_acquire(g_lock, 10))
            return 2;
        (*v)++;
        crew_condition_notify_all(g_cond);
        crew_lock_release(g_lock);
    }
    return 0;
}

TEST(condition_wait_notify_across_processes)
{
    CHECK_OK(crew_lock_create(&g_lock, 0));
    CHECK_OK(crew_condition_create(&g_cond));
    CHECK_OK(crew_array_create(&g_arr, sizeof(long), NULL));
    volatile long *v = crew_array_data(g_arr);
    CHECK_OK(crew_lock_acquire(g_lock, -1));
    CHECK_EQ_INT(crew_condition_wait(g_cond, g_lock, 0.02), -EAGAIN);
    pid_t c = sh_fork(child_producer, NULL);
    int rc = 0;
    while (*v < 100 && rc == 0) {
        rc = crew_condition_wait(g_cond, g_lock, 10);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_OK(crew_lock_release(g_lock));
    CHECK_EQ_INT(sh_join(c), 0);
    if (WRONG_UNLOCKS)
        CHECK_EQ_INT(crew_condition_wait(g_cond, g_lock, 0), -EPERM);
    crew_array_free(g_arr);
    crew_condition_free(g_cond);
    crew_lock_free(g_lock);
}

/* --------------------------------------------------- threads (for TSan) */

static long t_counter;

static void *thread_count(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        crew_lock_acquire(g_lock, -1);
        t_counter++;
        crew_lock_release(g_lock);
        crew_semaphore_acquire(g_sem, -1);
        crew_semaphore_release(g_sem, 1);
    }
    return NULL;
}

TEST(threads_share_lock_and_semaphore)
{
    CHECK_OK(crew_lock_create(&g_lock, 0));
    CHECK_OK(crew_semaphore_create(&g_sem, 1, 0));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_count, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(t_counter, 8000);
    crew_semaphore_free(g_sem);
    crew_lock_free(g_lock);
}

static crew_shared_ref g_holders_ref;

static int open_and_leave(void *arg)
{
    (void)arg;
    crew_queue *c;
    int rc = crew_queue_open(&c, &g_holders_ref);
    return rc ? (-rc) & 255 : 0; /* exits holding it: no free */
}

TEST(holders_that_exited_do_not_fill_the_table)
{
    crew_queue *q;
    CHECK_OK(crew_queue_create(&q, 0, 4096));
    CHECK_OK(crew_queue_ref(q, &g_holders_ref));
    int n = TEST_SANITIZED ? 300 : 600; /* more than the table has entries */
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(sh_join(sh_fork(open_and_leave, NULL)), 0);
    crew_queue_free(q);
}

static crew_event *g_event;

static int wait_event(void *arg)
{
    (void)arg;
    return crew_event_wait(g_event, 5) == 0 ? 0 : 1;
}

TEST(event_set_then_clear_still_wakes_the_waiters)
{
    CHECK_OK(crew_event_create(&g_event));
    pid_t c = sh_fork(wait_event, NULL);
    test_sleep_us(200000); /* the child sleeps in wait() */
    CHECK_OK(crew_event_set(g_event));
    CHECK_OK(crew_event_clear(g_event));
    CHECK_EQ_INT(sh_join(c), 0); /* as threading.Event: woken, not timed out */
    crew_event_free(g_event);
}

TEST_MAIN()
