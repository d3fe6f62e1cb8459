# WSProtocolCore: one per connection, both roles. The read buffer, the
# HTTP upgrade, the frame parser, the close handshake and keepalive.
#
# Theory of operation
# -------------------
# The event loop reads into the window handed out by get_buffer();
# buffer_updated() then parses (under picows' TLS the TLS layer calls
# _read_window and _data_in instead, with plaintext).
#
# Read buffer: _rbuf[0:_rcap]; unread bytes are [_rstart, _rend). When all
# bytes are consumed both offsets go back to 0. get_buffer() moves the unread
# bytes to the front or grows the buffer (geometrically) when the free space
# is smaller than what the current frame still needs, so a complete frame is
# always contiguous and WSFrame can point into it. After a spike the buffer
# shrinks back once it is empty.
#
# Connection states (_State, self._state):
#
#   from            event                                   to
#   HANDSHAKE       valid upgrade (101 sent / received)     OPEN
#   HANDSHAKE       bad request/response, timeout, no        (closed; _closing)
#                   listener
#   OPEN            we send CLOSE (send_close, auto close)  CLOSE_SENT
#   OPEN            the peer's CLOSE arrives                CLOSE_RECEIVED
#   OPEN            protocol violation (_fail)              FAILED
#   CLOSE_SENT      the peer's CLOSE arrives                CLOSE_RECEIVED
#   CLOSE_SENT      protocol violation (_fail)              FAILED
#   FAILED          the peer's CLOSE arrives                CLOSE_RECEIVED
#   any             connection_lost                         DISCONNECTED
#
# In HANDSHAKE the head is collected until the blank line (at most 16 KiB)
# and handed to handshake.py. _closing is set once we closed the transport
# ourselves (_disconnect, a rejected handshake): from then on nothing is
# parsed and nothing is sent.
#
# Frame states (_FrameState, self._fstate), fields of the frame in self._f:
#
#   FS_HEADER   >= 2 bytes, the first two pass the checks,   FS_PAYLOAD
#               and the rest of the header is there
#   FS_HEADER   fewer bytes                                   FS_HEADER (wait)
#   FS_PAYLOAD  payload incomplete: unmask and validate the   FS_PAYLOAD (wait)
#               new bytes (_f.processed counts them)
#   FS_PAYLOAD  payload complete: deliver the frame           FS_HEADER
#
# The header is validated as early as its bytes allow: RSV bits, opcode,
# mask bit and control-frame rules on the first two bytes, the length (top
# bit, max_frame_size) before any payload is buffered. FS_PAYLOAD unmasks the
# payload in place as it arrives (offsets relative to _rstart) and, for TEXT
# messages, runs the incremental UTF-8 validator over the new bytes, so an
# invalid byte fails the connection before the rest of the frame arrives.
# When the whole payload is there the frame is delivered, _rstart moves past
# it, and the state returns to FS_HEADER. On partial input nothing is lost:
# the parser stops and resumes from these fields on the next read.
#
# Message state: _msg_opcode is the opcode of the open fragmented message
# (0: none), _msg_compressed whether it is compressed, and _utf8_state the
# validator state across its fragments.
#
# Errors: a violation raises _WSProtocolError(code, reason); _fail() sends
# CLOSE with the code, logs, and enters FAILED, where frames are still parsed
# (not delivered) until the peer's CLOSE or EOF, so the peer sees our CLOSE
# instead of a reset. Everything ends in _disconnect(), and connection_lost()
# calls on_ws_disconnected exactly once.

_FROM_OPTIONS = object()


