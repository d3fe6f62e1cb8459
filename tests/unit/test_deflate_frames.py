"""permessage-deflate frames (RFC 7692 6 and 7.2) on a fake transport, both
roles: inflating what the peer sends, the RSV rules, the limits, and
compressing what we send.

The peer's side is built here from zlib, independently of picows: a raw
DEFLATE stream (wbits=-15), flushed with Z_SYNC_FLUSH at the end of every
message and stripped of the trailing 00 00 ff ff (RFC 7692 7.2.1); what picows
sends is inflated the other way round (7.2.2).
"""
from __future__ import annotations

import random
import zlib

import pytest

from picows import WSMsgType
from picows.handshake import DEFLATE_OFFER, build_upgrade_request

from tests.support import (BINARY, CLIENT_KEY, CLOSE, CONT, PING, PONG, RSV1, RSV2, RSV3, TEXT,
    Conn, close_payload, text_payload)


PMD = "permessage-deflate"
TAIL = b"\x00\x00\xff\xff"
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


# --------------------------------------------------------------------------
# Helpers


def binary_data(size: int) -> bytes:
    """Incompressible bytes: the compressor falls back to stored blocks."""
    return random.Random(size).randbytes(size)


class PeerDeflate:
    """The peer's compressor. ``reset``: no context takeover on its side."""

    def __init__(self, wbits: int = 15, reset: bool = False) -> None:
        self.wbits = wbits
        self.reset = reset
        self._c = zlib.compressobj(wbits=-wbits)

    def chunk(self, data: bytes) -> bytes:
        """Part of a message, sync-flushed (keeps its 00 00 ff ff)."""
        return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)

    def message(self, data: bytes) -> bytes:
        """A whole message's payload, RFC 7692 7.2.1."""
        out = self.chunk(data)
        assert out.endswith(TAIL)
        if self.reset:
            self._c = zlib.compressobj(wbits=-self.wbits)
        return out[:-4]


def inflate(payload: bytes, d=None) -> bytes:
    """RFC 7692 7.2.2: append 00 00 ff ff and inflate."""
    d = zlib.decompressobj(-15) if d is None else d
    out = d.decompress(payload + TAIL)
    assert not d.unconsumed_tail and not d.unused_data and not d.eof
    return out


def own(role: str, param: str) -> str:
    """The negotiation parameter that constrains ``role``'s own compressor."""
    return f"{role}_{param}"


def negotiation(role: str, params: str = "") -> str:
    """What the test peer says in the handshake: the offer towards a server,
    the response towards a client."""
    return PMD + (f"; {params}" if params else "")


@pytest.fixture
async def make_deflate(make_conn):
    """``await make_deflate(role, agreed=PMD, listener=None, **WSProtocol options)``:
    a connection past a handshake where ``agreed`` (an offer towards a
    server, the response towards a client) was exchanged; None: no
    Sec-WebSocket-Extensions from the peer. Torn down as make_conn's."""

    async def factory(role: str, agreed: str | None = PMD, listener=None, **kwargs) -> Conn:
        kwargs.setdefault("enable_compression", True)
        if role == "client":
            kwargs.setdefault("upgrade_request", build_upgrade_request(
                "example.com", "/ws", CLIENT_KEY, [("Sec-WebSocket-Extensions", DEFLATE_OFFER)]))
        ext = b"" if agreed is None else b"Sec-WebSocket-Extensions: " + agreed.encode() + b"\r\n"
        return await make_conn(role, listener, extra=ext, **kwargs)

    return factory


@pytest.fixture
async def dconn(make_deflate, role) -> Conn:
    """Compression negotiated with default parameters, each role."""
    conn = await make_deflate(role)
    assert conn.ws.extensions is not None
    return conn


def data_frames(conn: Conn):
    return [f for f in conn.frames if f.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY,
                                                     WSMsgType.CONTINUATION)]


def no_close(conn: Conn) -> None:
    assert conn.sent_closes() == []
    assert not conn.fake.closing


# --------------------------------------------------------------------------
# Negotiated state


