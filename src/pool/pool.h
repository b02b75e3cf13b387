/* pool.h — the pool layer's private state: a pool, its futures and its view of each worker slot (src/pool/ only). */
#ifndef CREW_POOL_H
#define CREW_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/sync.h"
#include "crew.h"
#include "launch/launch.h"
#include "transport/shm.h"
#include "worker/registry.h"

/* Future states. */
enum { CREW__F_QUEUED = 0, CREW__F_SENT = 1, CREW__F_DONE = 2 };

struct crew_future {
    _Atomic uint32_t state;      /* CREW__F_*; futex word for waiters        */
    _Atomic uint32_t waiters;    /* threads sleeping on state                */
    _Atomic int refs;            /* the caller's and the pool's              */
    int status;                  /* outcome once DONE                        */
    crew_pool *pool;
    struct crew_future *next;    /* in the pending queue or a slot's FIFO    */
    uint64_t deadline_ns;        /* per-task limit in ns (0: none)            */
    int slot;                    /* slot it was sent to, -1 before            */
    uint64_t ring_idx;           /* its index in that slot's request ring     */
    crew__msg req;               /* the request (payload already placed)     */
    /* result: inline copy or arena allocation (freed with the future)       */
    bool res_arena;
    uint64_t res_off, res_len;
    uint8_t res_inline[CREW__INLINE + 1];
    char *errmsg;                /* malloc'd message for local failures      */
    _Atomic(crew_callback) cb;   /* set once; cb_udata is written before it   */
    void *cb_udata;
    _Atomic bool cb_claimed;     /* the one caller of cb took it               */
};

/* A big arena run the parent freed, its pages still mapped (reclaim.c). */
typedef struct crew__reclaim {
    int64_t off;
    uint64_t len;
    uint64_t freed_ns;
} crew__reclaim;
#define CREW__RECLAIM_MAX 16               /* runs waiting; more go back at once */
#define CREW__RECLAIM_NS 2000000000ull     /* unused this long: back to the system */

/* A FIFO of futures linked through ->next. */
typedef struct crew__fifo {
    crew_future *head, *tail;
    uint32_t n;
} crew__fifo;

/* Parent-side view of one slot. */
typedef struct crew__wslot {
    int state;                   /* CREW__SLOT_*                             */
    pid_t pid;
    int pidfd;                   /* process workers: -1 for threads          */
    pthread_t thread;            /* thread workers                           */
    bool has_thread;
    crew__fifo inflight;         /* sent to its ring, oldest first            */
    uint64_t sent, answered;     /* counts over this worker's life           */
    uint32_t restarts;
    int kill_reason;             /* error to give its running task when it dies */
    uint64_t given;              /* tasks given since it started (recycling) */
    bool retiring;               /* QUIT sent: no more tasks for this worker  */
    bool killing;                /* SIGKILL sent, waiting for its exit        */
    bool broke_protocol;         /* killed for a bad answer (errbuf says which) */
    _Atomic bool deaf;           /* ... so its ring is not read: the collector,
                                    without mu, does not wait on it either */
    crew__msg init_req;          /* the initializer request, freed on answer */
    char errbuf[160];            /* how its last worker ended                 */
    crew_future *kill_tag;       /* the task whose deadline got it killed     */
    bool ready;                  /* the current worker said hello: tasks go to it */
    uint64_t ghost_end;          /* requests taken back (recall) sit in its ring
                                    below this index until it pops them: 0, none */
    uint32_t early_deaths;       /* workers in a row that died before they were up */
    uint32_t early_kills;        /* ... of them SIGKILLed (from outside: an operator,
                                    the OOM killer), which alone mean no start loop */
    uint64_t retry_at_ns;        /* no relaunch before this (backoff)          */
    uint64_t req_tail;           /* the parent's own indices into the slot's  */
    _Atomic uint64_t resp_head;  /* rings (it writes them; the worker's are read);
                                    resp_head is also read without mu (a hint) */
} crew__wslot;

