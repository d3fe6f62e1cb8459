cdef class _TLSLayer:
    # TLS over MemoryBIOs, on both loops (internal).
    cdef readonly object app_transport
    cdef readonly object handshake_waiter
    cdef readonly object ssl_object
    cdef readonly object _context
    cdef bint _server_side
    cdef object _server_hostname
    cdef readonly WSProtocolCore _app
    cdef object _handshake_timeout
    cdef object _handshake_timer
    cdef object _loop
    cdef readonly object _tcp
    cdef _SocketWriter _writer
    cdef object _incoming
    cdef object _outgoing
    cdef object _incoming_write
    cdef object _outgoing_read
    cdef object _ssl_read
    cdef object _ssl_write
    cdef object _ssl_pending
    # The SSL* under ssl_object once the handshake is done, our BIOs that
    # replaced its memory BIOs (includes/tlsbio.h; one reference each is
    # ours) and their picows_tlsbio states (see _attach_openssl); else NULL:
    # the ssl module's methods.
    cdef void* _ssl
    cdef void* _rbio
    cdef void* _wbio
    cdef void* _in
    cdef void* _out
    # get_buffer put this many unread bytes of _in in front of the read.
    cdef Py_ssize_t _lead
    cdef bint _read_full
    cdef int _rfd                   # asyncio: the socket read from C, else -1
    cdef _ReadBufferView _cview
    cdef _ReadBufferView _pview
    cdef _ReadBufferView _wview
    cdef list _pending
    cdef object _exc
    cdef _TLSState _state
    cdef bint _app_connected

    cdef _direct_reads(self, transport)
    cdef int _read_window(self) except -1
    cdef int _received(self, Py_ssize_t nbytes) except -1
    cdef _do_handshake(self)
    cdef _attach_openssl(self)
    cdef object _openssl_error(self, int err, unsigned long code)
    cdef _handshake_failed(self, exc)
    cdef _cancel_handshake_timer(self)
    cdef int _feed_app(self) except -1
    cdef int _encrypt(self, const uint8_t* data, size_t size) except -1
    cdef int _encrypt_ex(self, const uint8_t* data, size_t size, bint flush) except -1
    cdef int _encrypt2(self, const uint8_t* header, size_t hlen,
                       const uint8_t* payload, size_t size) except -1
    cdef _queue(self, bytes data)
    cdef int _flush(self) except -1
    cdef _fatal(self, exc)
    cdef _shut(self)
