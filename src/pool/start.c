/* start.c — the pool's side of starting a worker: the slot made fresh, its initializer queued, then the launcher seam (launch/launch.h). */

#include <errno.h>
#include <string.h>

#include "launch/launch.h"
#include "pool/pool.h"
#include "worker/registry.h"

/* A thread worker leaves: it held a pool reference while it ran. */
static void thread_left(void *arg)
{
    crew__pool_unref(arg);
}

int crew__launch(crew_pool *p, int i)
{
    crew__wslot *ws = &p->w[i];
    crew__slot *sl = &p->shm->slots[i];
    crew__ring *req = crew__slot_req(p->shm, sl), *resp = crew__slot_resp(p->shm, sl);
    /* the slot is nobody's now: start it afresh */
    crew__ring_init(req, CREW__RING_CAP);
    crew__ring_init(resp, CREW__RING_CAP);
    atomic_store(&sl->worker_sleeping, 0);
    atomic_store(&sl->quit, 0);
    atomic_store(&sl->cur_tag, 0);
    ws->given = 0;
    ws->ready = false;
    ws->retiring = ws->killing = ws->broke_protocol = false;
    ws->kill_reason = 0;
    ws->kill_tag = NULL;
    if (p->opt.initializer) {
        memset(&ws->init_req, 0, sizeof ws->init_req);
        ws->init_req.flags = CREW__MSG_INIT;
        ws->init_req.fn_hash = crew__hash(p->opt.initializer);
        int rc = crew__msg_put(p->shm, &ws->init_req, p->opt.init_arg, p->opt.init_len);
        if (rc < 0)
            return rc;
        crew__ring_push(req, &ws->init_req);
    }
    crew__launch_req r = {
        .shm = p->shm,
        .shm_fd = p->shm_fd,
        .slot = i,
        .kind = p->kind,
        .start = p->start,
        .spawn_argv = p->opt.spawn_argv,
        .launch = p->opt.launch,
        .launch_udata = p->opt.launch_udata,
        .on_exit = thread_left,
        .on_exit_arg = p,
    };
    crew__launched got;
    if (p->kind == CREW_THREADS)
        crew__pool_ref(p); /* the thread's own: dropped by thread_left */
    int rc = crew__launch_worker(&r, &got);
    if (rc < 0) {
        if (p->kind == CREW_THREADS)
            crew__pool_unref(p);
        if (p->opt.initializer)
            crew__msg_free(p->shm, &ws->init_req);
        memset(&ws->init_req, 0, sizeof ws->init_req);
        ws->state = CREW__SLOT_DEAD;
        return rc;
    }
    ws->pid = got.pid;
    ws->pidfd = got.pidfd;
    ws->thread = got.thread;
    ws->has_thread = got.has_thread;
    ws->state = CREW__SLOT_LIVE;
    return 0;
}
