/* _core.c — crew._core: the thin private CPython binding over libcrew.
 *
 * One C task, "crew.py", runs every Python task: it takes the GIL, hands the
 * payload (a writable memoryview over shared memory, no copy) to the Python
 * runner crew._runtime.run, and gathers the parts the runner returns into the
 * result with crew_out_alloc (one copy). Completions reach Python through
 * crew_future_on_done callbacks on crew's collector thread.
 *
 * The GIL is released around every call that blocks or takes the pool lock:
 * crew's supervisor thread takes the GIL to fork a worker (the fork hooks),
 * never while it holds that lock.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crew.h"
#include "_codec.h"
#include "_errors.h"
#include "pool/bindings.h" /* internal: crew's own threads, become(), the fork servers */

/* Py_IsFinalizing() is public API from Python 3.13 on. 3.11 and 3.12 have
 * only the private _Py_IsFinalizing(), with the same meaning; there is no
 * public way to ask without holding the GIL, and the callers below (a
 * thread-exit destructor, a task entry point) do not hold it. Checked on
 * 3.11.2, 3.11.7, 3.12.1 and 3.13.0. */
#if PY_VERSION_HEX < 0x030D0000
#define Py_IsFinalizing() _Py_IsFinalizing()
#endif

/* The member-type names of 3.12's public API, under their 3.11 names. */
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

#define TASK_NAME "crew.py"
#define MAX_PARTS 64

/* ------------------------------------------------------------ state -- */

struct FutureObject;

typedef struct {
    PyTypeObject *PoolType;
    PyTypeObject *FutureType;
    PyTypeObject *ArgType;  /* the exporter of a task's argument bytes */
    PyTypeObject *FlattenType;
    PyObject *runner; /* crew._runtime.run, set by set_runner() */
    PyObject *pickle_loads; /* for decode() */
    /* Completions waiting for the GIL: a lock-free stack pushed by crew's
     * threads (no GIL), drained in one go by whichever thread holds the GIL
     * next (a submit, a waiter, or the pushing thread itself). */
    _Atomic(struct FutureObject *) done_head;
    /* The completions of terminates' cancelled queues, oldest first (GIL
     * held): deliver() hands them to Python a batch at a time, never the
     * drains above, so that terminate returns at once however long the
     * queue was. */
    struct FutureObject *backlog_head, *backlog_tail;
    Py_ssize_t backlog_n;
    /* interned names for settle() */
    PyObject *s_condition, *s_state, *s_result, *s_exception;
} core_state;

static inline core_state *get_state(PyObject *mod)
{
    return (core_state *)PyModule_GetState(mod);
}

/* The runner of this interpreter's crew._core module (new ref), or NULL;
 * *argtype (if given) gets the module's ArgType (borrowed). */
static PyObject *find_runner_and(PyTypeObject **argtype)
{
    PyObject *name = PyUnicode_FromString("crew._core");
    if (!name)
        return NULL;
    PyObject *mod = PyImport_GetModule(name);
    Py_DECREF(name);
    if (!mod) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "crew._core is not imported");
        return NULL;
    }
    core_state *st = get_state(mod);
    PyObject *r = st ? st->runner : NULL;
    Py_XINCREF(r);
    if (argtype)
        *argtype = st ? st->ArgType : NULL;
    Py_DECREF(mod);
    if (!r)
        PyErr_SetString(PyExc_RuntimeError, "crew runner not set");
    return r;
}

/* ------------------------------------------------- the one C task -- */

/* Copies the buffers of the sequence `parts` into the result (one copy). */
static int write_parts(PyObject *parts, crew_out *out)
{
    PyObject *seq = PySequence_Fast(parts, "runner must return a sequence of buffers");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_PARTS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many result parts");
        return -1;
    }
    Py_buffer views[MAX_PARTS];
    Py_ssize_t got = 0;
    size_t total = 0;
    int rc = -1;
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_SIMPLE) < 0)
            goto done;
        total += (size_t)views[got].len;
    }
    {
        uint8_t *dst = crew_out_alloc(out, total);
        if (!dst && total) {
            PyErr_Format(PyExc_MemoryError,
                         "crew: the result (%zu bytes) does not fit in the pool's shared arena",
                         total);
            goto done;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            memcpy(dst, views[k].buf, (size_t)views[k].len);
            dst += views[k].len;
        }
        rc = 0;
    }
done:
    for (Py_ssize_t k = 0; k < got; k++)
        PyBuffer_Release(&views[k]);
    Py_DECREF(seq);
    return rc;
}

/*
 * PyGILState_Ensure() on a thread Python does not know makes a new thread
 * state and PyGILState_Release() destroys it again: an allocation storm on
 * every task and every completion. crew's own threads (workers, collector)
 * keep theirs: the first call leaves the gilstate counter at one, so later
 * Ensure/Release pairs only take and drop the GIL. Interpreter shutdown
 * clears those thread states with the rest.
 */
static pthread_key_t ts_key;     /* the thread state gil_ensure made, per thread */
static pthread_once_t ts_once = PTHREAD_ONCE_INIT;

/* At the exit of a crew thread: deletes the thread state gil_ensure made
 * for it (a recycled thread worker would otherwise leave one behind per
 * thread). Not once the interpreter is finalizing: it clears them itself. */
static void ts_drop(void *ts)
{
    if (!ts || Py_IsFinalizing())
        return;
    PyEval_RestoreThread((PyThreadState *)ts);
    PyThreadState_Clear((PyThreadState *)ts);
    PyThreadState_DeleteCurrent();
}

static void ts_key_make(void)
{
    (void)pthread_key_create(&ts_key, ts_drop);
}

static PyGILState_STATE gil_ensure(void)
{
    if (PyGILState_GetThisThreadState() == NULL) {
        pthread_once(&ts_once, ts_key_make);
        (void)PyGILState_Ensure();
        pthread_setspecific(ts_key, PyEval_SaveThread());
    }
    return PyGILState_Ensure();
}

/*
 * A task's argument bytes live in the pool's shared memory, which crew
 * reuses once the task has answered. They reach Python through this
 * exporter: every view of them (numpy arrays of out-of-band buffers
 * included) keeps it exporting. A task that kept a view past its answer
 * therefore leaves exports > 0, and crew then keeps the bytes
 * (crew_out_keep_arg) until the last view is gone, when the exporter is
 * freed and frees them.
 */
typedef struct {
    PyObject_HEAD
    char *buf;
    Py_ssize_t len;
    Py_ssize_t exports;
    int kept;
    crew_kept_arg k;
} ArgObject;

