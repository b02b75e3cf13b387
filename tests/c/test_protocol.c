/* test_protocol.c — a worker that writes a forged answer into shared memory is killed as crashed; the parent never trusts it. */
#include "test.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crew.h"
#include "pool/pool.h" /* internal: the pool's shared region, to forge answers in it */

/* The pool's region, as every worker forked after it was set maps it. */
static crew__shm *g_shm;
static const crew__region *g_reg;

enum { FORGE_NONE, FORGE_INLINE_LEN, FORGE_ARENA_OFF, FORGE_ARENA_RUN, FORGE_TAG, FORGE_FLAGS,
       FORGE_RUN_TIME };

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
        } else if (kind == FORGE_ARENA_RUN) {
            /* inside the arena, but no run it hands out: 100 chunks from
             * chunk 8 (a run of more than 64 starts on a bitmap word);
             * freed, it would clear chunks 0-7's owners' bits */
            m.flags = CREW__MSG_ARENA;
            m.off = g_reg->arena.data_off + 8 * (uint64_t)CREW__CHUNK;
            m.len = 100 * (uint64_t)CREW__CHUNK;
        } else if (kind == FORGE_RUN_TIME)
            m.fn_hash = ~0ull;                  /* the answer's run time: 2^64-1 ns */
        else if (kind == FORGE_TAG)
            m.tag ^= 0x5a5a5a5a;                /* no task it was given */
        else
            m.flags = 1u << 30;
        crew__ring_push(crew__region_resp(g_reg, (uint32_t)(sl - g_shm->slots)), &m);
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
    g_shm = p->reg.shm;
    g_reg = &p->reg;
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
    forged_answer_kills_only_its_worker(FORGE_ARENA_OFF, "not a run of the arena");
}

TEST(an_arena_run_the_allocator_never_hands_out_is_refused)
{
    forged_answer_kills_only_its_worker(FORGE_ARENA_RUN, "not a run of the arena");
}

TEST(an_answer_to_a_task_it_was_not_running_is_refused)
{
    forged_answer_kills_only_its_worker(FORGE_TAG, "not running");
}

TEST(unknown_flags_are_refused)
{
    forged_answer_kills_only_its_worker(FORGE_FLAGS, "unknown flags");
}

/* ---- a task that writes over the region's structure, or resizes it ---- */

/* Writes pseudo-random bytes (seeded by the argument) over the region's
 * first 4 KiB: its header (magic, slot count, size, arena offset, the
 * doorbell) and every slot's words. Before the parent kept its own layout,
 * it then found rings and the arena through these bytes: SIGSEGV. */
static int t_scribble(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    memcpy(&x, arg, len < sizeof x ? len : sizeof x);
    unsigned char *b = (unsigned char *)g_shm;
    for (size_t k = 0; b && k < 4096; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[k] = (unsigned char)x;
    }
    return crew_out_set(out, "done", 5);
}
CREW_TASK("scribble", t_scribble)

static int t_echo(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    return crew_out_set(out, arg, len);
}
CREW_TASK("echo", t_echo)

/* Finds the pool's memfd among its parent's descriptors (a fork worker
 * keeps none of its own) and tries to shrink it; answers the errno (0: it
 * shrank). */
static int t_shrink(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)ud;
    int result = -1;
    for (int fd = 3; fd < 1024 && result < 0; fd++) {
        char path[64], link[128];
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getppid(), fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (!strstr(link, "memfd:crew-pool"))
            continue;
        int rw = open(path, O_RDWR); /* a fresh description, writable */
        if (rw < 0)
            continue;
        result = ftruncate(rw, 4096) == 0 ? 0 : errno;
        close(rw);
    }
    return crew_out_set(out, &result, sizeof result);
}
CREW_TASK("shrink", t_shrink)

/* Forks; both copies return from the task. The copy is no worker: it must
 * leave before it reads or answers anything. Answers the copy's pid. */
static int t_fork_and_return(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)ud;
    pid_t pid = fork();
    if (pid < 0)
        return crew_out_error(out, "fork failed");
    int32_t v = pid == 0 ? 0 : (int32_t)pid;
    return crew_out_set(out, &v, sizeof v);
}
CREW_TASK("fork_and_return", t_fork_and_return)

/* Runs task over arg (len bytes) and checks that it succeeded with a result
 * of exactly size bytes, copied into out. */
static void run_into(crew_pool *p, const char *task, const void *arg, size_t len, void *out,
                     size_t size)
{
    crew_future *f;
    CHECK_OK(crew_submit(p, task, arg, len, &f));
    CHECK_OK(crew_future_wait(f, 30));
    CHECK_EQ_INT(crew_future_status(f), 0);
    const void *d;
    size_t l;
    crew_future_result(f, &d, &l);
    CHECK_EQ_SZ(l, size);
    memcpy(out, d, size);
    crew_future_release(f);
}

/* Submits "echo" n times and checks every answer. */
static void pool_serves(crew_pool *p, int n)
{
    for (int k = 0; k < n; k++) {
        int back;
        run_into(p, "echo", &k, sizeof k, &back, sizeof back);
        CHECK_EQ_INT(back, k);
    }
}

