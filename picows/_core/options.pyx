# _ConnectionOptions: the per-connection settings of ws_connect and
# ws_create_server, declared and checked in one place. api.py builds one per
# call; every protocol of that call reads its typed fields.


def _takes_request_response(factory):
    """Whether a client listener factory takes (request, response)."""
    try:
        inspect.signature(factory).bind(None, None)
    except (TypeError, ValueError):
        return False
    return True


@cython.final
cdef class _ConnectionOptions:

    def __init__(self, listener_factory, *, logger_name="test",
                 bint disconnect_on_exception=True,
                 websocket_handshake_timeout=5,
                 max_frame_size=10 * 1024 * 1024,
                 bint enable_auto_pong=True,
                 bint enable_auto_close=True,
                 bint enable_utf8_validation=True,
                 close_timeout=5.0,
                 bint enable_auto_ping=False,
                 auto_ping_idle_timeout=20.0,
                 auto_ping_reply_timeout=20.0,
                 auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
                 allowed_origins=None,
                 enable_compression=False,
                 read_buffer_init_size=16 * 1024,
                 max_write_buffer_size=None):
        """The defaults are ws_connect's and ws_create_server's; see there.

        `logger_name`: a str (logger ``picows.<str>``), a Logger or a
        LoggerAdapter.

        :raises TypeError: for a listener factory that is not callable, or a
            logger_name of another type.
        :raises ValueError: for a value out of its range.
        """
        if not callable(listener_factory):
            raise TypeError("ws_listener_factory must be callable")
        if websocket_handshake_timeout is not None and websocket_handshake_timeout <= 0:
            raise ValueError("websocket_handshake_timeout must be positive or None")
        if not isinstance(max_frame_size, int) or not 0 <= max_frame_size < 2 ** 63:
            raise ValueError("max_frame_size must be an int between 0 and 2**63 - 1")
        if close_timeout <= 0:
            raise ValueError("close_timeout must be positive")
        if (not isinstance(read_buffer_init_size, int)
                or not 1 <= read_buffer_init_size <= 2 ** 31):
            raise ValueError("read_buffer_init_size must be an int between 1 and 2**31")
        if auto_ping_idle_timeout <= 0 or auto_ping_reply_timeout <= 0:
            raise ValueError("auto_ping timeouts must be positive")
        if max_write_buffer_size is not None and (
                not isinstance(max_write_buffer_size, int)
                or isinstance(max_write_buffer_size, bool)
                or not 0 < max_write_buffer_size < 2 ** 62):
            raise ValueError("max_write_buffer_size must be a positive int or None")
        if auto_ping_strategy not in (WSAutoPingStrategy.PING_WHEN_IDLE,
                                      WSAutoPingStrategy.PING_PERIODICALLY):
            raise ValueError(f"invalid auto_ping_strategy {auto_ping_strategy!r}")
        self.logger = get_logger(logger_name, "test")
        self.listener_factory = listener_factory
        # The client calls client_factory(request, response); a factory
        # taking no arguments is wrapped once here.
        if _takes_request_response(listener_factory):
            self.client_factory = listener_factory
        else:
            self.client_factory = lambda request, response: listener_factory()
        self.disconnect_on_exception = disconnect_on_exception
        self.websocket_handshake_timeout = websocket_handshake_timeout
        self.max_frame_size = max_frame_size
        self.enable_auto_pong = enable_auto_pong
        self.enable_auto_close = enable_auto_close
        self.enable_utf8_validation = enable_utf8_validation
        self.close_timeout = close_timeout
        self.enable_auto_ping = enable_auto_ping
        self.auto_ping_idle_timeout = auto_ping_idle_timeout
        self.auto_ping_reply_timeout = auto_ping_reply_timeout
        self.auto_ping_strategy = auto_ping_strategy
        self.allowed_origins = (None if allowed_origins is None
                                else frozenset(allowed_origins))
        # True or a WSCompression: compression.as_compression says which
        # settings; the bint is for the hot path's checks.
        self.compression = as_compression(enable_compression)
        self.enable_compression = self.compression is not None
        self.read_buffer_init_size = read_buffer_init_size
        self.max_write_buffer_size = (0 if max_write_buffer_size is None
                                      else max_write_buffer_size)
