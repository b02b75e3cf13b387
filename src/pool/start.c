/* start.c — the pool's side of starting a worker: the slot made fresh, its initializer queued, the launcher seam (launch/launch.h) called outside p->mu for processes. */

#include <errno.h>
#include <string.h>

#include "base/lockorder.h"
#include "launch/launch.h"
#include "pool/pool.h"
#include "worker/registry.h"

/* A thread worker leaves: it held a pool reference while it ran. */
static void thread_left(void *arg)
{
    crew__pool_unref(arg);
}

/* Makes slot i fresh for a new worker and fills the launcher's request;
 * the slot is STARTING from here to crew__launch_commit. 0, or a negative
 * errno when its initializer's argument finds no room. mu held. */
static int launch_prepare(crew_pool *p, int i, crew__launch_req *r)
{
    crew__wslot *ws = &p->w[i];
    crew__slot *sl = &p->reg.shm->slots[i];
    crew__ring *req = crew__region_req(&p->reg, (uint32_t)i);
    crew__ring *resp = crew__region_resp(&p->reg, (uint32_t)i);
    /* the slot is nobody's now: start it afresh */
    crew__ring_init(req, CREW__RING_CAP);
    crew__ring_init(resp, CREW__RING_CAP);
    ws->req_tail = 0;
    atomic_store_explicit(&ws->resp_head, 0, memory_order_relaxed);
    atomic_store(&sl->worker_sleeping, 0);
    atomic_store(&sl->worker_spinning, 0); /* (a worker killed as it spun) */
    atomic_store(&sl->quit, 0);
    atomic_store(&sl->cur_tag, 0);
    atomic_store(&sl->claimed, 0);
    ws->given = 0;
    ws->ghost_end = 0;
    ws->ready = false;
    ws->retiring = ws->killing = ws->broke_protocol = false;
    atomic_store_explicit(&ws->deaf, false, memory_order_relaxed);
    ws->kill_reason = 0;
    ws->kill_tag = NULL;
    ws->pid = 0;
    ws->pidfd = -1;
    if (p->opt.initializer) {
        memset(&ws->init_req, 0, sizeof ws->init_req);
        ws->init_req.flags = CREW__MSG_INIT;
        ws->init_req.fn_hash = crew__hash(p->opt.initializer);
        int rc = crew__msg_put(&p->reg.arena, &ws->init_req, p->opt.init_arg, p->opt.init_len);
        if (rc < 0) {
            memset(&ws->init_req, 0, sizeof ws->init_req);
            ws->state = CREW__SLOT_DEAD;
            return rc;
        }
        crew__ring_push_own(req, &ws->req_tail, &ws->init_req); /* an empty ring */
    }
    *r = (crew__launch_req){
        .reg = p->reg,
        .shm_fd = p->shm_fd,
        .slot = i,
        .kind = p->kind,
        .start = p->start,
        .spawn_argv = p->opt.spawn_argv,
        .prelude_fd = p->prelude_fd,
        .launch = p->opt.launch,
        .launch_udata = p->opt.launch_udata,
        .on_exit = thread_left,
        .on_exit_arg = p,
    };
    if (p->kind == CREW_THREADS)
        crew__pool_ref(p); /* the thread's own: dropped by thread_left */
    ws->state = CREW__SLOT_STARTING;
    return 0;
}

/* Records how slot i's launch went (rc, and what started). A process that
 * started while the pool was being terminated is killed at once, one that
 * started while it closes is told to quit: nothing outlives the pool.
 * Returns rc. mu held. */
static int launch_commit(crew_pool *p, int i, int rc, const crew__launched *got)
{
    crew__wslot *ws = &p->w[i];
    if (rc < 0) {
        if (p->kind == CREW_THREADS)
            crew__pool_unref(p);
        if (p->opt.initializer)
            crew__pool_msg_free(p, &ws->init_req);
        memset(&ws->init_req, 0, sizeof ws->init_req);
        ws->state = CREW__SLOT_DEAD;
    } else {
        ws->pid = got->pid;
        ws->pidfd = got->pidfd;
        ws->thread = got->thread;
        ws->has_thread = got->has_thread;
        ws->state = CREW__SLOT_LIVE;
        if (ws->killing || ws->broke_protocol) {
            /* its answers broke the protocol while it was STARTING: the kill
             * then had no pidfd to go through */
            crew__kill_worker(ws);
        } else if (p->terminated && p->kind == CREW_PROCESSES) {
            ws->kill_reason = -ECANCELED;
            ws->killing = true;
            crew__kill_worker(ws);
        } else if (p->quitting) {
            crew__quit_worker_locked(p, i);
        }
    }
    pthread_cond_broadcast(&p->cv); /* close and terminate wait for STARTING slots */
    return rc;
}

int crew__start_worker_locked(crew_pool *p, int i)
{
    crew__launch_req r;
    int rc = launch_prepare(p, i, &r);
    if (rc < 0)
        return rc;
    crew__launched got;
    if (p->kind == CREW_THREADS) { /* a thread starts at once: under mu */
        rc = crew__launch_worker(&r, &got);
        return launch_commit(p, i, rc, &got);
    }
    /* fork, exec or the fork server may take long, and the worker hooks
     * around a fork (Python's) take the GIL: none of that happens under
     * p->mu. The slot is
     * STARTING meanwhile: nothing is sent to it, close and terminate wait for
     * it (launch_commit), and only the supervisor starts processes, so no
     * one else starts this slot. */
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    rc = crew__launch_worker(&r, &got);
    crew__lock(&p->mu, CREW__LOCK_POOL);
    return launch_commit(p, i, rc, &got);
}
