/* registry.h — the process-wide table of tasks by name: what a worker can run, found by its name's hash. */
#ifndef CREW_REGISTRY_H
#define CREW_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "crew.h"

/* The 64-bit hash of a task name (FNV-1a), as it travels in requests. */
uint64_t crew__hash(const char *name);
/* Looks up a task by name hash: fn and udata, or false. */
bool crew__registry_find(uint64_t hash, crew_task_fn *fn, void **udata);
/* The hash of a registered task's name: 0 and *hash, or CREW_ENOTASK. */
int crew__task_hash(const char *name, uint64_t *hash);

#endif
