/* _codec.h — the one byte format of a Python object in crew shared memory (task arguments and results, queue items, dict keys and values), for both extension modules. */
#ifndef CREW_PY_CODEC_H
#define CREW_PY_CODEC_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * A frame: one Python object in shared memory. Every integer little-endian.
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
 * goes out of band when it is at least CREW_CODEC_OOB_MIN bytes, up to
 * CREW_CODEC_MAX_OOB of them: it is copied once into shared memory (by the
 * writer of the frame: crew_out_alloc, a queue's putv) and the reader
 * unpickles it as a view of the frame, no copy. The fast kinds (exact
 * bytes, bytearray, str, an int that fits 64 bits, float; a contiguous
 * memoryview goes as bytes) skip pickle altogether.
 *
 * Thread pools do not frame their tasks: their payload is a token, b"T" or
 * b"K" and a u64 key (crew._runtime.token), never passed to the decoder.
 *
 * A frame read from shared memory is untrusted (another process wrote
 * it): crew__codec_decode checks every length, offset and kind against the
 * frame's size and raises ValueError("crew: malformed shared message")
 * rather than read outside it.
 */

#define CREW_CODEC_HDR 16              /* a 'P' frame's header */
#define CREW_CODEC_ALIGN 64            /* out-of-band buffers, from the frame's start */
#define CREW_CODEC_OOB_MIN (64 * 1024) /* buffers from this size go out of band */
#define CREW_CODEC_MAX_OOB 24          /* at most this many per frame */
#define CREW_CODEC_MAX_IOV (2 + 2 * CREW_CODEC_MAX_OOB)

/* An encoded frame: iovs pointing into objects it keeps, until released. */
typedef struct {
    struct iovec iov[CREW_CODEC_MAX_IOV];
    PyObject *src[CREW_CODEC_MAX_IOV]; /* an object whose buffer is exactly iov[i], or NULL */
    int n;
    size_t len; /* the frame's length: the sum of the iovs */
    unsigned char head[CREW_CODEC_HDR + 16 * CREW_CODEC_MAX_OOB]; /* header and table */
    PyObject *keep[3]; /* the pickle, the list of out-of-band buffers, the object */
    int nkeep;
} crew_codec_enc;

/*
 * Encodes obj as one frame with flags in byte 1. dumps is pickle.dumps or a
 * function of its signature, called as dumps(obj, 5) or, with oob,
 * dumps(obj, 5, buffer_callback=cb) (cb keeps buffers of the policy above
 * out of band). Returns 0, or -1 with a Python error set (what dumps
 * raised; TypeError when it returns no bytes). Release e either way.
 */
int crew__codec_encode(PyObject *obj, int flags, PyObject *dumps, int oob, crew_codec_enc *e);

/* Drops what an encoded frame keeps (safe on a zeroed or failed one). */
void crew__codec_release(crew_codec_enc *e);

/* The frame as one buffer: iov[0] itself when it is the only piece, else
 * joined into small (cap bytes) when it fits, else into PyMem memory set
 * in *owned (free it with PyMem_Free). NULL with MemoryError set. */
char *crew__codec_join(crew_codec_enc *e, char *small, size_t cap, char **owned);

/* The frame as a list of bytes-like objects (the pickle and out-of-band
 * buffers as they are, no copy), for crew._core's write_parts. */
PyObject *crew__codec_parts(crew_codec_enc *e);

/*
 * Decodes the frame at p (len bytes) with loads (pickle.loads).
 * base: an object whose buffer is exactly the len bytes at p (a memoryview,
 * a bytearray), out of which the out-of-band buffers are sliced (views that
 * keep it alive); NULL: the frame is first copied into a bytearray of its
 * own when it has any. *flags (if not NULL) gets byte 1. Returns a new
 * reference, or NULL with ValueError("crew: empty shared message" or
 * "crew: malformed shared message") for a frame that breaks the format,
 * or what unpickling raised.
 */
PyObject *crew__codec_decode(const char *p, size_t len, PyObject *base, PyObject *loads,
                             int *flags);

#endif
