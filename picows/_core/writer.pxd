cdef class _SocketWriter:
    # The one place that writes to a socket: straight to its fd when the
    # transport has nothing queued (skipping the loop's write path), else
    # through transport.write. Owned by a WSTransport (plain TCP) or by the
    # TLS layer (ciphertext).
    cdef int fd                 # -1: always through the transport
    cdef bint _backlog          # the transport may hold queued bytes
    cdef object _transport
    cdef object _transport_write
    # max_write_buffer_size (0: unbounded): checked after each
    # transport.write, the only way bytes get queued.
    cdef Py_ssize_t max_queued
    cdef object on_overflow     # called once with the queued size
    cdef bint dropped           # over the limit: nothing is written any more

    cdef inline bint _direct(self) except -1
    cdef int write(self, const uint8_t* data, size_t size) except -1
    cdef int write2(self, const uint8_t* header, size_t hlen,
                    const uint8_t* payload, size_t size) except -1
    cdef int write_bytes(self, bytes data) except -1
    cdef int write_object(self, data) except -1
    cdef void close(self) noexcept
    cdef int _queued(self) except -1
