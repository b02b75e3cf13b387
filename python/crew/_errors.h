/* _errors.h — the one mapping from crew's error codes to Python exceptions, shared by both extension modules. */
#ifndef CREW_PY_ERRORS_H
#define CREW_PY_ERRORS_H

#include <Python.h>
#include <errno.h>

#include "crew.h"

/*
 * Raises the exception for crew code rc and returns NULL. what, when not
 * NULL, says what failed ("cannot create the pool"). The mapping:
 *   -ENOMEM                  MemoryError
 *   -EINVAL, CREW_ETOOBIG    ValueError (a bad argument; one too big for the arena)
 *   CREW_ECLOSED             RuntimeError (the pool is closed)
 *   another -errno           OSError with .errno set (so FileNotFoundError,
 *                            PermissionError, ... as Python picks them)
 *   another crew code        RuntimeError naming it (crew_strerror)
 */
static inline PyObject *crew_py_raise(int rc, const char *what)
{
    if (rc == -ENOMEM)
        return PyErr_NoMemory();
    const char *msg = crew_strerror(rc);
    if (rc == -EINVAL || rc == CREW_ETOOBIG || rc == CREW_ECLOSED || rc <= -4096 || rc >= 0) {
        PyObject *type =
            rc == -EINVAL || rc == CREW_ETOOBIG ? PyExc_ValueError : PyExc_RuntimeError;
        if (what)
            PyErr_Format(type, "crew: %s: %s", what, msg);
        else
            PyErr_Format(type, "crew: %s (%d)", msg, rc);
        return NULL;
    }
    if (rc <= -1000 && rc > -4096) { /* crew's own codes */
        if (what)
            PyErr_Format(PyExc_RuntimeError, "crew: %s: %s", what, msg);
        else
            PyErr_Format(PyExc_RuntimeError, "crew: %s (%d)", msg, rc);
        return NULL;
    }
    PyObject *text = what ? PyUnicode_FromFormat("crew: %s: %s", what, msg)
                          : PyUnicode_FromFormat("crew: %s", msg);
    if (!text)
        return NULL;
    PyObject *args = Py_BuildValue("(iN)", -rc, text);
    if (args) {
        PyErr_SetObject(PyExc_OSError, args); /* OSError picks the subclass */
        Py_DECREF(args);
    }
    return NULL;
}

#endif
