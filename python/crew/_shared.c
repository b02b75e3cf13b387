/* _shared.c — crew._shared: the CPython binding of libcrew's shared state.
 *
 * One type, Handle, holds one process's handle to one shared object of any
 * kind (lock, semaphore, event, condition, barrier, queue, pipe end, array,
 * dict). The Python classes of crew/shared.py subclass it and alias its
 * methods: the hot paths (queue put/get, pipe send/recv, dict get/set)
 * run here without a Python frame.
 *
 * Messages (queue items, dict keys and values) are frames of crew's one
 * codec (_frame.h, _codec.h; shared with task arguments and results): a bytes payload
 * crosses as it is, and a large numpy array's data is copied once into the
 * ring (putv) and read back in place. Pipe messages are raw (send = pickle,
 * send_bytes = bytes), as multiprocessing's.
 *
 * Every call that may wait releases the GIL; waits without a bound run in
 * slices of 0.2 s so that signals (Ctrl-C) are seen.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "crew.h"
#include "_codec.h"
#include "_errors.h"
#include "shared/region.h" /* internal: holders, for peer counts */

#define SLICE 0.2
#define SMALL 16384

typedef struct {
    PyObject_HEAD
    int kind;
    int sub;
    void *h;
    Py_ssize_t exports;
    struct shared_state *st; /* its module's state (its type holds the module) */
} Handle;

/* The module's state (multi-phase init: one per interpreter, no globals). */
struct shared_state {
    PyTypeObject *handle_type;
    PyObject *pickle_dumps, *pickle_loads;
    PyObject *QueueFull, *QueueEmpty, *BrokenQueue, *OwnerDied; /* set_errors() */
};
typedef struct shared_state shared_state;

static struct PyModuleDef shared_module;

/* The state of the module that defined a handle's type, found once when
 * the handle is made (Handle_new): its type keeps that module alive. */
#define ST(self) ((self)->st)

/* ------------------------------------------------------------- helpers -- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* block/timeout (multiprocessing style) -> crew timeout: <0 forever. */
static int parse_timeout(int block, PyObject *timeout, double *out)
{
    if (!block) {
        *out = 0;
        return 0;
    }
    if (!timeout || timeout == Py_None) {
        *out = -1;
        return 0;
    }
    double t = PyFloat_AsDouble(timeout);
    if (t == -1 && PyErr_Occurred())
        return -1;
    *out = t < 0 ? 0 : t;
    return 0;
}

/* crew's one error mapping (_errors.h), for this module's calls. */
static PyObject *raise_rc(int rc)
{
    return crew_py_raise(rc, NULL);
}

static int check_kind(Handle *self, int kind)
{
    if (!self->h) {
        PyErr_SetString(PyExc_ValueError, "shared object is closed");
        return -1;
    }
    if (self->kind != kind) {
        PyErr_SetString(PyExc_TypeError, "wrong kind of shared object");
        return -1;
    }
    return 0;
}

/* Calls fn(self->h, ctx, slice) in slices with the GIL released until it
 * returns something other than -EAGAIN or the timeout passes. Returns the
 * rc, or INT_MIN with a Python error set (a signal handler raised). */
typedef int (*wait_fn)(void *h, void *ctx, double t);
static int wait_sliced(void *h, void *ctx, wait_fn fn, double timeout)
{
    /* First without waiting and with the GIL held: the common case (room
     * to put, a message to get) then costs no GIL hand-off at all. */
    int rc = fn(h, ctx, 0);
    if (rc != -EAGAIN || timeout == 0)
        return rc;
    double deadline = timeout > 0 ? now_s() + timeout : 0;
    for (;;) {
        double t = SLICE;
        if (timeout > 0) {
            double left = deadline - now_s();
            if (left < 0)
                left = 0;
            if (left < t)
                t = left;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = fn(h, ctx, t);
        Py_END_ALLOW_THREADS
        if (rc != -EAGAIN)
            return rc;
        if (timeout > 0 && now_s() >= deadline)
            return rc;
        if (PyErr_CheckSignals() < 0)
            return INT_MIN;
    }
}

/* ------------------------------------------------------------ encoding -- */

/* Queue items, dict keys and values cross as frames of crew's one codec
 * (_codec.h), as task arguments and results do; shared objects put flags 0
 * in them and pickle with plain pickle.dumps. */
typedef crew__codec_enc enc_t;

/* Encodes obj (oob: large buffers out of band, for a queue; else all in
 * band, as a dict key must be). 0 or -1 (Python error); release e either way. */
static int encode(shared_state *st, PyObject *obj, enc_t *e, int oob)
{
    return crew__codec_encode(obj, 0, st->pickle_dumps, oob, e);
}

static void enc_release(enc_t *e)
{
    crew__codec_release(e);
}

static char *enc_join(enc_t *e, char *small, size_t cap, char **owned)
{
    return crew__codec_join(e, small, cap, owned);
}

/* Decodes a frame at p (len bytes). owner: a bytearray whose contents are
 * exactly p (out-of-band buffers then point into it), or NULL. */
static PyObject *decode(shared_state *st, const char *p, size_t len, PyObject *owner)
{
    return crew__codec_decode(p, len, owner, st->pickle_loads, NULL);
}

/* -------------------------------------------------------- Handle basics -- */

static void free_handle(Handle *self)
{
    void *h = self->h;
    self->h = NULL;
    if (!h)
        return;
    switch (self->kind) {
    case CREW_SHARED_ARRAY: crew_array_free(h); break;
    case CREW_SHARED_QUEUE: crew_queue_free(h); break;
    case CREW_SHARED_PIPE: crew_pipe_free(h); break;
    case CREW_SHARED_DICT: crew_dict_free(h); break;
    case CREW_SHARED_LOCK: crew_lock_free(h); break;
    case CREW_SHARED_SEMAPHORE: crew_semaphore_free(h); break;
    case CREW_SHARED_EVENT: crew_event_free(h); break;
    case CREW_SHARED_CONDITION: crew_condition_free(h); break;
    case CREW_SHARED_BARRIER: crew_barrier_free(h); break;
    }
}

static void Handle_dealloc(Handle *self)
{
    /* a Python subclass's dealloc clears its dict and weakrefs and drops
     * the type; this is the base part */
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    free_handle(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp); /* a heap type: its instances hold a reference */
}

static int Handle_traverse(Handle *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self)); /* a heap type */
    return 0;
}

/* _create(kind, a=0, b=0, meta=None): makes a new object in this handle.
 * lock: a=recursive; semaphore: a=value, b=max; barrier: a=parties;
 * queue: a=max_items, b=bytes; array: a=bytes, meta; dict: a=max_items,
 * b=max_bytes. */
