"""Masking: client frames carry a fresh random mask, server frames none; the
server unmasks whatever the alignment of the chunks it receives."""
from __future__ import annotations

import pytest

from picows import WSCloseCode, WSMsgType

from tests.support import BINARY, CLOSE, PING, PONG, TEXT, build_frame, decode_frames


def sent_frames(conn):
    return decode_frames(conn.written())


async def test_client_masks_are_random(client):
    for _ in range(200):
        client.ws.send(WSMsgType.BINARY, b"same payload")
    frames = sent_frames(client)
    assert len(frames) == 200
    masks = [f.mask for f in frames]
    assert all(f.masked for f in frames)
    assert all(len(m) == 4 for m in masks)
    assert b"\x00\x00\x00\x00" not in masks
    assert len(set(masks)) == 200, "masking keys repeat"
    # payloads on the wire differ because the masks do, but decode the same
    assert len({f.raw for f in frames}) == 200
    assert {f.payload for f in frames} == {b"same payload"}


async def test_client_masks_stay_random_over_many_sends(client):
    """Enough sends to exhaust any pool of pre-generated masks several times."""
    for _ in range(5000):
        client.ws.send(WSMsgType.BINARY, b"")
    masks = [f.mask for f in sent_frames(client)]
    assert b"\x00\x00\x00\x00" not in masks
    # 5000 random 32-bit keys: a few birthday collisions at most
    assert len(set(masks)) >= 4990


async def test_client_mask_bytes_are_not_constant(client):
    for _ in range(64):
        client.ws.send(WSMsgType.BINARY, b"")
    masks = [f.mask for f in sent_frames(client)]
    for position in range(4):
        assert len({m[position] for m in masks}) > 8, f"mask byte {position} barely varies"


@pytest.mark.parametrize("length", list(range(21)) + [63, 64, 65, 127, 128, 129, 161, 1000,
                                                     4097, 65537])
async def test_client_masked_payload_decodes(client, length):
    payload = bytes((i * 37 + 11) & 0xFF for i in range(length))
    client.ws.send(WSMsgType.BINARY, payload)
    (frame,) = sent_frames(client)
    assert frame.masked
    assert frame.payload == payload
    assert frame.raw == build_frame(BINARY, payload, mask=frame.mask)


async def test_client_control_frames_masked(client):
    client.ws.send_ping(b"ping")
    client.ws.send_pong(b"pong")
    client.ws.send_close(WSCloseCode.OK, b"bye")
    frames = sent_frames(client)
    assert [(f.opcode, f.masked, f.payload) for f in frames] == [
        (PING, True, b"ping"), (PONG, True, b"pong"), (CLOSE, True, b"\x03\xe8bye")]


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview-of-bytearray"])
async def test_client_masking_does_not_modify_callers_buffer(client, kind):
    original = bytes(range(100))
    if kind == "bytes":
        message = bytes(original)
    elif kind == "bytearray":
        message = bytearray(original)
    else:
        message = memoryview(bytearray(original))
    client.ws.send(WSMsgType.BINARY, message)
    client.ws.send(WSMsgType.BINARY, message)
    assert bytes(message) == original
    assert [f.payload for f in sent_frames(client)] == [original, original]


async def test_server_frames_unmasked(server):
    server.ws.send(WSMsgType.TEXT, b"text")
    server.ws.send(WSMsgType.BINARY, b"x" * 70000)
    server.ws.send_ping(b"p")
    server.ws.send_pong(b"q")
    server.ws.send_close(WSCloseCode.OK)
    frames = sent_frames(server)
    assert [f.opcode for f in frames] == [TEXT, BINARY, PING, PONG, CLOSE]
    assert not any(f.masked for f in frames)
    assert frames[0].raw == b"\x81\x04text"


@pytest.mark.parametrize("mask", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04",
                                  b"\x80\x00\x00\x01"])
@pytest.mark.parametrize("length", list(range(18)) + [125, 126, 127, 128, 129, 161, 1000, 65536])
async def test_server_unmasks(server, mask, length):
    payload = bytes((i * 5 + 1) & 0xFF for i in range(length))
    server.feed(build_frame(BINARY, payload, mask=mask))
    assert [f.payload for f in server.frames] == [payload]


async def test_server_unmasks_split_at_every_offset(make_conn):
    payload = bytes(range(1, 51))
    data = build_frame(BINARY, payload, mask=b"\xa1\xb2\xc3\xd4")
    for i in range(1, len(data)):
        server = await make_conn("server")
        server.feed(data[:i])
        server.feed(data[i:])
        assert [f.payload for f in server.frames] == [payload], f"split at {i}"


async def test_server_unmasks_one_byte_at_a_time(server):
    payload = bytes(range(256)) * 2 + b"xyz"
    data = build_frame(BINARY, payload, mask=b"\x12\x34\x56\x78")
    for i in range(len(data)):
        server.feed(data[i:i + 1])
    assert [f.payload for f in server.frames] == [payload]


async def test_server_unmasks_each_frame_with_its_own_mask(server):
    masks = [bytes([i, i * 3 & 0xFF, i * 7 & 0xFF, 0x55]) for i in range(1, 20)]
    data = b"".join(build_frame(BINARY, b"payload-%d" % i, mask=m) for i, m in enumerate(masks))
    server.feed(data)
    assert [f.payload for f in server.frames] == [b"payload-%d" % i for i in range(len(masks))]
