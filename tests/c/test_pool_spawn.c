/* test_pool_spawn.c — the shared pool cases (pool_cases.h) on a process pool, spawn start. */
#define TEST_KIND CREW_PROCESSES
#define TEST_START CREW_START_SPAWN
#include "pool_cases.h"

/* a spawned worker is this binary run again: crew_main() turns it into a worker */
TEST_MAIN_AFTER(crew_main(argc, argv))
