/* fuzz_answer.c — libFuzzer target: a worker's response ring as forged bytes, read by the parent's own drain (crew__drain_slot_locked). */
/*
 * Input: [u64 head][u64 tail][u32 cap][u32 mask][u64 x 4: words written
 * over the region's header and the arena's control block] then up to 8
 * messages of 128 bytes, written at ring indices head, head+1, ... `head`
 * is the parent's own index (it never reads the ring's), `tail` the
 * worker's. A message tag of 1..3
 * names the harness's tasks in flight (the fuzzer cannot know addresses):
 * the worker has tasks 1, 2 and 3 in its ring, in that order. The parent's
 * pool is real in every part it reads here (its shared region, arena and
 * copies of the arena's bounds); the worker is a bytes-writer: pidfd -1, so
 * "killing" it for a bad answer is a no-op. What the parent then does with
 * an accepted answer (read the payload, free it in the arena) runs too.
 * Every path must stay inside the region, and ASan must see nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

#define NFUT 3
#define MAXMSG 8

static crew_pool *g_pool;
static crew_future g_fut[NFUT];

static void setup(void)
{
    crew_pool *p = calloc(1, sizeof *p);
    int fd;
    if (!p || crew__region_create(1, 1u << 20, 0, &p->reg, &fd) < 0)
        abort();
    p->shm_fd = fd;
    p->kind = CREW_PROCESSES;
    p->nworkers = 1;
    p->depth = 1;
    p->w = calloc(1, sizeof *p->w);
    if (!p->w)
        abort();
    g_pool = p;
}

/* Reads every byte of an accepted payload (what a caller of the future
 * does), so a bound the checks let through shows up as a fault. */
static unsigned touch(const void *data, uint64_t len)
{
    const volatile unsigned char *b = data;
    unsigned sum = 0;
    for (uint64_t i = 0; i < len; i += 512)
        sum += b[i];
    return len ? sum + b[len - 1] : sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_pool)
        setup();
    crew_pool *p = g_pool;
    crew__shm *shm = p->reg.shm;
    crew__ring *resp = crew__region_resp(&p->reg, 0);
    const crew__arena *a = &p->reg.arena;
    crew__arena_init(&p->reg.arena, a->ctl, a->nwords * 64, a->data_off);
    shm->magic = CREW__MAGIC;
    memset(resp, 0, crew__ring_bytes(CREW__RING_CAP));
    crew__ring_init(resp, CREW__RING_CAP);

    /* the worker: live, tasks 1..3 sent to it, task 1 with an arena argument */
    crew__wslot *ws = &p->w[0];
    memset(ws, 0, sizeof *ws);
    ws->state = CREW__SLOT_LIVE;
    ws->pidfd = -1;
    ws->ready = true;
    static unsigned char arg[300];
    for (int k = 0; k < NFUT; k++) {
        crew_future *f = &g_fut[k];
        memset(f, 0, sizeof *f);
        f->pool = p;
        atomic_init(&f->refs, 1000);
        atomic_init(&f->state, CREW__F_SENT);
        f->req.tag = (uint64_t)(uintptr_t)f;
        if (k == 0 && crew__msg_put(a, &f->req, arg, sizeof arg) != 0)
            abort();
        crew__fifo_push(&ws->inflight, f);
    }
    atomic_store(&p->inflight, NFUT);

    /* the forged ring */
    if (size < 24)
        return 0;
    uint64_t head, tail;
    uint32_t cap, mask;
    memcpy(&head, data, 8);
    memcpy(&tail, data + 8, 8);
    memcpy(&cap, data + 16, 4);
    memcpy(&mask, data + 20, 4);
    data += 24;
    size -= 24;
    atomic_store(&ws->resp_head, head);
    atomic_store(&resp->head, head ^ tail); /* the ring's copy: never read */
    atomic_store(&resp->tail, tail);
    if (size >= 32) { /* a task scribbling on the structure */
        uint64_t w[4];
        memcpy(w, data, sizeof w);
        data += 32;
        size -= 32;
        shm->nslots = (uint32_t)w[0];
        shm->size = w[1];
        shm->arena_off = w[2];
        shm->shared_futex = (uint32_t)(w[0] >> 32);
        a->ctl->nwords = w[3];
        a->ctl->data_off = w[3] >> 3;
        atomic_store(&a->ctl->low, w[1] ^ w[2]);
    }
    resp->cap = cap;
    resp->mask = mask;
    for (uint64_t k = 0; k < MAXMSG && size >= sizeof(crew__msg); k++) {
        crew__msg m;
        memcpy(&m, data, sizeof m);
        data += sizeof m;
        size -= sizeof m;
        if (m.tag >= 1 && m.tag <= NFUT)
            m.tag = (uint64_t)(uintptr_t)&g_fut[m.tag - 1];
        memcpy(&resp->msgs[(head + k) % CREW__RING_CAP], &m, sizeof m);
    }

    /* the parent reads it */
    crew__fifo done = {0};
    crew__drain_slot_locked(p, 0, &done);
    crew_future *f;
    while ((f = crew__fifo_pop(&done))) {
        const char *err = crew_future_error(f); /* a failed task's text */
        touch(err, strlen(err) + 1);
        if (f->res_arena) {
            touch(crew__arena_ptr(a, (int64_t)f->res_off), f->res_len);
            crew__arena_free(a, (int64_t)f->res_off, f->res_len);
        } else {
            touch(f->res_inline, f->res_len + 1);
        }
    }
    for (int k = 0; k < NFUT; k++) /* the ones never answered */
        crew__msg_free(a, &g_fut[k].req), g_fut[k].req.flags = 0;
    return 0;
}
