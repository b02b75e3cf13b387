/* test_shared_refs.c — refs cross into other processes: inherited fds, pidfd_getfd, pool tasks; wrong refs fail cleanly. */
#include "test.h"
#include "helpers.h"
#include "shared_helpers.h"

#include <errno.h>
#include <fcntl.h>

static crew_shared_ref g_ref;

/* A child whose fd number does not hold the region (as after an exec):
 * open must fetch the fd from the ref's owner. */
static int child_without_fd(void *arg)
{
    (void)arg;
    int junk = open("/dev/null", O_RDONLY);
    if (dup2(junk, g_ref.fd) < 0)
        return 2;
    crew_array *a;
    int rc = crew_array_open(&a, &g_ref);
    if (rc)
        return 3;
    if (crew_array_size(a) != 4096 || strcmp(crew_array_meta(a), "uint8[4096]"))
        return 4;
    memset(crew_array_data(a), 7, 4096);
    crew_array_free(a);
    return 0;
}

TEST(array_ref_opens_in_a_process_without_the_fd)
{
    crew_array *a;
    CHECK_OK(crew_array_create(&a, 4096, "uint8[4096]"));
    CHECK_OK(crew_array_ref(a, &g_ref));
    CHECK_EQ_INT(g_ref.kind, CREW_SHARED_ARRAY);
    CHECK_EQ_INT(sh_join(sh_fork(child_without_fd, NULL)), 0);
    CHECK_EQ_INT(((unsigned char *)crew_array_data(a))[4095], 7);
    crew_array *b;
    CHECK_OK(crew_array_open(&b, &g_ref)); /* and in this process: a second handle */
    CHECK(crew_array_data(b) != crew_array_data(a));
    CHECK_EQ_INT(((unsigned char *)crew_array_data(b))[0], 7);
    crew_array_free(b);
    crew_lock *l;
    CHECK_EQ_INT(crew_lock_open(&l, &g_ref), -EINVAL); /* wrong kind */
    crew_array_free(a);
    CHECK(crew_array_open(&b, &g_ref) < 0); /* the owner no longer holds it */
}

/* ---------------------------------------------- through a pool's task */

static int t_fill(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    (void)len;
    crew_shared_ref ref;
    memcpy(&ref, arg, sizeof ref);
    crew_array *a;
    int rc = crew_array_open(&a, &ref);
    if (rc)
        return crew_out_error(out, "open: %s", crew_strerror(rc));
    long *v = crew_array_data(a);
    for (size_t i = 0; i < crew_array_size(a) / sizeof(long); i++)
        v[i] = (long)i;
    /* return a new object by reference: a queue holding one message, kept
     * open by this worker (a process-wide handle) so the parent can open it */
    static crew_queue *kept;
    if (!kept && (rc = crew_queue_create(&kept, 0, 0)) != 0)
        return crew_out_error(out, "queue: %s", crew_strerror(rc));
    crew_queue_put(kept, "from task", 9, 0);
    crew_shared_ref qr;
    crew_queue_ref(kept, &qr);
    crew_array_free(a);
    return crew_out_set(out, &qr, sizeof qr);
}

CREW_TASK("shared.fill", t_fill)

TEST(refs_travel_through_pool_tasks)
{
    crew_options o = test_fork_options(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    crew_array *a;
    CHECK_OK(crew_array_create(&a, 1000 * sizeof(long), "int64[1000]"));
    crew_shared_ref ref;
    CHECK_OK(crew_array_ref(a, &ref));
    crew_future *f;
    CHECK_OK(crew_submit(p, "shared.fill", &ref, sizeof ref, &f));
    CHECK_OK(crew_future_wait(f, 10));
    const void *d;
    size_t len;
    int rc = crew_future_result(f, &d, &len);
    if (rc)
        printf("task: %s\n", crew_future_error(f));
    CHECK_OK(rc);
    CHECK_EQ_INT(((long *)crew_array_data(a))[999], 999);
    crew_shared_ref qr;
    memcpy(&qr, d, sizeof qr);
    crew_queue *q;
    CHECK_OK(crew_queue_open(&q, &qr)); /* owned by the worker: fetched with pidfd_getfd */
    char buf[16];
    CHECK_OK(crew_queue_get(q, buf, sizeof buf, &len, 1));
    CHECK(len == 9 && !memcmp(buf, "from task", 9));
    crew_queue_free(q);
    crew_future_release(f);
    crew_array_free(a);
    crew_pool_free(p);
}

TEST_MAIN()
