/* shared_msgq.c — the shared message ring behind crew_queue and crew_pipe: locked puts/gets, futex sleeps, repair after a death. */
#include "shared/msgq.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/sync.h"

#define WRAP UINT64_MAX
#define PEER_SLICE_NS 100000000ull /* how often a sleeper checks its peers */

static inline uint64_t rec_bytes(uint64_t len)
{
    return 8 + ((len + 7) & ~(uint64_t)7);
}

size_t crew__mq_bytes(size_t cap)
{
    return sizeof(crew__mq) + cap;
}

int crew__mq_init(crew__mq *q, size_t cap, size_t max_items)
{
    q->cap = cap;
    q->max_items = max_items;
    return crew__rmutex_init(&q->mu, false);
}

uint64_t crew__mq_cap(const crew__mq *q, const crew__sh *sh)
{
    uint64_t at = (uint64_t)((const char *)q - (const char *)sh->hdr);
    uint64_t cap = __atomic_load_n(&q->cap, __ATOMIC_RELAXED);
    if (at % 8 || at > sh->size || sh->size - at < sizeof(crew__mq) || cap < 64 || cap % 8 ||
        cap > sh->size - at - sizeof(crew__mq))
        return 0;
    return cap;
}

/* Whether head and tail can be a queue's of cap bytes (locked): any process
 * that maps the region can write them. */
static bool sane(const crew__mq *q, uint64_t cap)
{
    uint64_t h = atomic_load(&q->head), t = atomic_load(&q->tail);
    return h <= t && t - h <= cap && h % 8 == 0 && t % 8 == 0;
}

/* Counts the messages between head and tail (repair after a death); a
 * record that cannot be one ends the count. */
static void recount(crew__mq *q, uint64_t cap)
{
    uint64_t pos = atomic_load(&q->head), tail = atomic_load(&q->tail), n = 0;
    if (!sane(q, cap))
        tail = pos;
    while (pos < tail) {
        uint64_t len;
        memcpy(&len, q->data + pos % cap, 8);
        if (len == WRAP) {
            pos = (pos / cap + 1) * cap;
            continue;
        }
        if (len > cap / 2 - 16)
            break;
        pos += rec_bytes(len);
        n++;
    }
    q->items = n;
}

static int lock(crew__mq *q, uint64_t cap)
{
    int rc = crew__rmutex_lock(&q->mu, UINT64_MAX);
    if (rc == CREW_EOWNERDEAD) {
        recount(q, cap);
        rc = 0;
    }
    return rc;
}

static void unlock(crew__mq *q)
{
    crew__rmutex_unlock(&q->mu);
}

/* Whether nobody on the other side can ever act (called unlocked). */
static bool peer_gone(crew__mq_side s)
{
    if (s.peer_tag < 0)
        return crew__sh_peer_seen(s.sh) && crew__sh_live_peers(s.sh, -1) == 0;
    return crew__sh_live_peers(s.sh, s.peer_tag) == 0;
}

/* Bytes a put of a len-byte message needs at the current tail (with the
 * wrap padding), and the position its record starts at. */
static uint64_t need_at(const crew__mq *q, uint64_t cap, uint64_t len, uint64_t *start)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t off = tail % cap, rec = rec_bytes(len);
    *start = off + rec > cap ? tail + (cap - off) : tail;
    return *start - tail + rec;
}

static bool fits(const crew__mq *q, uint64_t cap, uint64_t len)
{
    uint64_t start;
    uint64_t used = atomic_load(&q->tail) - atomic_load(&q->head);
    return (!q->max_items || q->items < q->max_items) && need_at(q, cap, len, &start) <= cap - used;
}

/*
 * Waits, locked, until ready(q) holds: 0 (locked), or an error (unlocked).
 * for_get selects the get side's futex and counters.
 */