struct crew_pool {
    crew_kind kind;
    crew_start_method start;
    int nworkers;
    _Atomic int refs;            /* the user's, one per future, the threads' */
    crew__region reg;            /* the shared region, as this process laid it
                                    out: rings, arena and size are never
                                    re-read from shared memory */
    int shm_fd;
    crew_options opt;
    void *init_arg;              /* copy of opt.init_arg                     */
    char **argv;                 /* copy of opt.spawn_argv (opt points to it) */
    int prelude_fd;              /* our copy of opt.prelude_fd, or -1         */

    pthread_mutex_t mu;          /* guards everything below; never shared with workers */
    pthread_cond_t cv;           /* signalled on launches and worker exits    */
    bool closing, terminated;    /* no new submits / stop now                 */
    bool quitting;               /* QUIT sent: dead workers stay dead         */
    bool closed;                 /* close or terminate finished               */
    bool launched;               /* the supervisor ran the first launches    */
    int launch_rc;
    crew__fifo pending;          /* submitted, not yet sent                  */
    crew__wslot *w;              /* nworkers entries                         */
    uint32_t depth;              /* max tasks in one worker's ring            */
    _Atomic uint64_t avg_task_ns; /* moving average of task run time: written
                                    under mu, read without it (parent_may_spin) */

    pthread_t *retired;          /* recycled thread workers on their way out: */
    size_t nretired, capretired; /* joined outside mu (join_retired) (mu)     */
    _Atomic bool has_retired;    /* nretired > 0, read without mu             */
    pthread_t collector, supervisor;
    bool threads_started;
    bool threads_stopping;       /* close or terminate is joining them (mu)   */
    _Atomic bool stop_threads;
    int evfd;                    /* wakes the supervisor                     */
    uint64_t sup_wake_ns;        /* when the supervisor wakes at the latest (mu) */

    crew__prefault prefault;      /* arena granules this process mapped in    */
    _Atomic uint64_t inflight;    /* tasks sent and not answered              */
    _Atomic uint32_t helpers;     /* waiters collecting answers themselves    */
    _Atomic uint32_t collector_parked; /* the collector sleeps on `helpers`   */
    _Atomic uint32_t completions; /* bumped on every completion: wait_any     */
    _Atomic uint32_t any_waiters;

    pthread_mutex_t reclaim_mu;  /* guards the two below: a leaf, taken under mu or alone */
    crew__reclaim reclaim[CREW__RECLAIM_MAX]; /* big runs freed, pages kept */
    int nreclaim;
    bool reclaim_stopped;        /* the supervisor is gone: no more waiting   */

    /* statistics */
    _Atomic uint64_t submitted, done, failed, crashed, timed_out, cancelled;
};

/* --- future.c --- */
crew_future *crew__future_new(crew_pool *p);
/* Marks f done with status (result already stored), wakes its waiters and
 * returns whether a callback must now run (the caller runs it unlocked). */