TEST(a_task_that_scribbles_over_the_region_header_harms_only_its_worker)
{
    crew_options o = test_fork_options(2);
    o.max_tasks_per_worker = 1; /* each task on a worker forked after g_shm is set */
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    g_shm = p->reg.shm;
    g_reg = &p->reg;
    pool_serves(p, 2); /* replaces the workers forked before g_shm was set */
    int seeds = (int)test_scale(12, 4), crashed = 0;
    for (int k = 0; k < seeds; k++) {
        uint64_t seed = 0x1234567ull * (uint64_t)(k + 1);
        crew_future *f;
        CHECK_OK(crew_submit(p, "scribble", &seed, sizeof seed, &f));
        CHECK_OK(crew_future_wait(f, 30));
        int st = crew_future_status(f);
        CHECK(st == 0 || st == CREW_ECRASHED);
        crashed += st != 0;
        crew_future_release(f);
        pool_serves(p, 4); /* every later task is answered, and rightly */
    }
    printf("  %d scribbles, %d of the scribbling tasks failed as crashed\n", seeds, crashed);
    crew_pool_free(p);
    g_shm = NULL;
    g_reg = NULL;
}

TEST(the_pool_memfd_cannot_be_resized_by_a_task)
{
    crew_options o = test_fork_options(1);
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    int e;
    run_into(p, "shrink", NULL, 0, &e, sizeof e);
    CHECK_EQ_INT(e, EPERM); /* sealed: before, 0 (it shrank; the parent then met SIGBUS) */
    pool_serves(p, 20);
    crew_pool_free(p);
}

/* Whether pid is gone or a zombie (exited, not yet reaped by its parent). */
static bool exited(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

static void a_forked_copy_of_a_worker_leaves(crew_kind kind)
{
    crew_options o = test_fork_options(1);
    o.kind = kind;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    for (int k = 0; k < 3; k++) {
        int32_t child; /* answered once, by the worker */
        run_into(p, "fork_and_return", NULL, 0, &child, sizeof child);
        CHECK(child > 0);
        if (kind == CREW_THREADS) /* our own child: reap it */
            CHECK_EQ_INT(waitpid(child, NULL, 0), child);
        else
            for (int w = 0; w < 3000 && !exited(child); w++)
                test_sleep_us(1000);
        CHECK(exited(child));
        pool_serves(p, 10); /* nobody else consumed its ring */
    }
    crew_stats st;
    CHECK_OK(crew_pool_stats(p, &st));
    CHECK_EQ_INT((int)st.crashed, 0);
    crew_pool_free(p);
}

TEST(a_process_forked_by_a_task_that_returns_leaves_the_worker_loop)
{
    a_forked_copy_of_a_worker_leaves(CREW_PROCESSES);
}

TEST(a_process_forked_by_a_thread_task_that_returns_leaves_the_worker_loop)
{
    a_forked_copy_of_a_worker_leaves(CREW_THREADS);
}

/* Counts this process's descriptors whose link contains `what`. */
static int fds_like(const char *what)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char path[64], link[128];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t r = readlink(path, link, sizeof link - 1);
        if (r <= 0)
            continue;
        link[r] = 0;
        n += strstr(link, what) != NULL;
    }
    return n;
}

static int t_count_fds(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)ud;
    int32_t v[3] = {fds_like("memfd:crew-pool"), fds_like("[pidfd]"), fds_like("[eventfd]")};
    return crew_out_set(out, v, sizeof v);
}
CREW_TASK("count_fds", t_count_fds)

TEST(a_fork_worker_holds_no_other_pools_descriptors)
{
    crew_options o = test_fork_options(2);
    crew_pool *other, *p;
    CHECK_OK(crew_pool_create(&other, &o)); /* its memfd, eventfd and 2 pidfds */
    pool_serves(other, 2);
    CHECK_OK(crew_pool_create(&p, &o));
    pool_serves(p, 2); /* both workers up: each pool holds 2 pidfds */
    int32_t v[3];
    run_into(p, "count_fds", NULL, 0, v, sizeof v);
    printf("  in a fork worker: %d pool memfds, %d pidfds, %d eventfds\n", v[0], v[1], v[2]);
    CHECK_EQ_INT(v[0], 0); /* not even its own pool's: it has the mapping (before: 2) */
    CHECK_EQ_INT(v[1], 0);
    CHECK_EQ_INT(v[2], 0);
    crew_pool_free(p);
    crew_pool_free(other);
}

TEST(an_answer_with_a_forged_run_time_does_not_kill_the_parent)
{
    /* before: the pool's mean task time wrapped and the parent died of
     * SIGFPE (a divide by zero) on the first such answer */
    crew_options o = test_fork_options(1);
    o.max_tasks_per_worker = 1;
    crew_pool *p;
    CHECK_OK(crew_pool_create(&p, &o));
    g_shm = p->reg.shm;
    g_reg = &p->reg;
    pool_serves(p, 1);
    for (int k = 0; k < 3; k++) {
        int kind = FORGE_RUN_TIME;
        crew_future *f;
        CHECK_OK(crew_submit(p, "forge", &kind, sizeof kind, &f));
        CHECK_OK(crew_future_wait(f, 30));
        int st = crew_future_status(f);
        CHECK(st == 0 || st == CREW_ECRASHED);
        crew_future_release(f);
        pool_serves(p, 3);
    }
    crew_pool_free(p);
    g_shm = NULL;
    g_reg = NULL;
}

TEST_MAIN()
