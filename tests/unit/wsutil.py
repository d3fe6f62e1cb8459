"""Helpers for the unit tests (imported by conftest.py and the test files).

No sockets: a fake transport instead.

The pieces:

- ``FakeTransport`` records every byte the protocol writes and turns
  ``close()`` into a ``connection_lost`` call on the next loop iteration, as a
  real asyncio transport does.
- ``feed()`` pushes bytes through the ``BufferedProtocol`` interface.
- ``build_frame()`` / ``build_header()`` encode RFC 6455 frames. They are
  written here from the RFC, independently of picows, so the library's frame
  builder is checked against a second implementation.
- ``decode_frames()`` decodes what the library wrote.
- ``open_conn()`` creates a server-role or client-role ``WSProtocol`` already
  past the handshake, with a ``RecordingListener`` that copies every frame
  inside ``on_ws_frame`` (WSFrame objects are only valid during the callback).
  conftest.py wraps it in the ``make_conn`` fixture.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import struct
from dataclasses import dataclass
from typing import Any, Callable

from picows import WSCloseCode, WSListener, WSMsgType
from picows.picows import WSProtocol, _ConnectionOptions

RFC_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SERVER_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 section 1.3 example
CLIENT_KEY = "x3JJHMbDL1EzLkh9GBhXDw=="
WAIT = 2.0  # upper bound for waiting on an event that must happen

# Opcodes, spelled out so the tests do not depend on the library's enum.
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x4, 0x2, 0x1  # values of the ``rsv`` argument below


def expected_accept(key: str) -> str:
    """Sec-WebSocket-Accept computed from RFC 6455 section 4.2.2."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + RFC_GUID).digest()).decode()


def upgrade_request(key: str = SERVER_KEY, *, host: bytes = b"example.com",
                    path: bytes = b"/ws", extra: bytes = b"") -> bytes:
    return (b"GET " + path + b" HTTP/1.1\r\n"
            b"Host: " + host + b"\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key.encode() + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


def switching_response(key: str = CLIENT_KEY, *, accept: str | None = None,
                       extra: bytes = b"") -> bytes:
    accept = expected_accept(key) if accept is None else accept
    return (b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n" + extra + b"\r\n")


# --------------------------------------------------------------------------
# Independent RFC 6455 frame encoder / decoder


def apply_mask(mask: bytes, data: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


def build_header(opcode: int, length: int, *, fin: bool = True, rsv: int = 0,
                 mask: bytes | None = None, length_form: int | None = None) -> bytes:
    """The header of a frame, RFC 6455 section 5.2.

    ``length`` may be any 64-bit value (the payload need not follow);
    ``length_form`` forces 0 (7-bit), 126 (16-bit) or 127 (64-bit) encoding.
    """
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask is not None else 0
    form = length_form
    if form is None:
        form = 0 if length <= 125 else 126 if length <= 0xFFFF else 127
    if form == 0:
        head = bytes([b0, mbit | length])
    elif form == 126:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", length)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", length)
    if mask is not None:
        assert len(mask) == 4
        head += mask
    return head


def build_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
                mask: bytes | None = None) -> bytes:
    """A complete frame; ``mask=None`` unmasked, else the 4-byte masking key."""
    payload = bytes(payload)
    head = build_header(opcode, len(payload), fin=fin, rsv=rsv, mask=mask)
    return head + (apply_mask(mask, payload) if mask is not None else payload)


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    if code is None:
        return reason
    return struct.pack("!H", code) + reason


@dataclass
class WireFrame:
    """One frame decoded from the bytes the library wrote."""
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    mask: bytes | None
    payload: bytes  # unmasked
    header_len: int
    length_form: int  # 0, 126 or 127
    raw: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


def decode_frames(data: bytes) -> list[WireFrame]:
    """Decode a byte string that must hold only complete frames."""
    frames = []
    pos = 0
    while pos < len(data):
        start = pos
        assert len(data) - pos >= 2, f"truncated frame header at {pos}: {data[pos:]!r}"
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        length = b1 & 0x7F
        form = 0
        if length == 126:
            form = 126
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            form = 127
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        mask = None
        if b1 & 0x80:
            mask = bytes(data[pos:pos + 4])
            pos += 4
        header_len = pos - start
        payload = bytes(data[pos:pos + length])
        assert len(payload) == length, f"truncated payload: want {length}, have {len(payload)}"
        pos += length
        if mask is not None:
            payload = apply_mask(mask, payload)
        frames.append(WireFrame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF, mask is not None,
                                mask, payload, header_len, form, bytes(data[start:pos])))
    return frames


# --------------------------------------------------------------------------
# Fake transport and feeding


