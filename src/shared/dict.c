/* shared_dict.c — crew_dict: a shared hash map of bytes; lock-free optimistic readers, robust-locked writers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "base/sync.h"
#include "shared/region.h"

/*
 * Layout (offsets from the body): header, two slot tables and two heaps.
 * One table and one heap are active. A slot is 0 (empty), 1 (deleted) or the
 * offset of an immutable entry {hash, klen, vlen, key, value} in the active
 * heap. A set appends the entry past `used`, then publishes it with one
 * atomic store into the slot: a writer killed before that store leaves the
 * old value, after it the new one. When the heap or the table fills up, a
 * rebuild copies the live entries into the other table and heap and flips
 * `active` with one store; `gseq` counts rebuilds (odd while one runs).
 * Readers load gseq, read, and load it again: only a rebuild reuses memory,
 * so an unchanged gseq means what they copied was whole. They never wait.
 */
#define EMPTY 0u
#define DELETED 1u

typedef struct dict_body {
    pthread_mutex_t mu;              /* robust, recursive: the writers' lock */
    uint64_t nslots;                 /* a power of two */
    uint64_t heap_bytes;             /* per heap */
    uint64_t idx_off[2], heap_off[2];
    _Atomic uint32_t active;
    _Atomic uint64_t gseq;
    _Atomic uint64_t count;
    uint64_t tombs;
    uint64_t used[2];                /* heap bytes written (writer side) */
} dict_body;

typedef struct entry {
    uint64_t hash;
    uint32_t klen, vlen;
    unsigned char kv[];
} entry;

/* A process's handle: the region, and its own copy of the layout, taken at
 * create or checked at open and never read from the region again (any
 * holder can write the region; tests/fuzz/fuzz_shared.c does). */
struct crew_dict {
    crew__sh sh;
    uint64_t nslots, heap_bytes, idx_off[2], heap_off[2];
};

static dict_body *body(const crew_dict *d)
{
    return crew__sh_body(&d->sh);
}

static _Atomic uint64_t *slots(const crew_dict *d, uint32_t a)
{
    return (_Atomic uint64_t *)((char *)body(d) + d->idx_off[a & 1]);
}

/* The active table and heap: 0 or 1, whatever the region says. */
static uint32_t active(dict_body *b, memory_order mo)
{
    return atomic_load_explicit(&b->active, mo) & 1;
}

static uint64_t rec_bytes(uint64_t klen, uint64_t vlen)
{
    return (sizeof(entry) + klen + vlen + 7) & ~(uint64_t)7;
}

