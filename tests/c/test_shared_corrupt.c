/* test_shared_corrupt.c — shared objects whose region another holder overwrote: errors, never a crash, a spin or a wrong munmap (regressions of tests/fuzz/fuzz_shared.c). */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "shared/msgq.h"

/* The handles' first member (region.h): enough to reach a region's bytes. */
struct crew_dict {
    crew__sh sh;
};
struct crew_queue {
    crew__sh sh;
};

#define SKIP sizeof(pthread_mutex_t) /* the robust mutex first in each body */

static unsigned char *body_of(const crew__sh *sh)
{
    return (unsigned char *)sh->hdr + CREW__SH_BODY;
}

TEST(dict_with_its_header_and_tables_overwritten_errs_and_recovers_on_write)
{
    crew_dict *d;
    CHECK_OK(crew_dict_create(&d, 16, 4096)); /* 32 slots: tables of one page */
    CHECK_OK(crew_dict_set(d, "k", 1, "v", 1));
    unsigned char *b = body_of(&d->sh);
    /* layout, active table, gseq (odd: "a rebuild runs"), counters: garbage;
     * both tables: slots pointing nowhere */
    memset(b + SKIP, 0xff, 4096 - SKIP);
    memset(b + 4096, 0x5a, 2 * 4096);
    char v[16];
    size_t vl;
    CHECK_EQ_INT(crew_dict_get(d, "k", 1, v, sizeof v, &vl), -EBADMSG); /* no spin */
    uint64_t cursor = 0;
    char k[16];
    size_t kl;
    CHECK_EQ_INT(crew_dict_next(d, &cursor, k, sizeof k, &kl, v, sizeof v, &vl), -EBADMSG);
    /* a writer rebuilds from what can be entries (none): the dict works again */
    CHECK_OK(crew_dict_set(d, "k2", 2, "v2", 2));
    CHECK_OK(crew_dict_get(d, "k2", 2, v, sizeof v, &vl));
    CHECK(vl == 2 && !memcmp(v, "v2", 2));
    /* a handle opened now finds a layout that is not one: refused */
    crew_shared_ref ref;
    crew_dict *again = NULL;
    CHECK_OK(crew_dict_ref(d, &ref));
    CHECK_EQ_INT(crew_dict_open(&again, &ref), -EINVAL);
    crew_dict_free(d); /* unmaps its own mapping's size, whatever the header says */
}

TEST(queue_with_forged_records_and_indices_errs)
{
    crew_queue *q;
    CHECK_OK(crew_queue_create(&q, 0, 256));
    CHECK_OK(crew_queue_put(q, "hello", 5, 0));
    crew__mq *m = (crew__mq *)body_of(&q->sh);
    uint64_t huge = (uint64_t)1 << 40;
    memcpy(m->data, &huge, 8); /* the first record's length */
    char buf[64];
    size_t len;
    void *p = NULL;
    CHECK_EQ_INT(crew_queue_get(q, buf, sizeof buf, &len, 0), -EBADMSG);
    CHECK_EQ_INT(crew_queue_get_alloc(q, &p, &len, 0), -EBADMSG);
    atomic_store(&m->head, 3); /* misaligned, and past... */
    atomic_store(&m->tail, (uint64_t)1 << 62); /* ...a tail far beyond the ring */
    CHECK_EQ_INT(crew_queue_put(q, "x", 1, 0), -EBADMSG);
    CHECK_EQ_INT(crew_queue_get(q, buf, sizeof buf, &len, 0), -EBADMSG);
    m->cap = (uint64_t)1 << 50; /* larger than its region */
    CHECK_EQ_INT(crew_queue_put(q, "x", 1, 0), -EBADMSG);
    CHECK_EQ_SZ(crew_queue_size(q), 0);
    m->cap = 256;
    atomic_store(&m->head, 0);
    atomic_store(&m->tail, 0);
    m->items = 0;
    CHECK_OK(crew_queue_put(q, "again", 5, 0)); /* repaired by hand: it works */
    CHECK_OK(crew_queue_get(q, buf, sizeof buf, &len, 0));
    CHECK(len == 5 && !memcmp(buf, "again", 5));
    q->sh.hdr->size = 1; /* munmap uses this process's own copy */
    crew_queue_free(q);
}

TEST(pipe_with_a_forged_ring_offset_errs)
{
    crew_pipe *a, *b;
    CHECK_OK(crew_pipe_create(&a, &b, 256));
    uint64_t *ring_off = (uint64_t *)body_of((const crew__sh *)a);
    ring_off[1] = (uint64_t)1 << 45;
    CHECK_EQ_INT(crew_pipe_send(a, "x", 1, 0), -EBADMSG);
    char buf[8];
    size_t len;
    CHECK_EQ_INT(crew_pipe_recv(b, buf, sizeof buf, &len, 0), -EBADMSG);
    ring_off[1] = 64 + 8; /* misaligned */
    CHECK_EQ_INT(crew_pipe_poll(b, 0), -EBADMSG);
    crew_pipe_free(a);
    crew_pipe_free(b);
}

TEST_MAIN()
