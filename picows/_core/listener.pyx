# WSListener: the user's callbacks.


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
