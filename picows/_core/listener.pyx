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

    cpdef send_user_specific_ping(self, WSTransport transport):
        """Send an application-level ping, for peers that heartbeat with
        data frames (e.g. ``{"op": "ping"}``) instead of PING frames.

        Override it together with :any:`is_user_specific_pong`: keepalive
        (``enable_auto_ping``) and :any:`WSTransport.measure_roundtrip_time`
        then call it instead of sending a PING. The default sends a PING.

        :param transport: :any:`WSTransport`
        """
        transport.send_ping()

    cpdef is_user_specific_pong(self, WSFrame frame):
        """Whether ``frame`` answers the last :any:`send_user_specific_ping`.

        Only asked while such a ping waits for its answer. A frame for which
        it returns True counts as the pong and is not passed to
        :any:`on_ws_frame`. Instead of overriding it, the listener may call
        :any:`WSTransport.notify_user_specific_pong_received`.

        :param frame: :any:`WSFrame`
        :return: True if the frame is the pong.
        """
        return False
