/* _codec.c — encodes and decodes a Python object as a frame in crew shared memory (the format is in _frame.h). */
#define PY_SSIZE_T_CLEAN
#include "_codec.h"

#include <string.h>

static const char zeros[CREW_FRAME_ALIGN];

static void add(crew__codec_enc *e, const void *p, size_t len, PyObject *src)
{
    e->iov[e->n].iov_base = (void *)p;
    e->iov[e->n].iov_len = len;
    e->src[e->n] = src;
    e->n++;
    e->len += len;
}

void crew__codec_release(crew__codec_enc *e)
{
    if (e->has_view)
        PyBuffer_Release(&e->view);
    e->has_view = 0;
    for (int i = 0; i < e->nkeep; i++)
        Py_DECREF(e->keep[i]);
    e->nkeep = 0;
    e->n = 0;
    e->len = 0;
}

/* A header of kind with flags and the payload p (len bytes, src its owner). */
static void fast(crew__codec_enc *e, char kind, int flags, const void *p, size_t len,
                 PyObject *src)
{
    e->head[0] = (unsigned char)kind;
    e->head[1] = (unsigned char)flags;
    add(e, e->head, 2, NULL);
    add(e, p, len, src);
}

/* The fast kinds: 0 encoded, 1 not one of them, -1 error. */
static int encode_fast(PyObject *obj, int flags, crew__codec_enc *e)
{
    PyTypeObject *t = Py_TYPE(obj);
    if (t == &PyBytes_Type) {
        fast(e, 'B', flags, PyBytes_AS_STRING(obj), (size_t)PyBytes_GET_SIZE(obj), obj);
    } else if (t == &PyByteArray_Type) {
        /* exported until released: no other thread resizes it meanwhile */
        if (PyObject_GetBuffer(obj, &e->view, PyBUF_SIMPLE) < 0)
            return -1;
        e->has_view = 1;
        fast(e, 'A', flags, e->view.buf, (size_t)e->view.len, obj);
    } else if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(obj, &n); /* cached in the str */
        if (!s)
            return -1;
        fast(e, 'S', flags, s, (size_t)n, NULL);
    } else if (t == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow)
            return 1;
        e->head[0] = 'I';
        e->head[1] = (unsigned char)flags;
        crew__frame_put_u64(e->head + 2, (uint64_t)v);
        add(e, e->head, 10, NULL);
        return 0;
    } else if (t == &PyFloat_Type) {
        double v = PyFloat_AS_DOUBLE(obj);
        uint64_t u;
        memcpy(&u, &v, 8);
        e->head[0] = 'F';
        e->head[1] = (unsigned char)flags;
        crew__frame_put_u64(e->head + 2, u);
        add(e, e->head, 10, NULL);
        return 0;
    } else if (PyMemoryView_Check(obj)) {
        /* exported until released: a released view raises ValueError here
         * (its memory may be gone), and none is released meanwhile */
        if (PyObject_GetBuffer(obj, &e->view, PyBUF_SIMPLE) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_BufferError))
                return -1;
            PyErr_Clear(); /* not C-contiguous: pickled (which refuses it) */
            return 1;
        }
        e->has_view = 1;
        fast(e, 'B', flags, e->view.buf, (size_t)e->view.len, NULL); /* copied by parts() */
    } else {
        return 1;
    }
    Py_INCREF(obj);
    e->keep[e->nkeep++] = obj;
    return 0;
}

/* buffer_callback of pickle: a buffer of the policy (contiguous, at least
 * CREW_FRAME_OOB_MIN bytes, one of the first CREW_FRAME_MAX_OOB) is
 * appended to the list `bufs` as a byte view and kept out of band (False);
 * any other is pickled in band (True). */