static int wait_until(crew__mq *q, crew__mq_side side, bool for_get, uint64_t len,
                      uint64_t deadline)
{
    _Atomic uint32_t *seq = for_get ? &q->get_seq : &q->put_seq;
    _Atomic uint32_t *waiters = for_get ? &q->get_waiters : &q->put_waiters;
    bool spun = false;
    uint64_t t0 = crew__now_ns(), next_check = t0 + PEER_SLICE_NS;
    for (;;) {
        if (!sane(q, side.cap)) {
            unlock(q);
            return -EBADMSG;
        }
        if (atomic_load(&q->closed) && (!for_get || q->items == 0)) {
            unlock(q);
            return for_get ? -EPIPE : CREW_ECLOSED;
        }
        if (for_get ? q->items > 0 : fits(q, side.cap, len))
            return 0;
        if (crew__remaining(deadline) == 0) {
            unlock(q);
            return -EAGAIN;
        }
        uint64_t now = crew__now_ns();
        if (now >= next_check) {
            unlock(q);
            if (peer_gone(side))
                return -EPIPE;
            next_check = crew__now_ns() + PEER_SLICE_NS;
            int rc = lock(q, side.cap);
            if (rc)
                return rc;
            continue;
        }
        if (!spun) {
            /* spin unlocked a while: the other side is usually about to act */
            spun = true;
            uint64_t h = atomic_load(&q->head), t = atomic_load(&q->tail);
            unlock(q);
            uint64_t until = now + crew__spin_ns();
            while (crew__now_ns() < until && atomic_load_explicit(&q->head, memory_order_relaxed) == h &&
                   atomic_load_explicit(&q->tail, memory_order_relaxed) == t &&
                   !atomic_load_explicit(&q->closed, memory_order_relaxed))
                for (int i = 0; i < 32; i++)
                    crew__cpu_relax();
            int rc = lock(q, side.cap);
            if (rc)
                return rc;
            continue;
        }
        atomic_fetch_add(waiters, 1);
        uint32_t s = atomic_load(seq);
        unlock(q);
        uint64_t slice = next_check > now ? next_check - now : 1;
        crew__sh_wait(seq, s, deadline, slice);
        atomic_fetch_sub(waiters, 1);
        int rc = lock(q, side.cap);
        if (rc)
            return rc;
    }
}

/* Bumps the other side's futex word if it has sleepers (locked); returns
 * whether a wake is due after unlocking. */
static bool ring(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
    if (!atomic_load(waiters))
        return false;
    atomic_fetch_add(seq, 1);
    return true;
}

int crew__mq_put(crew__mq *q, crew__mq_side side, size_t n, const struct iovec *const *iovs,
                 const int *iovcnt, uint64_t deadline)
{
    size_t done = 0;
    int rc = 0;
    crew__sh_check_fork(side.sh);
    if (!side.cap)
        return -EBADMSG;
    if ((rc = lock(q, side.cap)) != 0)
        return rc;
    while (done < n) {
        uint64_t len = 0;
        for (int i = 0; i < iovcnt[done]; i++)
            len += iovs[done][i].iov_len;
        if (len > side.cap / 2 - 16) {
            rc = CREW_ETOOBIG;
            break;
        }
        if (done && !fits(q, side.cap, len) && ring(&q->get_seq, &q->get_waiters))
            crew__futex_wake(&q->get_seq, INT_MAX, true); /* let them make room */
        rc = wait_until(q, side, false, len, deadline);
        if (rc) {
            if (!done || lock(q, side.cap))
                goto out_unlocked;
            break;
        }
        uint64_t start, tail = atomic_load(&q->tail);
        uint64_t need = need_at(q, side.cap, len, &start);
        if (start != tail) {
            uint64_t w = WRAP;
            memcpy(q->data + tail % side.cap, &w, 8);
        }
        unsigned char *p = q->data + start % side.cap;
        memcpy(p, &len, 8);
        p += 8;
        for (int i = 0; i < iovcnt[done]; i++) {
            memcpy(p, iovs[done][i].iov_base, iovs[done][i].iov_len);
            p += iovs[done][i].iov_len;
        }
        crew__hook("queue.put.written");
        atomic_store_explicit(&q->tail, tail + need, memory_order_release); /* publish */
        q->items++;
        done++;
    }
    bool wake = ring(&q->get_seq, &q->get_waiters);
    unlock(q);
    if (wake)
        crew__futex_wake(&q->get_seq, done > 1 ? INT_MAX : 1, true);
out_unlocked:
    if (done)
        return (int)(done > INT_MAX ? INT_MAX : done);
    return rc;
}

