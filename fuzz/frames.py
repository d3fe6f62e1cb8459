"""The frame-parser fuzz target, for both roles (fuzz_frames_server.py,
fuzz_frames_client.py run it).

Each input becomes one connection: a WSProtocol on a fake transport, the
handshake, then a byte stream fed in chunks the fuzzer chose, then the peer
goes away. The stream is either

- raw: the fuzzer's bytes as they are (libFuzzer's mutations then produce
  every kind of malformed header, length, mask and payload); or
- structured: messages built from the fuzzer's choices (TEXT/BINARY, split
  into fragments with PING/PONG between them, masked as the role requires,
  lengths in every encoding), ending in nothing, a CLOSE, or one protocol
  violation. Here the expected outcome is known, and checked exactly: which
  frames reach on_ws_frame, and every byte the library writes back (PONGs,
  echoes, its CLOSE and the close code).

Invariants on every input: nothing escapes the protocol's methods or reaches
the loop's exception handler; on_ws_connected once, on_ws_disconnected
exactly once (never more), no on_ws_frame after it; delivered frames obey
RFC 6455 (types, control-frame rules, fragmentation order, nothing after
CLOSE, complete TEXT messages are UTF-8 when validation is on); every frame
the library writes is well formed and its CLOSE carries a valid code; no
timer is left scheduled.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, List, Optional, Tuple

from _harness import (
    CLIENT_KEY,
    SERVER_KEY,
    SWITCHING_RESPONSE,
    UPGRADE_REQUEST,
    VALID_CLOSE_CODES,
    fake_transport,
    Finding,
    check,
    drive,
    check_written_frames,
    consume_chunk_sizes,
    decode_written,
    encode_frame,
    feed,
    feed_chunks,
    new_protocol,
    run,
    utf8_ok,
)
from picows import WSListener
from picows.handshake import DEFLATE_OFFER, build_upgrade_request

# permessage-deflate (RFC 7692) variants: what the client offers (server
# role) or what the server answers (client role). All are acceptable.
DEFLATE_OFFERS = ["permessage-deflate", "permessage-deflate; client_max_window_bits",
                  "permessage-deflate; server_no_context_takeover",
                  "permessage-deflate; server_max_window_bits=10",
                  "permessage-deflate; server_max_window_bits=8",
                  "x-unknown, permessage-deflate; client_no_context_takeover"]
DEFLATE_ANSWERS = ["permessage-deflate", "permessage-deflate; client_no_context_takeover",
                   "permessage-deflate; server_no_context_takeover",
                   "permessage-deflate; client_max_window_bits=9",
                   "permessage-deflate; client_max_window_bits=8",
                   "permessage-deflate; server_max_window_bits=10"]

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_FRAME_SIZES = (0, 1, 2, 125, 126, 1000, 65535, 65536, 10 * 1024 * 1024)
INVALID_CLOSE_CODES = (0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)
Delivered = Tuple[int, bool, bytes]  # (opcode, fin, payload)


class FuzzListener(WSListener):
    """Records every frame and checks what the library hands it. In raw mode
    it also misbehaves as the fuzzer tells it (raise, close, disconnect...)."""

    def __init__(self, opts: dict, actions: List[int]) -> None:
        super().__init__()
        self.opts = opts
        self.actions = actions
        self.frames: List[Delivered] = []
        self.connected = 0
        self.disconnected = 0
        self.msg_open: Optional[int] = None
        self.msg_bytes = bytearray()
        self.close_seen = False
        self.kept: Any = None
        # The protocol catches what its callbacks raise, so a broken
        # invariant seen here is recorded and raised after the input.
        self.problems: List[Finding] = []

    def on_ws_connected(self, transport: Any) -> None:
        if self.connected:
            self.problems.append(Finding("on_ws_connected called twice"))
        self.connected += 1

    def on_ws_disconnected(self, transport: Any) -> None:
        self.disconnected += 1
        if self.disconnected > 1:
            self.problems.append(Finding("on_ws_disconnected called more than once"))

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        try:
            opcode = self._check_frame(frame)
        except Finding as exc:
            self.problems.append(exc)
            return
        self._act(transport, frame, opcode)

    def _check_frame(self, frame: Any) -> int:
        check(self.connected == 1, "on_ws_frame before on_ws_connected")
        check(self.disconnected == 0, "on_ws_frame after on_ws_disconnected")
        check(not self.close_seen, "a frame delivered after the peer's CLOSE")
        opcode = int(frame.msg_type)
        fin = bool(frame.fin)
        payload = frame.get_payload_as_bytes()
        check(len(payload) == frame.payload_size, "payload_size disagrees with the payload")
        check(bytes(frame.get_payload_as_memoryview()) == payload,
              "memoryview and bytes payloads differ")
        check(frame.payload_size <= self.opts["max_frame_size"],
              f"a {frame.payload_size}-byte frame passed max_frame_size "
              f"{self.opts['max_frame_size']}")
        check(not frame.rsv1, "RSV1 frame delivered without an extension")
        if opcode >= CLOSE:
            check(opcode in (CLOSE, PING, PONG), f"delivered opcode {opcode}")
            check(fin, "fragmented control frame delivered")
            check(len(payload) <= 125, "control frame over 125 bytes delivered")
        else:
            check(opcode in (CONT, TEXT, BINARY), f"delivered opcode {opcode}")
            if opcode == CONT:
                check(self.msg_open is not None, "CONTINUATION delivered with no open message")
            else:
                check(self.msg_open is None, "new message delivered inside a fragmented one")
                self.msg_open = opcode
                self.msg_bytes.clear()
            self.msg_bytes += payload
            if fin:
                if self.msg_open == TEXT and self.opts["utf8"]:
                    check(utf8_ok(bytes(self.msg_bytes)),
                          "a TEXT message that is not UTF-8 was delivered")
                    if opcode == TEXT:
                        frame.get_payload_as_utf8_text()
                self.msg_open = None
        if opcode == CLOSE:
            self.close_seen = True
            check(len(payload) != 1, "CLOSE with a 1-byte payload delivered")
            code = int(frame.get_close_code())
            reason = frame.get_close_message()
            if len(payload) >= 2:
                check(code in VALID_CLOSE_CODES, f"CLOSE with invalid code {code} delivered")
                check(reason == (payload[2:] or None), "get_close_message is wrong")
                if reason is not None:
                    check(utf8_ok(reason), "CLOSE reason that is not UTF-8 delivered")
            else:
                check(code == 0 and reason is None, "empty CLOSE has a code or a reason")
        self.frames.append((opcode, fin, payload))
        return opcode

    def _act(self, transport: Any, frame: Any, opcode: int) -> None:
        # Sending data after our CLOSE is the application's mistake (RFC 6455
        # 5.5.1), which picows does not stop: the listener does not make it.
        may_send_data = not transport.is_close_frame_sent
        if not self.actions:
            if self.opts["echo"] and opcode <= BINARY and may_send_data:
                transport.send(opcode, frame.get_payload_as_memoryview(), fin=frame.fin)
            return
        action = self.actions[(len(self.frames) - 1) % len(self.actions)]
        if action in (1, 9) and not may_send_data:
            return
        if action == 1 and opcode <= BINARY:
            transport.send(opcode, frame.get_payload_as_bytes(), fin=frame.fin)
        elif action == 2:
            raise RuntimeError("listener fails on purpose")
        elif action == 3:
            transport.send_close(1000, b"bye")
        elif action == 4:
            transport.disconnect()
        elif action == 5:
            transport.send_ping(b"p")
        elif action == 6:
            self.kept = frame  # the protocol must then use a new WSFrame
        elif action == 7:
            transport.underlying_transport.pause_reading()
        elif action == 8:
            transport.send_pong(b"own pong")  # so no auto-PONG for this PING
        elif action == 9:
            transport.send(TEXT, "\u00e9t\u00e9", fin=True)


# --------------------------------------------------------------------------
# The structured stream and its expected outcome


class Plan:
    """A stream built from the fuzzer's choices and what it must produce."""

    def __init__(self) -> None:
        self.stream = bytearray()
        # The peer's compressor and a model of picows's inflater (both zlib,
        # so the inflated output of each frame is known exactly).
        self.deflater: Any = None
        self.inflater = zlib.decompressobj(-15)
        self.frames: List[Delivered] = []   # what on_ws_frame must see, in order
        self.end: Optional[str] = None       # None, "close" or "fail"
        self.code: Optional[int] = None      # the CLOSE code the library must send
        self.min_delivered = 0               # on "fail", how many of `frames`
        self.max_delivered = 0               # may be delivered (inclusive range)


