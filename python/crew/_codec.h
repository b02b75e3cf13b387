/* _codec.h — Python objects to and from frames (_frame.h: the one byte format of a Python object in crew shared memory), for both extension modules. */
#ifndef CREW_PY_CODEC_H
#define CREW_PY_CODEC_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "_frame.h" /* the format, and its parse */

#define CREW_CODEC_MAX_IOV (2 + 2 * CREW_FRAME_MAX_OOB)

/* An encoded frame: iovs pointing into objects it keeps, until released. */
typedef struct {
    struct iovec iov[CREW_CODEC_MAX_IOV];
    PyObject *src[CREW_CODEC_MAX_IOV]; /* an object whose buffer is exactly iov[i], or NULL */
    int n;
    size_t len; /* the frame's length: the sum of the iovs */
    unsigned char head[CREW_FRAME_HDR + 16 * CREW_FRAME_MAX_OOB]; /* header and table */
    PyObject *keep[3]; /* the pickle, the list of out-of-band buffers, the object */
    int nkeep;
    Py_buffer view; /* a bytearray's or memoryview's export (has_view), so that
                     * it is neither resized nor released while the frame is
                     * written (a put releases the GIL) */
    int has_view;
} crew__codec_enc;

/*
 * Encodes obj as one frame with flags in byte 1. dumps is pickle.dumps or a
 * function of its signature, called as dumps(obj, 5) or, with oob,
 * dumps(obj, 5, buffer_callback=cb) (cb keeps buffers of _frame.h's policy
 * out of band). Returns 0, or -1 with a Python error set (what dumps
 * raised; TypeError when it returns no bytes). Release e either way.
 */
int crew__codec_encode(PyObject *obj, int flags, PyObject *dumps, int oob, crew__codec_enc *e);

/* Drops what an encoded frame keeps (safe on a zeroed or failed one). */
void crew__codec_release(crew__codec_enc *e);

/* The frame as one buffer: iov[0] itself when it is the only piece, else
 * joined into small (cap bytes) when it fits, else into PyMem memory set
 * in *owned (free it with PyMem_Free). NULL with MemoryError set. */
char *crew__codec_join(crew__codec_enc *e, char *small, size_t cap, char **owned);

/* The frame as a list of bytes-like objects (the pickle and out-of-band
 * buffers as they are, no copy), for crew._core's write_parts. */
PyObject *crew__codec_parts(crew__codec_enc *e);

/*
 * Decodes the frame at p (len bytes) with loads (pickle.loads), from what
 * crew__frame_parse read once (p may be shared memory still being written).
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
