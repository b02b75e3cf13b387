/* reclaim.c — big arena runs the parent frees keep their pages for a while (a big argument handed over again finds them warm) and go back to the system once unused (the supervisor's tick). */

#include <stdint.h>

#include "base/lockorder.h"
#include "base/sync.h"
#include "pool/pool.h"

void crew__pool_free_run(crew_pool *p, int64_t off, uint64_t len)
{
    if (!crew__arena_free_keep(&p->reg.arena, off, len))
        return;
    uint64_t now = crew__now_ns();
    crew__lock(&p->reclaim_mu, CREW__LOCK_RECLAIM);
    int k;
    for (k = 0; k < p->nreclaim && p->reclaim[k].off != off; k++)
        ;
    bool noted = k < p->nreclaim;
    if (noted) { /* a run freed again: its clock starts over, and the longer
                  * span stays noted (what of it is free goes back) */
        if (p->reclaim[k].len > len)
            len = p->reclaim[k].len;
    } else if (k < CREW__RECLAIM_MAX && !p->reclaim_stopped) {
        p->nreclaim++;
        noted = true;
    }
    if (noted)
        p->reclaim[k] = (crew__reclaim){.off = off, .len = len, .freed_ns = now};
    crew__unlock(&p->reclaim_mu, CREW__LOCK_RECLAIM);
    if (!noted) /* that many big runs freed within the delay, or no supervisor
                 * any more: this one goes now */
        (void)crew__arena_return(&p->reg.arena, off, len);
}

void crew__pool_msg_free(crew_pool *p, const crew__msg *m)
{
    if (m->flags & CREW__MSG_ARENA)
        crew__pool_free_run(p, (int64_t)m->off, m->len);
}

/* Takes off the list the runs due (freed CREW__RECLAIM_NS ago or more;
 * every run once `stop`, which also makes later frees give back at once)
 * and gives their pages back outside every lock: dropping hundreds of MiB
 * of pages takes a while. A run allocated again since keeps what is in use
 * (its new owner frees it later). Returns the ns until the next is due. */
static uint64_t give_back(crew_pool *p, bool stop)
{
    crew__reclaim due[CREW__RECLAIM_MAX];
    int ndue = 0;
    uint64_t now = crew__now_ns(), next = UINT64_MAX;
    crew__lock(&p->reclaim_mu, CREW__LOCK_RECLAIM);
    if (stop)
        p->reclaim_stopped = true;
    for (int k = 0; k < p->nreclaim;) {
        uint64_t at = p->reclaim[k].freed_ns + CREW__RECLAIM_NS;
        if (stop || at <= now) {
            due[ndue++] = p->reclaim[k];
            p->reclaim[k] = p->reclaim[--p->nreclaim];
            continue;
        }
        if (at - now < next)
            next = at - now;
        k++;
    }
    crew__unlock(&p->reclaim_mu, CREW__LOCK_RECLAIM);
    for (int k = 0; k < ndue; k++)
        (void)crew__arena_return(&p->reg.arena, due[k].off, due[k].len);
    return next;
}

uint64_t crew__reclaim_due(crew_pool *p)
{
    return give_back(p, false);
}

void crew__reclaim_stop(crew_pool *p)
{
    (void)give_back(p, true);
}
