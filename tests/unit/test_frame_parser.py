"""The frame parser: whole input, every split point, one byte at a time, length boundaries."""
from __future__ import annotations

import struct

import pytest

from tests.support import (BINARY, CLOSE, CONT, PING, PONG, TEXT, build_frame, build_header,
    close_payload, flush, next_mask)


# (opcode, payload, fin): a stream mixing sizes, types, a fragmented TEXT
# message split inside a code point with control frames interleaved, and a
# final CLOSE.
TEXT_MSG = "héllo ✓ wörld".encode()
STREAM = [
    (TEXT, b"hello", True),
    (BINARY, bytes(range(126)), True),
    (PING, b"ping!", True),
    (TEXT, TEXT_MSG[:2], False),        # ends inside the 2-byte "é"
    (PING, b"", True),
    (CONT, TEXT_MSG[2:9], False),       # ends inside the 3-byte check mark
    (PONG, b"unsolicited", True),
    (CONT, TEXT_MSG[9:], False),
    (CONT, b"", True),
    (BINARY, b"", True),
    (BINARY, b"\x00\xff" * 150, True),
    (TEXT, b"a" * 125, True),
    (CLOSE, close_payload(1000, b"done"), True),
]


def expected_keys():
    keys = []
    for opcode, payload, fin in STREAM:
        code = message = None
        if opcode == CLOSE:
            code, message = struct.unpack("!H", payload[:2])[0], payload[2:]
        keys.append((opcode, fin, False, payload, code, message))
    return keys


EXPECTED_REPLIES = [(PONG, b"ping!"), (PONG, b""), (CLOSE, 1000)]


def stream_bytes(role: str) -> bytes:
    masked = role == "server"
    return b"".join(build_frame(op, payload, fin=fin, mask=next_mask() if masked else None)
                    for op, payload, fin in STREAM)


def replies(conn):
    out = []
    for f in conn.sent():
        out.append((f.opcode, f.close_code if f.opcode == CLOSE else f.payload))
    return out


async def check_chunks(make_conn, role, chunks):
    conn = await make_conn(role)
    for chunk in chunks:
        conn.feed(chunk)
    assert [f.key() for f in conn.frames] == expected_keys()
    assert replies(conn) == EXPECTED_REPLIES
    return conn


async def test_stream_whole(make_conn, role):
    await check_chunks(make_conn, role, [stream_bytes(role)])


async def test_stream_split_at_every_offset(make_conn, role):
    data = stream_bytes(role)
    for i in range(1, len(data)):
        await check_chunks(make_conn, role, [data[:i], data[i:]])


async def test_stream_one_byte_at_a_time(make_conn, role):
    data = stream_bytes(role)
    await check_chunks(make_conn, role, [data[i:i + 1] for i in range(len(data))])


@pytest.mark.parametrize("chunk", [2, 3, 7, 64])
async def test_stream_fixed_chunks(make_conn, role, chunk):
    data = stream_bytes(role)
    await check_chunks(make_conn, role, [data[i:i + chunk] for i in range(0, len(data), chunk)])


async def test_one_byte_at_a_time_delivers_nothing_early(conn):
    frame = conn.peer_frame(BINARY, b"0123456789")
    for i in range(len(frame) - 1):
        conn.feed(frame[i:i + 1])
        assert conn.frames == []
    conn.feed(frame[-1:])
    assert [f.payload for f in conn.frames] == [b"0123456789"]


LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 65537]


@pytest.mark.parametrize("length", LENGTHS)
async def test_length_boundaries_whole(conn, length):
    payload = bytes(i & 0xFF for i in range(length))
    conn.feed_frame(BINARY, payload)
    assert [f.payload for f in conn.frames] == [payload]
    assert not conn.fake.closing


@pytest.mark.parametrize("length", LENGTHS)
async def test_length_boundaries_header_then_payload(conn, length):
    payload = bytes((i * 7) & 0xFF for i in range(length))
    header, mask = conn.peer_header(BINARY, length)
    body = payload if mask is None else build_frame(BINARY, payload, mask=mask)[len(header):]
    # the header alone, byte by byte, then the payload in two pieces
    for i in range(len(header)):
        conn.feed(header[i:i + 1])
    assert conn.frames == [] or length == 0
    half = len(body) // 2
    conn.feed(body[:half])
    conn.feed(body[half:])
    assert [f.payload for f in conn.frames] == [payload]


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
async def test_length_boundaries_header_encoding(conn, length):
    """The parser reads 7-bit, 16-bit and 64-bit length fields."""
    header, mask = conn.peer_header(BINARY, length)
    expected_header = 2 + (0 if length <= 125 else 2 if length <= 65535 else 8)
    assert len(header) == expected_header + (4 if mask else 0)
    payload = b"\x5a" * length
    conn.feed(build_frame(BINARY, payload, mask=mask))
    assert [len(f.payload) for f in conn.frames] == [length]


@pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1, (1 << 63) + 10])
async def test_length_top_bit_set_is_protocol_error(conn, length):
    header, _mask = conn.peer_header(BINARY, length, length_form=127)
    conn.feed(header)
    await conn.expect_close(1002, delivered=[])


