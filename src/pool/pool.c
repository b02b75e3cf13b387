/* pool.c — pool life cycle, submit, dispatch to worker rings and collection of answers.
 *
 * Locks, in the one order they may be taken (a lock is only ever taken while
 * holding locks listed above it; src/base/lockorder.h gives them ranks, and
 * the lock-order build, CREW_LOCKCHECK, aborts on any other order):
 *   0. the GIL (Python programs): a submitting thread holds it while it takes
 *      p->mu (crew._core keeps it around a submit that cannot block);
 *   1. p->mu, this pool's state; every ring is consumed and produced on the
 *      parent side under p->mu only;
 *   2. fs_mu (launch/forkserver.c), the fork server's channel: launches take it;
 *   3. the fork server keeper's hand-off mutex (its first start from a thread);
 *   4. reg_mu (worker/registry.c), the task registry: never held while taking another;
 *   5. p->reclaim_mu (reclaim.c), the big arena runs freed and not yet given
 *      back: a leaf, taken with or without p->mu; the pages themselves go
 *      back with no lock held.
 * Under p->mu nothing may wait for a thread that could need a lock above it:
 * no thread is joined (a recycled thread worker may still need the GIL to
 * drop its Python thread state: join_retired joins it later, unlocked; every
 * join asserts no lock is held), no callback runs (they run from the `done`
 * list after the unlock), no process is launched: fork, exec, the fork
 * server's round trip, a custom launcher and the worker hooks around a fork
 * (Python's take the GIL) run with p->mu released while the slot is
 * STARTING (start.c).
 * Nothing in shared memory is a lock, so a worker that dies wedges nothing.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pool/bindings.h"
#include "pool/pool.h"
#include "base/fdset.h"
#include "base/lockorder.h"
#include "base/sync.h"

#define MAX_DEPTH (CREW__RING_CAP - 4) /* room left for INIT and QUIT */

void crew_options_init(crew_options *o)
{
    memset(o, 0, sizeof *o);
    o->kind = CREW_PROCESSES;
    o->prelude_fd = -1;
}

void crew__pool_ref(crew_pool *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void crew__pool_unref(crew_pool *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (int i = 0; p->w && i < p->nworkers; i++)
        if (p->w[i].pidfd >= 0)
            crew__fd_close(p->w[i].pidfd);
    if (p->evfd >= 0)
        crew__fd_close(p->evfd);
    crew__region_unmap(&p->reg);
    if (p->shm_fd >= 0)
        crew__fd_close(p->shm_fd);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->reclaim_mu);
    pthread_cond_destroy(&p->cv);
    if (p->prelude_fd >= 0)
        crew__fd_close(p->prelude_fd);
    for (size_t k = 0; p->argv && p->argv[k]; k++)
        free(p->argv[k]);
    free(p->argv);
    free(p->init_arg);
    free(p->w);
    free(p->retired);
    free(p);
}

int crew_pool_workers(const crew_pool *p)
{
    return p->nworkers;
}

/* ------------------------------------------------------------ dispatch -- */

static void wake_worker(crew_pool *p, int i)
{
    crew__slot *sl = &p->reg.shm->slots[i];
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&sl->worker_sleeping)) {
        atomic_fetch_add(&sl->req_bell, 1);
        crew__futex_wake(&sl->req_bell, 1, p->reg.shared_futex);
    }
}

static void broke_protocol_locked(crew_pool *p, int i, const char *why);

/* Pushes a control message (QUIT) to slot i. A ring with no room for it
 * (its worker forged its head: the parent never fills a ring) breaks the
 * protocol: the worker is killed instead. */
static void send_quit_locked(crew_pool *p, int i)
{
    crew__msg m;
    memset(&m, 0, sizeof m);
    m.flags = CREW__MSG_QUIT;
    p->w[i].retiring = true;
    if (!crew__ring_push_own(crew__region_req(&p->reg, (uint32_t)i), &p->w[i].req_tail, &m))
        broke_protocol_locked(p, i, "a request ring with no room");
}

void crew__quit_worker_locked(crew_pool *p, int i)
{
    send_quit_locked(p, i);
    wake_worker(p, i);
}

/* Sends f to slot i's ring. false (f stays the caller's) when the ring has
 * no room: it always has (inflight < depth < its size), unless its worker
 * forged the ring's head; that worker is then killed as broken. mu held. */
