/* lockorder.h — crew's parent-side locks by rank, and a debug build (CREW_LOCKCHECK) that asserts they are taken in rank order. */
#ifndef CREW_LOCKORDER_H
#define CREW_LOCKORDER_H

#include <pthread.h>

/*
 * The one lock order (pool.c's opening comment says why each is where it is).
 * A thread may take a lock only while every lock it holds has a lower rank;
 * the GIL (Python) ranks below them all, so it is never taken while one of
 * them is held, and neither is a thread joined (crew__lock_none_held()).
 */
enum crew__lock_rank {
    CREW__LOCK_POOL = 1,       /* p->mu: one pool's state                    */
    CREW__LOCK_FORKSERVER = 2, /* fs_mu: the fork server's channel           */
    CREW__LOCK_KEEPER = 3,     /* the fork server keeper's hand-off          */
    CREW__LOCK_REGISTRY = 4,   /* reg_mu: the task registry (a leaf)         */
    CREW__LOCK_RECLAIM = 5,    /* p->reclaim_mu: big freed runs (a leaf)     */
};

#ifdef CREW_LOCKCHECK
/* Takes m, first checking that this thread holds no lock of rank >= rank;
 * a violation prints both locks and aborts. */
void crew__lock(pthread_mutex_t *m, int rank);
/* Releases m (the most recent lock of that rank this thread took). */
void crew__unlock(pthread_mutex_t *m, int rank);
/* Aborts, naming what, when this thread holds any crew lock: called before
 * what must never happen under one (joining a thread, taking the GIL). */
void crew__lock_none_held(const char *what);
/* The number of crew locks this thread holds (tests). */
int crew__locks_held(void);
#else
static inline void crew__lock(pthread_mutex_t *m, int rank)
{
    (void)rank;
    pthread_mutex_lock(m);
}
static inline void crew__unlock(pthread_mutex_t *m, int rank)
{
    (void)rank;
    pthread_mutex_unlock(m);
}
static inline void crew__lock_none_held(const char *what)
{
    (void)what;
}
static inline int crew__locks_held(void)
{
    return -1; /* unknown: not a CREW_LOCKCHECK build */
}
#endif

#endif