async def test_many_frames_in_one_chunk(conn):
    payloads = [bytes([i % 256]) * (i % 200) for i in range(1000)]
    conn.feed(b"".join(conn.peer_frame(BINARY, p) for p in payloads))
    assert [f.payload for f in conn.frames] == payloads


async def test_large_frame_in_small_chunks(conn):
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = conn.peer_frame(BINARY, payload)
    for i in range(0, len(data), 4093):
        conn.feed(data[i:i + 4093])
    assert len(conn.frames) == 1
    assert conn.frames[0].payload == payload


async def test_frames_after_large_frame_in_same_chunk(conn):
    big = b"B" * 70000
    data = conn.peer_frame(BINARY, b"x") + conn.peer_frame(BINARY, big) + \
        conn.peer_frame(TEXT, b"after")
    conn.feed(data[:1000])
    conn.feed(data[1000:])
    assert [f.payload for f in conn.frames] == [b"x", big, b"after"]


async def test_nothing_delivered_after_protocol_error_in_same_chunk(conn):
    bad = conn.peer_frame(BINARY, b"bad", rsv=0x4)
    conn.feed(conn.peer_frame(TEXT, b"before") + bad + conn.peer_frame(TEXT, b"after"))
    await conn.expect_close(1002)
    assert [f.payload for f in conn.frames] == [b"before"]


async def test_nothing_delivered_after_disconnect(conn):
    conn.feed_frame(TEXT, b"one")
    conn.ws.disconnect()
    conn.feed_frame(TEXT, b"two")
    await conn.wait_disconnected()
    await flush()
    assert [f.payload for f in conn.frames] == [b"one"]


async def test_header_only_frame_waits_for_payload(conn):
    header, mask = conn.peer_header(TEXT, 10)
    conn.feed(header)
    assert conn.frames == [] and not conn.fake.closing
    body = b"0123456789"
    conn.feed(body if mask is None else build_frame(TEXT, body, mask=mask)[len(header):])
    assert [f.payload for f in conn.frames] == [body]


async def test_get_buffer_without_size_hint(conn):
    """asyncio's selector loop calls get_buffer(-1); any hint must give a usable buffer."""
    data = stream_bytes(conn.role)
    pos = 0
    hints = [-1, 0, 1, 5]
    i = 0
    while pos < len(data):
        buf = memoryview(conn.proto.get_buffer(hints[i % len(hints)]))
        i += 1
        assert len(buf) > 0
        n = min(len(buf), len(data) - pos, 3 + i % 11)
        buf[:n] = data[pos:pos + n]
        conn.proto.buffer_updated(n)
        pos += n
    assert [f.key() for f in conn.frames] == expected_keys()


async def test_buffer_grows_and_shrinks(conn):
    big = bytes(range(256)) * 4096  # 1 MiB
    small = [b"s%d" % i for i in range(100)]
    medium = b"M" * 300_000
    conn.feed(conn.peer_frame(BINARY, big))
    for p in small:
        conn.feed(conn.peer_frame(TEXT, p))
    data = conn.peer_frame(BINARY, medium) + conn.peer_frame(TEXT, b"last")
    for i in range(0, len(data), 65536):
        conn.feed(data[i:i + 65536])
    assert [f.payload for f in conn.frames] == [big, *small, medium, b"last"]


@pytest.mark.parametrize("size", [20_000, 100_000, 1 << 20])
async def test_buffer_offered_is_larger_than_the_rest_of_a_frame(conn, size):
    """The loop reads again when a read fills the buffer it was given, just
    to get EAGAIN: the window offered mid-frame must have room beyond the
    rest of the frame, for every frame, including after the buffer grew."""
    for _ in range(3):
        data = conn.peer_frame(BINARY, b"P" * size)
        pos = 0
        while pos < len(data):
            buf = memoryview(conn.proto.get_buffer(-1))
            if pos:
                assert len(buf) > len(data) - pos, (
                    f"window {len(buf)} for the last {len(data) - pos} bytes of a frame")
            n = min(len(buf), len(data) - pos, 16384 if pos == 0 else len(data))
            buf[:n] = data[pos:pos + n]
            conn.proto.buffer_updated(n)
            pos += n
    assert [len(f.payload) for f in conn.frames] == [size] * 3


def test_build_header_helper_is_sane():
    # the test's own encoder, cross-checked with RFC 6455 section 5.7 examples
    assert build_frame(TEXT, b"Hello") == b"\x81\x05\x48\x65\x6c\x6c\x6f"
    assert build_frame(TEXT, b"Hello", mask=b"\x37\xfa\x21\x3d") == \
        b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert build_frame(TEXT, b"Hel", fin=False) == b"\x01\x03\x48\x65\x6c"
    assert build_frame(CONT, b"lo") == b"\x80\x02\x6c\x6f"
    assert build_frame(PING, b"Hello") == b"\x89\x05\x48\x65\x6c\x6c\x6f"
    assert build_header(BINARY, 256) == b"\x82\x7e\x01\x00"
    assert build_header(BINARY, 65536) == b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
