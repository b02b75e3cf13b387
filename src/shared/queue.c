/* shared_queue.c — crew_queue: a bounded MPMC queue of byte messages across processes. */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "shared/msgq.h"

struct crew_queue {
    crew__sh sh;
};

static crew__mq *mq(const crew_queue *q)
{
    return crew__sh_body(&q->sh);
}

static crew__mq_side side(crew_queue *q)
{
    return (crew__mq_side){&q->sh, -1, crew__mq_cap(mq(q), &q->sh)};
}

int crew_queue_create(crew_queue **out, size_t max_items, size_t bytes)
{
    if (!out || bytes > ((size_t)1 << 40))
        return -EINVAL;
    if (bytes == 0)
        bytes = 1u << 20;
    bytes = (bytes + 7) & ~(size_t)7;
    if (bytes < 256)
        bytes = 256;
    crew_queue *q;
    int rc = CREW__SH_NEW(crew_queue, CREW_SHARED_QUEUE, crew__mq_bytes(bytes), &q);
    if (rc)
        return rc;
    if ((rc = crew__mq_init(mq(q), bytes, max_items)) != 0) {
        crew_queue_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int crew_queue_putv(crew_queue *q, const struct iovec *iov, int iovcnt, double timeout)
{
    if (!q || iovcnt < 0 || (iovcnt && !iov))
        return -EINVAL;
    int rc = crew__mq_put(mq(q), side(q), 1, &iov, &iovcnt, crew__deadline(timeout));
    return rc > 0 ? 0 : rc;
}

int crew_queue_put(crew_queue *q, const void *data, size_t len, double timeout)
{
    if (len && !data)
        return -EINVAL;
    struct iovec iov = {(void *)data, len};
    return crew_queue_putv(q, &iov, 1, timeout);
}

int crew_queue_put_many(crew_queue *q, size_t n, const void *const *data, const size_t *lens,
                        double timeout)
{
    if (!q || (n && (!data || !lens)))
        return -EINVAL;
    if (n == 0)
        return 0;
    if (n > 65536)
        n = 65536; /* one batch per call; the count returned says how many */
    struct iovec *iov = malloc(n * sizeof *iov);
    const struct iovec **iovs = malloc(n * sizeof *iovs);
    int *cnt = malloc(n * sizeof *cnt);
    int rc = -ENOMEM;
    if (iov && iovs && cnt) {
        for (size_t i = 0; i < n; i++) {
            iov[i] = (struct iovec){(void *)data[i], lens[i]};
            iovs[i] = &iov[i];
            cnt[i] = 1;
        }
        rc = crew__mq_put(mq(q), side(q), n, iovs, cnt, crew__deadline(timeout));
    }
    free(iov);
    free(iovs);
    free(cnt);
    return rc;
}

int crew_queue_get(crew_queue *q, void *buf, size_t cap, size_t *len, double timeout)
{
    if (!q || !len || (cap && !buf))
        return -EINVAL;
    int rc = crew__mq_get(mq(q), side(q), 1, buf, cap, len, NULL, crew__deadline(timeout));
    return rc > 0 ? 0 : rc;
}

int crew_queue_get_alloc(crew_queue *q, void **data, size_t *len, double timeout)
{
    if (!q || !data || !len)
        return -EINVAL;
    int rc = crew__mq_get(mq(q), side(q), 1, NULL, 0, len, data, crew__deadline(timeout));
    return rc > 0 ? 0 : rc;
}

int crew_queue_get_many(crew_queue *q, size_t max, void *buf, size_t cap, size_t *lens,
                        double timeout)
{
    if (!q || !lens || max == 0 || (cap && !buf))
        return -EINVAL;
    if (max > 65536)
        max = 65536;
    return crew__mq_get(mq(q), side(q), max, buf, cap, lens, NULL, crew__deadline(timeout));
}

size_t crew_queue_size(const crew_queue *q)
{
    return q ? crew__mq_items(mq(q), side((crew_queue *)q)) : 0;
}

int crew_queue_close(crew_queue *q)
{
    if (!q)
        return -EINVAL;
    crew__mq_close(mq(q), side(q));
    return 0;
}

CREW__SH_BOILERPLATE(queue, crew_queue, CREW_SHARED_QUEUE)
