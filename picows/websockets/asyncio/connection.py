"""Connection: the websockets asyncio connection API over a picows listener.

The connection *is* the :class:`picows.WSListener` of its transport: frames
arrive in :meth:`Connection.on_ws_frame`, called by the core for each frame,
with no Task and no Queue in between.

Receive path: a whole message (the usual case: one frame, ``fin`` set) is
copied out of the frame (``str`` for TEXT, ``bytes`` for BINARY). When a
``recv()`` waits, ``on_ws_frame`` resolves its one future with the message
itself (nothing can be buffered before it); otherwise the message is
appended to a deque, and ``recv()`` returns the head of the deque without
suspending. A ``recv()`` cancelled after the hand-over puts its message back
at the head. A fragmented message is one ``_Fragments`` entry in the deque
that grows until its last frame (``recv_streaming`` yields the fragments as
they come).

Flow control: ``max_queue`` counts data frames buffered and not yet read.
Above the high-water mark the transport stops reading
(``pause_reading``); once ``recv`` brought the count down to the low-water
mark it reads again. Sending waits while the transport's write buffer is
above ``write_limit`` (the core's ``pause_writing`` / ``resume_writing``).
"""
from __future__ import annotations

import asyncio
import codecs
import collections
import contextvars
import logging
import os
import struct
import sys
import uuid
from typing import (Any, AsyncIterable, AsyncIterator, Awaitable, Deque, Dict, Iterable,
                    Iterator, List, Mapping, Optional, Tuple, Union, cast)

try:
    # Pure-Python mode: Cython reads its decorators at compile time.
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # uncompiled, without Cython installed
    from ._cython_stub import cython  # type: ignore[no-redef, unused-ignore]

from ...picows import WSListener, WSMsgType, WSTransport
from ..exceptions import (ConcurrencyError, ConnectionClosed, ConnectionClosedError,
                          ConnectionClosedOK)
from ..frames import OK_CLOSE_CODES, Close, CloseCode
from ..http11 import Request, Response
from ..protocol import State, _ProtocolView

__all__ = ["Connection", "Data", "DataLike"]

Data = Union[str, bytes]
DataLike = Union[str, bytes, bytearray, memoryview]
LoggerLike = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

# Enum members read once: on CPython 3.11 every Enum.MEMBER goes through the
# enum class's __getattr__ hook, which costs more than the rest of a send.
_CONNECTING, _OPEN, _CLOSING, _CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
# The same as C enum values when compiled (connection.pxd).
_OP_TEXT = WSMsgType.TEXT
_OP_BINARY = WSMsgType.BINARY

# Whether a task is running on `loop` (callbacks of the loop run between
# tasks). On 3.11 C Task's step records the running task in a dict {loop:
# task}: empty, as a rule, in a callback; from 3.12 asyncio.current_task(loop)
# is C.
if sys.version_info >= (3, 12):
    _running_tasks = None
    _current_task = asyncio.current_task
else:
    _running_tasks = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    _current_task = _running_tasks.get


def _task_running(loop: asyncio.AbstractEventLoop) -> bool:
    if _running_tasks is not None and not _running_tasks:
        return False
    return _current_task(loop) is not None


# asyncio.Future's methods called on the futures of recv() (exact
# asyncio.Future objects) without a method lookup per call.
_future_result = asyncio.Future.result
_future_set_result = asyncio.Future.set_result
_future_remove_done_callback = asyncio.Future.remove_done_callback
_context_run = contextvars.Context.run

#: core's max_frame_size when max_size is None (no limit).
_NO_LIMIT = 2 ** 63 - 1
#: core's close_timeout when close_timeout is None (wait "forever").
_LONG_TIMEOUT = 365 * 24 * 3600.0


def parse_max_size(max_size: Union[int, None, Tuple[Optional[int], Optional[int]]]
                   ) -> Tuple[Optional[int], int]:
    """(limit of a whole message or None, limit of one frame for the core)."""
    if isinstance(max_size, tuple):
        message, frame = max_size
    else:
        message = frame = max_size
    if message is not None and (frame is None or frame > message):
        frame = message
    return message, _NO_LIMIT if frame is None else frame


def _parse_limits(value: Union[int, None, Tuple[Optional[int], Optional[int]]],
                  name: str) -> Tuple[Optional[int], Optional[int]]:
    if value is None:
        return None, None
    if isinstance(value, tuple):
        high, low = value
    else:
        high, low = value, None
    if high is None:
        return None, None
    if low is None:
        low = high // 4
    if high < 0 or low < 0 or low > high:
        raise ValueError(f"{name} must be high >= low >= 0, got {value!r}")
    return high, low