async def test_extensions_attribute(make_deflate, make_conn, role):
    params = own(role, "no_context_takeover")
    conn = await make_deflate(role, negotiation(role, params))
    assert conn.ws.extensions is not None
    assert conn.ws.extensions.startswith(PMD)
    if role == "client":
        assert conn.ws.extensions == negotiation(role, params)
    plain = await make_conn(role)
    assert plain.ws.extensions is None


# --------------------------------------------------------------------------
# Receiving


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_compressed_message_delivered_plain(dconn, opcode, size):
    msg = text_payload(size) if opcode == TEXT else binary_data(size)
    dconn.feed_frame(opcode, PeerDeflate().message(msg), rsv=RSV1)
    assert [f.key() for f in dconn.frames] == [(opcode, True, False, msg, None, None)]
    no_close(dconn)


async def test_compressed_message_one_byte_at_a_time(dconn):
    msg = text_payload(300)
    data = dconn.peer_frame(TEXT, PeerDeflate().message(msg), rsv=RSV1)
    for i in range(len(data)):
        dconn.feed(data[i:i + 1])
    assert [(f.payload, f.rsv1) for f in dconn.frames] == [(msg, False)]
    no_close(dconn)


async def test_two_compressed_frames_in_one_chunk(dconn):
    peer = PeerDeflate()
    one, two = text_payload(200), binary_data(200)
    dconn.feed(dconn.peer_frame(TEXT, peer.message(one), rsv=RSV1)
               + dconn.peer_frame(BINARY, peer.message(two), rsv=RSV1))
    assert [(f.msg_type, f.payload, f.rsv1) for f in dconn.frames] == [
        (TEXT, one, False), (BINARY, two, False)]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_fragmented_compressed_message(dconn, opcode):
    msg = text_payload(5000)
    payload = PeerDeflate().message(msg)
    a, b = len(payload) // 3, 2 * len(payload) // 3
    dconn.feed_frame(opcode, payload[:a], fin=False, rsv=RSV1)
    dconn.feed_frame(CONT, payload[a:b], fin=False)
    dconn.feed_frame(CONT, b"", fin=False)
    dconn.feed_frame(CONT, payload[b:], fin=True)
    frames = dconn.frames
    assert [(int(f.msg_type), f.fin, f.rsv1) for f in frames] == [
        (opcode, False, False), (CONT, False, False), (CONT, False, False), (CONT, True, False)]
    assert b"".join(f.payload for f in frames) == msg
    no_close(dconn)


async def test_fragmented_compressed_message_split_at_every_offset(dconn):
    msg = "grüße, ✓ ".encode() * 8
    for i in range(1, 40):
        payload = PeerDeflate().message(msg)
        start = len(dconn.frames)
        dconn.feed_frame(TEXT, payload[:i], fin=False, rsv=RSV1)
        dconn.feed_frame(CONT, payload[i:], fin=True)
        got = dconn.frames[start:]
        assert len(got) == 2, i
        assert b"".join(f.payload for f in got) == msg, i
    no_close(dconn)


async def test_control_frames_between_compressed_fragments(dconn):
    msg = text_payload(3000)
    payload = PeerDeflate().message(msg)
    half = len(payload) // 2
    dconn.feed_frame(TEXT, payload[:half], fin=False, rsv=RSV1)
    dconn.feed_frame(PING, b"ping!")
    dconn.feed_frame(PONG, b"pong?")
    dconn.feed_frame(CONT, payload[half:], fin=True)
    assert [int(f.msg_type) for f in dconn.frames] == [TEXT, PING, PONG, CONT]
    assert dconn.frames[1].payload == b"ping!"
    assert dconn.frames[0].payload + dconn.frames[3].payload == msg
    # The automatic PONG is a control frame: never compressed.
    assert [(f.opcode, f.rsv, f.payload) for f in dconn.sent()] == [(PONG, 0, b"ping!")]