static int Arg_getbuffer(ArgObject *self, Py_buffer *view, int flags)
{
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->buf, self->len, 0, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void Arg_releasebuffer(ArgObject *self, Py_buffer *view)
{
    (void)view;
    self->exports--;
}

static void Arg_dealloc(ArgObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->kept)
        crew_kept_arg_free(&self->k);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot Arg_slots[] = {
    {Py_bf_getbuffer, Arg_getbuffer},
    {Py_bf_releasebuffer, Arg_releasebuffer},
    {Py_tp_dealloc, Arg_dealloc},
    {Py_tp_doc, "A task's argument bytes in crew's shared memory."},
    {0, NULL},
};

static PyType_Spec Arg_spec = {
    .name = "crew._core.TaskArgument",
    .basicsize = sizeof(ArgObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Arg_slots,
};

/*
 * A worker keeps the GIL from one task to the next while its ring holds
 * more (ThreadPoolExecutor's threads do the same: a task's end and the next
 * one's start in one hold); crew_worker_hooks.idle, which the worker calls
 * as soon as it finds no request waiting and before it leaves, lets go of
 * it. Fairness is the interpreter's: each task runs Python code, where a
 * thread asking for the GIL gets it after the switch interval, as ever.
 */
static __thread int kept_gil;                /* this thread holds a kept GIL */
static __thread PyGILState_STATE kept_state; /* its PyGILState_Ensure state  */

static void hook_idle(void)
{
    if (kept_gil) {
        kept_gil = 0;
        PyGILState_Release(kept_state);
    }
}

static int py_task(const void *arg, size_t len, crew_out *out, void *udata)
{
    (void)udata;
    PyGILState_STATE g;
    if (kept_gil) {
        kept_gil = 0;
        g = kept_state;
        if (Py_IsFinalizing()) {
            PyGILState_Release(g);
            return crew_out_error(out, "the Python interpreter is shutting down");
        }
    } else {
        if (Py_IsFinalizing())
            return crew_out_error(out, "the Python interpreter is shutting down");
        g = gil_ensure();
    }
    int rc = 0;
    PyTypeObject *argtype = NULL;
    PyObject *runner = find_runner_and(&argtype), *mv = NULL, *res = NULL;
    ArgObject *ao = NULL;
    if (!runner)
        goto fail;
    ao = PyObject_New(ArgObject, argtype);
    if (!ao)
        goto fail;
    ao->buf = (char *)arg;
    ao->len = (Py_ssize_t)len;
    ao->exports = 0;
    ao->kept = 0;
    mv = PyMemoryView_FromObject((PyObject *)ao);
    if (!mv)
        goto fail;
    res = PyObject_CallOneArg(runner, mv);
    PyObject *r = PyObject_CallMethod(mv, "release", NULL);
    if (r)
        Py_DECREF(r);
    else
        PyErr_Clear();
    Py_CLEAR(mv);
    if (!res)
        goto fail;
    /* res: (ok, parts); ok false: parts[0] is an error message (initializer) */
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        PyErr_SetString(PyExc_TypeError, "crew runner must return (ok, parts)");
        goto fail;
    }
    if (!PyObject_IsTrue(PyTuple_GET_ITEM(res, 0))) {
        PyObject *msg = PyObject_Str(PyTuple_GET_ITEM(res, 1));
        const char *s = msg ? PyUnicode_AsUTF8(msg) : NULL;
        rc = crew_out_error(out, "%s", s ? s : "(no message)");
        Py_XDECREF(msg);
        PyErr_Clear();
        goto done;
    }
    if (write_parts(PyTuple_GET_ITEM(res, 1), out) < 0)
        goto fail;
    Py_CLEAR(res); /* the result's parts may view the argument: let them go first */
    if (ao->exports > 0 && crew_out_keep_arg(out, &ao->k) == 0)
        ao->kept = 1; /* the task kept a view: the bytes stay until it lets go */
    goto done;
fail : {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *s = ev ? PyObject_Repr(ev) : et ? PyObject_Repr(et) : NULL;
    const char *m = s ? PyUnicode_AsUTF8(s) : NULL;
    rc = crew_out_error(out, "crew worker runtime failed: %s", m ? m : "(unknown error)");
    Py_XDECREF(s);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    PyErr_Clear();
}
done:
    Py_XDECREF(res);
    Py_XDECREF(mv);
    Py_XDECREF(ao);
    Py_XDECREF(runner);
    if (Py_IsFinalizing()) {
        PyGILState_Release(g);
    } else { /* until the next task, or hook_idle */
        kept_state = g;
        kept_gil = 1;
    }
    return rc;
}

/* ---------------------------------------------------- worker hooks -- */

/*
 * libcrew's launchers start every process worker (fork, spawn and the fork
 * server are libcrew's alone); these are Python's steps around them, set
 * once for the process (crew_set_worker_hooks). The fork steps run on the
 * thread that forks (a pool's supervisor, or the fork server's one thread),
 * which holds none of crew's locks: taking the GIL there is in the lock
 * order (src/base/lockorder.h). A spawned worker and a fork server are this
 * interpreter running crew._worker's bootstrap, which applies the parent's
 * prelude and then calls become() below.
 */

static __thread PyGILState_STATE fork_gil; /* before_fork -> after_fork_parent */

static int hook_before_fork(void)
{
    if (Py_IsFinalizing())
        return -ECANCELED;
    fork_gil = PyGILState_Ensure();
    PyOS_BeforeFork();
    return 0;
}

static void hook_after_fork_parent(void)
{
    PyOS_AfterFork_Parent();
    PyGILState_Release(fork_gil);
}

static void hook_after_fork_child(void)
{
    PyOS_AfterFork_Child(); /* this thread holds the GIL: before_fork took it */
}

/* Calls crew._runtime.<name>() in a worker process; errors are printed. */
static void call_runtime_hook(const char *name)
{
    PyObject *mod = PyImport_ImportModule("crew._runtime");
    PyObject *r = mod ? PyObject_CallMethod(mod, name, NULL) : NULL;
    if (!r)
        PyErr_Print();
    Py_XDECREF(r);
    Py_XDECREF(mod);
}

/* A process worker's life (forked or spawned): the runtime's first steps,
 * the worker loop with the GIL released, its last steps. */
static int hook_run(int shm_fd, int slot)
{
    PyGILState_STATE g = PyGILState_Ensure();
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    call_runtime_hook("process_worker_init");
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = crew_worker_run(shm_fd, slot);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        fprintf(stderr, "crew: worker cannot map its pool: %s\n", crew_strerror(rc));
    call_runtime_hook("process_worker_exit");
    PyGILState_Release(g);
    return rc < 0 ? 2 : 0;
}

static const crew_worker_hooks py_hooks = {
    .before_fork = hook_before_fork,
    .after_fork_parent = hook_after_fork_parent,
    .after_fork_child = hook_after_fork_child,
    .run = hook_run,
    .idle = hook_idle,
};

static char *dup_utf8(PyObject *o)
{
    const char *s = PyUnicode_AsUTF8(o);
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        PyErr_NoMemory();
    return d;
}

/* ---------------------------------------------------------- Future -- */

typedef struct FutureObject {
    PyObject_HEAD
    crew_future *f;
    PyObject *callback; /* called once with self when done (GIL held) */
    PyObject *ctx;      /* free for the Python side */
    core_state *st;     /* its module's state (the type keeps the module alive) */
    struct FutureObject *done_next; /* in st->done_head */
} FutureObject;

/* The future this thread waits for in Future.wait (GIL released): its
 * completion is left for this thread to deliver when it takes the GIL back. */
static __thread crew_future *tls_waiting;

/* This thread runs a terminate: the completions it makes (every queued
 * task's, a million of them maybe) are chained here, oldest first, for
 * deliver() (Pool_terminate moves them to the backlog), not delivered one
 * GIL hold each before terminate can return. */
static __thread int tls_deferring;
static __thread FutureObject *tls_def_head, *tls_def_tail;
static __thread Py_ssize_t tls_def_n;

/* Pushes a finished future (holding its callback's reference); no GIL. */
static void done_push(core_state *st, FutureObject *fo)
{
    FutureObject *h = atomic_load_explicit(&st->done_head, memory_order_relaxed);
    do
        fo->done_next = h;
    while (!atomic_compare_exchange_weak_explicit(&st->done_head, &h, fo, memory_order_release,
                                                  memory_order_relaxed));
}

/* Calls a finished future's callback, once (GIL held, no exception set). */
static void deliver_one(FutureObject *self)
{
    self->done_next = NULL;
    PyObject *cb = self->callback;
    self->callback = NULL;
    if (cb) {
        PyObject *r = PyObject_CallOneArg(cb, (PyObject *)self);
        if (!r && PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
            /* a Ctrl-C pending when the delivery began: it must neither
             * lose this completion nor be lost itself. The signal is
             * consumed, so a second run goes through; then the program
             * gets its KeyboardInterrupt at its next bytecode. */
            PyErr_Clear();
            r = PyObject_CallOneArg(cb, (PyObject *)self);
            PyErr_SetInterrupt();
        }
        if (!r)
            PyErr_WriteUnraisable(cb);
        Py_XDECREF(r);
        Py_DECREF(cb);
    }
    Py_DECREF(self);
}

/* Delivers every pushed completion, oldest first (GIL held). */
static void done_drain(core_state *st)
{
    if (!atomic_load_explicit(&st->done_head, memory_order_relaxed))
        return;
    FutureObject *h = atomic_exchange_explicit(&st->done_head, NULL, memory_order_acquire);
    FutureObject *rev = NULL;
    while (h) {
        FutureObject *n = h->done_next;
        h->done_next = rev;
        rev = h;
        h = n;
    }
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    while (rev) {
        FutureObject *self = rev;
        rev = rev->done_next;
        deliver_one(self);
    }
    PyErr_Restore(et, ev, tb);
}

/* Delivers up to `limit` of the completions terminates deferred (< 0: all),
 * oldest first (GIL held); returns how many are left. */
static Py_ssize_t deferred_deliver(core_state *st, Py_ssize_t limit)
{
    if (!st->backlog_n)
        return 0;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    while (st->backlog_head && limit-- != 0) {
        FutureObject *self = st->backlog_head; /* off the backlog before its callback runs */
        st->backlog_head = self->done_next;
        if (!st->backlog_head)
            st->backlog_tail = NULL;
        st->backlog_n--;
        deliver_one(self);
    }
    PyErr_Restore(et, ev, tb);
    return st->backlog_n;
}

static void Future_dealloc(FutureObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->ctx);
    if (self->f)
        crew_future_release(self->f);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int Future_traverse(FutureObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->callback);
    Py_VISIT(self->ctx);
    return 0;
}