def build_plan(fdp: Any, is_client: bool, opts: dict) -> Plan:
    plan = Plan()
    max_fs = opts["max_frame_size"]
    big_ok = fdp.ConsumeBool()

    def mask() -> Optional[bytes]:
        # A client masks its frames, a server does not (RFC 6455 5.1).
        if is_client:
            return None
        m = fdp.ConsumeBytes(4)
        return m + b"\0" * (4 - len(m))

    def add(opcode: int, payload: bytes, fin: bool = True, deliver: bool = True,
            **kw: Any) -> None:
        form = kw.pop("length_form", None)
        if form is None:
            form = fdp.PickValueInList([0, 0, 0, 16, 64])
        if form == 16 and len(payload) >= 65536:
            form = 64
        if opcode >= CLOSE and len(payload) < 126 and "length_override" not in kw:
            form = 0  # a control frame's length must fit the 7-bit field
        plan.stream += encode_frame(opcode, payload, fin=fin, mask=mask(),
                                    length_form=form, **kw)
        if deliver:
            plan.frames.append((opcode, fin, payload))

    def content(limit: int) -> bytes:
        kind = fdp.ConsumeIntInRange(0, 3)
        size = fdp.ConsumeIntInRange(0, 300)
        if big_ok and fdp.ConsumeIntInRange(0, 15) == 0:
            size = fdp.PickValueInList([125, 126, 65535, 65536, 70000])
        size = min(size, limit)
        if kind == 0:
            data = fdp.ConsumeUnicodeNoSurrogates(size).encode("utf-8")
        elif kind == 1:
            data = fdp.ConsumeBytes(size)
        else:
            seed = fdp.ConsumeBytes(min(size, 16)) or b"\xce\xbb"
            data = (seed * (size // len(seed) + 1))[:size]
        return data[:limit]

    def control_payload() -> bytes:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, min(125, max_fs)))

    # The valid part: messages, some fragmented, with PING/PONG in between.
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        what = fdp.ConsumeIntInRange(0, 9)
        if what <= 5:
            opcode = TEXT if what <= 2 else BINARY
            nfrag = fdp.ConsumeIntInRange(1, 4)
            data = content(max_fs * nfrag)
            if (opcode == TEXT and opts["utf8"] and max_fs > 0 and not utf8_ok(data)
                    and fdp.ConsumeBool()):
                # Invalid UTF-8 in a TEXT message: 1007, at the latest when
                # its last fragment ends.
                pieces = split(fdp, data, nfrag, max_fs)
                plan.min_delivered = len(plan.frames)
                for i, piece in enumerate(pieces):
                    add(CONT if i else TEXT, piece, fin=i == len(pieces) - 1)
                plan.max_delivered = len(plan.frames) - 1
                plan.frames.pop()  # the last fragment is never delivered
                plan.end, plan.code = "fail", 1007
                break
            if opcode == TEXT and opts["utf8"] and not utf8_ok(data):
                data = data.decode("utf-8", "replace").encode("utf-8")
            if opts["compress"] and max_fs >= 1000 and fdp.ConsumeBool():
                data = data[:max_fs]
                if opcode == TEXT:
                    data = data.decode("utf-8", "ignore").encode("utf-8")
                add_compressed(fdp, plan, add, opcode, data, nfrag, max_fs)
                continue
            pieces = split(fdp, data, nfrag, max_fs)
            for i, piece in enumerate(pieces):
                add(CONT if i else opcode, piece, fin=i == len(pieces) - 1)
                if i < len(pieces) - 1 and fdp.ConsumeIntInRange(0, 3) == 0:
                    add(PING if fdp.ConsumeBool() else PONG, control_payload())
        elif what <= 7:
            add(PING if what == 6 else PONG, control_payload())
        elif what == 8:
            # The peer's CLOSE: delivered, then nothing more is parsed.
            if max_fs >= 2 and fdp.ConsumeBool():
                code = fdp.PickValueInList(sorted(VALID_CLOSE_CODES)[:14] + [3000, 4999])
                reason = fdp.ConsumeUnicodeNoSurrogates(
                    fdp.ConsumeIntInRange(0, min(40, max_fs - 2))).encode("utf-8")
                reason = reason[:min(123, max_fs - 2)]
                if not utf8_ok(reason):
                    reason = b""
                add(CLOSE, struct.pack("!H", code) + reason)
                plan.code = code
            else:
                add(CLOSE, b"")
                plan.code = 0
            plan.end = "close"
            break
        else:
            violation(fdp, plan, add, mask, is_client, opts)
            break
    if plan.end != "fail":
        plan.min_delivered = plan.max_delivered = len(plan.frames)
    # Frames after the end must never be delivered.
    if plan.end is not None and fdp.ConsumeBool():
        add(BINARY, b"after the end", deliver=False)
        add(PING, b"", deliver=False)
    return plan


