/* lockorder.c — the CREW_LOCKCHECK build's per-thread record of held locks, which aborts on a lock taken out of rank order. */

#include "base/lockorder.h"

#ifdef CREW_LOCKCHECK
#include <stdio.h>
#include <stdlib.h>

#define MAX_HELD 16

static const char *const names[] = {"?", "p->mu (pool)", "fs_mu (fork server)",
                                    "keeper mutex (fork server)", "reg_mu (registry)"};

static _Thread_local int held[MAX_HELD]; /* ranks, in the order taken */
static _Thread_local int nheld;

static const char *name_of(int rank)
{
    return rank > 0 && rank < (int)(sizeof names / sizeof *names) ? names[rank] : "?";
}

void crew__lock(pthread_mutex_t *m, int rank)
{
    for (int k = 0; k < nheld; k++)
        if (held[k] >= rank) {
            fprintf(stderr, "crew: lock order violated: taking %s while holding %s\n",
                    name_of(rank), name_of(held[k]));
            abort();
        }
    if (nheld == MAX_HELD) {
        fprintf(stderr, "crew: lock order check: more than %d locks held\n", MAX_HELD);
        abort();
    }
    pthread_mutex_lock(m);
    held[nheld++] = rank;
}

void crew__unlock(pthread_mutex_t *m, int rank)
{
    int k = nheld - 1;
    while (k >= 0 && held[k] != rank)
        k--;
    if (k < 0) {
        fprintf(stderr, "crew: lock order check: releasing %s, which this thread does not "
                "hold\n", name_of(rank));
        abort();
    }
    for (; k + 1 < nheld; k++)
        held[k] = held[k + 1];
    nheld--;
    pthread_mutex_unlock(m);
}

void crew__lock_none_held(const char *what)
{
    if (nheld) {
        fprintf(stderr, "crew: lock order violated: %s while holding %s\n", what,
                name_of(held[nheld - 1]));
        abort();
    }
}

int crew__locks_held(void)
{
    return nheld;
}
#else
typedef int crew__lockorder_unused; /* ISO C: no empty translation unit */
#endif
