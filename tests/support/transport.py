"""A fake asyncio transport, and feeding bytes through the BufferedProtocol
interface, so that a protocol runs without sockets.

``FakeTransport`` records every byte written and turns ``close()`` into a
``connection_lost`` call on the next loop iteration, as a real asyncio
transport does. ``feed()`` delivers bytes as the loop does (get_buffer,
copy, buffer_updated); ``flush()`` lets already scheduled callbacks run.
"""
from __future__ import annotations

import asyncio
from typing import Any


class FakeTransport:
    """Just enough of ``asyncio.Transport`` for WSProtocol (docs/internals.md).

    ``eof_capable=True`` makes it a plain TCP transport that can half-close
    (``can_write_eof()`` True); by default it behaves like a TLS transport,
    which cannot. A write after ``connection_lost`` fails the test, unless
    ``lenient`` (the fuzz targets): then it is dropped, as asyncio drops it.
    A write after ``write_eof()`` raises, as in asyncio.
    """

    def __init__(self, eof_capable: bool = False, *, proto: Any = None,
                 lenient: bool = False) -> None:
        self.eof_capable = eof_capable
        self.lenient = lenient
        self.eof_written = False
        self.proto: Any = proto
        self.out = bytearray()          # every byte written
        self.writes: list[bytes] = []   # one entry per write() call
        self.write_objects: list[tuple[int, type]] = []   # (id, type) of each object written
        self.retain = False             # keep the objects written, as a queueing transport does
        self.retained: list[tuple[Any, bytes]] = []   # (object, its bytes when written)
        self.writelines_calls = 0
        self.close_calls = 0
        self.closing = False
        self.aborted = False
        self.lost = False
        self.reading_paused = False
        self.write_limits: Any = None
        self.lost_event = asyncio.Event()
        self.lost_exc: Any = None

    # -- asyncio.Transport API
    def write(self, data) -> None:
        if self.eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self.lost:
            assert self.lenient, "write after connection_lost"
            return
        chunk = bytes(data)
        self.out += chunk
        self.writes.append(chunk)
        self.write_objects.append((id(data), type(data)))
        if self.retain:
            self.retained.append((data, chunk))

    def writelines(self, chunks) -> None:
        self.writelines_calls += 1
        self.write(b"".join(bytes(c) for c in chunks))

    def close(self) -> None:
        self.close_calls += 1
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self._lose, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name, default=None):
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self):
        return (0, 0)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self.write_limits = (high, low)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def is_reading(self) -> bool:
        return not self.reading_paused

    def can_write_eof(self) -> bool:
        return self.eof_capable

    def write_eof(self) -> None:
        assert self.eof_capable, "write_eof although can_write_eof() is False"
        self.eof_written = True

    # -- the peer
    def _lose(self, exc) -> None:
        if not self.lost:
            self.lost = True
            self.lost_exc = exc
            self.lost_event.set()
            self.proto.connection_lost(exc)

    def peer_eof(self) -> None:
        """The peer half-closed: eof_received(); a false result closes, as asyncio does."""
        if not self.proto.eof_received():
            self.close()

    def peer_close(self, exc=None) -> None:
        """The peer closed TCP (or it broke): connection_lost right now."""
        self.closing = True
        self._lose(exc)

    def data(self) -> bytes:
        return bytes(self.out)

    async def wait_lost(self, timeout: float = 2.0) -> None:
        await asyncio.wait_for(self.lost_event.wait(), timeout)


def feed(proto, data: bytes, transport: FakeTransport | None = None) -> None:
    """Deliver ``data`` through BufferedProtocol get_buffer/buffer_updated.

    With ``transport``, stop once it is closing, as a real loop stops reading.
    """
    view = memoryview(data)
    while view and not (transport is not None and transport.closing):
        buf = memoryview(proto.get_buffer(len(view)))
        n = min(len(buf), len(view))
        assert n > 0, "get_buffer returned an empty buffer"
        buf[:n] = view[:n]
        proto.buffer_updated(n)
        view = view[n:]


async def flush(n: int = 5) -> None:
    """Let already scheduled callbacks run (not a wait for correctness)."""
    for _ in range(n):
        await asyncio.sleep(0)
