# picows core: read buffer, frame parser, WSFrame, WSTransport, WSListener and
# the asyncio protocol. Everything per frame lives here, in C-level code;
# everything per connection that needs no speed (handshake parsing, URLs,
# argument checks) is plain Python in handshake.py and api.py.

import asyncio
import logging
import os
import ssl
import time
import zlib

cimport cython
from cpython.buffer cimport (PyBUF_SIMPLE, PyBuffer_FillInfo, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from .handshake import (MAX_HEAD_SIZE, build_error_response,
                        build_upgrade_response, negotiate_deflate,
                        parse_deflate_response, parse_upgrade_request,
                        parse_upgrade_response)
from .types import WSError, WSHandshakeError


cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    # On a borrowed pointer: Cython's Py_REFCNT(obj) takes a reference of
    # its own first, so it never reads 1.
    Py_ssize_t _refcnt "Py_REFCNT"(PyObject* o)
    int PyBUF_READ
    Py_ssize_t PY_SSIZE_T_MAX


cdef extern from *:
    """
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
    """
    bint picows_memoryview_memory(object o, char** buf, Py_ssize_t* len)


cdef extern from *:
    """
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
    """
    int picows_install_listener_new(object type, void* vtab)


cdef extern from *:
    """
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
    """
    int picows_install_slot(object type, const char* name, Py_ssize_t offset,
                            const char* doc) except -1


cdef extern from * nogil:
    """
    #include <string.h>
    #include <stdint.h>
    #ifndef _WIN32
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #define PICOWS_HAVE_SEND 1
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    static inline Py_ssize_t picows_send(int fd, const void* buf, size_t n) {
        return (Py_ssize_t)send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    /* Header and payload in one system call, without copying the payload. */
    static inline Py_ssize_t picows_send2(int fd, const void* a, size_t na,
                                          const void* b, size_t nb) {
        struct iovec iov[2];
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        iov[0].iov_base = (void*)a;
        iov[0].iov_len = na;
        iov[1].iov_base = (void*)b;
        iov[1].iov_len = nb;
        msg.msg_iov = iov;
        msg.msg_iovlen = 2;
        return (Py_ssize_t)sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    #else
    #define PICOWS_HAVE_SEND 0
    static inline Py_ssize_t picows_send(int fd, const void* buf, size_t n) {
        return -1;
    }
    static inline Py_ssize_t picows_send2(int fd, const void* a, size_t na,
                                          const void* b, size_t nb) {
        return -1;
    }
    #endif

    /* XOR `n` bytes at `p` with the 4-byte `mask`, as if the first byte were
       at position `offset` of the payload (RFC 6455 5.3). 32, then 8 bytes
       at a time; GCC and clang turn the 32-byte vectors into SIMD, and on
       x86-64 GCC also builds an AVX2 clone picked at load time. */
    #if defined(__GNUC__)
    typedef uint8_t picows_v32 __attribute__((vector_size(32)));
    #endif
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
        && defined(__linux__)
    __attribute__((target_clones("avx2", "default")))
    #endif
    static void picows_mask_copy(uint8_t* dst, const uint8_t* src,
                                        size_t n, const uint8_t* mask,
                                        size_t offset) {
        /* The mask rotated to `offset`, 8 bytes of it: byte order does not
           matter, the same bytes are XORed at the same positions. */
        uint8_t m[8];
        size_t i = 0, j;
        uint64_t m64, w;
        if ((offset & 3) == 0) {
            memcpy(m, mask, 4);
        } else {
            for (j = 0; j < 4; j++) m[j] = mask[(offset + j) & 3];
        }
        memcpy(m + 4, m, 4);
        memcpy(&m64, m, 8);
    #if defined(__GNUC__)
        if (n >= 32) {
            uint64_t m256[4] = {m64, m64, m64, m64};
            picows_v32 mv, v;
            memcpy(&mv, m256, 32);
            for (; i + 32 <= n; i += 32) {
                memcpy(&v, src + i, 32);
                v ^= mv;
                memcpy(dst + i, &v, 32);
            }
        }
    #endif
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, src + i, 8);
            w ^= m64;
            memcpy(dst + i, &w, 8);
        }
        for (; i < n; i++) dst[i] = src[i] ^ m[i & 7];
    }

    /* Incremental UTF-8 validation (RFC 3629, no surrogates, no overlongs,
       nothing above U+10FFFF). State 0: at a code point boundary; 1: invalid
       (final); 2-8: inside a sequence, encoding what the next byte must be. */
    static inline uint32_t picows_utf8_validate(uint32_t s, const uint8_t* p,
                                                size_t n) {
        size_t i = 0;
        uint64_t w;
        uint8_t c;
        while (i < n) {
            if (s == 0) {
                while (i + 8 <= n) {
                    memcpy(&w, p + i, 8);
                    if (w & 0x8080808080808080ULL) break;
                    i += 8;
                }
                if (i >= n) break;
                c = p[i++];
                if (c < 0x80) continue;
                else if (c < 0xC2) return 1;
                else if (c < 0xE0) s = 2;
                else if (c == 0xE0) s = 5;
                else if (c == 0xED) s = 6;
                else if (c < 0xF0) s = 3;
                else if (c == 0xF0) s = 7;
                else if (c < 0xF4) s = 4;
                else if (c == 0xF4) s = 8;
                else return 1;
            } else {
                c = p[i++];
                switch (s) {
                case 2: if ((c & 0xC0) != 0x80) return 1; s = 0; break;
                case 3: if ((c & 0xC0) != 0x80) return 1; s = 2; break;
                case 4: if ((c & 0xC0) != 0x80) return 1; s = 3; break;
                case 5: if (c < 0xA0 || c > 0xBF) return 1; s = 2; break;
                case 6: if (c < 0x80 || c > 0x9F) return 1; s = 2; break;
                case 7: if (c < 0x90 || c > 0xBF) return 1; s = 3; break;
                case 8: if (c < 0x80 || c > 0x8F) return 1; s = 3; break;
                default: return 1;
                }
            }
        }
        return s;
    }

    /* Offset of "\\r\\n\\r\\n" in p[0:n], or -1. */
    static inline Py_ssize_t picows_find_head_end(const uint8_t* p, size_t n) {
        size_t i;
        for (i = 0; i + 4 <= n; i++) {
            if (p[i] == '\\r' && p[i + 1] == '\\n' && p[i + 2] == '\\r'
                    && p[i + 3] == '\\n')
                return (Py_ssize_t)i;
        }
        return -1;
    }
    """
    int PICOWS_HAVE_SEND
    Py_ssize_t picows_send(int fd, const void* buf, size_t n)
    Py_ssize_t picows_send2(int fd, const void* a, size_t na, const void* b, size_t nb)
    void picows_mask_copy(uint8_t* dst, const uint8_t* src, size_t n,
                          const uint8_t* mask, size_t offset)
    uint32_t picows_utf8_validate(uint32_t s, const uint8_t* p, size_t n)
    Py_ssize_t picows_find_head_end(const uint8_t* p, size_t n)


# ---------------------------------------------------------------------------
# Constants and small helpers

DEF _INITIAL_READ_BUFFER = 16 * 1024
DEF _MIN_FREE_SPACE = 4 * 1024
DEF _SHRINK_ABOVE = 256 * 1024
DEF _MASK_POOL_SIZE = 4096
DEF _MAX_CONTROL_PAYLOAD = 125
DEF _GATHER_WRITE_MIN = 16 * 1024
DEF _REUSE_WRITE_MIN = 64 * 1024
DEF _WBUF_KEEP = 256 * 1024

# Connection states
cdef enum _State:
    HANDSHAKE = 0     # waiting for the upgrade request / response
    OPEN = 1          # frames flow both ways
    CLOSE_SENT = 2    # we sent CLOSE (user or auto); still reading
    FAILED = 3        # we failed the connection; reading only to find CLOSE
    CLOSE_RECEIVED = 4  # the peer's CLOSE arrived; nothing more is parsed
    DISCONNECTED = 5

# Frame parser states
cdef enum _FrameState:
    FS_HEADER = 0
    FS_PAYLOAD = 1

cdef enum _Utf8:
    UTF8_ACCEPT = 0
    UTF8_REJECT = 1


class _WSProtocolError(Exception):
    """A protocol violation by the peer: fail the connection with `code`.

    `in_close_frame`: the violation is in the peer's CLOSE frame, so the peer
    has started closing and will send nothing more.
    """

    def __init__(self, int code, str message, bint in_close_frame=False):
        super().__init__(message)
        self.code = code
        self.in_close_frame = in_close_frame


# Masks for client frames come from os.urandom, taken 4 bytes at a time from
# a pool that is refilled once every 1024 frames.
cdef uint8_t _mask_pool[_MASK_POOL_SIZE]
cdef size_t _mask_pos = _MASK_POOL_SIZE


cdef inline int _next_mask(uint8_t* out) except -1:
    global _mask_pos
    if _mask_pos + 4 > _MASK_POOL_SIZE:
        fresh = os.urandom(_MASK_POOL_SIZE)
        memcpy(_mask_pool, PyBytes_AS_STRING(fresh), _MASK_POOL_SIZE)
        _mask_pos = 0
    memcpy(out, _mask_pool + _mask_pos, 4)
    _mask_pos += 4
    return 0


cdef inline size_t _header_size(size_t n, bint masked) noexcept nogil:
    cdef size_t size = 2 if n < 126 else (4 if n < 65536 else 10)
    return size + 4 if masked else size


cdef inline size_t _write_header(uint8_t* dst, uint8_t opcode, size_t n, bint fin,
                                 bint rsv1, const uint8_t* mask) noexcept nogil:
    cdef size_t i
    cdef uint64_t n64 = n
    dst[0] = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        dst[1] = <uint8_t>n
        i = 2
    elif n < 65536:
        dst[1] = 126
        dst[2] = <uint8_t>(n >> 8)
        dst[3] = <uint8_t>n
        i = 4
    else:
        dst[1] = 127
        for i in range(8):
            dst[2 + i] = <uint8_t>(n64 >> (56 - 8 * i))
        i = 10
    if mask != NULL:
        dst[1] |= 0x80
        memcpy(dst + i, mask, 4)
        i += 4
    return i


cdef inline bint _is_valid_close_code(uint32_t code) noexcept nogil:
    # RFC 6455 7.4.1 and the IANA registry: 1004-1006 and 1015 are reserved
    # and must never appear in a CLOSE frame; 3000-4999 are for applications.
    return ((1000 <= code <= 1003) or (1007 <= code <= 1014)
            or (3000 <= code <= 4999))


cdef inline uint64_t _read_be(const uint8_t* p, int n) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v = (v << 8) | p[i]
    return v


cdef class _ReadBufferView:
    """The writable window of the read buffer handed to the event loop.

    One per connection, reused for every read, so reading allocates nothing.
    """

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        PyBuffer_FillInfo(buffer, self, self.ptr, self.size, 0, flags)

    def __releasebuffer__(self, Py_buffer* buffer):
        pass

    def __len__(self):
        return self.size

    # asyncio's TLS transport slices the buffer it is given.
    def __getitem__(self, key):
        return memoryview(self)[key]

    def __setitem__(self, key, value):
        memoryview(self)[key] = value


# ---------------------------------------------------------------------------
# WSFrame

# The Python enum member for each opcode, so reading WSFrame.msg_type from
# Python is a pointer read instead of a conversion through the enum class;
# the tuple keeps them alive, the array borrows them.
cdef tuple _MSG_TYPES = tuple(
    WSMsgType(i) if i in (0, 1, 2, 8, 9, 10) else None for i in range(16))
cdef PyObject* _MSG_TYPE_PTRS[16]
for _i in range(16):
    _MSG_TYPE_PTRS[_i] = <PyObject*>_MSG_TYPES[_i]
del _i


@cython.freelist(64)
@cython.final
@cython.binding(False)
cdef class WSFrame:
    """Received websocket frame.

    WSFrame points to a chunk of the receiving buffer without copying or
    owning it.

    .. warning::
        Only use a WSFrame during :any:`WSListener.on_ws_frame`. After the
        callback returns, the buffer is reused for new incoming data: copy
        what you need with one of the ``get_*`` methods.
    """

    # Python reads msg_type (the WSMsgType member) through a member slot on
    # _msg_type_member, installed at the end of this module.
    def __cinit__(self):
        self._msg_type_member = _MSG_TYPE_PTRS[0]

    cpdef bytes get_payload_as_bytes(self):
        """:return: a new bytes object with a copy of the payload."""
        return PyBytes_FromStringAndSize(self.payload_ptr, self.payload_size)

    cpdef str get_payload_as_utf8_text(self):
        """:return: a new str decoded from the payload.

        :raises UnicodeDecodeError: if the payload is not valid UTF-8.
        """
        return PyUnicode_DecodeUTF8(self.payload_ptr, self.payload_size, NULL)

    cpdef str get_payload_as_ascii_text(self):
        """:return: a new str decoded from the payload.

        :raises UnicodeDecodeError: if the payload is not 7-bit ASCII.
        """
        return PyUnicode_DecodeASCII(self.payload_ptr, self.payload_size, NULL)

    cpdef object get_payload_as_memoryview(self):
        """:return: a read-only memoryview of the payload in the parser buffer.

        .. warning::
            The memoryview does NOT own the memory. Its content is
            invalidated after :any:`WSListener.on_ws_frame` returns.
        """
        return PyMemoryView_FromMemory(self.payload_ptr, self.payload_size, PyBUF_READ)

    cpdef object get_close_code(self):
        """:return: the :any:`WSCloseCode` of a CLOSE frame
            (``WSCloseCode.NO_INFO`` when the frame carries none).

        Only valid for ``WSMsgType.CLOSE`` frames.
        """
        if self.payload_size < 2:
            return WSCloseCode.NO_INFO
        return WSCloseCode(_read_be(<uint8_t*>self.payload_ptr, 2))

    cpdef object get_close_message(self):
        """:return: a new bytes object with the close reason, or None.

        Only valid for ``WSMsgType.CLOSE`` frames.
        """
        if self.payload_size <= 2:
            return None
        return PyBytes_FromStringAndSize(self.payload_ptr + 2, self.payload_size - 2)

    def __repr__(self):
        return (f"WSFrame({WSMsgType(self.msg_type).name}, fin={self.fin}, "
                f"rsv1={self.rsv1}, payload_size={self.payload_size}, "
                f"last_in_buffer={self.last_in_buffer}, tail_size={self.tail_size})")


# ---------------------------------------------------------------------------
# WSListener

cdef class WSListener:
    """Base class for user handlers.

    All ``on_ws_*`` methods receive the transport first, for convenience; it
    is always the same object for the same connection. Subclass it in Python
    or in Cython (``cdef class MyListener(WSListener)``).
    """

    cpdef on_ws_connected(self, WSTransport transport):
        """Called after the handshake, when frames can be sent and received.

        An exception raised here disconnects.

        :param transport: :any:`WSTransport`
        """

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        """Called for every received frame.

        An exception raised here disconnects (CLOSE 1011) when
        ``disconnect_on_exception`` is True, and is logged otherwise.

        .. warning::
            ``frame`` points into the receiving buffer and is only valid
            during this call: do not keep it, copy what you need.

        :param transport: :any:`WSTransport`
        :param frame: :any:`WSFrame`
        """

    cpdef on_ws_disconnected(self, WSTransport transport):
        """Called once when the websocket has been disconnected.

        :param transport: :any:`WSTransport`
        """

    cpdef pause_writing(self):
        """Called when the transport's write buffer goes over the high watermark."""

    cpdef resume_writing(self):
        """Called when the transport's write buffer drains below the low watermark."""


# ---------------------------------------------------------------------------
# WSTransport

cdef int _direct_send_fd(transport) except? -2:
    """The fd of `transport`'s socket, for writing to it directly; -1 when
    that is off (PICOWS_NO_DIRECT_SEND) or unavailable."""
    if not PICOWS_HAVE_SEND or os.environ.get("PICOWS_NO_DIRECT_SEND"):
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        return sock.fileno()
    except Exception:
        return -1


cdef class WSTransport:
    """The sending side of a websocket connection.

    :ivar underlying_transport: the asyncio TCP or SSL transport. Use it for
        buffer limits and connection state; send only with ``send_*``.
    :ivar is_client: True on the client side.
    :ivar request: the :any:`WSUpgradeRequest` (both sides).
    :ivar response: the upgrade response (client side), else None.
    :ivar extensions: the negotiated Sec-WebSocket-Extensions value
        (permessage-deflate), or None.
    """

    def __cinit__(self):
        self._fd = -1
        self._wbuf = NULL
        self._wbuf_size = 0

    def __init__(self, bint is_client, underlying_transport, logger, loop,
                 request=None, response=None):
        self.is_client = is_client
        self.underlying_transport = underlying_transport
        self.request = request
        self.response = response
        self._logger = logger
        self._disconnected_future = loop.create_future()
        self._pending_pings = None
        self._transport_write = underlying_transport.write
        if type(underlying_transport) is _TLSTransport:
            # picows' own TLS: frames are encrypted from _wbuf, no bytes.
            self._tls = underlying_transport._layer
        # The handshake went through the transport: check its buffer once.
        self._backlog = True
        # On plain TCP, writing straight to the socket when the transport has
        # nothing queued skips the loop's write path (pure Python on asyncio)
        # and a bytes object per frame. Both asyncio's socket transport and
        # uvloop's close the socket only after calling connection_lost (close
        # and abort both defer it to a later loop iteration), and
        # connection_lost drops _fd, so a stale fd is never written to. Our
        # own disconnect() drops it at once (WSProtocolCore._disconnect).
        # TLS transports must encrypt: they always get transport.write.
        module = type(underlying_transport).__module__
        if (module in ("asyncio.selector_events", "uvloop.loop")
                and underlying_transport.get_extra_info("sslcontext") is None
                and underlying_transport.get_extra_info("ssl_object") is None):
            self._fd = _direct_send_fd(underlying_transport)

    def __dealloc__(self):
        if self._wbuf != NULL:
            PyMem_Free(self._wbuf)
            self._wbuf = NULL

    # -- low level -----------------------------------------------------------

    @cython.final
    cdef uint8_t* _reserve(self, size_t size) except NULL:
        cdef uint8_t* p
        cdef size_t new_size
        if self._wbuf_size > _WBUF_KEEP and size * 4 < self._wbuf_size:
            # Shrink after a spike of large frames.
            PyMem_Free(self._wbuf)
            self._wbuf = NULL
            self._wbuf_size = 0
        if size > self._wbuf_size:
            new_size = max(size, 2 * self._wbuf_size, <size_t>4096)
            p = <uint8_t*>PyMem_Realloc(self._wbuf, new_size)
            if p == NULL:
                raise MemoryError()
            self._wbuf = p
            self._wbuf_size = new_size
        return self._wbuf

    @cython.final
    cdef int _write(self, const uint8_t* data, size_t size) except -1:
        """Write `data` straight to the socket when the transport has nothing
        queued, and what the socket did not take through the transport."""
        cdef Py_ssize_t sent = 0
        if self._backlog:
            # Only our own transport.write calls can fill its buffer.
            self._backlog = self.underlying_transport.get_write_buffer_size() != 0
        if not self._backlog and self._fd >= 0:
            sent = picows_send(self._fd, data, size)
            if sent == <Py_ssize_t>size:
                return 0
            if sent < 0:
                # EAGAIN: the kernel buffer is full, let the transport queue it.
                # Anything else: the transport meets the same error on its own
                # write and closes the connection through connection_lost.
                sent = 0
        self._backlog = True
        self._transport_write(PyBytes_FromStringAndSize(<char*>data + sent, size - sent))
        return 0

    @cython.final
    cdef int _write2(self, const uint8_t* header, size_t hlen,
                     const uint8_t* payload, size_t size) except -1:
        """Like _write, for a header and a payload in two places."""
        cdef Py_ssize_t sent = 0
        cdef bytes rest
        cdef uint8_t* p
        if self._backlog:
            self._backlog = self.underlying_transport.get_write_buffer_size() != 0
        if not self._backlog and self._fd >= 0:
            sent = picows_send2(self._fd, header, hlen, payload, size)
            if sent == <Py_ssize_t>(hlen + size):
                return 0
            if sent < 0:
                sent = 0
        self._backlog = True
        rest = PyBytes_FromStringAndSize(NULL, hlen + size - sent)
        p = <uint8_t*>PyBytes_AS_STRING(rest)
        if <size_t>sent < hlen:
            memcpy(p, header + sent, hlen - sent)
            memcpy(p + hlen - sent, payload, size)
        else:
            memcpy(p, payload + (sent - hlen), size - (sent - hlen))
        self._transport_write(rest)
        return 0

    cdef int send_frame(self, WSMsgType msg_type, const uint8_t* payload,
                        size_t size, bint fin, bint rsv1) except -1:
        """Send one frame: header and payload assembled, written once."""
        cdef uint8_t mask[4]
        cdef uint8_t* dst = NULL
        cdef size_t hlen
        cdef object out = None
        if self._closed or self._write_closed:
            return 0
        if msg_type == WSMsgType.CLOSE:
            # One CLOSE per connection (RFC 6455 5.5.1), however it is sent.
            if self.is_close_frame_sent:
                return 0
            self.is_close_frame_sent = True
        elif msg_type <= 2:
            # No data frames after our CLOSE (RFC 6455 5.5.1).
            if self.is_close_frame_sent:
                return 0
            # Whether our own fragmented message is open (never compressed).
            if msg_type != 0:
                self._sending_fragments = not fin
            elif fin:
                self._sending_fragments = False
        cdef size_t total = _header_size(size, self.is_client) + size
        cdef uint8_t header[10]
        if not self.is_client and self._fd >= 0 and size >= _GATHER_WRITE_MIN:
            # Large server frames: no copy of the payload, the kernel gathers.
            hlen = _write_header(header, <uint8_t>msg_type, size, fin, rsv1, NULL)
            self._write2(header, hlen, payload, size)
        elif self._fd >= 0 or self._tls is not None:
            dst = self._reserve(total)
        elif total >= _REUSE_WRITE_MIN:
            # Through the transport (TLS): a large frame goes out of a
            # bytearray reused from one frame to the next, unless the
            # transport still holds the last one; a fresh allocation of this
            # size costs page faults on every frame.
            if self._big_out is None or _refcnt(<PyObject*>self._big_out) > 1:
                self._big_out = bytearray()
            PyByteArray_Resize(self._big_out, total)
            out = self._big_out
            dst = <uint8_t*>PyByteArray_AS_STRING(out)
        else:
            if self._big_out is not None:
                self._big_out = None
            out = PyBytes_FromStringAndSize(NULL, total)
            dst = <uint8_t*>PyBytes_AS_STRING(out)
        if dst == NULL:
            pass
        elif self.is_client:
            _next_mask(mask)
            hlen = _write_header(dst, <uint8_t>msg_type, size, fin, rsv1, mask)
            picows_mask_copy(dst + hlen, payload, size, mask, 0)
        else:
            hlen = _write_header(dst, <uint8_t>msg_type, size, fin, rsv1, NULL)
            if size:
                memcpy(dst + hlen, payload, size)
        if msg_type == WSMsgType.PONG:
            self._pongs_sent += 1
        if out is not None:
            self._transport_write(out)
        elif self._tls is not None:
            self._tls._encrypt(dst, total)
        elif dst != NULL:
            self._write(dst, total)
        if msg_type == WSMsgType.CLOSE and self._protocol is not None:
            self._protocol._on_close_sent()
        return 0

    cdef send_reuse_external_buffer(self, WSMsgType msg_type,
                                    char* message, size_t message_size):
        """Send a frame with `message` as its payload, writing the header into
        the memory just before `message` instead of copying the payload.

        The buffer must have at least 10 writable bytes before `message`. On
        the client side the payload must be masked, so it is copied (masked)
        into the transport's own buffer instead and `message` is left intact.

        Available only from Cython.
        """
        cdef size_t hlen
        cdef uint8_t* start
        if self._closed or self._write_closed:
            return
        if self.is_client or self._fd < 0 or msg_type >= WSMsgType.CLOSE:
            # Control frames are small and need the bookkeeping of send_frame.
            self.send_frame(msg_type, <uint8_t*>message, message_size, True, False)
            return
        hlen = _header_size(message_size, False)
        start = <uint8_t*>message - hlen
        _write_header(start, <uint8_t>msg_type, message_size, True, False, NULL)
        self._write(start, hlen + message_size)

    cdef int _send_close_frame(self, int code, const uint8_t* reason,
                               size_t reason_size) except -1:
        cdef uint8_t payload[_MAX_CONTROL_PAYLOAD]
        if code == 0:
            return self.send_frame(WSMsgType.CLOSE, NULL, 0, True, False)
        if reason_size > _MAX_CONTROL_PAYLOAD - 2:
            reason_size = _MAX_CONTROL_PAYLOAD - 2
        payload[0] = <uint8_t>(code >> 8)
        payload[1] = <uint8_t>code
        if reason_size:
            memcpy(payload + 2, reason, reason_size)
        return self.send_frame(WSMsgType.CLOSE, payload, reason_size + 2, True, False)

    cdef int _mark_disconnected(self) except -1:
        self._closed = True
        self._fd = -1
        self._protocol = None
        if self._wbuf != NULL:
            PyMem_Free(self._wbuf)
            self._wbuf = NULL
            self._wbuf_size = 0
        self._big_out = None
        if not self._disconnected_future.done():
            self._disconnected_future.set_result(None)
        return 0

    # -- public API ----------------------------------------------------------

    # binding(False), here and on the other per-frame methods: a plain
    # method descriptor, cheaper to call from Python than a cyfunction.
    @cython.binding(False)
    def send(self, msg_type, message=None, rsv1=False, *, fin=True):
        """Send a frame with `message` as its payload.

        :param msg_type: :any:`WSMsgType`
        :param message: an optional bytes-like object (any contiguous
            buffer); a str is sent UTF-8 encoded.
        :param rsv1: first reserved bit; extensions such as
            permessage-deflate use it.
        :param fin: False to send a fragment of a message; continue it with
            ``WSMsgType.CONTINUATION`` frames, the last with ``fin=True``.

        Nothing is sent once disconnected, and no data frame once a CLOSE
        was sent (RFC 6455 5.5.1).
        """
        cdef Py_buffer view
        cdef char* buf
        cdef Py_ssize_t buflen
        cdef int opcode = msg_type
        if opcode not in (0, 1, 2, 8, 9, 10):
            raise ValueError(f"invalid msg_type {msg_type!r}")
        if message is None:
            self.send_frame(<WSMsgType>opcode, NULL, 0, fin, rsv1)
            return
        if isinstance(message, str):
            message = (<str>message).encode("utf-8")
        if self._deflater is not None and (opcode == 1 or opcode == 2) and fin \
                and not rsv1 and not self._sending_fragments:
            self._send_compressed(<WSMsgType>opcode, message)
            return
        if type(message) is bytes:
            if opcode >= 8 and PyBytes_GET_SIZE(message) > _MAX_CONTROL_PAYLOAD:
                raise ValueError("control frame payload must be at most 125 bytes")
            self.send_frame(<WSMsgType>opcode, <uint8_t*>PyBytes_AS_STRING(message),
                            PyBytes_GET_SIZE(message), fin, rsv1)
            return
        if type(message) is memoryview and picows_memoryview_memory(message, &buf, &buflen):
            if opcode >= 8 and buflen > _MAX_CONTROL_PAYLOAD:
                raise ValueError("control frame payload must be at most 125 bytes")
            self.send_frame(<WSMsgType>opcode, <uint8_t*>buf, buflen, fin, rsv1)
            return
        PyObject_GetBuffer(message, &view, PyBUF_SIMPLE)
        try:
            if opcode >= 8 and view.len > _MAX_CONTROL_PAYLOAD:
                raise ValueError("control frame payload must be at most 125 bytes")
            self.send_frame(<WSMsgType>opcode, <uint8_t*>view.buf, view.len, fin, rsv1)
        finally:
            PyBuffer_Release(&view)

    cdef _send_compressed(self, WSMsgType msg_type, message):
        """Send a whole message compressed (RFC 7692 7.2.1): deflate, flush,
        and drop the trailing 00 00 ff ff."""
        cdef bytes out
        if self._closed or self._write_closed:
            return
        out = self._deflater.compress(message) + self._deflater.flush(self._deflate_flush)
        if out.endswith(b"\x00\x00\xff\xff"):
            out = out[:PyBytes_GET_SIZE(out) - 4]
        if not out:
            out = b"\x00"
        self.send_frame(msg_type, <uint8_t*>PyBytes_AS_STRING(out),
                        PyBytes_GET_SIZE(out), True, True)

    @cython.binding(False)
    def send_ping(self, message=None):
        """Send a PING control frame.

        :param message: an optional bytes-like object, at most 125 bytes.
        """
        self.send(WSMsgType.PING, message)

    @cython.binding(False)
    def send_pong(self, message=None):
        """Send a PONG control frame.

        :param message: an optional bytes-like object, at most 125 bytes.
        """
        self.send(WSMsgType.PONG, message)

    def send_close(self, close_code=WSCloseCode.NO_INFO, close_message=None):
        """Send a CLOSE control frame; the transport stays open.

        Does nothing if the transport is disconnected or a CLOSE was sent
        already.

        :param close_code: :any:`WSCloseCode` or an int in 3000-4999.
            ``NO_INFO`` sends a CLOSE with an empty payload.
        :param close_message: an optional bytes-like object (or str), at most
            123 bytes; ignored with ``NO_INFO``.
        """
        cdef int code = close_code
        cdef Py_buffer view
        if code != 0 and not (0 < code < 65536):
            raise ValueError(f"invalid close code {close_code!r}")
        if code == 0 or close_message is None:
            self._send_close_frame(code, NULL, 0)
            return
        if isinstance(close_message, str):
            close_message = (<str>close_message).encode("utf-8")
        PyObject_GetBuffer(close_message, &view, PyBUF_SIMPLE)
        try:
            if view.len > _MAX_CONTROL_PAYLOAD - 2:
                raise ValueError("close message must be at most 123 bytes")
            self._send_close_frame(code, <uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    @cython.binding(False)
    def disconnect(self):
        """Close the underlying transport.

        Buffered outgoing data is flushed asynchronously; nothing more is
        received. Safe to call many times; does nothing once disconnected.
        """
        if self._closed:
            return
        if self._protocol is not None:
            self._protocol._disconnect()
        else:
            self.underlying_transport.close()

    async def wait_disconnected(self):
        """Wait until the websocket is completely disconnected (the transport
        is closed and ``on_ws_disconnected`` has been called).

        On the client side, if a listener callback raised and so caused the
        disconnect, that exception is raised here.
        """
        await asyncio.shield(self._disconnected_future)
        if self._listener_exc is not None:
            exc, self._listener_exc = self._listener_exc, None
            raise exc

    async def measure_roundtrip_time(self, int rounds=1):
        """Send `rounds` PINGs one after another and return the list of
        round-trip times in seconds, measured when each PONG arrives.

        The PONGs are still delivered to ``on_ws_frame``.
        """
        loop = asyncio.get_running_loop()
        results = []
        for _ in range(rounds):
            if self._closed:
                raise WSError("websocket is disconnected")
            fut = loop.create_future()
            if self._pending_pings is None:
                self._pending_pings = []
            self._pending_pings.append(fut)
            started = time.perf_counter()
            self.send_ping(b"picows-rtt")
            await fut
            results.append(time.perf_counter() - started)
        return results

    def __repr__(self):
        side = "client" if self.is_client else "server"
        state = "disconnected" if self._closed else "connected"
        return f"<WSTransport {side} {state}>"


# ---------------------------------------------------------------------------
# The protocol
#
# Theory of operation
# -------------------
# One WSProtocol per connection, for both roles. The event loop reads into
# the window handed out by get_buffer(); buffer_updated() then parses.
#
# Read buffer: _rbuf[0:_rcap]; unread bytes are [_rstart, _rend). When all
# bytes are consumed both offsets go back to 0. get_buffer() moves the unread
# bytes to the front or grows the buffer (geometrically) when the free space
# is smaller than what the current frame still needs, so a complete frame is
# always contiguous and WSFrame can point into it. After a spike the buffer
# shrinks back once it is empty.
#
# Connection states: HANDSHAKE -> OPEN -> (CLOSE_SENT | FAILED |
# CLOSE_RECEIVED) -> DISCONNECTED. In HANDSHAKE the head is collected until
# the blank line (at most 16 KiB) and handed to handshake.py.
#
# Frame states: FS_HEADER waits for the whole header (2 to 14 bytes). The
# header is validated as early as its bytes allow: RSV bits, opcode, mask bit
# and control-frame rules on the first two bytes, the length (top bit,
# max_frame_size) before any payload is buffered. FS_PAYLOAD then unmasks the
# payload in place as it arrives (_fprocessed bytes done so far, offsets are
# relative to _rstart) and, for TEXT messages, runs the incremental UTF-8
# validator over the new bytes, so an invalid byte fails the connection before
# the rest of the frame arrives. When the whole payload is there the frame is
# delivered, _rstart moves past it, and the state returns to FS_HEADER.
#
# Message state: _msg_opcode is the opcode of the open fragmented message
# (0: none) and _utf8_state the validator state across its fragments.
#
# Errors: a violation raises _WSProtocolError(code, reason); _fail() sends
# CLOSE with the code, logs, and enters FAILED, where frames are still parsed
# (not delivered) until the peer's CLOSE or EOF, so the peer sees our CLOSE
# instead of a reset. Everything ends in _disconnect(), and connection_lost()
# calls on_ws_disconnected exactly once.

cdef class WSProtocolCore:

    def __cinit__(self):
        self._rbuf = NULL
        self._rcap = 0
        self._rstart = 0
        self._rend = 0

    def __init__(self, *, bint is_client, listener_factory, str logger_name="test",
                 bint disconnect_on_exception=True, websocket_handshake_timeout=5,
                 max_frame_size=10 * 1024 * 1024, bint enable_auto_pong=True,
                 bint enable_auto_close=True, bint enable_utf8_validation=True,
                 double close_timeout=5.0, bint enable_auto_ping=False,
                 double auto_ping_idle_timeout=20.0,
                 double auto_ping_reply_timeout=20.0, allowed_origins=None,
                 bytes upgrade_request=None, str client_key=None,
                 bint enable_compression=False):
        if max_frame_size < 0 or max_frame_size >= 2 ** 63:
            raise ValueError("max_frame_size must be between 0 and 2**63 - 1")
        self.is_client = is_client
        self._listener_factory = listener_factory
        self._logger = logging.getLogger(f"picows.{logger_name}")
        self._disconnect_on_exception = disconnect_on_exception
        self._handshake_timeout = websocket_handshake_timeout
        self._max_frame_size = max_frame_size
        self._auto_pong = enable_auto_pong
        self._auto_close = enable_auto_close
        self._utf8_validation = enable_utf8_validation
        self._close_timeout = close_timeout
        self._auto_ping = enable_auto_ping
        self._auto_ping_idle_timeout = auto_ping_idle_timeout
        self._auto_ping_reply_timeout = auto_ping_reply_timeout
        self._allowed_origins = (None if allowed_origins is None
                                 else frozenset(allowed_origins))
        self._upgrade_request = upgrade_request
        self._client_key = client_key
        self._enable_compression = enable_compression
        self._state = HANDSHAKE
        self._fstate = FS_HEADER
        self._view = _ReadBufferView()
        self.handshake_future = None

    def __dealloc__(self):
        if self._rbuf != NULL:
            PyMem_Free(self._rbuf)
            self._rbuf = NULL

    # -- asyncio.BufferedProtocol ---------------------------------------------

    def connection_made(self, transport):
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._last_activity = self._loop.time()
        if self.is_client:
            self.handshake_future = self._loop.create_future()
            transport.write(self._upgrade_request)
        if self._handshake_timeout is not None:
            self._handshake_timer = self._loop.call_later(
                self._handshake_timeout, self._on_handshake_timeout)

    # get_buffer and buffer_updated (here and in _TLSLayer) are plain METH_O
    # methods: the event loops pass the argument positionally, and the call
    # skips argument parsing and the cyfunction layer.
    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def get_buffer(self, Py_ssize_t sizehint):
        cdef _ReadBufferView view = <_ReadBufferView>self._view
        self._read_window(&view.ptr, &view.size)
        return view

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def buffer_updated(self, Py_ssize_t nbytes):
        self._data_in(nbytes)

    @cython.final
    cdef int _read_window(self, char** ptr, Py_ssize_t* size) except -1:
        """The free end of the read buffer, made large enough first."""
        cdef size_t need = _MIN_FREE_SPACE
        cdef size_t missing, unread, new_cap
        cdef uint8_t* p
        if self._rbuf == NULL:
            self._rbuf = <uint8_t*>PyMem_Malloc(_INITIAL_READ_BUFFER)
            if self._rbuf == NULL:
                raise MemoryError()
            self._rcap = _INITIAL_READ_BUFFER
        unread = self._rend - self._rstart
        if unread == 0:
            self._rstart = self._rend = 0
            if self._rcap > _SHRINK_ABOVE and self._recent_max_frame * 4 < self._rcap:
                new_cap = max(<size_t>_INITIAL_READ_BUFFER, self._recent_max_frame * 2)
                p = <uint8_t*>PyMem_Realloc(self._rbuf, new_cap)
                if p != NULL:
                    self._rbuf = p
                    self._rcap = new_cap
                self._recent_max_frame = 0
        if self._fstate == FS_PAYLOAD:
            # Room for the rest of the frame and then some: a read that fills
            # the window exactly makes the loop read again, only to get
            # EAGAIN (one wasted syscall per large frame).
            missing = <size_t>(self._fhdr_len + self._fpayload_len) - unread
            if missing + _MIN_FREE_SPACE > need:
                need = missing + _MIN_FREE_SPACE
        if self._rcap - self._rend < need:
            if self._rstart > 0:
                memmove(self._rbuf, self._rbuf + self._rstart, unread)
                self._rstart = 0
                self._rend = unread
            if self._rcap - self._rend < need:
                new_cap = max(self._rcap * 2, self._rend + need)
                p = <uint8_t*>PyMem_Realloc(self._rbuf, new_cap)
                if p == NULL:
                    raise MemoryError()
                self._rbuf = p
                self._rcap = new_cap
        ptr[0] = <char*>self._rbuf + self._rend
        size[0] = self._rcap - self._rend
        return 0

    @cython.final
    cdef int _data_in(self, Py_ssize_t nbytes) except -1:
        """`nbytes` new bytes are at the end of the read buffer: parse them."""
        if nbytes <= 0 or self._closing:
            return 0
        self._rend += nbytes
        try:
            if self._state == HANDSHAKE:
                if self.is_client:
                    self._process_client_handshake()
                else:
                    self._process_server_handshake()
                if self._state == HANDSHAKE or self._closing:
                    return 0
            if self._auto_ping:
                self._last_activity = self._loop.time()
            self._process_frames()
        except Exception:
            # A bug of ours, or MemoryError: this connection ends, the loop
            # and the other connections carry on.
            self._logger.exception("internal error, disconnecting")
            if self.transport is not None and self._state != HANDSHAKE:
                self._fail(WSCloseCode.INTERNAL_ERROR, "internal error")
            self._disconnect()
        return 0

    def eof_received(self):
        # Returning a false value lets the transport close itself.
        self._logger.debug("peer closed its side (EOF)")
        return False

    def connection_lost(self, exc):
        cdef WSTransport ws = self.transport
        if self._state == DISCONNECTED:
            return
        self._state = DISCONNECTED
        self._cancel_timers()
        if exc is not None:
            self._logger.debug("connection lost: %r", exc)
        if self.handshake_future is not None and not self.handshake_future.done():
            self.handshake_future.set_exception(
                WSError(f"connection lost during the handshake: {exc!r}"))
        if ws is not None:
            if ws._pending_pings:
                for fut in ws._pending_pings:
                    if not fut.done():
                        fut.set_exception(WSError("websocket disconnected"))
                ws._pending_pings = None
            if self._listener_exc is not None and self.is_client:
                ws._listener_exc = self._listener_exc
            if self._connected_called and not self._disconnected_called:
                self._disconnected_called = True
                try:
                    self.listener.on_ws_disconnected(ws)
                except Exception:
                    self._logger.exception("on_ws_disconnected raised")
            ws._mark_disconnected()

    def pause_writing(self):
        if self.listener is not None:
            try:
                self.listener.pause_writing()
            except Exception:
                self._logger.exception("pause_writing raised")

    def resume_writing(self):
        if self.listener is not None:
            try:
                self.listener.resume_writing()
            except Exception:
                self._logger.exception("resume_writing raised")

    # -- handshake -------------------------------------------------------------

    cdef bytes _take_head(self):
        """Return the head once its blank line arrived, else None."""
        cdef size_t unread = self._rend - self._rstart
        # Search only what is new (and the 3 bytes before it), so a head that
        # trickles in byte by byte costs linear time, not quadratic.
        cdef size_t start = self._head_scanned - 3 if self._head_scanned > 3 else 0
        cdef Py_ssize_t end = picows_find_head_end(self._rbuf + self._rstart + start,
                                                   unread - start)
        cdef bytes head
        if end < 0:
            self._head_scanned = unread
            if unread > MAX_HEAD_SIZE:
                raise WSHandshakeError(431, f"HTTP head larger than {MAX_HEAD_SIZE} bytes")
            return None
        end += start
        if end + 4 > MAX_HEAD_SIZE:
            raise WSHandshakeError(431, f"HTTP head larger than {MAX_HEAD_SIZE} bytes")
        head = PyBytes_FromStringAndSize(<char*>self._rbuf + self._rstart, end + 4)
        self._rstart += end + 4
        return head

    cdef _process_server_handshake(self):
        cdef WSTransport ws
        try:
            head = self._take_head()
            if head is None:
                return
            request = parse_upgrade_request(head, self._allowed_origins)
        except WSHandshakeError as exc:
            self._logger.info("rejected upgrade request: %s", exc)
            self._reject(exc.status, exc.reason, exc.headers)
            return
        self._cancel_handshake_timer()
        try:
            listener = self._listener_factory(request)
        except Exception:
            self._logger.exception("ws_listener_factory raised for %r", request)
            self._reject(500, "internal server error")
            return
        if listener is None:
            self._logger.info("no listener for %r: 404", request.path)
            self._reject(404, "not found")
            return
        if not isinstance(listener, WSListener):
            self._logger.error("ws_listener_factory returned %r, not a WSListener",
                               listener)
            self._reject(500, "internal server error")
            return
        deflate = None
        if self._enable_compression:
            deflate = negotiate_deflate(request.headers.get("sec-websocket-extensions"))
        self._transport.write(build_upgrade_response(
            request, None if deflate is None else
            [("Sec-WebSocket-Extensions", deflate.header)]))
        ws = WSTransport(False, self._transport, self._logger, self._loop, request)
        self._setup_deflate(ws, deflate)
        self._open(ws, listener)

    cdef _process_client_handshake(self):
        cdef WSTransport ws
        try:
            head = self._take_head()
            if head is None:
                return
            response = parse_upgrade_response(head, self._client_key,
                                              self._enable_compression)
            deflate = None
            extensions = response.headers.get("sec-websocket-extensions")
            if extensions:
                deflate = parse_deflate_response(extensions)
        except WSHandshakeError as exc:
            self._cancel_handshake_timer()
            if not self.handshake_future.done():
                self.handshake_future.set_exception(exc)
            self._closing = True
            self._transport.close()
            return
        self._cancel_handshake_timer()
        try:
            listener = self._listener_factory()
            if not isinstance(listener, WSListener):
                raise TypeError(f"ws_listener_factory returned {listener!r}, "
                                f"not a WSListener")
        except Exception as exc:
            if not self.handshake_future.done():
                self.handshake_future.set_exception(exc)
            self._closing = True
            self._transport.close()
            return
        ws = WSTransport(True, self._transport, self._logger, self._loop, None, response)
        self._setup_deflate(ws, deflate)
        self._open(ws, listener)
        if not self.handshake_future.done():
            self.handshake_future.set_result((ws, listener))

    cdef _setup_deflate(self, WSTransport ws, deflate):
        if deflate is None:
            return
        # We inflate with the largest window, which reads any window size.
        self._inflater = zlib.decompressobj(-15)
        # zlib cannot make raw deflate streams with an 8-bit window (it uses
        # 9), so with that limit we send uncompressed messages, which RFC 7692
        # allows.
        if deflate.local_max_window_bits > 8:
            ws._deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                            -deflate.local_max_window_bits)
            ws._deflate_flush = (zlib.Z_FULL_FLUSH if deflate.local_no_context_takeover
                                 else zlib.Z_SYNC_FLUSH)
        ws.extensions = deflate.header

    cdef _open(self, WSTransport ws, WSListener listener):
        self.transport = ws
        self.listener = listener
        # A Python override of on_ws_frame is a plain function in the class;
        # the base method and Cython overrides are method descriptors, which
        # the cpdef call dispatches in C.
        meth = getattr(type(listener), "on_ws_frame")
        if type(meth) is not type(_BASE_ON_WS_FRAME):
            self._on_frame_py = getattr(listener, "on_ws_frame")
        ws._protocol = self
        self._state = OPEN
        self._connected_called = True
        try:
            listener.on_ws_connected(ws)
        except Exception as exc:
            self._logger.exception("on_ws_connected raised, disconnecting")
            self._listener_exc = exc
            self._fail(WSCloseCode.INTERNAL_ERROR, "listener error")
            return
        if self._auto_ping:
            self._schedule_auto_ping(self._auto_ping_idle_timeout)

    cdef _reject(self, int status, str reason, headers=()):
        self._cancel_handshake_timer()
        self._closing = True
        try:
            self._transport.write(build_error_response(status, reason, headers))
        finally:
            self._transport.close()

    def _on_handshake_timeout(self):
        self._handshake_timer = None
        if self._state != HANDSHAKE:
            return
        self._logger.info("handshake not completed within %s seconds, disconnecting",
                          self._handshake_timeout)
        if self.handshake_future is not None and not self.handshake_future.done():
            self.handshake_future.set_exception(asyncio.TimeoutError(
                f"websocket handshake not completed within "
                f"{self._handshake_timeout} seconds"))
        self._closing = True
        self._transport.abort()

    cdef _cancel_handshake_timer(self):
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    cdef _cancel_timers(self):
        self._cancel_handshake_timer()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None

    # -- frames ----------------------------------------------------------------

    @cython.final
    cdef int _parse_header(self) except -1:
        """Parse the header at _rstart. 1: done (FS_PAYLOAD), 0: need more
        bytes. Raises _WSProtocolError on a violation."""
        cdef size_t avail = self._rend - self._rstart
        cdef const uint8_t* p = self._rbuf + self._rstart
        cdef uint8_t b0, b1, opcode, len7
        cdef size_t hlen = 2
        cdef uint64_t length
        if avail < 2:
            return 0
        b0 = p[0]
        b1 = p[1]
        opcode = b0 & 0x0F
        len7 = b1 & 0x7F
        # A broken CLOSE still means the peer is closing: it sends no more.
        cdef bint is_close = opcode == WSMsgType.CLOSE
        if b0 & 0x70:
            # permessage-deflate (RFC 7692 6): RSV1 marks the first frame of
            # a compressed message; nothing else may carry RSV bits.
            if (self._inflater is None or (b0 & 0x70) != 0x40
                    or opcode == 0 or opcode > 2):
                raise _WSProtocolError(1002, "RSV bits set but no extension was "
                                       "negotiated for them (RFC 6455 5.2, "
                                       "RFC 7692 6)", is_close)
        if opcode >= 8:
            if opcode > 10:
                raise _WSProtocolError(1002, f"reserved opcode {opcode} (RFC 6455 5.2)", is_close)
            if not (b0 & 0x80):
                raise _WSProtocolError(1002, "fragmented control frame (RFC 6455 5.5)", is_close)
            if len7 > _MAX_CONTROL_PAYLOAD:
                raise _WSProtocolError(1002, "control frame payload over 125 bytes "
                                       "(RFC 6455 5.5)", is_close)
        elif opcode > 2:
            raise _WSProtocolError(1002, f"reserved opcode {opcode} (RFC 6455 5.2)", is_close)
        elif opcode == 0:
            if self._msg_opcode == 0:
                raise _WSProtocolError(1002, "CONTINUATION frame without a message "
                                       "to continue (RFC 6455 5.4)", is_close)
        elif self._msg_opcode != 0:
            raise _WSProtocolError(1002, "new data frame while a fragmented message "
                                   "is open (RFC 6455 5.4)", is_close)
        if self.is_client:
            if b1 & 0x80:
                raise _WSProtocolError(1002, "masked frame from the server "
                                       "(RFC 6455 5.1)", is_close)
        elif not (b1 & 0x80):
            raise _WSProtocolError(1002, "unmasked frame from the client (RFC 6455 5.1)", is_close)
        if len7 == 126:
            if avail < 4:
                return 0
            length = _read_be(p + 2, 2)
            hlen = 4
        elif len7 == 127:
            if avail < 10:
                return 0
            length = _read_be(p + 2, 8)
            if length >> 63:
                raise _WSProtocolError(1002, "64-bit payload length with the most "
                                       "significant bit set (RFC 6455 5.2)", is_close)
            hlen = 10
        else:
            length = len7
        if length > self._max_frame_size:
            raise _WSProtocolError(1009, f"frame of {length} bytes is larger than "
                                   f"max_frame_size {self._max_frame_size}")
        if b1 & 0x80:
            if avail < hlen + 4:
                return 0
            memcpy(self._fmask, p + hlen, 4)
            hlen += 4
        self._fopcode = opcode
        self._ffin = (b0 & 0x80) != 0
        self._frsv1 = (b0 & 0x40) != 0
        self._fmasked = (b1 & 0x80) != 0
        self._fhdr_len = hlen
        self._fpayload_len = length
        self._fprocessed = 0
        if opcode != 0:
            self._fcompressed = self._frsv1
        else:
            self._fcompressed = self._msg_compressed
        # Compressed payloads are validated after inflating, in _deliver_frame.
        self._ftext = (self._utf8_validation and self._state != FAILED
                       and not self._fcompressed and (
                           opcode == WSMsgType.TEXT
                           or (opcode == 0 and self._msg_opcode == WSMsgType.TEXT)))
        if opcode == WSMsgType.TEXT or opcode == WSMsgType.BINARY:
            self._utf8_state = UTF8_ACCEPT
        self._fstate = FS_PAYLOAD
        return 1

    cdef bint _next_frame_complete(self, size_t offset) noexcept:
        """Whether a whole frame starts at _rstart + offset (for last_in_buffer)."""
        cdef size_t avail = self._rend - self._rstart - offset
        cdef const uint8_t* p = self._rbuf + self._rstart + offset
        cdef size_t hlen = 2
        cdef uint64_t length
        if avail < 2:
            return False
        length = p[1] & 0x7F
        if length == 126:
            if avail < 4:
                return False
            length = _read_be(p + 2, 2)
            hlen = 4
        elif length == 127:
            if avail < 10:
                return False
            length = _read_be(p + 2, 8)
            hlen = 10
        if p[1] & 0x80:
            hlen += 4
        return avail >= hlen and length <= avail - hlen

    @cython.final
    cdef int _process_frames(self) except -1:
        cdef size_t avail, n
        cdef uint8_t* payload
        # One try around the loop, not one per frame: entering a try block
        # saves the thread's exception state.
        try:
            while not self._closing and (self._state == OPEN or self._state == CLOSE_SENT
                                         or self._state == FAILED):
                if self._fstate == FS_HEADER:
                    # Usually the buffer ends with the frame just delivered.
                    if self._rend - self._rstart < 2 or self._parse_header() == 0:
                        break
                avail = self._rend - self._rstart - self._fhdr_len
                if avail > self._fpayload_len:
                    avail = <size_t>self._fpayload_len
                if avail > self._fprocessed:
                    payload = self._rbuf + self._rstart + self._fhdr_len
                    n = avail - <size_t>self._fprocessed
                    if self._fmasked:
                        picows_mask_copy(payload + self._fprocessed,
                                         payload + self._fprocessed, n,
                                         self._fmask, <size_t>self._fprocessed)
                    if self._ftext:
                        self._utf8_state = picows_utf8_validate(
                            self._utf8_state, payload + self._fprocessed, n)
                        if self._utf8_state == UTF8_REJECT:
                            raise _WSProtocolError(1007, "invalid UTF-8 in a TEXT "
                                                   "message (RFC 6455 8.1)")
                    self._fprocessed = avail
                if self._fprocessed < self._fpayload_len:
                    break
                self._deliver_frame()
        except _WSProtocolError as exc:
            self._fail(exc.code, str(exc), exc.in_close_frame)
        if self._rstart == self._rend:
            self._rstart = self._rend = 0
        return 0

    @cython.final
    cdef WSFrame _make_frame(self):
        # Reuse the frame unless the listener kept a reference to the last one.
        if self._frame is None or _refcnt(<PyObject*>self._frame) > 1:
            self._frame = WSFrame.__new__(WSFrame)
        return self._frame

    @cython.final
    cdef int _deliver_frame(self) except -1:
        cdef uint8_t opcode = self._fopcode
        cdef size_t total = self._fhdr_len + <size_t>self._fpayload_len
        cdef size_t tail = self._rend - self._rstart - total
        cdef WSFrame frame
        cdef uint32_t code
        cdef uint32_t pongs_before
        cdef bint is_text
        cdef bytes inflated
        cdef const uint8_t* payload = self._rbuf + self._rstart + self._fhdr_len
        cdef size_t size = <size_t>self._fpayload_len

        # The frame is consumed now, whatever happens in the callback.
        self._rstart += total
        self._fstate = FS_HEADER
        if size > self._recent_max_frame:
            self._recent_max_frame = size

        if opcode <= 2:
            is_text = opcode == WSMsgType.TEXT or (
                opcode == 0 and self._msg_opcode == WSMsgType.TEXT)
            if opcode != 0:
                self._msg_opcode = 0 if self._ffin else opcode
                self._msg_compressed = self._fcompressed
            elif self._ffin:
                self._msg_opcode = 0
            if self._state == FAILED:
                return 0
            if self._fcompressed:
                inflated = self._inflate(payload, size, self._ffin)
                payload = <const uint8_t*>PyBytes_AS_STRING(inflated)
                size = PyBytes_GET_SIZE(inflated)
                if is_text and self._utf8_validation:
                    self._utf8_state = picows_utf8_validate(self._utf8_state, payload, size)
                    if self._utf8_state == UTF8_REJECT:
                        raise _WSProtocolError(1007, "invalid UTF-8 in a TEXT "
                                               "message (RFC 6455 8.1)")
            if (is_text and self._utf8_validation and self._ffin
                    and self._utf8_state != UTF8_ACCEPT):
                raise _WSProtocolError(1007, "TEXT message ends inside a UTF-8 "
                                       "sequence (RFC 6455 8.1)")
        elif opcode == WSMsgType.CLOSE:
            if size == 1:
                raise _WSProtocolError(1002, "CLOSE frame with a 1-byte payload "
                                       "(RFC 6455 5.5.1)", True)
            if size >= 2:
                code = <uint32_t>_read_be(payload, 2)
                if not _is_valid_close_code(code):
                    raise _WSProtocolError(1002, f"invalid close code {code} "
                                           f"(RFC 6455 7.4)", True)
                if picows_utf8_validate(UTF8_ACCEPT, payload + 2, size - 2) != UTF8_ACCEPT:
                    raise _WSProtocolError(1007, "close reason is not valid UTF-8 "
                                           "(RFC 6455 5.5.1)", True)
        elif self._state == FAILED:
            return 0

        frame = self._make_frame()
        frame.payload_ptr = <char*>payload
        frame.payload_size = size
        frame.msg_type = <WSMsgType>opcode
        frame._msg_type_member = _MSG_TYPE_PTRS[opcode]
        frame.fin = self._ffin
        # A frame we inflated is delivered as plain data.
        frame.rsv1 = self._frsv1 and not self._fcompressed
        frame.tail_size = tail
        frame.last_in_buffer = tail < 2 or not self._next_frame_complete(0)

        if opcode == WSMsgType.CLOSE:
            return self._on_close_frame(frame)

        pongs_before = self.transport._pongs_sent
        if self._state != FAILED:
            self._call_on_frame(frame)
        if opcode == WSMsgType.PING:
            if (self._auto_pong and self.transport._pongs_sent == pongs_before
                    and (self._state == OPEN or self._state == CLOSE_SENT)):
                self.transport.send_frame(WSMsgType.PONG, payload, size, True, False)
        elif opcode == WSMsgType.PONG:
            self._ping_outstanding = False
            if self.transport._pending_pings:
                fut = self.transport._pending_pings.pop(0)
                if not fut.done():
                    fut.set_result(None)
        return 0

    cdef bytes _inflate(self, const uint8_t* payload, size_t size, bint fin):
        """Inflate one frame of a compressed message (RFC 7692 7.2.2); the
        output counts against max_frame_size, so a small frame cannot expand
        into unbounded memory."""
        cdef bytes out
        try:
            out = self._inflate_into(
                b"", PyMemoryView_FromMemory(<char*>payload, size, PyBUF_READ))
            # After a BFINAL block the peer should have started a new stream
            # with an empty stored block (RFC 7692 7.2.3.4); if it did not,
            # the tail would not fit a fresh stream, and there is nothing to
            # flush anyway.
            if fin and not self._inflater_fresh:
                out = self._inflate_into(out, b"\x00\x00\xff\xff")
        except zlib.error as exc:
            raise _WSProtocolError(1007, f"invalid compressed data: {exc} "
                                   f"(RFC 7692)") from None
        # Keep it alive while the frame points into it.
        self._inflated = out
        return out

    cdef bytes _inflate_into(self, bytes out, data):
        cdef uint64_t limit = self._max_frame_size
        if limit >= <uint64_t>PY_SSIZE_T_MAX - 1:
            limit = <uint64_t>PY_SSIZE_T_MAX - 2   # what zlib's max_length takes
        while True:
            if len(data):
                self._inflater_fresh = False
            out += self._inflater.decompress(data, limit + 1 - PyBytes_GET_SIZE(out))
            if self._inflater.unconsumed_tail or <uint64_t>PyBytes_GET_SIZE(out) > limit:
                raise _WSProtocolError(1009, f"inflated frame is larger than "
                                       f"max_frame_size {self._max_frame_size}")
            if not self._inflater.eof:
                return out
            # The peer ended its deflate stream with a BFINAL block (RFC 7692
            # 7.2.3.4): what follows starts a new stream, which may still
            # refer back to what came before.
            data = self._inflater.unused_data
            if out:
                window = out[max(PyBytes_GET_SIZE(out) - 32768, 0):]
                self._inflater = zlib.decompressobj(-15, zdict=window)
            else:
                self._inflater = zlib.decompressobj(-15)
            self._inflater_fresh = True
            if not data:
                return out

    @cython.final
    cdef int _call_on_frame(self, WSFrame frame) except -1:
        try:
            if self._on_frame_py is not None:
                self._on_frame_py(self.transport, frame)
            else:
                self.listener.on_ws_frame(self.transport, frame)
        except Exception as exc:
            if self._disconnect_on_exception:
                self._logger.exception("on_ws_frame raised, disconnecting")
                self._listener_exc = exc
                self._fail(WSCloseCode.INTERNAL_ERROR, "listener error")
            else:
                self._logger.exception("on_ws_frame raised")
        return 0

    cdef int _on_close_frame(self, WSFrame frame) except -1:
        cdef int prev_state = self._state
        cdef WSTransport ws = self.transport
        ws.close_frame_received = frame.get_close_code()
        self._state = CLOSE_RECEIVED
        if prev_state != FAILED:
            self._call_on_frame(frame)
        if self._closing:
            return 0
        if self._auto_close and not ws.is_close_frame_sent:
            if frame.payload_size >= 2:
                # Echo the code only: the reason is the peer's, not ours.
                ws._send_close_frame(<int>_read_be(<uint8_t*>frame.payload_ptr, 2),
                                     NULL, 0)
            else:
                ws._send_close_frame(0, NULL, 0)
        if not ws.is_close_frame_sent:
            # Auto close is off and the listener did not answer: its call.
            return 0
        if not self.is_client:
            # RFC 6455 7.1.1: the server closes the TCP connection first.
            self._disconnect()
        else:
            self._start_close_timer()
        return 0

    cdef _on_close_sent(self):
        if self._state == OPEN:
            self._state = CLOSE_SENT
        if self._state != CLOSE_RECEIVED:
            self._start_close_timer()

    cdef _start_close_timer(self):
        if self._close_timer is None and self._state != DISCONNECTED:
            self._close_timer = self._loop.call_later(self._close_timeout,
                                                      self._on_close_timeout)

    def _on_close_timeout(self):
        self._close_timer = None
        if self._state != DISCONNECTED:
            self._logger.info("close handshake not finished within %s seconds, "
                              "disconnecting", self._close_timeout)
            self._disconnect()

    cdef _fail(self, int code, str reason, bint peer_closed=False):
        """Fail the connection (RFC 6455 7.1.7): CLOSE with `code`, then wait
        for the peer's CLOSE or EOF for at most close_timeout. When the
        violation was in the peer's CLOSE (`peer_closed`), nothing more will
        come, and TCP is closed at once."""
        cdef WSTransport ws = self.transport
        if self._state == DISCONNECTED:
            return
        if self._state == FAILED or self._state == CLOSE_RECEIVED or ws is None:
            self._logger.info("disconnecting: %s", reason)
            self._disconnect()
            return
        self._logger.info("failing the connection with %d: %s", code, reason)
        reason_bytes = reason.encode("utf-8")[:_MAX_CONTROL_PAYLOAD - 2]
        ws._send_close_frame(code, <uint8_t*>PyBytes_AS_STRING(reason_bytes),
                             PyBytes_GET_SIZE(reason_bytes))
        if peer_closed:
            # The peer sent its (broken) CLOSE: it sends nothing more.
            self._state = CLOSE_RECEIVED
            self._disconnect()
            return
        self._state = FAILED
        # Close our side now. A half-close (FIN after our CLOSE) rather than a
        # full close: closing with unread bytes in the socket would send a
        # reset, and the peer could lose our CLOSE. We then read until the
        # peer's CLOSE or EOF, for at most close_timeout.
        if self._transport.can_write_eof():
            ws._write_closed = True
            self._transport.write_eof()
            self._start_close_timer()
        else:
            self._disconnect()

    cdef _disconnect(self):
        if self._closing or self._transport is None:
            return
        self._closing = True
        if self.transport is not None:
            # Nothing more goes out once we closed: not straight to the
            # socket, not through the closing transport (which would drop it
            # with a warning).
            self.transport._write_closed = True
        self._transport.close()

    # -- keepalive -------------------------------------------------------------

    cdef _schedule_auto_ping(self, double delay):
        if self._state == DISCONNECTED:
            return
        self._ping_timer = self._loop.call_later(delay, self._on_ping_timer)

    def _on_ping_timer(self):
        cdef double idle
        self._ping_timer = None
        if self._state != OPEN:
            return
        if self._ping_outstanding:
            self._logger.info("no PONG within %s seconds, disconnecting",
                              self._auto_ping_reply_timeout)
            self._disconnect()
            return
        idle = self._loop.time() - self._last_activity
        if idle < self._auto_ping_idle_timeout:
            self._schedule_auto_ping(self._auto_ping_idle_timeout - idle)
            return
        self._ping_outstanding = True
        self.transport.send_frame(WSMsgType.PING, NULL, 0, True, False)
        self._schedule_auto_ping(self._auto_ping_reply_timeout)


# ---------------------------------------------------------------------------
# TLS for the default asyncio loop
#
# asyncio's own TLS (sslproto) is pure Python: a few Python calls per read
# and per write around each OpenSSL call, more than the rest of a small
# echo. On the default loop picows does TLS itself instead: _TLSLayer is the
# BufferedProtocol of the TCP transport and drives an ssl.SSLObject over two
# MemoryBIOs. Ciphertext is read into a scratch buffer and fed to the
# incoming BIO; plaintext is read by OpenSSL straight into the websocket
# protocol's read buffer; frames are encrypted from the sender's buffer and
# the ciphertext goes to the socket at once when the transport has nothing
# queued. The websocket protocol sees a _TLSTransport, an asyncio.Transport
# with the same extra info as asyncio's TLS transport (ssl_object, peercert,
# cipher, ...). uvloop's TLS is already in Cython, so uvloop keeps its own.

# TLS records carry at most 16 KiB of plaintext; a read window of two
# records and their overhead, allocated for each read only (the incoming BIO
# copies what was read). After a read that filled it (large messages), the
# next window is larger: fewer reads per message.
DEF _TLS_READ_BUFFER = 33 * 1024
DEF _TLS_READ_BUFFER_LARGE = 256 * 1024
# The most the ssl module reads or writes in one call (it takes an int).
DEF _TLS_MAX_CALL = 1 << 30
# asyncio's default for ssl_handshake_timeout.
DEF _TLS_HANDSHAKE_TIMEOUT = 60.0


cdef class _TLSLayer:
    """The TCP transport's protocol when picows does TLS (internal)."""

    def __cinit__(self):
        self._cbuf = NULL
        self._fd = -1

    def __init__(self, ssl_context, bint server_side, server_hostname,
                 WSProtocolCore app, handshake_timeout=None):
        self._context = ssl_context
        self._server_side = server_side
        self._server_hostname = server_hostname or None
        self._app = app
        self._handshake_timeout = (_TLS_HANDSHAKE_TIMEOUT if handshake_timeout is None
                                   else handshake_timeout)
        self._handshaking = True
        self._cview = _ReadBufferView()
        self._pview = _ReadBufferView()
        self._wview = _ReadBufferView()
        self.app_transport = _TLSTransport(self)
        self.handshake_waiter = None

    def __dealloc__(self):
        if self._cbuf != NULL:
            PyMem_Free(self._cbuf)
            self._cbuf = NULL

    @property
    def app_protocol(self):
        """The websocket protocol on top."""
        return self._app

    # -- protocol of the TCP transport -----------------------------------------

    def connection_made(self, transport):
        self._loop = asyncio.get_running_loop()
        self._tcp = transport
        if not self._server_side:
            # ws_connect waits for it (and gets the handshake's exception).
            self.handshake_waiter = self._loop.create_future()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        try:
            self.ssl_object = self._context.wrap_bio(
                self._incoming, self._outgoing, server_side=self._server_side,
                server_hostname=self._server_hostname)
        except Exception as exc:
            # E.g. check_hostname without a server_hostname: ws_connect
            # raises it (the loop's own TLS raises it from create_connection).
            self._handshake_failed(exc)
            return
        # The C object under ssl.SSLObject: same read/write, no Python frame.
        sslobj = getattr(self.ssl_object, "_sslobj", self.ssl_object)
        self._ssl_read = sslobj.read
        self._ssl_write = sslobj.write
        self._ssl_pending = sslobj.pending
        self._incoming_write = self._incoming.write
        self._outgoing_read = self._outgoing.read
        self._tcp_write = transport.write
        if type(transport).__module__ == "asyncio.selector_events":
            self._fd = _direct_send_fd(transport)
        self._backlog = True
        if self._handshake_timeout is not None and self._handshake_timeout > 0:
            self._handshake_timer = self._loop.call_later(
                self._handshake_timeout, self._on_handshake_timeout)
        self._do_handshake()

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def get_buffer(self, Py_ssize_t sizehint):
        cdef Py_ssize_t size = _TLS_READ_BUFFER_LARGE if self._read_full else _TLS_READ_BUFFER
        if self._cbuf != NULL:
            PyMem_Free(self._cbuf)
        self._cbuf = <char*>PyMem_Malloc(size)
        if self._cbuf == NULL:
            raise MemoryError()
        self._cview.ptr = self._cbuf
        self._cview.size = size
        return self._cview

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def buffer_updated(self, Py_ssize_t nbytes):
        if nbytes <= 0 or self._closed:
            return
        self._read_full = nbytes == self._cview.size
        self._cview.size = nbytes
        self._incoming_write(self._cview)
        # The BIO has its own copy: an idle connection keeps no read buffer.
        PyMem_Free(self._cbuf)
        self._cbuf = NULL
        if self._handshaking:
            self._do_handshake()
        else:
            self._feed_app()

    def eof_received(self):
        if self._handshaking:
            self._handshake_failed(ConnectionResetError(
                "connection closed during the TLS handshake"))
            return False
        if self._app_connected:
            return self._app.eof_received()
        return False

    def connection_lost(self, exc):
        self._closed = True
        self._fd = -1
        self._cancel_handshake_timer()
        if exc is None:
            exc = self._exc
        if self.handshake_waiter is not None and not self.handshake_waiter.done():
            self.handshake_waiter.set_exception(
                exc if exc is not None else
                ConnectionResetError("connection lost during the TLS handshake"))
        if self._app_connected:
            self._app_connected = False
            self._app.connection_lost(exc)
        if self._cbuf != NULL:
            PyMem_Free(self._cbuf)
            self._cbuf = NULL

    def pause_writing(self):
        if self._app_connected:
            self._app.pause_writing()

    def resume_writing(self):
        if self._app_connected:
            self._app.resume_writing()

    # -- handshake --------------------------------------------------------------

    cdef _do_handshake(self):
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except Exception as exc:
            self._flush()
            self._handshake_failed(exc)
            return
        self._flush()
        self._handshaking = False
        self._cancel_handshake_timer()
        if self.handshake_waiter is not None and not self.handshake_waiter.done():
            self.handshake_waiter.set_result(None)
        self._app_connected = True
        self._app.connection_made(self.app_transport)
        if self._pending is not None:
            pending, self._pending = self._pending, None
            for data in pending:
                self.write(data)
        # Data that came with the end of the handshake.
        self._feed_app()

    cdef _handshake_failed(self, exc):
        self._cancel_handshake_timer()
        if self._app is not None:
            self._app._logger.debug("TLS handshake failed: %r", exc)
        self._exc = exc
        if self.handshake_waiter is not None and not self.handshake_waiter.done():
            self.handshake_waiter.set_exception(exc)
        self._closed = True
        self._fd = -1
        self._tcp.abort()

    def _on_handshake_timeout(self):
        self._handshake_timer = None
        if self._handshaking and not self._closed:
            self._handshake_failed(ConnectionAbortedError(
                f"TLS handshake is taking longer than {self._handshake_timeout} "
                f"seconds: aborting the connection"))

    cdef _cancel_handshake_timer(self):
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    # -- data -------------------------------------------------------------------

    cdef int _feed_app(self) except -1:
        """Decrypt what the incoming BIO holds into the app's read buffer."""
        cdef WSProtocolCore app = self._app
        cdef _ReadBufferView view = self._pview
        cdef Py_ssize_t n
        while self._app_connected and not self._closed and not app._closing:
            app._read_window(&view.ptr, &view.size)
            if view.size > _TLS_MAX_CALL:
                view.size = _TLS_MAX_CALL
            try:
                n = self._ssl_read(view.size, view)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                n = 0
            except Exception as exc:
                self._fatal(exc)
                return 0
            if n <= 0:
                # close_notify (the ssl module reads 0 bytes): the peer
                # sends no more.
                self._flush()
                if not app.eof_received():
                    self.close()
                return 0
            app._data_in(n)
            if self._incoming.pending == 0 and self._ssl_pending() == 0:
                break
        # Post-handshake messages (key updates) may need an answer.
        self._flush()
        if self._pending is not None and not self._closed:
            pending, self._pending = self._pending, None
            for data in pending:
                self.write(data)
        return 0

    cdef int _encrypt(self, const uint8_t* data, size_t size) except -1:
        """Encrypt and send `size` bytes at `data` (the sender's buffer)."""
        cdef _ReadBufferView view = self._wview
        cdef size_t done = 0, chunk
        if self._closed:
            return 0
        if self._handshaking or self._pending is not None:
            self._queue(PyBytes_FromStringAndSize(<char*>data, size))
            return 0
        while done < size:
            # The ssl module takes at most INT_MAX bytes per call.
            chunk = min(size - done, <size_t>_TLS_MAX_CALL)
            view.ptr = <char*>data + done
            view.size = chunk
            try:
                self._ssl_write(view)
            except ssl.SSLWantReadError:
                # A renegotiation (TLS 1.2) must finish first.
                self._queue(PyBytes_FromStringAndSize(<char*>data + done, size - done))
                break
            except Exception as exc:
                self._fatal(exc)
                return 0
            done += chunk
        self._flush()
        return 0

    cdef _queue(self, bytes data):
        if self._pending is None:
            self._pending = []
        self._pending.append(data)

    cdef int _flush(self) except -1:
        """Send the ciphertext the outgoing BIO holds."""
        cdef bytes data
        cdef Py_ssize_t size, sent = 0
        if self._closed:
            return 0
        data = self._outgoing_read()
        size = PyBytes_GET_SIZE(data)
        if size == 0:
            return 0
        if self._backlog and self._fd >= 0:
            # Only our own writes can fill the transport's buffer.
            self._backlog = self._tcp.get_write_buffer_size() != 0
        if not self._backlog and self._fd >= 0:
            sent = picows_send(self._fd, <uint8_t*>PyBytes_AS_STRING(data), size)
            if sent == size:
                return 0
            if sent < 0:
                sent = 0
            if sent:
                # The transport copies it into its buffer: no slice copy.
                self._backlog = True
                self._tcp_write(memoryview(data)[sent:])
                return 0
        self._backlog = True
        self._tcp_write(data)
        return 0

    cdef _fatal(self, exc):
        if self._app is not None:
            self._app._logger.debug("TLS error: %r", exc)
        self._exc = exc
        self._closed = True
        self._fd = -1
        self._tcp.abort()

    # -- what _TLSTransport calls ------------------------------------------------

    def write(self, data):
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._encrypt(<uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def close(self):
        if self._closed:
            return
        if not self._handshaking:
            # Our close_notify; the peer's is not waited for.
            try:
                self.ssl_object.unwrap()
            except ssl.SSLError:
                pass
            self._flush()
        self._closed = True
        self._fd = -1
        self._tcp.close()

    def abort(self):
        self._closed = True
        self._fd = -1
        self._tcp.abort()

    def is_closing(self):
        return self._closed or self._tcp.is_closing()


class _TLSTransport(asyncio.Transport):
    """What the websocket protocol and ``WSTransport.underlying_transport``
    see when picows does TLS: an asyncio transport like asyncio's own TLS one."""

    def __init__(self, layer):
        super().__init__()
        self._layer = layer

    def get_extra_info(self, name, default=None):
        layer = self._layer
        sslobj = layer.ssl_object
        if name == "ssl_object":
            return sslobj
        if name == "sslcontext":
            return layer._context
        if sslobj is not None:
            if name == "peercert":
                return sslobj.getpeercert()
            if name == "cipher":
                return sslobj.cipher()
            if name == "compression":
                return sslobj.compression()
        return layer._tcp.get_extra_info(name, default)

    def write(self, data):
        self._layer.write(data)

    def writelines(self, list_of_data):
        self._layer.write(b"".join(list_of_data))

    def can_write_eof(self):
        return False

    def write_eof(self):
        raise NotImplementedError("TLS transports cannot write EOF")

    def close(self):
        self._layer.close()

    def abort(self):
        self._layer.abort()

    def is_closing(self):
        return self._layer.is_closing()

    def pause_reading(self):
        self._layer._tcp.pause_reading()

    def resume_reading(self):
        self._layer._tcp.resume_reading()

    def is_reading(self):
        return self._layer._tcp.is_reading()

    def set_write_buffer_limits(self, high=None, low=None):
        self._layer._tcp.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self):
        return self._layer._tcp.get_write_buffer_limits()

    def get_write_buffer_size(self):
        return self._layer._tcp.get_write_buffer_size()

    def set_protocol(self, protocol):
        raise NotImplementedError("picows does not support replacing its protocol")

    def get_protocol(self):
        return self._layer._app

    def __repr__(self):
        return f"<picows TLS transport over {self._layer._tcp!r}>"


class TLSLayer(_TLSLayer, asyncio.BufferedProtocol):
    """The TCP protocol when picows does TLS (internal; see _TLSLayer)."""
    __slots__ = ()


_BASE_ON_WS_FRAME = getattr(WSListener, "on_ws_frame")

picows_install_listener_new(
    WSListener, PyCapsule_GetPointer(WSListener.__dict__["__pyx_vtable__"], NULL))


cdef int _install_msg_type_slot() except -1:
    cdef WSFrame probe = WSFrame.__new__(WSFrame)
    cdef Py_ssize_t offset = <char*>&probe._msg_type_member - <char*><PyObject*>probe
    picows_install_slot(WSFrame, "msg_type", offset, ":any:`WSMsgType` of the frame.")
    return 0


_install_msg_type_slot()


class WSProtocol(WSProtocolCore, asyncio.BufferedProtocol):
    """The asyncio protocol behind every picows connection (internal).

    A Python subclass only so that the event loops see a BufferedProtocol;
    every method is the C-level one of WSProtocolCore.
    """
    __slots__ = ()
