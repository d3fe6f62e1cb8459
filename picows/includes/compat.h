/* CPython internals picows relies on, each with its reason, and the HTTP head scan.
   Included after Python.h. */
#ifndef PICOWS_COMPAT_H
#define PICOWS_COMPAT_H

#include <stdint.h>

/* The memory of a memoryview that is C-contiguous and not released,
   read off the object itself: send() gets it without a
   PyObject_GetBuffer/PyBuffer_Release pair, which costs more than the
   rest of a small send. Returns 0 for anything else (the caller asks
   the buffer protocol, which also raises the right errors). */
static inline int picows_memoryview_memory(PyObject* o, char** buf,
                                           Py_ssize_t* len) {
#if defined(PYPY_VERSION) || defined(Py_LIMITED_API) \
    || !defined(_Py_MEMORYVIEW_RELEASED) || !defined(_Py_MEMORYVIEW_C)
    return 0;
#else
    PyMemoryViewObject* mv = (PyMemoryViewObject*)o;
    if ((mv->flags & _Py_MEMORYVIEW_RELEASED)
            || !(mv->flags & _Py_MEMORYVIEW_C))
        return 0;
    *buf = (char*)mv->view.buf;
    *len = mv->view.len;
    return 1;
#endif
}

/* Python subclasses of WSListener (the usual listener) are created by
   object.__new__ rather than by Cython's tp_new, which only calls
   tp_alloc: on CPython 3.11 object.__new__ also sets up the instance's
   inline attribute values, and without them the interpreter never
   specializes `self.x` loads and stores in the listener's methods (each
   stays a generic dict lookup, several times slower). The vtable
   pointer, WSListener's only C field, is then set as Cython sets it.
   Static types (WSListener, cdef subclasses) keep Cython's tp_new. */
static void* picows_listener_vtab = NULL;
static newfunc picows_listener_cython_new = NULL;

static PyObject* picows_listener_new(PyTypeObject* t, PyObject* args,
                                     PyObject* kwds) {
#if defined(Py_TPFLAGS_MANAGED_DICT) && !defined(PYPY_VERSION) \
    && !defined(Py_LIMITED_API)
    if (PyType_HasFeature(t, Py_TPFLAGS_MANAGED_DICT)) {
        PyObject* empty = PyTuple_New(0);
        PyObject* o;
        if (empty == NULL)
            return NULL;
        o = PyBaseObject_Type.tp_new(t, empty, NULL);
        Py_DECREF(empty);
        if (o != NULL)
            *(void**)((char*)o + sizeof(PyObject)) = picows_listener_vtab;
        return o;
    }
#endif
    return picows_listener_cython_new(t, args, kwds);
}

static int picows_install_listener_new(PyObject* type, void* vtab) {
    PyTypeObject* t = (PyTypeObject*)type;
    if (vtab == NULL || t->tp_new == NULL)
        return 0;
    picows_listener_vtab = vtab;
    picows_listener_cython_new = t->tp_new;
    t->tp_new = picows_listener_new;
    return 0;
}

/* A read-only object slot at `offset` of instances of `type`, installed
   as the class attribute `name`. `x.name` then costs a few
   instructions: CPython 3.11+
   specializes loads of T_OBJECT_EX member slots (LOAD_ATTR_SLOT), not
   of getset descriptors. */
#if PY_VERSION_HEX >= 0x030C0000
#define PICOWS_T_OBJECT_EX Py_T_OBJECT_EX
#define PICOWS_READONLY Py_READONLY
#else
#include <structmember.h>
#define PICOWS_T_OBJECT_EX T_OBJECT_EX
#define PICOWS_READONLY READONLY
#endif
static PyMemberDef picows_slot_def;   /* one slot: WSFrame.msg_type */

static int picows_install_slot(PyObject* type, const char* name,
                               Py_ssize_t offset, const char* doc) {
    PyTypeObject* t = (PyTypeObject*)type;
    PyMemberDef* m = &picows_slot_def;
    PyObject* descr;
    int rc;
    if (m->name != NULL || t->tp_dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "picows_install_slot");
        return -1;
    }
    m->name = name;
    m->type = PICOWS_T_OBJECT_EX;
    m->offset = offset;
    m->flags = PICOWS_READONLY;
    m->doc = doc;
    descr = PyDescr_NewMember(t, m);
    if (descr == NULL)
        return -1;
    rc = PyDict_SetItemString(t->tp_dict, name, descr);
    Py_DECREF(descr);
    PyType_Modified(t);
    return rc;
}

/* Offset of "\r\n\r\n" in p[0:n], or -1. */
static inline Py_ssize_t picows_find_head_end(const uint8_t* p, size_t n) {
    size_t i;
    for (i = 0; i + 4 <= n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r'
                && p[i + 3] == '\n')
            return (Py_ssize_t)i;
    }
    return -1;
}

/* WSListener.on_ws_frame(listener, transport, frame) through the vtable,
   without Cython's check for a Python override. A cpdef method called
   through the vtable (skip_dispatch == 0) looks, on every call, for an
   override in a Python subclass: for a listener whose class is a Python
   subclass of a Cython one (picows.websockets' connections) that is an
   attribute lookup per frame, and a miss of Cython's one-entry cache
   whenever two such classes alternate (client and server connections in
   one process). WSProtocolCore._open has looked once (a Python override
   goes through _on_frame_py), so the protocol calls the vtable's entry with
   skip_dispatch = 1. Expanded in picows.c, after Cython's declarations of
   these structs (a renamed struct fails the build, not the call). */
#define picows_listener_on_ws_frame(l, t, f)                               \
    (((struct __pyx_vtabstruct_6picows_6picows_WSListener *)               \
      ((struct __pyx_obj_6picows_6picows_WSListener *)(l))->__pyx_vtab)    \
         ->on_ws_frame((struct __pyx_obj_6picows_6picows_WSListener *)(l), \
                       (t), (f), 1))

#endif /* PICOWS_COMPAT_H */
