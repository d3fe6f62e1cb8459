"""Shared pieces of the fuzz targets: one event loop per process, a fake
transport, feeding bytes in fuzzer-chosen chunks, a decoder for what the
library wrote, and the invariants every target checks.

The protocol is driven exactly as docs/internals.md describes: a
``picows.picows.WSProtocol`` on a fake transport, inside a running loop, one
``loop.run_until_complete`` per input.

Anything that escapes the protocol's methods, reaches the loop's exception
handler, or breaks an invariant raises ``Finding``; atheris then stores the
input as a crash artifact and the run fails.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import sys
import zlib
from typing import Any, Callable, List, Optional, Tuple

from picows.handshake import accept_key, build_upgrade_request
from picows.picows import WSProtocol, _ConnectionOptions

# The protocol logs every rejected input; the fuzzer produces millions of them.
logging.disable(logging.CRITICAL)

SERVER_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 section 1.3 example
CLIENT_KEY = "x3JJHMbDL1EzLkh9GBhXDw=="
UPGRADE_REQUEST = build_upgrade_request("example.com", "/ws", SERVER_KEY)
SWITCHING_RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\n"
                      b"Upgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept_key(CLIENT_KEY).encode() + b"\r\n\r\n")

# What the library may put in a CLOSE frame (RFC 6455 7.4 and the IANA registry).
VALID_CLOSE_CODES = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015)) \
    | frozenset(range(3000, 5000))
DATA_OPCODES = (0x0, 0x1, 0x2)
CONTROL_OPCODES = (0x8, 0x9, 0xA)


class Finding(AssertionError):
    """A bug: an escaped exception or a broken invariant."""


def check(cond: bool, message: str) -> None:
    if not cond:
        raise Finding(message)


# --------------------------------------------------------------------------
# One event loop per process

_loop: Optional[asyncio.AbstractEventLoop] = None
_loop_errors: List[dict] = []


def loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
        _loop.set_exception_handler(lambda _l, context: _loop_errors.append(context))
    return _loop


def run(coro_fn: Callable[[], Any]) -> Any:
    """Run one input's coroutine; nothing may reach the exception handler, and
    no timer may stay scheduled once the connection is gone."""
    lp = loop()
    _loop_errors.clear()
    result = lp.run_until_complete(coro_fn())
    if _loop_errors:
        errors = list(_loop_errors)
        _loop_errors.clear()
        raise Finding(f"the loop exception handler was reached: {errors!r}")
    pending = [h for h in getattr(lp, "_scheduled", ()) if not h.cancelled()]
    check(not pending, f"timers left scheduled after connection_lost: {pending!r}")
    return result


async def settle(rounds: int = 3) -> None:
    """Let callbacks scheduled with call_soon (connection_lost) run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# --------------------------------------------------------------------------
# The fake transport

class FakeTransport:
    """What the protocol needs of an asyncio transport (docs/internals.md),
    with asyncio's semantics where they matter: write() after write_eof()
    raises, close() calls connection_lost on the next loop iteration."""

    def __init__(self, proto: Any, *, eof_capable: bool = False) -> None:
        self.proto = proto
        self.eof_capable = eof_capable
        self.out = bytearray()
        self.closing = False
        self.eof = False
        self.lost = False
        self.close_calls = 0
        self.reading_paused = False

    # asyncio.Transport
    def write(self, data: Any) -> None:
        if self.eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not self.lost:
            # asyncio still flushes what is written between close() and
            # connection_lost, so it counts as sent.
            self.out += data

    def writelines(self, items: Any) -> None:
        for item in items:
            self.write(item)

    def write_eof(self) -> None:
        check(self.eof_capable, "write_eof() called although can_write_eof() is False")
        self.eof = True

    def can_write_eof(self) -> bool:
        return self.eof_capable

    def close(self) -> None:
        self.close_calls += 1
        if not self.closing:
            self.closing = True
            loop().call_soon(self._lost)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    # the peer
    def _lost(self) -> None:
        if not self.lost:
            self.lost = True
            self.proto.connection_lost(None)

    def peer_gone(self) -> None:
        """The peer vanished: connection_lost now, unless already closed."""
        self.closing = True
        self._lost()


def feed(proto: Any, fake: FakeTransport, data: bytes) -> None:
    """Push `data` through the BufferedProtocol interface, as the loop does:
    get_buffer, copy what fits, buffer_updated. Stops once the transport is
    closing (a real loop stops reading then)."""
    view = memoryview(data)
    while view and not fake.closing:
        buf = memoryview(proto.get_buffer(len(view)))
        check(len(buf) > 0, "get_buffer returned an empty buffer")
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        proto.buffer_updated(n)
        view = view[n:]


def feed_chunks(proto: Any, fake: FakeTransport, data: bytes, sizes: List[int]) -> None:
    """Feed `data` split at the fuzzer's chunk sizes (cycled; 0 means the rest)."""
    pos = 0
    i = 0
    while pos < len(data) and not fake.closing:
        size = sizes[i % len(sizes)] if sizes else 0
        i += 1
        end = len(data) if size <= 0 else min(len(data), pos + size)
        feed(proto, fake, data[pos:end])
        pos = end


