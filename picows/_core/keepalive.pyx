# Keepalive: automatic pings (auto_ping_strategy) and their pongs, PING
# frames or the listener's application-level ones. Functions of
# WSProtocolCore (they take it as `self`); timers call _on_ping_timer.

cdef _schedule_auto_ping(WSProtocolCore self, double delay):
    if self._state == DISCONNECTED:
        return
    self._ping_timer = self._loop.call_later(delay, _on_ping_timer, self)


def _on_ping_timer(WSProtocolCore self):
    cdef double wait
    self._ping_timer = None
    if self._state != OPEN:
        return
    if self._ping_outstanding:
        # As websockets does: the peer learns why (1011), then we drop.
        self._logger.info("no pong within %s seconds (keepalive ping timeout), "
                          "closing with 1011", self._opts.auto_ping_reply_timeout)
        self.transport._send_close_frame(WSCloseCode.INTERNAL_ERROR,
                                         b"keepalive ping timeout", 22)
        self._disconnect()
        return
    if self._opts.auto_ping_strategy == WSAutoPingStrategy.PING_WHEN_IDLE:
        wait = self._last_activity + self._opts.auto_ping_idle_timeout - self._loop.time()
    else:
        wait = self._last_ping + self._opts.auto_ping_idle_timeout - self._loop.time()
    if wait > 0:
        _schedule_auto_ping(self, wait)
        return
    self._ping_outstanding = True
    self._last_ping = self._loop.time()
    _send_ping(self)
    _schedule_auto_ping(self, self._opts.auto_ping_reply_timeout)


cdef _send_ping(WSProtocolCore self):
    """A PING, or the listener's application-level ping."""
    if self._user_ping is None:
        self.transport.send_frame(WSMsgType.PING, NULL, 0, True, False)
        return
    self._user_pong_expected = True
    try:
        self._user_ping(self.transport)
    except Exception as exc:
        self._logger.exception("send_user_specific_ping raised, disconnecting")
        self._listener_exc = exc
        self._fail(WSCloseCode.INTERNAL_ERROR, "listener error")


cdef _on_pong(WSProtocolCore self):
    """The answer to our ping arrived (a PONG, or the application's)."""
    cdef WSTransport ws = self.transport
    self._ping_outstanding = False
    self._user_pong_expected = False
    if ws is not None and ws._pending_pings:
        fut = ws._pending_pings.pop(0)
        if not fut.done():
            fut.set_result(None)


cdef bint _is_user_pong(WSProtocolCore self, WSFrame frame) except -1:
    if self._user_pong is None:
        return False
    try:
        return bool(self._user_pong(frame))
    except Exception as exc:
        self._logger.exception("is_user_specific_pong raised, disconnecting")
        self._listener_exc = exc
        self._fail(WSCloseCode.INTERNAL_ERROR, "listener error")
        return False