static PyObject *Handle_create(Handle *self, PyObject *args)
{
    int kind;
    unsigned long long a = 0, b = 0;
    const char *meta = NULL;
    if (!PyArg_ParseTuple(args, "i|KKz", &kind, &a, &b, &meta))
        return NULL;
    if (self->h) {
        PyErr_SetString(PyExc_RuntimeError, "handle already open");
        return NULL;
    }
    int rc;
    void *h = NULL;
    switch (kind) {
    case CREW_SHARED_LOCK: rc = crew_lock_create((crew_lock **)&h, (int)a); break;
    case CREW_SHARED_SEMAPHORE:
        rc = crew_semaphore_create((crew_semaphore **)&h, (unsigned)a, (unsigned)b);
        break;
    case CREW_SHARED_EVENT: rc = crew_event_create((crew_event **)&h); break;
    case CREW_SHARED_CONDITION: rc = crew_condition_create((crew_condition **)&h); break;
    case CREW_SHARED_BARRIER: rc = crew_barrier_create((crew_barrier **)&h, (unsigned)a); break;
    case CREW_SHARED_QUEUE: rc = crew_queue_create((crew_queue **)&h, a, b); break;
    case CREW_SHARED_ARRAY: rc = crew_array_create((crew_array **)&h, a, meta); break;
    case CREW_SHARED_DICT: rc = crew_dict_create((crew_dict **)&h, a, b); break;
    default:
        PyErr_SetString(PyExc_ValueError, "bad kind");
        return NULL;
    }
    if (rc) {
        if (rc == -EINVAL) {
            PyErr_SetString(PyExc_ValueError, "invalid arguments for a shared object");
            return NULL;
        }
        return raise_rc(rc);
    }
    self->kind = kind;
    self->sub = 0;
    self->h = h;
    Py_RETURN_NONE;
}

/* _create_pipe(other, bytes): self becomes end 0, other end 1. */
static PyObject *Handle_create_pipe(Handle *self, PyObject *args)
{
    Handle *other;
    unsigned long long bytes = 0;
    if (!PyArg_ParseTuple(args, "O|K", &other, &bytes))
        return NULL;
    if (!PyObject_TypeCheck((PyObject *)other, ST(self)->handle_type)) {
        PyErr_SetString(PyExc_TypeError, "_create_pipe needs another handle");
        return NULL;
    }
    if (self->h || other->h) {
        PyErr_SetString(PyExc_RuntimeError, "handle already open");
        return NULL;
    }
    crew_pipe *a, *b;
    int rc = crew_pipe_create(&a, &b, bytes);
    if (rc)
        return raise_rc(rc);
    self->kind = other->kind = CREW_SHARED_PIPE;
    self->h = a;
    self->sub = 0;
    other->h = b;
    other->sub = 1;
    Py_RETURN_NONE;
}

static int get_ref(Handle *self, crew_shared_ref *ref)
{
    if (!self->h) {
        PyErr_SetString(PyExc_ValueError, "shared object is closed");
        return -1;
    }
    int rc = -EINVAL;
    switch (self->kind) {
    case CREW_SHARED_ARRAY: rc = crew_array_ref(self->h, ref); break;
    case CREW_SHARED_QUEUE: rc = crew_queue_ref(self->h, ref); break;
    case CREW_SHARED_PIPE: rc = crew_pipe_ref(self->h, ref); break;
    case CREW_SHARED_DICT: rc = crew_dict_ref(self->h, ref); break;
    case CREW_SHARED_LOCK: rc = crew_lock_ref(self->h, ref); break;
    case CREW_SHARED_SEMAPHORE: rc = crew_semaphore_ref(self->h, ref); break;
    case CREW_SHARED_EVENT: rc = crew_event_ref(self->h, ref); break;
    case CREW_SHARED_CONDITION: rc = crew_condition_ref(self->h, ref); break;
    case CREW_SHARED_BARRIER: rc = crew_barrier_ref(self->h, ref); break;
    }
    if (rc) {
        raise_rc(rc);
        return -1;
    }
    return 0;
}

static PyObject *Handle_ref(Handle *self, PyObject *Py_UNUSED(unused))
{
    crew_shared_ref ref;
    if (get_ref(self, &ref))
        return NULL;
    return PyBytes_FromStringAndSize((const char *)&ref, sizeof ref);
}

/* _key(): (kind, sub, dev, ino): the object's identity in any process. */
static PyObject *Handle_key(Handle *self, PyObject *Py_UNUSED(unused))
{
    crew_shared_ref ref;
    if (get_ref(self, &ref))
        return NULL;
    return Py_BuildValue("(IIKK)", ref.kind, ref.sub, (unsigned long long)ref.dev,
                         (unsigned long long)ref.id);
}

/* _open(ref_bytes): opens the object a ref names in this handle. */
static PyObject *Handle_open(Handle *self, PyObject *arg)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE))
        return NULL;
    crew_shared_ref ref;
    if (b.len != (Py_ssize_t)sizeof ref) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "a crew shared ref is 40 bytes");
        return NULL;
    }
    memcpy(&ref, b.buf, sizeof ref);
    PyBuffer_Release(&b);
    if (self->h) {
        PyErr_SetString(PyExc_RuntimeError, "handle already open");
        return NULL;
    }
    void *h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    switch (ref.kind) {
    case CREW_SHARED_ARRAY: rc = crew_array_open((crew_array **)&h, &ref); break;
    case CREW_SHARED_QUEUE: rc = crew_queue_open((crew_queue **)&h, &ref); break;
    case CREW_SHARED_PIPE: rc = crew_pipe_open((crew_pipe **)&h, &ref); break;
    case CREW_SHARED_DICT: rc = crew_dict_open((crew_dict **)&h, &ref); break;
    case CREW_SHARED_LOCK: rc = crew_lock_open((crew_lock **)&h, &ref); break;
    case CREW_SHARED_SEMAPHORE: rc = crew_semaphore_open((crew_semaphore **)&h, &ref); break;
    case CREW_SHARED_EVENT: rc = crew_event_open((crew_event **)&h, &ref); break;
    case CREW_SHARED_CONDITION: rc = crew_condition_open((crew_condition **)&h, &ref); break;
    case CREW_SHARED_BARRIER: rc = crew_barrier_open((crew_barrier **)&h, &ref); break;
    default: rc = -EINVAL;
    }
    Py_END_ALLOW_THREADS
    if (rc) {
        if (rc == -ESRCH || rc == -EBADF || rc == -ENOENT) {
            PyErr_Format(PyExc_FileNotFoundError,
                         "crew shared object (kind %u) can no longer be opened: process %d, "
                         "which made the reference, no longer holds it (keep the object "
                         "alive in the sender until the receiver has opened it)",
                         ref.kind, (int)ref.owner_pid);
            return NULL;
        }
        return raise_rc(rc);
    }
    self->kind = (int)ref.kind;
    self->sub = (int)ref.sub;
    self->h = h;
    Py_RETURN_NONE;
}

