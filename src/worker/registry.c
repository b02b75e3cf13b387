/* registry.c — the process-wide table of tasks by name, the C form of "top-level functions". */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "worker/registry.h"
#include "base/lockorder.h"

#define MAX_TASKS 1024
#define MAX_NAME 127

typedef struct entry {
    uint64_t hash;
    crew_task_fn fn;
    void *udata;
    char name[MAX_NAME + 1];
} entry;

static entry table[MAX_TASKS];
static _Atomic int ntasks;  /* published after the entry is written */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a, 64 bits. */
uint64_t crew__hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        h ^= *c;
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

int crew_register(const char *name, crew_task_fn fn, void *udata)
{
    if (!name || !fn || !*name || strlen(name) > MAX_NAME)
        return -EINVAL;
    uint64_t h = crew__hash(name);
    int rc = 0;
    crew__lock(&reg_mu, CREW__LOCK_REGISTRY);
    int n = atomic_load(&ntasks);
    for (int i = 0; i < n; i++) {
        if (table[i].hash == h) {
            rc = (table[i].fn == fn && table[i].udata == udata && !strcmp(table[i].name, name))
                     ? 0 : -EEXIST;
            goto out;
        }
    }
    if (n == MAX_TASKS) {
        rc = -ENOMEM;
        goto out;
    }
    table[n].hash = h;
    table[n].fn = fn;
    table[n].udata = udata;
    strcpy(table[n].name, name);
    atomic_store_explicit(&ntasks, n + 1, memory_order_release);
out:
    crew__unlock(&reg_mu, CREW__LOCK_REGISTRY);
    return rc;
}

bool crew__registry_find(uint64_t hash, crew_task_fn *fn, void **udata)
{
    int n = atomic_load_explicit(&ntasks, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        if (table[i].hash == hash) {
            *fn = table[i].fn;
            *udata = table[i].udata;
            return true;
        }
    }
    return false;
}

int crew__task_hash(const char *name, uint64_t *hash)
{
    crew_task_fn fn;
    void *ud;
    uint64_t h = crew__hash(name);
    if (!crew__registry_find(h, &fn, &ud))
        return CREW_ENOTASK;
    *hash = h;
    return 0;
}