static uint64_t hash_bytes(const void *k, size_t n)
{
    const unsigned char *p = k;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    uint64_t t = 0;
    memcpy(&t, p, n);
    h = (h ^ t) * 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* ------------------------------------------------------------- creation */

int crew_dict_create(crew_dict **out, size_t max_items, size_t max_bytes)
{
    if (!out || max_items > (1u << 30) || max_bytes > ((size_t)1 << 40))
        return -EINVAL;
    if (!max_items)
        max_items = 65536;
    if (!max_bytes)
        max_bytes = (size_t)64 << 20;
    uint64_t ns = 16;
    while (ns * 7 / 10 < max_items + 1)
        ns *= 2;
    uint64_t heap = (max_bytes + 4095) & ~(uint64_t)4095;
    uint64_t idx = (ns * 8 + 4095) & ~(uint64_t)4095;
    crew_dict *d;
    int rc = CREW__SH_NEW(crew_dict, CREW_SHARED_DICT, 4096 + 2 * idx + 2 * heap, &d);
    if (rc)
        return rc;
    dict_body *b = body(d);
    b->nslots = ns;
    b->heap_bytes = heap;
    b->idx_off[0] = 4096;
    b->idx_off[1] = 4096 + idx;
    b->heap_off[0] = 4096 + 2 * idx;
    b->heap_off[1] = 4096 + 2 * idx + heap;
    d->nslots = ns;
    d->heap_bytes = heap;
    memcpy(d->idx_off, b->idx_off, sizeof d->idx_off);
    memcpy(d->heap_off, b->heap_off, sizeof d->heap_off);
    if ((rc = crew__rmutex_init(&b->mu, true)) != 0) {
        crew_dict_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* --------------------------------------------------------------- writers */

/* After a writer died: counts again (the one field it may have left stale). */
static void repair(crew_dict *d)
{
    dict_body *b = body(d);
    uint32_t a = active(b, memory_order_seq_cst);
    _Atomic uint64_t *s = slots(d, a);
    uint64_t n = 0, t = 0;
    for (uint64_t i = 0; i < d->nslots; i++) {
        uint64_t v = atomic_load_explicit(&s[i], memory_order_relaxed);
        n += v > DELETED;
        t += v == DELETED;
    }
    atomic_store(&b->count, n);
    b->tombs = t;
    if (atomic_load(&b->gseq) & 1)
        atomic_fetch_add(&b->gseq, 1); /* it died in a rebuild: that one is void */
}

static int wlock(crew_dict *d, uint64_t deadline)
{
    int rc = crew__rmutex_lock(&body(d)->mu, deadline);
    if (rc == CREW_EOWNERDEAD)
        repair(d);
    return rc;
}

static void wunlock(dict_body *b)
{
    crew__rmutex_unlock(&b->mu);
}

static entry *entry_at(dict_body *b, uint64_t off)
{
    return (entry *)((char *)b + off);
}

/* Reads the header of the entry at slot value v of table a into *h (once:
 * the entry may be torn) and returns the entry, or NULL when it would not
 * lie wholly in heap a (or is misaligned). */
static entry *read_entry(const crew_dict *d, uint32_t a, uint64_t v, entry *h)
{
    uint64_t lo = d->heap_off[a & 1], hi = lo + d->heap_bytes;
    if (v < lo || v % 8 || v > hi || hi - v < sizeof(entry))
        return NULL;
    entry *e = entry_at(body(d), v);
    h->hash = __atomic_load_n(&e->hash, __ATOMIC_RELAXED);
    h->klen = __atomic_load_n(&e->klen, __ATOMIC_RELAXED);
    h->vlen = __atomic_load_n(&e->vlen, __ATOMIC_RELAXED);
    return rec_bytes(h->klen, h->vlen) <= hi - v ? e : NULL;
}

/* Whether heap a has room for rb more bytes after `used` (a writer's
 * count, in the region: checked, not trusted). */
static bool heap_room(const crew_dict *d, dict_body *b, uint32_t a, uint64_t rb)
{
    uint64_t used = b->used[a];
    return used % 8 == 0 && used <= d->heap_bytes && rb <= d->heap_bytes - used;
}

/* Writer's probe (locked): the slot holding key, or -1 with *free_at the
 * first reusable slot (-1 when the table is full). */
static int64_t find(crew_dict *d, uint32_t a, uint64_t h, const void *key, size_t klen,
                    int64_t *free_at)
{
    _Atomic uint64_t *s = slots(d, a);
    uint64_t mask = d->nslots - 1;
    *free_at = -1;
    for (uint64_t i = h & mask, n = 0; n < d->nslots; i = (i + 1) & mask, n++) {
        uint64_t v = atomic_load_explicit(&s[i], memory_order_relaxed);
        if (v == EMPTY) {
            if (*free_at < 0)
                *free_at = (int64_t)i;
            return -1;
        }
        if (v == DELETED) {
            if (*free_at < 0)
                *free_at = (int64_t)i;
            continue;
        }
        entry eh, *e = read_entry(d, a, v, &eh);
        if (e && eh.hash == h && eh.klen == klen && !memcmp(e->kv, key, klen))
            return (int64_t)i;
    }
    return -1;
}

static void punch(crew_dict *d, uint32_t a, uint64_t bytes)
{
    if (bytes > d->heap_bytes)
        bytes = d->heap_bytes; /* never past its own heap */
    bytes = (bytes + 4095) & ~(uint64_t)4095;
    if (bytes)
        (void)fallocate(d->sh.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)(CREW__SH_BODY + d->heap_off[a & 1]), (off_t)bytes);
}

/* Copies the live entries into the other table and heap and flips to them
 * (locked). empty: copy nothing (clear). */
static void rebuild(crew_dict *d, bool empty)
{
    dict_body *b = body(d);
    uint32_t a = active(b, memory_order_seq_cst), nb = 1 - a;
    atomic_fetch_add(&b->gseq, 1); /* odd: memory about to be reused */
    _Atomic uint64_t *from = slots(d, a), *to = slots(d, nb);
    memset((void *)to, 0, d->nslots * 8);
    uint64_t used = 0, n = 0, mask = d->nslots - 1;
    for (uint64_t i = 0; i < d->nslots && !empty; i++) {
        uint64_t v = atomic_load_explicit(&from[i], memory_order_relaxed);
        if (v <= DELETED)
            continue;
        entry eh, *e = read_entry(d, a, v, &eh);
        if (!e) /* not an entry of this heap: the region was overwritten */
            continue;
        uint64_t rb = rec_bytes(eh.klen, eh.vlen), off = d->heap_off[nb] + used;
        if (rb > d->heap_bytes - used || n + 1 >= d->nslots)
            break;
        memcpy(entry_at(b, off), e, rb);
        entry_at(b, off)->klen = eh.klen; /* the sizes checked, whatever e says now */
        entry_at(b, off)->vlen = eh.vlen;
        used += rb;
        uint64_t j = eh.hash & mask;
        while (atomic_load_explicit(&to[j], memory_order_relaxed) != EMPTY)
            j = (j + 1) & mask;
        atomic_store_explicit(&to[j], off, memory_order_relaxed);
        n++;
        crew__hook("dict.rebuild.copied");
    }
    b->used[nb] = used;
    atomic_store_explicit(&b->active, nb, memory_order_release); /* the flip */
    atomic_store(&b->count, n);
    b->tombs = 0;
    uint64_t old = b->used[a];
    atomic_fetch_add(&b->gseq, 1);
    punch(d, a, old); /* give the old heap's pages back */
}

int crew_dict_set(crew_dict *d, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!d || !key || !klen || (vlen && !val) || klen > UINT32_MAX || vlen > UINT32_MAX)
        return -EINVAL;
    dict_body *b = body(d);
    uint64_t h = hash_bytes(key, klen), rb = rec_bytes(klen, vlen);
    if (rb > d->heap_bytes)
        return -ENOSPC;
    int rc = wlock(d, UINT64_MAX);
    if (rc < 0 && rc != CREW_EOWNERDEAD)
        return rc;
    uint32_t a = active(b, memory_order_seq_cst);
    int64_t fr, at = find(d, a, h, key, klen, &fr);
    uint64_t limit = d->nslots * 7 / 10;
    bool grows = at < 0 && (fr < 0 || atomic_load(&b->count) + b->tombs + 1 > limit);
    if (grows || !heap_room(d, b, a, rb)) {
        rebuild(d, false);
        a = active(b, memory_order_seq_cst);
        at = find(d, a, h, key, klen, &fr);
        if ((at < 0 && (fr < 0 || atomic_load(&b->count) + 1 > limit)) ||
            !heap_room(d, b, a, rb)) {
            wunlock(b);
            return -ENOSPC;
        }
    }
    uint64_t off = d->heap_off[a] + b->used[a];
    entry *e = entry_at(b, off);
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    memcpy(e->kv, key, klen);
    if (vlen)
        memcpy(e->kv + klen, val, vlen);
    b->used[a] += rb;
    crew__hook("dict.set.written");
    _Atomic uint64_t *s = slots(d, a);
    if (at >= 0) {
        atomic_store_explicit(&s[at], off, memory_order_release); /* publish */
    } else {
        bool tomb = atomic_load_explicit(&s[fr], memory_order_relaxed) == DELETED;
        atomic_store_explicit(&s[fr], off, memory_order_release); /* publish */
        atomic_fetch_add(&b->count, 1);
        if (tomb)
            b->tombs--;
    }
    wunlock(b);
    return 0;
}

int crew_dict_delete(crew_dict *d, const void *key, size_t klen)
{
    if (!d || !key || !klen)
        return -EINVAL;
    dict_body *b = body(d);
    int rc = wlock(d, UINT64_MAX);
    if (rc < 0 && rc != CREW_EOWNERDEAD)
        return rc;
    uint32_t a = active(b, memory_order_seq_cst);
    int64_t fr, at = find(d, a, hash_bytes(key, klen), key, klen, &fr);
    if (at >= 0) {
        atomic_store_explicit(&slots(d, a)[at], DELETED, memory_order_release);
        atomic_fetch_sub(&b->count, 1);
        b->tombs++;
    }
    wunlock(b);
    return at >= 0 ? 0 : -ENOENT;
}

int crew_dict_clear(crew_dict *d)
{
    if (!d)
        return -EINVAL;
    dict_body *b = body(d);
    int rc = wlock(d, UINT64_MAX);
    if (rc < 0 && rc != CREW_EOWNERDEAD)
        return rc;
    rebuild(d, true);
    wunlock(b);
    return 0;
}

int crew_dict_lock(crew_dict *d, double timeout)
{
    if (!d)
        return -EINVAL;
    return wlock(d, crew__deadline(timeout));
}

int crew_dict_unlock(crew_dict *d)
{
    if (!d)
        return -EINVAL;
    return crew__rmutex_unlock(&body(d)->mu);
}

/* --------------------------------------------------------------- readers */

/* Where a reader copies a value: a caller's buffer, or a malloc()ed one. */
typedef struct sink {
    void *buf;
    size_t cap;
    bool alloc;
} sink;

/* Copies len bytes at src into the sink (a reader's view; may be torn and
 * is checked afterwards). 0, -EMSGSIZE, -ENOMEM. */
static int sink_put(sink *k, const void *src, size_t len)
{
    if (k->alloc) {
        free(k->buf);
        k->buf = malloc(len ? len : 1);
        if (!k->buf)
            return -ENOMEM;
        k->cap = len;
    } else if (len > k->cap) {
        return -EMSGSIZE;
    }
    if (len)
        memcpy(k->buf, src, len);
    return 0;
}


/* A reader saw a torn entry while gseq stayed at odd g (a rebuild under
 * way): after a while it takes the writers' lock, which waits for a live
 * rebuilder and repairs a dead one's (gseq even again). Still g then: no
 * rebuild runs, the region's bytes are not the dict's: true. */
static bool rebuild_stuck(crew_dict *d, uint64_t g, unsigned *spins)
{
    if (++*spins < 1000) {
        crew__cpu_relax();
        return false;
    }
    *spins = 0;
    dict_body *b = body(d);
    int rc = wlock(d, crew__deadline(1.0));
    if (rc < 0 && rc != CREW_EOWNERDEAD)
        return false; /* a writer holds it: look again */
    bool stuck = atomic_load(&b->gseq) == g;
    wunlock(b);
    return stuck;
}

/* Looks key up without a lock: 0 (value into k, *vlen), -ENOENT, -EMSGSIZE. */
static int lookup(crew_dict *d, const void *key, size_t klen, sink *k, size_t *vlen)
{
    dict_body *b = body(d);
    uint64_t h = hash_bytes(key, klen), mask = d->nslots - 1;
    unsigned spins = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&b->gseq, memory_order_acquire);
        uint32_t a = active(b, memory_order_acquire);
        _Atomic uint64_t *s = slots(d, a);
        int rc = -ENOENT;
        bool torn = false;
        for (uint64_t i = h & mask, n = 0; n < d->nslots; i = (i + 1) & mask, n++) {
            uint64_t v = atomic_load_explicit(&s[i], memory_order_acquire);
            if (v == EMPTY)
                break;
            if (v == DELETED)
                continue;
            entry eh, *e = read_entry(d, a, v, &eh);
            if (!e) {
                torn = true;
                break;
            }
            if (eh.hash != h || eh.klen != klen || memcmp(e->kv, key, klen))
                continue;
            *vlen = eh.vlen;
            rc = sink_put(k, e->kv + klen, eh.vlen);
            break;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&b->gseq, memory_order_relaxed) == g) {
            if (!torn)
                return rc;
            if (!(g & 1) || rebuild_stuck(d, g, &spins)) /* not an entry at all */
                return -EBADMSG;
        }
    }
}