static PyObject *Handle_free(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (self->exports > 0) {
        PyErr_SetString(PyExc_BufferError,
                        "cannot close a shared array while views of it exist");
        return NULL;
    }
    free_handle(self);
    Py_RETURN_NONE;
}

/* _others(): how many other live processes hold the object. */
static PyObject *Handle_others(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (!self->h)
        return PyLong_FromLong(0);
    int n;
    Py_BEGIN_ALLOW_THREADS
    n = crew__sh_live_peers((crew__sh *)self->h, -1);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(n);
}

/* _opens(): how many handles have been attached to the object so far. */
static PyObject *Handle_opens(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (!self->h)
        return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(crew__sh_opens((crew__sh *)self->h));
}

static PyObject *Handle_get_closed(Handle *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->h == NULL);
}
static PyObject *Handle_get_kind(Handle *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->kind);
}
static PyObject *Handle_get_sub(Handle *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->sub);
}

/* ------------------------------------------------- locks and friends -- */

static int lock_acq_fn(void *h, void *Py_UNUSED(ctx), double t) { return crew_lock_acquire(h, t); }
static int sem_acq_fn(void *h, void *Py_UNUSED(ctx), double t) { return crew_semaphore_acquire(h, t); }
static int ev_wait_fn(void *h, void *Py_UNUSED(ctx), double t) { return crew_event_wait(h, t); }

#define WAIT_METHOD(name, KIND, fn)                                                   \
    static PyObject *name(Handle *self, PyObject *arg)                               \
    {                                                                                \
        double t = PyFloat_AsDouble(arg);                                            \
        if (t == -1 && PyErr_Occurred())                                             \
            return NULL;                                                             \
        if (check_kind(self, KIND))                                                  \
            return NULL;                                                             \
        int rc = wait_sliced(self->h, NULL, fn, t);                                  \
        if (rc == INT_MIN)                                                           \
            return NULL;                                                             \
        return PyLong_FromLong(rc);                                                  \
    }
/* each returns the C rc: 0, -EAGAIN, CREW_EOWNERDEAD, -EDEADLK ... */
WAIT_METHOD(Handle_lock_acquire, CREW_SHARED_LOCK, lock_acq_fn)
WAIT_METHOD(Handle_sem_acquire, CREW_SHARED_SEMAPHORE, sem_acq_fn)
WAIT_METHOD(Handle_event_wait, CREW_SHARED_EVENT, ev_wait_fn)

static PyObject *Handle_lock_release(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_LOCK))
        return NULL;
    return PyLong_FromLong(crew_lock_release(self->h));
}

static PyObject *Handle_sem_release(Handle *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_SEMAPHORE))
        return NULL;
    return PyLong_FromLong(crew_semaphore_release(self->h, (unsigned)n));
}

static PyObject *Handle_sem_value(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_SEMAPHORE))
        return NULL;
    return PyLong_FromUnsignedLong(crew_semaphore_value(self->h));
}

static PyObject *Handle_event_op(Handle *self, PyObject *arg)
{
    long op = PyLong_AsLong(arg);
    if (op == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_EVENT))
        return NULL;
    int rc = op == 0 ? crew_event_is_set(self->h) : op == 1 ? crew_event_set(self->h)
                                                            : crew_event_clear(self->h);
    return PyLong_FromLong(rc);
}

/* _cond_wait(lock_handle, timeout) */
static PyObject *Handle_cond_wait(Handle *self, PyObject *args)
{
    Handle *lock;
    double t;
    if (!PyArg_ParseTuple(args, "Od", &lock, &t))
        return NULL;
    if (check_kind(self, CREW_SHARED_CONDITION) || check_kind(lock, CREW_SHARED_LOCK))
        return NULL;
    int rc;
    if (t == 0) {
        rc = crew_condition_wait(self->h, lock->h, 0);
    } else {
        /* one wait with the GIL released; a forever wait in slices (a slice
         * that times out counts as a spurious wake-up: callers loop) */
        Py_BEGIN_ALLOW_THREADS
        rc = crew_condition_wait(self->h, lock->h, t < 0 ? SLICE * 5 : t);
        Py_END_ALLOW_THREADS
        if (t < 0 && rc == -EAGAIN) {
            if (PyErr_CheckSignals() < 0)
                return NULL;
            rc = 0;
        }
    }
    return PyLong_FromLong(rc);
}

static PyObject *Handle_cond_notify(Handle *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_CONDITION))
        return NULL;
    int rc = n < 0 ? crew_condition_notify_all(self->h) : crew_condition_notify(self->h, (int)n);
    return PyLong_FromLong(rc);
}

static PyObject *Handle_barrier_wait(Handle *self, PyObject *arg)
{
    double t = PyFloat_AsDouble(arg);
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_BARRIER))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = crew_barrier_wait(self->h, t);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *Handle_barrier_op(Handle *self, PyObject *arg)
{
    long op = PyLong_AsLong(arg);
    if (op == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_BARRIER))
        return NULL;
    int rc = op == 0 ? (int)crew_barrier_parties(self->h) : op == 1 ? crew_barrier_abort(self->h)
                                                                    : crew_barrier_reset(self->h);
    return PyLong_FromLong(rc);
}

/* ---------------------------------------------------------------- queue -- */

typedef struct {
    enc_t *e;
} qput_ctx;

static int qput_fn(void *h, void *ctx, double t)
{
    enc_t *e = ctx;
    return crew_queue_putv(h, e->iov, e->n, t);
}

static PyObject *queue_put_error(Handle *self, int rc, size_t len)
{
    if (rc == -EAGAIN)
        PyErr_SetNone(ST(self)->QueueFull);
    else if (rc == CREW_ECLOSED)
        PyErr_SetString(PyExc_ValueError, "the queue was shut down");
    else if (rc == -EPIPE)
        PyErr_SetString(PyExc_BrokenPipeError,
                        "the queue is full and no other process holds it any more");
    else if (rc == CREW_ETOOBIG)
        PyErr_Format(PyExc_ValueError,
                     "message of %zu bytes is too big for this queue (at most half its "
                     "buffer: give crew.Queue(maxbytes=...) a larger buffer)",
                     len);
    else if (rc != INT_MIN)
        raise_rc(rc);
    return NULL;
}

static PyObject *queue_get_error(shared_state *st, int rc)
{
    if (rc == -EAGAIN)
        PyErr_SetNone(st->QueueEmpty);
    else if (rc == -EPIPE)
        PyErr_SetString(st->BrokenQueue, "the queue is empty and can get nothing more: it was "
                                     "shut down, or every other process that held it is gone");
    else if (rc != INT_MIN)
        raise_rc(rc);
    return NULL;
}

