/* _frame.h — the byte format of one Python object in crew shared memory (a frame) and its bounds-checked parse, free of Python so that a fuzzer drives it (tests/fuzz/fuzz_codec.c). */
#ifndef CREW_PY_FRAME_H
#define CREW_PY_FRAME_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A frame: one Python object in shared memory, the same for task arguments
 * and results (in a pool's arena), queue items (in a ring) and shared dict
 * keys and values. Every integer little-endian.
 *
 *   byte 0   kind   'P' pickle, 'B' bytes, 'A' bytearray, 'S' str (utf-8),
 *                   'I' int64, 'F' float64
 *   byte 1   flags  the task path's F_CALL/F_CHUNK/F_INIT/F_CHUNK1
 *                   (crew._runtime); 0 for a shared object
 *   'B' 'A' 'S'     the bytes from byte 2 on
 *   'I' 'F'         8 bytes from byte 2 on
 *   'P'      bytes 2-3 zero, nbufs u32 at 4, pickle_len u64 at 8 (16 bytes),
 *            then nbufs x (offset u64, length u64), then the pickle
 *            (protocol 5), then each out-of-band buffer at its offset from
 *            the frame's start, 64-byte aligned (zero padding between)
 *
 * A buffer of the pickle (a numpy array's data, a large bytes argument)
 * goes out of band when it is at least CREW_FRAME_OOB_MIN bytes, up to
 * CREW_FRAME_MAX_OOB of them: it is copied once into shared memory (by the
 * writer of the frame: crew_out_alloc, a queue's putv) and the reader
 * unpickles it as a view of the frame, no copy. The fast kinds (exact
 * bytes, bytearray, str, an int that fits 64 bits, float; a contiguous
 * memoryview goes as bytes) skip pickle altogether.
 *
 * Thread pools do not frame their tasks: their payload is a token, b"T" or
 * b"K" and a u64 key (crew._runtime.token), never parsed as a frame.
 *
 * A frame read from shared memory is untrusted (another process wrote it,
 * and may still be writing): crew__frame_parse reads its header and table
 * once, into f, and checks every kind, size, count, length and offset
 * against the frame's size; python/crew/_codec.c decodes from f only.
 */

#define CREW_FRAME_HDR 16              /* a 'P' frame's header */
#define CREW_FRAME_ALIGN 64            /* out-of-band buffers, from the frame's start */
#define CREW_FRAME_OOB_MIN (64 * 1024) /* buffers from this size go out of band */
#define CREW_FRAME_MAX_OOB 24          /* at most this many per frame */

/* A parsed frame: offsets from its start, each range inside it. */
typedef struct {
    char kind;
    unsigned char flags;
    size_t body, body_len;     /* the fast kinds: their bytes (8 for 'I', 'F') */
    uint32_t nbufs;            /* 'P': out-of-band buffers */
    size_t pickle, pickle_len; /* 'P': the pickle */
    uint64_t buf[CREW_FRAME_MAX_OOB][2]; /* 'P': each buffer's offset and length */
} crew__frame;

static inline uint32_t crew__frame_u32(const unsigned char *u)
{
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static inline uint64_t crew__frame_u64(const unsigned char *u)
{
    return (uint64_t)crew__frame_u32(u) | (uint64_t)crew__frame_u32(u + 4) << 32;
}

static inline void crew__frame_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void crew__frame_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/*
 * Parses the frame at p (len bytes) into f, reading each byte of its header
 * and table once. Returns 0, -ENODATA for an empty frame, or -EINVAL for
 * one that breaks the format (an unknown kind, a scalar not 8 bytes, a
 * 'P' header cut short or not zero-padded, more than CREW_FRAME_MAX_OOB
 * buffers, a pickle or buffer that does not lie inside the frame). On 0,
 * every range f names lies inside the len bytes at p.
 */
static inline int crew__frame_parse(const char *p, size_t len, crew__frame *f)
{
    unsigned char h[CREW_FRAME_HDR];
    if (len == 0)
        return -ENODATA;
    if (len < 2)
        return -EINVAL;
    memcpy(h, p, len < CREW_FRAME_HDR ? len : CREW_FRAME_HDR);
    f->kind = (char)h[0];
    f->flags = h[1];
    f->body = 2;
    f->body_len = len - 2;
    f->nbufs = 0;
    f->pickle = f->pickle_len = 0;
    switch (f->kind) {
    case 'B':
    case 'A':
    case 'S':
        return 0;
    case 'I':
    case 'F':
        return f->body_len == 8 ? 0 : -EINVAL;
    case 'P':
        break;
    default:
        return -EINVAL;
    }
    if (len < CREW_FRAME_HDR || h[2] || h[3])
        return -EINVAL;
    uint32_t nb = crew__frame_u32(h + 4);
    uint64_t plen = crew__frame_u64(h + 8);
    if (nb > CREW_FRAME_MAX_OOB)
        return -EINVAL;
    size_t start = CREW_FRAME_HDR + 16 * (size_t)nb;
    if (start > len || plen > len - start)
        return -EINVAL;
    unsigned char t[16 * CREW_FRAME_MAX_OOB];
    memcpy(t, p + CREW_FRAME_HDR, 16 * (size_t)nb);
    for (uint32_t i = 0; i < nb; i++) {
        uint64_t off = crew__frame_u64(t + 16 * i), ln = crew__frame_u64(t + 16 * i + 8);
        if (off > len || ln > len - off)
            return -EINVAL;
        f->buf[i][0] = off;
        f->buf[i][1] = ln;
    }
    f->nbufs = nb;
    f->pickle = start;
    f->pickle_len = (size_t)plen;
    f->body = f->body_len = 0;
    return 0;
}

#endif
