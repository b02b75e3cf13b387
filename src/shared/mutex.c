/* shared_mutex.c — robust, process-shared pthread mutexes: a dead holder is reported, never a deadlock. */
#include "shared/region.h"

#include <errno.h>
#include <time.h>

#include "base/sync.h"

int crew__rmutex_init(pthread_mutex_t *m, bool recursive)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc)
        return -rc;
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK);
    rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

int crew__rmutex_lock(pthread_mutex_t *m, uint64_t deadline)
{
    int rc;
    /* spin briefly first: robust mutexes cannot be adaptive, and a holder
     * in another process usually lets go within a few hundred cycles */
    if (deadline != 0 && crew__spin_ns()) {
        for (int i = 0; i < 100; i++) {
            rc = pthread_mutex_trylock(m);
            if (rc != EBUSY)
                goto done;
            for (int j = 0; j < 8; j++)
                crew__cpu_relax();
        }
    }
    if (deadline == UINT64_MAX) {
        rc = pthread_mutex_lock(m);
    } else if (deadline == 0) {
        rc = pthread_mutex_trylock(m);
        if (rc == EBUSY)
            rc = EAGAIN;
    } else {
#if defined(__SANITIZE_THREAD__)
        /* TSan's timed-lock interceptors miss EOWNERDEAD: poll with trylock */
        while ((rc = pthread_mutex_trylock(m)) == EBUSY && crew__remaining(deadline) > 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        if (rc == EBUSY)
            rc = ETIMEDOUT;
#else
        struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
        rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#endif
        if (rc == ETIMEDOUT)
            rc = EAGAIN;
    }
done:
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        return CREW_EOWNERDEAD;
    }
    return -rc;
}

int crew__rmutex_unlock(pthread_mutex_t *m)
{
    return -pthread_mutex_unlock(m);
}

uint64_t crew__deadline(double timeout)
{
    if (timeout < 0)
        return UINT64_MAX;
    if (timeout == 0)
        return 0;
    if (timeout > 1e9)
        return UINT64_MAX;
    return crew__now_ns() + (uint64_t)(timeout * 1e9) + 1;
}

uint64_t crew__remaining(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return UINT64_MAX;
    uint64_t now = crew__now_ns();
    return deadline > now ? deadline - now : 0;
}

int crew__sh_wait(_Atomic uint32_t *w, uint32_t v, uint64_t deadline, uint64_t slice_ns)
{
    uint64_t rem = crew__remaining(deadline);
    if (rem == 0)
        return -EAGAIN;
    if (rem > slice_ns)
        rem = slice_ns;
    crew__futex_wait(w, v, rem, true);
    return 0;
}
