/* map.c — crew_map and the one chunk plan of every crew map (C and Python): items per chunk, inputs packed into chunk messages, results unpacked in input order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "pool/pool.h"


typedef struct item {
    int status;
    const void *data;
    size_t len;
} item;

struct crew_batch {
    size_t n, nchunks;
    crew_future **chunks;
    item *items;
};

/* Packs items [from, to) as [u64 len][bytes]... into a fresh buffer. */
static void *pack(const void *const *args, const size_t *lens, size_t from, size_t to, size_t *outlen)
{
    size_t total = 0;
    for (size_t i = from; i < to; i++)
        total += 8 + lens[i];
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return NULL;
    size_t pos = 0;
    for (size_t i = from; i < to; i++) {
        uint64_t l = lens[i];
        memcpy(buf + pos, &l, 8);
        if (l)
            memcpy(buf + pos + 8, args[i], l);
        pos += 8 + l;
    }
    *outlen = total;
    return buf;
}

/* Reads chunk c's answer into items [from, to). */
static void unpack(crew_batch *b, crew_future *f, size_t from, size_t to)
{
    const void *data;
    size_t len;
    int st = crew_future_result(f, &data, &len);
    const uint8_t *d = data;
    size_t pos = 0;
    for (size_t i = from; i < to; i++) {
        item *it = &b->items[i];
        if (st != 0) { /* the whole chunk failed: crash, timeout, ... */
            it->status = st;
            it->data = crew_future_error(f);
            it->len = strlen(it->data) + 1;
            continue;
        }
        int32_t s32;
        uint64_t l;
        if (pos + 16 > len) {
            it->status = CREW_ETASK;
            it->data = "missing result in map chunk";
            it->len = strlen(it->data) + 1;
            continue;
        }
        memcpy(&s32, d + pos, 4);
        memcpy(&l, d + pos + 8, 8);
        if (l > len - pos - 16) { /* the worker's bytes: never read past them */
            it->status = CREW_ECRASHED;
            it->data = "corrupt map chunk: an item's length runs past the chunk's answer";
            it->len = strlen(it->data) + 1;
            pos = len;
            continue;
        }
        it->status = s32;
        it->data = d + pos + 16;
        it->len = l;
        pos += 16 + l;
    }
}

size_t crew_map_chunksize(size_t n, int workers, size_t chunk)
{
    if (chunk)
        return chunk;
    size_t parts = (size_t)(workers > 0 ? workers : 1) * 4;
    return n ? (n - 1) / parts + 1 : 1; /* n / parts rounded up, without overflow */
}

int crew_map(crew_pool *p, const char *name, size_t n, const void *const *args,
             const size_t *lens, size_t chunk, crew_batch **out)
{
    if (!p || !name || !out || (n && (!args || !lens)))
        return -EINVAL;
    uint64_t h;
    int rc = crew__task_hash(name, &h);
    if (rc < 0)
        return rc;
    chunk = crew_map_chunksize(n, crew_pool_workers(p), chunk);
    crew_batch *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->n = n;
    b->nchunks = (n + chunk - 1) / chunk;
    b->chunks = calloc(b->nchunks ? b->nchunks : 1, sizeof *b->chunks);
    b->items = calloc(n ? n : 1, sizeof *b->items);
    rc = 0;
    if (!b->chunks || !b->items) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t c = 0; c < b->nchunks; c++) {
        size_t from = c * chunk, to = from + chunk < n ? from + chunk : n, len = 0;
        void *buf = pack(args, lens, from, to, &len);
        if (!buf) {
            rc = -ENOMEM;
            goto fail;
        }
        struct iovec iov = {.iov_base = buf, .iov_len = len};
        rc = crew__submit_iov(p, h, CREW__MSG_CHUNK, &iov, 1, NULL, &b->chunks[c]);
        free(buf);
        if (rc < 0)
            goto fail;
    }
    for (size_t c = 0; c < b->nchunks; c++) {
        size_t from = c * chunk, to = from + chunk < n ? from + chunk : n;
        unpack(b, b->chunks[c], from, to);
    }
    *out = b;
    return 0;
fail:
    crew_batch_release(b);
    return rc;
}

int crew_batch_get(const crew_batch *b, size_t i, const void **data, size_t *len)
{
    if (!b || i >= b->n)
        return -EINVAL;
    if (data)
        *data = b->items[i].data;
    if (len)
        *len = b->items[i].len;
    return b->items[i].status;
}

size_t crew_batch_size(const crew_batch *b)
{
    return b ? b->n : 0;
}

void crew_batch_release(crew_batch *b)
{
    if (!b)
        return;
    for (size_t c = 0; c < b->nchunks; c++)
        if (b->chunks && b->chunks[c]) {
            crew_future_wait(b->chunks[c], -1);
            crew_future_release(b->chunks[c]);
        }
    free(b->chunks);
    free(b->items);
    free(b);
}
