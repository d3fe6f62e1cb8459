# WSTransport: the sending side of a connection. Frames are built in one
# reused buffer and written once, through the connection's _SocketWriter
# (plain TCP) or encrypted by the TLS layer.


cdef class WSTransport:
    """The sending side of a websocket connection.

    :ivar underlying_transport: the asyncio TCP or SSL transport. Use it for
        buffer limits and connection state; send only with ``send_*``.
    :ivar is_client: True on the client side (also ``is_client_side``).
    :ivar is_secure: True over TLS.
    :ivar request: the :any:`WSUpgradeRequest`: the one received (server
        side) or sent (client side).
    :ivar response: the :any:`WSUpgradeResponse` 101: the one sent (server
        side) or received (client side).
    :ivar extensions: the negotiated Sec-WebSocket-Extensions value
        (permessage-deflate), or None.
    """

    def __cinit__(self):
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
        if type(underlying_transport) is _TLSTransport:
            # picows' own TLS: frames are encrypted from _wbuf, no bytes.
            self._tls = underlying_transport._layer
        # Straight to the socket only on the loops' plain TCP transports,
        # whose socket closes after connection_lost (see writer.pyx). TLS
        # transports must encrypt: they always get transport.write.
        module = type(underlying_transport).__module__
        self.is_secure = (underlying_transport.get_extra_info("sslcontext") is not None
                          or underlying_transport.get_extra_info("ssl_object") is not None)
        self._writer = _SocketWriter(
            underlying_transport,
            module in ("asyncio.selector_events", "uvloop.loop") and not self.is_secure)

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

    cdef int send_frame(self, WSMsgType msg_type, const uint8_t* payload,
                        size_t size, bint fin, bint rsv1) except -1:
        """Send one frame: header and payload assembled, written once."""
        cdef uint8_t mask[4]
        cdef uint8_t* dst = NULL
        cdef size_t hlen
        cdef object out = None
        if not self._may_send(msg_type, fin):
            return 0
        if msg_type == WSMsgType.CLOSE:
            self._record_close_sent(payload, size)
        cdef size_t total = _header_size(size, self.is_client) + size
        cdef uint8_t header[10]
        if not self.is_client and self._writer.fd >= 0 and size >= _GATHER_WRITE_MIN:
            # Large server frames: no copy of the payload, the kernel gathers.
            hlen = _write_header(header, <uint8_t>msg_type, size, fin, rsv1, NULL)
            self._writer.write2(header, hlen, payload, size)
        elif (not self.is_client and self._tls is not None and self._tls._ssl != NULL
                and size >= _GATHER_WRITE_MIN):
            # The same over picows' TLS: at most one record's worth copied.
            hlen = _write_header(header, <uint8_t>msg_type, size, fin, rsv1, NULL)
            self._tls._encrypt2(header, hlen, payload, size)
        elif self._writer.fd >= 0 or self._tls is not None:
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
        if out is not None:
            self._writer.write_object(out)
        elif dst == NULL:
            pass  # gone already (write2, _encrypt2)
        elif self._tls is not None:
            self._tls._encrypt(dst, total)
        else:
            self._writer.write(dst, total)
        if msg_type == WSMsgType.CLOSE and self._protocol is not None:
            self._protocol._on_close_sent()
        return 0

    @cython.final
    cdef inline bint _may_send(self, WSMsgType msg_type, bint fin) noexcept:
        """The bookkeeping before a frame goes out; False: it must not."""
        if self._closed or self._write_closed:
            return False
        if msg_type == WSMsgType.CLOSE:
            # One CLOSE per connection (RFC 6455 5.5.1), however it is sent.
            if self.is_close_frame_sent:
                return False
            self.is_close_frame_sent = True
        elif msg_type <= 2:
            # No data frames after our CLOSE (RFC 6455 5.5.1).
            if self.is_close_frame_sent:
                return False
            # Whether our own fragmented message is open (never compressed).
            if msg_type != 0:
                self._sending_fragments = not fin
            elif fin:
                self._sending_fragments = False
        elif msg_type == WSMsgType.PONG:
            self._pongs_sent += 1
        return True

    @cython.final
    cdef int _send_in_place(self, WSMsgType msg_type, uint8_t* payload, size_t size,
                            bint fin, bint rsv1) except -1:
        """Send a data frame or PING/PONG with the header written into the
        memory just before `payload` (at least 14 writable bytes there): no
        copy of the payload. On the client side the payload is masked in
        place."""
        cdef uint8_t mask[4]
        cdef size_t hlen
        cdef uint8_t* start
        if not self._may_send(msg_type, fin):
            return 0
        hlen = _header_size(size, self.is_client)
        start = payload - hlen
        if self.is_client:
            _next_mask(mask)
            _write_header(start, <uint8_t>msg_type, size, fin, rsv1, mask)
            picows_mask_copy(payload, payload, size, mask, 0)
        else:
            _write_header(start, <uint8_t>msg_type, size, fin, rsv1, NULL)
        if self._tls is not None:
            self._tls._encrypt(start, hlen + size)
        elif self._writer.fd >= 0:
            self._writer.write(start, hlen + size)
        else:
            # The loop's TLS (uvloop) takes bytes.
            self._writer.write_object(PyBytes_FromStringAndSize(<char*>start, hlen + size))
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
        if self.is_client or self._writer.fd < 0 or msg_type >= WSMsgType.CLOSE:
            # The client leaves `message` intact (it is masked into our own
            # buffer); control frames are small.
            self.send_frame(msg_type, <uint8_t*>message, message_size, True, False)
            return
        self._send_in_place(msg_type, <uint8_t*>message, message_size, True, False)

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

    cdef int _record_close_sent(self, const uint8_t* payload, size_t size) except -1:
        code = 0
        reason = ""
        if size >= 2:
            code = _read_be(payload, 2)
            reason = PyUnicode_DecodeUTF8(<char*>payload + 2, size - 2, "replace")
        try:
            code = WSCloseCode(code)
        except ValueError:
            pass
        self._close_sent = WSCloseInfo(code, reason)
        self._logger.debug("CLOSE sent: %d %r (%s)", code, reason,
                           "the answer to the peer's" if self._close_recv is not None
                           else "we close first")
        return 0

    cdef int _mark_disconnected(self) except -1:
        self._closed = True
        self._writer.close()
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
    def send(self, msg_type, message=None, rsv1=False, *, fin=True, compress=True):
        """Send a frame with `message` as its payload.

        :param msg_type: :any:`WSMsgType`
        :param message: an optional bytes-like object (any contiguous
            buffer); a str is sent UTF-8 encoded.
        :param rsv1: first reserved bit; extensions such as
            permessage-deflate use it.
        :param fin: False to send a fragment of a message; continue it with
            ``WSMsgType.CONTINUATION`` frames, the last with ``fin=True``.
        :param compress: False sends this message uncompressed although
            permessage-deflate was negotiated (already compressed data, say).
            Without compression it changes nothing.

        Nothing is sent once disconnected, and no data frame once a CLOSE
        was sent (RFC 6455 5.5.1).
        """
        cdef int opcode = msg_type
        if opcode not in (0, 1, 2, 8, 9, 10):
            raise ValueError(f"invalid msg_type {msg_type!r}")
        _send_message(self, <WSMsgType>opcode, message, fin, rsv1, compress)

    cdef int send_message(self, WSMsgType msg_type, object message, bint fin, bint rsv1,
                          bint compress) except -1:
        """``send(msg_type, message, rsv1, fin=fin, compress=compress)`` for
        Cython callers (picows.websockets' send): no Python call, no argument
        parsing. `msg_type` must be a valid WSMsgType."""
        return _send_message(self, msg_type, message, fin, rsv1, compress)

    @cython.binding(False)
    def send_reuse_external_bytearray(self, msg_type, bytearray buffer not None,
                                      Py_ssize_t msg_offset, fin=True, rsv1=False, *,
                                      compress=True):
        """Send ``buffer[msg_offset:]`` as a frame's payload without copying
        it: the frame header is written into the bytes just before
        ``msg_offset``. Made for serializers that encode into a bytearray at
        an offset (msgspec's ``encode_into(obj, buffer, offset)``).

        :param msg_type: :any:`WSMsgType`, not CLOSE (use :any:`send_close`).
        :param buffer: a bytearray; its first ``msg_offset`` bytes are
            scratch space for the header.
        :param msg_offset: where the message starts, at least 14.
        :param fin: False to send a fragment of a message.
        :param rsv1: first reserved bit.
        :param compress: False: uncompressed although permessage-deflate
            was negotiated (see :any:`send`).
        :raises ValueError: for CLOSE, ``msg_offset`` below 14 or past the
            end, or a control payload over 125 bytes.

        .. warning::
            The bytes before ``msg_offset`` are overwritten, and on the
            client side the message itself is masked in place (RFC 6455
            5.3): re-encode before sending the buffer again. With
            permessage-deflate negotiated a whole message is compressed
            (into the connection's compression buffer) as :any:`send` would.
        """
        cdef int opcode = msg_type
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(buffer) - msg_offset
        if opcode not in (0, 1, 2, 9, 10):
            raise ValueError(f"invalid msg_type {msg_type!r} for "
                             f"send_reuse_external_bytearray (CLOSE: use send_close)")
        if msg_offset < 14:
            raise ValueError(f"msg_offset must be at least 14 (room for the frame "
                             f"header), got {msg_offset}")
        if size < 0:
            raise ValueError(f"msg_offset {msg_offset} is past the end of the buffer")
        if opcode >= 8 and size > _MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload must be at most 125 bytes")
        if self._deflate is not None and self._deflate.deflates \
                and (opcode == 1 or opcode == 2) and fin and compress \
                and not rsv1 and not self._sending_fragments \
                and <size_t>size >= self._deflate.min_size:
            self._send_compressed(<WSMsgType>opcode, memoryview(buffer)[msg_offset:])
            return
        self._send_in_place(<WSMsgType>opcode,
                            <uint8_t*>PyByteArray_AS_STRING(buffer) + msg_offset,
                            size, fin, rsv1)

    cdef _send_compressed(self, WSMsgType msg_type, message):
        """Send a whole message compressed (RFC 7692 7.2.1), unless it is
        shorter than min_size. The compressed payload is in the deflater's
        buffer with room for the header before it: one write, no copy."""
        cdef Py_buffer view
        cdef uint8_t* out
        cdef Py_ssize_t n
        if self._closed or self._write_closed:
            return
        PyObject_GetBuffer(message, &view, PyBUF_SIMPLE)
        try:
            if <size_t>view.len < self._deflate.min_size:
                self.send_frame(msg_type, <uint8_t*>view.buf, view.len, True, False)
                return
            n = self._deflate.deflate(<uint8_t*>view.buf, view.len, &out)
        finally:
            PyBuffer_Release(&view)
        self._send_in_place(msg_type, out, n, True, True)

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
    def disconnect(self, graceful=True):
        """Close the underlying transport.

        :param graceful: True (default): buffered outgoing data is flushed
            asynchronously. False: the connection is aborted at once and
            what is queued is dropped.

        Nothing more is received. Safe to call many times; does nothing once
        disconnected.
        """
        if self._closed:
            return
        if self._protocol is not None:
            self._protocol._disconnect(not graceful)
        elif graceful:
            self.underlying_transport.close()
        else:
            self.underlying_transport.abort()

    @property
    def is_client_side(self):
        """True on the client side (the same as ``is_client``)."""
        return self.is_client

    @property
    def is_disconnected(self):
        """True once the connection is closed (``on_ws_disconnected`` called)."""
        return self._closed

    @property
    def close_handshake(self):
        """None until a CLOSE was sent or received, then a
        :any:`WSCloseHandshake`: ``recv`` and ``sent`` (each None or a
        :any:`WSCloseInfo` with ``code`` and ``reason``) and
        ``recv_then_sent`` (True when the peer closed first)."""
        if self._close_sent is None and self._close_recv is None:
            return None
        return WSCloseHandshake(self._close_recv, self._close_sent,
                                self._close_recv is not None and self._close_recv_first)

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

        The PONGs are still delivered to ``on_ws_frame``. When the listener
        overrides :any:`WSListener.send_user_specific_ping`, that is sent
        instead, and each round ends with the application's pong
        (:any:`WSListener.is_user_specific_pong` or
        :any:`notify_user_specific_pong_received`).
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
            if self._protocol is not None:
                _send_ping(self._protocol)
            await fut
            results.append(time.perf_counter() - started)
        return results

    def notify_user_specific_pong_received(self):
        """Tell picows that the answer to the last application-level ping
        (:any:`WSListener.send_user_specific_ping`) arrived: keepalive stops
        waiting, :any:`measure_roundtrip_time` ends its round."""
        if self._protocol is not None:
            _on_pong(self._protocol)

    def __repr__(self):
        side = "client" if self.is_client else "server"
        state = "disconnected" if self._closed else "connected"
        return f"<WSTransport {side} {state}>"


