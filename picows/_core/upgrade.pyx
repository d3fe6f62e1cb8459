# The HTTP upgrade, on WSProtocolCore's read buffer: functions of the
# protocol (they take it as `self`), kept out of the class so that the
# per-frame code has its own room. The parsing and building of HTTP heads is
# plain Python in handshake.py; the order of the server's checks is in
# docs/internals.md ("The server handshake").

# The most of a refusal's body (a non-101 answer) kept for WSHandshakeError.
cdef size_t _MAX_REFUSAL_BODY = 64 * 1024


cdef bytes _take_head(WSProtocolCore self):
    """Return the head once its blank line arrived, else None."""
    cdef size_t unread = self._rend - self._rstart
    # Search only what is new (and the 3 bytes before it), so a head that
    # trickles in byte by byte costs linear time, not quadratic.
    cdef size_t start = self._head_scanned - 3 if self._head_scanned > 3 else 0
    cdef Py_ssize_t end = picows_find_head_end(self._rbuf + self._rstart + start,
                                               unread - start)
    cdef bytes head
    if end < 0:
        self._head_scanned = unread
        if unread > MAX_HEAD_SIZE:
            raise WSHandshakeError(431, f"HTTP head larger than {MAX_HEAD_SIZE} bytes")
        return None
    end += start
    if end + 4 > MAX_HEAD_SIZE:
        raise WSHandshakeError(431, f"HTTP head larger than {MAX_HEAD_SIZE} bytes")
    head = PyBytes_FromStringAndSize(<char*>self._rbuf + self._rstart, end + 4)
    self._rstart += end + 4
    return head


cdef _process_server_handshake(WSProtocolCore self):
    # Every request reaches the listener factory once it is well-formed
    # HTTP (an HTTP/1.1 GET without a body); the WebSocket checks come
    # after it, and only when it answers with a 101.
    cdef bint upgrade
    if self._upgrade_task is not None:
        # The factory's awaitable runs: what arrives waits in the buffer.
        return
    try:
        head = _take_head(self)
        if head is None:
            return
        request = parse_http_request(head)
        self._logger.debug("%s %s %s from %s", request.method.decode("latin-1"),
                           request.path.decode("latin-1"),
                           request.version.decode("latin-1"), self._peer())
        upgrade = is_upgrade_request(request)
        if upgrade and self._opts.allowed_origins is not None:
            # Cross-site WebSocket hijacking: refused before any user code.
            validate_upgrade_request(request, self._opts.allowed_origins)
    except WSHandshakeError as exc:
        self._logger.info("rejected request from %s: %s", self._peer(), exc)
        self._reject(exc.status, exc.reason, exc.headers)
        return
    try:
        result = self._opts.listener_factory(request)
    except Exception:
        self._logger.exception("ws_listener_factory raised for %r", request)
        self._reject(500, "internal server error")
        return
    if (result is not None and not isinstance(result, WSListener)
            and not isinstance(result, WSUpgradeResponseWithListener)
            and inspect.isawaitable(result)):
        _await_factory(self, request, result)
        return
    self._cancel_handshake_timer()
    _answer_upgrade(self, request, result)


cdef _await_factory(WSProtocolCore self, request, awaitable):
    """The factory returned an awaitable: a task awaits it while the upgrade
    waits. Nothing is read meanwhile (a request's trailing bytes stay in the
    buffer), and the handshake timer keeps running: a hook slower than
    websocket_handshake_timeout ends the connection like a slow client."""
    self._transport.pause_reading()
    self._upgrade_task = self._loop.create_task(_factory_result(self, request, awaitable))


async def _factory_result(WSProtocolCore self, request, awaitable):
    # Cancelled by connection_lost (a timeout aborts the connection too):
    # then nothing is written.
    try:
        result = await awaitable
    except asyncio.CancelledError:
        if self._upgrade_task is None or self._closing:
            raise
        # The awaitable cancelled itself: a failed factory, as below.
        self._upgrade_task = None
        self._logger.error("ws_listener_factory was cancelled for %r", request)
        self._reject(500, "internal server error")
        return
    except Exception:
        self._upgrade_task = None
        if not self._closing:
            self._logger.exception("ws_listener_factory raised for %r", request)
            self._reject(500, "internal server error")
        return
    self._upgrade_task = None
    if self._closing or self._state != HANDSHAKE:
        return
    self._cancel_handshake_timer()
    _answer_upgrade(self, request, result)
    if self._closing:
        return
    self._transport.resume_reading()
    if self._state == OPEN and self._rend > self._rstart:
        # Bytes that arrived after the request, while the factory ran.
        try:
            self._process_frames()
        except Exception:
            self._logger.exception("internal error, disconnecting")
            self._fail(WSCloseCode.INTERNAL_ERROR, "internal error")
            self._disconnect()


