/* ring.h — single-producer/single-consumer rings of fixed-size messages in shared memory. */
#ifndef CREW_RING_H
#define CREW_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest ring. Indices are masked with this too, whatever the ring's
 * own mask (in shared memory, where a task can overwrite it) says: a ring in
 * shared memory is laid out with room for this many messages, so no index a
 * worker forges can reach past it. */
#define CREW__RING_MAXCAP 256u

/* Bytes of payload carried inside a message; larger payloads go to the arena. */
#define CREW__INLINE 88

/* Message flags. */
enum {
    CREW__MSG_ARENA = 1u << 0,  /* payload at arena offset `off`, else inline   */
    CREW__MSG_CHUNK = 1u << 1,  /* payload packs several map items             */
    CREW__MSG_QUIT = 1u << 2,   /* request: finish and exit the worker loop     */
    CREW__MSG_INIT = 1u << 3,   /* request: run the initializer                 */
    CREW__MSG_KEEP = 1u << 4,   /* response: the worker kept the argument: do
                                   not free it, the worker will */
    CREW__MSG_HELLO = 1u << 5,  /* response: the worker is up and takes tasks   */
};

/* One message, 128 bytes: a request (parent to worker) or a response. */
typedef struct crew__msg {
    uint64_t tag;       /* the parent's id of the task, echoed back            */
    uint64_t fn_hash;   /* request: hash of the task's name                     */
    uint64_t len;       /* payload bytes                                        */
    uint64_t off;       /* arena offset when CREW__MSG_ARENA                    */
    uint32_t flags;
    int32_t status;     /* response: 0 or the task's error code                 */
    uint8_t data[CREW__INLINE];
} crew__msg;
_Static_assert(sizeof(crew__msg) == 128, "crew__msg must be 128 bytes");

/*
 * The ring. head is written by the consumer only, tail by the producer only,
 * so a process that dies on either side leaves the other side's index intact:
 * nothing here is a lock. Indices grow without wrapping; slot = index & mask.
 */
typedef struct crew__ring {
    _Alignas(64) _Atomic uint64_t head;  /* next index to consume          */
    _Alignas(64) _Atomic uint64_t tail;  /* next index to produce          */
    _Alignas(64) uint32_t cap;           /* a power of two                 */
    uint32_t mask;
    _Alignas(64) crew__msg msgs[];
} crew__ring;

/* Bytes a ring of cap messages occupies. */
size_t crew__ring_bytes(uint32_t cap);

/* Initialises a ring in place; cap must be a power of two, at most
 * CREW__RING_MAXCAP. */
void crew__ring_init(crew__ring *r, uint32_t cap);

/* Producer: copies m in; returns false when full. */
bool crew__ring_push(crew__ring *r, const crew__msg *m);

/* Consumer: copies the oldest message out and consumes it; false when empty. */
bool crew__ring_pop(crew__ring *r, crew__msg *m);

/*
 * The same ring, driven by a side that does not trust the other (the parent;
 * the other side is a worker that any task can corrupt). That side keeps its
 * own index (*tail as producer, *head as consumer) and only publishes it to
 * the ring; the other side's index is read but never trusted past the
 * largest ring, and slots are masked to it, so no value a worker writes can
 * make these calls touch memory outside the ring.
 */

/* Producer: copies m in at *tail and advances it; false when the ring is
 * full, or when the consumer's head is impossible (ahead of *tail). */
bool crew__ring_push_own(crew__ring *r, uint64_t *tail, const crew__msg *m);

/* Consumer: copies the message at *head out and advances it. Returns 1, 0
 * when empty, or -1 when the producer's tail is impossible (behind *head,
 * or more than a ring ahead): the producer broke the protocol. */
int crew__ring_pop_own(crew__ring *r, uint64_t *head, crew__msg *m);

/* Number of messages waiting (either side may ask). */
static inline uint64_t crew__ring_count(crew__ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    return t - h;
}

#endif
