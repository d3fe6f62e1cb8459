"""WSFrame accessors, observed inside on_ws_frame for both roles.

A WSFrame is only valid during the callback, so every check below evaluates
inside the callback (``inspect``) and asserts afterwards on the copies.
"""
from __future__ import annotations

import dis
import platform
import sys

import pytest

from picows import WSCloseCode, WSFrame, WSMsgType

from tests.support import BINARY, CLOSE, CONT, PING, PONG, TEXT, build_frame, close_payload


MSG_TYPES = {TEXT: WSMsgType.TEXT, BINARY: WSMsgType.BINARY, PING: WSMsgType.PING,
             PONG: WSMsgType.PONG, CLOSE: WSMsgType.CLOSE}


def inspect(conn, fn):
    """Run ``fn(frame)`` inside on_ws_frame for every frame; return the results.

    An exception raised by ``fn`` is returned as the result, not raised into
    the library.
    """
    results = []

    def hook(transport, frame):
        try:
            results.append(fn(frame))
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            results.append(exc)

    conn.listener.on_frame = hook
    return results


def accessors(frame):
    return {
        "msg_type": frame.msg_type,
        "fin": frame.fin,
        "rsv1": frame.rsv1,
        "payload_size": frame.payload_size,
        "bytes": frame.get_payload_as_bytes(),
        "bytes_again": frame.get_payload_as_bytes(),
        "memoryview": (type(frame.get_payload_as_memoryview()),
                       bytes(frame.get_payload_as_memoryview())),
        "repr": repr(frame),
    }


@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING, PONG])
@pytest.mark.parametrize("payload", [b"", b"abc", b"x" * 125], ids=["empty", "3", "125"])
async def test_fields_every_type(make_conn, role, opcode, payload):
    conn = await make_conn(role, enable_auto_pong=False)
    results = inspect(conn, accessors)
    conn.feed_frame(opcode, payload)
    (got,) = results
    assert isinstance(got["msg_type"], WSMsgType)
    assert got["msg_type"] is MSG_TYPES[opcode]
    assert got["fin"] is True
    assert got["rsv1"] is False
    assert type(got["payload_size"]) is int
    assert got["payload_size"] == len(payload)
    assert got["bytes"] == payload and type(got["bytes"]) is bytes
    assert got["bytes_again"] == payload
    assert got["memoryview"] == (memoryview, payload)