async def test_context_takeover_across_messages(dconn):
    """The peer keeps its LZ77 window between messages (the default): later
    messages refer back into earlier ones."""
    peer = PeerDeflate()
    msg = text_payload(4000)
    first = peer.message(msg)
    second = peer.message(msg)
    assert len(second) < len(first) // 4  # it did refer back
    dconn.feed_frame(TEXT, first, rsv=RSV1)
    dconn.feed_frame(PING, b"")
    dconn.feed_frame(TEXT, second, rsv=RSV1)
    # An uncompressed message in between does not touch the inflater.
    dconn.feed_frame(BINARY, b"plain", rsv=0)
    third = peer.message(msg + b"!")
    dconn.feed_frame(BINARY, third[:5], fin=False, rsv=RSV1)
    dconn.feed_frame(CONT, third[5:], fin=True)
    assert [f.payload for f in data_frames(dconn)][:3] == [msg, msg, b"plain"]
    assert b"".join(f.payload for f in data_frames(dconn)[3:]) == msg + b"!"
    assert all(not f.rsv1 for f in dconn.frames)
    no_close(dconn)


async def test_peer_without_context_takeover(make_deflate, role):
    peer_param = "client_no_context_takeover" if role == "server" else \
        "server_no_context_takeover"
    conn = await make_deflate(role, negotiation(role, peer_param))
    peer = PeerDeflate(reset=True)
    for i in range(3):
        conn.feed_frame(TEXT, peer.message(b"again and again %d" % i), rsv=RSV1)
    assert [f.payload for f in conn.frames] == [b"again and again %d" % i for i in range(3)]
    no_close(conn)


async def test_peer_with_small_window(make_deflate, role):
    peer_param = "client_max_window_bits=9" if role == "server" else "server_max_window_bits=9"
    conn = await make_deflate(role, negotiation(role, peer_param))
    peer = PeerDeflate(wbits=9)
    msg = text_payload(10000)
    conn.feed_frame(BINARY, peer.message(msg), rsv=RSV1)
    conn.feed_frame(BINARY, peer.message(msg), rsv=RSV1)
    assert [f.payload for f in conn.frames] == [msg, msg]
    no_close(conn)


async def test_uncompressed_messages_still_accepted(dconn):
    dconn.feed_frame(TEXT, b"not compressed")
    dconn.feed_frame(BINARY, b"ab", fin=False)
    dconn.feed_frame(CONT, b"cd", fin=True)
    assert [(f.payload, f.rsv1) for f in dconn.frames] == [
        (b"not compressed", False), (b"ab", False), (b"cd", False)]
    no_close(dconn)


# RFC 7692 7.2.3: the examples, byte for byte (payloads of "Hello").
RFC_HELLO = bytes.fromhex("f248cdc9c90700")


async def test_rfc7692_example_frames_exact(make_deflate):
    """7.2.3.1 and 7.2.3.2 as the RFC writes them: unmasked frames, so
    towards a client."""
    conn = await make_deflate("client")
    conn.feed(bytes.fromhex("c107f248cdc9c90700"))            # 7.2.3.1, one frame
    conn.feed(bytes.fromhex("4103f248cd") + bytes.fromhex("8004c9c90700"))  # fragmented
    conn.feed(bytes.fromhex("c107f248cdc9c90700"))            # 7.2.3.2, shared window:
    conn.feed(bytes.fromhex("c105f200110000"))                # refers back to the first
    assert [(int(f.msg_type), f.fin) for f in conn.frames] == [
        (TEXT, True), (TEXT, False), (CONT, True), (TEXT, True), (TEXT, True)]
    # how much of a fragment inflates before the next arrives is zlib's business
    payloads = [f.payload for f in conn.frames]
    assert payloads[:1] + [payloads[1] + payloads[2]] + payloads[3:] == [b"Hello"] * 4
    no_close(conn)


@pytest.mark.parametrize("payload", [
    RFC_HELLO,                                              # 7.2.3.1
    bytes.fromhex("000500faff48656c6c6f00"),                # 7.2.3.3, no compression
    bytes.fromhex("f348cdc9c9070000"),                      # 7.2.3.4, BFINAL set to 1
    bytes.fromhex("f24805000000ffffcac9c90700"),            # 7.2.3.5, two blocks
], ids=["7.2.3.1", "7.2.3.3-stored", "7.2.3.4-bfinal", "7.2.3.5-two-blocks"])
async def test_rfc7692_example_payloads(dconn, payload):
    dconn.feed_frame(TEXT, payload, rsv=RSV1)
    dconn.feed_frame(TEXT, PeerDeflate().message(b"next"), rsv=RSV1)
    assert [f.payload for f in dconn.frames] == [b"Hello", b"next"]
    no_close(dconn)


