/* test_pool_threads.c — the shared pool cases (pool_cases.h) on a thread pool. */
#define TEST_KIND CREW_THREADS
#include "pool_cases.h"

TEST_MAIN()
