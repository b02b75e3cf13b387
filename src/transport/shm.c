/* shm.c — creating and mapping a pool's memfd-backed shared region. */

#include "transport/shm.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crew.h"
#include "base/memfd.h"

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

int crew__shm_create(uint32_t nslots, size_t arena_bytes, int shared_futex,
                     crew__shm **shm_out, int *fd_out)
{
    uint64_t chunks = round_up(arena_bytes / CREW__CHUNK, 64);
    if (chunks == 0)
        chunks = 64;
    size_t hdr = round_up(sizeof(crew__shm) + nslots * sizeof(crew__slot), 4096);
    size_t ring = round_up(crew__ring_bytes(CREW__RING_CAP), 64);
    size_t rings = round_up(2 * nslots * ring, 4096);
    size_t ctl = round_up(crew__arena_ctl_bytes(chunks), 4096);
    size_t size = hdr + rings + ctl + chunks * CREW__CHUNK;

    int fd;
    void *p;
    int rc = crew__memfd_map("crew-pool", size, &fd, &p);
    if (rc < 0)
        return rc;
    crew__shm *s = p;
    s->magic = CREW__MAGIC;
    s->nslots = nslots;
    s->size = size;
    s->shared_futex = (uint32_t)shared_futex;
    s->arena_off = hdr + rings;
    for (uint32_t i = 0; i < nslots; i++) {
        crew__slot *sl = &s->slots[i];
        sl->req_off = (uint32_t)(hdr + (2 * i) * ring);
        sl->resp_off = (uint32_t)(hdr + (2 * i + 1) * ring);
        crew__ring_init(crew__slot_req(s, sl), CREW__RING_CAP);
        crew__ring_init(crew__slot_resp(s, sl), CREW__RING_CAP);
    }
    /* arena offsets count from the control block; data starts after it */
    crew__arena_init(crew__shm_arena(s), chunks, ctl);
    *shm_out = s;
    *fd_out = fd;
    return 0;
}

int crew__shm_map(int fd, crew__shm **shm_out)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                   fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    crew__shm *s = p;
    if (s->magic != CREW__MAGIC || s->size != (uint64_t)st.st_size) {
        munmap(p, (size_t)st.st_size);
        return -EINVAL;
    }
    *shm_out = s;
    return 0;
}

void crew__shm_unmap(crew__shm *shm)
{
    if (shm)
        munmap(shm, shm->size);
}

int crew__msg_put(crew__shm *s, crew__msg *m, const void *data, size_t len)
{
    m->len = len;
    if (len <= CREW__INLINE) {
        m->flags &= ~(uint32_t)CREW__MSG_ARENA;
        if (len)
            memcpy(m->data, data, len);
        return 0;
    }
    crew__arena *a = crew__shm_arena(s);
    int64_t off = crew__arena_alloc(a, len);
    if (off < 0)
        return CREW_ETOOBIG;
    memcpy(crew__arena_ptr(a, off), data, len);
    m->off = (uint64_t)off;
    m->flags |= CREW__MSG_ARENA;
    return 0;
}

void crew__msg_free(crew__shm *s, const crew__msg *m)
{
    if (m->flags & CREW__MSG_ARENA)
        crew__arena_free(crew__shm_arena(s), (int64_t)m->off, m->len);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define GRANULE (2u << 20)

void crew__arena_prefault(crew__shm *s, crew__prefault *pf, int64_t off, size_t len)
{
    if (len < CREW__PREFAULT_MIN)
        return;
    crew__arena *a = crew__shm_arena(s);
    uint64_t first = (uint64_t)off / GRANULE, last = ((uint64_t)off + len - 1) / GRANULE;
    uint64_t limit = (s->size - s->arena_off + GRANULE - 1) / GRANULE;
    for (uint64_t g = first; g <= last && g < 64 * 64 && g < limit; g++) {
        uint64_t bit = 1ull << (g % 64);
        if (atomic_fetch_or_explicit(&pf->done[g / 64], bit, memory_order_relaxed) & bit)
            continue; /* done, or being done by another thread of ours */
        char *base = (char *)a + g * GRANULE;
        size_t n = GRANULE;
        if ((uint64_t)(base - (char *)s) + n > s->size)
            n = s->size - (uint64_t)(base - (char *)s);
        /* the arena starts page-aligned: so does every granule */
        (void)madvise(base, n, MADV_POPULATE_WRITE);
    }
}