@pytest.mark.parametrize("peer_nct", [True, False], ids=["peer-nct", "default"])
async def test_messages_ending_with_bfinal_block(make_deflate, role, peer_nct):
    """RFC 7692 7.2.3.4: a sender may end each message with a DEFLATE block
    with BFINAL set to 1 (then an empty block header, 0x00). Every message
    must still be inflated; none may be delivered empty. Each one here is a
    stream of its own, so inflating needs no earlier window."""
    peer_param = "client_no_context_takeover" if role == "server" else \
        "server_no_context_takeover"
    conn = await make_deflate(role, negotiation(role, peer_param if peer_nct else ""))
    messages = [b"message %d" % i for i in range(3)]
    for msg in messages:
        c = zlib.compressobj(wbits=-15)
        conn.feed_frame(TEXT, c.compress(msg) + c.flush(zlib.Z_FINISH) + b"\x00", rsv=RSV1)
    assert [f.payload for f in conn.frames] == messages
    no_close(conn)


# -- RSV rules ----------------------------------------------------------------


async def test_rsv1_on_continuation_of_compressed_message_1002(dconn):
    payload = PeerDeflate().message(text_payload(500))
    dconn.feed_frame(TEXT, payload[:10], fin=False, rsv=RSV1)
    dconn.feed_frame(CONT, payload[10:], fin=True, rsv=RSV1)
    await dconn.expect_close(1002)
    assert [f.fin for f in dconn.frames] == [False]


async def test_rsv1_on_continuation_of_plain_message_1002(dconn):
    dconn.feed_frame(BINARY, b"a", fin=False)
    dconn.feed_frame(CONT, PeerDeflate().message(b"b"), fin=True, rsv=RSV1)
    await dconn.expect_close(1002)


@pytest.mark.parametrize("opcode, payload", [(PING, b"p"), (PONG, b"p"), (PING, b""),
                                             (CLOSE, close_payload(1000))],
                         ids=["ping", "pong", "empty-ping", "close"])
async def test_rsv1_on_control_frame_1002(dconn, opcode, payload):
    dconn.feed_frame(opcode, payload, rsv=RSV1)
    await dconn.expect_close(1002, delivered=[])


@pytest.mark.parametrize("rsv", [RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV3, RSV1 | RSV2 | RSV3],
                         ids=["rsv2", "rsv3", "rsv12", "rsv13", "all"])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_rsv2_rsv3_rejected_with_compression(dconn, rsv, opcode):
    dconn.feed_frame(opcode, PeerDeflate().message(b"data"), rsv=rsv)
    await dconn.expect_close(1002, delivered=[])


async def test_rsv1_without_negotiation_1002(make_deflate, role):
    # compression enabled here, but the peer did not offer / accept it
    conn = await make_deflate(role, None)
    assert conn.ws.extensions is None
    conn.feed_frame(TEXT, PeerDeflate().message(b"data"), rsv=RSV1)
    await conn.expect_close(1002, delivered=[])


async def test_rsv1_with_compression_disabled_1002(make_deflate, role):
    # the peer offers (server role) / answers (client role); we did not enable it
    if role == "server":
        conn = await make_deflate(role, PMD, enable_compression=False)
    else:
        conn = await make_deflate(role, None, enable_compression=False)
    assert conn.ws.extensions is None
    conn.feed_frame(BINARY, PeerDeflate().message(b"data"), rsv=RSV1)
    await conn.expect_close(1002)


# -- Corrupt data, limits, UTF-8 --------------------------------------------------


def far_back_reference() -> bytes:
    """Valid DEFLATE that refers to a preset dictionary the receiver lacks."""
    c = zlib.compressobj(wbits=-15, zdict=b"0123456789abcdefghij" * 4)
    out = c.compress(b"0123456789abcdefghij" * 2) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