class _Fragments:
    """A fragmented message being received: its frames' payloads so far."""

    __slots__ = ("text", "chunks", "done", "size", "frames")

    def __init__(self, text: bool) -> None:
        self.text = text
        self.chunks: List[bytes] = []
        self.done = False
        self.size = 0
        self.frames = 1     # frames received (empty ones add no chunk)

    def join(self, decode: Optional[bool]) -> Data:
        data = b"".join(self.chunks)
        if decode is None:
            decode = self.text
        return data.decode() if decode else data


class Connection(WSListener):
    """A WebSocket connection, as websockets' ``asyncio.connection.Connection``.

    Created by :func:`~picows.websockets.asyncio.client.connect` and
    :func:`~picows.websockets.asyncio.server.serve`; do not create it yourself
    (``create_connection=`` takes a subclass).
    """

    # Slots: more than 30 instance attributes would leave CPython's shared-key
    # instance dict, and with it the specialized attribute access of the hot path.
    # Subclasses (ClientConnection, ServerConnection) have a __dict__ for more.
    __slots__ = (
        "id", "logger", "max_message_size", "_queue_high", "_write_high",
        "ping_interval", "ping_timeout", "close_timeout", "_queue_low",
        "_write_low", "is_client", "_ws", "transport", "protocol", "request", "response",
        "subprotocol", "state", "latency", "_local_address", "_remote_address", "_loop",
        "_messages", "_frames", "_fragments", "_waiter", "_reading_paused", "_write_paused",
        "_drain_waiters", "_fragmented_send", "_pings", "_keepalive_timer", "_close_rcvd",
        "_close_sent", "_rcvd_then_sent", "_close_exc", "_closed",
        "_push", "_pop", "_create_future", "_future_kwargs", "_send", "_wakeup",
        "_wakeup_context",
    )

    def __init__(self, *, ping_interval: Optional[float] = 20,
                 ping_timeout: Optional[float] = 20,
                 close_timeout: Optional[float] = 10,
                 max_queue: Union[int, None, Tuple[Optional[int], Optional[int]]] = 16,
                 write_limit: Union[int, Tuple[int, Optional[int]]] = 2 ** 15,
                 max_size: Union[int, None, Tuple[Optional[int], Optional[int]]] = 2 ** 20,
                 logger: Optional[LoggerLike] = None,
                 is_client: bool = True) -> None:
        self.id: uuid.UUID = uuid.uuid4()
        """Unique identifier of the connection, for logs."""
        if logger is None:
            logger = logging.getLogger("websockets.client" if is_client
                                       else "websockets.server")
        self.logger: LoggerLike = logger
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_message_size, _ = parse_max_size(max_size)
        self._queue_high, self._queue_low = _parse_limits(max_queue, "max_queue")
        if isinstance(write_limit, tuple):
            self._write_high, self._write_low = write_limit
        else:
            self._write_high, self._write_low = write_limit, None
        self.is_client = is_client
        self._ws: Optional[WSTransport] = None
        self.transport: Any = None
        """The asyncio transport (as in websockets), None before the handshake."""
        self.protocol = _ProtocolView(self)
        """A read-only stand-in for websockets' Sans-I/O protocol: ``state``."""
        self.request: Optional[Request] = None
        """The opening handshake's request."""
        self.response: Optional[Response] = None
        """The opening handshake's response."""
        self.subprotocol: Optional[str] = None
        """The subprotocol negotiated, or None."""
        self.state = _CONNECTING
        self.latency: float = 0.0
        """Latency of the last PING / PONG round trip, in seconds (0 until
        one completed)."""
        self._local_address: Any = None
        self._remote_address: Any = None
        self._loop = asyncio.get_running_loop()
        # Receiving.
        self._messages: Deque[Union[str, bytes, _Fragments]] = collections.deque()
        # Bound methods of the per-message path, looked up once.
        self._push = self._messages.append
        self._pop = self._messages.popleft
        # asyncio.Future(loop=...) directly: not the loop's create_future (a
        # Python method on the default loop), and not Future() without the
        # loop, which looks the running loop up with a getpid() system call.
        self._create_future = asyncio.Future
        # Compiled, _Recv calls Future with this dict as it is (Python would
        # build a new one per call).
        self._future_kwargs = {"loop": self._loop}
        # The wake-up callback (and its context) of the task that waited in
        # recv() last (see _hand_over).
        self._wakeup: Any = None
        self._wakeup_context: Any = None
        self._send: Any = None
        self._frames = 0                    # data frames buffered, for max_queue
        self._fragments: Optional[_Fragments] = None
        # The future a waiting recv() parked: on_ws_frame resolves it with a
        # whole message (handed over, never buffered) or None (look again).
        self._waiter: Optional[asyncio.Future[Optional[Data]]] = None
        self._reading_paused = False
        # Sending.
        self._write_paused = False
        self._drain_waiters: List[asyncio.Future[None]] = []
        self._fragmented_send: Optional[asyncio.Future[None]] = None
        # Pings: data -> (waiter, time sent), in the order sent.
        self._pings: Dict[bytes, Tuple[asyncio.Future[float], float]] = {}
        self._keepalive_timer: Optional[asyncio.TimerHandle] = None
        # Closing.
        self._close_rcvd: Optional[Close] = None
        self._close_sent: Optional[Close] = None
        self._rcvd_then_sent: Optional[bool] = None
        self._close_exc: Optional[ConnectionClosed] = None
        self._closed: asyncio.Future[None] = self._loop.create_future()

    # -- picows listener callbacks (called by the core) -----------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._ws = transport
        self._send = transport.send
        self.state = _OPEN
        underlying = self.transport = transport.underlying_transport
        self._local_address = underlying.get_extra_info("sockname")
        self._remote_address = underlying.get_extra_info("peername")
        try:
            underlying.set_write_buffer_limits(self._write_high, self._write_low)
        except (AttributeError, NotImplementedError):  # pragma: no cover
            pass
        if self.ping_interval is not None:
            self._keepalive_timer = self._loop.call_later(self.ping_interval,
                                                          self._keepalive)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        # Opcodes as int literals: compiled, msg_type is the C enum of the
        # frame and these compare in C (an Enum member would be converted).
        msg_type = frame.msg_type
        if msg_type == 1 or msg_type == 2:  # TEXT, BINARY
            if frame.fin:
                # The hot path: a whole message in one frame.
                if msg_type == 1:
                    message: Data = frame.get_payload_as_utf8_text()
                else:
                    message = frame.get_payload_as_bytes()
                waiter = self._waiter
                if waiter is not None:
                    # A recv() waits, so nothing is buffered before this
                    # message (a whole message cannot arrive in the middle of
                    # a fragmented one): hand it over, no deque round trip.
                    self._waiter = None
                    if self._hand_over(waiter, message):
                        return
                    # That recv() was cancelled: buffer the message.
                self._push(message)
            else:
                fragments = self._fragments = _Fragments(msg_type == 1)
                fragments.size = frame.payload_size
                fragments.chunks.append(frame.get_payload_as_bytes())
                self._messages.append(fragments)
        elif msg_type == 0:  # CONTINUATION
            fragments = cast(_Fragments, self._fragments)
            size = frame.payload_size
            fragments.size += size
            fragments.frames += 1
            if self.max_message_size is not None and fragments.size > self.max_message_size:
                self._fail(CloseCode.MESSAGE_TOO_BIG,
                           f"message exceeds limit of {self.max_message_size} bytes")
                return
            if size or frame.fin:
                fragments.chunks.append(frame.get_payload_as_bytes())
            if frame.fin:
                fragments.done = True
                self._fragments = None
        elif msg_type == 10:  # PONG
            self._on_pong(frame.get_payload_as_bytes())
            return
        elif msg_type == 8:  # CLOSE
            self._on_close(frame)
            return
        else:
            return  # PING: the core answers it
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            try:
                waiter.set_result(None)
            except asyncio.InvalidStateError:
                pass    # cancelled
        self._frames += 1
        if (self._queue_high is not None and self._frames >= self._queue_high
                and not self._reading_paused and self.state is _OPEN):
            self._reading_paused = True
            transport.underlying_transport.pause_reading()

    def _hand_over(self, waiter: "asyncio.Future[Optional[Data]]", message: Data) -> bool:
        """Resolve a waiting recv()'s future with `message` and resume its
        task now, from this callback, rather than through the loop's ready
        queue (call_soon, a Handle, the next turn of the loop): the task's
        wake-up callback is taken off the future and run in the task's
        context, as the loop would have run it.

        Only when the task's wake-up is on the future and no task is running
        (the loop runs callbacks between tasks; a frame processed while a
        task runs, e.g. one that resumed reading, takes the loop's way).
        False when the future is done already (its recv() was cancelled).

        The wake-up callback a task puts on each future it awaits is a new
        object equal to the last one (same task, same function): the one
        seen last is kept with its context, and removing it from the future
        says whether the same task waits again, without reading the
        future's callbacks (a list and a tuple per message).
        """
        loop = self._loop
        if _task_running(loop):
            return self._hand_over_later(waiter, message)
        wakeup = self._wakeup
        if wakeup is None or _future_remove_done_callback(waiter, wakeup) == 0:
            # Another task waits (or none, or the future is done): look.
            # A list of (callback, context), or None (C Future) when empty.
            callbacks = waiter._callbacks
            if callbacks is None or len(callbacks) != 1:
                return self._hand_over_later(waiter, message)
            entry = callbacks[0]
            wakeup, self._wakeup_context = entry
            self._wakeup = wakeup
            _future_remove_done_callback(waiter, wakeup)
        context = self._wakeup_context
        _future_set_result(waiter, message)
        try:
            _context_run(context, wakeup, waiter)
        except Exception as exc:
            # Not expected (the task handles its coroutine's errors): say so,
            # and resume the task the loop's way, not to leave it waiting.
            loop.call_exception_handler({
                "message": "picows.websockets: resuming a task from on_ws_frame failed",
                "exception": exc})
            loop.call_soon(wakeup, waiter, context=context)
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt out of the task's step: the loop
            # must get it as from the task's own step (uvloop's read callback,
            # which runs this, would take it for a transport error).
            loop.call_soon(_reraise, exc)
        return True

    def _hand_over_later(self, waiter: "asyncio.Future[Optional[Data]]",
                         message: Optional[Data]) -> bool:
        """Resolve the future: its callbacks run the loop's way."""
        if waiter.done():
            return False
        waiter.set_result(message)
        return True

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._close_sent is None:
            handshake = transport.close_handshake
            if handshake is not None and handshake.sent is not None:
                self._close_sent = Close(handshake.sent.code or CloseCode.NO_STATUS_RCVD,
                                         handshake.sent.reason)
                if self._close_rcvd is None:
                    self._rcvd_then_sent = False
        rcvd, sent = self._close_rcvd, self._close_sent
        if (rcvd is not None and sent is not None
                and rcvd.code in OK_CLOSE_CODES and sent.code in OK_CLOSE_CODES):
            exc: ConnectionClosed = ConnectionClosedOK(rcvd, sent, self._rcvd_then_sent)
        else:
            exc = ConnectionClosedError(rcvd, sent, self._rcvd_then_sent)
        self._close_exc = exc
        self.state = _CLOSED
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        for fut, _ in self._pings.values():
            if not fut.done():
                fut.set_exception(exc)
                # Nobody may be waiting for a ping's pong: no warning then.
                fut.exception()
        self._pings.clear()
        self._wake_drain_waiters()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain_waiters()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _on_close(self, frame: Any) -> None:
        code = int(frame.get_close_code())
        message = frame.get_close_message()
        self._close_rcvd = Close(code or CloseCode.NO_STATUS_RCVD,
                                 message.decode() if message else "")
        assert self._ws is not None
        if self._ws.is_close_frame_sent:
            self._rcvd_then_sent = False
        else:
            # The core answers with the same code (an empty CLOSE to an empty one).
            self._rcvd_then_sent = True
        if self.state is _OPEN:
            self.state = _CLOSING
        self._resume_reading()

    def _on_pong(self, data: bytes) -> None:
        if data not in self._pings:
            return
        now = self._loop.time()
        # A PONG acknowledges its PING and every PING sent before it.
        while self._pings:
            key = next(iter(self._pings))
            fut, sent_at = self._pings.pop(key)
            latency = now - sent_at
            if not fut.done():
                fut.set_result(latency)
            if key == data:
                self.latency = latency
                break

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: CLOSE with `code`, then close TCP at once."""
        transport = self._ws
        if transport is None:
            return
        if not transport.is_close_frame_sent:
            self._record_sent(code, reason)
            transport.send_close(code, reason.encode()[:123])
        if self.state is _OPEN:
            self.state = _CLOSING
        transport.disconnect()

    def _record_sent(self, code: int, reason: str) -> None:
        if self._close_sent is None:
            self._close_sent = Close(code, reason)
            if self._close_rcvd is None:
                self._rcvd_then_sent = False

    def _resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    # -- keepalive ---------------------------------------------------------------

    def _keepalive(self) -> None:
        self._keepalive_timer = None
        if self.state is not _OPEN or self.ping_interval is None:
            return
        waiter = self._send_ping(None)
        if self.ping_timeout is not None:
            self._loop.call_later(self.ping_timeout, self._keepalive_timeout, waiter)
        self._keepalive_timer = self._loop.call_later(self.ping_interval, self._keepalive)

    def _keepalive_timeout(self, waiter: "asyncio.Future[float]") -> None:
        if waiter.done() or self.state is _CLOSED:
            return
        self.logger.info("keepalive ping timeout; closing connection")
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    # -- public API: properties -------------------------------------------------

    @property
    def local_address(self) -> Any:
        """The local address of the socket (``socket.getsockname()``)."""
        return self._local_address

    @property
    def remote_address(self) -> Any:
        """The peer's address (``socket.getpeername()``)."""
        return self._remote_address

    @property
    def close_code(self) -> Optional[int]:
        """The close code received, 1006 if none; None until closed."""
        if self.state is not _CLOSED:
            return None
        if self._close_rcvd is None:
            return CloseCode.ABNORMAL_CLOSURE
        return self._close_rcvd.code

    @property
    def close_reason(self) -> Optional[str]:
        """The close reason received, "" if none; None until closed."""
        if self.state is not _CLOSED:
            return None
        return "" if self._close_rcvd is None else self._close_rcvd.reason

    # -- public API: receiving --------------------------------------------------

    def recv(self, decode: Optional[bool] = None) -> Awaitable[Data]:
        """Receive the next message.

        A message already received is returned at once, without suspending.
        Cancelling ``recv`` is safe: the next call returns the message.

        :param decode: None: TEXT as str, BINARY as bytes. False: TEXT as
            bytes (no decoding). True: BINARY decoded as UTF-8 into str.
        :raises ConnectionClosed: when the connection is closed (after the
            messages received before the close).
        :raises ConcurrencyError: when another coroutine is in ``recv``.
        """
        return _new_recv(self, decode, False)

    async def _recv_slow(self, decode: Optional[bool]) -> Data:
        # recv() the long way: fragments, a closed connection.
        if self._waiter is not None:
            raise ConcurrencyError("cannot call recv while another coroutine "
                                   "is already running recv or recv_streaming")
        messages = self._messages
        while True:
            if messages:
                head = messages[0]
                tp = type(head)
                if tp is str or tp is bytes:
                    self._pop()
                    self._frames -= 1
                    if self._reading_paused:
                        self._maybe_resume()
                    if tp is str:
                        return head if decode is not False else head.encode()  # type: ignore
                    return head.decode() if decode else head  # type: ignore
                fragments: _Fragments = head  # type: ignore[assignment]
                if fragments.done:
                    self._pop()
                    self._frames -= fragments.frames
                    if self._reading_paused:
                        self._maybe_resume()
                    return fragments.join(decode)
            if self.state is _CLOSED:
                raise self._close_exc  # type: ignore[misc]
            waiter = self._waiter = self._create_future(loop=self._loop)
            try:
                message = await waiter
            except asyncio.CancelledError:
                self._unget(waiter)
                raise
            finally:
                if self._waiter is waiter:
                    self._waiter = None
            if message is not None:
                # Handed over by on_ws_frame: never buffered.
                if isinstance(message, str):
                    return message if decode is not False else message.encode()
                return message.decode() if decode else message

    async def recv_streaming(self, decode: Optional[bool] = None) -> AsyncIterator[Data]:
        """Receive the next message frame by frame, as it arrives.

        Yields each fragment (str for TEXT, decoded incrementally, or bytes);
        `decode` as in :meth:`recv`.
        """
        if self._waiter is not None:
            raise ConcurrencyError("cannot call recv_streaming while another coroutine "
                                   "is already running recv or recv_streaming")
        messages = self._messages
        while not messages:
            if self.state is _CLOSED:
                raise cast(ConnectionClosed, self._close_exc)
            await self._wait_frame()
        head = messages[0]
        if not isinstance(head, _Fragments):
            self._pop()
            self._frames -= 1
            self._maybe_resume()
            if isinstance(head, str):
                yield head if decode is not False else head.encode()
            else:
                yield head.decode() if decode else head
            return
        text = head.text if decode is None else decode
        decoder = codecs.getincrementaldecoder("utf-8")() if text else None
        index = 0
        while True:
            while index < len(head.chunks):
                chunk = head.chunks[index]
                index += 1
                yield decoder.decode(chunk, final=head.done and index == len(head.chunks)) \
                    if decoder is not None else chunk
            if head.done:
                break
            if self.state is _CLOSED:
                raise cast(ConnectionClosed, self._close_exc)
            await self._wait_frame()
        self._pop()
        self._frames -= head.frames
        self._maybe_resume()

    async def _wait_frame(self) -> None:
        waiter = self._waiter = self._create_future(loop=self._loop)
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None
            # recv_streaming reads from the buffer: a whole message handed
            # over goes there.
            self._unget(waiter)

    def _unget(self, waiter: "asyncio.Future[Optional[Data]]") -> None:
        """Put a message that on_ws_frame handed to `waiter` back at the
        head of the buffer, for a waiter whose recv() will not return it
        (cancelled after the hand-over, or recv_streaming's)."""
        if waiter.done() and not waiter.cancelled():
            message = waiter.result()
            if message is not None:
                self._messages.appendleft(message)
                self._frames += 1

    def _maybe_resume(self) -> None:
        if self._reading_paused and self._frames <= (self._queue_low or 0):
            self._resume_reading()

    def __aiter__(self) -> "Connection":
        """``async for message in connection``: messages until the
        connection closes; ends on a normal closure, raises
        ConnectionClosedError otherwise."""
        return self

    def __anext__(self) -> Awaitable[Data]:
        return _new_recv(self, None, True)

    async def _anext_slow(self) -> Data:
        messages = self._messages
        while self._waiter is None:
            if messages:
                head = messages[0]
                tp = type(head)
                if tp is not str and tp is not bytes:
                    break
                self._pop()
                self._frames -= 1
                if self._reading_paused:
                    self._maybe_resume()
                return head  # type: ignore[return-value]
            if self.state is _CLOSED:
                break
            waiter = self._waiter = self._create_future(loop=self._loop)
            try:
                message = await waiter
            except asyncio.CancelledError:
                self._unget(waiter)
                raise
            finally:
                if self._waiter is waiter:
                    self._waiter = None
            if message is not None:
                return message
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # -- public API: sending ----------------------------------------------------

    def send(self, message: Union[DataLike, Iterable[DataLike], AsyncIterable[DataLike]],
             text: Optional[bool] = None) -> Awaitable[None]:
        """Send a message.

        A str is sent as TEXT, a bytes-like object as BINARY (``text``
        overrides: True sends bytes as TEXT, they must be UTF-8; False sends
        a str as BINARY). An iterable or async iterable of str or of bytes is
        sent as one fragmented message, a frame per item.

        :raises ConnectionClosed: when the connection is closed.
        :raises TypeError: for another type, or mixed types in an iterable.
        """
        return _new_send(self, message, text)

    async def _send_slow(self, message: Any, text: Optional[bool]) -> None:
        # send() the long way: waits, iterables, a closed connection.
        if self._fragmented_send is not None or self.state is not _OPEN:
            while self._fragmented_send is not None:
                await asyncio.shield(self._fragmented_send)
            if self.state is not _OPEN:
                await self._raise_closed()
        transport: WSTransport = self._ws  # type: ignore[assignment]
        tp = type(message)
        if tp is str:
            self._send(_BINARY if text is False else _TEXT, message)
        elif tp is bytes:
            self._send(_TEXT if text else _BINARY, message)
        elif isinstance(message, str):
            transport.send(_BINARY if text is False else _TEXT, message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            transport.send(_TEXT if text else _BINARY, message)
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, Iterable):
            await self._send_fragments(iter(message), None, text)
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(None, message.__aiter__(), text)
        else:
            raise TypeError("data must be str, bytes, iterable, or async iterable")
        if self._write_paused:
            await self._drain()

    async def _send_fragments(self, items: Optional[Iterator[DataLike]],
                              aitems: Optional[AsyncIterator[DataLike]],
                              text: Optional[bool]) -> None:
        transport = cast(WSTransport, self._ws)
        done: asyncio.Future[None] = self._loop.create_future()
        self._fragmented_send = done
        first = True
        is_str = False
        try:
            while True:
                try:
                    if items is not None:
                        chunk = next(items)
                    else:
                        chunk = await cast(AsyncIterator[DataLike], aitems).__anext__()
                except (StopIteration, StopAsyncIteration):
                    break
                if first:
                    if isinstance(chunk, str):
                        is_str = True
                        msg_type = _BINARY if text is False else _TEXT
                    elif isinstance(chunk, (bytes, bytearray, memoryview)):
                        msg_type = _TEXT if text else _BINARY
                    else:
                        raise TypeError("iterable must contain bytes or str")
                elif isinstance(chunk, str) is not is_str or not isinstance(
                        chunk, (str, bytes, bytearray, memoryview)):
                    self._fail(CloseCode.INTERNAL_ERROR, "error in fragmented message")
                    raise TypeError("iterable must contain uniform types")
                if self.state is not _OPEN:
                    await self._raise_closed()
                transport.send(msg_type if first else _CONT, chunk, fin=False)
                first = False
                if self._write_paused:
                    await self._drain()
            if not first:
                if self.state is not _OPEN:
                    await self._raise_closed()
                transport.send(_CONT, b"", fin=True)
        except BaseException:
            if not first and self.state is _OPEN:
                # A message cannot be left half sent.
                self._fail(CloseCode.INTERNAL_ERROR, "error in fragmented message")
            raise
        finally:
            self._fragmented_send = None
            done.set_result(None)

    async def _drain(self) -> None:
        while self._write_paused and self.state is not _CLOSED:
            fut: asyncio.Future[None] = self._loop.create_future()
            self._drain_waiters.append(fut)
            await fut
        if self.state is _CLOSED:
            await self._raise_closed()

    async def _raise_closed(self) -> None:
        """Wait for the close to finish (at most close_timeout), then raise
        the ConnectionClosed exception."""
        if self.state is not _CLOSED:
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), self.close_timeout)
            except asyncio.TimeoutError:
                pass
        if self._close_exc is None:
            raise ConnectionClosedError(self._close_rcvd, self._close_sent,
                                        self._rcvd_then_sent)
        raise self._close_exc

    # -- public API: closing ----------------------------------------------------

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Close with 1000, or 1011 when the block raised."""
        if exc_type is None:
            await self.close()
        else:
            await self.close(CloseCode.INTERNAL_ERROR)

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake and wait until the connection is
        closed (for at most ``close_timeout`` for the peer's answer).

        Idempotent: closing a closed connection does nothing.
        """
        transport = self._ws
        if transport is not None and self.state is _OPEN:
            if self._fragmented_send is not None:
                # websockets does the same: a fragmented message cannot end.
                code, reason = CloseCode.INTERNAL_ERROR, "close during fragmented message"
            self.state = _CLOSING
            self._record_sent(code, reason)
            if code == CloseCode.NO_STATUS_RCVD:
                transport.send_close()
            else:
                transport.send_close(code, reason.encode())
        # Read again, or the peer's CLOSE would wait behind a full queue.
        self._resume_reading()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)

    # -- public API: pings ------------------------------------------------------

    async def ping(self, data: Optional[DataLike] = None) -> Awaitable[float]:
        """Send a PING; return an awaitable that resolves to the latency (in
        seconds) when the matching PONG arrives.

        :param data: the payload (str is UTF-8 encoded), 4 random bytes when
            None.
        :raises ConnectionClosed: when the connection is closed.
        :raises ConcurrencyError: when a PING with the same data awaits its PONG.
        """
        if self.state is not _OPEN:
            await self._raise_closed()
        if isinstance(data, str):
            data = data.encode()
        elif data is not None:
            data = bytes(data)
        if data is not None and data in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        return self._send_ping(data)

    def _send_ping(self, data: Optional[bytes]) -> "asyncio.Future[float]":
        if data is None:
            data = struct.pack("!I", int.from_bytes(os.urandom(4), "big"))
            while data in self._pings:
                data = os.urandom(4)
        fut: asyncio.Future[float] = self._loop.create_future()
        self._pings[data] = (fut, self._loop.time())
        cast(WSTransport, self._ws).send_ping(data)
        return fut

    async def pong(self, data: DataLike = b"") -> None:
        """Send a PONG (an unsolicited one serves as a unidirectional heartbeat).

        :raises ConnectionClosed: when the connection is closed.
        """
        if self.state is not _OPEN:
            await self._raise_closed()
        cast(WSTransport, self._ws).send_pong(data)