int crew_dict_get(crew_dict *d, const void *key, size_t klen, void *buf, size_t cap,
                  size_t *vlen)
{
    if (!d || !key || !klen || !vlen || (cap && !buf))
        return -EINVAL;
    sink k = {buf, cap, false};
    return lookup(d, key, klen, &k, vlen);
}

int crew_dict_get_alloc(crew_dict *d, const void *key, size_t klen, void **val, size_t *vlen)
{
    if (!d || !key || !klen || !val || !vlen)
        return -EINVAL;
    sink k = {NULL, 0, true};
    int rc = lookup(d, key, klen, &k, vlen);
    if (rc == 0)
        *val = k.buf;
    else
        free(k.buf);
    return rc;
}

int crew_dict_contains(crew_dict *d, const void *key, size_t klen)
{
    if (!d || !key || !klen)
        return 0;
    size_t vlen;
    sink k = {NULL, 0, false};
    int rc = lookup(d, key, klen, &k, &vlen);
    return rc == 0 || rc == -EMSGSIZE;
}

size_t crew_dict_len(crew_dict *d)
{
    return d ? atomic_load(&body(d)->count) : 0;
}

int crew_dict_next(crew_dict *d, uint64_t *cursor, void *kbuf, size_t kcap, size_t *klen,
                   void *vbuf, size_t vcap, size_t *vlen)
{
    if (!d || !cursor || !klen || !vlen || (kcap && !kbuf) || (vcap && !vbuf))
        return -EINVAL;
    dict_body *b = body(d);
    unsigned spins = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&b->gseq, memory_order_acquire);
        uint32_t a = active(b, memory_order_acquire);
        _Atomic uint64_t *s = slots(d, a);
        int rc = -ENOENT;
        bool torn = false;
        uint64_t i = *cursor;
        for (; i < d->nslots; i++) {
            uint64_t v = atomic_load_explicit(&s[i], memory_order_acquire);
            if (v <= DELETED)
                continue;
            entry eh, *e = read_entry(d, a, v, &eh);
            if (!e) {
                torn = true;
                break;
            }
            *klen = eh.klen;
            *vlen = eh.vlen;
            if (eh.klen > kcap || eh.vlen > vcap) {
                rc = -EMSGSIZE;
                break;
            }
            memcpy(kbuf, e->kv, eh.klen);
            if (eh.vlen)
                memcpy(vbuf, e->kv + eh.klen, eh.vlen);
            rc = 0;
            break;
        }
        atomic_thread_fence(memory_order_acquire);
        if (torn && atomic_load_explicit(&b->gseq, memory_order_relaxed) == g &&
            (!(g & 1) || rebuild_stuck(d, g, &spins)))
            return -EBADMSG; /* not torn by a rebuild: not an entry at all */
        if (!torn && atomic_load_explicit(&b->gseq, memory_order_relaxed) == g) {
            if (rc == 0)
                *cursor = i + 1;
            else if (rc == -ENOENT)
                *cursor = d->nslots;
            return rc;
        }
    }
}