@pytest.mark.parametrize("payload", [
    b"\x07",                            # BFINAL=1, BTYPE=11: reserved block type
    b"\x00\x05\x00\x00\x00hello",       # stored block, LEN and NLEN disagree
    b"\xff" * 16,
    far_back_reference(),
], ids=["reserved-btype", "stored-len", "ff", "distance-too-far"])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_corrupt_deflate_data_1007(dconn, payload, opcode):
    dconn.feed_frame(opcode, payload, rsv=RSV1)
    await dconn.expect_close(1007)
    assert data_frames(dconn) == []


async def test_corrupt_deflate_data_in_continuation_1007(dconn):
    payload = PeerDeflate().message(text_payload(2000))
    dconn.feed_frame(BINARY, payload[:20], fin=False, rsv=RSV1)
    dconn.feed_frame(CONT, b"\x07" * 8 + payload[20:], fin=True)
    await dconn.expect_close(1007)


async def test_deflate_bomb_1009(make_deflate, role):
    limit = 64 * 1024
    conn = await make_deflate(role, max_frame_size=limit)
    payload = PeerDeflate().message(bytes(10 * 1024 * 1024))
    assert len(payload) < limit  # the frame itself is small: only inflating shows it
    conn.feed_frame(BINARY, payload, rsv=RSV1)
    await conn.expect_close(1009)
    assert data_frames(conn) == []


async def test_deflate_bomb_in_continuation_1009(make_deflate, role):
    limit = 64 * 1024
    conn = await make_deflate(role, max_frame_size=limit)
    peer = PeerDeflate()
    first = peer.chunk(b"small")
    rest = peer.message(bytes(1024 * 1024))
    conn.feed_frame(BINARY, first, fin=False, rsv=RSV1)
    conn.feed_frame(CONT, rest, fin=True)
    await conn.expect_close(1009)
    assert [f.payload for f in conn.frames] == [b"small"]


@pytest.mark.parametrize("extra, ok", [(-1, True), (0, True), (1, False)],
                         ids=["below", "exact", "over"])
async def test_inflated_size_boundary(make_deflate, role, extra, ok):
    limit = 1000
    conn = await make_deflate(role, max_frame_size=limit)
    msg = text_payload(limit + extra)
    conn.feed_frame(TEXT, PeerDeflate().message(msg), rsv=RSV1)
    if ok:
        assert [f.payload for f in conn.frames] == [msg]
        no_close(conn)
    else:
        await conn.expect_close(1009, delivered=[])


async def test_largest_max_frame_size_inflates(make_deflate, role):
    # max_frame_size accepts up to 2**63 - 1 (api._check_common).
    conn = await make_deflate(role, max_frame_size=2 ** 63 - 1)
    conn.feed_frame(TEXT, PeerDeflate().message(b"hello"), rsv=RSV1)
    assert [f.payload for f in conn.frames] == [b"hello"]
    no_close(conn)


@pytest.mark.parametrize("msg", [b"\xff", b"ok \xc3\x28", b"a" * 1000 + b"\xed\xa0\x80",
                                 "✓".encode()[:2]],
                         ids=["ff", "bad-continuation", "surrogate", "truncated"])
async def test_compressed_text_invalid_utf8_1007(dconn, msg):
    dconn.feed_frame(TEXT, PeerDeflate().message(msg), rsv=RSV1)
    await dconn.expect_close(1007, delivered=[])


async def test_compressed_binary_not_utf8_checked(dconn):
    dconn.feed_frame(BINARY, PeerDeflate().message(b"\xff\xfe"), rsv=RSV1)
    assert [f.payload for f in dconn.frames] == [b"\xff\xfe"]
    no_close(dconn)


async def test_compressed_text_invalid_utf8_without_validation(make_deflate, role):
    conn = await make_deflate(role, enable_utf8_validation=False)
    conn.feed_frame(TEXT, PeerDeflate().message(b"\xff\xfe"), rsv=RSV1)
    assert [f.payload for f in conn.frames] == [b"\xff\xfe"]
    no_close(conn)


def utf8_fragments(parts: list[bytes]) -> list[bytes]:
    """Compressed fragments whose plain text splits exactly at ``parts``."""
    peer = PeerDeflate()
    out = [peer.chunk(p) for p in parts[:-1]]
    out.append(peer.message(parts[-1]))
    return out


