# _SocketWriter: every byte picows sends goes through one of these.
#
# On plain TCP (and under picows' own TLS, for the ciphertext) writing
# straight to the socket when the transport has nothing queued skips the
# loop's write path (pure Python on asyncio) and a bytes object per frame.
# What the socket does not take goes through transport.write, and from then
# on everything does, until the transport's buffer is empty again: bytes
# never overtake each other.
#
# Bounded queue (max_write_buffer_size, opt-in): only transport.write can
# queue bytes, so the limit is checked right after it and nowhere else; the
# direct send costs nothing more. Over it, the owner's on_overflow drops the
# connection and nothing more is written.
#
# Why the fd is safe to write to: both asyncio's socket transport and
# uvloop's close the socket only after calling connection_lost (close and
# abort both defer it to a later loop iteration), and the owner calls
# close() from connection_lost (and at once on its own disconnect), so a
# stale fd is never written to.

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


@cython.final
cdef class _SocketWriter:

    def __cinit__(self, transport, bint direct):
        """`direct`: write to the socket's fd when possible (the caller
        knows the transport sends bytes as they are: no TLS of the loop's)."""
        self._transport = transport
        self._transport_write = transport.write
        self.fd = _direct_send_fd(transport) if direct else -1
        # The handshake may have gone through the transport: check its
        # buffer once.
        self._backlog = True

    cdef void close(self) noexcept:
        """No more direct writes (the socket is closing)."""
        self.fd = -1

    cdef inline bint _direct(self) except -1:
        if self.fd < 0:
            return False
        if self._backlog:
            # Only our own transport.write calls can fill its buffer.
            self._backlog = self._transport.get_write_buffer_size() != 0
        return not self._backlog

    cdef int write(self, const uint8_t* data, size_t size) except -1:
        cdef Py_ssize_t sent = 0
        if self._direct():
            sent = picows_send(self.fd, data, size)
            if sent == <Py_ssize_t>size:
                return 0
            if sent < 0:
                # EAGAIN: the kernel buffer is full, let the transport queue
                # it. Anything else: the transport meets the same error on
                # its own write and closes the connection (connection_lost).
                sent = 0
        if self.dropped:
            return 0
        self._backlog = True
        self._transport_write(PyBytes_FromStringAndSize(<char*>data + sent, size - sent))
        if self.max_queued:
            self._queued()
        return 0

    cdef int write2(self, const uint8_t* header, size_t hlen,
                    const uint8_t* payload, size_t size) except -1:
        """Like write, for a header and a payload in two places (one
        system call, no copy of the payload)."""
        cdef Py_ssize_t sent = 0
        cdef bytes rest
        cdef uint8_t* p
        if self._direct():
            sent = picows_send2(self.fd, header, hlen, payload, size)
            if sent == <Py_ssize_t>(hlen + size):
                return 0
            if sent < 0:
                sent = 0
        if self.dropped:
            return 0
        self._backlog = True
        rest = PyBytes_FromStringAndSize(NULL, hlen + size - sent)
        p = <uint8_t*>PyBytes_AS_STRING(rest)
        if <size_t>sent < hlen:
            memcpy(p, header + sent, hlen - sent)
            memcpy(p + hlen - sent, payload, size)
        else:
            memcpy(p, payload + (sent - hlen), size - (sent - hlen))
        self._transport_write(rest)
        if self.max_queued:
            self._queued()
        return 0

    cdef int write_bytes(self, bytes data) except -1:
        """Like write, for a bytes object: what the socket does not take is
        handed to the transport without a copy of ours."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t sent = 0
        if size == 0:
            return 0
        if self._direct():
            sent = picows_send(self.fd, <uint8_t*>PyBytes_AS_STRING(data), size)
            if sent == size:
                return 0
        if self.dropped:
            return 0
        self._backlog = True
        if sent > 0:
            # The transport copies it into its buffer: no slice copy.
            self._transport_write(memoryview(data)[sent:])
        else:
            self._transport_write(data)
        if self.max_queued:
            self._queued()
        return 0

    cdef int write_object(self, data) except -1:
        """Hand `data` (a bytes-like object) to the transport as it is."""
        if self.dropped:
            return 0
        self._backlog = True
        self._transport_write(data)
        if self.max_queued:
            self._queued()
        return 0

    cdef int _queued(self) except -1:
        """Bytes were queued in the transport: past max_queued, drop."""
        cdef Py_ssize_t size = self._transport.get_write_buffer_size()
        if size <= self.max_queued or self.dropped:
            return 0
        self.dropped = True
        self.fd = -1
        if self.on_overflow is not None:
            self.on_overflow(size)
        else:
            self._transport.abort()
        return 0