static bool send_locked(crew_pool *p, int i, crew_future *f)
{
    crew__wslot *ws = &p->w[i];
    crew__ring *req = crew__region_req(&p->reg, (uint32_t)i);
    f->req.tag = (uint64_t)(uintptr_t)f;
    f->slot = i;
    f->ring_idx = ws->req_tail;
    if (!crew__ring_push_own(req, &ws->req_tail, &f->req)) {
        f->slot = -1;
        broke_protocol_locked(p, i, "a request ring with no room");
        return false;
    }
    crew__fifo_push(&ws->inflight, f);
    atomic_store_explicit(&f->state, CREW__F_SENT, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->inflight, 1, memory_order_relaxed);
    ws->sent++;
    ws->given++;
    if (f->deadline_ns && crew__now_ns() + f->deadline_ns < p->sup_wake_ns) {
        p->sup_wake_ns = 0; /* the supervisor must watch this deadline: wake it once */
        uint64_t one = 1;
        ssize_t wr = write(p->evfd, &one, sizeof one);
        (void)wr;
    }
    if (p->opt.max_tasks_per_worker && ws->given >= p->opt.max_tasks_per_worker)
        send_quit_locked(p, i); /* recycle: it leaves after this task */
    return true;
}

/* Whether slot i takes tasks now (up, not leaving, not being killed). */
static bool takes_tasks(const crew__wslot *ws)
{
    return ws->state == CREW__SLOT_LIVE && ws->ready && !ws->retiring && !ws->killing;
}

/* Whether slot i's request ring has room for another request: requests
 * taken back still occupy it until the worker pops and drops them. */
static bool ring_room(crew_pool *p, int i)
{
    crew__wslot *ws = &p->w[i];
    if (!ws->ghost_end)
        return true;
    crew__ring *req = crew__region_req(&p->reg, (uint32_t)i);
    uint64_t head = atomic_load_explicit(&req->head, memory_order_acquire); /* the worker's */
    if (head >= ws->ghost_end && head <= ws->req_tail) {
        ws->ghost_end = 0; /* all popped */
        return true;
    }
    return head <= ws->req_tail && ws->req_tail - head < MAX_DEPTH;
}

/* Sends pending work to the least-loaded workers with room, never to
 * `skip` (-1: none); marks the slots it pushed to. mu held. */
static void dispatch_some(crew_pool *p, int skip, bool *pushed)
{
    while (p->pending.head) {
        int best = -1;
        uint32_t bn = UINT32_MAX;
        for (int i = 0; i < p->nworkers; i++) {
            crew__wslot *ws = &p->w[i];
            if (i == skip || !takes_tasks(ws))
                continue;
            if (ws->inflight.n < p->depth && ws->inflight.n < bn && ring_room(p, i)) {
                best = i;
                bn = ws->inflight.n;
            }
        }
        if (best < 0)
            break;
        crew_future *f = crew__fifo_pop(&p->pending);
        if (!send_locked(p, best, f)) {
            crew__fifo_push_front(&p->pending, f); /* to another worker */
            continue;
        }
        pushed[best] = true;
    }
}

/*
 * Takes back the requests in slot i's ring that its worker has not claimed
 * yet (transport/shm.h: claimed) and puts them at the front of the queue,
 * in order. Returns how many. The worker's claim counter is read from
 * shared memory: a value outside what the parent sent is not acted on.
 * mu held.
 */
static uint32_t recall_locked(crew_pool *p, int i)
{
    crew__wslot *ws = &p->w[i];
    crew__slot *sl = &p->reg.shm->slots[i];
    if (!ws->inflight.head)
        return 0;
    uint64_t first = ws->inflight.head->ring_idx, end = ws->inflight.tail->ring_idx + 1;
    uint64_t c = atomic_load(&sl->claimed);
    if (c < first || c >= end)
        return 0; /* all claimed (or a scribbled counter): nothing to take */
    if (!atomic_compare_exchange_strong(&sl->claimed, &c, end))
        return 0; /* it claimed one just now: leave it be */
    /* the futures of indices [c, end) are the parent's again */
    crew__fifo back = {0}, keep = {0};
    crew_future *f;
    while ((f = crew__fifo_pop(&ws->inflight)))
        crew__fifo_push(f->ring_idx >= c ? &back : &keep, f);
    ws->inflight = keep;
    uint32_t n = back.n;
    for (crew_future *g = back.head; g; g = g->next)
        atomic_store_explicit(&g->state, CREW__F_QUEUED, memory_order_relaxed);
    atomic_fetch_sub_explicit(&p->inflight, n, memory_order_relaxed);
    ws->sent -= n;
    ws->given -= n;
    ws->ghost_end = end;
    crew__fifo_prepend(&p->pending, &back); /* to the front of the queue, in order */
    return n;
}

/*
 * Head-of-line blocking: a worker with nothing to do while another's ring
 * holds requests queued behind a task that has run for a while (1 ms) takes
 * those requests over. Rings hold up to
 * ~200 us of short tasks, so one long task among them would otherwise hold
 * back the rest while a worker idles. Returns the slot it took from, or -1.
 * mu held.
 */