cdef _answer_upgrade(WSProtocolCore self, request, result):
    """Answer the request as the factory's `result` says."""
    cdef WSTransport ws
    response = None
    if result is None:
        self._logger.info("no listener for %r from %s: 404", request.path, self._peer())
        self._reject(404, "not found")
        return
    if isinstance(result, WSUpgradeResponseWithListener):
        response = result.response
        listener = result.listener
        if response.status != 101:
            _send_response(self, response)
            return
    else:
        listener = result
    if not isinstance(listener, WSListener):
        self._logger.error("ws_listener_factory returned %r, not a WSListener "
                           "or WSUpgradeResponseWithListener", listener)
        self._reject(500, "internal server error")
        return
    try:
        validate_upgrade_request(request)
    except WSHandshakeError as exc:
        self._logger.info("rejected request from %s: %s", self._peer(), exc)
        self._reject(exc.status, exc.reason, exc.headers)
        return
    deflate = None
    if self._opts.enable_compression:
        deflate = negotiate_deflate(joined_header(request.headers, "sec-websocket-extensions"),
                                    self._opts.compression)
    if response is None:
        response = WSUpgradeResponse.create_101_response()
    try:
        complete_101(request, response, None if deflate is None else deflate.header)
        raw = build_response(response)
    except ValueError as exc:
        self._logger.error("ws_listener_factory's 101 is invalid: %s", exc)
        self._reject(500, "internal server error")
        return
    self._transport.write(raw)
    self._logger.debug("101 Switching Protocols to %s", self._peer())
    ws = WSTransport(False, self._transport, self._logger, self._loop, request, response)
    self._setup_deflate(ws, deflate)
    _log_open(self, ws)
    self._open(ws, listener)


cdef _log_open(WSProtocolCore self, WSTransport ws):
    self._logger.debug(
        "handshake done: extensions=%s, subprotocol=%s", ws.extensions,
        ws.response.headers.get("sec-websocket-protocol")
        if ws.response is not None else None)


cdef _send_response(WSProtocolCore self, response):
    """Answer a request with a non-101 response and close."""
    try:
        raw = build_response(response)
    except ValueError as exc:
        # A header with CR/LF in it, say: never sent as it is.
        self._logger.error("ws_listener_factory's response is invalid: %s", exc)
        self._reject(500, "internal server error")
        return
    self._logger.info("%d %s to %s", int(response.status),
                      response.reason.decode("latin-1"), self._peer())
    self._cancel_handshake_timer()
    self._closing = True
    try:
        self._transport.write(raw)
    finally:
        self._transport.close()


cdef _process_client_handshake(WSProtocolCore self):
    cdef WSTransport ws
    cdef size_t avail
    try:
        if self._error_head is not None:
            # A refusal: its body is collected for WSHandshakeError.raw_body.
            avail = self._rend - self._rstart
            if self._body_expected >= 0 and avail >= <size_t>self._body_expected:
                _finish_refusal(self)
            elif avail > _MAX_REFUSAL_BODY:
                _finish_refusal(self)
            return
        head = _take_head(self)
        if head is None:
            return
        response = parse_response_head(head)
        self._logger.debug("%d %s from the server", int(response.status),
                           response.reason.decode("latin-1"))
        if response.status != 101:
            self._error_head = head
            length = response.headers.get("content-length")
            self._body_expected = -1
            if length is not None and length.strip().isdigit():
                self._body_expected = int(length)
            elif response.status in (204, 304) or 100 <= response.status < 200:
                self._body_expected = 0
            _process_client_handshake(self)
            return
        response = parse_upgrade_response(head, self._client_key,
                                          self._opts.enable_compression,
                                          self._subprotocols)
        deflate = None
        extensions = joined_header(response.headers, "sec-websocket-extensions")
        if extensions:
            deflate = parse_deflate_response(extensions, self._opts.compression)
    except WSHandshakeError as exc:
        _client_handshake_failed(self, exc)
        return
    self._cancel_handshake_timer()
    try:
        listener = self._opts.client_factory(self._request_obj, response)
        if not isinstance(listener, WSListener):
            raise TypeError(f"ws_listener_factory returned {listener!r}, "
                            f"not a WSListener")
    except Exception as exc:
        if not self.handshake_future.done():
            self.handshake_future.set_exception(exc)
        self._closing = True
        self._transport.close()
        return
    ws = WSTransport(True, self._transport, self._logger, self._loop,
                     self._request_obj, response)
    self._setup_deflate(ws, deflate)
    _log_open(self, ws)
    self._open(ws, listener)
    if not self.handshake_future.done():
        self.handshake_future.set_result((ws, listener))


cdef _client_handshake_failed(WSProtocolCore self, exc):
    self._logger.debug("handshake failed: %s", exc)
    self._cancel_handshake_timer()
    if not self.handshake_future.done():
        self.handshake_future.set_exception(exc)
    self._closing = True
    self._transport.close()


cdef _finish_refusal(WSProtocolCore self):
    """The server refused the upgrade: raise WSInvalidStatusError with
    the response, its head and what arrived of its body."""
    cdef size_t avail = self._rend - self._rstart
    cdef size_t n = avail
    if self._body_expected >= 0 and <size_t>self._body_expected < n:
        n = <size_t>self._body_expected
    if n > _MAX_REFUSAL_BODY:
        n = _MAX_REFUSAL_BODY
    body = PyBytes_FromStringAndSize(<char*>self._rbuf + self._rstart, n)
    self._rstart = self._rend = 0
    head, self._error_head = self._error_head, None
    try:
        parse_upgrade_response(head, self._client_key, False, None, body)
    except WSHandshakeError as exc:
        _client_handshake_failed(self, exc)