#: Compiled by Cython (connection.pxd): the awaitables below have an am_send
#: slot (awaitable.h), and a step returns its value through it, not through a
#: StopIteration exception.
_COMPILED = not __file__.endswith(".py")


def _reraise(exc: BaseException) -> None:
    raise exc


def _raise_thrown(typ: Any, val: Any, tb: Any) -> None:
    """Raise what ``throw(typ, val, tb)`` was given."""
    if val is None:
        val = typ() if isinstance(typ, type) else typ
    elif not isinstance(val, BaseException):
        val = typ(val)
    if tb is not None:
        val = val.with_traceback(tb)
    raise val


def _new_recv(conn: Connection, decode: Optional[bool], anext: bool) -> "_Recv":
    # __new__ and the fields set directly: no __init__ to parse arguments.
    aw = _Recv.__new__(_Recv)
    aw.conn = conn
    aw.decode = decode
    aw.anext = anext
    aw.started = False
    aw.fut = aw.slow = None
    return aw


def _new_send(conn: Connection, message: Any, text: Optional[bool]) -> "_Send":
    aw = _Send.__new__(_Send)
    aw.conn = conn
    aw.message = message
    aw.text = text
    aw.started = False
    aw.slow = None
    return aw


# A free list: one of each per message, the allocation shows.
@cython.freelist(16)
@cython.cclass
class _Recv:
    """The awaitable of ``recv()`` and ``__anext__``: a whole message already
    buffered is returned by its first step; otherwise it parks one future
    (``Connection._waiter``) and returns the message that ``on_ws_frame``
    hands to it. Anything else (fragments, a closed connection) goes to the
    coroutine ``_recv_slow`` / ``_anext_slow``, which it then drives.

    It has the coroutine methods (``send``, ``throw``, ``close``), so
    ``asyncio.create_task(connection.recv())`` works as with websockets.
    """

    # Made by _new_recv.
    __slots__ = ("conn", "decode", "anext", "started", "fut", "slow")
    conn: Connection
    decode: Optional[bool]
    anext: bool
    started: bool   # stepped once: one use only, as a coroutine
    fut: Any
    slow: Any

    def __await__(self) -> "_Recv":
        return self

    def __iter__(self) -> "_Recv":
        return self

    def __next__(self) -> Any:
        if self.slow is not None:
            return self.slow.send(None)
        conn = self.conn
        fut = self.fut
        if fut is not None:
            # Woken: on_ws_frame handed a message over (or None: look again).
            self.fut = None
            if conn._waiter is fut:
                conn._waiter = None
            message = _future_result(fut)
            if message is not None:
                decode = self.decode
                if type(message) is str:
                    if decode is False:
                        message = message.encode()
                elif decode:
                    message = message.decode()
                if _COMPILED:
                    _stop_iteration_with(self, message)  # type: ignore[name-defined]  # noqa: F821 (C, awaitable.h)
                    raise StopIteration
                raise StopIteration(message)
        elif self.started:
            raise RuntimeError("cannot reuse already awaited coroutine")
        else:
            self.started = True
            if conn._waiter is not None:
                if self.anext:
                    self.slow = conn._anext_slow()
                    return self.slow.send(None)
                raise ConcurrencyError("cannot call recv while another coroutine "
                                       "is already running recv or recv_streaming")
        messages = conn._messages
        if messages:
            head = messages[0]
            tp = type(head)
            if tp is str or tp is bytes:
                conn._pop()
                conn._frames -= 1
                if conn._reading_paused:
                    conn._maybe_resume()
                decode = self.decode
                if tp is str:
                    if decode is False:
                        head = head.encode()  # type: ignore[union-attr]
                elif decode:
                    head = head.decode()  # type: ignore[union-attr]
                if _COMPILED:
                    _stop_iteration_with(self, head)  # type: ignore[name-defined]  # noqa: F821 (C, awaitable.h)
                    raise StopIteration
                raise StopIteration(head)
        elif conn.state is not _CLOSED:
            if _COMPILED:
                fut = _call_with_kwargs(  # type: ignore[name-defined]  # noqa: F821 (C)
                    conn._create_future, conn._future_kwargs)
            else:
                fut = conn._create_future(loop=conn._loop)
            conn._waiter = self.fut = fut
            fut._asyncio_future_blocking = True
            return fut
        self.slow = conn._anext_slow() if self.anext else conn._recv_slow(self.decode)
        return self.slow.send(None)

    def send(self, value: Any) -> Any:
        if self.slow is not None:
            return self.slow.send(value)
        if value is not None and not self.started:
            raise TypeError("can't send non-None value to a just-started coroutine")
        return self.__next__()

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self.slow is not None:
            return self.slow.throw(typ, val, tb)
        self.started = True
        self._drop()
        _raise_thrown(typ, val, tb)

    def close(self) -> None:
        self.started = True
        if self.slow is not None:
            self.slow.close()
        else:
            self._drop()

    def _drop(self) -> None:
        fut = self.fut
        if fut is not None:
            # Cancelled (or closed) while waiting: a message handed over goes
            # back to the head of the buffer for the next recv().
            self.fut = None
            conn = self.conn
            if conn._waiter is fut:
                conn._waiter = None
            conn._unget(fut)


