# picows core: one extension module made of the units in _core/, included
# here in dependency order (as uvloop includes its handles/). Calls between
# units stay direct C calls. Their declarations are in picows.pxd and
# _core/*.pxd; the C helpers are real headers in includes/.
#
#   _core/frame.pyx      frame headers, masks, WSFrame, the protocol error
#   _core/listener.pyx   WSListener, the user's callbacks
#   _core/buffer.pyx     the read window handed to the event loop
#   _core/writer.pyx     _SocketWriter: direct socket writes and the backlog
#   _core/deflate.pyx    _PerMessageDeflate: both zlib streams (RFC 7692)
#   _core/options.pyx    _ConnectionOptions: what ws_connect/ws_create_server got
#   _core/transport.pyx  WSTransport, the sending side
#   _core/protocol.pyx   WSProtocolCore: read buffer, frame parser, close
#   _core/upgrade.pyx    the HTTP upgrade of WSProtocolCore (both roles)
#   _core/keepalive.pyx  automatic pings and their pongs
#   _core/tls.pyx        _TLSLayer: picows' own TLS (both loops)
#   _core/broadcast.pyx  broadcast(): one frame built for many connections
#
# Everything per frame lives in these units; everything per connection that
# needs no speed (handshake parsing, URLs, proxies) is plain Python in
# handshake.py and api.py.

import asyncio
import inspect
import logging
import os
import ssl
import time

cimport cython
from cpython.buffer cimport (PyBUF_SIMPLE, PyBuffer_FillInfo, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from cpython.bytearray cimport (PyByteArray_AS_STRING, PyByteArray_GET_SIZE,
                                PyByteArray_Resize)
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset

from .compression import _isal_zlib, as_compression, negotiate_deflate, parse_deflate_response
from .handshake import (MAX_HEAD_SIZE, build_error_response, build_response,
                        complete_101, is_upgrade_request, joined_header,
                        parse_http_request,
                        parse_response_head, parse_upgrade_response,
                        validate_upgrade_request)
from .types import (WSCloseHandshake, WSCloseInfo, WSError, WSHandshakeError,
                    WSProtocolError, get_logger,
                    WSUpgradeResponse, WSUpgradeResponseWithListener)


cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    # On a borrowed pointer: Cython's Py_REFCNT(obj) takes a reference of
    # its own first, so it never reads 1.
    Py_ssize_t _refcnt "Py_REFCNT"(PyObject* o)
    int PyBUF_READ
    Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "includes/compat.h":
    bint picows_memoryview_memory(object o, char** buf, Py_ssize_t* len)
    int picows_install_listener_new(object type, void* vtab)
    int picows_install_slot(object type, const char* name, Py_ssize_t offset,
                            const char* doc) except -1
    Py_ssize_t picows_find_head_end(const uint8_t* p, size_t n) nogil
    object _listener_on_ws_frame "picows_listener_on_ws_frame" (
        WSListener listener, WSTransport transport, WSFrame frame)


cdef extern from "includes/send.h" nogil:
    int PICOWS_HAVE_SEND
    Py_ssize_t picows_send(int fd, const void* buf, size_t n)
    Py_ssize_t picows_recv(int fd, void* buf, size_t n)
    int picows_errno()
    bint picows_retry_errno(int err)
    Py_ssize_t picows_send2(int fd, const void* a, size_t na, const void* b, size_t nb)


cdef extern from "includes/openssl.h":
    ctypedef struct picows_openssl_api:
        int SSL_read(void*, void*, int) nogil
        int SSL_write(void*, const void*, int) nogil
        int SSL_get_error(const void*, int) nogil
        int SSL_pending(const void*) nogil
        void* SSL_get_rbio(const void*) nogil
        void* SSL_get_wbio(const void*) nogil
        long BIO_ctrl(void*, int, long, void*) nogil
        unsigned long ERR_get_error() nogil
        unsigned long ERR_peek_last_error() nogil
        void ERR_clear_error() nogil
        void ERR_error_string_n(unsigned long, char*, size_t) nogil
        int BIO_free(void*) nogil
    picows_openssl_api picows_ossl
    int PICOWS_SSL_ERROR_WANT_READ
    int PICOWS_SSL_ERROR_SYSCALL
    int PICOWS_SSL_ERROR_ZERO_RETURN
    int picows_ssl_io(int is_write, void* s, const void* buf, int n, int* err,
                      unsigned long* code)
    void* picows_ssl_field(PyObject* o, int n_before)
    int picows_openssl_load(const char* ssl_module_path)


cdef extern from "includes/scratch.h":
    char* picows_scratch(Py_ssize_t size) nogil


cdef extern from "includes/tlsbio.h":
    ctypedef struct picows_tlsbio:
        const char* data
        size_t len
    void* picows_tlsbio_new(int out)
    picows_tlsbio* picows_tlsbio_state(void* bio)
    int picows_tlsbio_keep(picows_tlsbio* st)
    const char* picows_tlsbio_take(picows_tlsbio* st, size_t* len)
    int picows_tlsbio_adopt(void* s, void* bio_in, void* bio_out)


cdef extern from "includes/mask.h" nogil:
    void picows_mask_copy(uint8_t* dst, const uint8_t* src, size_t n,
                          const uint8_t* mask, size_t offset)


cdef extern from "includes/utf8.h" nogil:
    uint32_t picows_utf8_validate(uint32_t s, const uint8_t* p, size_t n)


include "_core/frame.pyx"
include "_core/listener.pyx"
include "_core/buffer.pyx"
include "_core/writer.pyx"
include "_core/deflate.pyx"
include "_core/options.pyx"
include "_core/transport.pyx"
include "_core/protocol.pyx"
include "_core/upgrade.pyx"
include "_core/keepalive.pyx"
include "_core/tls.pyx"
include "_core/broadcast.pyx"


# -- module init ---------------------------------------------------------------

_BASE_ON_WS_FRAME = getattr(WSListener, "on_ws_frame")
_BASE_USER_PING = getattr(WSListener, "send_user_specific_ping")
_BASE_USER_PONG = getattr(WSListener, "is_user_specific_pong")

picows_install_listener_new(
    WSListener, PyCapsule_GetPointer(WSListener.__dict__["__pyx_vtable__"], NULL))


cdef int _install_msg_type_slot() except -1:
    cdef WSFrame probe = WSFrame.__new__(WSFrame)
    cdef Py_ssize_t offset = <char*>&probe._msg_type_member - <char*><PyObject*>probe
    picows_install_slot(WSFrame, "msg_type", offset, ":any:`WSMsgType` of the frame.")
    return 0


_install_msg_type_slot()
