/* test_protocol.c — a worker that writes a forged answer into shared memory is killed as crashed; the parent never trusts it. */
#include "test.h"
#include "helpers.h"

#include <string.h>
#include <unistd.h>

#include "crew.h"
#include "pool/pool.h" /* internal: the pool's shared region, to forge answers in it */

/* The pool's region, as every worker forked after it was set maps it. */
static crew__shm *g_shm;

enum { FORGE_NONE, FORGE_INLINE_LEN, FORGE_ARENA_OFF, FORGE_TAG, FORGE_FLAGS };

/* Pushes a forged answer of the given kind into its own response ring, then
 * answers normally: what a task (or a C extension) scribbling on crew's
 * shared memory would do. */
static int t_forge(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int kind = 0;
    memcpy(&kind, arg, len < sizeof kind ? len : sizeof kind);
    crew__slot *sl = NULL;
    for (uint32_t k = 0; g_shm && k < g_shm->nslots; k++)
        if (atomic_load(&g_shm->slots[k].pid) == (int32_t)getpid())
            sl = &g_shm->slots[k];
    if (kind != FORGE_NONE && sl) {
        crew__msg m;
        memset(&m, 0, sizeof m);
        m.tag = atomic_load(&sl->cur_tag);
        if (kind == FORGE_INLINE_LEN)
            m.len = 1u << 30;                   /* the parent would memcpy 1 GiB */
        else if (kind == FORGE_ARENA_OFF) {
            m.flags = CREW__MSG_ARENA;
            m.off = (uint64_t)1 << 40;          /* far outside the mapping */
            m.len = 4096;
        } else if (kind == FORGE_TAG)
            m.tag ^= 0x5a5a5a5a;                /* no task it was given */
        else
            m.flags = 1u << 30;
        crew__ring_push(crew__slot_resp(g_shm, sl), &m);
    }
    return crew_out_set(out, &kind, sizeof kind);
}

CREW_TASK("forge", t_forge)

static void forged_answer_kills_only_its_worker(int kind, const char *says)
{
    crew_options o = test_fork_options(1);
    o.max_tasks_per_worker = 1; /* each task on a worker forked after g_shm is set */
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    g_shm = p->shm;
    crew_future *f;
    int none = FORGE_NONE;
    CHECK_OK(crew_submit(p, "forge", &none, sizeof none, &f)); /* replaces the first worker */
    CHECK_OK(crew_future_wait(f, 30));
    CHECK_EQ_INT(crew_future_status(f), 0);
    crew_future_release(f);

    CHECK_OK(crew_submit(p, "forge", &kind, sizeof kind, &f));
    CHECK_OK(crew_future_wait(f, 30));
    CHECK_EQ_INT(crew_future_status(f), CREW_ECRASHED);
    const char *msg = crew_future_error(f);
    printf("  %s\n", msg);
    CHECK(strstr(msg, "broke crew's protocol") != NULL);
    CHECK(strstr(msg, says) != NULL);
    crew_future_release(f);

    for (int k = 0; k < 3; k++) { /* the pool serves on */
        CHECK_OK(crew_submit(p, "forge", &none, sizeof none, &f));
        CHECK_OK(crew_future_wait(f, 30));
        CHECK_EQ_INT(crew_future_status(f), 0);
        crew_future_release(f);
    }
    crew_pool_free(p);
    g_shm = NULL;
}

TEST(an_inline_answer_longer_than_a_message_is_refused)
{
    forged_answer_kills_only_its_worker(FORGE_INLINE_LEN, "inline answer of 1073741824 bytes");
}

TEST(an_arena_offset_outside_the_arena_is_refused)
{
    forged_answer_kills_only_its_worker(FORGE_ARENA_OFF, "outside the arena");
}

TEST(an_answer_to_a_task_it_was_not_running_is_refused)
{
    forged_answer_kills_only_its_worker(FORGE_TAG, "not running");
}

TEST(unknown_flags_are_refused)
{
    forged_answer_kills_only_its_worker(FORGE_FLAGS, "unknown flags");
}

TEST_MAIN()
