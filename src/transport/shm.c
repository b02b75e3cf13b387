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

/* The layout of a region of nslots slots and an arena of chunks chunks:
 * fills R's offsets and returns the region's size in bytes. The one place
 * that decides where everything lies, for its creator and its workers. */
static uint64_t layout(uint32_t nslots, uint64_t chunks, crew__region *R)
{
    size_t hdr = round_up(sizeof(crew__shm) + nslots * sizeof(crew__slot), 4096);
    size_t ring = round_up(crew__ring_bytes(CREW__RING_CAP), 64);
    size_t rings = round_up(2 * (size_t)nslots * ring, 4096);
    size_t ctl = round_up(crew__arena_ctl_bytes(chunks), 4096);
    R->nslots = nslots;
    R->rings_off = hdr;
    R->ring_stride = ring;
    R->arena.nwords = chunks / 64;
    R->arena.data_off = ctl; /* arena offsets count from the control block */
    return hdr + rings + ctl + chunks * CREW__CHUNK;
}

/* Where the arena's control block lies in a region laid out in R. */
static uint64_t arena_off(const crew__region *R)
{
    return R->rings_off + round_up(2 * (size_t)R->nslots * R->ring_stride, 4096);
}

int crew__region_create(uint32_t nslots, size_t arena_bytes, int shared_futex, crew__region *R,
                        int *fd_out)
{
    if (nslots == 0 || nslots > CREW__MAX_WORKERS)
        return -EINVAL;
    uint64_t chunks = round_up(arena_bytes / CREW__CHUNK, 64);
    if (chunks == 0)
        chunks = 64;
    crew__region L;
    memset(&L, 0, sizeof L);
    uint64_t size = layout(nslots, chunks, &L);

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
    s->arena_off = arena_off(&L);
    L.shm = s;
    L.size = size;
    L.shared_futex = shared_futex;
    for (uint32_t i = 0; i < nslots; i++) {
        crew__ring_init(crew__region_req(&L, i), CREW__RING_CAP);
        crew__ring_init(crew__region_resp(&L, i), CREW__RING_CAP);
    }
    crew__arena_init(&L.arena, (crew__arena_ctl *)((char *)s + s->arena_off), chunks,
                     L.arena.data_off);
    *R = L;
    *fd_out = fd;
    return 0;
}

int crew__region_map(int fd, crew__region *R)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < 4096)
        return -EINVAL;
    size_t size = (size_t)st.st_size;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    crew__shm *s = p;
    crew__region L;
    memset(&L, 0, sizeof L);
    /* read once, each field a private copy; then the whole layout must be
     * the one its creator computed for these counts, filling the memfd */
    uint32_t magic = s->magic, nslots = s->nslots;
    uint64_t hsize = s->size, aoff = s->arena_off;
    int ok = magic == CREW__MAGIC && nslots > 0 && nslots <= CREW__MAX_WORKERS && hsize == size;
    if (ok) {
        layout(nslots, 0, &L);
        ok = aoff == arena_off(&L) && aoff + sizeof(crew__arena_ctl) <= size;
    }
    if (ok) {
        uint64_t nwords = ((crew__arena_ctl *)((char *)s + aoff))->nwords;
        ok = nwords > 0 && nwords <= (size / CREW__CHUNK) / 64 &&
             layout(nslots, nwords * 64, &L) == size;
    }
    if (!ok) {
        munmap(p, size);
        return -EINVAL;
    }
    L.shm = s;
    L.size = size;
    L.shared_futex = 1; /* only process workers map a region: never read from it */
    L.arena.ctl = (crew__arena_ctl *)((char *)s + aoff);
    *R = L;
    return 0;
}

void crew__region_unmap(crew__region *R)
{
    if (R->shm)
        munmap(R->shm, R->size);
    R->shm = NULL;
}

int crew__msg_put(const crew__arena *a, crew__msg *m, const void *data, size_t len)
{
    m->len = len;
    if (len <= CREW__INLINE) {
        m->flags &= ~(uint32_t)CREW__MSG_ARENA;
        if (len)
            memcpy(m->data, data, len);
        return 0;
    }
    int64_t off = crew__arena_alloc(a, len);
    if (off < 0)
        return CREW_ETOOBIG;
    memcpy(crew__arena_ptr(a, off), data, len);
    m->off = (uint64_t)off;
    m->flags |= CREW__MSG_ARENA;
    return 0;
}

void crew__msg_free(const crew__arena *a, const crew__msg *m)
{
    if (m->flags & CREW__MSG_ARENA)
        crew__arena_free(a, (int64_t)m->off, m->len);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define GRANULE (2u << 20)

void crew__arena_prefault(const crew__region *R, crew__prefault *pf, int64_t off, size_t len)
{
    if (len < CREW__PREFAULT_MIN)
        return;
    crew__shm *s = R->shm;
    char *a = (char *)R->arena.ctl;
    uint64_t aoff = (uint64_t)(a - (char *)s);
    uint64_t first = (uint64_t)off / GRANULE, last = ((uint64_t)off + len - 1) / GRANULE;
    uint64_t limit = (R->size - aoff + GRANULE - 1) / GRANULE;
    for (uint64_t g = first; g <= last && g < 64 * 64 && g < limit; g++) {
        uint64_t bit = 1ull << (g % 64);
        if (atomic_fetch_or_explicit(&pf->done[g / 64], bit, memory_order_relaxed) & bit)
            continue; /* done, or being done by another thread of ours */
        char *base = a + g * GRANULE;
        size_t n = GRANULE;
        if ((uint64_t)(base - (char *)s) + n > R->size)
            n = R->size - (uint64_t)(base - (char *)s);
        /* the arena starts page-aligned: so does every granule */
        (void)madvise(base, n, MADV_POPULATE_WRITE);
    }
}