/* A fast call's arguments as the tuple and dict PyArg_ParseTupleAndKeywords
 * takes (the general case of the fast paths below). */
static int fastcall_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                         PyObject **tup, PyObject **kw)
{
    *kw = NULL;
    *tup = PyTuple_New(nargs);
    if (!*tup)
        return -1;
    for (Py_ssize_t i = 0; i < nargs; i++)
        PyTuple_SET_ITEM(*tup, i, Py_NewRef(args[i]));
    Py_ssize_t nk = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nk) {
        *kw = PyDict_New();
        for (Py_ssize_t i = 0; *kw && i < nk; i++)
            if (PyDict_SetItem(*kw, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                Py_CLEAR(*kw);
        if (!*kw) {
            Py_CLEAR(*tup);
            return -1;
        }
    }
    return 0;
}

/* put(obj, block=True, timeout=None). put(obj), the usual call, skips the
 * argument parser (a third of a small put's time). */
static PyObject *q_put(Handle *self, PyObject *obj, int block, PyObject *timeout)
{
    double t;
    if (parse_timeout(block, timeout, &t) || check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    enc_t e;
    if (encode(ST(self), obj, &e, 1)) {
        enc_release(&e);
        return NULL;
    }
    int rc;
    if (t == 0 || e.len > 4096) {
        rc = wait_sliced(self->h, &e, qput_fn, t);
    } else {
        rc = crew_queue_putv(self->h, e.iov, e.n, 0); /* most puts find room */
        if (rc == -EAGAIN)
            rc = wait_sliced(self->h, &e, qput_fn, t);
    }
    size_t len = e.len;
    enc_release(&e);
    if (rc)
        return queue_put_error(self, rc, len);
    Py_RETURN_NONE;
}

static PyObject *Handle_q_put(Handle *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    if (nargs == 1 && !kwnames)
        return q_put(self, args[0], 1, Py_None);
    static char *kwlist[] = {"obj", "block", "timeout", NULL};
    PyObject *obj, *timeout = Py_None, *tup, *kw;
    int block = 1;
    if (fastcall_args(args, nargs, kwnames, &tup, &kw) < 0)
        return NULL;
    int ok = PyArg_ParseTupleAndKeywords(tup, kw, "O|pO", kwlist, &obj, &block, &timeout);
    PyObject *r = ok ? q_put(self, obj, block, timeout) : NULL;
    Py_DECREF(tup);
    Py_XDECREF(kw);
    return r;
}

static PyObject *Handle_q_put_nowait(Handle *self, PyObject *obj)
{
    return q_put(self, obj, 0, Py_None);
}

typedef struct {
    char *buf;
    size_t cap, len;
} qget_ctx;

static int qget_fn(void *h, void *ctx, double t)
{
    qget_ctx *c = ctx;
    return crew_queue_get(h, c->buf, c->cap, &c->len, t);
}

static int pget_fn(void *h, void *ctx, double t)
{
    qget_ctx *c = ctx;
    return crew_pipe_recv(h, c->buf, c->cap, &c->len, t);
}

/* Receives one message (queue or pipe): into a small stack buffer, or, when
 * larger, into a bytes object of its size. Returns the decoded object
 * (raw: the bytes themselves, untagged), or NULL with *rcp the error rc. */
static PyObject *recv_one(Handle *self, wait_fn fn, double t, int raw, int *rcp)
{
    char small[SMALL];
    qget_ctx c = {small, sizeof small, 0};
    double deadline = t > 0 ? now_s() + t : 0;
    int rc;
    *rcp = 0;
    if (t != 0) {
        rc = fn(self->h, &c, 0); /* a message is usually there: no GIL switch */
        if (rc == -EAGAIN)
            rc = wait_sliced(self->h, &c, fn, t);
    } else {
        rc = fn(self->h, &c, 0);
    }
    for (;;) {
        if (rc == 0) {
            if (raw)
                return PyBytes_FromStringAndSize(small, (Py_ssize_t)c.len);
            return decode(ST(self), small, c.len, NULL);
        }
        if (rc != -EMSGSIZE) {
            *rcp = rc;
            return NULL;
        }
        /* larger than the stack buffer: take it into an object of its size */
        PyObject *o = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)c.len);
        if (!o)
            return NULL;
        qget_ctx big = {PyByteArray_AS_STRING(o), c.len, 0};
        Py_BEGIN_ALLOW_THREADS
        rc = fn(self->h, &big, 0);
        Py_END_ALLOW_THREADS
        if (rc == 0) {
            PyObject *r;
            if (raw)
                r = PyBytes_FromStringAndSize(big.buf, (Py_ssize_t)big.len);
            else
                r = decode(ST(self), big.buf, big.len, big.len == c.len ? o : NULL);
            Py_DECREF(o);
            return r;
        }
        Py_DECREF(o);
        if (rc == -EMSGSIZE) {
            c.len = big.len;
            continue;
        }
        if (rc != -EAGAIN) {
            *rcp = rc;
            return NULL;
        }
        /* another consumer took it: wait again for what time is left */
        double left = t < 0 ? -1 : t == 0 ? 0 : deadline - now_s();
        if (t > 0 && left <= 0) {
            *rcp = -EAGAIN;
            return NULL;
        }
        c.len = 0;
        rc = wait_sliced(self->h, &c, fn, left);
    }
}

