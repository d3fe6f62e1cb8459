"""Shared pieces of the fuzz targets: one event loop per process, driving a
protocol on tests.support's fake transport with bytes in fuzzer-chosen
chunks, the peer's frame encoder and a checking decoder of what the library
wrote (over tests.support's), and the invariants every target checks.

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
import os
import struct
import sys
import zlib
from typing import Any, Callable, List, Optional, Tuple

# tests.support (the fake transport, the frame encoder and decoder, the one
# constructor of WSProtocol) lives in the repository: append its root, so an
# installed picows still wins over the checkout.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from tests.support import (  # noqa: E402
    CLIENT_KEY,
    SERVER_KEY,
    FakeTransport,
    apply_mask,
    build_header,
    decode_frames,
    feed,
    new_protocol,  # noqa: F401 (the targets take it from here)
    switching_response,
    upgrade_request,
)

# The protocol logs every rejected input; the fuzzer produces millions of them.
logging.disable(logging.CRITICAL)

UPGRADE_REQUEST = upgrade_request(SERVER_KEY)
SWITCHING_RESPONSE = switching_response(CLIENT_KEY)

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
# Driving a protocol on a fake transport

def fake_transport(proto: Any, eof_capable: bool = False) -> FakeTransport:
    """tests.support's FakeTransport with asyncio's leniency: a write after
    connection_lost is dropped."""
    return FakeTransport(eof_capable, proto=proto, lenient=True)


async def drive(proto: Any, fake: FakeTransport, steps: Callable[[], Any]) -> Any:
    """connection_made, ``steps()`` (the feeding), then the peer goes away.
    An exception escaping the protocol is a Finding. Returns what steps returned."""
    try:
        proto.connection_made(fake)
        result = steps()
        await settle()
        if not fake.lost:
            fake.peer_close()
        await settle()
    except Finding:
        raise
    except BaseException as exc:
        raise Finding(f"{type(exc).__name__} escaped the protocol: {exc!r}") from exc
    return result


def feed_chunks(proto: Any, fake: FakeTransport, data: bytes, sizes: List[int]) -> None:
    """Feed `data` split at the fuzzer's chunk sizes (cycled; 0 means the rest)."""
    pos = 0
    i = 0
    while pos < len(data) and not fake.closing:
        size = sizes[i % len(sizes)] if sizes else 0
        i += 1
        end = len(data) if size <= 0 else min(len(data), pos + size)
        feed(proto, data[pos:end], fake)
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
    encoding, 7/16/64 force one (a longer one when the length does not fit);
    `length_override` lies about the length."""
    n = len(payload) if length_override is None else length_override
    if length_form == 0:
        length_form = 7 if n < 126 else (16 if n < 65536 else 64)
    if length_form == 7 and n < 126:
        form = 0
    elif length_form in (7, 16) and n < 65536:
        form = 126
    else:
        form, n = 127, n & 0xFFFFFFFFFFFFFFFF
    head = build_header(opcode, n, fin=fin, rsv=rsv, mask=mask, length_form=form)
    return head + (payload if mask is None else apply_mask(mask, payload))


def decode_written(data: bytes, *, masked: bool,
                   deflate: bool = False) -> List[Tuple[bool, int, bytes]]:
    """Decode the frames the library wrote, checking that each is well formed:
    masked exactly when the library is the client, RSV bits clear (but RSV1
    on whole TEXT/BINARY messages when permessage-deflate was negotiated,
    `deflate`: those are inflated here), a known opcode, lengths in their
    minimal encoding, control frames unfragmented and at most 125 bytes.
    Returns (fin, opcode, payload) for each; the stream must end on a frame
    boundary."""
    try:
        wire = decode_frames(data)
    except AssertionError as exc:
        raise Finding(f"library wrote a truncated frame: {exc}") from None
    frames = []
    inflater = zlib.decompressobj(-15)
    for f in wire:
        check(f.masked == masked, f"library wrote a frame with mask bit {int(f.masked)}, "
                                  f"expected {int(masked)}")
        compressed = deflate and f.rsv == 4 and f.opcode in (0x1, 0x2) and f.fin
        check(not f.rsv or compressed, f"library wrote RSV bits {f.rsv << 4:#x} "
                                       f"(opcode {f.opcode}, deflate {deflate})")
        check(f.opcode in DATA_OPCODES + CONTROL_OPCODES, f"library wrote opcode {f.opcode}")
        n = len(f.payload)
        check(f.length_form != 126 or n >= 126, "library wrote a non-minimal 16-bit length")
        check(f.length_form != 127 or 65536 <= n < 2 ** 63, "library wrote a bad 64-bit length")
        payload = f.payload
        if compressed:
            try:
                payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
            except zlib.error as exc:
                raise Finding(f"library wrote corrupt compressed data: {exc}") from None
        if f.opcode >= 8:
            check(f.fin, "library wrote a fragmented control frame")
            check(n <= 125, f"library wrote a control frame of {n} bytes")
        frames.append((f.fin, f.opcode, payload))
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
