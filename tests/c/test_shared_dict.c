/* test_shared_dict.c — crew_dict: the dict API, rebuilds, readers and writers in several processes, writers killed mid-write. */
#include "test.h"
#include "helpers.h"
#include "shared_helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

static crew_dict *g_d;

TEST(dict_set_get_delete_len_iterate)
{
    crew_dict *d;
    CHECK_OK(crew_dict_create(&d, 100, 1 << 16));
    char v[64];
    size_t vl;
    CHECK_EQ_INT(crew_dict_get(d, "a", 1, v, sizeof v, &vl), -ENOENT);
    CHECK_OK(crew_dict_set(d, "a", 1, "one", 3));
    CHECK_OK(crew_dict_set(d, "b", 1, "", 0));
    CHECK_OK(crew_dict_get(d, "a", 1, v, sizeof v, &vl));
    CHECK(vl == 3 && !memcmp(v, "one", 3));
    CHECK_OK(crew_dict_get(d, "b", 1, v, sizeof v, &vl));
    CHECK_EQ_SZ(vl, 0);
    CHECK_OK(crew_dict_set(d, "a", 1, "uno!", 4));
    CHECK_EQ_INT(crew_dict_get(d, "a", 1, v, 2, &vl), -EMSGSIZE);
    CHECK_EQ_SZ(vl, 4);
    void *p;
    CHECK_OK(crew_dict_get_alloc(d, "a", 1, &p, &vl));
    CHECK(vl == 4 && !memcmp(p, "uno!", 4));
    free(p);
    CHECK_EQ_SZ(crew_dict_len(d), 2);
    CHECK_EQ_INT(crew_dict_contains(d, "b", 1), 1);
    CHECK_OK(crew_dict_delete(d, "b", 1));
    CHECK_EQ_INT(crew_dict_delete(d, "b", 1), -ENOENT);
    CHECK_EQ_INT(crew_dict_contains(d, "b", 1), 0);
    CHECK_EQ_SZ(crew_dict_len(d), 1);
    CHECK_EQ_INT(crew_dict_set(d, "", 0, "x", 1), -EINVAL);
    for (int i = 0; i < 50; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "k%d", i);
        CHECK_OK(crew_dict_set(d, k, (size_t)n, &i, sizeof i));
    }
    uint64_t cur = 0;
    char kb[16];
    size_t kl;
    int seen = 0, sum = 0;
    while (crew_dict_next(d, &cur, kb, sizeof kb, &kl, v, sizeof v, &vl) == 0) {
        seen++;
        if (kb[0] == 'k')
            sum += *(int *)v;
    }
    CHECK_EQ_INT(seen, 51);
    CHECK_EQ_INT(sum, 49 * 50 / 2);
    CHECK_OK(crew_dict_clear(d));
    CHECK_EQ_SZ(crew_dict_len(d), 0);
    CHECK_EQ_INT(crew_dict_get(d, "a", 1, v, sizeof v, &vl), -ENOENT);
    crew_dict_free(d);
}

TEST(dict_rebuilds_under_churn_and_reports_full)
{
    crew_dict *d;
    CHECK_OK(crew_dict_create(&d, 64, 8192));
    char k[16], v[100];
    size_t vl;
    for (int r = 0; r < 200; r++) { /* many overwrites: the heap refills and is rebuilt */
        for (int i = 0; i < 20; i++) {
            int n = snprintf(k, sizeof k, "key%d", i);
            memset(v, r & 0xff, sizeof v);
            CHECK_OK(crew_dict_set(d, k, (size_t)n, v, 20 + (size_t)(i + r) % 60));
        }
        if (r % 3 == 0)
            CHECK_OK(crew_dict_delete(d, "key5", 4));
    }
    for (int i = 0; i < 20; i++) {
        int n = snprintf(k, sizeof k, "key%d", i);
        CHECK_OK(crew_dict_get(d, k, (size_t)n, v, sizeof v, &vl));
        CHECK_EQ_SZ(vl, 20 + (size_t)(i + 199) % 60);
        CHECK_EQ_INT((unsigned char)v[0], 199);
    }
    int rc = 0, i = 0;
    for (; i < 1000 && rc == 0; i++) {
        int n = snprintf(k, sizeof k, "more%d", i);
        rc = crew_dict_set(d, k, (size_t)n, v, 100);
    }
    CHECK_EQ_INT(rc, -ENOSPC);
    CHECK_EQ_SZ(crew_dict_len(d), 20 + (size_t)i - 1);
    crew_dict_free(d);
}

/* ------------------------------------------- readers and writers, processes */

/* A value that proves itself whole: n bytes of (key * 7 + version), then the
 * version. Readers check every byte. */
static size_t make_val(unsigned char *v, uint32_t key, uint32_t ver)
{
    size_t n = 8 + (key * 13 + ver) % 200;
    memset(v, (int)((key * 7 + ver) & 0xff), n);
    memcpy(v + n, &ver, 4);
    return n + 4;
}

static bool val_ok(const unsigned char *v, size_t len, uint32_t key)
{
    if (len < 12)
        return false;
    uint32_t ver;
    memcpy(&ver, v + len - 4, 4);
    unsigned char want[256];
    return make_val(want, key, ver) == len && !memcmp(want, v, len);
}