async def feed_fragments(conn: Conn, opcode: int, fragments: list[bytes]) -> None:
    for i, payload in enumerate(fragments):
        conn.feed_frame(opcode if i == 0 else CONT, payload,
                        fin=i == len(fragments) - 1, rsv=RSV1 if i == 0 else 0)


async def test_utf8_split_across_compressed_fragments(dconn):
    text = "héllo ✓ 𝄞 wörld".encode()
    cut1 = text.index("é".encode()) + 1       # inside é
    cut2 = text.index("𝄞".encode()) + 2       # inside the 4-byte clef
    parts = [text[:cut1], text[cut1:cut2], text[cut2:]]
    await feed_fragments(dconn, TEXT, utf8_fragments(parts))
    assert b"".join(f.payload for f in dconn.frames) == text
    assert len(dconn.frames) == 3
    no_close(dconn)


async def test_invalid_utf8_in_later_compressed_fragment_1007(dconn):
    parts = [b"fine so far ", b"then \xc3", b"\x28 broken"]
    await feed_fragments(dconn, TEXT, utf8_fragments(parts))
    await dconn.expect_close(1007)


async def test_compressed_text_ends_inside_code_point_1007(dconn):
    parts = [b"ends in ", "✓".encode()[:2]]
    await feed_fragments(dconn, TEXT, utf8_fragments(parts))
    await dconn.expect_close(1007)


# --------------------------------------------------------------------------
# Sending


def one_compressed(conn: Conn, opcode: int):
    frames = conn.sent()
    assert len(frames) == 1, [(f.opcode, f.fin, f.rsv) for f in frames]
    f = frames[0]
    assert (f.opcode, f.fin, f.rsv) == (opcode, True, RSV1)
    conn.mark = len(conn.fake.data())
    return f


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65536, 1 << 20])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
async def test_send_compresses_whole_message(dconn, opcode, size):
    msg = text_payload(size) if opcode == TEXT else binary_data(size)
    dconn.ws.send(WSMsgType(opcode), msg)
    f = one_compressed(dconn, opcode)
    assert inflate(f.payload) == msg
    if opcode == TEXT and size >= 1000:
        assert len(f.payload) < size  # it did compress


@pytest.mark.parametrize("kind", ["str", "bytearray", "memoryview"])
async def test_send_compresses_any_buffer(dconn, kind):
    msg = "compress me, ✓ " * 20
    arg = {"str": msg, "bytearray": bytearray(msg.encode()),
           "memoryview": memoryview(msg.encode())}[kind]
    dconn.ws.send(WSMsgType.TEXT, arg)
    assert inflate(one_compressed(dconn, TEXT).payload) == msg.encode()


async def test_send_context_takeover(dconn):
    """Our compressor keeps its window (no *_no_context_takeover agreed): one
    decompressor must read every message, in order."""
    d = zlib.decompressobj(-15)
    msg = binary_data(8000)  # random: only a back reference can shrink it
    sizes = []
    for i in range(4):
        payload = msg if i % 2 == 0 else text_payload(100)
        dconn.ws.send(WSMsgType.BINARY, payload)
        f = one_compressed(dconn, BINARY)
        assert inflate(f.payload, d) == payload
        sizes.append(len(f.payload))
    assert sizes[2] < sizes[0] // 4  # the third message refers back to the first


async def test_send_no_context_takeover(make_deflate, role):
    conn = await make_deflate(role, negotiation(role, own(role, "no_context_takeover")))
    msg = binary_data(5000)  # random: a kept window would give back references
    for _ in range(3):
        conn.ws.send(WSMsgType.TEXT, msg)
        # Each message on its own, with a fresh decompressor (RFC 7692 7.1.1).
        assert inflate(one_compressed(conn, TEXT).payload) == msg


