"""Close codes: what a peer's CLOSE may carry, what picows answers, and how it
closes the connection in each role."""
from __future__ import annotations

import pytest

from picows import WSCloseCode, WSMsgType

from tests.support import CLOSE, close_payload, flush


API_CODES = {
    "NO_INFO": 0, "OK": 1000, "GOING_AWAY": 1001, "PROTOCOL_ERROR": 1002,
    "UNSUPPORTED_DATA": 1003, "ABNORMAL_CLOSURE": 1006, "INVALID_TEXT": 1007,
    "POLICY_VIOLATION": 1008, "MESSAGE_TOO_BIG": 1009, "MANDATORY_EXTENSION": 1010,
    "INTERNAL_ERROR": 1011, "SERVICE_RESTART": 1012, "TRY_AGAIN_LATER": 1013,
    "BAD_GATEWAY": 1014,
}

VALID_ON_WIRE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                 3000, 3001, 3999, 4000, 4001, 4999]
INVALID_ON_WIRE = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def test_close_code_enum_matches_api():
    assert {c.name: int(c) for c in WSCloseCode} == API_CODES
    assert all(isinstance(c, int) for c in WSCloseCode)


def test_msg_type_enum_matches_api():
    assert {t.name: int(t) for t in WSMsgType} == {
        "CONTINUATION": 0, "TEXT": 1, "BINARY": 2, "CLOSE": 8, "PING": 9, "PONG": 10}


async def check_auto_close(conn, expected_payload_code):
    """The reply carries the peer's code; the server closes, the client waits."""
    closes = conn.sent_closes()
    assert len(closes) == 1, [c.payload for c in closes]
    assert closes[0].close_code == expected_payload_code
    if expected_payload_code is None:
        assert closes[0].payload == b""
    if conn.is_client:
        await flush()
        assert not conn.fake.closing, "the client must wait for the server to close TCP"
        conn.fake.peer_close()
    await conn.wait_disconnected()
    assert conn.fake.lost
    assert conn.listener.disconnected_calls == 1


@pytest.mark.parametrize("code", VALID_ON_WIRE)
async def test_valid_code_delivered_and_echoed(conn, code):
    conn.feed_frame(CLOSE, close_payload(code, b"reason"))
    (frame,) = conn.frames
    assert frame.msg_type == WSMsgType.CLOSE
    assert int(frame.close_code) == code
    assert frame.close_message == b"reason"
    if code in API_CODES.values():
        assert isinstance(frame.close_code, WSCloseCode)
        assert frame.close_code is WSCloseCode(code)
    await check_auto_close(conn, code)


async def test_empty_close_answered_with_empty_close(conn):
    conn.feed_frame(CLOSE, b"")
    (frame,) = conn.frames
    assert frame.close_code is WSCloseCode.NO_INFO
    assert frame.close_message is None
    await check_auto_close(conn, None)


async def test_code_without_reason(conn):
    conn.feed_frame(CLOSE, close_payload(1000))
    (frame,) = conn.frames
    assert frame.close_code is WSCloseCode.OK
    assert frame.close_message is None
    await check_auto_close(conn, 1000)


@pytest.mark.parametrize("code", INVALID_ON_WIRE)
async def test_invalid_code_is_protocol_error(conn, code):
    conn.feed_frame(CLOSE, close_payload(code, b"x"))
    await conn.expect_close(1002)


@pytest.mark.parametrize("code", INVALID_ON_WIRE[:4])
async def test_invalid_code_without_reason_is_protocol_error(conn, code):
    conn.feed_frame(CLOSE, close_payload(code))
    await conn.expect_close(1002)


@pytest.mark.parametrize("payload", [b"\x03", b"\x00", b"\xff"])
async def test_one_byte_close_is_protocol_error(conn, payload):
    conn.feed_frame(CLOSE, payload)
    await conn.expect_close(1002)


@pytest.mark.parametrize("reason", [b"", b"ok", "très bien ✓ 😀".encode(),
                                    b"r" * 123])
async def test_valid_reason(conn, reason):
    conn.feed_frame(CLOSE, close_payload(1000, reason))
    (frame,) = conn.frames
    assert frame.close_message == (reason or None)
    await check_auto_close(conn, 1000)