class FakeTransport:
    """Just enough of ``asyncio.Transport`` for WSProtocol (docs/internals.md).

    ``eof_capable=True`` makes it a plain TCP transport that can half-close
    (``can_write_eof()`` True); by default it behaves like a TLS transport,
    which cannot.
    """

    def __init__(self, eof_capable: bool = False) -> None:
        self.eof_capable = eof_capable
        self.eof_written = False
        self.proto: Any = None
        self.writes: list[bytes] = []   # one entry per write() call
        self.write_objects: list[tuple[int, type]] = []   # (id, type) of each object written
        self.retain = False             # keep the objects written, as a queueing transport does
        self.retained: list[tuple[Any, bytes]] = []   # (object, its bytes when written)
        self.writelines_calls = 0
        self.closing = False
        self.aborted = False
        self.lost = False
        self.reading_paused = False
        self.write_limits: Any = None
        self.lost_event = asyncio.Event()
        self.lost_exc: Any = None

    # -- asyncio.Transport API
    def write(self, data) -> None:
        assert not self.lost, "write after connection_lost"
        assert not self.eof_written, "write after write_eof"
        self.writes.append(bytes(data))
        self.write_objects.append((id(data), type(data)))
        if self.retain:
            self.retained.append((data, bytes(data)))

    def writelines(self, chunks) -> None:
        self.writelines_calls += 1
        self.write(b"".join(bytes(c) for c in chunks))

    def close(self) -> None:
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

    # -- test helpers
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
        return b"".join(self.writes)

    async def wait_lost(self, timeout: float = 2.0) -> None:
        await asyncio.wait_for(self.lost_event.wait(), timeout)


def feed(proto, data: bytes) -> None:
    """Deliver ``data`` through BufferedProtocol get_buffer/buffer_updated."""
    view = memoryview(data)
    while view:
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


# --------------------------------------------------------------------------
# Recording listener


@dataclass
class Frame:
    """A copy of a WSFrame, taken inside on_ws_frame."""
    msg_type: Any
    fin: bool
    rsv1: bool
    payload: bytes
    last_in_buffer: bool
    tail_size: int
    close_code: Any = None
    close_message: Any = None

    def key(self):
        """What must be identical however the input was split."""
        return (int(self.msg_type), self.fin, self.rsv1, self.payload,
                None if self.close_code is None else int(self.close_code), self.close_message)


def copy_frame(frame) -> Frame:
    f = Frame(frame.msg_type, frame.fin, frame.rsv1, frame.get_payload_as_bytes(),
              frame.last_in_buffer, frame.tail_size)
    if frame.msg_type == WSMsgType.CLOSE:
        f.close_code = frame.get_close_code()
        f.close_message = frame.get_close_message()
    return f


class RecordingListener(WSListener):
    """Copies frames; optional hooks run inside the callbacks.

    ``on_frame(transport, frame)`` runs inside on_ws_frame after the copy,
    ``on_connected(transport)`` inside on_ws_connected.
    """

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.connected: list[Any] = []
        self.disconnected: list[Any] = []
        self.transports: list[Any] = []
        self.on_frame: Callable | None = None
        self.on_connected: Callable | None = None
        self.disconnected_event = asyncio.Event()
        self.frame_event = asyncio.Event()

    def on_ws_connected(self, transport) -> None:
        self.connected.append(transport)
        if self.on_connected is not None:
            self.on_connected(transport)

    def on_ws_frame(self, transport, frame) -> None:
        self.transports.append(transport)
        self.frames.append(copy_frame(frame))
        self.frame_event.set()
        if self.on_frame is not None:
            self.on_frame(transport, frame)

    def on_ws_disconnected(self, transport) -> None:
        self.disconnected.append(transport)
        self.disconnected_event.set()


# --------------------------------------------------------------------------
# A protocol past the handshake


_mask_counter = itertools.count(1)


def next_mask() -> bytes:
    """A varying, reproducible, never-zero masking key for peer (client) frames."""
    n = next(_mask_counter)
    return struct.pack("!I", (n * 0x9E3779B1 & 0xFFFFFFFF) | 0x01010101)


