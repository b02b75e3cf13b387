/* worker.c — the worker loop (the same code in a thread or a process) and the crew_out result API. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/procfs.h"
#include "worker/registry.h"
#include "worker/worker.h"
#include "base/sync.h"

/* The arena granules this worker process has mapped in (a process worker
 * serves one pool; thread workers share their parent's page tables). */
static crew__prefault worker_pf;

struct crew_out {
    const crew__region *reg;
    crew__msg *resp;      /* shared mode: the response message being built */
    const crew__msg *req; /* the request (its payload: crew_out_keep_arg)  */
    bool local;           /* local mode (map items): a malloc'd buffer     */
    uint8_t *buf;
    size_t len, cap;
};

void *crew_out_alloc(crew_out *out, size_t len)
{
    if (out->local) {
        if (len > out->cap) {
            uint8_t *nb = realloc(out->buf, len);
            if (!nb)
                return NULL;
            out->buf = nb;
            out->cap = len;
        }
        out->len = len;
        return out->buf;
    }
    crew__msg *r = out->resp;
    const crew__arena *a = &out->reg->arena;
    crew__msg_free(a, r); /* replace an earlier buffer */
    r->flags &= ~(uint32_t)CREW__MSG_ARENA;
    r->len = len;
    if (len <= CREW__INLINE)
        return r->data;
    int64_t off = crew__arena_alloc_wait(a, len);
    if (off < 0) {
        r->len = 0;
        return NULL;
    }
    r->off = (uint64_t)off;
    r->flags |= CREW__MSG_ARENA;
    if (out->reg->shared_futex)
        crew__arena_prefault(out->reg, &worker_pf, off, len);
    return crew__arena_ptr(a, off);
}

int crew_out_set(crew_out *out, const void *data, size_t len)
{
    void *p = crew_out_alloc(out, len);
    if (!p && len)
        return CREW_ETOOBIG;
    if (len)
        memcpy(p, data, len);
    return 0;
}

int crew_out_keep_arg(crew_out *out, crew_kept_arg *kept)
{
    if (!out || !kept || out->local || !out->req || !(out->req->flags & CREW__MSG_ARENA))
        return -EINVAL;
    out->resp->flags |= CREW__MSG_KEEP;
    kept->arena_ = out->reg->arena.ctl;
    kept->nwords_ = out->reg->arena.nwords;
    kept->data_off_ = out->reg->arena.data_off;
    kept->off_ = (int64_t)out->req->off;
    kept->len_ = out->req->len;
    return 0;
}

void crew_kept_arg_free(crew_kept_arg *kept)
{
    if (kept && kept->arena_) {
        crew__arena a;
        crew__arena_attach(&a, kept->arena_, kept->nwords_, kept->data_off_);
        crew__arena_free(&a, kept->off_, kept->len_);
        kept->arena_ = NULL;
    }
}