@cython.freelist(16)
@cython.cclass
class _Send:
    """The awaitable of ``send()``: nothing happens until it is awaited (as
    with websockets' coroutine); then a str or bytes goes out in its first
    step. Anything else, or a wait (closing, write buffer full, a fragmented
    message being sent), goes to the coroutine ``_send_slow``.

    Its coroutine methods repeat _Recv's rather than come from a common
    base class: Cython allocates a subclass through its base's tp_new, so
    the free lists (700 instructions per round trip) would be lost.
    """

    # Made by _new_send.
    __slots__ = ("conn", "message", "text", "started", "slow")
    conn: Connection
    message: Any
    text: Optional[bool]
    started: bool   # stepped once: one use only, as a coroutine
    slow: Any

    def __await__(self) -> "_Send":
        return self

    def __iter__(self) -> "_Send":
        return self

    def __next__(self) -> Any:
        slow = self.slow
        if slow is None:
            if self.started:
                raise RuntimeError("cannot reuse already awaited coroutine")
            self.started = True
            conn = self.conn
            message = self.message
            tp = type(message)
            if (conn._fragmented_send is None and conn.state is _OPEN
                    and (tp is str or tp is bytes)):
                text = self.text
                if tp is str:
                    opcode = _OP_BINARY if text is False else _OP_TEXT
                else:
                    opcode = _OP_TEXT if text else _OP_BINARY
                if _COMPILED:
                    # The core's C-level send: no Python call.
                    conn._ws.send_message(  # type: ignore[union-attr]
                        opcode, message, True, False, True)
                else:
                    conn._send(opcode, message)
                if not conn._write_paused:
                    raise StopIteration
                slow = self.slow = conn._drain()
            else:
                slow = self.slow = conn._send_slow(message, self.text)
        return slow.send(None)

    def send(self, value: Any) -> Any:
        if self.slow is not None:
            return self.slow.send(value)
        if value is not None and not self.started:
            raise TypeError("can't send non-None value to a just-started coroutine")
        return self.__next__()

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self.slow is not None:
            return self.slow.throw(typ, val, tb)
        self.started = True
        _raise_thrown(typ, val, tb)

    def close(self) -> None:
        self.started = True
        if self.slow is not None:
            self.slow.close()


if _COMPILED:
    _install_am_send(_Recv)  # type: ignore[name-defined]  # noqa: F821 (C, awaitable.h)
    _install_am_send(_Send)  # type: ignore[name-defined]  # noqa: F821
