/* future.c — futures: completion, waiting (one, any, all), results, cancel and callbacks. */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"
#include "base/lockorder.h"
#include "base/sync.h"

crew_future *crew__future_new(crew_pool *p)
{
    crew_future *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    atomic_init(&f->state, CREW__F_QUEUED);
    atomic_init(&f->refs, 2); /* the caller's and the pool's */
    f->pool = p;
    f->slot = -1;
    crew__pool_ref(p);
    return f;
}

void crew__future_set_errmsg(crew_future *f, const char *fmt, ...)
{
    free(f->errmsg);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&f->errmsg, fmt, ap) < 0)
        f->errmsg = NULL;
    va_end(ap);
}

bool crew__future_finish(crew_future *f, int status)
{
    f->status = status;
    atomic_store(&f->state, CREW__F_DONE); /* seq_cst: pairs with crew_future_on_done */
    crew_pool *p = f->pool;
    /* a cancelled task did not fail: it counts as cancelled only */
    if (status != -ECANCELED)
        atomic_fetch_add_explicit(status == 0 ? &p->done : &p->failed, 1, memory_order_relaxed);
    if (status == CREW_ECRASHED)
        atomic_fetch_add_explicit(&p->crashed, 1, memory_order_relaxed);
    else if (status == -ETIMEDOUT)
        atomic_fetch_add_explicit(&p->timed_out, 1, memory_order_relaxed);
    else if (status == -ECANCELED)
        atomic_fetch_add_explicit(&p->cancelled, 1, memory_order_relaxed);
    if (atomic_load(&f->waiters))
        crew__futex_wake(&f->state, INT_MAX, false);
    atomic_fetch_add(&p->completions, 1);
    if (atomic_load(&p->any_waiters))
        crew__futex_wake(&p->completions, INT_MAX, false);
    return f->cb != NULL;
}

void crew__future_run_callback(crew_future *f)
{
    /* exactly once: here or in crew_future_on_done, whichever claims it */
    crew_callback cb = atomic_load(&f->cb);
    if (cb && !atomic_exchange(&f->cb_claimed, true))
        cb(f, f->cb_udata);
}

void crew__future_unref(crew_future *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    crew_pool *p = f->pool;
    if (f->res_arena)
        crew__pool_free_run(p, (int64_t)f->res_off, f->res_len);
    free(f->errmsg);
    free(f);
    crew__pool_unref(p);
}

void crew_future_release(crew_future *f)
{
    if (f)
        crew__future_unref(f);
}

static uint64_t to_ns(double timeout)
{
    return timeout < 0 ? UINT64_MAX : (uint64_t)(timeout * 1e9);
}

int crew_future_wait(crew_future *f, double timeout)
{
    if (!f)
        return -EINVAL;
    if (atomic_load_explicit(&f->state, memory_order_acquire) == CREW__F_DONE)
        return 0;
    uint64_t limit = to_ns(timeout), t0 = crew__now_ns();
    /* Help first: collecting answers in this thread saves the hop through
     * the collector thread and a futex wake-up of this one. */
    uint64_t spin = crew__parent_may_spin(f->pool) ? crew__spin_ns() : 0;
    if (limit < spin)
        spin = limit;
    if (spin) {
        crew_pool *p = f->pool;
        atomic_fetch_add(&p->helpers, 1); /* the collector steps aside */
        while (atomic_load_explicit(&f->state, memory_order_acquire) != CREW__F_DONE &&
               crew__now_ns() - t0 < spin)
            if (crew__collect(p) == 0)
                crew__cpu_relax();
        if (atomic_fetch_sub(&p->helpers, 1) == 1 && atomic_load(&p->collector_parked))
            crew__futex_wake(&p->helpers, 1, false);
        if (atomic_load_explicit(&f->state, memory_order_acquire) == CREW__F_DONE)
            return 0;
    }
    atomic_fetch_add(&f->waiters, 1);
    int rc = 0;
    for (;;) {
        uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
        if (s == CREW__F_DONE)
            break;
        uint64_t el = crew__now_ns() - t0;
        if (limit != UINT64_MAX && el >= limit) {
            rc = -EAGAIN;
            break;
        }
        crew__futex_wait(&f->state, s, limit == UINT64_MAX ? UINT64_MAX : limit - el, false);
    }
    atomic_fetch_sub(&f->waiters, 1);
    return rc;
}

int crew_future_status(const crew_future *f)
{
    if (atomic_load_explicit(&((crew_future *)f)->state, memory_order_acquire) != CREW__F_DONE)
        return -EINPROGRESS;
    return f->status;
}