bool crew__future_finish(crew_future *f, int status);
void crew__future_run_callback(crew_future *f);
void crew__future_unref(crew_future *f);
void crew__future_set_errmsg(crew_future *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- fifo helpers --- */
static inline void crew__fifo_push(crew__fifo *q, crew_future *f)
{
    f->next = NULL;
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->n++;
}
static inline void crew__fifo_push_front(crew__fifo *q, crew_future *f)
{
    f->next = q->head;
    q->head = f;
    if (!q->tail)
        q->tail = f;
    q->n++;
}
/* Puts every future of `front` before q's, in order (front is left stale). */
static inline void crew__fifo_prepend(crew__fifo *q, const crew__fifo *front)
{
    if (!front->head)
        return;
    front->tail->next = q->head;
    if (!q->head)
        q->tail = front->tail;
    q->head = front->head;
    q->n += front->n;
}
static inline crew_future *crew__fifo_pop(crew__fifo *q)
{
    crew_future *f = q->head;
    if (f) {
        q->head = f->next;
        if (!q->head)
            q->tail = NULL;
        f->next = NULL;
        q->n--;
    }
    return f;
}

/* Whether a parent thread waiting for answers may spin: while fewer tasks
 * are in flight than there are CPUs (a core is free for it), or while
 * tasks are shorter than the spin (an answer is due within it, and a sleep
 * and wake-up would cost more). Waiting on tasks of 0.1 ms and more with
 * every core running one, a spinning waiter only takes CPU time from a
 * worker. */
static inline bool crew__parent_may_spin(crew_pool *p)
{
    return atomic_load_explicit(&p->inflight, memory_order_relaxed) <=
               (uint64_t)crew__spinners_max() ||
           atomic_load_explicit(&p->avg_task_ns, memory_order_relaxed) < crew__spin_ns();
}

/* --- pool.c --- */
void crew__pool_ref(crew_pool *p);
void crew__pool_unref(crew_pool *p);
/* Sends pending work to workers with room; call with mu held. */
void crew__dispatch_locked(crew_pool *p);
/* Drains every response ring; returns the number of responses. */
int crew__collect(crew_pool *p);
/* Why answer r (read from worker ws's response ring) breaks crew's protocol
 * (into why, n bytes), or NULL when the parent may use it (pool.c). */
const char *crew__bad_answer(const crew_pool *p, const crew__wslot *ws, const crew__msg *r,
                             char *why, size_t n);

/* Handles slot i's answers under mu; done futures go to `done`. */
int crew__drain_slot_locked(crew_pool *p, int i, crew__fifo *done);
/* Runs callbacks of finished futures and drops the pool's references. */
void crew__run_done(crew__fifo *done);
/* Fails f (queued or sent) with status and message; mu held. */
void crew__fail_locked(crew_pool *p, crew_future *f, int status, crew__fifo *done);

/* --- submitv.c: the one submit path --- */
struct iovec;
/* Queues a task whose payload gathers iov (copied once). */
int crew__submit_iov(crew_pool *p, uint64_t hash, uint32_t flags, const struct iovec *iov,
                     int iovcnt, const crew_submit_opts *so, crew_future **out);


/* --- reclaim.c --- */
/* Frees an arena run of the pool's (a payload the parent placed, an answer
 * a worker gave): a big one (CREW__ARENA_BIG_BYTES) keeps its pages, and
 * crew__reclaim_due gives them back once the run has gone unused for
 * CREW__RECLAIM_NS. Any thread, with or without mu. */
void crew__pool_free_run(crew_pool *p, int64_t off, uint64_t len);
/* crew__pool_free_run for a message's arena payload, if it has one. */
void crew__pool_msg_free(crew_pool *p, const crew__msg *m);
/* Gives back the pages of the big runs freed CREW__RECLAIM_NS ago or more
 * and not allocated again since; returns the ns until the next one is due
 * (UINT64_MAX: none waits). The supervisor's, with no lock held. */
uint64_t crew__reclaim_due(crew_pool *p);
/* Once the supervisor has stopped: gives back every run waiting, and makes
 * crew__pool_free_run give big runs back at once. No lock held. */
void crew__reclaim_stop(crew_pool *p);

/* --- supervise.c --- */
/* SIGKILLs slot ws's process through its pidfd (never a recycled pid). */
void crew__kill_worker(crew__wslot *ws);
void crew__signal_worker(crew__wslot *ws, int sig); /* through its pidfd */
void *crew__supervisor_main(void *arg);
/* Handles the death of slot i's worker: fails its running task with
 * the slot's kill reason (or CREW_ECRASHED), requeues the unstarted ones,
 * starts a replacement unless the pool is closing. mu held. Fills
 * `done` with futures whose callbacks must run unlocked. */
void crew__worker_died(crew_pool *p, int i, bool sigkilled, crew__fifo *done);

/* --- start.c: the pool's side of the launcher seam --- */
/* Makes slot i fresh and starts its worker: 0 (slot LIVE) or a negative
 * errno (slot DEAD). mu held on entry and on return; for a process worker
 * it is released while the launcher runs (the slot is STARTING then), so a
 * caller must re-read pool state afterwards. Threads start under mu. */
int crew__start_worker_locked(crew_pool *p, int i);

/* --- pool.c --- */
/* Pushes QUIT to slot i's worker and wakes it: it leaves after its
 * current task. mu held. */
void crew__quit_worker_locked(crew_pool *p, int i);

#endif