class Conn:
    """A WSProtocol with its fake transport and recording listener."""

    def __init__(self, role: str, proto, fake: FakeTransport, listener: RecordingListener):
        self.role = role
        self.is_client = role == "client"
        self.proto = proto
        self.fake = fake
        self.listener = listener
        self.mark = 0  # offset in fake.data() where frames start

    @property
    def ws(self):
        return self.proto.transport

    @property
    def frames(self) -> list[Frame]:
        return self.listener.frames

    def feed(self, data: bytes) -> None:
        feed(self.proto, data)

    def peer_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
                   mask: Any = "auto") -> bytes:
        """A frame as the peer sends it: masked towards a server, not towards a client."""
        if mask == "auto":
            mask = None if self.is_client else next_mask()
        return build_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask)

    def peer_header(self, opcode: int, length: int, fin: bool = True, rsv: int = 0,
                    length_form: int | None = None):
        """(header, mask) as the peer sends it; mask is None towards a client."""
        mask = None if self.is_client else next_mask()
        return build_header(opcode, length, fin=fin, rsv=rsv, mask=mask,
                            length_form=length_form), mask

    def feed_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
                   mask: Any = "auto") -> None:
        self.feed(self.peer_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask))

    def written(self) -> bytes:
        return self.fake.data()[self.mark:]

    def sent(self) -> list[WireFrame]:
        """Frames the library wrote since the handshake, checked for the role's masking."""
        frames = decode_frames(self.written())
        for f in frames:
            assert f.masked == self.is_client, (
                f"{self.role} wrote a frame with mask bit {int(f.masked)}: {f.raw[:16]!r}")
        return frames

    def sent_closes(self) -> list[WireFrame]:
        return [f for f in self.sent() if f.opcode == CLOSE]

    async def wait_disconnected(self, timeout: float = WAIT) -> None:
        await asyncio.wait_for(self.listener.disconnected_event.wait(), timeout)

    async def expect_close(self, code: int, *, peer_completes: bool = True) -> WireFrame:
        """The connection wrote exactly one CLOSE with ``code`` and disconnects.

        The CLOSE must be written at once. Then, unless the library already
        closed the transport, the peer completes the closing handshake
        (RFC 6455 7.1.7 / 5.5.1): it answers with its own CLOSE and, towards a
        client, the server closes TCP. The connection must then end, with
        no further CLOSE written. (test_rfc_rules checks separately that the
        transport is closed without the peer's help.)
        """
        closes = self.sent_closes()
        assert [c.close_code for c in closes] == [code], (
            f"expected one CLOSE {code}, wrote {[(c.close_code, c.payload) for c in closes]}")
        assert self.sent()[-1].opcode == CLOSE, "frames written after the CLOSE"
        if peer_completes and not self.fake.closing:
            self.feed(self.peer_frame(CLOSE, close_payload(code)))
            if self.is_client and not self.fake.closing:
                self.fake.peer_close()
        await self.wait_disconnected()
        assert self.fake.lost
        closes = self.sent_closes()
        assert [c.close_code for c in closes] == [code], "a second CLOSE was written"
        assert len(self.listener.disconnected) == 1
        return closes[0]


async def open_conn(role: str, listener: RecordingListener | None = None,
                    eof_capable: bool = False, **kwargs) -> Conn:
    assert role in ("server", "client")
    listener = listener if listener is not None else RecordingListener()
    fake = FakeTransport(eof_capable)
    if role == "server":
        proto = new_protocol(False, lambda request: listener,
                           **kwargs)
    else:
        from picows.handshake import build_upgrade_request
        proto = new_protocol(True, lambda: listener,
                           upgrade_request=build_upgrade_request("example.com", "/ws",
                                                                 CLIENT_KEY),
                           client_key=CLIENT_KEY, **kwargs)
    fake.proto = proto
    conn = Conn(role, proto, fake, listener)
    proto.connection_made(fake)
    if role == "server":
        feed(proto, upgrade_request(SERVER_KEY))
        head = fake.data()
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert expected_accept(SERVER_KEY).encode() in head
    else:
        assert fake.data().startswith(b"GET /ws HTTP/1.1\r\n")
        feed(proto, switching_response(CLIENT_KEY))
        ws, lst = await asyncio.wait_for(proto.handshake_future, WAIT)
        assert lst is listener
        assert ws is proto.transport
    assert proto.transport is not None
    assert listener.connected == [proto.transport]
    conn.mark = len(fake.data())
    return conn


__all__ = [
    "BINARY",
    "CLIENT_KEY",
    "CLOSE",
    "CONT",
    "PING",
    "PONG",
    "RSV1",
    "RSV2",
    "RSV3",
    "SERVER_KEY",
    "TEXT",
    "WAIT",
    "Conn",
    "FakeTransport",
    "Frame",
    "RecordingListener",
    "WSCloseCode",
    "WSMsgType",
    "WireFrame",
    "apply_mask",
    "build_frame",
    "build_header",
    "close_payload",
    "decode_frames",
    "expected_accept",
    "feed",
    "flush",
    "next_mask",
    "open_conn",
    "switching_response",
    "upgrade_request",
]


def new_protocol(is_client: bool, listener_factory: Callable, *,
                 upgrade_request: bytes | None = None, client_key: str | None = None,
                 **options: Any) -> WSProtocol:
    """The one place the unit tests construct a WSProtocol."""
    return WSProtocol(_ConnectionOptions(listener_factory, **options), is_client=is_client,
                      upgrade_request=upgrade_request, client_key=client_key)