async def test_send_window_bits_8_uncompressed(make_deflate, role):
    conn = await make_deflate(role, negotiation(role, own(role, "max_window_bits=8")))
    msg = text_payload(3000)
    conn.ws.send(WSMsgType.TEXT, msg)
    conn.ws.send(WSMsgType.BINARY, b"")
    assert [(f.opcode, f.fin, f.rsv, f.payload) for f in conn.sent()] == [
        (TEXT, True, 0, msg), (BINARY, True, 0, b"")]
    # Receiving compressed messages is unaffected.
    conn.feed_frame(TEXT, PeerDeflate().message(msg), rsv=RSV1)
    assert [f.payload for f in conn.frames] == [msg]
    no_close(conn)


@pytest.mark.parametrize("bits", range(9, 15))
async def test_send_honours_max_window_bits(make_deflate, role, bits):
    conn = await make_deflate(role, negotiation(role, own(role, f"max_window_bits={bits}")))
    block = binary_data(20000)
    msg = block + block  # a 15-bit window would refer 20000 bytes back
    d = zlib.decompressobj(-bits)
    for _ in range(2):
        conn.ws.send(WSMsgType.BINARY, msg)
        # A decompressor limited to 2**bits bytes of history can read it.
        assert inflate(one_compressed(conn, BINARY).payload, d) == msg


async def test_send_fragments_uncompressed(dconn):
    ws = dconn.ws
    ws.send(WSMsgType.TEXT, b"abc", fin=False)
    ws.send(WSMsgType.PING, b"between")
    ws.send(WSMsgType.CONTINUATION, b"def", fin=False)
    ws.send(WSMsgType.CONTINUATION, b"ghi", fin=True)
    assert [(f.opcode, f.fin, f.rsv, f.payload) for f in dconn.sent()] == [
        (TEXT, False, 0, b"abc"), (PING, True, 0, b"between"),
        (CONT, False, 0, b"def"), (CONT, True, 0, b"ghi")]
    dconn.mark = len(dconn.fake.data())
    # The next whole message is compressed again.
    ws.send(WSMsgType.BINARY, b"whole")
    assert inflate(one_compressed(dconn, BINARY).payload) == b"whole"


async def test_send_rsv1_passes_through(dconn):
    precompressed = PeerDeflate().message(b"compressed by the user")
    dconn.ws.send(WSMsgType.TEXT, precompressed, rsv1=True)
    f = one_compressed(dconn, TEXT)
    assert f.payload == precompressed
    # fragmented and user-compressed: first frame RSV1, the rest as given
    dconn.ws.send(WSMsgType.BINARY, precompressed[:3], rsv1=True, fin=False)
    dconn.ws.send(WSMsgType.CONTINUATION, precompressed[3:], fin=True)
    assert [(f.opcode, f.fin, f.rsv, f.payload) for f in dconn.sent()] == [
        (BINARY, False, RSV1, precompressed[:3]), (CONT, True, 0, precompressed[3:])]


async def test_control_frames_never_compressed(dconn):
    ws = dconn.ws
    msg = b"x" * 100
    ws.send(WSMsgType.PING, msg)
    ws.send_ping(b"ping")
    ws.send_pong(b"pong")
    ws.send(WSMsgType.PONG, b"")
    dconn.feed_frame(PING, b"auto")
    ws.send_close(1000, b"bye")
    assert [(f.opcode, f.rsv, f.payload) for f in dconn.sent()] == [
        (PING, 0, msg), (PING, 0, b"ping"), (PONG, 0, b"pong"), (PONG, 0, b""),
        (PONG, 0, b"auto"), (CLOSE, 0, close_payload(1000, b"bye"))]
    assert dconn.sent()[-1].close_code == 1000


async def test_echo_round_trip_between_roles(make_deflate):
    """Our compressed output is valid input for our own inflater."""
    server = await make_deflate("server")
    client = await make_deflate("client")
    for msg in (b"", text_payload(10), text_payload(70000), binary_data(3000), text_payload(70000)):
        client.ws.send(WSMsgType.BINARY, msg)
        server.feed(client.written())
        client.mark = len(client.fake.data())
        server.ws.send(WSMsgType.BINARY, server.frames[-1].payload)
        client.feed(server.written())
        server.mark = len(server.fake.data())
        assert client.frames[-1].payload == msg
        assert client.frames[-1].rsv1 is False
    no_close(server)
    no_close(client)
