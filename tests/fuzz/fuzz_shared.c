/* fuzz_shared.c — libFuzzer target: a shared dict's or queue's region overwritten with forged bytes, then read and written through crew's API. */
/*
 * Any process holding a crew_dict or crew_queue maps its region writable,
 * so everything in it (slot tables, entries, heaps, counters, head, tail,
 * record lengths, and the layout fields themselves) is untrusted input for
 * every other holder. Input: [u8 which] then patches [u16 at][u8 n][n bytes]
 * written into the object's body (all of it but the robust mutex at its
 * start). Then readers and writers run (no waits: timeouts 0) through this
 * process's handle and through a handle opened again from a ref (which
 * checks the layout it finds); each must return, with any error, inside the
 * region, never hang, and hand back no value larger than the object allows.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crew.h"
#include "shared/region.h"

struct crew_dict {
    crew__sh sh; /* the first member of every handle (region.h) */
};
struct crew_queue {
    crew__sh sh;
};

#define SKIP sizeof(pthread_mutex_t) /* the robust mutex first in both bodies */

static crew_dict *g_dict;
static crew_queue *g_queue;
static unsigned char *g_dict_snap, *g_queue_snap;
static size_t g_dict_body, g_queue_body;

static void *body_of(const crew__sh *sh)
{
    return (char *)sh->hdr + CREW__SH_BODY;
}

static void setup(void)
{
    if (crew_dict_create(&g_dict, 16, 4096) || crew_queue_create(&g_queue, 0, 256))
        abort();
    const char *keys[] = {"a", "bb", "key-3", "a longer key, 4"};
    for (int k = 0; k < 4; k++)
        if (crew_dict_set(g_dict, keys[k], strlen(keys[k]), "value", (size_t)k + 2))
            abort();
    for (int k = 0; k < 3; k++)
        if (crew_queue_put(g_queue, "message", (size_t)k * 3, 0))
            abort();
    g_dict_body = g_dict->sh.size - CREW__SH_BODY;
    g_queue_body = g_queue->sh.size - CREW__SH_BODY;
    g_dict_snap = malloc(g_dict_body);
    g_queue_snap = malloc(g_queue_body);
    if (!g_dict_snap || !g_queue_snap)
        abort();
    memcpy(g_dict_snap, body_of(&g_dict->sh), g_dict_body);
    memcpy(g_queue_snap, body_of(&g_queue->sh), g_queue_body);
}

static void patch(unsigned char *body, size_t n, const uint8_t *data, size_t size)
{
    while (size >= 3) {
        uint16_t at;
        memcpy(&at, data, 2);
        size_t len = data[2];
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        size_t off = SKIP + at % (n - SKIP);
        if (len > n - off)
            len = n - off;
        memcpy(body + off, data, len);
        data += len;
        size -= len;
    }
}

static void use_dict(crew_dict *d)
{
    const char *keys[] = {"a", "bb", "key-3", "a longer key, 4", "new"};
    char buf[64];
    size_t vlen;
    for (int k = 0; k < 5; k++) {
        size_t kl = strlen(keys[k]);
        int rc = crew_dict_get(d, keys[k], kl, buf, sizeof buf, &vlen);
        if (rc == 0 && vlen > sizeof buf)
            abort();
        void *v = NULL;
        if (crew_dict_get_alloc(d, keys[k], kl, &v, &vlen) == 0)
            free(v);
        (void)crew_dict_contains(d, keys[k], kl);
    }
    char kb[64], vb[64];
    size_t kl;
    uint64_t cursor = 0;
    for (int k = 0; k < 100; k++) { /* a walk ends (or errs) */
        int rc = crew_dict_next(d, &cursor, kb, sizeof kb, &kl, vb, sizeof vb, &vlen);
        if (rc != 0 && rc != -EMSGSIZE)
            break;
        if (rc == -EMSGSIZE)
            cursor++;
    }
    (void)crew_dict_len(d);
    (void)crew_dict_set(d, "new", 3, "fresh value", 11);
    (void)crew_dict_set(d, "a", 1, "", 0);
    (void)crew_dict_delete(d, "bb", 2);
    (void)crew_dict_get(d, "new", 3, buf, sizeof buf, &vlen);
}

static void use_queue(crew_queue *q)
{
    char buf[256];
    size_t len, lens[8];
    int rc = crew_queue_get(q, buf, sizeof buf, &len, 0);
    if (rc == 0 && len > sizeof buf)
        abort();
    void *v = NULL;
    if (crew_queue_get_alloc(q, &v, &len, 0) == 0) {
        if (len > 256)
            abort(); /* larger than the queue itself */
        free(v);
    }
    (void)crew_queue_get_many(q, 8, buf, sizeof buf, lens, 0);
    (void)crew_queue_size(q);
    (void)crew_queue_put(q, "put after", 9, 0);
    (void)crew_queue_get(q, buf, sizeof buf, &len, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dict)
        setup();
    if (size < 1)
        return 0;
    bool dict = !(data[0] & 1);
    crew__sh *sh = dict ? &g_dict->sh : &g_queue->sh;
    size_t n = dict ? g_dict_body : g_queue_body;
    unsigned char *body = body_of(sh);
    memcpy(body, dict ? g_dict_snap : g_queue_snap, n); /* a fresh object */
    patch(body, n, data + 1, size - 1);

    crew_shared_ref ref;
    if (dict) {
        use_dict(g_dict);
        crew_dict *again;
        if (crew_dict_ref(g_dict, &ref) == 0 && crew_dict_open(&again, &ref) == 0) {
            use_dict(again);
            crew_dict_free(again);
        }
    } else {
        use_queue(g_queue);
        crew_queue *again;
        if (crew_queue_ref(g_queue, &ref) == 0 && crew_queue_open(&again, &ref) == 0) {
            use_queue(again);
            crew_queue_free(again);
        }
    }
    return 0;
}
