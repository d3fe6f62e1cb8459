"""The frame builder (WSTransport.send*), checked against the test's own encoder."""
from __future__ import annotations

import pytest

from picows import WSCloseCode, WSMsgType

from tests.support import BINARY, CLOSE, CONT, PING, PONG, RSV1, TEXT, build_frame, decode_frames


LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]


def one_write(conn, action):
    """Run ``action()``; it must produce exactly one transport.write(); return the frame."""
    before = len(conn.fake.writes)
    action()
    new = conn.fake.writes[before:]
    assert len(new) == 1, f"{len(new)} writes for one frame"
    assert conn.fake.writelines_calls == 0
    (frame,) = decode_frames(new[0])
    assert frame.masked == conn.is_client, "client frames masked, server frames not"
    if conn.is_client:
        assert len(frame.mask) == 4
    return frame, new[0]


def reference(conn, frame, opcode, payload, fin=True, rsv=0):
    """The same frame from the independent encoder, with the mask the library chose."""
    return build_frame(opcode, payload, fin=fin, rsv=rsv,
                       mask=frame.mask if conn.is_client else None)


@pytest.mark.parametrize("length", LENGTHS)
async def test_binary_every_length(conn, length):
    payload = bytes((i * 31) & 0xFF for i in range(length))
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.BINARY, payload))
    assert raw == reference(conn, frame, BINARY, payload)
    assert (frame.fin, frame.rsv, frame.opcode, frame.payload) == (True, 0, BINARY, payload)
    expected_form = 0 if length <= 125 else 126 if length <= 65535 else 127
    assert frame.length_form == expected_form
    assert frame.header_len == 2 + {0: 0, 126: 2, 127: 8}[expected_form] + \
        (4 if conn.is_client else 0)


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
async def test_text_every_length(conn, length):
    payload = ("é" * (length // 2) + "a" * (length % 2)).encode()
    assert len(payload) == length
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.TEXT, payload))
    assert raw == reference(conn, frame, TEXT, payload)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview-slice"])
@pytest.mark.parametrize("length", [0, 7, 126, 65536])
async def test_accepts_bytes_like(conn, kind, length):
    payload = bytes((i * 13) & 0xFF for i in range(length))
    if kind == "bytes":
        message = payload
    elif kind == "bytearray":
        message = bytearray(payload)
    elif kind == "memoryview":
        message = memoryview(payload)
    else:
        message = memoryview(b"<<" + payload + b">>")[2:2 + length]
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.BINARY, message))
    assert frame.payload == payload
    assert raw == reference(conn, frame, BINARY, payload)


async def test_memoryview_of_wider_items_sends_its_bytes(conn):
    # send() reads a C-contiguous memoryview's memory directly: whatever its
    # format and shape, the payload is its bytes, as with the buffer protocol.
    import array
    items = array.array("i", range(50))
    message = memoryview(items).cast("B").cast("i", (5, 10))
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.BINARY, message))
    assert frame.payload == items.tobytes()
    assert raw == reference(conn, frame, BINARY, items.tobytes())


async def test_memoryview_not_contiguous_is_refused(conn):
    message = memoryview(b"abcdefgh")[::2]
    before = len(conn.fake.writes)
    with pytest.raises(BufferError):
        conn.ws.send(WSMsgType.BINARY, message)
    assert len(conn.fake.writes) == before


async def test_memoryview_released_is_refused(conn):
    message = memoryview(bytearray(b"payload"))
    message.release()
    before = len(conn.fake.writes)
    with pytest.raises(ValueError, match="released"):
        conn.ws.send(WSMsgType.BINARY, message)
    assert len(conn.fake.writes) == before


async def test_memoryview_control_frame_limit(conn):
    with pytest.raises(ValueError, match="125"):
        conn.ws.send(WSMsgType.PING, memoryview(b"x" * 126))
    frame, _ = one_write(conn, lambda: conn.ws.send(WSMsgType.PING, memoryview(b"x" * 125)))
    assert frame.payload == b"x" * 125


async def test_none_is_empty_payload(conn):
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.BINARY, None))
    assert frame.payload == b""
    assert raw == reference(conn, frame, BINARY, b"")


async def test_rsv1(conn):
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.BINARY, b"zz", True))
    assert frame.rsv == RSV1
    assert raw == reference(conn, frame, BINARY, b"zz", rsv=RSV1)
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.BINARY, b"zz", rsv1=False))
    assert frame.rsv == 0