@pytest.mark.parametrize("reason", [b"\xff", b"bad\x80", b"\xc3", b"\xed\xa0\x80",
                                    b"\xc0\xaf", "é".encode()[:1] + b"x"])
async def test_invalid_utf8_reason_is_1007(conn, reason):
    conn.feed_frame(CLOSE, close_payload(1000, reason))
    await conn.expect_close(1007)


async def test_reason_making_payload_over_125_is_protocol_error(conn):
    conn.feed_frame(CLOSE, close_payload(1000, b"r" * 124))
    await conn.expect_close(1002)


async def test_auto_close_off_sends_nothing(make_conn, role):
    conn = await make_conn(role, enable_auto_close=False)
    conn.feed_frame(CLOSE, close_payload(1000, b"bye"))
    assert [f.close_code for f in conn.frames] == [1000]
    await flush()
    assert conn.sent() == []
    assert not conn.fake.closing
    # the listener answers and disconnects itself
    conn.ws.send_close(WSCloseCode.OK)
    conn.ws.disconnect()
    await conn.wait_disconnected()
    assert [f.close_code for f in conn.sent_closes()] == [1000]


@pytest.mark.parametrize("own_code", [WSCloseCode.GOING_AWAY, WSCloseCode.NO_INFO])
async def test_listener_close_in_callback_not_duplicated(conn, own_code):
    def hook(transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(own_code, b"mine" if own_code else None)

    conn.listener.on_frame = hook
    conn.feed_frame(CLOSE, close_payload(1000, b"theirs"))
    closes = conn.sent_closes()
    assert len(closes) == 1, [c.payload for c in closes]
    if own_code == WSCloseCode.NO_INFO:
        assert closes[0].payload == b""
    else:
        assert closes[0].payload == close_payload(int(own_code), b"mine")
    if conn.is_client:
        conn.fake.peer_close()
    await conn.wait_disconnected()


async def test_listener_close_via_send_in_callback_not_duplicated(conn):
    """A CLOSE the listener sends with the generic send() is its own CLOSE too."""
    def hook(transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send(WSMsgType.CLOSE, close_payload(1001, b"mine"))

    conn.listener.on_frame = hook
    conn.feed_frame(CLOSE, close_payload(1000, b"theirs"))
    closes = conn.sent_closes()
    assert [c.payload for c in closes] == [close_payload(1001, b"mine")], \
        "auto close answered although the listener already sent a CLOSE"
    if conn.is_client:
        conn.fake.peer_close()
    await conn.wait_disconnected()


async def test_server_closes_transport_after_reply(server):
    server.feed_frame(CLOSE, close_payload(1001))
    assert [f.close_code for f in server.sent_closes()] == [1001]
    await server.wait_closed()


async def test_client_closes_itself_after_close_timeout(make_conn):
    client = await make_conn("client", close_timeout=0.05)
    client.feed_frame(CLOSE, close_payload(1000))
    assert [f.close_code for f in client.sent_closes()] == [1000]
    assert not client.fake.closing
    await client.wait_closed()


async def test_client_disconnected_when_server_closes_tcp(make_conn):
    client = await make_conn("client", close_timeout=30)
    client.feed_frame(CLOSE, close_payload(1000))
    client.fake.peer_close()
    await client.wait_disconnected()
    await flush()
    assert client.listener.disconnected_calls == 1


async def test_send_close_after_disconnect_does_nothing(conn):
    conn.fake.peer_close()
    await conn.wait_disconnected()
    before = len(conn.fake.writes)
    conn.ws.send_close(WSCloseCode.OK, b"late")  # documented: does nothing
    assert len(conn.fake.writes) == before


async def test_local_close_then_peer_close_reply_no_second_close(conn):
    """We initiated: the peer's CLOSE answers ours, we do not send another."""
    conn.ws.send_close(WSCloseCode.GOING_AWAY)
    conn.feed_frame(CLOSE, close_payload(1001))
    assert [f.close_code for f in conn.sent_closes()] == [1001]
    if conn.is_client:
        conn.fake.peer_close()
    await conn.wait_disconnected()
