"""Listeners that record what the library delivers.

A WSFrame is only valid inside ``on_ws_frame``: ``copy_frame`` copies
everything out of it into a ``Frame`` before any assertion.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

from picows import WSListener, WSMsgType

TIMEOUT = 10.0  # upper bound for a frame or a callback that must come
DATA_TYPES = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)


@dataclass(frozen=True)
class Frame:
    """A copy of a WSFrame, taken inside on_ws_frame."""
    msg_type: Any
    fin: bool
    rsv1: bool
    payload: bytes
    payload_size: int
    last_in_buffer: bool
    tail_size: int
    close_code: Any = None
    close_message: Any = None

    def key(self):
        """What must be identical however the input was split."""
        return (int(self.msg_type), self.fin, self.rsv1, self.payload,
                None if self.close_code is None else int(self.close_code), self.close_message)


def copy_frame(frame) -> Frame:
    """Copy everything out of a WSFrame; it is only valid during on_ws_frame."""
    close_code = close_message = None
    if frame.msg_type == WSMsgType.CLOSE:
        close_code = frame.get_close_code()
        close_message = frame.get_close_message()
    return Frame(frame.msg_type, bool(frame.fin), bool(frame.rsv1), frame.get_payload_as_bytes(),
                 frame.payload_size, frame.last_in_buffer, frame.tail_size,
                 close_code, close_message)


class RecordingListener(WSListener):
    """Copies every frame and records every callback.

    - ``frames``: every frame copied, in order; ``next_frame()``,
      ``next_of()`` and ``drain()`` consume them in order as a queue would.
    - ``connected`` / ``disconnected``: futures set by the first
      on_ws_connected (with the transport) and on_ws_disconnected (with the
      transport); ``connected_calls`` / ``disconnected_calls`` count the calls;
      ``transport`` is the one on_ws_connected got, ``frame_transports`` the
      ones on_ws_frame got.
    - Hooks: ``on_frame(transport, frame)`` runs inside on_ws_frame after the
      copy, ``on_connected(transport)`` inside on_ws_connected.
    """

    def __init__(self) -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.connected: asyncio.Future = loop.create_future()
        self.disconnected: asyncio.Future = loop.create_future()
        self.connected_calls = 0
        self.disconnected_calls = 0
        self.frames: list[Frame] = []
        self.frame_transports: list[Any] = []
        self.on_frame: Callable | None = None
        self.on_connected: Callable | None = None
        self.pause_calls = 0
        self.resume_calls = 0
        self._read = 0  # frames[:_read] were consumed by next_frame / next_of / drain
        self._arrived = asyncio.Event()

    def on_ws_connected(self, transport) -> None:
        self.connected_calls += 1
        self.transport = transport
        if not self.connected.done():
            self.connected.set_result(transport)
        if self.on_connected is not None:
            self.on_connected(transport)

    def on_ws_frame(self, transport, frame) -> None:
        self.record(transport, frame)
        if self.on_frame is not None:
            self.on_frame(transport, frame)

    def record(self, transport, frame) -> None:
        self.frame_transports.append(transport)
        self.frames.append(copy_frame(frame))
        self._arrived.set()

    def on_ws_disconnected(self, transport) -> None:
        self.disconnected_calls += 1
        if not self.disconnected.done():
            self.disconnected.set_result(transport)

    def pause_writing(self) -> None:
        self.pause_calls += 1

    def resume_writing(self) -> None:
        self.resume_calls += 1

    async def wait_disconnected(self, timeout: float = TIMEOUT) -> None:
        await asyncio.wait_for(asyncio.shield(self.disconnected), timeout)

    async def _next(self, timeout: float) -> Frame:
        while self._read == len(self.frames):
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), timeout)
        self._read += 1
        return self.frames[self._read - 1]

    async def next_frame(self, *, skip=(WSMsgType.PING, WSMsgType.PONG),
                         timeout: float = TIMEOUT) -> Frame:
        """The next frame whose type is not in ``skip``."""
        while True:
            frame = await self._next(timeout)
            if frame.msg_type not in skip:
                return frame

    async def next_of(self, msg_type: WSMsgType, timeout: float = TIMEOUT) -> Frame:
        """The next frame of ``msg_type``, skipping any other."""
        while True:
            frame = await self._next(timeout)
            if frame.msg_type == msg_type:
                return frame

    def drain(self) -> list[Frame]:
        """Every frame recorded and not consumed yet."""
        frames = self.frames[self._read:]
        self._read = len(self.frames)
        return frames


class EchoListener(RecordingListener):
    """Echoes every data frame as it came (type, fin), records every other frame."""

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in DATA_TYPES:
            transport.send(frame.msg_type, frame.get_payload_as_bytes(), fin=frame.fin)
        else:
            super().on_ws_frame(transport, frame)