def add_compressed(fdp: Any, plan: Plan, add: Any, opcode: int, data: bytes, nfrag: int,
                   max_fs: int) -> None:
    """A compressed message (RFC 7692 7.2.1): deflated by the peer's
    compressor (kept across messages, or fresh), flushed, 00 00 ff ff
    removed, split into frames with RSV1 on the first. The expected payload
    of each frame is what the model inflater makes of it."""
    packed = b""
    # Mostly one flush per message; sometimes the message is several DEFLATE
    # streams, each ended by a BFINAL block (RFC 7692 7.2.3.4), so a stream
    # may end and the next begin anywhere in a frame.
    cut = fdp.ConsumeIntInRange(0, len(data)) if fdp.ConsumeIntInRange(0, 3) == 0 else None
    for part, last in ((data, True),) if cut is None else ((data[:cut], False),
                                                            (data[cut:], True)):
        if plan.deflater is None or fdp.ConsumeIntInRange(0, 3) == 0:
            plan.deflater = zlib.compressobj(fdp.ConsumeIntInRange(0, 9), zlib.DEFLATED,
                                             -fdp.ConsumeIntInRange(9, 15))
        flush = fdp.PickValueInList([zlib.Z_SYNC_FLUSH, zlib.Z_SYNC_FLUSH, zlib.Z_FULL_FLUSH,
                                     zlib.Z_FINISH])
        if not last:
            flush = zlib.Z_FINISH
        chunk = plan.deflater.compress(part) + plan.deflater.flush(flush)
        if flush == zlib.Z_FINISH:
            plan.deflater = None  # that stream is over
            if last:
                # RFC 7692 7.2.3.4: the octet that lets the receiver append
                # 00 00 ff ff as usual (an empty stored block).
                chunk += b"\x00"
        elif last and chunk.endswith(b"\x00\x00\xff\xff"):
            chunk = chunk[:-4]
        packed += chunk
    pieces = split(fdp, packed, nfrag, max_fs)
    for i, piece in enumerate(pieces):
        fin = i == len(pieces) - 1
        out = model_inflate(plan, piece)
        if fin:
            out += model_inflate(plan, b"\x00\x00\xff\xff")
        add(CONT if i else opcode, piece, fin=fin, rsv=0 if i else 4, deliver=False)
        plan.frames.append((CONT if i else opcode, fin, out))
        if not fin and fdp.ConsumeIntInRange(0, 3) == 0:
            add(PING, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20)))