cdef inline int _send_message(WSTransport self, WSMsgType msg_type, object message, bint fin,
                              bint rsv1, bint compress) except -1:
    """The body of WSTransport.send and send_message (inline in send: the
    per-frame path of Python callers pays no extra call)."""
    cdef Py_buffer view
    cdef char* buf
    cdef Py_ssize_t buflen
    cdef int opcode = msg_type
    if message is None:
        self.send_frame(<WSMsgType>opcode, NULL, 0, fin, rsv1)
        return 0
    if isinstance(message, str):
        message = (<str>message).encode("utf-8")
    if self._deflate is not None and self._deflate.deflates \
            and (opcode == 1 or opcode == 2) and fin and compress \
            and not rsv1 and not self._sending_fragments:
        self._send_compressed(<WSMsgType>opcode, message)
        return 0
    if type(message) is bytes:
        if opcode >= 8 and PyBytes_GET_SIZE(message) > _MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload must be at most 125 bytes")
        self.send_frame(<WSMsgType>opcode, <uint8_t*>PyBytes_AS_STRING(message),
                        PyBytes_GET_SIZE(message), fin, rsv1)
        return 0
    if type(message) is memoryview and picows_memoryview_memory(message, &buf, &buflen):
        if opcode >= 8 and buflen > _MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload must be at most 125 bytes")
        self.send_frame(<WSMsgType>opcode, <uint8_t*>buf, buflen, fin, rsv1)
        return 0
    PyObject_GetBuffer(message, &view, PyBUF_SIMPLE)
    try:
        if opcode >= 8 and view.len > _MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload must be at most 125 bytes")
        self.send_frame(<WSMsgType>opcode, <uint8_t*>view.buf, view.len, fin, rsv1)
    finally:
        PyBuffer_Release(&view)
    return 0