cdef class WSProtocolCore:

    def __cinit__(self):
        self._rbuf = NULL
        self._rcap = 0
        self._rstart = 0
        self._rend = 0

    def __init__(self, _ConnectionOptions options not None, *, bint is_client,
                 bytes upgrade_request=None, str client_key=None,
                 handshake_timeout=_FROM_OPTIONS, request=None, subprotocols=None,
                 set connections=None, opened_at=None):
        """`options`: what ws_connect / ws_create_server were given; on the
        client side, `upgrade_request` to send and its `client_key`, the
        parsed `request` (WSTransport.request) and the `subprotocols` it
        offers (the 101 may name one of them, or none).
        `handshake_timeout`: this connection's, when not the options' (what
        a proxy step left of it). `connections`: the server's set of open
        WSTransports, which this connection joins while it is open.
        `opened_at`: the time.monotonic() at which the opening began (before
        TLS), when the timeout bounds TLS and the upgrade together; None: it
        starts at connection_made."""
        self.is_client = is_client
        self._opts = options
        self._handshake_timeout = (options.websocket_handshake_timeout
                                   if handshake_timeout is _FROM_OPTIONS
                                   else handshake_timeout)
        self._logger = options.logger
        self._upgrade_request = upgrade_request
        self._client_key = client_key
        self._opened_at = opened_at
        self._connections = connections
        self._subprotocols = list(subprotocols or ())
        if is_client and request is None and upgrade_request is not None:
            request = parse_http_request(upgrade_request)
        self._request_obj = request
        self._body_expected = -1
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
            self._logger.debug("%s to %s", self._upgrade_request.partition(b"\r\n")[0]
                               .decode("latin-1"), self._peer())
        if self._handshake_timeout is not None:
            timeout = self._handshake_timeout
            if self._opened_at is not None:
                # What the TLS handshake left of it.
                timeout = max(0.0, timeout - (time.monotonic() - self._opened_at))
            self._handshake_timer = self._loop.call_later(
                timeout, self._on_handshake_timeout)

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
            self._rbuf = <uint8_t*>PyMem_Malloc(self._opts.read_buffer_init_size)
            if self._rbuf == NULL:
                raise MemoryError()
            self._rcap = self._opts.read_buffer_init_size
        unread = self._rend - self._rstart
        if unread == 0:
            self._rstart = self._rend = 0
            if self._rcap > _SHRINK_ABOVE and self._recent_max_frame * 4 < self._rcap:
                new_cap = max(self._opts.read_buffer_init_size, self._recent_max_frame * 2)
                p = <uint8_t*>PyMem_Realloc(self._rbuf, new_cap)
                if p != NULL:
                    self._rbuf = p
                    self._rcap = new_cap
                self._recent_max_frame = 0
        if self._fstate == FS_PAYLOAD:
            # Room for the rest of the frame and then some: a read that fills
            # the window exactly makes the loop read again, only to get
            # EAGAIN (one wasted syscall per large frame).
            missing = <size_t>(self._f.hdr_len + self._f.payload_len) - unread
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
                    _process_client_handshake(self)
                else:
                    _process_server_handshake(self)
                if self._state == HANDSHAKE or self._closing:
                    return 0
            if self._opts.enable_auto_ping:
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
        if self._upgrade_task is not None:
            # An async listener factory still runs: it answers nobody now.
            task, self._upgrade_task = self._upgrade_task, None
            task.cancel()
        if self._error_head is not None:
            # The refusal's body ended with the connection.
            _finish_refusal(self)
        self._log_disconnected(exc)
        if self.handshake_future is not None and not self.handshake_future.done():
            self.handshake_future.set_exception(
                WSError(f"connection lost during the handshake: {exc!r}"))
        if ws is not None:
            if self._connections is not None:
                self._connections.discard(ws)
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
        if self._deflate is not None:
            # The zlib streams and buffers go with the connection, not later
            # with the protocol object.
            self._deflate.release()

    cdef _log_disconnected(self, exc):
        cdef WSTransport ws = self.transport
        if not self._logger.isEnabledFor(logging.DEBUG):
            return
        if ws is None:
            why = "during the handshake"
        elif ws._close_recv is not None and ws.is_close_frame_sent:
            why = ("after the close handshake, the peer closed first"
                   if ws._close_recv_first else
                   "after the close handshake, we closed first")
        elif ws._close_recv is not None:
            why = "after the peer's CLOSE (not answered)"
        elif ws.is_close_frame_sent:
            why = "after our CLOSE, without the peer's"
        else:
            why = "without a close handshake"
        if exc is not None:
            self._logger.debug("disconnected %s: %r", why, exc)
        elif self._closing:
            self._logger.debug("disconnected %s: we closed the connection", why)
        else:
            self._logger.debug("disconnected %s: the peer closed the connection", why)

    def pause_writing(self):
        if self.transport is not None:
            self.transport._write_paused = True
        if self.listener is not None:
            try:
                self.listener.pause_writing()
            except Exception:
                self._logger.exception("pause_writing raised")

    def resume_writing(self):
        if self.transport is not None:
            self.transport._write_paused = False
        if self.listener is not None:
            try:
                self.listener.resume_writing()
            except Exception:
                self._logger.exception("resume_writing raised")

    # -- handshake (the upgrade itself is in upgrade.pyx) ----------------------

    cdef _peer(self):
        try:
            return self._transport.get_extra_info("peername")
        except Exception:
            return None

    cdef _setup_deflate(self, WSTransport ws, deflate):
        if deflate is None:
            return
        self._deflate = _PerMessageDeflate(deflate, self._opts.max_frame_size)
        ws._deflate = self._deflate
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
        # Application-level pings, when the listener overrides the hooks.
        if getattr(type(listener), "send_user_specific_ping") is not _BASE_USER_PING:
            self._user_ping = listener.send_user_specific_ping
        if getattr(type(listener), "is_user_specific_pong") is not _BASE_USER_PONG:
            self._user_pong = listener.is_user_specific_pong
        ws._protocol = self
        if self._opts.max_write_buffer_size:
            self._bound_writes(ws)
        self._state = OPEN
        if self._connections is not None:
            self._connections.add(ws)
        self._connected_called = True
        try:
            listener.on_ws_connected(ws)
        except Exception as exc:
            self._logger.exception("on_ws_connected raised, disconnecting")
            self._listener_exc = exc
            self._fail(WSCloseCode.INTERNAL_ERROR, "listener error")
            return
        if self._opts.enable_auto_ping:
            self._last_ping = self._loop.time()
            _schedule_auto_ping(self, self._opts.auto_ping_idle_timeout)

    cdef _bound_writes(self, WSTransport ws):
        """max_write_buffer_size: on the writer that queues this connection's
        bytes (the TLS layer's under picows' own TLS)."""
        cdef _SocketWriter writer = ws._tls._writer if ws._tls is not None else ws._writer
        writer.max_queued = self._opts.max_write_buffer_size
        writer.on_overflow = self._on_write_overflow

    def _on_write_overflow(self, Py_ssize_t queued):
        # The peer does not read and the listener kept sending: a CLOSE
        # would only queue behind the rest. Drop the connection, which frees
        # the transport's buffer at once.
        self._logger.warning(
            "peer %s does not read: %d bytes queued for it, over "
            "max_write_buffer_size %d; dropping the connection",
            self._transport.get_extra_info("peername"), queued,
            self._opts.max_write_buffer_size)
        if self.transport is not None:
            self.transport._write_closed = True
        self._closing = True
        self._transport.abort()

    cdef _reject(self, int status, str reason, headers=()):
        self._cancel_handshake_timer()
        self._closing = True
        try:
            self._transport.write(build_error_response(status, reason, headers))
        finally:
            self._transport.close()

    def _on_handshake_timeout(self):
        self._handshake_timer = None
        if self._state != HANDSHAKE or self._closing:
            return
        if self._error_head is not None:
            # The refusal arrived, its body did not finish: take what came.
            _finish_refusal(self)
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
            if (self._deflate is None or (b0 & 0x70) != 0x40
                    or opcode == 0 or opcode > 2):
                raise _WSProtocolError(1002, _rsv_violation(b0, opcode,
                                                            self._deflate is not None),
                                       is_close)
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
        if length > self._opts.max_frame_size:
            raise _WSProtocolError(1009, f"frame of {length} bytes is larger than "
                                   f"max_frame_size {self._opts.max_frame_size}")
        if b1 & 0x80:
            if avail < hlen + 4:
                return 0
            memcpy(self._f.mask, p + hlen, 4)
            hlen += 4
        self._f.opcode = opcode
        self._f.fin = (b0 & 0x80) != 0
        self._f.rsv1 = (b0 & 0x40) != 0
        self._f.masked = (b1 & 0x80) != 0
        self._f.hdr_len = hlen
        self._f.payload_len = length
        self._f.processed = 0
        if opcode != 0:
            self._f.compressed = self._f.rsv1
        else:
            self._f.compressed = self._msg_compressed
        # Compressed payloads are validated after inflating, in _deliver_frame.
        self._f.text = (self._opts.enable_utf8_validation and self._state != FAILED
                        and not self._f.compressed and (
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
                avail = self._rend - self._rstart - self._f.hdr_len
                if avail > self._f.payload_len:
                    avail = <size_t>self._f.payload_len
                if avail > self._f.processed:
                    payload = self._rbuf + self._rstart + self._f.hdr_len
                    n = avail - <size_t>self._f.processed
                    if self._f.masked:
                        picows_mask_copy(payload + self._f.processed,
                                         payload + self._f.processed, n,
                                         self._f.mask, <size_t>self._f.processed)
                    if self._f.text:
                        self._utf8_state = picows_utf8_validate(
                            self._utf8_state, payload + self._f.processed, n)
                        if self._utf8_state == UTF8_REJECT:
                            raise _WSProtocolError(1007, "invalid UTF-8 in a TEXT "
                                                   "message (RFC 6455 8.1)")
                    self._f.processed = avail
                if self._f.processed < self._f.payload_len:
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
        cdef uint8_t opcode = self._f.opcode
        cdef size_t total = self._f.hdr_len + <size_t>self._f.payload_len
        cdef size_t tail = self._rend - self._rstart - total
        cdef WSFrame frame
        cdef uint32_t code
        cdef uint32_t pongs_before
        cdef bint is_text
        cdef Py_ssize_t inflated_size
        cdef const uint8_t* payload = self._rbuf + self._rstart + self._f.hdr_len
        cdef size_t size = <size_t>self._f.payload_len

        # The frame is consumed now, whatever happens in the callback.
        self._rstart += total
        self._fstate = FS_HEADER
        if size > self._recent_max_frame:
            self._recent_max_frame = size

        if opcode <= 2:
            is_text = opcode == WSMsgType.TEXT or (
                opcode == 0 and self._msg_opcode == WSMsgType.TEXT)
            if opcode != 0:
                self._msg_opcode = 0 if self._f.fin else opcode
                self._msg_compressed = self._f.compressed
            elif self._f.fin:
                self._msg_opcode = 0
            if self._state == FAILED:
                return 0
            if self._f.compressed:
                inflated_size = self._deflate.inflate(payload, size, self._f.fin, &payload)
                size = <size_t>inflated_size
                if is_text and self._opts.enable_utf8_validation:
                    self._utf8_state = picows_utf8_validate(self._utf8_state, payload, size)
                    if self._utf8_state == UTF8_REJECT:
                        raise _WSProtocolError(1007, "invalid UTF-8 in a TEXT "
                                               "message (RFC 6455 8.1)")
            if (is_text and self._opts.enable_utf8_validation and self._f.fin
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
        frame.fin = self._f.fin
        # A frame we inflated is delivered as plain data.
        frame.rsv1 = self._f.rsv1 and not self._f.compressed
        frame.tail_size = tail
        frame.last_in_buffer = tail < 2 or not self._next_frame_complete(0)

        if opcode == WSMsgType.CLOSE:
            return self._on_close_frame(frame)

        if self._user_pong_expected and self._state != FAILED:
            # Only while an application-level ping waits for its answer.
            if _is_user_pong(self, frame):
                _on_pong(self)
                return 0
        pongs_before = self.transport._pongs_sent
        if self._state != FAILED:
            self._call_on_frame(frame)
        if opcode == WSMsgType.PING:
            if (self._opts.enable_auto_pong and self.transport._pongs_sent == pongs_before
                    and (self._state == OPEN or self._state == CLOSE_SENT)):
                self.transport.send_frame(WSMsgType.PONG, payload, size, True, False)
        elif opcode == WSMsgType.PONG and self._user_ping is None:
            _on_pong(self)
        return 0

    @cython.final
    cdef int _call_on_frame(self, WSFrame frame) except -1:
        try:
            if self._on_frame_py is not None:
                self._on_frame_py(self.transport, frame)
            else:
                # _open found no Python override: the vtable's method, without
                # Cython's per-call override lookup (includes/compat.h).
                _listener_on_ws_frame(self.listener, self.transport, frame)
        except Exception as exc:
            if self._opts.disconnect_on_exception:
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
        ws._close_recv = WSCloseInfo(ws.close_frame_received, frame.get_close_reason() or "")
        ws._close_recv_first = not ws.is_close_frame_sent
        self._logger.debug("CLOSE received: %d %r (%s)", ws.close_frame_received,
                           ws._close_recv.reason,
                           "the peer closes first" if ws._close_recv_first
                           else "the answer to ours")
        self._state = CLOSE_RECEIVED
        if prev_state != FAILED:
            self._call_on_frame(frame)
        if self._closing:
            return 0
        if self._opts.enable_auto_close and not ws.is_close_frame_sent:
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
            self._close_timer = self._loop.call_later(self._opts.close_timeout,
                                                      self._on_close_timeout)

    def _on_close_timeout(self):
        self._close_timer = None
        if self._state != DISCONNECTED:
            self._logger.info("close handshake not finished within %s seconds, "
                              "disconnecting", self._opts.close_timeout)
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

    cdef _disconnect(self, bint abort=False):
        if self._transport is None:
            return
        if self._closing:
            if abort:
                # disconnect(graceful=False) after a graceful one: drop the rest.
                self._transport.abort()
            return
        self._closing = True
        if self.transport is not None:
            # Nothing more goes out once we closed: not straight to the
            # socket, not through the closing transport (which would drop it
            # with a warning).
            self.transport._write_closed = True
        if abort:
            self._logger.debug("aborting the connection")
            self._transport.abort()
        else:
            self._transport.close()


class WSProtocol(WSProtocolCore, asyncio.BufferedProtocol):
    """The asyncio protocol behind every picows connection (internal).

    A Python subclass only so that the event loops see a BufferedProtocol;
    every method is the C-level one of WSProtocolCore.
    """
    __slots__ = ()
