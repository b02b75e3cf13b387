/* test_pool_forkserver.c — the shared pool cases (pool_cases.h) on a process pool, fork-server start. */
#define TEST_KIND CREW_PROCESSES
#define TEST_START CREW_START_FORKSERVER
#include "pool_cases.h"

/* crew_main() starts the fork server (a fresh exec of this binary) while
 * the test program still has one thread, and serves in that copy */
TEST_MAIN_AFTER(crew_set_start_method(CREW_START_FORKSERVER); if (crew_main(argc, argv) < 0) return 1)