/* get(block=True, timeout=None); get(), the usual call, skips the parser. */
static PyObject *Handle_q_get(Handle *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    PyObject *timeout = Py_None;
    int block = 1;
    double t;
    if (nargs || kwnames) {
        PyObject *tup, *kw;
        if (fastcall_args(args, nargs, kwnames, &tup, &kw) < 0)
            return NULL;
        int ok = PyArg_ParseTupleAndKeywords(tup, kw, "|pO", kwlist, &block, &timeout);
        Py_INCREF(timeout); /* (borrowed from tup or kw, released below) */
        Py_DECREF(tup);
        Py_XDECREF(kw);
        int bad = !ok || parse_timeout(block, timeout, &t);
        Py_DECREF(timeout);
        if (bad)
            return NULL;
    } else {
        t = -1;
    }
    if (check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    int rc;
    PyObject *r = recv_one(self, qget_fn, t, 0, &rc);
    if (!r && rc)
        return queue_get_error(ST(self), rc);
    return r;
}

static PyObject *Handle_q_get_nowait(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    int rc;
    PyObject *r = recv_one(self, qget_fn, 0, 0, &rc);
    if (!r && rc)
        return queue_get_error(ST(self), rc);
    return r;
}

/* put_many(items, block=True, timeout=None): puts every item, in order. */
static PyObject *Handle_q_put_many(Handle *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"items", "block", "timeout", NULL};
    PyObject *items, *timeout = Py_None;
    int block = 1;
    double t;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pO", kwlist, &items, &block, &timeout))
        return NULL;
    if (parse_timeout(block, timeout, &t) || check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    PyObject *seq = PySequence_Fast(items, "put_many needs an iterable");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i = 0;
    PyObject **it = PySequence_Fast_ITEMS(seq);
    enum { BATCH = 256 };
    char arena[BATCH * 80];
    const void *ptrs[BATCH];
    size_t lens[BATCH];
    double deadline = t > 0 ? now_s() + t : 0;
    while (i < n) {
        /* batch small messages into one locked put_many */
        size_t used = 0;
        int k = 0;
        while (i + k < n && k < BATCH) {
            enc_t e;
            PyObject *o = it[i + k];
            if (encode(ST(self), o, &e, 1)) {
                enc_release(&e);
                Py_DECREF(seq);
                return NULL;
            }
            if (e.len > 80 || used + e.len > sizeof arena) {
                enc_release(&e);
                break;
            }
            char *owned;
            char *p = enc_join(&e, arena + used, e.len, &owned);
            if (p != arena + used)
                memcpy(arena + used, p, e.len);
            ptrs[k] = arena + used;
            lens[k] = e.len;
            used += (e.len + 7) & ~(size_t)7;
            enc_release(&e);
            k++;
        }
        if (k == 0) { /* a big one: alone */
            PyObject *r = q_put(self, it[i], block, timeout);
            if (!r) {
                Py_DECREF(seq);
                return NULL;
            }
            Py_DECREF(r);
            i++;
            continue;
        }
        int done = 0;
        while (done < k) {
            double left = t < 0 ? -1 : t == 0 ? 0 : deadline - now_s();
            if (t > 0 && left < 0)
                left = 0;
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = crew_queue_put_many(self->h, (size_t)(k - done), ptrs + done, lens + done,
                                     left < 0 ? SLICE : left);
            Py_END_ALLOW_THREADS
            if (rc == -EAGAIN && left < 0) {
                if (PyErr_CheckSignals() < 0) {
                    Py_DECREF(seq);
                    return NULL;
                }
                continue;
            }
            if (rc < 0) {
                Py_DECREF(seq);
                return queue_put_error(self, rc, lens[done]);
            }
            done += rc;
            if (rc == 0 && t >= 0 && now_s() >= deadline) {
                Py_DECREF(seq);
                return queue_put_error(self, -EAGAIN, 0);
            }
        }
        i += k;
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

/* get_many(max, block=True, timeout=None): waits for one item like get,
 * then takes up to max that are there; a list. */
static PyObject *Handle_q_get_many(Handle *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"max", "block", "timeout", NULL};
    PyObject *timeout = Py_None;
    Py_ssize_t max = 1024;
    int block = 1;
    double t;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|npO", kwlist, &max, &block, &timeout))
        return NULL;
    if (parse_timeout(block, timeout, &t) || check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    if (max < 1)
        return PyList_New(0);
    size_t cap = 1 << 18;
    char *buf = PyMem_Malloc(cap);
    size_t *lens = PyMem_Malloc(sizeof(size_t) * (size_t)max);
    if (!buf || !lens) {
        PyMem_Free(buf);
        PyMem_Free(lens);
        return PyErr_NoMemory();
    }
    int rc;
    struct {
        size_t max;
        char *buf;
        size_t cap;
        size_t *lens;
    } c = {(size_t)max, buf, cap, lens};
    rc = crew_queue_get_many(self->h, c.max, c.buf, c.cap, c.lens, 0);
    if (rc == -EAGAIN && t != 0) {
        double deadline = t > 0 ? now_s() + t : 0;
        for (;;) {
            double sl = SLICE;
            if (t > 0) {
                double left = deadline - now_s();
                if (left < sl)
                    sl = left < 0 ? 0 : left;
            }
            Py_BEGIN_ALLOW_THREADS
            rc = crew_queue_get_many(self->h, c.max, c.buf, c.cap, c.lens, sl);
            Py_END_ALLOW_THREADS
            if (rc != -EAGAIN || (t > 0 && now_s() >= deadline))
                break;
            if (PyErr_CheckSignals() < 0) {
                rc = INT_MIN;
                break;
            }
        }
    }
    PyObject *out = NULL;
    if (rc == -EMSGSIZE) { /* the first is larger than the buffer: take it alone */
        PyMem_Free(buf);
        PyMem_Free(lens);
        PyObject *one = recv_one(self, qget_fn, t, 0, &rc);
        if (!one)
            return rc ? queue_get_error(ST(self), rc) : NULL;
        out = PyList_New(1);
        if (out)
            PyList_SET_ITEM(out, 0, one);
        else
            Py_DECREF(one);
        return out;
    }
    if (rc < 0) {
        PyMem_Free(buf);
        PyMem_Free(lens);
        return queue_get_error(ST(self), rc);
    }
    out = PyList_New(rc);
    size_t off = 0;
    for (int i = 0; out && i < rc; i++) {
        PyObject *o = decode(ST(self), buf + off, lens[i], NULL);
        if (!o) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, o);
        off += lens[i];
    }
    PyMem_Free(buf);
    PyMem_Free(lens);
    return out;
}

static PyObject *Handle_q_qsize(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    return PyLong_FromSize_t(crew_queue_size(self->h));
}

static PyObject *Handle_q_shutdown(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_QUEUE))
        return NULL;
    crew_queue_close(self->h);
    Py_RETURN_NONE;
}

/* ----------------------------------------------------------------- pipe -- */

typedef struct {
    const char *p;
    size_t len;
} psend_ctx;

static int psend_fn(void *h, void *ctx, double t)
{
    psend_ctx *c = ctx;
    return crew_pipe_send(h, c->p, c->len, t);
}

static PyObject *pipe_send_raw(Handle *self, const char *p, size_t len)
{
    psend_ctx c = {p, len};
    int rc = crew_pipe_send(self->h, p, len, 0);
    if (rc == -EAGAIN)
        rc = wait_sliced(self->h, &c, psend_fn, -1);
    if (rc == 0)
        Py_RETURN_NONE;
    if (rc == INT_MIN)
        return NULL;
    if (rc == -EPIPE)
        PyErr_SetString(PyExc_BrokenPipeError, "the other end of the pipe is closed");
    else if (rc == CREW_ETOOBIG)
        PyErr_Format(PyExc_ValueError,
                     "message of %zu bytes is too big for this pipe (crew.Pipe(maxbytes=...))",
                     len);
    else
        raise_rc(rc);
    return NULL;
}