static int Future_clear(FutureObject *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->ctx);
    return 0;
}

static PyObject *Future_status(FutureObject *self, PyObject *Py_UNUSED(a))
{
    return PyLong_FromLong(crew_future_status(self->f));
}

static PyObject *Future_error(FutureObject *self, PyObject *Py_UNUSED(a))
{
    return PyUnicode_DecodeUTF8(crew_future_error(self->f), (Py_ssize_t)strlen(crew_future_error(self->f)),
                                "replace");
}

static PyObject *Future_cancel(FutureObject *self, PyObject *Py_UNUSED(a))
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = crew_future_cancel(self->f);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *Future_wait(FutureObject *self, PyObject *arg)
{
    double t = PyFloat_AsDouble(arg);
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    int rc;
    crew_future *f = self->f;
    Py_BEGIN_ALLOW_THREADS
    tls_waiting = f;
    rc = crew_future_wait(f, t);
    tls_waiting = NULL;
    Py_END_ALLOW_THREADS
    done_drain(self->st);
    return PyBool_FromLong(rc == 0);
}

/* The worker thread that ran a thread task has settled its Python future
 * itself: takes the completion callback back, so crew's collector never
 * takes the GIL for it, and lets go of what the callback held. */
static PyObject *Future_take_callback(FutureObject *self, PyObject *Py_UNUSED(a))
{
    if (!self->f || !crew_future_take_callback(self->f))
        Py_RETURN_FALSE;
    Py_CLEAR(self->callback);
    Py_DECREF(self); /* the callback's reference; the caller holds one more */
    Py_RETURN_TRUE;
}

static int Future_getbuffer(FutureObject *self, Py_buffer *view, int flags)
{
    if (crew_future_status(self->f) != 0) {
        PyErr_SetString(PyExc_BufferError, "the task has no result");
        return -1;
    }
    const void *data;
    size_t len;
    crew_future_result(self->f, &data, &len);
    return PyBuffer_FillInfo(view, (PyObject *)self, (void *)data, (Py_ssize_t)len, 0, flags);
}

static PyObject *Future_get_ctx(FutureObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->ctx ? self->ctx : Py_None);
}

static int Future_set_ctx(FutureObject *self, PyObject *v, void *c)
{
    (void)c;
    Py_XINCREF(v);
    Py_XSETREF(self->ctx, v);
    return 0;
}