static PyObject *buffer_cb(PyObject *bufs, PyObject *pb)
{
    PyObject *m = PyObject_CallMethod(pb, "raw", NULL);
    if (!m) {
        if (!PyErr_ExceptionMatches(PyExc_BufferError))
            return NULL;
        PyErr_Clear(); /* not contiguous: in band */
        Py_RETURN_TRUE;
    }
    if (!PyMemoryView_Check(m) || PyMemoryView_GET_BUFFER(m)->len < CREW_FRAME_OOB_MIN ||
        PyList_GET_SIZE(bufs) >= CREW_FRAME_MAX_OOB) {
        Py_DECREF(m);
        Py_RETURN_TRUE;
    }
    int rc = PyList_Append(bufs, m);
    Py_DECREF(m);
    if (rc < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static PyMethodDef buffer_cb_def = {"buffer_callback", buffer_cb, METH_O,
                                    "crew's out-of-band policy for pickle buffers."};

int crew__codec_encode(PyObject *obj, int flags, PyObject *dumps, int oob, crew__codec_enc *e)
{
    e->n = 0;
    e->len = 0;
    e->nkeep = 0;
    e->has_view = 0;
    int r = encode_fast(obj, flags, e);
    if (r <= 0)
        return r;
    PyObject *data, *bufs = NULL;
    if (oob) {
        if (!(bufs = PyList_New(0)))
            return -1;
        e->keep[e->nkeep++] = bufs;
        PyObject *cb = PyCFunction_New(&buffer_cb_def, bufs);
        PyObject *kw = cb ? Py_BuildValue("{s:O}", "buffer_callback", cb) : NULL;
        Py_XDECREF(cb);
        if (!kw)
            return -1;
        PyObject *args = Py_BuildValue("(Oi)", obj, 5);
        data = args ? PyObject_Call(dumps, args, kw) : NULL;
        Py_XDECREF(args);
        Py_DECREF(kw);
    } else {
        data = PyObject_CallFunction(dumps, "Oi", obj, 5);
    }
    if (!data)
        return -1;
    e->keep[e->nkeep++] = data;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "crew: the pickler returned %.100s, not bytes",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    size_t nb = bufs ? (size_t)PyList_GET_SIZE(bufs) : 0;
    if (nb > CREW_FRAME_MAX_OOB) { /* buffer_cb keeps to it: only a pickler that appends */
        PyErr_SetString(PyExc_SystemError, "crew: too many out-of-band buffers");
        return -1;
    }
    size_t plen = (size_t)PyBytes_GET_SIZE(data);
    size_t head = CREW_FRAME_HDR + 16 * nb;
    unsigned char *h = e->head;
    h[0] = 'P';
    h[1] = (unsigned char)flags;
    h[2] = h[3] = 0;
    crew__frame_put_u32(h + 4, (uint32_t)nb);
    crew__frame_put_u64(h + 8, plen);
    add(e, h, head, NULL);
    add(e, PyBytes_AS_STRING(data), plen, data);
    size_t pos = head + plen;
    for (size_t i = 0; i < nb; i++) {
        PyObject *mv = PyList_GET_ITEM(bufs, (Py_ssize_t)i);
        Py_buffer *b = PyMemoryView_GET_BUFFER(mv);
        size_t pad = (CREW_FRAME_ALIGN - pos % CREW_FRAME_ALIGN) % CREW_FRAME_ALIGN;
        if (pad) {
            add(e, zeros, pad, NULL);
            pos += pad;
        }
        crew__frame_put_u64(h + CREW_FRAME_HDR + 16 * i, pos);
        crew__frame_put_u64(h + CREW_FRAME_HDR + 16 * i + 8, (uint64_t)b->len);
        add(e, b->buf, (size_t)b->len, mv);
        pos += (size_t)b->len;
    }
    return 0;
}

char *crew__codec_join(crew__codec_enc *e, char *small, size_t cap, char **owned)
{
    *owned = NULL;
    if (e->n == 1)
        return e->iov[0].iov_base;
    char *p = small;
    if (e->len > cap) {
        p = *owned = PyMem_Malloc(e->len ? e->len : 1);
        if (!p) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    size_t off = 0;
    for (int i = 0; i < e->n; i++) {
        memcpy(p + off, e->iov[i].iov_base, e->iov[i].iov_len);
        off += e->iov[i].iov_len;
    }
    return p;
}

PyObject *crew__codec_parts(crew__codec_enc *e)
{
    PyObject *parts = PyList_New(e->n);
    for (int i = 0; parts && i < e->n; i++) {
        PyObject *o = e->src[i];
        if (o)
            Py_INCREF(o);
        else
            o = PyBytes_FromStringAndSize(e->iov[i].iov_base, (Py_ssize_t)e->iov[i].iov_len);
        if (!o)
            Py_CLEAR(parts);
        else
            PyList_SET_ITEM(parts, i, o);
    }
    return parts;
}

/* loads(pickle, buffers=[...]) over a byte view `whole` of the frame f. */
static PyObject *decode_oob(PyObject *whole, const crew__frame *f, PyObject *loads)
{
    PyObject *bufs = PyList_New(f->nbufs), *r = NULL;
    if (!bufs)
        return NULL;
    for (uint32_t i = 0; i < f->nbufs; i++) {
        Py_ssize_t off = (Py_ssize_t)f->buf[i][0], ln = (Py_ssize_t)f->buf[i][1];
        PyObject *sl = PySequence_GetSlice(whole, off, off + ln);
        if (!sl) {
            Py_DECREF(bufs);
            return NULL;
        }
        PyList_SET_ITEM(bufs, i, sl);
    }
    PyObject *pk = PySequence_GetSlice(whole, (Py_ssize_t)f->pickle,
                                       (Py_ssize_t)(f->pickle + f->pickle_len));
    PyObject *args = pk ? PyTuple_Pack(1, pk) : NULL;
    PyObject *kw = args ? Py_BuildValue("{s:O}", "buffers", bufs) : NULL;
    if (kw)
        r = PyObject_Call(loads, args, kw);
    Py_XDECREF(pk);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_DECREF(bufs);
    return r;
}

PyObject *crew__codec_decode(const char *p, size_t len, PyObject *base, PyObject *loads,
                             int *flags)
{
    crew__frame f;
    int rc = len > (size_t)PY_SSIZE_T_MAX ? -EINVAL : crew__frame_parse(p, len, &f);
    if (rc == -ENODATA) {
        PyErr_SetString(PyExc_ValueError, "crew: empty shared message");
        return NULL;
    }
    if (rc < 0) {
        PyErr_SetString(PyExc_ValueError, "crew: malformed shared message");
        return NULL;
    }
    if (flags)
        *flags = f.flags;
    const char *b = p + f.body;
    Py_ssize_t n = (Py_ssize_t)f.body_len;
    switch (f.kind) {
    case 'B':
        return PyBytes_FromStringAndSize(b, n);
    case 'A':
        return PyByteArray_FromStringAndSize(b, n);
    case 'S':
        return PyUnicode_DecodeUTF8(b, n, "strict");
    case 'I':
    case 'F': {
        unsigned char u[8];
        memcpy(u, b, 8);
        uint64_t v = crew__frame_u64(u);
        if (f.kind == 'I')
            return PyLong_FromLongLong((long long)v);
        double d;
        memcpy(&d, &v, 8);
        return PyFloat_FromDouble(d);
    }
    default: /* 'P' */
        break;
    }
    if (f.nbufs == 0) { /* in band: unpickled straight from p */
        PyObject *mv = PyMemoryView_FromMemory((char *)p + f.pickle, (Py_ssize_t)f.pickle_len,
                                               PyBUF_READ);
        if (!mv)
            return NULL;
        PyObject *r = PyObject_CallOneArg(loads, mv);
        Py_DECREF(mv);
        return r;
    }
    /* out of band: the buffers are views of the frame, whose owner they keep */
    PyObject *whole;
    if (base) {
        whole = PyMemoryView_FromObject(base);
        if (!whole)
            return NULL;
        Py_buffer *v = PyMemoryView_GET_BUFFER(whole);
        if (v->buf != p || (size_t)v->len != len || v->ndim != 1 || v->itemsize != 1) {
            Py_DECREF(whole);
            PyErr_SetString(PyExc_SystemError, "crew: decode's base is not its frame");
            return NULL;
        }
    } else {
        PyObject *own = PyByteArray_FromStringAndSize(p, (Py_ssize_t)len);
        if (!own)
            return NULL;
        whole = PyMemoryView_FromObject(own);
        Py_DECREF(own);
        if (!whole)
            return NULL;
    }
    PyObject *r = decode_oob(whole, &f, loads);
    Py_DECREF(whole);
    return r;
}