/* Length of the message at head (items > 0, locked); moves head past a
 * wrap. WRAP when no whole record lies between head and tail: the bytes are
 * not a queue's (any process that maps the region can write them). */
static uint64_t head_len(crew__mq *q, uint64_t cap, uint64_t *pos)
{
    uint64_t h = atomic_load(&q->head), t = atomic_load(&q->tail), len;
    if (t - h < 8)
        return WRAP;
    memcpy(&len, q->data + h % cap, 8);
    if (len == WRAP) {
        h = (h / cap + 1) * cap;
        if (h > t || t - h < 8)
            return WRAP;
        memcpy(&len, q->data + h % cap, 8);
    }
    *pos = h;
    if (len > cap / 2 - 16 || rec_bytes(len) > t - h || h % cap + rec_bytes(len) > cap)
        return WRAP;
    return len;
}

int crew__mq_get(crew__mq *q, crew__mq_side side, size_t max, void *buf, size_t cap,
                 size_t *lens, void **alloc, uint64_t deadline)
{
    crew__sh_check_fork(side.sh);
    if (!side.cap)
        return -EBADMSG;
    int rc = lock(q, side.cap);
    if (rc)
        return rc;
    rc = wait_until(q, side, true, 0, deadline);
    if (rc)
        return rc;
    size_t n = 0, used = 0;
    while (q->items > 0 && n < max) {
        uint64_t pos, len = head_len(q, side.cap, &pos);
        void *dst;
        if (len == WRAP) { /* corrupt: no message to give */
            if (n == 0)
                rc = -EBADMSG;
            break;
        }
        if (alloc) {
            dst = malloc(len ? len : 1);
            if (!dst) {
                rc = -ENOMEM;
                break;
            }
            *alloc = dst;
        } else if (len > cap - used) {
            if (n == 0) {
                lens[0] = len;
                rc = -EMSGSIZE;
            }
            break;
        } else {
            dst = (char *)buf + used;
        }
        memcpy(dst, q->data + pos % side.cap + 8, len);
        crew__hook("queue.get.copied");
        atomic_store_explicit(&q->head, pos + rec_bytes(len), memory_order_release); /* consume */
        q->items--;
        lens[n++] = len;
        used += len;
        if (alloc)
            break;
    }
    bool wake = n && ring(&q->put_seq, &q->put_waiters);
    unlock(q);
    if (wake)
        crew__futex_wake(&q->put_seq, n > 1 ? INT_MAX : 1, true);
    return n ? (int)n : rc;
}

int crew__mq_poll(crew__mq *q, crew__mq_side side, uint64_t deadline)
{
    crew__sh_check_fork(side.sh);
    if (!side.cap)
        return -EBADMSG;
    int rc = lock(q, side.cap);
    if (rc)
        return rc;
    rc = wait_until(q, side, true, 0, deadline);
    if (rc == 0)
        unlock(q);
    return rc == 0 ? 1 : rc == -EAGAIN ? 0 : rc;
}

void crew__mq_close(crew__mq *q, crew__mq_side side)
{
    if (!side.cap || lock(q, side.cap))
        return;
    atomic_store(&q->closed, 1);
    atomic_fetch_add(&q->get_seq, 1);
    atomic_fetch_add(&q->put_seq, 1);
    unlock(q);
    crew__futex_wake(&q->get_seq, INT_MAX, true);
    crew__futex_wake(&q->put_seq, INT_MAX, true);
}

size_t crew__mq_items(crew__mq *q, crew__mq_side side)
{
    if (!side.cap || lock(q, side.cap))
        return 0;
    size_t n = q->items;
    unlock(q);
    return n;
}