static PyMethodDef Future_methods[] = {
    {"status", (PyCFunction)Future_status, METH_NOARGS,
     "0 on success, a negative crew code on failure, -EINPROGRESS while running."},
    {"error", (PyCFunction)Future_error, METH_NOARGS, "The failure's message, or ''."},
    {"cancel", (PyCFunction)Future_cancel, METH_NOARGS,
     "Cancels the task if not started: 0, or -EBUSY."},
    {"wait", (PyCFunction)Future_wait, METH_O,
     "wait(timeout) -> bool: waits (GIL released) until done; timeout < 0: forever."},
    {"take_callback", (PyCFunction)Future_take_callback, METH_NOARGS,
     "True when the done callback had not run and now never will (it is dropped)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Future_getset[] = {
    {"ctx", (getter)Future_get_ctx, (setter)Future_set_ctx, "Python-side context.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Future_slots[] = {
    {Py_tp_dealloc, Future_dealloc},
    {Py_tp_traverse, Future_traverse},
    {Py_tp_clear, Future_clear},
    {Py_tp_methods, Future_methods},
    {Py_tp_getset, Future_getset},
    {Py_bf_getbuffer, Future_getbuffer},
    {Py_tp_doc, "A libcrew future; its buffer is the task's result bytes (zero copy)."},
    {0, NULL},
};

static PyType_Spec Future_spec = {
    .name = "crew._core.Future",
    .basicsize = sizeof(FutureObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Future_slots,
};

/* Runs on the thread that finished f: crew's collector, a waiter that
 * collected answers itself, a canceller. The completion is pushed; then,
 * unless this thread is a waiter about to take the GIL back for exactly this
 * future, the GIL is taken once and everything pushed so far is delivered
 * (a thread holding the GIL meanwhile, e.g. a submit, delivers it first). */
static void done_cb(crew_future *f, void *ud)
{
    if (Py_IsFinalizing())
        return; /* too late to tell Python: the reference is leaked */
    FutureObject *self = ud;
    core_state *st = self->st;
    if (tls_deferring) {
        self->done_next = NULL;
        if (tls_def_tail)
            tls_def_tail->done_next = self;
        else
            tls_def_head = self;
        tls_def_tail = self;
        tls_def_n++;
        return;
    }
    done_push(st, self);
    if (tls_waiting == f)
        return;
    if (!atomic_load_explicit(&st->done_head, memory_order_relaxed))
        return; /* already delivered by a thread that holds the GIL */
    PyGILState_STATE g = gil_ensure();
    done_drain(st);
    PyGILState_Release(g);
}

/* --------------------------------------------------------- Flatten -- */

/*
 * flatten(chunks): an iterator over the values of the lists `chunks` (an
 * iterator, a map's generator of chunk results) yields, each value handed
 * over as it goes (its slot in the list cleared as it is yielded, so an
 * iterator over a map keeps no result it has already given; the list
 * emptied once read). drain(list) is the same iterator over one list. The
 * values come out at C speed: a generator doing `yield from` per chunk
 * resumed its frame once per value, a fifth of a no-op map's time in the
 * parent. An exception `chunks` raises comes out
 * where iteration reaches it, and iteration ends there, as a generator's.
 * close() empties the list being read and closes `chunks` (a generator's
 * finally then runs: a map cancels its tasks), as does dropping the iterator.
 */
typedef struct {
    PyObject_HEAD
    PyObject *chunks; /* NULL once exhausted, failed or closed */
    PyObject *list;   /* the chunk being read, or NULL */
    Py_ssize_t i;
    bool busy;        /* in `chunks` (which may let go of the GIL): another
                       * next() or close() meanwhile fails, as a running
                       * generator's does */
    PyObject *weakrefs;
} FlattenObject;

static bool flatten_busy(FlattenObject *self)
{
    if (self->busy)
        PyErr_SetString(PyExc_ValueError, "map iterator already executing");
    return self->busy;
}

/* Ends the chunk being read: the list is emptied (read once). */
static void flatten_end_list(FlattenObject *self)
{
    PyObject *l = self->list;
    if (!l)
        return;
    self->list = NULL;
    if (PyList_SetSlice(l, 0, PyList_GET_SIZE(l), NULL) < 0) /* (called with no error set) */
        PyErr_Clear(); /* a deletion allocates nothing: cannot happen */
    Py_DECREF(l);
}

static void Flatten_dealloc(FlattenObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_CLEAR(self->list);
    Py_CLEAR(self->chunks); /* a generator's finally runs as it goes */
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int Flatten_traverse(FlattenObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->chunks);
    Py_VISIT(self->list);
    return 0;
}

static int Flatten_clear(FlattenObject *self)
{
    Py_CLEAR(self->list);
    Py_CLEAR(self->chunks);
    return 0;
}

static PyObject *Flatten_next(FlattenObject *self)
{
    if (flatten_busy(self))
        return NULL;
    for (;;) {
        PyObject *l = self->list;
        if (l) {
            if (self->i < PyList_GET_SIZE(l)) {
                PyObject *v = PyList_GET_ITEM(l, self->i); /* the list's reference, now ours */
                PyList_SET_ITEM(l, self->i, Py_NewRef(Py_None));
                self->i++;
                return v;
            }
            flatten_end_list(self);
        }
        if (!self->chunks)
            return NULL;
        /* our own reference: a collection (tp_clear) while `chunks` runs
         * must not free it under itself */
        PyObject *chunks = Py_NewRef(self->chunks);
        self->busy = true;
        PyObject *next = PyIter_Next(chunks);
        self->busy = false;
        Py_DECREF(chunks);
        if (next && PyTuple_CheckExact(next) && PyTuple_GET_SIZE(next) == 1 &&
            PyExceptionInstance_Check(PyTuple_GET_ITEM(next, 0))) {
            /* (exception,): raised here, and iteration goes on after it */
            PyObject *e = PyTuple_GET_ITEM(next, 0);
            PyErr_SetObject((PyObject *)Py_TYPE(e), e);
            Py_DECREF(next);
            return NULL;
        }
        if (next && !PyList_CheckExact(next)) {
            Py_CLEAR(next);
            PyErr_SetString(PyExc_TypeError,
                            "flatten(): the chunks must be lists or (exception,) tuples");
        }
        if (!next) { /* the end, or an error: either way, done */
            Py_CLEAR(self->chunks);
            return NULL;
        }
        Py_XSETREF(self->list, next); /* (none: flatten_end_list ended it) */
        self->i = 0;
    }
}

static PyObject *Flatten_close(FlattenObject *self, PyObject *Py_UNUSED(ignored))
{
    if (flatten_busy(self))
        return NULL;
    /* both let go of before anything runs: dropping the unread values runs
     * their finalizers, and a next() from one of those (or from a thread
     * they let run) finds the iterator ended, not the generator to resume */
    PyObject *chunks = self->chunks;
    self->chunks = NULL;
    flatten_end_list(self);
    if (!chunks)
        Py_RETURN_NONE;
    PyObject *r = PyObject_GetAttrString(chunks, "close");
    if (!r) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            Py_DECREF(chunks);
            return NULL;
        }
        PyErr_Clear(); /* a plain iterator: nothing to close */
    }
    PyObject *out = r ? PyObject_CallNoArgs(r) : Py_NewRef(Py_None);
    Py_XDECREF(r);
    Py_DECREF(chunks);
    if (!out)
        return NULL;
    Py_DECREF(out);
    Py_RETURN_NONE;
}

static PyMemberDef Flatten_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(FlattenObject, weakrefs), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef Flatten_methods[] = {
    {"close", (PyCFunction)Flatten_close, METH_NOARGS,
     "close(): stop here; the tasks not yet read are cancelled."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Flatten_slots[] = {
    {Py_tp_dealloc, Flatten_dealloc},
    {Py_tp_traverse, Flatten_traverse},
    {Py_tp_clear, Flatten_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Flatten_next},
    {Py_tp_methods, Flatten_methods},
    {Py_tp_members, Flatten_members},
    {Py_tp_doc, "An iterator over a map's results, in order."},
    {0, NULL},
};

static PyType_Spec Flatten_spec = {
    .name = "crew._core.Flatten",
    .basicsize = sizeof(FlattenObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Flatten_slots,
};

/* A new Flatten over the iterator `chunks` (stolen; NULL: none), reading
 * `list` first (stolen; NULL: none). NULL on no memory, both let go of. */
static PyObject *flatten_new(PyObject *m, PyObject *chunks, PyObject *list)
{
    FlattenObject *f = PyObject_GC_New(FlattenObject, get_state(m)->FlattenType);
    if (!f) {
        Py_XDECREF(chunks);
        Py_XDECREF(list);
        return NULL;
    }
    f->chunks = chunks;
    f->list = list;
    f->i = 0;
    f->busy = false;
    f->weakrefs = NULL;
    PyObject_GC_Track(f);
    return (PyObject *)f;
}

static PyObject *m_flatten(PyObject *m, PyObject *chunks)
{
    PyObject *it = PyObject_GetIter(chunks);
    return it ? flatten_new(m, it, NULL) : NULL;
}

static PyObject *m_drain(PyObject *m, PyObject *list)
{
    if (!PyList_CheckExact(list)) {
        PyErr_SetString(PyExc_TypeError, "drain() takes a list");
        return NULL;
    }
    return flatten_new(m, NULL, Py_NewRef(list));
}

/* ------------------------------------------------------------ Pool -- */

typedef struct {
    PyObject_HEAD
    crew_pool *p;
    bool fork; /* its workers start by fork (Pool_submit) */
} PoolObject;

static void *free_thread(void *arg)
{
    crew__name_thread("crew:free");
    crew_pool_free(arg);
    return NULL;
}

/* Whether this thread is one of crew's own threads of pool p. */
static int on_pool_thread(crew_pool *p)
{
    return crew__pool_on_own_thread(p);
}

static void pool_release(PoolObject *self)
{
    crew_pool *p = self->p;
    self->p = NULL;
    if (!p)
        return;
    if (on_pool_thread(p)) { /* it cannot join itself: free it from a helper */
        pthread_t t;
        if (pthread_create(&t, NULL, free_thread, p) == 0)
            pthread_detach(t);
        return; /* (else leaked rather than deadlocked) */
    }
    Py_BEGIN_ALLOW_THREADS
    crew_pool_free(p);
    Py_END_ALLOW_THREADS
}

static void Pool_dealloc(PoolObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    pool_release(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* crew's one error mapping (_errors.h), for this module's calls. */
static PyObject *raise_crew(int rc, const char *what)
{
    return crew_py_raise(rc, what);
}


static PyObject *Pool_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"kind", "workers", "start", "task_timeout", "max_tasks",
                             "init", "spawn_argv", "arena_size", "prelude_fd", NULL};
    int kind, workers = 0, start = 0, prelude_fd = -1;
    double task_timeout = 0;
    unsigned long max_tasks = 0;
    Py_buffer init = {0};
    PyObject *argv_obj = Py_None;
    unsigned long long arena = 0;
    char **argv = NULL;
    Py_ssize_t argc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|iidkz*OKi", kwlist, &kind, &workers, &start,
                                     &task_timeout, &max_tasks, &init, &argv_obj, &arena,
                                     &prelude_fd))
        return NULL;
    PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
    if (!self)
        goto fail;
    crew_options o;
    crew_options_init(&o);
    o.kind = kind == 1 ? CREW_THREADS : CREW_PROCESSES;
    o.workers = workers;
    o.task_timeout = task_timeout;
    o.max_tasks_per_worker = (unsigned)max_tasks;
    o.arena_size = (size_t)arena;
    if (init.buf) {
        o.initializer = TASK_NAME;
        o.init_arg = init.buf;
        o.init_len = (size_t)init.len;
    }
    if (o.kind == CREW_PROCESSES) {
        if (start != CREW_START_FORK && start != CREW_START_SPAWN &&
            start != CREW_START_FORKSERVER) {
            PyErr_SetString(PyExc_ValueError, "start must be 1 (fork), 2 (spawn), 3 (forkserver)");
            goto fail;
        }
        o.start = (crew_start_method)start;
        self->fork = start == CREW_START_FORK;
        if (start != CREW_START_FORK) {
            /* libcrew execs this interpreter running crew's bootstrap, with
             * the prelude (the parent's start-up state) */
            if (prelude_fd < 3) {
                PyErr_SetString(PyExc_ValueError, "spawn and forkserver need prelude_fd");
                goto fail;
            }
            PyObject *seq = PySequence_Fast(argv_obj, "spawn_argv must be a list of str");
            if (!seq)
                goto fail;
            Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
            argv = calloc((size_t)n + 1, sizeof(char *));
            if (!argv) {
                Py_DECREF(seq);
                PyErr_NoMemory();
                goto fail;
            }
            for (; argc < n; argc++)
                if (!(argv[argc] = dup_utf8(PySequence_Fast_GET_ITEM(seq, argc)))) {
                    Py_DECREF(seq);
                    goto fail;
                }
            Py_DECREF(seq);
            if (argc < 1) {
                PyErr_SetString(PyExc_ValueError, "spawn_argv is empty");
                goto fail;
            }
            o.spawn_argv = argv;   /* the pool copies both */
            o.prelude_fd = prelude_fd;
        }
    }
    int rc;
    crew_pool *p = NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = crew_pool_create(&p, &o);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        raise_crew(rc, "cannot create the pool");
        goto fail;
    }
    self->p = p;
    PyBuffer_Release(&init);
    for (Py_ssize_t i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
    return (PyObject *)self;
fail:
    if (init.buf)
        PyBuffer_Release(&init);
    for (Py_ssize_t i = 0; argv && i < argc; i++)
        free(argv[i]);
    free(argv);
    Py_XDECREF(self);
    return NULL;
}

static PyObject *Pool_submit(PoolObject *self, PyObject *args)
{
    PyObject *parts, *callback, *ctx = NULL;
    double timeout = 0;
    if (!PyArg_ParseTuple(args, "OdO|O", &parts, &timeout, &callback, &ctx))
        return NULL;
    if (!self->p)
        return raise_crew(CREW_ECLOSED, "submit");
    core_state *st = PyType_GetModuleState(Py_TYPE(self));
    done_drain(st); /* completions so far, while this thread holds the GIL anyway */
    PyObject *seq = PySequence_Fast(parts, "parts must be a sequence of buffers");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_PARTS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many parts");
        return NULL;
    }
    Py_buffer views[MAX_PARTS];
    struct iovec iov[MAX_PARTS];
    Py_ssize_t got = 0;
    PyObject *result = NULL;
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_SIMPLE) < 0)
            goto done;
        iov[got].iov_base = views[got].buf;
        iov[got].iov_len = (size_t)views[got].len;
    }
    FutureObject *fo = PyObject_GC_New(FutureObject, st->FutureType);
    if (!fo)
        goto done;
    fo->f = NULL;
    fo->ctx = ctx && ctx != Py_None ? Py_NewRef(ctx) : NULL;
    fo->st = st;
    fo->done_next = NULL;
    fo->callback = Py_NewRef(callback);
    crew_future *f = NULL;
    int rc = -EAGAIN;
    /* Dropping the GIL hands it to crew's collector, which wants it for the
     * completions: on a busy pool the submitter then waits a switch interval
     * to get it back. So a submit keeps the GIL when nothing can make it
     * wait: a fork pool's supervisor takes the GIL to fork (the fork hooks;
     * release it there), and a full arena waits for completions (nowait,
     * then retry without the GIL). */
    bool keep_gil = !self->fork;
    if (keep_gil) {
        crew_submit_opts now = {.timeout = timeout, .nowait = 1};
        rc = crew_submitv(self->p, TASK_NAME, iov, (int)n, &now, &f);
    }
    if (rc == -EAGAIN) {
        crew_submit_opts so = {.timeout = timeout};
        Py_BEGIN_ALLOW_THREADS
        rc = crew_submitv(self->p, TASK_NAME, iov, (int)n, &so, &f);
        Py_END_ALLOW_THREADS
    }
    if (rc < 0) {
        Py_CLEAR(fo->callback);
        Py_CLEAR(fo->ctx);
        Py_DECREF(fo);
        raise_crew(rc, "submit");
        goto done;
    }
    fo->f = f;
    PyObject_GC_Track(fo);
    Py_INCREF(fo); /* the callback's reference */
    if (keep_gil) {
        rc = crew_future_on_done(f, done_cb, fo);
    } else {
        Py_BEGIN_ALLOW_THREADS
        rc = crew_future_on_done(f, done_cb, fo);
        Py_END_ALLOW_THREADS
    }
    if (rc < 0)
        Py_DECREF(fo);
    result = (PyObject *)fo;