int crew_out_error(crew_out *out, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CREW_ETASK;
    char *msg = small;
    if ((size_t)n >= sizeof small) {
        msg = malloc((size_t)n + 1);
        if (!msg)
            return CREW_ETASK;
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    (void)crew_out_set(out, msg, (size_t)n + 1); /* keep the NUL */
    if (msg != small)
        free(msg);
    return CREW_ETASK;
}

/* A task forked, and its child came back into the worker loop: the child is
 * no worker (its parent is), and the rings are not its to touch; it leaves
 * at once, saying why, giving back any arena room its answer r took (R).
 * Async-signal-safe: a child of a threaded process. */
static void forked_copy_leaves(const crew__region *R, const crew__msg *r)
{
    if (R && r)
        crew__msg_free(&R->arena, r);
    static const char msg[] = "crew: a process forked inside a task returned into crew's worker "
                              "loop; it exits now (end such a child with os._exit() or exec)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(0);
}

/* Runs one chunk of a crew_map (pool/map.c plans the chunks and packs them):
 * items packed as [u64 len][bytes]..., the task called once per item,
 * results packed as [i32 status][u32 pad][u64 len][bytes]... into out
 * (map.c's unpack reads them back). Python's chunks are ordinary tasks: see
 * docs/architecture.md, "The path of a map". */
static int run_chunk(crew_task_fn fn, void *ud, const uint8_t *in, size_t inlen, crew_out *out,
                     pid_t me)
{
    uint8_t *res = NULL;
    size_t rlen = 0, rcap = 0;
    crew_out item = {.local = true};
    int rc = 0;
    for (size_t pos = 0; pos + 8 <= inlen;) {
        uint64_t len;
        memcpy(&len, in + pos, 8);
        pos += 8;
        if (len > inlen - pos) {
            rc = crew_out_error(out, "corrupt map chunk");
            goto done;
        }
        item.len = 0;
        int st = fn(in + pos, len, &item, ud);
        if (getpid() != me) /* a copy the item forked: no more items here */
            forked_copy_leaves(NULL, NULL);
        pos += len;
        size_t need = rlen + 16 + item.len;
        if (need > rcap) {
            rcap = need * 2;
            uint8_t *nr = realloc(res, rcap);
            if (!nr) {
                rc = crew_out_error(out, "out of memory in a map chunk");
                goto done;
            }
            res = nr;
        }
        int32_t st32 = st;
        uint32_t pad = 0;
        uint64_t l64 = item.len;
        memcpy(res + rlen, &st32, 4);
        memcpy(res + rlen + 4, &pad, 4);
        memcpy(res + rlen + 8, &l64, 8);
        if (item.len)
            memcpy(res + rlen + 16, item.buf, item.len);
        rlen = need;
    }
    rc = crew_out_set(out, res, rlen);
done:
    free(res);
    free(item.buf);
    return rc;
}

/* This process's resident set in bytes (0 when unknown). No stdio: no
 * malloc in a worker between tasks (base/procfs.h). */
static uint64_t resident_bytes(void)
{
    char buf[128];
    unsigned long long size = 0, rss = 0;
    if (crew__read_small("/proc/self/statm", buf, sizeof buf) <= 0 ||
        sscanf(buf, "%llu %llu", &size, &rss) != 2)
        return 0;
    return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The slot's words in shared memory say what the protocol cannot (a task
 * or an extension wrote over them): the worker can no longer tell which
 * requests are its own, so it leaves; the parent sees a crashed worker,
 * fails its task and starts another. A thread worker shares the parent's
 * memory, which is corrupt: it aborts, as the parent does then. */
static void slot_overwritten(bool thread, uint64_t claimed, uint64_t head, uint64_t tail)
{
    char msg[200]; /* written whole with write(2): a fork child may not use stdio's locks */
    int n = snprintf(msg, sizeof msg, "crew: worker %d: its slot in shared memory was "
                     "overwritten (claimed %llu, ring at %llu..%llu); it leaves\n", (int)getpid(),
                     (unsigned long long)claimed, (unsigned long long)head,
                     (unsigned long long)tail);
    ssize_t w = write(2, msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    (void)w;
    if (thread)
        abort();
    _exit(3);
}

/* Pops the next request and claims it: true when this worker may run it,
 * false when the parent took it back (it runs elsewhere: skip it). */
static bool pop_claimed(crew__slot *sl, crew__ring *req, crew__msg *m, bool *popped,
                        bool thread)
{
    uint64_t j = atomic_load_explicit(&req->head, memory_order_relaxed); /* ours */
    /* the parent only ever moves claimed forward, to at most its tail: read
     * it before the tail, and any other value is a scribble */
    uint64_t c = atomic_load(&sl->claimed), t = atomic_load(&req->tail);
    if (c < j || c > t)
        slot_overwritten(thread, c, j, t);
    *popped = crew__ring_pop(req, m);
    if (!*popped)
        return false;
    c = j;
    return atomic_compare_exchange_strong(&sl->claimed, &c, j + 1);
}

static _Atomic(void (*)(void)) idle_fn; /* crew_worker_hooks.idle */

void crew__worker_set_idle(void (*fn)(void))
{
    atomic_store(&idle_fn, fn);
}

static void call_idle(void)
{
    void (*fn)(void) = atomic_load_explicit(&idle_fn, memory_order_relaxed);
    if (fn)
        fn();
}

/* Whether this worker may spin for work: fewer than crew__spinners_max()
 * of the pool's workers spin now. Its own flag goes up first, so that two
 * workers asking at once never both win the last place (both may lose it:
 * they sleep). The flags are written by workers and read by workers only:
 * a task that scribbles on them changes who spins, nothing the parent
 * relies on; a worker killed as it spins has its flag cleared with its slot. */
static bool spin_begin(const crew__region *R, crew__slot *me)
{
    atomic_store(&me->worker_spinning, 1);
    uint32_t n = 0, max = crew__spinners_max();
    for (uint32_t k = 0; k < R->nslots && n <= max; k++)
        n += atomic_load(&R->shm->slots[k].worker_spinning) != 0;
    if (n <= max)
        return true;
    atomic_store_explicit(&me->worker_spinning, 0, memory_order_relaxed);
    return false;
}

static void spin_end(crew__slot *me, bool *spinning)
{
    if (*spinning)
        atomic_store_explicit(&me->worker_spinning, 0, memory_order_relaxed);
    *spinning = false;
}

/* Waits for the next request it may run, spinning first while a core is
 * free for it (spin_begin), then sleeping on req_bell; requests the parent
 * took back are dropped unread. */
static void next_request(const crew__region *R, crew__slot *sl, crew__ring *req, crew__msg *m)
{
    bool shared = R->shared_futex, spinning = false;
    uint64_t spin = crew__spin_ns(), t0 = 0;
    for (unsigned i = 0;; i++) {
        bool popped;
        if (pop_claimed(sl, req, m, &popped, !shared)) {
            spin_end(sl, &spinning);
            return;
        }
        if (popped) /* taken back by the parent: look again at once */
            continue;
        if (!t0)
            call_idle(); /* nothing waiting: what a task kept, it lets go of */
        if (spin && !t0 && !spinning)
            spinning = spin_begin(R, sl); /* false: no core free to spin on */
        if (spinning) {
            if ((i & 63) == 0) {
                uint64_t now = crew__now_ns();
                if (!t0)
                    t0 = now;
                if (now - t0 < spin)
                    continue;
            } else {
                crew__cpu_relax();
                continue;
            }
        }
        spin_end(sl, &spinning);
        atomic_store(&sl->worker_sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        uint32_t bell = atomic_load(&sl->req_bell);
        if (crew__ring_count(req) == 0)
            crew__futex_wait(&sl->req_bell, bell, UINT64_MAX, shared);
        atomic_store(&sl->worker_sleeping, 0);
        t0 = 0;
    }
}

/* Publishes a response and wakes the parent if it sleeps. */
static void respond(const crew__region *R, crew__ring *resp, const crew__msg *r)
{
    crew__shm *shm = R->shm;
    while (!crew__ring_push(resp, r)) /* cannot happen: depth < ring size */
        crew__cpu_relax();
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&shm->parent_sleeping)) {
        atomic_fetch_add(&shm->doorbell, 1);
        crew__futex_wake(&shm->doorbell, 1, R->shared_futex);
    }
}

void crew__worker_loop(const crew__region *R, uint32_t i)
{
    crew__shm *shm = R->shm;
    crew__slot *sl = &shm->slots[i];
    crew__ring *req = crew__region_req(R, i), *resp = crew__region_resp(R, i);
    char *init_err = NULL; /* set when the initializer failed: tasks then fail with it */
    const pid_t me = getpid(); /* a process the task forks is not the worker */
    if (R->shared_futex) /* a fresh process: none of the arena is mapped in yet */
        for (int k = 0; k < 64; k++)
            atomic_store_explicit(&worker_pf.done[k], 0, memory_order_relaxed);
    /* up: the parent gives tasks only to workers that said so, so that a
     * worker still starting (a spawned interpreter, a busy core) holds back
     * no task that a worker already up could run */
    crew__msg hello;
    memset(&hello, 0, sizeof hello);
    hello.flags = CREW__MSG_HELLO;
    respond(R, resp, &hello);
    for (;;) {
        crew__msg m;
        next_request(R, sl, req, &m);
        crew__msg r;
        memset(&r, 0, offsetof(crew__msg, data));
        r.tag = m.tag;
        r.flags = m.flags & (CREW__MSG_INIT | CREW__MSG_QUIT);
        if (m.flags & CREW__MSG_QUIT) {
            call_idle();
            respond(R, resp, &r);
            free(init_err);
            return;
        }
        uint64_t t0 = crew__now_ns();
        atomic_store_explicit(&sl->cur_start_ns, t0, memory_order_relaxed);
        atomic_store_explicit(&sl->cur_tag, m.tag, memory_order_release);
        crew_out out = {.reg = R, .resp = &r, .req = &m};
        crew_task_fn fn;
        void *ud;
        if ((m.flags & CREW__MSG_ARENA) && !crew__arena_holds(&R->arena, m.off, m.len))
            m.flags &= ~(uint32_t)CREW__MSG_ARENA, m.len = 0; /* never from crew's parent */
        if ((m.flags & CREW__MSG_ARENA) && R->shared_futex)
            crew__arena_prefault(R, &worker_pf, (int64_t)m.off, m.len);
        if (!(m.flags & CREW__MSG_ARENA) && m.len > CREW__INLINE)
            m.len = CREW__INLINE;
        const void *arg = crew__msg_payload(R, &m);
        if (init_err)
            r.status = crew_out_error(&out, "the worker initializer failed: %s", init_err),
            r.status = CREW_EINIT;
        else if (!crew__registry_find(m.fn_hash, &fn, &ud))
            r.status = crew_out_error(&out, "no task with this name is registered in worker %d "
                                      "(register it before crew_main())", (int)getpid());
        else if (m.flags & CREW__MSG_CHUNK)
            r.status = run_chunk(fn, ud, arg, m.len, &out, me);
        else
            r.status = fn(arg, m.len, &out, ud);
        if (getpid() != me)
            forked_copy_leaves(R, &r);
        if (r.status == CREW_ETASK && r.len == 0)
            (void)crew_out_set(&out, "task failed", 12);
        uint64_t t1 = crew__now_ns();
        r.fn_hash = t1 - t0; /* run time travels back in the unused field */
        atomic_store_explicit(&sl->cur_tag, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&sl->tasks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&sl->busy_ns, t1 - t0, memory_order_relaxed);
        if ((m.flags & CREW__MSG_INIT) && r.status) {
            const char *msg = r.len ? (const char *)crew__msg_payload(R, &r) : "";
            init_err = strndup(msg, r.len);
            if (!init_err)
                init_err = strdup("(no message)");
        }
        respond(R, resp, &r);
        /* recycling by memory: leave between tasks; the parent requeues
         * whatever was still waiting in our ring and starts a successor */
        if (shm->max_rss && resident_bytes() > shm->max_rss) {
            call_idle();
            free(init_err);
            return;
        }
    }
}