int crew_future_result(crew_future *f, const void **data, size_t *len)
{
    if (!f)
        return -EINVAL;
    crew_future_wait(f, -1);
    const void *d;
    size_t l;
    if (f->errmsg) {
        d = f->errmsg;
        l = strlen(f->errmsg) + 1;
    } else if (f->res_arena) {
        d = crew__arena_ptr(&f->pool->reg.arena, (int64_t)f->res_off);
        l = f->res_len;
    } else {
        d = f->res_inline;
        l = f->res_len;
    }
    if (data)
        *data = d;
    if (len)
        *len = l;
    return f->status;
}

const char *crew_future_error(const crew_future *f)
{
    int st = crew_future_status(f);
    if (st == 0)
        return "";
    if (st == -EINPROGRESS)
        return crew_strerror(st);
    if (f->errmsg)
        return f->errmsg;
    if ((f->status == CREW_ETASK || f->status == CREW_EINIT) && f->res_len) {
        const char *d = f->res_arena
            ? crew__arena_ptr(&f->pool->reg.arena, (int64_t)f->res_off)
            : (const char *)f->res_inline;
        if (memchr(d, 0, f->res_len))
            return d;
    }
    return crew_strerror(f->status);
}

int crew_future_cancel(crew_future *f)
{
    crew_pool *p = f->pool;
    crew__lock(&p->mu, CREW__LOCK_POOL);
    if (atomic_load(&f->state) != CREW__F_QUEUED) {
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        return -EBUSY;
    }
    /* unlink from the pending queue */
    crew_future **pp = &p->pending.head, *prev = NULL;
    while (*pp && *pp != f) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = f->next;
        if (p->pending.tail == f)
            p->pending.tail = prev;
        p->pending.n--;
    }
    crew__pool_msg_free(p, &f->req);
    f->req.flags &= ~(uint32_t)CREW__MSG_ARENA;
    bool cb = crew__future_finish(f, -ECANCELED);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    if (cb)
        crew__future_run_callback(f);
    crew__future_unref(f); /* the pool's reference */
    return 0;
}

int crew_future_on_done(crew_future *f, crew_callback cb, void *udata)
{
    crew_pool *p = f->pool;
    crew__lock(&p->mu, CREW__LOCK_POOL);
    if (f->cb) {
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        return -EBUSY;
    }
    f->cb_udata = udata;
    f->cb = cb; /* set before reading the state, as finish sets the state before reading cb */
    bool done = atomic_load(&f->state) == CREW__F_DONE;
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    if (done && !atomic_exchange(&f->cb_claimed, true))
        cb(f, udata);
    return 0;
}

int crew_future_take_callback(crew_future *f)
{
    if (!f || !atomic_load(&f->cb))
        return 0;
    return !atomic_exchange(&f->cb_claimed, true);
}

/* Waits on the pool-wide completion counter until one future is done. */
static int wait_many(crew_future *const *fs, size_t n, double timeout, bool all)
{
    if (!fs || n == 0)
        return -EINVAL;
    crew_pool *p = fs[0]->pool;
    uint64_t limit = to_ns(timeout), t0 = crew__now_ns();
    atomic_fetch_add(&p->any_waiters, 1);
    int rc;
    for (;;) {
        uint32_t gen = atomic_load(&p->completions);
        size_t ndone = 0;
        rc = -1;
        for (size_t i = 0; i < n; i++) {
            if (atomic_load_explicit(&fs[i]->state, memory_order_acquire) == CREW__F_DONE) {
                ndone++;
                if (!all) {
                    rc = (int)i;
                    break;
                }
            }
        }
        if (all && ndone == n)
            rc = 0;
        if (rc >= 0)
            break;
        uint64_t el = crew__now_ns() - t0;
        if (limit != UINT64_MAX && el >= limit) {
            rc = -EAGAIN;
            break;
        }
        /* futures of other pools do not bump this counter: poll them too */
        uint64_t nap = limit == UINT64_MAX ? 10000000ull : limit - el;
        if (nap > 10000000ull)
            nap = 10000000ull;
        crew__futex_wait(&p->completions, gen, nap, false);
    }
    atomic_fetch_sub(&p->any_waiters, 1);
    return rc;
}

int crew_wait_any(crew_future *const *fs, size_t n, double timeout)
{
    return wait_many(fs, n, timeout, false);
}

int crew_wait_all(crew_future *const *fs, size_t n, double timeout)
{
    if (!fs || n == 0)
        return -EINVAL;
    uint64_t limit = to_ns(timeout), t0 = crew__now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t el = crew__now_ns() - t0;
        if (limit != UINT64_MAX && el >= limit)
            return crew_future_status(fs[i]) == -EINPROGRESS ? -EAGAIN : 0;
        double left = limit == UINT64_MAX ? -1.0 : (double)(limit - el) / 1e9;
        if (crew_future_wait(fs[i], left) < 0)
            return -EAGAIN;
    }
    return 0;
}
