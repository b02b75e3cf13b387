/* shared_msgq.h — a bounded ring of variable-size messages in shared memory: the core of crew_queue and crew_pipe. */
#ifndef CREW_SHARED_MSGQ_H
#define CREW_SHARED_MSGQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "shared/region.h"

/*
 * Records are [u64 length][payload, padded to 8] at byte positions that grow
 * without wrapping (offset = position % cap); a record that would cross the
 * end is preceded by a wrap marker. A robust mutex serialises every change;
 * a put publishes with one store of `tail` after the bytes are written and
 * a get consumes with one store of `head`, so a process killed in either
 * leaves the message wholly there or wholly absent. `items` is repaired by
 * the next locker (a walk from head to tail).
 */
typedef struct crew__mq {
    pthread_mutex_t mu;
    uint64_t cap;                  /* data bytes, a multiple of 8 */
    uint64_t max_items;            /* 0: no count limit */
    _Atomic uint64_t head, tail;   /* written locked; read unlocked to spin */
    uint64_t items;
    _Atomic uint32_t closed;
    _Atomic uint32_t get_seq, put_seq;        /* futex words */
    _Atomic uint32_t get_waiters, put_waiters;
    _Alignas(64) unsigned char data[];
} crew__mq;

/* Bytes of a crew__mq with cap data bytes. */
size_t crew__mq_bytes(size_t cap);

/* Initialises in zeroed shared memory; cap a multiple of 8 (>= 64). */
int crew__mq_init(crew__mq *q, size_t cap, size_t max_items);

/* The queue's data bytes, read once from q (in sh's region) and checked
 * against this process's own copy of the region's size; 0 when q cannot
 * be a queue there (its bytes were overwritten). The largest message is
 * cap / 2 - 16. */
uint64_t crew__mq_cap(const crew__mq *q, const crew__sh *sh);

/*
 * Every call below reads the queue's size from the side (never again from
 * shared memory) and answers -EBADMSG when head, tail or a record cannot
 * be the queue's: the region is memory any holder can write.
 * Who is on the other side, for -EPIPE: peer_tag < 0 (queue): any other
 * process, once one has held the region; >= 0 (pipe): holders of that tag.
 */
typedef struct crew__mq_side {
    crew__sh *sh;
    int peer_tag;
    uint64_t cap;                  /* crew__mq_cap(), 0: corrupt (-EBADMSG) */
} crew__mq_side;

/* Puts n messages; message i is iovs[i], iovcnt[i] pieces. Returns how many
 * were put, or an error when none. */
int crew__mq_put(crew__mq *q, crew__mq_side side, size_t n, const struct iovec *const *iovs,
                 const int *iovcnt, uint64_t deadline);

/* Gets: with alloc, one message into a malloc()ed *alloc; else up to max
 * messages back to back into buf (cap bytes), lengths in lens. Returns the
 * count (>= 1) or an error. */
int crew__mq_get(crew__mq *q, crew__mq_side side, size_t max, void *buf, size_t cap,
                 size_t *lens, void **alloc, uint64_t deadline);

/* 1 when a message is waiting, 0 at the deadline, -EPIPE. */
int crew__mq_poll(crew__mq *q, crew__mq_side side, uint64_t deadline);

/* Closes for everyone: puts fail, gets drain then fail; wakes all. */
void crew__mq_close(crew__mq *q, crew__mq_side side);

size_t crew__mq_items(crew__mq *q, crew__mq_side side);

#endif