def model_inflate(plan: Plan, data: bytes) -> bytes:
    """What a receiver makes of `data`: a stream that ends (BFINAL) is
    followed by a new one in the same payload."""
    out = b""
    while True:
        out += plan.inflater.decompress(data)
        if not plan.inflater.eof:
            return out
        data = plan.inflater.unused_data
        plan.inflater = zlib.decompressobj(-15)
        if not data:
            return out


def split(fdp: Any, data: bytes, nfrag: int, max_fs: int) -> List[bytes]:
    """Split `data` into about `nfrag` fragments, none over `max_fs`."""
    cuts = sorted(fdp.ConsumeIntInRange(0, len(data)) for _ in range(nfrag - 1))
    pieces = []
    start = 0
    for cut in cuts + [len(data)]:
        pieces.append(data[start:cut])
        start = cut
    out = []
    for piece in pieces:
        if max_fs == 0:
            out.append(b"")
            continue
        out.extend(piece[i:i + max_fs] for i in range(0, len(piece), max_fs))
        if not piece:
            out.append(b"")
    return out


def violation(fdp: Any, plan: Plan, add: Any, mask: Any, is_client: bool, opts: dict) -> None:
    """Append one protocol violation; nothing after it is delivered."""
    max_fs = opts["max_frame_size"]
    kind = fdp.ConsumeIntInRange(0, 14 if opts["compress"] else 11)
    plan.end = "fail"
    plan.code = 1002
    plan.min_delivered = plan.max_delivered = len(plan.frames)
    small = fdp.ConsumeBytes(min(max_fs, fdp.ConsumeIntInRange(0, 3)))
    if kind == 0:
        opcode = fdp.PickValueInList([TEXT, BINARY, PING])
        rsv = fdp.ConsumeIntInRange(1, 7)
        if opts["compress"] and rsv == 4 and opcode != PING:
            rsv = 6  # RSV1 alone marks a compressed message: legal here
        add(opcode, small, rsv=rsv, deliver=False)
    elif kind == 1:
        add(fdp.PickValueInList([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), small, deliver=False)
    elif kind == 2:
        # The wrong masking for the role.
        frame = encode_frame(BINARY, small, mask=b"\1\2\3\4" if is_client else None)
        plan.stream += frame
    elif kind == 3:
        # The 125-byte rule is checked before max_frame_size: 1002 always.
        add(PING, b"x" * fdp.ConsumeIntInRange(126, 200), deliver=False)
    elif kind == 4:
        add(fdp.PickValueInList([PING, PONG, CLOSE]), b"", fin=False, deliver=False)
    elif kind == 5:
        add(CONT, small, deliver=False)
    elif kind == 6:
        add(TEXT if fdp.ConsumeBool() else BINARY, b"ok"[:max_fs], fin=False)
        add(BINARY, small, deliver=False)
        plan.min_delivered = plan.max_delivered = len(plan.frames)
    elif kind == 7:
        # A 64-bit length with the top bit set: the header alone is enough.
        add(BINARY, b"", length_form=64,
            length_override=(1 << 63) | fdp.ConsumeIntInRange(0, 1 << 20), deliver=False)
    elif kind == 8:
        add(BINARY, b"", length_override=max_fs + 1 + fdp.ConsumeIntInRange(0, 1000),
            deliver=False)
        plan.code = 1009
    elif kind == 9:
        if max_fs < 1:
            plan.code = 1009
        add(CLOSE, b"\x03", deliver=False)
    elif kind == 10:
        payload = struct.pack("!H", fdp.PickValueInList(list(INVALID_CLOSE_CODES)))
        if max_fs < 2:
            plan.code = 1009
        add(CLOSE, payload, deliver=False)
    elif kind == 12:
        # RSV1 on a CONTINUATION: only a message's first frame carries it.
        add(BINARY, b"ok"[:max_fs], fin=False)
        add(CONT, small, rsv=4, deliver=False)
        plan.min_delivered = plan.max_delivered = len(plan.frames)
    elif kind == 13:
        # Not DEFLATE data: BFINAL with the reserved block type 11.
        add(BINARY, b"\xff\xff\xff"[:max(max_fs, 1)], rsv=4, deliver=False)
        plan.code = 1007 if max_fs else 1009
    elif kind == 14:
        # A decompression bomb: a few bytes inflating past max_frame_size.
        if max_fs > 65536:
            add(BINARY, b"", length_override=max_fs + 1, rsv=4, deliver=False)
        else:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            bomb = c.compress(bytes(max_fs + 1 + fdp.ConsumeIntInRange(0, 100)))
            bomb += c.flush(zlib.Z_SYNC_FLUSH)
            add(BINARY, bomb[:-4], rsv=4, deliver=False)
        plan.code = 1009
    else:
        reason = fdp.PickValueInList([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"ok\xe2\x82"])
        payload = struct.pack("!H", 1000) + reason
        # Close reasons are checked even without enable_utf8_validation
        # (RFC 6455 5.5.1).
        plan.code = 1009 if max_fs < len(payload) else 1007
        add(CLOSE, payload, deliver=False)


# --------------------------------------------------------------------------
# One input


def consume_opts(fdp: Any) -> dict:
    return {
        "max_frame_size": fdp.PickValueInList(list(MAX_FRAME_SIZES)),
        "utf8": fdp.ConsumeIntInRange(0, 3) != 0,
        "auto_pong": fdp.ConsumeIntInRange(0, 3) != 0,
        "auto_close": fdp.ConsumeIntInRange(0, 3) != 0,
        "disconnect_on_exception": fdp.ConsumeBool(),
        "eof_capable": fdp.ConsumeBool(),
        "coalesce": fdp.ConsumeBool(),
        "echo": fdp.ConsumeBool(),
        "ending": fdp.ConsumeIntInRange(0, 3),
        "compress": fdp.ConsumeIntInRange(0, 2) == 0,
        "extension": fdp.ConsumeIntInRange(0, 5),
    }


def handshake_for(is_client: bool, opts: dict) -> Tuple[bytes, dict]:
    """The head the peer sends, and the protocol arguments that go with it."""
    if not opts["compress"]:
        return (SWITCHING_RESPONSE if is_client else UPGRADE_REQUEST), {}
    if is_client:
        answer = DEFLATE_ANSWERS[opts["extension"] % len(DEFLATE_ANSWERS)]
        head = SWITCHING_RESPONSE[:-2] + f"Sec-WebSocket-Extensions: {answer}\r\n\r\n".encode()
        request = build_upgrade_request("example.com", "/ws", CLIENT_KEY,
                                        [("Sec-WebSocket-Extensions", DEFLATE_OFFER)])
        return head, {"upgrade_request": request}
    offer = DEFLATE_OFFERS[opts["extension"] % len(DEFLATE_OFFERS)]
    return build_upgrade_request("example.com", "/ws", SERVER_KEY,
                                 [("Sec-WebSocket-Extensions", offer)]), {}


def one_input(data: bytes, is_client: bool) -> tuple:
    """Run one input; return a label of its outcome (make_corpus.py keeps
    a few inputs of each)."""
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    opts = consume_opts(fdp)
    structured = fdp.ConsumeIntInRange(0, 2) != 0
    actions: List[int] = []
    if not structured:
        actions = [fdp.ConsumeIntInRange(0, 9) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    sizes = consume_chunk_sizes(fdp)
    plan = build_plan(fdp, is_client, opts) if structured else None
    stream = bytes(plan.stream) if plan is not None else fdp.ConsumeBytes(fdp.remaining_bytes())

    async def connection() -> Optional[int]:
        listener = FuzzListener(opts, actions)
        head, extra = handshake_for(is_client, opts)
        proto = new_protocol(
            is_client, (lambda: listener) if is_client else (lambda request: listener),
            enable_compression=opts["compress"], **extra,
            max_frame_size=opts["max_frame_size"],
            enable_utf8_validation=opts["utf8"],
            enable_auto_pong=opts["auto_pong"],
            enable_auto_close=opts["auto_close"],
            disconnect_on_exception=opts["disconnect_on_exception"], logger_name="fuzz")
        fake = fake_transport(proto, eof_capable=opts["eof_capable"])

        def steps() -> None:
            if opts["coalesce"]:
                feed_chunks(proto, fake, head + stream, sizes)
            else:
                feed(proto, head, fake)
                check(listener.connected == 1, "the handshake did not complete")
                feed_chunks(proto, fake, stream, sizes)
            if opts["ending"] == 1 and not fake.closing:
                if not proto.eof_received():
                    fake.close()
            elif opts["ending"] == 2 and not fake.lost:
                fake.peer_close(ConnectionResetError("reset by the fuzzer"))

        await drive(proto, fake, steps)
        if listener.problems:
            raise listener.problems[0]
        check(listener.connected == 1, "on_ws_connected was not called")
        check(listener.disconnected == 1,
              f"on_ws_disconnected called {listener.disconnected} times, expected once")
        written = bytes(fake.out)
        if is_client:
            check(written.startswith(b"GET /ws HTTP/1.1\r\n"), "no upgrade request written")
            written = written[written.index(b"\r\n\r\n") + 4:]
        else:
            check(written.startswith(b"HTTP/1.1 101 "), "no 101 response written")
            if opts["compress"]:
                check(b"\r\nSec-WebSocket-Extensions: permessage-deflate" in written,
                      "permessage-deflate not accepted")
            written = written[written.index(b"\r\n\r\n") + 4:]
        out_frames = decode_written(written, masked=is_client, deflate=opts["compress"])
        close_code = check_written_frames(out_frames)
        if plan is not None:
            check_plan(plan, opts, listener, out_frames, close_code)
        return close_code

    close_code = run(connection)
    if plan is None:
        return ("raw", close_code, bool(actions))
    return ("structured", plan.end, plan.code, len(plan.frames) > 4)


def check_plan(plan: Plan, opts: dict, listener: FuzzListener,
               out_frames: List[Tuple[bool, int, bytes]], close_code: Optional[int]) -> None:
    got = listener.frames
    if plan.end == "fail":
        n = len(got)
        check(plan.min_delivered <= n <= plan.max_delivered,
              f"{n} frames delivered before the violation, expected "
              f"{plan.min_delivered}..{plan.max_delivered}")
        check(got == plan.frames[:n], "delivered frames differ from those sent")
        check(close_code == plan.code,
              f"the library closed with {close_code}, expected {plan.code}")
    else:
        check(got == plan.frames, f"delivered {len(got)} frames, sent {len(plan.frames)}; "
                                  f"they differ")
    # What the library must have written, frame by frame.
    expected: List[Tuple[bool, int, bytes]] = []
    for opcode, fin, payload in got:
        if opcode <= BINARY and opts["echo"]:
            expected.append((fin, opcode, payload))
        elif opcode == PING and opts["auto_pong"]:
            expected.append((True, PONG, payload))
        elif opcode == CLOSE and opts["auto_close"]:
            expected.append((True, CLOSE, payload[:2]))
    if plan.end == "fail":
        # The CLOSE carries a reason; compare the code only.
        check(bool(out_frames) and out_frames[-1][1] == CLOSE, "no CLOSE after the violation")
        out_frames = out_frames[:-1]
    check(out_frames == expected,
          f"library wrote {[(f[1], len(f[2])) for f in out_frames]}, expected "
          f"{[(f[1], len(f[2])) for f in expected]}")