static int steal_locked(crew_pool *p)
{
    bool idle = false;
    for (int i = 0; i < p->nworkers && !idle; i++)
        idle = takes_tasks(&p->w[i]) && p->w[i].inflight.n == 0;
    if (!idle)
        return -1;
    /* 1 ms, whatever the mean: tasks of even length (a CPU-bound batch,
     * whose rings were filled deep by quick tasks before) are worth taking
     * over at the end of a batch too, while a ring of microsecond tasks,
     * none of which runs that long, is never churned */
    uint64_t now = crew__now_ns(), wait = 1000000;
    int victim = -1;
    uint32_t most = 1;
    for (int i = 0; i < p->nworkers; i++) {
        crew__wslot *ws = &p->w[i];
        crew__slot *sl = &p->reg.shm->slots[i];
        if (!takes_tasks(ws) || ws->inflight.n <= most || !atomic_load(&sl->cur_tag))
            continue;
        uint64_t t0 = atomic_load(&sl->cur_start_ns); /* a hint: shared memory */
        if (t0 > now || now - t0 < wait)
            continue;
        victim = i;
        most = ws->inflight.n;
    }
    if (victim < 0 || recall_locked(p, victim) == 0)
        return -1;
    return victim;
}

void crew__dispatch_locked(crew_pool *p)
{
    bool pushed[CREW__MAX_WORKERS] = {0};
    dispatch_some(p, -1, pushed);
    if (!p->pending.head) {
        int victim = steal_locked(p);
        if (victim >= 0)
            dispatch_some(p, victim, pushed); /* not back behind its long task */
    }
    for (int i = 0; i < p->nworkers; i++)
        if (pushed[i])
            wake_worker(p, i);
}

/* ------------------------------------------------------------- collect -- */

void crew__fail_locked(crew_pool *p, crew_future *f, int status, crew__fifo *done)
{
    (void)p;
    if (atomic_load(&f->state) == CREW__F_DONE)
        return;
    crew__future_finish(f, status);
    crew__fifo_push(done, f); /* the pool's reference travels with it */
}

void crew__run_done(crew__fifo *done)
{
    crew_future *f;
    while ((f = crew__fifo_pop(done))) {
        crew__future_run_callback(f);
        crew__future_unref(f);
    }
}

/*
 * How many tasks a worker's ring may hold. Tasks in a ring are that worker's:
 * no other worker can take them. Short tasks want about 200 us of work
 * queued (a worker never waits for the parent between two of them); tasks
 * of a millisecond or more want none queued beyond the running one, so a
 * worker that falls behind (a busy core) cannot hold back work an idle
 * worker would run: the queue stays shared, as multiprocessing's is.
 */
static void update_depth(crew_pool *p, uint64_t run_ns)
{
    /* run_ns is the worker's word (shared memory): bounded, so that no value
     * a task forges wraps the sums below (a divide by zero killed the parent) */
    if (run_ns > 1000000000000ull)
        run_ns = 1000000000000ull;
    uint64_t avg = atomic_load_explicit(&p->avg_task_ns, memory_order_relaxed);
    avg = avg ? (avg * 7 + run_ns) / 8 : run_ns;
    atomic_store_explicit(&p->avg_task_ns, avg, memory_order_relaxed);
    uint64_t d = 200000 / (avg + 1);
    uint64_t min = avg >= 1000000 ? 1 : 2;
    p->depth = d < min ? (uint32_t)min : d > MAX_DEPTH ? MAX_DEPTH : (uint32_t)d;
}

/* Hands a leaving thread worker to join_retired. Out of memory, it is
 * detached instead (it holds its own pool reference while it needs one).
 * mu held. */
static void retire_thread_locked(crew_pool *p, pthread_t t)
{
    if (p->nretired == p->capretired) {
        size_t cap = p->capretired ? p->capretired * 2 : 8;
        pthread_t *r = realloc(p->retired, cap * sizeof *r);
        if (!r) {
            pthread_detach(t);
            return;
        }
        p->retired = r;
        p->capretired = cap;
    }
    p->retired[p->nretired++] = t;
    atomic_store(&p->has_retired, true);
}

/* Joins the recycled thread workers that have left, without mu: each may
 * need the GIL to finish (Python), which a thread waiting for mu can hold.
 * The collector calls it (it holds nothing), and close and terminate. */
static void join_retired(crew_pool *p)
{
    if (!atomic_load(&p->has_retired))
        return;
    crew__lock(&p->mu, CREW__LOCK_POOL);
    pthread_t *r = p->retired;
    size_t n = p->nretired;
    p->retired = NULL;
    p->nretired = p->capretired = 0;
    atomic_store(&p->has_retired, false);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    crew__lock_none_held("joining a recycled thread worker");
    for (size_t k = 0; k < n; k++)
        pthread_join(r[k], NULL);
    free(r);
}

/* Why the answer r from worker i breaks crew's protocol, or NULL. Every
 * answer is read from shared memory a task can scribble on: its length and
 * arena offset are checked against the parent's own copy of the arena's
 * bounds, its tag against the task the parent sent first. why: room for it. */