done:
    for (Py_ssize_t k = 0; k < got; k++)
        PyBuffer_Release(&views[k]);
    Py_DECREF(seq);
    return result;
}

static PyObject *Pool_close(PoolObject *self, PyObject *Py_UNUSED(a))
{
    if (self->p) {
        crew_pool *p = self->p;
        Py_BEGIN_ALLOW_THREADS
        crew_pool_close(p);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* Terminates the pool; returns how many completions wait for deliver()
 * (the cancelled queue's: they are not delivered here, so that terminate
 * returns at once however long the queue was). */
static PyObject *Pool_terminate(PoolObject *self, PyObject *Py_UNUSED(a))
{
    core_state *st = PyType_GetModuleState(Py_TYPE(self));
    if (self->p) {
        crew_pool *p = self->p;
        Py_BEGIN_ALLOW_THREADS
        tls_deferring = 1;
        crew_pool_terminate(p);
        tls_deferring = 0;
        Py_END_ALLOW_THREADS
    }
    if (tls_def_head) { /* what this terminate deferred, to the backlog (GIL held) */
        if (st->backlog_tail)
            st->backlog_tail->done_next = tls_def_head;
        else
            st->backlog_head = tls_def_head;
        st->backlog_tail = tls_def_tail;
        st->backlog_n += tls_def_n;
        tls_def_head = tls_def_tail = NULL;
        tls_def_n = 0;
    }
    return PyLong_FromSsize_t(st->backlog_n);
}

static PyObject *Pool_terminate_signal(PoolObject *self, PyObject *arg)
{
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (v < 0 || v >= NSIG)
        return PyErr_Format(PyExc_ValueError, "bad signal number %ld", v);
    int sig = (int)v;
    int rc = 0;
    if (self->p) {
        crew_pool *p = self->p;
        Py_BEGIN_ALLOW_THREADS
        rc = crew_pool_terminate_signal(p, sig);
        Py_END_ALLOW_THREADS
    }
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *Pool_free(PoolObject *self, PyObject *Py_UNUSED(a))
{
    pool_release(self);
    Py_RETURN_NONE;
}

static PyObject *Pool_stats(PoolObject *self, PyObject *Py_UNUSED(a))
{
    if (!self->p)
        return raise_crew(CREW_ECLOSED, "stats");
    crew_stats *st = malloc(sizeof *st);
    if (!st)
        return PyErr_NoMemory();
    int rc;
    crew_pool *p = self->p;
    Py_BEGIN_ALLOW_THREADS
    rc = crew_pool_stats(p, st);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        free(st);
        return raise_crew(rc, "stats");
    }
    PyObject *workers = PyList_New(st->workers);
    if (!workers) {
        free(st);
        return NULL;
    }
    for (int i = 0; i < st->workers; i++) {
        PyObject *w = Py_BuildValue("{s:i,s:K,s:d,s:I}", "pid", (int)st->worker[i].pid, "tasks",
                                    (unsigned long long)st->worker[i].tasks, "busy_seconds",
                                    (double)st->worker[i].busy_ns / 1e9, "restarts",
                                    (unsigned)st->worker[i].restarts);
        if (!w) {
            Py_DECREF(workers);
            free(st);
            return NULL;
        }
        PyList_SET_ITEM(workers, i, w);
    }
    PyObject *d = Py_BuildValue("{s:s,s:N,s:K,s:K,s:K,s:K,s:K,s:K}", "kind",
                                st->kind == CREW_THREADS ? "threads" : "processes", "workers",
                                workers, "submitted", (unsigned long long)st->submitted, "done",
                                (unsigned long long)st->done, "failed",
                                (unsigned long long)st->failed, "crashed",
                                (unsigned long long)st->crashed, "timed_out",
                                (unsigned long long)st->timed_out, "cancelled",
                                (unsigned long long)st->cancelled);
    free(st);
    return d;
}

static PyObject *Pool_on_worker_thread(PoolObject *self, PyObject *Py_UNUSED(a))
{
    if (!self->p)
        Py_RETURN_FALSE;
    bool r;
    Py_BEGIN_ALLOW_THREADS /* it takes the pool's lock */
    r = crew__pool_on_worker_thread(self->p);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(r);
}

static PyObject *Pool_workers(PoolObject *self, PyObject *Py_UNUSED(a))
{
    return PyLong_FromLong(self->p ? crew_pool_workers(self->p) : 0);
}

static PyMethodDef Pool_methods[] = {
    {"submit", (PyCFunction)Pool_submit, METH_VARARGS,
     "submit(parts, timeout, callback, ctx=None) -> Future: queues the payload made of `parts` "
     "(buffers, copied once into shared memory); the future's ctx is set first; "
     "callback(future) runs once it is done, GIL held, on whichever thread delivers it."},
    {"close", (PyCFunction)Pool_close, METH_NOARGS, "Finishes queued work, stops the workers."},
    {"terminate", (PyCFunction)Pool_terminate, METH_NOARGS,
     "Stops now; pending work is cancelled. Returns how many completions wait for deliver()."},
    {"terminate_signal", (PyCFunction)Pool_terminate_signal, METH_O,
     "terminate_signal(sig): like terminate(), with sig sent to the process workers; their "
     "running tasks fail as crashed. Returns once the workers are gone."},
    {"free", (PyCFunction)Pool_free, METH_NOARGS, "Terminates and frees the pool."},
    {"stats", (PyCFunction)Pool_stats, METH_NOARGS, "A dict of the pool's counters."},
    {"workers", (PyCFunction)Pool_workers, METH_NOARGS, "The number of workers."},
    {"on_worker_thread", (PyCFunction)Pool_on_worker_thread, METH_NOARGS,
     "Whether the calling thread is one of this pool's thread workers."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Pool_slots[] = {
    {Py_tp_dealloc, Pool_dealloc},
    {Py_tp_new, Pool_new},
    {Py_tp_methods, Pool_methods},
    {Py_tp_doc, "Pool(kind, workers=0, start=0, task_timeout=0.0, max_tasks=0, init=None, "
                "spawn_argv=None, arena_size=0, prelude_fd=-1): a libcrew pool (private); "
                "spawn and forkserver workers exec spawn_argv (the interpreter running "
                "crew's bootstrap) with the prelude memfd prelude_fd."},
    {0, NULL},
};

static PyType_Spec Pool_spec = {
    .name = "crew._core.Pool",
    .basicsize = sizeof(PoolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Pool_slots,
};

/* ------------------------------------------------- module functions -- */

static PyObject *m_cpu_count(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    return PyLong_FromLong(crew_cpu_count());
}

static PyObject *m_set_runner(PyObject *m, PyObject *fn)
{
    core_state *st = get_state(m);
    Py_INCREF(fn);
    Py_XSETREF(st->runner, fn);
    Py_RETURN_NONE;
}

/* encode(obj, flags, dumps, oob) -> list of parts: obj as one frame of
 * crew's codec (_codec.h), for Pool.submit and the runner's result. */
static PyObject *m_encode(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "encode(obj, flags, dumps, oob)");
        return NULL;
    }
    long flags = PyLong_AsLong(args[1]);
    if (flags == -1 && PyErr_Occurred())
        return NULL;
    if (flags < 0 || flags > 255) {
        PyErr_SetString(PyExc_ValueError, "encode: flags must fit in a byte");
        return NULL;
    }
    int oob = PyObject_IsTrue(args[3]);
    if (oob < 0)
        return NULL;
    crew__codec_enc e;
    PyObject *r = NULL;
    if (crew__codec_encode(args[0], (int)flags, args[2], oob, &e) == 0)
        r = crew__codec_parts(&e);
    crew__codec_release(&e);
    return r;
}

/* decode(buf) -> (flags, obj): a frame of crew's codec; out-of-band buffers
 * are views of buf (no copy). ValueError for a malformed frame. */
static PyObject *m_decode(PyObject *m, PyObject *buf)
{
    Py_buffer v;
    if (PyObject_GetBuffer(buf, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    int flags = 0;
    PyObject *obj = crew__codec_decode(v.buf, (size_t)v.len, buf, get_state(m)->pickle_loads,
                                       &flags);
    PyBuffer_Release(&v);
    if (!obj)
        return NULL;
    PyObject *r = Py_BuildValue("(iN)", flags, obj);
    return r;
}

/* become(server, worker): the bootstrap of a spawned worker or a fork
 * server, once its prelude is applied: libcrew serves as the fork server,
 * or runs the worker, and the process exits. */
static PyObject *m_become(PyObject *m, PyObject *args)
{
    (void)m;
    const char *server, *worker;
    if (!PyArg_ParseTuple(args, "zz", &server, &worker))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS /* the hooks take the GIL for each fork and worker */
    rc = crew__become(server, worker);
    Py_END_ALLOW_THREADS
    return raise_crew(rc, "become");
}

/* The pids of this process's running fork servers. */
static PyObject *m_forkserver_pids(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    pid_t pids[64];
    int n;
    Py_BEGIN_ALLOW_THREADS /* it takes the fork servers' lock */
    n = crew__forkserver_pids(pids, 64);
    Py_END_ALLOW_THREADS
    if (n > 64)
        n = 64;
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) {
        PyObject *v = PyLong_FromLong(pids[i]);
        if (!v) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, v);
    }
    return l;
}

/* libcrew's fork-with-threads warning, or None when no other thread runs. */
static PyObject *m_fork_warning(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    char msg[512];
    if (!crew__fork_warning(msg, sizeof msg))
        Py_RETURN_NONE;
    return PyUnicode_FromString(msg);
}

/* The default start method, kept by libcrew for C and Python alike. */
static PyObject *m_get_start_method(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    return PyUnicode_FromString(crew_start_method_name(crew_get_start_method()));
}

static PyObject *m_set_start_method(PyObject *m, PyObject *arg)
{
    (void)m;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name)
        return NULL;
    crew_start_method sm = !strcmp(name, "fork")         ? CREW_START_FORK
                           : !strcmp(name, "spawn")      ? CREW_START_SPAWN
                           : !strcmp(name, "forkserver") ? CREW_START_FORKSERVER
                                                         : CREW_START_DEFAULT;
    if (sm == CREW_START_DEFAULT || crew_set_start_method(sm) < 0) {
        PyErr_Format(PyExc_ValueError, "unknown start method %R", arg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *m_strerror(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(crew_strerror(code));
}

/* map_chunksize(n, workers, chunksize) -> int: crew_map_chunksize, the one
 * chunk plan of C's and Python's maps. chunksize None: automatic (about 4
 * chunks per worker; n == 0, an input of unknown length: 1). ValueError
 * when chunksize < 1, TypeError when it is no integer. */
static PyObject *m_map_chunksize(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "map_chunksize takes 3 arguments");
        return NULL;
    }
    Py_ssize_t n = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    long workers = PyLong_AsLong(args[1]);
    if (workers == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    Py_ssize_t chunk = 0; /* 0: automatic */
    if (args[2] != Py_None) {
        int below = 0;
        if (!PyIndex_Check(args[2])) {
            /* no integer: a number below 1 (0.5) is still "below 1", as in
             * concurrent.futures; anything else is the TypeError below */
            PyObject *one = PyLong_FromLong(1);
            below = one ? PyObject_RichCompareBool(args[2], one, Py_LT) : -1;
            Py_XDECREF(one);
            if (below < 0) {
                PyErr_Clear();
                below = 0;
            }
        }
        if (!below) {
            chunk = PyNumber_AsSsize_t(args[2], NULL); /* a huge int clips to +-max */
            if (chunk == -1 && PyErr_Occurred())
                return NULL;
            below = chunk < 1;
        }
        if (below) {
            PyErr_SetString(PyExc_ValueError, "chunksize must be >= 1");
            return NULL;
        }
    }
    int w = workers > INT_MAX ? INT_MAX : workers < 0 ? 0 : (int)workers;
    return PyLong_FromSize_t(crew_map_chunksize((size_t)n, w, (size_t)chunk));
}

/* settle(fut, result, exception, pending, finished) -> bool: finishes a
 * concurrent.futures.Future that has no Condition yet (crew's futures make
 * theirs lazily), in one step no other Python thread can interleave with:
 * no Python code runs here. False: it has a Condition (a waiter, cf.wait,
 * a callback came first) or is not pending; the caller takes the locked path. */
static PyObject *m_settle(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "settle takes 5 arguments");
        return NULL;
    }
    core_state *st = get_state(m);
    PyObject *d = PyObject_GenericGetDict(args[0], NULL);
    if (!d)
        return NULL;
    PyObject *c = PyDict_GetItemWithError(d, st->s_condition);
    PyObject *state = c ? NULL : PyDict_GetItemWithError(d, st->s_state);
    if (PyErr_Occurred()) {
        Py_DECREF(d);
        return NULL;
    }
    if (c || state != args[3]) { /* crew's states are the cf module's str objects */
        Py_DECREF(d);
        Py_RETURN_FALSE;
    }
    int rc = PyDict_SetItem(d, st->s_result, args[1]);
    if (rc == 0)
        rc = PyDict_SetItem(d, st->s_exception, args[2]);
    if (rc == 0)
        rc = PyDict_SetItem(d, st->s_state, args[4]); /* last: readers check it first */
    Py_DECREF(d);
    if (rc < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *m_deliver(PyObject *m, PyObject *arg)
{
    Py_ssize_t limit = PyLong_AsSsize_t(arg);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromSsize_t(deferred_deliver(get_state(m), limit));
}

static PyMethodDef module_methods[] = {
    {"deliver", m_deliver, METH_O,
     "deliver(limit) -> int: delivers up to limit of the completions terminates left (< 0: "
     "all), oldest first; returns how many are still waiting."},
    {"settle", (PyCFunction)(void (*)(void))m_settle, METH_FASTCALL,
     "settle(fut, result, exception, pending, finished) -> bool: finishes a future that has "
     "no Condition yet, atomically with respect to other Python threads."},
    {"map_chunksize", (PyCFunction)(void (*)(void))m_map_chunksize, METH_FASTCALL,
     "map_chunksize(n, workers, chunksize) -> int: items per chunk (crew_map_chunksize, the one "
     "chunk plan of every crew map); chunksize None: about 4 chunks per worker, 1 when n is 0 "
     "(unknown); ValueError when chunksize < 1."},
    {"flatten", m_flatten, METH_O,
     "flatten(chunks) -> iterator over the values of the lists chunks yields, each handed "
     "over as drain() does; close() closes chunks."},
    {"drain", m_drain, METH_O,
     "drain(list) -> iterator over its items that clears each slot as it yields it, and "
     "empties the list at the end."},
    {"cpu_count", m_cpu_count, METH_NOARGS, "The CPUs this process may use (affinity, cgroup quota)."},
    {"set_runner", m_set_runner, METH_O, "Sets the Python runner of the 'crew.py' task."},
    {"become", m_become, METH_VARARGS,
     "become(server, worker): the values of $CREW_FORKSERVER and $CREW_WORKER (one is None); "
     "this process becomes that fork server or spawned worker and exits."},
    {"forkserver_pids", m_forkserver_pids, METH_NOARGS,
     "The pids of this process's running fork servers."},
    {"fork_warning", m_fork_warning, METH_NOARGS,
     "libcrew's fork-with-threads warning, or None when no other thread runs."},
    {"encode", (PyCFunction)(void (*)(void))m_encode, METH_FASTCALL,
     "encode(obj, flags, dumps, oob) -> list of buffers: obj as one frame of crew's codec "
     "(dumps(obj, 5[, buffer_callback=]) pickles; oob: large buffers out of band)."},
    {"decode", m_decode, METH_O,
     "decode(buf) -> (flags, obj): one frame of crew's codec; out-of-band buffers are views "
     "of buf. ValueError when the frame is malformed."},
    {"strerror", m_strerror, METH_O, "crew_strerror(code)."},
    {"get_start_method", m_get_start_method, METH_NOARGS,
     "The default start method (libcrew's, shared with C code in this process)."},
    {"set_start_method", m_set_start_method, METH_O,
     "Sets libcrew's default start method: 'fork', 'spawn' or 'forkserver'."},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *m)
{
    core_state *st = get_state(m);
    crew_set_worker_hooks(&py_hooks); /* the same for every import: this process is Python */
    int rc = crew_register(TASK_NAME, py_task, NULL);
    if (rc < 0 && rc != -EEXIST) {
        PyErr_Format(PyExc_RuntimeError, "crew: cannot register the Python task: %s",
                     crew_strerror(rc));
        return -1;
    }
    if (!(st->s_condition = PyUnicode_InternFromString("_condition")) ||
        !(st->s_state = PyUnicode_InternFromString("_state")) ||
        !(st->s_result = PyUnicode_InternFromString("_result")) ||
        !(st->s_exception = PyUnicode_InternFromString("_exception")))
        return -1;
    st->FutureType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Future_spec, NULL);
    if (!st->FutureType || PyModule_AddType(m, st->FutureType) < 0)
        return -1;
    st->PoolType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Pool_spec, NULL);
    if (!st->PoolType || PyModule_AddType(m, st->PoolType) < 0)
        return -1;
    st->ArgType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Arg_spec, NULL);
    if (!st->ArgType)
        return -1;
    st->FlattenType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Flatten_spec, NULL);
    if (!st->FlattenType || PyModule_AddType(m, st->FlattenType) < 0)
        return -1;
    PyObject *pk = PyImport_ImportModule("pickle");
    if (!pk)
        return -1;
    st->pickle_loads = PyObject_GetAttrString(pk, "loads");
    Py_DECREF(pk);
    if (!st->pickle_loads)
        return -1;
#define K(n, v)                                                                \
    if (PyModule_AddIntConstant(m, n, v) < 0)                                  \
        return -1;
    K("ECRASHED", CREW_ECRASHED)
    K("ETASK", CREW_ETASK)
    K("ENOTASK", CREW_ENOTASK)
    K("ECLOSED", CREW_ECLOSED)
    K("EINIT", CREW_EINIT)
    K("ETOOBIG", CREW_ETOOBIG)
    K("ETIMEDOUT", -ETIMEDOUT)
    K("ECANCELED", -ECANCELED)
    K("EINPROGRESS", -EINPROGRESS)
    K("START_FORK", CREW_START_FORK)
    K("START_SPAWN", CREW_START_SPAWN)
    K("START_FORKSERVER", CREW_START_FORKSERVER)
    K("THREADS", 1)
    K("OOB_MIN", CREW_FRAME_OOB_MIN)
    K("MAX_OOB", CREW_FRAME_MAX_OOB)
    K("PROCESSES", 2)
#undef K
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    core_state *st = get_state(m);
    Py_VISIT(st->FutureType);
    Py_VISIT(st->PoolType);
    Py_VISIT(st->ArgType);
    Py_VISIT(st->FlattenType);
    Py_VISIT(st->runner);
    Py_VISIT(st->pickle_loads);
    return 0;
}

static int module_clear(PyObject *m)
{
    core_state *st = get_state(m);
    Py_CLEAR(st->FutureType);
    Py_CLEAR(st->PoolType);
    Py_CLEAR(st->ArgType);
    Py_CLEAR(st->FlattenType);
    Py_CLEAR(st->runner);
    Py_CLEAR(st->pickle_loads);
    Py_CLEAR(st->s_condition);
    Py_CLEAR(st->s_state);
    Py_CLEAR(st->s_result);
    Py_CLEAR(st->s_exception);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "crew._core",
    .m_doc = "Private binding of libcrew for the crew package.",
    .m_size = sizeof(core_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
