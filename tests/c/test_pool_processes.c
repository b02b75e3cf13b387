/* test_pool_processes.c — the shared pool cases (pool_cases.h) on a process pool, fork start. */
#define TEST_KIND CREW_PROCESSES
#define TEST_START CREW_START_FORK
#include "pool_cases.h"

TEST_MAIN()
