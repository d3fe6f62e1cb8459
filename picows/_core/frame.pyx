# Frames on the wire: header building and reading, client masks, close
# codes, and WSFrame, the received frame handed to on_ws_frame.


class _WSProtocolError(WSProtocolError):
    """A protocol violation by the peer: fail the connection with `code`.
    (The public WSProtocolError, with where it was found.)

    `in_close_frame`: the violation is in the peer's CLOSE frame, so the peer
    has started closing and will send nothing more.
    """

    def __init__(self, int code, str message, bint in_close_frame=False):
        super().__init__(code, message)
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


# -- WSFrame ------------------------------------------------------------------

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

    cpdef object get_close_reason(self):
        """:return: the close reason as a new str (UTF-8 decoded, invalid
            bytes replaced), or None when the CLOSE has none.

        Only valid for ``WSMsgType.CLOSE`` frames.
        """
        if self.payload_size <= 2:
            return None
        return PyUnicode_DecodeUTF8(self.payload_ptr + 2, self.payload_size - 2, "replace")

    def __repr__(self):
        return (f"WSFrame({WSMsgType(self.msg_type).name}, fin={self.fin}, "
                f"rsv1={self.rsv1}, payload_size={self.payload_size}, "
                f"last_in_buffer={self.last_in_buffer}, tail_size={self.tail_size})")