async def test_fragmented_message(conn):
    parts = [(WSMsgType.TEXT, b"frag", False), (WSMsgType.CONTINUATION, b"men", False),
             (WSMsgType.CONTINUATION, b"ted", True)]
    frames = []
    for msg_type, payload, fin in parts:
        frame, raw = one_write(
            conn, lambda t=msg_type, p=payload, f=fin: conn.ws.send(t, p, fin=f))
        assert raw == reference(conn, frame, int(msg_type), payload, fin=fin)
        frames.append((frame.opcode, frame.fin, frame.payload))
    assert frames == [(TEXT, False, b"frag"), (CONT, False, b"men"), (CONT, True, b"ted")]


@pytest.mark.parametrize("method, opcode", [("send_ping", PING), ("send_pong", PONG)])
@pytest.mark.parametrize("message", [None, b"", b"x", b"p" * 125, bytearray(b"ba")])
async def test_ping_pong(conn, method, opcode, message):
    if message is None:
        frame, raw = one_write(conn, lambda: getattr(conn.ws, method)())
    else:
        frame, raw = one_write(conn, lambda: getattr(conn.ws, method)(message))
    payload = bytes(message or b"")
    assert (frame.opcode, frame.fin, frame.rsv, frame.payload) == (opcode, True, 0, payload)
    assert raw == reference(conn, frame, opcode, payload)


async def test_send_with_msg_type_ping(conn):
    frame, raw = one_write(conn, lambda: conn.ws.send(WSMsgType.PING, b"via send"))
    assert raw == reference(conn, frame, PING, b"via send")


async def test_close_default_is_empty(conn):
    frame, raw = one_write(conn, lambda: conn.ws.send_close())
    assert frame.opcode == CLOSE and frame.payload == b""
    assert raw == reference(conn, frame, CLOSE, b"")


async def test_close_no_info_is_empty(conn):
    frame, _ = one_write(conn, lambda: conn.ws.send_close(WSCloseCode.NO_INFO))
    assert frame.payload == b"", "code 0 must never be on the wire"


SENDABLE = [c for c in WSCloseCode if c not in (WSCloseCode.NO_INFO,
                                                  WSCloseCode.ABNORMAL_CLOSURE)]


@pytest.mark.parametrize("code", SENDABLE, ids=[c.name for c in SENDABLE])
async def test_close_every_code(conn, code):
    frame, raw = one_write(conn, lambda: conn.ws.send_close(code))
    assert frame.payload == int(code).to_bytes(2, "big")
    assert raw == reference(conn, frame, CLOSE, frame.payload)


@pytest.mark.parametrize("message", [b"bye", "très bien".encode(), b"r" * 123,
                                     bytearray(b"ba"), memoryview(b"mv")])
async def test_close_code_and_message(conn, message):
    frame, raw = one_write(conn, lambda: conn.ws.send_close(WSCloseCode.GOING_AWAY, message))
    assert frame.payload == b"\x03\xe9" + bytes(message)
    assert frame.close_code == 1001 and frame.close_reason == bytes(message)
    assert raw == reference(conn, frame, CLOSE, frame.payload)


async def test_close_keyword_arguments(conn):
    frame, _ = one_write(conn, lambda: conn.ws.send_close(close_code=WSCloseCode.OK,
                                                          close_message=b"done"))
    assert frame.payload == b"\x03\xe8done"


async def test_send_close_does_not_disconnect(conn):
    conn.ws.send_close(WSCloseCode.OK)
    assert not conn.fake.closing


async def test_many_sends_one_write_each(conn):
    for i in range(50):
        one_write(conn, lambda i=i: conn.ws.send(WSMsgType.BINARY, bytes([i]) * i))
    assert [f.payload for f in conn.sent()] == [bytes([i]) * i for i in range(50)]


async def test_large_frames_reuse_one_buffer_unless_the_transport_keeps_it(conn):
    # Through a transport (TLS here), frames of 64 KiB and more are assembled
    # in one bytearray reused from frame to frame: a fresh allocation of that
    # size costs page faults every time. A transport that keeps the object
    # (queued, not yet encrypted) must never see it change afterwards.
    fake = conn.fake
    big = [bytes([i]) * (1 << 17) for i in range(4)]
    conn.ws.send(WSMsgType.BINARY, big[0])
    conn.ws.send(WSMsgType.BINARY, big[1])
    first, second = fake.write_objects[-2:]
    assert first == second and first[1] is bytearray
    fake.retain = True
    conn.ws.send(WSMsgType.BINARY, big[2])
    conn.ws.send(WSMsgType.BINARY, big[3])
    assert len(fake.retained) == 2
    for data, snapshot in fake.retained:
        assert bytes(data) == snapshot, "a buffer the transport kept was overwritten"
    assert [f.payload for f in conn.sent()] == big
    # A small frame after the large ones is a plain bytes object.
    conn.ws.send(WSMsgType.BINARY, b"small")
    assert fake.write_objects[-1][1] is bytes