const char *crew__bad_answer(const crew_pool *p, const crew__wslot *ws, const crew__msg *r,
                             char *why, size_t n)
{
    const uint32_t known = CREW__MSG_ARENA | CREW__MSG_CHUNK | CREW__MSG_QUIT | CREW__MSG_INIT |
                           CREW__MSG_KEEP | CREW__MSG_HELLO;
    if (r->flags & ~known)
        snprintf(why, n, "unknown flags 0x%x", (unsigned)r->flags);
    else if (r->flags == CREW__MSG_HELLO || r->flags == CREW__MSG_QUIT)
        return NULL; /* carry nothing */
    else if (r->flags & (CREW__MSG_HELLO | CREW__MSG_QUIT)) /* never with another */
        snprintf(why, n, "flags 0x%x together", (unsigned)r->flags);
    else if (!(r->flags & CREW__MSG_ARENA) && r->len > CREW__INLINE)
        snprintf(why, n, "an inline answer of %llu bytes, more than %u",
                 (unsigned long long)r->len, CREW__INLINE);
    else if ((r->flags & CREW__MSG_ARENA) && !crew__arena_is_run(&p->reg.arena, r->off, r->len))
        snprintf(why, n, "an answer of %llu bytes at arena offset %llu, not a run of the arena",
                 (unsigned long long)r->len, (unsigned long long)r->off);
    else if (!(r->flags & CREW__MSG_INIT) &&
             (!ws->inflight.head || (uint64_t)(uintptr_t)ws->inflight.head != r->tag))
        snprintf(why, n, "an answer to a task it was not running");
    else
        return NULL;
    return why;
}

/* Worker i broke the protocol (a task or an extension wrote over crew's
 * shared memory, or a forked copy of the worker answers too): a process
 * worker is killed and counts as crashed (its running task fails with why,
 * the rest run elsewhere); a thread worker shares this process's memory,
 * which is then no longer to be trusted at all: crew aborts. mu held. */
static void broke_protocol_locked(crew_pool *p, int i, const char *why)
{
    crew__wslot *ws = &p->w[i];
    if (p->kind == CREW_THREADS) {
        fprintf(stderr, "crew: thread worker %d broke crew's protocol (%s): memory is "
                "corrupt, aborting\n", i, why);
        abort();
    }
    snprintf(ws->errbuf, sizeof ws->errbuf, "broke crew's protocol (%s) and was killed", why);
    ws->broke_protocol = true;
    atomic_store_explicit(&ws->deaf, true, memory_order_relaxed);
    ws->killing = true;
    crew__kill_worker(ws);
}

int crew__drain_slot_locked(crew_pool *p, int i, crew__fifo *done)
{
    crew__wslot *ws = &p->w[i];
    crew__ring *resp = crew__region_resp(&p->reg, (uint32_t)i);
    crew__msg r;
    char why[96];
    int n = 0, got;
    if (ws->broke_protocol)
        return 0; /* nothing more it says is read */
    uint64_t head;
    /* head is read afresh each time: a recycled thread's successor (QUIT,
     * below) starts on a fresh ring */
    while (n < (int)CREW__RING_CAP &&
           (head = atomic_load_explicit(&ws->resp_head, memory_order_relaxed),
            got = crew__ring_pop_own(resp, &head, &r))) {
        atomic_store_explicit(&ws->resp_head, head, memory_order_relaxed);
        if (got < 0) { /* bounded: mu is held */
            uint64_t t = atomic_load(&resp->tail);
            snprintf(why, sizeof why, "an answer ring's tail at %llu, its head at %llu",
                     (unsigned long long)t, (unsigned long long)head);
            broke_protocol_locked(p, i, why);
            return n;
        }
        n++;
        if (crew__bad_answer(p, ws, &r, why, sizeof why)) {
            broke_protocol_locked(p, i, why);
            return n;
        }
        if (r.flags & CREW__MSG_HELLO) { /* up: it takes tasks from now on */
            if (!p->opt.initializer)
                ws->ready = true; /* else once its initializer has answered */
            continue;
        }
        if (r.flags & CREW__MSG_INIT) { /* the initializer's answer: no future */
            ws->ready = true; /* failed or not: a failure fails its tasks at once */
            crew__pool_msg_free(p, &ws->init_req);
            memset(&ws->init_req, 0, sizeof ws->init_req); /* freed: never again */
            crew__pool_msg_free(p, &r);
            continue;
        }
        if (r.flags & CREW__MSG_QUIT) {
            if (p->kind == CREW_THREADS && ws->has_thread && !p->quitting) {
                /* a recycled thread: it is leaving now, start its successor.
                 * Never joined here: p->mu is held, and the leaving thread
                 * may still need a lock that a thread waiting for p->mu
                 * holds (Python: the GIL, to drop its thread state). */
                retire_thread_locked(p, ws->thread);
                ws->has_thread = false;
                ws->state = CREW__SLOT_DEAD;
                ws->restarts++;
                crew__start_worker_locked(p, i); /* a thread: mu stays held */
            }
            continue;
        }
        crew_future *f = crew__fifo_pop(&ws->inflight); /* r.tag's (bad_answer) */
        ws->answered++;
        atomic_fetch_sub_explicit(&p->inflight, 1, memory_order_relaxed);
        if (r.flags & CREW__MSG_KEEP) /* the worker owns the argument now */
            f->req.flags &= ~(uint32_t)CREW__MSG_ARENA;
        crew__pool_msg_free(p, &f->req);
        if (atomic_load(&f->state) == CREW__F_DONE) { /* timed out or cancelled already */
            crew__pool_msg_free(p, &r);
            crew__future_unref(f);
            continue;
        }
        update_depth(p, r.fn_hash);
        f->res_len = r.len;
        if (r.flags & CREW__MSG_ARENA) {
            f->res_arena = true;
            f->res_off = r.off;
            crew__arena_prefault(&p->reg, &p->prefault, (int64_t)r.off, r.len);
        } else {
            memcpy(f->res_inline, r.data, r.len);
            f->res_inline[r.len] = 0;
        }
        crew__future_finish(f, r.status);
        crew__fifo_push(done, f);
    }
    return n;
}

