/* shared_lock.c — crew_lock: Lock and RLock across processes, a robust mutex in its own region. */
#include <errno.h>
#include <stdlib.h>

#include "shared/region.h"

struct crew_lock {
    crew__sh sh;
};

pthread_mutex_t *crew__lock_mutex(crew_lock *l)
{
    return crew__sh_body(&l->sh);
}

int crew_lock_create(crew_lock **out, int recursive)
{
    if (!out)
        return -EINVAL;
    crew_lock *l;
    int rc = CREW__SH_NEW(crew_lock, CREW_SHARED_LOCK, sizeof(pthread_mutex_t), &l);
    if (rc == 0 && (rc = crew__rmutex_init(crew__lock_mutex(l), recursive != 0)) != 0)
        crew_lock_free(l);
    if (rc == 0)
        *out = l;
    return rc;
}

int crew_lock_acquire(crew_lock *l, double timeout)
{
    if (!l)
        return -EINVAL;
    return crew__rmutex_lock(crew__lock_mutex(l), crew__deadline(timeout));
}

int crew_lock_release(crew_lock *l)
{
    if (!l)
        return -EINVAL;
    return crew__rmutex_unlock(crew__lock_mutex(l));
}

CREW__SH_BOILERPLATE(lock, crew_lock, CREW_SHARED_LOCK)
