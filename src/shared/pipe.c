/* pipe.c — crew_pipe: two connected ends, one message ring per direction, in one region. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "base/sync.h"
#include "shared/msgq.h"

typedef struct pipe_body {
    uint64_t ring_off[2];          /* ring i carries messages to end i */
} pipe_body;

struct crew_pipe {
    crew__sh sh;                   /* sh.tag: which end this is */
    uint64_t peer_checked_ns;      /* when send last saw the other end held */
    uint64_t peer_closes;          /* the region's close count then */
};

/* Whether the other end still has a holder (any process, this one
 * included). The holders table (a locked scan) is read again when a handle
 * was closed since the last look, else at most every 100 ms (a holder that
 * died closes nothing): a send to an end closed everywhere fails with
 * -EPIPE at once, to one whose last holder died within 100 ms. */
static bool peer_held(crew_pipe *p)
{
    uint64_t now = crew__now_ns(), closes = crew__sh_closes(&p->sh);
    if (p->peer_checked_ns && closes == p->peer_closes &&
        now - p->peer_checked_ns < 100000000ull)
        return true;
    if (crew__sh_live_peers(&p->sh, (int)(1 - p->sh.tag)) == 0)
        return false;
    p->peer_checked_ns = now;
    p->peer_closes = closes;
    return true;
}

/* Ring `end`, or NULL when its offset (in the region: any holder can write
 * it) points outside this process's mapping of the region. */
static crew__mq *ring_to(const crew_pipe *p, uint32_t end)
{
    pipe_body *b = crew__sh_body(&p->sh);
    uint64_t off = __atomic_load_n(&b->ring_off[end], __ATOMIC_RELAXED);
    if (off % 64 || off >= p->sh.size - CREW__SH_BODY)
        return NULL;
    return (crew__mq *)((char *)b + off);
}

/* cap 0 (a NULL ring, or one whose bytes are not a queue's): -EBADMSG */
static crew__mq_side side(crew_pipe *p, const crew__mq *q)
{
    return (crew__mq_side){&p->sh, (int)(1 - p->sh.tag), q ? crew__mq_cap(q, &p->sh) : 0};
}

int crew_pipe_create(crew_pipe **end0, crew_pipe **end1, size_t bytes)
{
    if (!end0 || !end1 || bytes > ((size_t)1 << 40))
        return -EINVAL;
    if (bytes == 0)
        bytes = 1u << 20;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes < 256)
        bytes = 256;
    size_t ring = (crew__mq_bytes(bytes) + 63) & ~(size_t)63;
    crew_pipe *a, *b = NULL;
    int rc = CREW__SH_NEW(crew_pipe, CREW_SHARED_PIPE, 64 + 2 * ring, &a);
    if (rc)
        return rc;
    pipe_body *pb = crew__sh_body(&a->sh);
    pb->ring_off[0] = 64;
    pb->ring_off[1] = 64 + ring;
    if ((rc = crew__mq_init(ring_to(a, 0), bytes, 0)) == 0 &&
        (rc = crew__mq_init(ring_to(a, 1), bytes, 0)) == 0) {
        rc = -ENOMEM;
        b = calloc(1, sizeof *b);
        if (b && (rc = crew__sh_dup(&b->sh, &a->sh, 1)) != 0) {
            free(b);
            b = NULL;
        }
    }
    if (rc) {
        crew_pipe_free(a);
        return rc;
    }
    *end0 = a;
    *end1 = b;
    return 0;
}

int crew_pipe_send(crew_pipe *p, const void *data, size_t len, double timeout)
{
    if (!p || (len && !data))
        return -EINVAL;
    struct iovec iov = {(void *)data, len};
    const struct iovec *iovs = &iov;
    int one = 1;
    if (!peer_held(p))
        return -EPIPE; /* nobody could ever read it */
    crew__mq *q = ring_to(p, 1 - p->sh.tag);
    int rc = crew__mq_put(q, side(p, q), 1, &iovs, &one, crew__deadline(timeout));
    return rc > 0 ? 0 : rc == CREW_ECLOSED ? -EPIPE : rc;
}

int crew_pipe_recv(crew_pipe *p, void *buf, size_t cap, size_t *len, double timeout)
{
    if (!p || !len || (cap && !buf))
        return -EINVAL;
    crew__mq *q = ring_to(p, p->sh.tag);
    int rc = crew__mq_get(q, side(p, q), 1, buf, cap, len, NULL, crew__deadline(timeout));
    return rc > 0 ? 0 : rc;
}

int crew_pipe_recv_alloc(crew_pipe *p, void **data, size_t *len, double timeout)
{
    if (!p || !data || !len)
        return -EINVAL;
    crew__mq *q = ring_to(p, p->sh.tag);
    int rc = crew__mq_get(q, side(p, q), 1, NULL, 0, len, data, crew__deadline(timeout));
    return rc > 0 ? 0 : rc;
}

int crew_pipe_poll(crew_pipe *p, double timeout)
{
    if (!p)
        return -EINVAL;
    crew__mq *q = ring_to(p, p->sh.tag);
    return crew__mq_poll(q, side(p, q), crew__deadline(timeout));
}

CREW__SH_BOILERPLATE(pipe, crew_pipe, CREW_SHARED_PIPE)
