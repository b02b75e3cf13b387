/* shared_region.h — one memfd region per shared object: header, holders table, handles, refs. */
#ifndef CREW_SHARED_REGION_H
#define CREW_SHARED_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crew.h"

#define CREW__SH_MAGIC 0x63727368u  /* "crsh" */
#define CREW__SH_HOLDERS 256        /* processes tracked per object */
#define CREW__SH_BODY 16384u        /* body offset: after header and holders */

/* One process (and pipe end: tag) that holds the object open. */
typedef struct crew__holder {
    int32_t pid;                    /* 0: free entry */
    uint32_t tag;                   /* pipe end (0 or 1); 0 for others */
    uint64_t start;                 /* the process's start time (pid reuse) */
    uint32_t count;                 /* handles this process holds */
    uint32_t pad;
} crew__holder;

/* The start of every region; the kind's body follows at CREW__SH_BODY. */
typedef struct crew__shhdr {
    uint32_t magic;
    uint32_t kind;
    uint64_t size;                  /* bytes of the region */
    uint64_t ino, dev;              /* the memfd's identity */
    pthread_mutex_t hmu;            /* robust: guards holders[] */
    uint32_t peer_seen;             /* some process other than the creator held it */
    int32_t creator;
    uint64_t opens;                 /* handles attached so far, creation included:
                                       a sender sees that a receiver opened it */
    uint64_t closes;                /* handles detached so far: a cached view of
                                       who holds it is stale once this moves */
    crew__holder holders[CREW__SH_HOLDERS];
} crew__shhdr;
_Static_assert(sizeof(crew__shhdr) <= CREW__SH_BODY, "header too big");

/* A process's handle to a region: the first member of every public handle. */
typedef struct crew__sh {
    crew__shhdr *hdr;
    int fd;
    uint32_t kind, tag;
    uint64_t gen;                   /* fork generation it was attached in */
    uint64_t size;                  /* bytes mapped: this process's own copy,
                                       never re-read from the region (hdr->size
                                       is memory any holder can write) */
} crew__sh;

static inline void *crew__sh_body(const crew__sh *h)
{
    return (char *)h->hdr + CREW__SH_BODY;
}

/* Creates a region of CREW__SH_BODY + body bytes (zeroed, sparse) and
 * attaches this process as holder `tag`. */
int crew__sh_create(crew__sh *h, uint32_t kind, size_t body, uint32_t tag);

/* Maps the region a ref names (see crew_shared_ref in crew.h) and attaches. */
int crew__sh_open(crew__sh *h, const crew_shared_ref *ref, uint32_t kind);

/* Another handle on the same region in this process (a pipe's second end). */
int crew__sh_dup(crew__sh *h, const crew__sh *from, uint32_t tag);

/* Fills a ref that another process can open while this handle lives. */
void crew__sh_ref(const crew__sh *h, crew_shared_ref *ref);

/* Detaches, unmaps and closes. */
void crew__sh_close(crew__sh *h);

/* In a child forked after the handle was made: attach this process too. */
void crew__sh_check_fork(crew__sh *h);

/* Live holders other than this process (tag < 0: any tag; else that tag
 * only, this process included). Prunes dead ones. Returns the count. */
int crew__sh_live_peers(crew__sh *h, int tag);
/* How many handles have been attached to the object so far (any process,
 * its creation included): grows when a receiver opens a ref. */
uint64_t crew__sh_opens(const crew__sh *h);
/* How many handles have been detached from the object so far. */
uint64_t crew__sh_closes(const crew__sh *h);

/* Whether a peer rule applies: the queue's "some other process held it". */
static inline bool crew__sh_peer_seen(const crew__sh *h)
{
    return __atomic_load_n(&h->hdr->peer_seen, __ATOMIC_ACQUIRE) != 0;
}

/* Timeouts: seconds (< 0 forever, 0 try once) to an absolute CLOCK_MONOTONIC
 * deadline in ns (UINT64_MAX forever, 0 try once). */
uint64_t crew__deadline(double timeout);

/* Nanoseconds left before deadline: UINT64_MAX forever, 0 when passed. */
uint64_t crew__remaining(uint64_t deadline);

/* Sleeps on a shared futex word while it equals v, until the deadline or
 * at most slice_ns (UINT64_MAX: no slice). Returns 0 or -EAGAIN when the
 * deadline has passed. */
int crew__sh_wait(_Atomic uint32_t *w, uint32_t v, uint64_t deadline, uint64_t slice_ns);

/* Test hook: called at named points inside writes (NULL: none). Tests use it
 * to kill a process in the middle of a write. */
extern void (*crew__shared_hook)(const char *point);
static inline void crew__hook(const char *point)
{
    if (crew__shared_hook)
        crew__shared_hook(point);
}

/* Robust process-shared mutexes (shared_mutex.c). */
int crew__rmutex_init(pthread_mutex_t *m, bool recursive);
/* Locks by deadline (crew__deadline). Returns 0, CREW_EOWNERDEAD (held now;
 * marked consistent), -EAGAIN (deadline passed), -EDEADLK, -ENOTRECOVERABLE. */
int crew__rmutex_lock(pthread_mutex_t *m, uint64_t deadline);
int crew__rmutex_unlock(pthread_mutex_t *m);

/* Defines crew_<name>_ref, _open and _free for a handle type whose first
 * member is a crew__sh named sh and that needs nothing else per process. */
#define CREW__SH_BOILERPLATE(name, type, KIND)                               \
    int crew_##name##_ref(const type *x, crew_shared_ref *ref)               \
    {                                                                        \
        if (!x || !ref)                                                      \
            return -EINVAL;                                                  \
        crew__sh_ref(&x->sh, ref);                                           \
        return 0;                                                            \
    }                                                                        \
    int crew_##name##_open(type **out, const crew_shared_ref *ref)           \
    {                                                                        \
        if (!out)                                                            \
            return -EINVAL;                                                  \
        type *x = calloc(1, sizeof *x);                                      \
        if (!x)                                                              \
            return -ENOMEM;                                                  \
        int rc_ = crew__sh_open(&x->sh, ref, KIND);                          \
        if (rc_) {                                                           \
            free(x);                                                         \
            return rc_;                                                      \
        }                                                                    \
        *out = x;                                                            \
        return 0;                                                            \
    }                                                                        \
    void crew_##name##_free(type *x)                                         \
    {                                                                        \
        if (!x)                                                              \
            return;                                                          \
        crew__sh_close(&x->sh);                                              \
        free(x);                                                             \
    }

/* Creates a handle of `type` with a region of body bytes, or fails. */
#define CREW__SH_NEW(type, KIND, body, xp)                                   \
    ({                                                                       \
        int rc_ = -ENOMEM;                                                   \
        type *x_ = calloc(1, sizeof *x_);                                    \
        if (x_) {                                                            \
            rc_ = crew__sh_create(&x_->sh, KIND, body, 0);                   \
            if (rc_)                                                         \
                free(x_), x_ = NULL;                                         \
        }                                                                    \
        *(xp) = x_;                                                          \
        rc_;                                                                 \
    })

/* The robust mutex inside a crew_lock (shared_lock.c). */
pthread_mutex_t *crew__lock_mutex(crew_lock *l);

#endif
