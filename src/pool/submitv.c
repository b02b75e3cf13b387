/* submitv.c — the one submit path: a payload gathered from buffers, copied once into the request. */

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "pool/pool.h"
#include "base/lockorder.h"
#include "base/sync.h"

/* Places the gathered payload in f's request (inline or one arena run),
 * waiting for arena space while tasks in flight may free some. */
static int place_gathered(crew_pool *p, crew_future *f, const struct iovec *iov, int iovcnt,
                          size_t len, bool nowait)
{
    crew__msg *m = &f->req;
    m->len = len;
    uint8_t *dst;
    if (len <= CREW__INLINE) {
        m->flags &= ~(uint32_t)CREW__MSG_ARENA;
        dst = m->data;
    } else {
        const crew__arena *a = &p->reg.arena;
        int64_t off;
        while ((off = crew__arena_alloc_wait(a, len)) < 0) {
            crew__lock(&p->mu, CREW__LOCK_POOL);
            bool idle = atomic_load(&p->inflight) + p->pending.n == 0, closing = p->closing;
            crew__unlock(&p->mu, CREW__LOCK_POOL);
            if (closing) /* nothing more will be answered to free space */
                return CREW_ECLOSED;
            if (idle)
                return CREW_ETOOBIG;
            if (nowait)
                return -EAGAIN;
            uint32_t gen = atomic_load(&p->completions);
            atomic_fetch_add(&p->any_waiters, 1);
            crew__futex_wait(&p->completions, gen, 10000000ull, false);
            atomic_fetch_sub(&p->any_waiters, 1);
        }
        m->off = (uint64_t)off;
        m->flags |= CREW__MSG_ARENA;
        crew__arena_prefault(&p->reg, &p->prefault, off, len);
        dst = crew__arena_ptr(a, off);
    }
    for (int k = 0; k < iovcnt; k++) {
        if (iov[k].iov_len)
            memcpy(dst, iov[k].iov_base, iov[k].iov_len);
        dst += iov[k].iov_len;
    }
    return 0;
}

int crew__submit_iov(crew_pool *p, uint64_t hash, uint32_t flags, const struct iovec *iov,
                     int iovcnt, const crew_submit_opts *so, crew_future **out)
{
    size_t len = 0;
    for (int k = 0; k < iovcnt; k++) {
        if (iov[k].iov_len && !iov[k].iov_base)
            return -EINVAL;
        len += iov[k].iov_len;
    }
    crew_future *f = crew__future_new(p);
    if (!f)
        return -ENOMEM;
    f->req.fn_hash = hash;
    f->req.flags = flags;
    double t = so && so->timeout ? so->timeout : p->opt.task_timeout;
    f->deadline_ns = t > 0 ? (uint64_t)(t * 1e9) : 0;
    int rc = place_gathered(p, f, iov, iovcnt, len, so && so->nowait);
    if (rc < 0) {
        atomic_store(&f->refs, 1);
        crew__future_unref(f);
        return rc;
    }
    crew__lock(&p->mu, CREW__LOCK_POOL);
    if (p->closing) {
        crew__unlock(&p->mu, CREW__LOCK_POOL);
        crew__pool_msg_free(p, &f->req);
        atomic_store(&f->refs, 1);
        crew__future_unref(f);
        return CREW_ECLOSED;
    }
    crew__fifo_push(&p->pending, f);
    atomic_fetch_add_explicit(&p->submitted, 1, memory_order_relaxed);
    crew__dispatch_locked(p);
    crew__unlock(&p->mu, CREW__LOCK_POOL);
    *out = f;
    return 0;
}

int crew_submitv(crew_pool *p, const char *name, const struct iovec *iov, int iovcnt,
                 const crew_submit_opts *so, crew_future **out)
{
    if (!p || !name || !out || iovcnt < 0 || (iovcnt && !iov))
        return -EINVAL;
    uint64_t h;
    int rc = crew__task_hash(name, &h);
    return rc < 0 ? rc : crew__submit_iov(p, h, 0, iov, iovcnt, so, out);
}
