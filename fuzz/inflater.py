"""The inflater fuzz target (fuzz_inflater.py runs it): permessage-deflate
(RFC 7692 7.2.2) on the receiving side, checked against a reference.

Each input becomes one connection with permessage-deflate negotiated, in
the role and with the max_frame_size the input's first byte picks. The rest
is a list of records, each ``[2 bytes big-endian: bit 15 fin, bits 0-14
length][payload]``: the payload of one compressed frame (the first of a
message with RSV1, the next ones CONTINUATION). The fuzzer's bytes are the
deflate data itself, so libFuzzer's mutations explore block types, stream
ends (BFINAL anywhere, 7.2.3.4), back references, and corruption.

The reference is Python's zlib driven the slow, obvious way: a new
decompressor after every stream end, primed with the last 32 KiB of all the
output so far. For every frame picows must deliver exactly the reference's
output, or fail with 1009 when that is larger than max_frame_size, or with
1007 when the reference finds the data invalid. Plus the invariants of every
target (nothing escapes, on_ws_disconnected once, no timer left).
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, List, Optional, Tuple

from _harness import (
    CLIENT_KEY,
    SERVER_KEY,
    SWITCHING_RESPONSE,
    check,
    decode_written,
    drive,
    encode_frame,
    fake_transport,
    feed,
    new_protocol,
    run,
)
from picows import WSListener
from picows.handshake import DEFLATE_OFFER, build_upgrade_request

TAIL = b"\x00\x00\xff\xff"
MAX_FRAME_SIZES = (1 << 20, 0, 1, 100, 4096, 65536)
MASK = b"\x12\x34\x56\x78"


class Reference:
    """Inflate as RFC 7692 says, with nothing clever."""

    def __init__(self) -> None:
        self.window = b""
        self.d = zlib.decompressobj(-15)
        # At the start of a stream with nothing fed since: a message ending
        # here gets no 00 00 ff ff (it would start an unfinished block).
        self.fresh = True

    def _feed(self, data: bytes) -> bytes:
        out = b""
        if data:
            self.fresh = False
        while True:
            piece = self.d.decompress(data)
            out += piece
            self.window = (self.window + piece)[-32768:]
            if not self.d.eof:
                return out
            data = self.d.unused_data
            self.fresh = not data
            self.d = (zlib.decompressobj(-15, zdict=self.window) if self.window
                      else zlib.decompressobj(-15))
            if not data:
                return out

    def frame(self, payload: bytes, fin: bool) -> Tuple[bytes, bool]:
        """(output, ok): the output up to an error when not ok."""
        saved = (self.d.copy(), self.window, self.fresh)
        try:
            out = self._feed(payload)
            if fin and not self.fresh:
                out += self._feed(TAIL)
            return out, True
        except zlib.error:
            pass
        # Again byte by byte from the state before, for the output up to the
        # error (zlib discards a failed call's output).
        self.d, self.window, self.fresh = saved
        data = payload
        out = b""
        for i in range(len(data) + 4):
            if i == len(data):
                if not fin or self.fresh:
                    break
                data += TAIL
            try:
                out += self._feed(data[i:i + 1])
            except zlib.error:
                return out, False
        return out, True  # pragma: no cover - zlib failed only all at once


class Listener(WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.frames: List[Tuple[int, bool, bytes]] = []
        self.connected = 0
        self.disconnected = 0

    def on_ws_connected(self, transport: Any) -> None:
        self.connected += 1

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        check(self.disconnected == 0, "on_ws_frame after on_ws_disconnected")
        check(not frame.rsv1, "an inflated frame was delivered with rsv1")
        self.frames.append((int(frame.msg_type), frame.fin, frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport: Any) -> None:
        self.disconnected += 1


def parse(data: bytes) -> Tuple[bool, int, List[Tuple[bytes, bool]]]:
    if not data:
        return False, MAX_FRAME_SIZES[0], []
    is_client = bool(data[0] & 0x80)
    max_frame_size = MAX_FRAME_SIZES[(data[0] & 0x7F) % len(MAX_FRAME_SIZES)]
    records = []
    pos = 1
    while pos + 2 <= len(data):
        (word,) = struct.unpack_from("!H", data, pos)
        pos += 2
        payload = data[pos:pos + (word & 0x7FFF)]
        pos += len(payload)
        records.append((payload, bool(word & 0x8000)))
    return is_client, max_frame_size, records


def encode(is_client: bool, max_index: int, records: List[Tuple[bytes, bool]]) -> bytes:
    """The input for these records (make_corpus.py writes seeds with it)."""
    out = bytearray([(0x80 if is_client else 0) | max_index])
    for payload, fin in records:
        out += struct.pack("!H", (0x8000 if fin else 0) | len(payload)) + payload
    return bytes(out)


def one_input(data: bytes) -> str:
    """Run one input; return a label of its outcome."""
    is_client, max_frame_size, records = parse(data)

    async def connection() -> str:
        listener = Listener()
        if is_client:
            proto = new_protocol(True, lambda: listener, enable_compression=True,
                                 max_frame_size=max_frame_size, logger_name="fuzz",
                                 upgrade_request=build_upgrade_request(
                                     "example.com", "/ws", CLIENT_KEY,
                                     [("Sec-WebSocket-Extensions", DEFLATE_OFFER)]))
            head = SWITCHING_RESPONSE[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        else:
            proto = new_protocol(False, lambda request: listener, enable_compression=True,
                                 max_frame_size=max_frame_size, logger_name="fuzz")
            head = (f"GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {SERVER_KEY}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n"
                    f"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode()
        fake = fake_transport(proto)

        def steps() -> Tuple[List[bytes], Optional[int], bool]:
            feed(proto, head, fake)
            check(listener.connected == 1, "the handshake did not complete")
            ref = Reference()
            expected: List[bytes] = []
            outcome: Optional[int] = None
            either = False
            first = True
            for payload, fin in records:
                if fake.closing:
                    break
                if len(payload) > max_frame_size:
                    outcome = 1009
                else:
                    out, ok = ref.frame(payload, fin)
                    if len(out) > max_frame_size:
                        outcome = 1009
                    elif not ok:
                        # Output made in the failing step is lost to the
                        # reference (at most 8 codes of one byte, 258 each):
                        # near the limit, either code is right.
                        outcome = 1007
                        either = len(out) + 8 * 258 > max_frame_size
                    else:
                        expected.append(out)
                feed(proto, encode_frame(0x2 if first else 0x0, payload, fin=fin,
                                         rsv=4 if first else 0,
                                         mask=None if is_client else MASK), fake)
                first = fin
                if outcome is not None:
                    break
            return expected, outcome, either

        expected, outcome, either = await drive(proto, fake, steps)
        check(listener.disconnected == 1,
              f"on_ws_disconnected called {listener.disconnected} times")
        got = [payload for _op, _fin, payload in listener.frames]
        check(got == expected, f"inflated {len(got)} frames unlike the reference "
                               f"({len(expected)})")
        written = bytes(fake.out)
        written = written[written.index(b"\r\n\r\n") + 4:]
        closes = [p for _f, op, p in decode_written(written, masked=is_client) if op == 0x8]
        code = struct.unpack_from("!H", closes[0])[0] if closes and len(closes[0]) >= 2 else None
        check(code == outcome or (either and code == 1009),
              f"closed with {code}, the reference says {outcome}")
        return f"close {code}" if code else f"{len(got)} frames"

    return run(connection)


def _raw(data: bytes, zdict: Optional[bytes] = None, final: bool = False) -> bytes:
    c = (zlib.compressobj(9, zlib.DEFLATED, -15, zdict=zdict) if zdict
         else zlib.compressobj(9, zlib.DEFLATED, -15))
    if final:
        return c.compress(data) + c.flush(zlib.Z_FINISH)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def hand_seeds() -> dict:
    """Seeds of the shapes that matter (make_corpus.py writes them): empty
    final streams in a row, back references across stream ends, messages
    and frames, an output bomb, corrupt data, a final stored block."""
    import random
    a = random.Random(5).randbytes(3000)
    return {
        "empty": encode(False, 0, [(b"\x00", True)]),
        "hello": encode(True, 0, [(_raw(b"hello hello hello"), True)]),
        "empty_streams": encode(False, 0, [(b"\x03\x00" * 200, True)]),
        "empty_streams_then_data": encode(True, 0, [(b"\x03\x00" * 200 + _raw(b"abc"), True)]),
        "backref_across_messages": encode(
            False, 0, [(_raw(a), True), (b"\x03\x00" + _raw(a[:500], zdict=a), True)]),
        "backref_across_frames": encode(
            True, 0, [(_raw(a) + TAIL, False), (_raw(b"x" * 100, final=True), False),
                      (_raw(a[:100], zdict=a + b"x" * 100), True)]),
        "bomb": encode(False, 3, [(_raw(b"\x00" * 5000), True)]),
        "corrupt": encode(True, 0, [(b"\xff\xff\xff", True)]),
        "stored_final": encode(False, 4, [(b"\x01\x03\x00\xfc\xffabc", True)]),
        "bfinal_without_trailing_octet": encode(
            True, 0, [(_raw(b"first", final=True), True), (_raw(b"second", final=True), True)]),
    }