static bool rings_nonempty(crew_pool *p)
{
    for (int i = 0; i < p->nworkers; i++)
        if (!atomic_load_explicit(&p->w[i].deaf, memory_order_relaxed) &&
            atomic_load_explicit(&crew__region_resp(&p->reg, (uint32_t)i)->tail,
                                 memory_order_acquire) !=
            atomic_load_explicit(&p->w[i].resp_head, memory_order_relaxed))
            return true;
    return false;
}

int crew__collect(crew_pool *p)
{
    if (!rings_nonempty(p))
        return 0;
    crew__fifo done = {0};
    int n = 0;
    crew__lock(&p->mu, CREW__LOCK_POOL);
    for (int i = 0; i < p->nworkers; i++)
        n += crew__drain_slot_locked(p, i, &done);
    if (n)
        crew__dispatch_locked(p);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    crew__run_done(&done);
    return n;
}

/* The collector thread: drains answers, spinning while work is in flight,
 * sleeping on the doorbell when there is none. */
static void *collector_main(void *arg)
{
    crew__name_thread("crew:collect");
    crew_pool *p = arg;
    crew__shm *shm = p->reg.shm;
    uint64_t spin = crew__spin_ns(), last = crew__now_ns();
    while (!atomic_load(&p->stop_threads)) {
        join_retired(p);
        uint32_t h = atomic_load(&p->helpers);
        if (h) { /* a waiter is collecting: do not compete for the CPUs */
            atomic_store(&p->collector_parked, 1);
            atomic_thread_fence(memory_order_seq_cst);
            if (atomic_load(&p->helpers) == h)
                crew__futex_wait(&p->helpers, h, 10000000ull, false);
            atomic_store(&p->collector_parked, 0);
            last = crew__now_ns();
            continue;
        }
        if (crew__collect(p) > 0) {
            last = crew__now_ns();
            continue;
        }
        if (spin && atomic_load_explicit(&p->inflight, memory_order_relaxed) &&
            crew__parent_may_spin(p) && crew__now_ns() - last < spin) {
            for (int k = 0; k < 32; k++)
                crew__cpu_relax();
            continue;
        }
        atomic_store(&shm->parent_sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        uint32_t bell = atomic_load(&shm->doorbell);
        if (!rings_nonempty(p) && !atomic_load(&p->stop_threads))
            crew__futex_wait(&shm->doorbell, bell, 200000000ull, p->reg.shared_futex);
        atomic_store(&shm->parent_sleeping, 0);
        last = crew__now_ns();
    }
    return NULL;
}

/* ------------------------------------------------------------- create -- */

/* Starts a crew-internal thread with every signal blocked, so that the
 * program's signal handlers run on its own threads. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_fetch_add(&crew__internal_threads, 1); /* dropped in stop_threads */
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc)
        atomic_fetch_sub(&crew__internal_threads, 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

int crew_pool_create(crew_pool **out, const crew_options *o)
{
    crew_options def;
    if (!o) {
        crew_options_init(&def);
        o = &def;
    }
    if (!out || (o->kind != CREW_THREADS && o->kind != CREW_PROCESSES) || o->workers < 0 ||
        o->workers > CREW__MAX_WORKERS || o->task_timeout < 0 ||
        (unsigned)o->start > CREW_START_FORKSERVER)
        return -EINVAL;
    if (o->initializer && !o->initializer[0])
        return -EINVAL;
    uint64_t init_hash;
    if (o->initializer && crew__task_hash(o->initializer, &init_hash) < 0)
        return CREW_ENOTASK;

    crew_start_method start = o->start == CREW_START_DEFAULT ? crew_get_start_method() : o->start;
    if (o->kind == CREW_PROCESSES && !o->launch) {
        /* spawn and the fork server run this program again: it must know */
        if ((start == CREW_START_SPAWN || start == CREW_START_FORKSERVER) && !o->spawn_argv &&
            !crew__can_reexec())
            return CREW_ENOMAIN;
        if (start == CREW_START_FORK)
            crew__warn_fork_with_threads(); /* (a binding with hooks warns its own way) */
    }
    crew_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->opt = *o;
    p->kind = o->kind;
    p->start = start;
    p->nworkers = o->workers ? o->workers : crew_cpu_count();
    if (p->nworkers > CREW__MAX_WORKERS)
        p->nworkers = CREW__MAX_WORKERS;
    p->depth = 1; /* until the first answers say how long tasks take */
    p->shm_fd = p->evfd = p->prelude_fd = -1;
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->reclaim_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->w = calloc((size_t)p->nworkers, sizeof *p->w);
    for (int i = 0; p->w && i < p->nworkers; i++)
        p->w[i].pidfd = -1; /* before any failure path: unref closes what is >= 0 */
    if (o->init_len) {
        p->init_arg = malloc(o->init_len);
        if (p->init_arg)
            memcpy(p->init_arg, o->init_arg, o->init_len);
    }
    int rc = -ENOMEM;
    if (!p->w || (o->init_len && !p->init_arg))
        goto fail;
    p->opt.init_arg = p->init_arg;
    if (o->spawn_argv) { /* the pool's own copy: launches use it for its whole life */
        size_t n = 0;
        while (o->spawn_argv[n])
            n++;
        if (!n) {
            rc = -EINVAL;
            goto fail;
        }
        if (!(p->argv = calloc(n + 1, sizeof *p->argv)))
            goto fail;
        for (size_t k = 0; k < n; k++)
            if (!(p->argv[k] = strdup(o->spawn_argv[k])))
                goto fail;
        p->opt.spawn_argv = p->argv;
    }
    if (o->kind == CREW_PROCESSES && o->prelude_fd > 2) {
        p->prelude_fd = fcntl(o->prelude_fd, F_DUPFD_CLOEXEC, 3);
        if (p->prelude_fd < 0) {
            rc = -errno;
            goto fail;
        }
        crew__fd_own(p->prelude_fd);
    }
    p->opt.prelude_fd = p->prelude_fd;
    rc = crew__region_create((uint32_t)p->nworkers,
                             o->arena_size ? o->arena_size : (1ull << 30),
                             o->kind == CREW_PROCESSES, &p->reg, &p->shm_fd);
    if (rc < 0)
        goto fail;
    crew__fd_own(p->shm_fd);
    if (o->kind == CREW_PROCESSES)
        p->reg.shm->max_rss = o->max_worker_rss;
    p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->evfd < 0) {
        rc = -errno;
        goto fail;
    }
    crew__fd_own(p->evfd);
    /* known before any worker is forked: a forked worker then never
     * reads /proc for it (nothing a child of a threaded parent should do) */
    (void)crew__spin_ns();
    rc = start_thread(&p->collector, collector_main, p);
    if (rc < 0)
        goto fail;
    rc = start_thread(&p->supervisor, crew__supervisor_main, p);
    if (rc < 0) {
        atomic_store(&p->stop_threads, true);
        pthread_join(p->collector, NULL);
        atomic_fetch_sub(&crew__internal_threads, 1);
        goto fail;
    }
    p->threads_started = true;
    /* the supervisor starts the workers, so that process workers are tied
     * (PR_SET_PDEATHSIG) to a thread that lives as long as the pool */
    crew__lock(&p->mu, CREW__LOCK_POOL);
    while (!p->launched)
        pthread_cond_wait(&p->cv, &p->mu);
    rc = p->launch_rc;
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    if (rc < 0) {
        crew_pool_terminate(p);
        crew__pool_unref(p);
        return rc;
    }
    *out = p;
    return 0;
fail:
    crew__pool_unref(p);
    return rc;
}