@pytest.mark.parametrize("size", [126, 65535, 65536, 1 << 20])
async def test_large_payloads(conn, size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    results = inspect(conn, lambda f: (f.payload_size, f.get_payload_as_bytes(),
                                       bytes(f.get_payload_as_memoryview())))
    conn.feed_frame(BINARY, payload)
    assert results == [(size, payload, payload)]


@pytest.mark.parametrize("size", [126, 65536, 1 << 20])
async def test_large_text_payloads(conn, size):
    text = "".join(chr(0x20 + i % 90) for i in range(size))
    results = inspect(conn, lambda f: (f.msg_type, f.payload_size, f.get_payload_as_utf8_text(),
                                       f.get_payload_as_ascii_text()))
    conn.feed_frame(TEXT, text.encode())
    assert results == [(WSMsgType.TEXT, size, text, text)]


async def test_close_frame_fields(conn):
    results = inspect(conn, lambda f: (f.msg_type, f.fin, f.payload_size, f.get_close_code(),
                                       f.get_close_message(), f.get_payload_as_bytes()))
    conn.feed_frame(CLOSE, close_payload(1000, b"bye"))
    ((msg_type, fin, size, code, message, payload),) = results
    assert msg_type is WSMsgType.CLOSE and fin is True
    assert size == 5
    assert code == WSCloseCode.OK and isinstance(code, WSCloseCode)
    assert message == b"bye"
    assert payload == b"\x03\xe8bye"


async def test_close_frame_empty_is_no_info(conn):
    results = inspect(conn, lambda f: (f.get_close_code(), f.get_close_message(),
                                       f.payload_size))
    conn.feed_frame(CLOSE, b"")
    ((code, message, size),) = results
    assert code is WSCloseCode.NO_INFO
    assert message is None
    assert size == 0


async def test_close_frame_code_without_reason(conn):
    results = inspect(conn, lambda f: (f.get_close_code(), f.get_close_message()))
    conn.feed_frame(CLOSE, close_payload(1001))
    ((code, message),) = results
    assert code is WSCloseCode.GOING_AWAY
    assert message is None


async def test_close_frame_private_code(conn):
    results = inspect(conn, lambda f: (int(f.get_close_code()), f.get_close_message()))
    conn.feed_frame(CLOSE, close_payload(4321, "raison d'être".encode()))
    assert results == [(4321, "raison d'être".encode())]


@pytest.mark.parametrize("text", ["", "hello", "héllo wörld", "✓ 😀 中文", "a" * 1000])
async def test_utf8_text(conn, text):
    results = inspect(conn, lambda f: f.get_payload_as_utf8_text())
    conn.feed_frame(TEXT, text.encode())
    assert results == [text]
    assert type(results[0]) is str


@pytest.mark.parametrize("payload", [b"\xff", b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80",
                                     b"\xf4\x90\x80\x80", b"ok\x80ok"],
                         ids=["ff", "truncated", "overlong", "surrogate", "above-max",
                              "lone-continuation"])
async def test_utf8_text_invalid_raises(conn, payload):
    # Delivered as BINARY (a TEXT frame would be closed with 1007 first).
    results = inspect(conn, lambda f: f.get_payload_as_utf8_text())
    conn.feed_frame(BINARY, payload)
    (result,) = results
    assert isinstance(result, (UnicodeDecodeError, ValueError)), result
    assert not conn.fake.closing


async def test_utf8_text_invalid_raises_on_text_without_validation(make_conn, role):
    conn = await make_conn(role, enable_utf8_validation=False)
    results = inspect(conn, lambda f: f.get_payload_as_utf8_text())
    conn.feed_frame(TEXT, b"bad\xff")
    (result,) = results
    assert isinstance(result, (UnicodeDecodeError, ValueError)), result


@pytest.mark.parametrize("text", ["", "hello", "".join(chr(i) for i in range(128))])
async def test_ascii_text(conn, text):
    results = inspect(conn, lambda f: f.get_payload_as_ascii_text())
    conn.feed_frame(TEXT, text.encode("ascii"))
    assert results == [text]
    assert type(results[0]) is str


@pytest.mark.parametrize("payload", ["é".encode(), b"abc\x80", b"\xff", "中".encode()])
async def test_ascii_text_non_ascii_raises(conn, payload):
    results = inspect(conn, lambda f: f.get_payload_as_ascii_text())
    conn.feed_frame(BINARY, payload)
    (result,) = results
    assert isinstance(result, (UnicodeDecodeError, ValueError)), result


async def test_memoryview_is_zero_copy(client):
    """The memoryview points into the receive buffer: a change there shows through it."""
    payload = b"ZERO-COPY-MARKER-0123456789"
    data = build_frame(BINARY, payload)
    buf = memoryview(client.proto.get_buffer(len(data)))
    assert len(buf) >= len(data)
    buf[:len(data)] = data
    offset = bytes(buf[:len(data)]).find(payload)

    def check(frame):
        view = frame.get_payload_as_memoryview()
        before = bytes(view)
        buf[offset] = ord("z")  # poke the receive buffer under the frame
        after = bytes(view)
        copy = frame.get_payload_as_bytes()
        return before, after, copy, len(view), view.nbytes

    results = inspect(client, check)
    client.proto.buffer_updated(len(data))
    ((before, after, copy, length, nbytes),) = results
    assert before == payload
    assert after == b"z" + payload[1:], "get_payload_as_memoryview copied the payload"
    assert copy == after
    assert length == nbytes == len(payload)


async def test_memoryview_masked_payload_content(server):
    payload = bytes(range(256)) * 3 + b"tail"
    results = inspect(server, lambda f: bytes(f.get_payload_as_memoryview()))
    server.feed_frame(BINARY, payload)
    assert results == [payload]


def _single_shot(conn, data: bytes):
    buf = memoryview(conn.proto.get_buffer(len(data)))
    assert len(buf) >= len(data)
    buf[:len(data)] = data
    conn.proto.buffer_updated(len(data))


async def test_last_in_buffer_and_tail_size(conn):
    frames = [conn.peer_frame(BINARY, b"a" * 10), conn.peer_frame(TEXT, b"bb"),
              conn.peer_frame(BINARY, b"c" * 200)]
    results = inspect(conn, lambda f: (f.get_payload_as_bytes(), f.last_in_buffer, f.tail_size))
    _single_shot(conn, b"".join(frames))
    assert results == [
        (b"a" * 10, False, len(frames[1]) + len(frames[2])),
        (b"bb", False, len(frames[2])),
        (b"c" * 200, True, 0),
    ]


async def test_last_in_buffer_with_partial_frame_after(conn):
    f1 = conn.peer_frame(BINARY, b"one")
    f2 = conn.peer_frame(BINARY, b"two")
    f3 = conn.peer_frame(BINARY, b"three-is-incomplete")
    partial = f3[:7]
    results = inspect(conn, lambda f: (f.get_payload_as_bytes(), f.last_in_buffer, f.tail_size))
    _single_shot(conn, f1 + f2 + partial)
    assert results == [(b"one", False, len(f2) + len(partial)),
                       (b"two", True, len(partial))]
    _single_shot(conn, f3[7:])
    assert results[2] == (b"three-is-incomplete", True, 0)


@pytest.mark.parametrize("next_size", [5, 200, 70000], ids=["7bit", "16bit", "64bit"])
async def test_last_in_buffer_with_partial_header_after(make_conn, role, next_size):
    """Whatever prefix of the next frame follows (even part of its header or
    masking key), the complete frame before it is the last in the buffer."""
    for k in range(1, 20):
        conn = await make_conn(role)
        first = conn.peer_frame(BINARY, b"first")
        following = conn.peer_frame(BINARY, b"n" * next_size)
        if k >= len(following):
            break
        results = inspect(conn, lambda f: (f.get_payload_as_bytes(), f.last_in_buffer,
                                           f.tail_size))
        _single_shot(conn, first + following[:k])
        assert results == [(b"first", True, k)], f"{k} bytes of the next frame follow"


async def test_last_in_buffer_separate_feeds(conn):
    results = inspect(conn, lambda f: (f.last_in_buffer, f.tail_size))
    for i in range(3):
        _single_shot(conn, conn.peer_frame(BINARY, b"x" * i))
    assert results == [(True, 0)] * 3


async def test_fragmented_fields(conn):
    results = inspect(conn, lambda f: (f.msg_type, f.fin, f.get_payload_as_bytes()))
    conn.feed_frame(TEXT, b"he", fin=False)
    conn.feed_frame(CONT, b"ll", fin=False)
    conn.feed_frame(CONT, b"o", fin=True)
    assert results == [(WSMsgType.TEXT, False, b"he"), (WSMsgType.CONTINUATION, False, b"ll"),
                       (WSMsgType.CONTINUATION, True, b"o")]
    assert all(isinstance(r[0], WSMsgType) for r in results)


@pytest.mark.parametrize("opcode, name, payload", [
    (TEXT, "TEXT", b"t" * 1234),
    (BINARY, "BINARY", b"b" * 4321),
    (PING, "PING", b"p" * 123),
    (CLOSE, "CLOSE", b"\x03\xe8" + b"r" * 117),
], ids=["TEXT", "BINARY", "PING", "CLOSE"])
async def test_repr_mentions_type_and_size(make_conn, role, opcode, name, payload):
    conn = await make_conn(role, enable_auto_pong=False, enable_auto_close=False)
    results = inspect(conn, repr)
    conn.feed_frame(opcode, payload)
    (text,) = results
    assert isinstance(text, str), text
    assert name in text, text
    assert str(len(payload)) in text, text


async def test_frame_kept_by_the_listener_is_not_recycled(conn):
    """The library reuses the WSFrame object for the next frame only when the
    listener did not keep a reference to it."""
    kept = []
    seen = []

    def hook(transport, frame):
        seen.append((frame.msg_type, frame.payload_size, frame.fin))
        if len(seen) == 2:
            kept.append(frame)

    conn.listener.on_frame = hook
    conn.feed_frame(BINARY, b"a" * 10)
    conn.feed_frame(TEXT, b"b" * 20, fin=False)
    conn.feed_frame(CONT, b"c" * 30)
    conn.feed_frame(PING, b"d" * 40)
    assert seen == [(WSMsgType.BINARY, 10, True), (WSMsgType.TEXT, 20, False),
                    (WSMsgType.CONTINUATION, 30, True), (WSMsgType.PING, 40, True)]
    (frame,) = kept
    assert (frame.msg_type, frame.payload_size, frame.fin) == (WSMsgType.TEXT, 20, False)


def _read_msg_type(frame):
    for _ in range(100):
        msg_type = frame.msg_type
    return msg_type


def test_msg_type_is_a_read_only_slot():
    descr = WSFrame.__dict__["msg_type"]
    assert type(descr).__name__ == "member_descriptor"
    assert "WSMsgType" in descr.__doc__
    frame = WSFrame()
    assert frame.msg_type is WSMsgType.CONTINUATION
    with pytest.raises(AttributeError):
        frame.msg_type = WSMsgType.TEXT


async def test_msg_type_reads_are_specialized(make_conn, role):
    """frame.msg_type is a member slot, so CPython 3.11+ reads it inline
    (LOAD_ATTR_SLOT) instead of calling a property getter each time."""
    conn = await make_conn(role, enable_auto_pong=False)
    results = inspect(conn, _read_msg_type)
    for _ in range(3):
        conn.feed_frame(BINARY, b"abc")
    conn.feed_frame(TEXT, b"abc")
    assert results == [WSMsgType.BINARY] * 3 + [WSMsgType.TEXT]
    if platform.python_implementation() != "CPython" or sys.version_info < (3, 11):
        return
    ops = [ins.opname for ins in dis.get_instructions(_read_msg_type, adaptive=True)
           if ins.opname.startswith("LOAD_ATTR")]
    assert ops == ["LOAD_ATTR_SLOT"], ops
