/* The am_send slot of picows.websockets' awaitables (_Recv, _Send in
 * connection.py), which Cython does not generate for a cdef class.
 *
 * A Python coroutine awaiting one of them steps it with PyIter_Send, which
 * calls am_send when the type has one. Without it, a step that returns a
 * value must raise StopIteration(value), which the caller then fetches and
 * unpacks (the exception machinery, per message received). With it, the
 * value goes back as PYGEN_RETURN.
 *
 * The step itself is the type's tp_iternext (the class's __next__). When it
 * returns `value`, it calls picows_stop_iteration_with(self, value) and then
 * raises a bare StopIteration (NULL without an exception, which Cython
 * compiles without a traceback entry). If this am_send is stepping that very
 * object, the value is kept in picows_step_value for it; otherwise (the
 * object stepped by next(), send() or Cython's own yield from) the value is
 * set as StopIteration(value), as any iterator returns one.
 */
#ifndef PICOWS_AWAITABLE_H
#define PICOWS_AWAITABLE_H

#include <Python.h>

/* The object this am_send is stepping (borrowed), and the value its step
 * returned. Nested am_send calls save and restore the target, and take
 * their value before they return. */
static PyObject *picows_am_send_target = NULL;
static PyObject *picows_step_value = NULL;

static CYTHON_INLINE void
picows_stop_iteration_with(PyObject *self, PyObject *value)
{
    if (self == picows_am_send_target) {
        picows_am_send_target = NULL;
        Py_INCREF(value);
        Py_XSETREF(picows_step_value, value);
    }
    else {
        PyErr_SetObject(PyExc_StopIteration, value);
    }
}

/* The value of a StopIteration being raised (new reference), and the error
 * cleared; NULL with the error kept for any other exception. */
static PyObject *
picows_fetch_stop_iteration_value(void)
{
    PyObject *type, *value, *tb, *result;

    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return NULL;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    result = value != NULL ? PyObject_GetAttrString(value, "value") : NULL;
    if (result == NULL && !PyErr_Occurred()) {
        result = Py_None;
        Py_INCREF(result);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return result;
}

static PySendResult
picows_am_send(PyObject *self, PyObject *arg, PyObject **presult)
{
    PyObject *saved = picows_am_send_target;
    PyObject *result;

    if (arg == Py_None) {
        picows_am_send_target = self;
        result = Py_TYPE(self)->tp_iternext(self);
        picows_am_send_target = saved;
    }
    else {
        result = PyObject_CallMethod(self, "send", "O", arg);
    }
    if (result != NULL) {
        *presult = result;
        return PYGEN_NEXT;
    }
    if (picows_step_value != NULL) {
        *presult = picows_step_value;
        picows_step_value = NULL;
        return PYGEN_RETURN;
    }
    if (!PyErr_Occurred()) {
        Py_INCREF(Py_None);
        *presult = Py_None;
        return PYGEN_RETURN;
    }
    result = picows_fetch_stop_iteration_value();
    *presult = result;
    return result != NULL ? PYGEN_RETURN : PYGEN_ERROR;
}

/* Give `type` (a cdef class with __await__, so with tp_as_async) the am_send
 * above. */
static int
picows_install_am_send(PyObject *type)
{
    PyTypeObject *tp = (PyTypeObject *)type;

    if (!PyType_Check(type) || tp->tp_as_async == NULL || tp->tp_iternext == NULL) {
        PyErr_SetString(PyExc_TypeError, "picows: not an awaitable iterator type");
        return -1;
    }
    tp->tp_as_async->am_send = picows_am_send;
#ifdef Py_TPFLAGS_HAVE_AM_SEND
    tp->tp_flags |= Py_TPFLAGS_HAVE_AM_SEND;
#endif
    PyType_Modified(tp);
    return 0;
}

/* func(**kwargs) with the dict itself: Cython would copy it per call
 * (recv() makes an asyncio.Future(loop=...) per wait). */
static CYTHON_INLINE PyObject *
picows_call_with_kwargs(PyObject *func, PyObject *kwargs)
{
    PyObject *args = PyTuple_New(0);
    PyObject *result;

    if (args == NULL) {
        return NULL;
    }
    result = PyObject_Call(func, args, kwargs);
    Py_DECREF(args);
    return result;
}

#endif