/* ------------------------------------------------------------- submit -- */

int crew_submit(crew_pool *p, const char *name, const void *arg, size_t len, crew_future **out)
{
    return crew_submit_ex(p, name, arg, len, NULL, out);
}

int crew_submit_ex(crew_pool *p, const char *name, const void *arg, size_t len,
                   const crew_submit_opts *so, crew_future **out)
{
    if (len && !arg)
        return -EINVAL;
    struct iovec iov = {.iov_base = (void *)arg, .iov_len = len};
    return crew_submitv(p, name, &iov, len ? 1 : 0, so, out);
}

/* -------------------------------------------------------------- stop -- */

/* A closed pool's descriptors go back at once (its memory stays mapped
 * while futures hold results in it): nothing starts a worker or wakes the
 * supervisor any more, whose threads are joined. mu held. */
static void release_fds_locked(crew_pool *p)
{
    if (p->evfd >= 0)
        crew__fd_close(p->evfd);
    if (p->shm_fd >= 0)
        crew__fd_close(p->shm_fd);
    if (p->prelude_fd >= 0)
        crew__fd_close(p->prelude_fd);
    p->evfd = p->shm_fd = p->prelude_fd = -1;
}

/* Stops and joins the collector and the supervisor. Close and terminate
 * may both get here: one joins, the other waits until the joins are done,
 * so that neither goes on (to release the pool's fds, to let it be freed)
 * while those threads still run. */