def consume_chunk_sizes(fdp: Any, most: int = 8, largest: int = 4096) -> List[int]:
    count = fdp.ConsumeIntInRange(0, most)
    return [fdp.ConsumeIntInRange(0, largest) for _ in range(count)]


# --------------------------------------------------------------------------
# Frames: an encoder for the peer, a decoder for what the library wrote

def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0,
                 mask: Optional[bytes] = None, length_form: int = 0,
                 length_override: Optional[int] = None) -> bytes:
    """A frame as the peer sends it. `length_form` 0 picks the minimal
    encoding, 7/16/64 force one; `length_override` lies about the length."""
    n = len(payload) if length_override is None else length_override
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask is not None else 0
    if length_form == 0:
        length_form = 7 if n < 126 else (16 if n < 65536 else 64)
    if length_form == 7 and n < 126:
        head = bytes([b0, mbit | n])
    elif length_form in (7, 16) and n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n & 0xFFFFFFFFFFFFFFFF)
    if mask is None:
        return head + payload
    return head + mask + xor_mask(payload, mask)


def xor_mask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


def decode_written(data: bytes, *, masked: bool,
                   deflate: bool = False) -> List[Tuple[bool, int, bytes]]:
    """Decode the frames the library wrote, checking that each is well formed:
    masked exactly when the library is the client, RSV bits clear (but RSV1
    on whole TEXT/BINARY messages when permessage-deflate was negotiated,
    `deflate`: those are inflated here), a known opcode, control frames
    unfragmented and at most 125 bytes. Returns (fin, opcode, payload) for
    each; the stream must end on a frame boundary."""
    frames = []
    inflater = zlib.decompressobj(-15)
    pos = 0
    while pos < len(data):
        check(len(data) - pos >= 2, f"library wrote a truncated frame header: {data[pos:]!r}")
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        check(bool(b1 & 0x80) == masked, f"library wrote a frame with mask bit {b1 >> 7}, "
                                         f"expected {int(masked)}")
        opcode = b0 & 0x0F
        compressed = deflate and (b0 & 0x70) == 0x40 and opcode in (0x1, 0x2) \
            and bool(b0 & 0x80)
        check(not (b0 & 0x70) or compressed, f"library wrote RSV bits {b0 & 0x70:#x} "
                                             f"(opcode {opcode}, deflate {deflate})")
        check(opcode in DATA_OPCODES + CONTROL_OPCODES, f"library wrote opcode {opcode}")
        n = b1 & 0x7F
        if n == 126:
            check(len(data) - pos >= 2, "library wrote a truncated 16-bit length")
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
            check(n >= 126, "library wrote a non-minimal 16-bit length")
        elif n == 127:
            check(len(data) - pos >= 8, "library wrote a truncated 64-bit length")
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
            check(65536 <= n < 2 ** 63, "library wrote a bad 64-bit length")
        mask = b""
        if masked:
            check(len(data) - pos >= 4, "library wrote a truncated mask")
            mask = data[pos:pos + 4]
            pos += 4
        check(len(data) - pos >= n, "library wrote a truncated payload")
        payload = data[pos:pos + n]
        pos += n
        if masked:
            payload = xor_mask(payload, mask)
        if compressed:
            try:
                payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
            except zlib.error as exc:
                raise Finding(f"library wrote corrupt compressed data: {exc}") from None
        if opcode >= 8:
            check(bool(b0 & 0x80), "library wrote a fragmented control frame")
            check(n <= 125, f"library wrote a control frame of {n} bytes")
        frames.append((bool(b0 & 0x80), opcode, payload))
    return frames


def check_written_frames(frames: List[Tuple[bool, int, bytes]]) -> Optional[int]:
    """Invariants on the library's own frames. Returns the code of its CLOSE
    (0 for an empty CLOSE), or None when it sent none."""
    close_code = None
    for i, (_fin, opcode, payload) in enumerate(frames):
        # RFC 6455 5.5.1: no data frame after a CLOSE (PING/PONG may follow).
        check(close_code is None or opcode not in DATA_OPCODES,
              f"library wrote data frame {i} (opcode {opcode}) after its CLOSE")
        if opcode == 0x8:
            check(close_code is None, "library wrote a second CLOSE")
            check(len(payload) != 1, "library wrote a CLOSE with a 1-byte payload")
            if len(payload) >= 2:
                code = struct.unpack_from("!H", payload)[0]
                check(code in VALID_CLOSE_CODES, f"library wrote CLOSE code {code}")
                try:
                    payload[2:].decode("utf-8")
                except UnicodeDecodeError:
                    raise Finding("library wrote a CLOSE reason that is not UTF-8") from None
                close_code = code
            else:
                close_code = 0
    return close_code


def utf8_ok(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def report(exc: BaseException) -> None:
    """Print a short description next to atheris's traceback."""
    print(f"FINDING: {type(exc).__name__}: {exc}", file=sys.stderr)


def new_protocol(is_client: bool, listener_factory: Callable, **kwargs: Any) -> Any:
    request = key = None
    if is_client:
        request = kwargs.pop("upgrade_request",
                             build_upgrade_request("example.com", "/ws", CLIENT_KEY))
        key = kwargs.pop("client_key", CLIENT_KEY)
    options = _ConnectionOptions(listener_factory, logger_name="fuzz", **kwargs)
    return WSProtocol(options, is_client=is_client, upgrade_request=request, client_key=key)
