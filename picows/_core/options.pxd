cdef class _ConnectionOptions:
    # What ws_connect / ws_create_server were given, checked once there and
    # shared by every connection they make. Read-only after __init__.
    cdef readonly object listener_factory
    cdef readonly object client_factory                # (request, response) -> listener
    cdef readonly object logger
    cdef readonly bint disconnect_on_exception
    cdef readonly object websocket_handshake_timeout   # float or None
    cdef readonly uint64_t max_frame_size
    cdef readonly bint enable_auto_pong
    cdef readonly bint enable_auto_close
    cdef readonly bint enable_utf8_validation
    cdef readonly double close_timeout
    cdef readonly bint enable_auto_ping
    cdef readonly double auto_ping_idle_timeout
    cdef readonly double auto_ping_reply_timeout
    cdef readonly WSAutoPingStrategy auto_ping_strategy
    cdef readonly bint enable_compression
    cdef readonly object compression                   # WSCompression, or None
    cdef readonly frozenset allowed_origins             # server; None: any
    cdef readonly size_t read_buffer_init_size          # the read buffer's first size
    cdef readonly Py_ssize_t max_write_buffer_size      # 0: unbounded