int crew_dict_ref(const crew_dict *d, crew_shared_ref *ref)
{
    if (!d || !ref)
        return -EINVAL;
    crew__sh_ref(&d->sh, ref);
    return 0;
}

/* Takes this handle's copy of the layout from the region it just mapped,
 * checked against the layout crew_dict_create makes and the mapping's size:
 * 0 or -EINVAL. */
static int take_layout(crew_dict *d)
{
    dict_body *b = body(d);
    uint64_t ns = b->nslots, heap = b->heap_bytes;
    if (ns < 16 || ns > (1ull << 32) || (ns & (ns - 1)) || heap % 4096 || heap > (1ull << 41))
        return -EINVAL;
    uint64_t idx = (ns * 8 + 4095) & ~(uint64_t)4095;
    if (b->idx_off[0] != 4096 || b->idx_off[1] != 4096 + idx || b->heap_off[0] != 4096 + 2 * idx ||
        b->heap_off[1] != 4096 + 2 * idx + heap ||
        CREW__SH_BODY + 4096 + 2 * idx + 2 * heap > d->sh.size)
        return -EINVAL;
    d->nslots = ns;
    d->heap_bytes = heap;
    d->idx_off[0] = 4096;
    d->idx_off[1] = 4096 + idx;
    d->heap_off[0] = 4096 + 2 * idx;
    d->heap_off[1] = 4096 + 2 * idx + heap;
    return 0;
}

int crew_dict_open(crew_dict **out, const crew_shared_ref *ref)
{
    if (!out)
        return -EINVAL;
    crew_dict *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    int rc = crew__sh_open(&d->sh, ref, CREW_SHARED_DICT);
    if (rc == 0 && (rc = take_layout(d)) != 0)
        crew__sh_close(&d->sh);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void crew_dict_free(crew_dict *d)
{
    if (!d)
        return;
    crew__sh_close(&d->sh);
    free(d);
}