#define NKEYS 64

static int writer(void *arg)
{
    long rounds = (long)arg;
    unsigned char v[256];
    for (long r = 0; r < rounds; r++)
        for (uint32_t k = 0; k < NKEYS; k++)
            if (crew_dict_set(g_d, &k, sizeof k, v, make_val(v, k, (uint32_t)r)))
                return 2;
    return 0;
}

static int reader(void *arg)
{
    long n = (long)arg;
    unsigned char v[256];
    size_t vl;
    for (long i = 0; i < n; i++) {
        uint32_t k = (uint32_t)i % NKEYS;
        int rc = crew_dict_get(g_d, &k, sizeof k, v, sizeof v, &vl);
        if (rc == -ENOENT)
            continue;
        if (rc || !val_ok(v, vl, k))
            return 3;
    }
    return 0;
}

TEST(dict_readers_see_whole_values_while_writers_write)
{
    CHECK_OK(crew_dict_create(&g_d, 1024, 1 << 16)); /* small heap: rebuilds often */
    long rounds = test_scale(400, 60), reads = test_scale(400000, 40000);
    pid_t w1 = sh_fork(writer, (void *)rounds), w2 = sh_fork(writer, (void *)rounds);
    pid_t r1 = sh_fork(reader, (void *)reads);
    CHECK_EQ_INT(reader((void *)reads), 0);
    CHECK_EQ_INT(sh_join(w1), 0);
    CHECK_EQ_INT(sh_join(w2), 0);
    CHECK_EQ_INT(sh_join(r1), 0);
    CHECK_EQ_SZ(crew_dict_len(g_d), NKEYS);
    CHECK_EQ_INT(reader((void *)(long)NKEYS), 0);
    crew_dict_free(g_d);
}

static int writer_killed(void *arg)
{
    const char *point = arg;
    sh_kill_at(point, 30);
    return writer((void *)100L);
}

TEST(dict_writer_killed_mid_write_leaves_it_whole)
{
    const char *points[] = {"dict.set.written", "dict.rebuild.copied"};
    for (int p = 0; p < 2; p++) {
        CHECK_OK(crew_dict_create(&g_d, 256, 1 << 14));
        CHECK_EQ_INT(writer((void *)2L), 0);
        CHECK_EQ_INT(sh_join(sh_fork(writer_killed, (void *)points[p])), 128 + SIGKILL);
        /* readers never block on the dead writer's lock */
        uint64_t t0 = test_now_ns();
        CHECK_EQ_INT(reader((void *)1000L), 0);
        CHECK(test_now_ns() - t0 < 500000000u);
        CHECK_EQ_SZ(crew_dict_len(g_d), NKEYS); /* repaired by the next writer or exact */
        /* the next writer is told and finds the dict whole */
        CHECK_EQ_INT(crew_dict_lock(g_d, 1), CREW_EOWNERDEAD);
        CHECK_OK(crew_dict_unlock(g_d));
        CHECK_EQ_INT(writer((void *)3L), 0);
        CHECK_EQ_SZ(crew_dict_len(g_d), NKEYS);
        CHECK_EQ_INT(reader((void *)1000L), 0);
        crew_dict_free(g_d);
    }
}

static int random_writer(void *arg)
{
    (void)arg;
    return writer((void *)100000L);
}

TEST(dict_random_sigkills_never_tear_a_value)
{
    CHECK_OK(crew_dict_create(&g_d, 1024, 1 << 15));
    int kills = (int)test_scale(20, 5);
    for (int i = 0; i < kills; i++) {
        pid_t w = sh_fork(random_writer, NULL);
        test_sleep_us(2000 + (i * 1777) % 8000);
        kill(w, SIGKILL);
        CHECK_EQ_INT(sh_join(w), 128 + SIGKILL);
        CHECK_EQ_INT(reader((void *)(long)(NKEYS * 4)), 0);
    }
    CHECK_EQ_INT(writer((void *)1L), 0);
    CHECK_EQ_SZ(crew_dict_len(g_d), NKEYS);
    crew_dict_free(g_d);
}

static int compound_add(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        if (crew_dict_lock(g_d, 10) < 0)
            return 2;
        long v = 0;
        size_t vl;
        crew_dict_get(g_d, "n", 1, &v, sizeof v, &vl);
        v++;
        if (crew_dict_set(g_d, "n", 1, &v, sizeof v))
            return 3;
        crew_dict_unlock(g_d);
    }
    return 0;
}

TEST(dict_lock_makes_compound_updates_atomic)
{
    CHECK_OK(crew_dict_create(&g_d, 16, 1 << 16));
    long n = test_scale(3000, 500);
    pid_t a = sh_fork(compound_add, (void *)n);
    CHECK_EQ_INT(compound_add((void *)n), 0);
    CHECK_EQ_INT(sh_join(a), 0);
    long v = 0;
    size_t vl;
    CHECK_OK(crew_dict_get(g_d, "n", 1, &v, sizeof v, &vl));
    CHECK_EQ_INT(v, 2 * n);
    crew_dict_free(g_d);
}

TEST_MAIN()
