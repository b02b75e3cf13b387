/* worker.h — the worker layer: the loop every worker runs (thread or process) over one slot of a pool's region. */
#ifndef CREW_WORKER_H
#define CREW_WORKER_H

#include <stdint.h>

#include "transport/shm.h"

/* The worker loop on slot i of region R: says hello, then runs requests
 * until it is told to quit (or, with a memory cap, until it passes it). It
 * trusts nothing about the parent but the region's layout; it never calls
 * up. A process forked by a task that returns into the loop (not the
 * worker: its pid differs) exits at once, before it touches the rings. */
void crew__worker_loop(const crew__region *R, uint32_t i);

/* The function every worker of this process calls when it finds no request
 * waiting and before it leaves (crew_worker_hooks.idle; NULL: none). */
void crew__worker_set_idle(void (*fn)(void));

#endif