static void stop_threads(crew_pool *p)
{
    crew__lock(&p->mu, CREW__LOCK_POOL);
    bool mine = p->threads_started;
    p->threads_started = false;
    if (!mine) {
        while (p->threads_stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        return;
    }
    p->threads_stopping = true;
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    atomic_store(&p->stop_threads, true);
    crew__futex_wake(&p->helpers, 1, false);
    atomic_fetch_add(&p->reg.shm->doorbell, 1);
    crew__futex_wake(&p->reg.shm->doorbell, INT_MAX, p->reg.shared_futex);
    uint64_t one = 1;
    ssize_t wr = write(p->evfd, &one, sizeof one);
    (void)wr;
    crew__lock_none_held("joining the pool's threads");
    pthread_join(p->collector, NULL);
    pthread_join(p->supervisor, NULL);
    atomic_fetch_sub(&crew__internal_threads, 2);
    crew__reclaim_stop(p); /* nobody gives pages back later any more */
    crew__lock(&p->mu, CREW__LOCK_POOL);
    p->threads_stopping = false;
    pthread_cond_broadcast(&p->cv);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
}

/* Waits (mu held) until every process worker has been reaped, and every
 * launch under way has ended (a worker started meanwhile is told to quit,
 * or killed, as its launch commits). */
static void wait_processes_gone(crew_pool *p)
{
    for (;;) {
        bool live = false;
        for (int i = 0; i < p->nworkers; i++)
            if ((p->w[i].state == CREW__SLOT_LIVE && p->w[i].pidfd >= 0) ||
                p->w[i].state == CREW__SLOT_STARTING) /* its launch commits soon */
                live = true;
        if (!live)
            return;
        pthread_cond_wait(&p->cv, &p->mu);
    }
}

int crew_pool_close(crew_pool *p)
{
    if (!p)
        return -EINVAL;
    crew__lock(&p->mu, CREW__LOCK_POOL);
    if (p->closing) { /* closed, or a close or terminate under way: wait for it */
        while (!p->closed)
            pthread_cond_wait(&p->cv, &p->mu);
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        return 0;
    }
    p->closing = true;
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    /* let the queue run dry (or a terminate from another thread end it) */
    for (;;) {
        uint32_t gen = atomic_load(&p->completions);
        crew__lock(&p->mu, CREW__LOCK_POOL);
        bool idle = (p->pending.n == 0 && atomic_load(&p->inflight) == 0) || p->terminated;
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        if (idle)
            break;
        atomic_fetch_add(&p->any_waiters, 1);
        crew__futex_wait(&p->completions, gen, 10000000ull, false);
        atomic_fetch_sub(&p->any_waiters, 1);
    }
    crew__lock(&p->mu, CREW__LOCK_POOL);
    if (p->terminated) { /* terminate took over: it finishes the job */
        while (!p->closed)
            pthread_cond_wait(&p->cv, &p->mu);
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        return 0;
    }
    p->quitting = true;
    for (int i = 0; i < p->nworkers; i++) {
        if (p->w[i].state == CREW__SLOT_LIVE) {
            send_quit_locked(p, i);
            wake_worker(p, i);
        }
    }
    if (p->kind == CREW_PROCESSES)
        wait_processes_gone(p);
    pthread_t joins[CREW__MAX_WORKERS]; /* taken under mu: the collector reads them */
    int njoins = 0;
    for (int i = 0; i < p->nworkers; i++) {
        if (p->w[i].has_thread) {
            joins[njoins++] = p->w[i].thread;
            p->w[i].has_thread = false;
        }
    }
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    crew__lock_none_held("joining thread workers");
    for (int k = 0; k < njoins; k++)
        pthread_join(joins[k], NULL);
    stop_threads(p);
    join_retired(p); /* the collector may have left some */
    crew__lock(&p->mu, CREW__LOCK_POOL);
    p->closed = true;
    release_fds_locked(p);
    pthread_cond_broadcast(&p->cv);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    return 0;
}

int crew_pool_terminate(crew_pool *p)
{
    return crew_pool_terminate_signal(p, 0);
}

int crew_pool_terminate_signal(crew_pool *p, int sig)
{
    if (!p || sig < 0 || sig >= NSIG)
        return -EINVAL;
    crew__fifo done = {0};
    crew__lock(&p->mu, CREW__LOCK_POOL);
    if (p->terminated || p->closed) {
        /* a terminate under way (its workers may handle or ignore its
         * signal): this one's signal goes to those still alive too */
        if (p->terminated && !p->closed && p->kind == CREW_PROCESSES)
            for (int i = 0; i < p->nworkers; i++)
                if (p->w[i].state == CREW__SLOT_LIVE)
                    crew__signal_worker(&p->w[i], sig ? sig : SIGKILL);
        while (!p->closed)
            pthread_cond_wait(&p->cv, &p->mu);
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        return 0;
    }
    p->closing = p->terminated = p->quitting = true;
    size_t cap = p->kind == CREW_THREADS ? (size_t)p->nworkers * CREW__RING_CAP : 0, nlate = 0;
    crew_future **late = cap ? calloc(cap, sizeof *late) : NULL;
    if (!late)
        cap = 0;
    crew_future *f;
    while ((f = crew__fifo_pop(&p->pending))) {
        crew__pool_msg_free(p, &f->req);
        f->req.flags &= ~(uint32_t)CREW__MSG_ARENA;
        crew__fail_locked(p, f, -ECANCELED, &done);
    }
    for (int i = 0; i < p->nworkers; i++) {
        crew__wslot *ws = &p->w[i];
        if (ws->state != CREW__SLOT_LIVE)
            continue;
        if (p->kind == CREW_PROCESSES) {
            /* sig 0: SIGKILL, its running task cancelled; else sig, its
             * running task failing as its worker's death (naming sig) */
            ws->kill_reason = sig ? 0 : -ECANCELED;
            ws->killing = true;
            crew__signal_worker(ws, sig ? sig : SIGKILL);
        } else {
            /* a thread cannot be stopped safely: its futures fail now, its
             * answers are dropped, and it leaves after its current task */
            for (crew_future *g = ws->inflight.head; g; g = g->next)
                if (atomic_load(&g->state) != CREW__F_DONE) {
                    crew__future_finish(g, -ECANCELED);
                    if (g->cb && nlate < cap) { /* its callback runs unlocked */
                        atomic_fetch_add(&g->refs, 1);
                        late[nlate++] = g;
                    }
                }
            send_quit_locked(p, i);
            wake_worker(p, i);
            if (ws->has_thread) {
                pthread_detach(ws->thread);
                ws->has_thread = false;
            }
        }
    }
    if (p->kind == CREW_PROCESSES)
        wait_processes_gone(p);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    crew__run_done(&done);
    for (size_t k = 0; k < nlate; k++) {
        crew__future_run_callback(late[k]);
        crew__future_unref(late[k]);
    }
    free(late);
    stop_threads(p);
    join_retired(p); /* the collector may have left some */
    crew__lock(&p->mu, CREW__LOCK_POOL);
    /* thread workers left running: nobody reads their answers now, so the
     * pool drops its references to the futures they hold (all done) */
    for (int i = 0; i < p->nworkers; i++) {
        crew_future *g;
        while ((g = crew__fifo_pop(&p->w[i].inflight))) {
            atomic_fetch_sub(&p->inflight, 1);
            crew__future_unref(g);
        }
    }
    p->closed = true;
    release_fds_locked(p);
    pthread_cond_broadcast(&p->cv);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    return 0;
}

void crew_pool_free(crew_pool *p)
{
    if (!p)
        return;
    crew_pool_terminate(p);
    crew__pool_unref(p);
}

/* -------------------------------------------------------------- stats -- */

int crew_pool_stats(crew_pool *p, crew_stats *st)
{
    if (!p || !st)
        return -EINVAL;
    memset(st, 0, sizeof *st);
    st->kind = p->kind;
    st->workers = p->nworkers;
    st->submitted = atomic_load(&p->submitted);
    st->done = atomic_load(&p->done);
    st->failed = atomic_load(&p->failed);
    st->crashed = atomic_load(&p->crashed);
    st->timed_out = atomic_load(&p->timed_out);
    st->cancelled = atomic_load(&p->cancelled);
    crew__lock(&p->mu, CREW__LOCK_POOL);
    for (int i = 0; i < p->nworkers; i++) {
        crew__slot *sl = &p->reg.shm->slots[i];
        /* a thread worker's tid is known to its slot only */
        st->worker[i].pid = p->kind == CREW_THREADS ? atomic_load(&sl->pid) : p->w[i].pid;
        st->worker[i].tasks = atomic_load(&sl->tasks);
        st->worker[i].busy_ns = atomic_load(&sl->busy_ns);
        st->worker[i].restarts = p->w[i].restarts;
    }
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    return 0;
}

/* Whether `me` is one of p's thread workers. mu held. */
static bool is_worker_thread_locked(const crew_pool *p, pthread_t me)
{
    for (int i = 0; i < p->nworkers; i++)
        if (p->w[i].has_thread && pthread_equal(me, p->w[i].thread))
            return true;
    return false;
}

bool crew__pool_on_own_thread(crew_pool *p)
{
    pthread_t me = pthread_self();
    crew__lock(&p->mu, CREW__LOCK_POOL);
    bool own = (p->threads_started &&
                (pthread_equal(me, p->collector) || pthread_equal(me, p->supervisor))) ||
               is_worker_thread_locked(p, me);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    return own;
}

bool crew__pool_on_worker_thread(crew_pool *p)
{
    crew__lock(&p->mu, CREW__LOCK_POOL);
    bool own = is_worker_thread_locked(p, pthread_self());
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    return own;
}