/* _send_bytes(buffer) */
static PyObject *Handle_p_send_bytes(Handle *self, PyObject *arg)
{
    if (check_kind(self, CREW_SHARED_PIPE))
        return NULL;
    if (PyBytes_CheckExact(arg))
        return pipe_send_raw(self, PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg));
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_C_CONTIGUOUS))
        return NULL;
    PyObject *r = pipe_send_raw(self, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return r;
}

/* send(obj): pickles it */
static PyObject *Handle_p_send(Handle *self, PyObject *obj)
{
    if (check_kind(self, CREW_SHARED_PIPE))
        return NULL;
    PyObject *data = PyObject_CallFunction(ST(self)->pickle_dumps, "Oi", obj, 5);
    if (!data)
        return NULL;
    PyObject *r = pipe_send_raw(self, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    return r;
}

static PyObject *pipe_recv_error(int rc)
{
    if (rc == -EPIPE)
        PyErr_SetNone(PyExc_EOFError);
    else if (rc == -EAGAIN)
        PyErr_SetString(PyExc_TimeoutError, "nothing received");
    else if (rc != INT_MIN)
        raise_rc(rc);
    return NULL;
}

static PyObject *Handle_p_recv_bytes(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_PIPE))
        return NULL;
    int rc;
    PyObject *r = recv_one(self, pget_fn, -1, 1, &rc);
    if (!r && rc)
        return pipe_recv_error(rc);
    return r;
}

static PyObject *Handle_p_recv(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_PIPE))
        return NULL;
    int rc;
    PyObject *b = recv_one(self, pget_fn, -1, 1, &rc);
    if (!b)
        return rc ? pipe_recv_error(rc) : NULL;
    PyObject *r = PyObject_CallOneArg(ST(self)->pickle_loads, b);
    Py_DECREF(b);
    return r;
}

static int ppoll_fn(void *h, void *Py_UNUSED(ctx), double t)
{
    int rc = crew_pipe_poll(h, t);
    return rc == 0 ? -EAGAIN : rc; /* 0 (nothing yet) -> keep waiting */
}

/* _poll(timeout): True/False; EOF counts as ready (recv raises it). */
static PyObject *Handle_p_poll(Handle *self, PyObject *arg)
{
    double t = PyFloat_AsDouble(arg);
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_PIPE))
        return NULL;
    int rc = crew_pipe_poll(self->h, 0);
    if (rc == 0 && t != 0)
        rc = wait_sliced(self->h, NULL, ppoll_fn, t);
    if (rc == INT_MIN)
        return NULL;
    if (rc == 1 || rc == -EPIPE)
        Py_RETURN_TRUE;
    if (rc == 0 || rc == -EAGAIN)
        Py_RETURN_FALSE;
    return raise_rc(rc);
}

/* ---------------------------------------------------------------- array -- */

static PyObject *Handle_a_meta(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_ARRAY))
        return NULL;
    return PyUnicode_FromString(crew_array_meta(self->h));
}

static PyObject *Handle_a_addr(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_ARRAY))
        return NULL;
    return Py_BuildValue("(Kn)", (unsigned long long)(uintptr_t)crew_array_data(self->h),
                         (Py_ssize_t)crew_array_size(self->h));
}

static int Handle_getbuffer(Handle *self, Py_buffer *view, int flags)
{
    if (!self->h || self->kind != CREW_SHARED_ARRAY) {
        PyErr_SetString(PyExc_BufferError, "only an open shared array exports a buffer");
        return -1;
    }
    int rc = PyBuffer_FillInfo(view, (PyObject *)self, crew_array_data(self->h),
                               (Py_ssize_t)crew_array_size(self->h), 0, flags);
    if (rc == 0)
        self->exports++;
    return rc;
}

static void Handle_releasebuffer(Handle *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}


/* ----------------------------------------------------------------- dict -- */

/* Encodes a key: bytes, str, int64 fast; anything else pickled. */
static char *key_bytes(shared_state *st, PyObject *key, enc_t *e, char *small, size_t cap,
                       char **owned)
{
    if (encode(st, key, e, 0))
        return NULL;
    return enc_join(e, small, cap, owned);
}

static PyObject *dict_lookup(Handle *self, PyObject *key, int *found)
{
    enc_t e;
    char ks[512], *owned;
    *found = 0;
    char *k = key_bytes(ST(self), key, &e, ks, sizeof ks, &owned);
    if (!k) {
        enc_release(&e);
        return NULL;
    }
    char vs[SMALL];
    size_t vlen;
    int rc = crew_dict_get(self->h, k, e.len, vs, sizeof vs, &vlen);
    PyObject *r = NULL;
    if (rc == 0) {
        *found = 1;
        r = decode(ST(self), vs, vlen, NULL);
    } else {
        while (rc == -EMSGSIZE) {
            PyObject *o = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)vlen);
            if (!o)
                break;
            size_t want = vlen;
            rc = crew_dict_get(self->h, k, e.len, PyByteArray_AS_STRING(o), want, &vlen);
            if (rc == 0) {
                *found = 1;
                r = decode(ST(self), PyByteArray_AS_STRING(o), vlen, vlen == want ? o : NULL);
            }
            Py_DECREF(o);
        }
        if (rc != 0 && rc != -ENOENT && rc != -EMSGSIZE)
            raise_rc(rc);
    }
    PyMem_Free(owned);
    enc_release(&e);
    return r;
}

static PyObject *Handle_d_getitem(Handle *self, PyObject *key)
{
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    int found;
    PyObject *r = dict_lookup(self, key, &found);
    if (!r && !found && !PyErr_Occurred())
        PyErr_SetObject(PyExc_KeyError, key);
    return r;
}

static PyObject *Handle_d_get(Handle *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    int found;
    PyObject *r = dict_lookup(self, args[0], &found);
    if (!r && !found && !PyErr_Occurred()) {
        r = nargs == 2 ? args[1] : Py_None;
        Py_INCREF(r);
    }
    return r;
}

typedef struct {
    const char *k;
    size_t klen;
    const char *v;
    size_t vlen;
} dset_ctx;

