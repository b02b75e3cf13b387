/* worker.h — the worker layer: the loop every worker runs (thread or process) over one slot of a pool's region. */
#ifndef CREW_WORKER_H
#define CREW_WORKER_H

#include <stdint.h>

#include "transport/shm.h"

/* The worker loop on slot i of shm: says hello, then runs requests until it
 * is told to quit (or, with a memory cap, until it passes it). It trusts
 * nothing about the parent but the region's layout; it never calls up. */
void crew__worker_loop(crew__shm *shm, uint32_t i);

#endif
