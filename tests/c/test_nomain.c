/* test_nomain.c — without crew_main(), spawn and fork-server pools fail with CREW_ENOMAIN and say what to do; fork still works. */
#include "test.h"

#include "crew.h"

static int t_nop(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)out, (void)ud;
    return 0;
}

CREW_TASK("nop", t_nop)

TEST(spawn_and_forkserver_need_crew_main)
{
    crew_options o;
    crew_options_init(&o);
    o.workers = 1;
    crew_pool *p = NULL;
    o.start = CREW_START_FORKSERVER;
    CHECK_EQ_INT(crew_pool_create(&p, &o), CREW_ENOMAIN);
    o.start = CREW_START_SPAWN;
    CHECK_EQ_INT(crew_pool_create(&p, &o), CREW_ENOMAIN);
    o.start = CREW_START_DEFAULT; /* the default is the fork server */
    CHECK_EQ_INT(crew_pool_create(&p, &o), CREW_ENOMAIN);
    CHECK(strstr(crew_strerror(CREW_ENOMAIN), "crew_main(argc, argv)") != NULL);
    CHECK(strstr(crew_strerror(CREW_ENOMAIN), "CREW_START_FORK") != NULL);
    CHECK(p == NULL);
}

TEST(fork_and_threads_work_without_crew_main)
{
    crew_options o;
    crew_options_init(&o);
    o.workers = 1;
    for (int k = 0; k < 2; k++) {
        o.kind = k ? CREW_THREADS : CREW_PROCESSES;
        o.start = CREW_START_FORK;
        crew_pool *p;
        CHECK_OK(crew_pool_create(&p, &o));
        crew_future *f;
        CHECK_OK(crew_submit(p, "nop", NULL, 0, &f));
        CHECK_OK(crew_future_result(f, NULL, NULL));
        crew_future_release(f);
        crew_pool_free(p);
    }
}

TEST_MAIN()