static PyObject *Handle_d_setitem(Handle *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_set(key, value)");
        return NULL;
    }
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    enc_t ek, ev;
    char ks[512], vs[4096], *kown = NULL, *vown = NULL;
    PyObject *r = NULL;
    char *k = key_bytes(ST(self), args[0], &ek, ks, sizeof ks, &kown);
    if (k) {
        char *v = encode(ST(self), args[1], &ev, 0) ? NULL : enc_join(&ev, vs, sizeof vs, &vown);
        if (v) {
            int rc;
            size_t kl = ek.len, vl = ev.len;
            Py_BEGIN_ALLOW_THREADS
            rc = crew_dict_set(self->h, k, kl, v, vl);
            Py_END_ALLOW_THREADS
            if (rc == 0) {
                r = Py_None;
                Py_INCREF(r);
            } else if (rc == -ENOSPC) {
                PyErr_SetString(PyExc_MemoryError,
                                "the SharedDict is full (give crew.SharedDict(max_items=..., "
                                "max_bytes=...) more room)");
            } else {
                raise_rc(rc);
            }
        }
        PyMem_Free(vown);
        enc_release(&ev);
    }
    PyMem_Free(kown);
    enc_release(&ek);
    return r;
}

/* _delete(key): True when it was there */
static PyObject *Handle_d_delete(Handle *self, PyObject *key)
{
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    enc_t e;
    char ks[512], *owned = NULL;
    char *k = key_bytes(ST(self), key, &e, ks, sizeof ks, &owned);
    PyObject *r = NULL;
    if (k) {
        int rc;
        size_t kl = e.len;
        Py_BEGIN_ALLOW_THREADS
        rc = crew_dict_delete(self->h, k, kl);
        Py_END_ALLOW_THREADS
        if (rc == 0 || rc == -ENOENT)
            r = PyBool_FromLong(rc == 0);
        else
            raise_rc(rc);
    }
    PyMem_Free(owned);
    enc_release(&e);
    return r;
}

static int Handle_d_contains_impl(Handle *self, PyObject *key)
{
    if (check_kind(self, CREW_SHARED_DICT))
        return -1;
    enc_t e;
    char ks[512], *owned = NULL;
    char *k = key_bytes(ST(self), key, &e, ks, sizeof ks, &owned);
    int r = -1;
    if (k)
        r = crew_dict_contains(self->h, k, e.len) > 0;
    PyMem_Free(owned);
    enc_release(&e);
    return r;
}

