/* shared_counter.c — example: pool tasks share a dict, a queue and a lock by reference (crew_shared_ref). */
#include <stdio.h>
#include <string.h>

#include "crew.h"

typedef struct job {
    crew_shared_ref dict, queue, lock;
    int id;
} job;

/* Each worker opens the objects it is given once and keeps them. */
static crew_dict *d;
static crew_queue *q;
static crew_lock *l;

static int t_count(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)len;
    (void)ud;
    const job *j = arg;
    if ((!d && crew_dict_open(&d, &j->dict)) || (!q && crew_queue_open(&q, &j->queue)) ||
        (!l && crew_lock_open(&l, &j->lock)))
        return crew_out_error(out, "cannot open the shared objects");
    crew_lock_acquire(l, -1); /* a compound update: read, add, write */
    long n = 0;
    size_t vl;
    crew_dict_get(d, "total", 5, &n, sizeof n, &vl);
    n += j->id;
    crew_dict_set(d, "total", 5, &n, sizeof n);
    crew_lock_release(l);
    char msg[64];
    int m = snprintf(msg, sizeof msg, "task %d done", j->id);
    return crew_queue_put(q, msg, (size_t)m, 5);
}

CREW_TASK("count", t_count)

int main(int argc, char **argv)
{
    crew_main(argc, argv);
    crew_options o;
    crew_options_init(&o);
    o.workers = 2;
    crew_pool *p;
    crew_dict *dict;
    crew_queue *queue;
    crew_lock *lock;
    if (crew_pool_create(&p, &o) || crew_dict_create(&dict, 0, 0) ||
        crew_queue_create(&queue, 0, 0) || crew_lock_create(&lock, 0))
        return 1;
    job j;
    crew_dict_ref(dict, &j.dict);
    crew_queue_ref(queue, &j.queue);
    crew_lock_ref(lock, &j.lock);
    crew_future *fs[10];
    for (int i = 0; i < 10; i++) {
        j.id = i + 1;
        crew_submit(p, "count", &j, sizeof j, &fs[i]);
    }
    for (int i = 0; i < 10; i++) {
        char msg[64];
        size_t len;
        if (crew_queue_get(queue, msg, sizeof msg, &len, 10) == 0)
            printf("%.*s\n", (int)len, msg);
    }
    crew_wait_all(fs, 10, -1);
    long total = 0;
    size_t vl;
    crew_dict_get(dict, "total", 5, &total, sizeof total, &vl);
    printf("total = %ld (expected 55)\n", total);
    for (int i = 0; i < 10; i++)
        crew_future_release(fs[i]);
    crew_pool_free(p);
    crew_lock_free(lock);
    crew_queue_free(queue);
    crew_dict_free(dict);
    return total == 55 ? 0 : 1;
}