static PyObject *Handle_d_contains(Handle *self, PyObject *key)
{
    int r = Handle_d_contains_impl(self, key);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *Handle_d_len(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    return PyLong_FromSize_t(crew_dict_len(self->h));
}

static PyObject *Handle_d_clear(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = crew_dict_clear(self->h);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_rc(rc);
    Py_RETURN_NONE;
}

/* _items(what): a list of keys (0), values (1) or (key, value) pairs (2). */
static PyObject *Handle_d_items(Handle *self, PyObject *arg)
{
    long what = PyLong_AsLong(arg);
    if (what == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    uint64_t cur = 0;
    size_t kcap = 4096, vcap = 65536, kl, vl;
    char *kb = PyMem_Malloc(kcap), *vb = PyMem_Malloc(vcap);
    for (;;) {
        if (!kb || !vb) {
            PyErr_NoMemory();
            Py_CLEAR(out);
            break;
        }
        int rc = crew_dict_next(self->h, &cur, kb, kcap, &kl, vb, vcap, &vl);
        if (rc == -ENOENT)
            break;
        if (rc == -EMSGSIZE) {
            if (kl > kcap) {
                kcap = kl;
                PyMem_Free(kb);
                kb = PyMem_Malloc(kcap);
            }
            if (vl > vcap) {
                vcap = vl;
                PyMem_Free(vb);
                vb = PyMem_Malloc(vcap);
            }
            continue;
        }
        if (rc) {
            raise_rc(rc);
            Py_CLEAR(out);
            break;
        }
        PyObject *k = what != 1 ? decode(ST(self), kb, kl, NULL) : NULL;
        PyObject *v = what != 0 ? decode(ST(self), vb, vl, NULL) : NULL;
        PyObject *item = what == 0 ? k : what == 1 ? v : (k && v ? PyTuple_Pack(2, k, v) : NULL);
        if (what == 2) {
            Py_XDECREF(k);
            Py_XDECREF(v);
        }
        if (!item || PyList_Append(out, item)) {
            Py_XDECREF(item);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(item);
    }
    PyMem_Free(kb);
    PyMem_Free(vb);
    return out;
}

static int dlock_fn(void *h, void *Py_UNUSED(ctx), double t) { return crew_dict_lock(h, t); }

/* _lock(timeout): the C rc (0, CREW_EOWNERDEAD, -EAGAIN) */
static PyObject *Handle_d_lock(Handle *self, PyObject *arg)
{
    double t = PyFloat_AsDouble(arg);
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    int rc = wait_sliced(self->h, NULL, dlock_fn, t);
    if (rc == INT_MIN)
        return NULL;
    return PyLong_FromLong(rc);
}

static PyObject *Handle_d_unlock(Handle *self, PyObject *Py_UNUSED(unused))
{
    if (check_kind(self, CREW_SHARED_DICT))
        return NULL;
    return PyLong_FromLong(crew_dict_unlock(self->h));
}

/* ----------------------------------------------------------------- type -- */

#define M(name, fn, flags) {name, (PyCFunction)(void (*)(void))fn, flags, NULL}
static PyMethodDef Handle_methods[] = {
    M("_create", Handle_create, METH_VARARGS),
    M("_create_pipe", Handle_create_pipe, METH_VARARGS),
    M("_open", Handle_open, METH_O),
    M("_ref", Handle_ref, METH_NOARGS),
    M("_key", Handle_key, METH_NOARGS),
    M("_free", Handle_free, METH_NOARGS),
    M("_others", Handle_others, METH_NOARGS),
    M("_opens", Handle_opens, METH_NOARGS),
    M("_lock_acquire", Handle_lock_acquire, METH_O),
    M("_lock_release", Handle_lock_release, METH_NOARGS),
    M("_sem_acquire", Handle_sem_acquire, METH_O),
    M("_sem_release", Handle_sem_release, METH_O),
    M("_sem_value", Handle_sem_value, METH_NOARGS),
    M("_event_wait", Handle_event_wait, METH_O),
    M("_event_op", Handle_event_op, METH_O),
    M("_cond_wait", Handle_cond_wait, METH_VARARGS),
    M("_cond_notify", Handle_cond_notify, METH_O),
    M("_barrier_wait", Handle_barrier_wait, METH_O),
    M("_barrier_op", Handle_barrier_op, METH_O),
    M("_q_put", Handle_q_put, METH_FASTCALL | METH_KEYWORDS),
    M("_q_put_nowait", Handle_q_put_nowait, METH_O),
    M("_q_get", Handle_q_get, METH_FASTCALL | METH_KEYWORDS),
    M("_q_get_nowait", Handle_q_get_nowait, METH_NOARGS),
    M("_q_put_many", Handle_q_put_many, METH_VARARGS | METH_KEYWORDS),
    M("_q_get_many", Handle_q_get_many, METH_VARARGS | METH_KEYWORDS),
    M("_q_qsize", Handle_q_qsize, METH_NOARGS),
    M("_q_shutdown", Handle_q_shutdown, METH_NOARGS),
    M("_p_send", Handle_p_send, METH_O),
    M("_p_send_bytes", Handle_p_send_bytes, METH_O),
    M("_p_recv", Handle_p_recv, METH_NOARGS),
    M("_p_recv_bytes", Handle_p_recv_bytes, METH_NOARGS),
    M("_p_poll", Handle_p_poll, METH_O),
    M("_a_meta", Handle_a_meta, METH_NOARGS),
    M("_a_addr", Handle_a_addr, METH_NOARGS),
    M("_d_getitem", Handle_d_getitem, METH_O),
    M("_d_get", Handle_d_get, METH_FASTCALL),
    M("_d_setitem", Handle_d_setitem, METH_FASTCALL),
    M("_d_delete", Handle_d_delete, METH_O),
    M("_d_contains", Handle_d_contains, METH_O),
    M("_d_len", Handle_d_len, METH_NOARGS),
    M("_d_clear", Handle_d_clear, METH_NOARGS),
    M("_d_items", Handle_d_items, METH_O),
    M("_d_lock", Handle_d_lock, METH_O),
    M("_d_unlock", Handle_d_unlock, METH_NOARGS),
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Handle_getset[] = {
    {"_closed", (getter)Handle_get_closed, NULL, NULL, NULL},
    {"_kind", (getter)Handle_get_kind, NULL, NULL, NULL},
    {"_sub", (getter)Handle_get_sub, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyObject *Handle_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *m = PyType_GetModuleByDef(type, &shared_module);
    if (!m)
        return NULL;
    Handle *self = (Handle *)PyType_GenericNew(type, args, kw);
    if (self)
        self->st = PyModule_GetState(m);
    return (PyObject *)self;
}

static PyType_Slot Handle_slots[] = {
    {Py_tp_doc, "One process's handle to a crew shared object (see crew.shared)."},
    {Py_tp_new, Handle_new},
    {Py_tp_dealloc, Handle_dealloc},
    {Py_tp_traverse, Handle_traverse},
    {Py_tp_methods, Handle_methods},
    {Py_tp_getset, Handle_getset},
    {Py_bf_getbuffer, Handle_getbuffer},
    {Py_bf_releasebuffer, Handle_releasebuffer},
    {0, NULL},
};

static PyType_Spec Handle_spec = {
    .name = "crew._shared.Handle",
    .basicsize = sizeof(Handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Handle_slots,
};

/* set_errors(Full, Empty, BrokenQueue, OwnerDied): crew.shared's exceptions. */
static PyObject *set_errors(PyObject *mod, PyObject *args)
{
    PyObject *a, *b, *c, *d;
    if (!PyArg_ParseTuple(args, "OOOO", &a, &b, &c, &d))
        return NULL;
    shared_state *st = PyModule_GetState(mod);
    Py_XSETREF(st->QueueFull, Py_NewRef(a));
    Py_XSETREF(st->QueueEmpty, Py_NewRef(b));
    Py_XSETREF(st->BrokenQueue, Py_NewRef(c));
    Py_XSETREF(st->OwnerDied, Py_NewRef(d));
    Py_RETURN_NONE;
}

static PyObject *strerror_py(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    long rc = PyLong_AsLong(arg);
    if (rc == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(crew_strerror((int)rc));
}

static PyMethodDef module_methods[] = {
    {"set_errors", set_errors, METH_VARARGS, NULL},
    {"strerror", strerror_py, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *m)
{
    shared_state *st = PyModule_GetState(m);
    st->handle_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Handle_spec, NULL);
    if (!st->handle_type || PyModule_AddType(m, st->handle_type) < 0)
        return -1;
    PyObject *pk = PyImport_ImportModule("pickle");
    if (!pk)
        return -1;
    st->pickle_dumps = PyObject_GetAttrString(pk, "dumps");
    st->pickle_loads = PyObject_GetAttrString(pk, "loads");
    Py_DECREF(pk);
    if (!st->pickle_dumps || !st->pickle_loads)
        return -1;
    PyObject *q = PyImport_ImportModule("queue");
    if (!q)
        return -1;
    st->QueueFull = PyObject_GetAttrString(q, "Full");
    st->QueueEmpty = PyObject_GetAttrString(q, "Empty");
    Py_DECREF(q);
    if (!st->QueueFull || !st->QueueEmpty)
        return -1;
    st->BrokenQueue = Py_NewRef(st->QueueEmpty);
    st->OwnerDied = Py_NewRef(PyExc_RuntimeError);
#define K(n, v)                                  \
    if (PyModule_AddIntConstant(m, n, v) < 0)    \
        return -1;
    K("ARRAY", CREW_SHARED_ARRAY);
    K("QUEUE", CREW_SHARED_QUEUE);
    K("PIPE", CREW_SHARED_PIPE);
    K("DICT", CREW_SHARED_DICT);
    K("LOCK", CREW_SHARED_LOCK);
    K("SEMAPHORE", CREW_SHARED_SEMAPHORE);
    K("EVENT", CREW_SHARED_EVENT);
    K("CONDITION", CREW_SHARED_CONDITION);
    K("BARRIER", CREW_SHARED_BARRIER);
    K("EOWNERDEAD", CREW_EOWNERDEAD);
    K("EBROKEN", CREW_EBROKEN);
    K("EAGAIN", -EAGAIN);
    K("EDEADLK", -EDEADLK);
    K("EPERM", -EPERM);
    K("EOVERFLOW", -EOVERFLOW);
#undef K
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    shared_state *st = PyModule_GetState(m);
    Py_VISIT(st->handle_type);
    Py_VISIT(st->pickle_dumps);
    Py_VISIT(st->pickle_loads);
    Py_VISIT(st->QueueFull);
    Py_VISIT(st->QueueEmpty);
    Py_VISIT(st->BrokenQueue);
    Py_VISIT(st->OwnerDied);
    return 0;
}

static int module_clear(PyObject *m)
{
    shared_state *st = PyModule_GetState(m);
    Py_CLEAR(st->handle_type);
    Py_CLEAR(st->pickle_dumps);
    Py_CLEAR(st->pickle_loads);
    Py_CLEAR(st->QueueFull);
    Py_CLEAR(st->QueueEmpty);
    Py_CLEAR(st->BrokenQueue);
    Py_CLEAR(st->OwnerDied);
    return 0;
}

static void module_free(void *m)
{
    (void)module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef shared_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "crew._shared",
    .m_doc = "libcrew shared state: handles to shared objects (private; see crew.shared).",
    .m_size = sizeof(shared_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__shared(void)
{
    return PyModuleDef_Init(&shared_module);
}
