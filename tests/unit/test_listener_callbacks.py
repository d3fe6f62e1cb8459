"""Listener callbacks: auto pong, auto close, listener exceptions, and
on_ws_disconnected exactly once on every path."""
from __future__ import annotations

import asyncio

import pytest

from picows import WSCloseCode, WSMsgType

from tests.support import (BINARY, CLOSE, PING, PONG, SERVER_KEY, TEXT, WAIT, RecordingListener,
    build_frame, close_payload, feed, flush, start_protocol, upgrade_request)


# --------------------------------------------------------------------------
# auto pong


@pytest.mark.parametrize("payload", [b"", b"ping", b"\x00\xff" * 62 + b"!"])
async def test_auto_pong_same_payload_after_callback(conn, payload):
    writes_in_callback = []
    conn.listener.on_frame = lambda t, f: writes_in_callback.append(len(conn.written()))
    conn.feed_frame(PING, payload)
    assert [(int(f.msg_type), f.payload) for f in conn.frames] == [(PING, payload)]
    assert writes_in_callback == [0], "the PONG must be sent after on_ws_frame returns"
    assert [(f.opcode, f.payload) for f in conn.sent()] == [(PONG, payload)]


async def test_auto_pong_several_pings_in_one_chunk(conn):
    conn.feed(b"".join(conn.peer_frame(PING, b"%d" % i) for i in range(5)))
    assert [(f.opcode, f.payload) for f in conn.sent()] == [(PONG, b"%d" % i) for i in range(5)]


@pytest.mark.parametrize("own", [b"same", b"different", None])
async def test_listener_pong_in_callback_not_duplicated(conn, own):
    def hook(transport, frame):
        if frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes() if own == b"same" else own)

    conn.listener.on_frame = hook
    conn.feed_frame(PING, b"same")
    pongs = [f for f in conn.sent() if f.opcode == PONG]
    assert len(pongs) == 1, [p.payload for p in pongs]
    assert pongs[0].payload == (own or b"")
    # the next PING without a listener PONG is answered automatically again
    conn.listener.on_frame = None
    conn.feed_frame(PING, b"again")
    assert [f.payload for f in conn.sent() if f.opcode == PONG][1:] == [b"again"]


async def test_auto_pong_off(make_conn, role):
    conn = await make_conn(role, enable_auto_pong=False)
    conn.feed_frame(PING, b"ping")
    assert [f.payload for f in conn.frames] == [b"ping"]
    await flush()
    assert conn.sent() == []


async def test_pong_not_answered(conn):
    conn.feed_frame(PONG, b"pong")
    assert [int(f.msg_type) for f in conn.frames] == [PONG]
    assert conn.sent() == []


async def test_echo_from_callback(conn):
    conn.listener.on_frame = lambda t, f: t.send(f.msg_type, f.get_payload_as_bytes())
    conn.feed_frame(TEXT, b"echo me")
    conn.feed_frame(BINARY, b"\x00\x01")
    assert [(f.opcode, f.payload) for f in conn.sent()] == [(TEXT, b"echo me"),
                                                            (BINARY, b"\x00\x01")]


async def test_same_transport_object_everywhere(conn):
    conn.feed_frame(TEXT, b"a")
    conn.feed_frame(TEXT, b"b")
    conn.fake.peer_close()
    await conn.wait_disconnected()
    ws = conn.ws
    assert (conn.listener.connected_calls, conn.listener.transport) == (1, ws)
    assert all(t is ws for t in conn.listener.frame_transports)
    assert conn.listener.disconnected.result() is ws


# --------------------------------------------------------------------------
# listener exceptions


class Boom(Exception):
    pass


def raise_on(payload):
    def hook(transport, frame):
        if frame.get_payload_as_bytes() == payload:
            raise Boom("listener failed")
    return hook


async def test_exception_default_closes_1011(conn):
    conn.listener.on_frame = raise_on(b"boom")
    conn.feed(conn.peer_frame(TEXT, b"ok") + conn.peer_frame(TEXT, b"boom") +
              conn.peer_frame(TEXT, b"after"))
    await conn.expect_close(1011)
    assert [f.payload for f in conn.frames] == [b"ok", b"boom"]


async def test_exception_explicit_true_closes_1011(make_conn, role):
    conn = await make_conn(role, disconnect_on_exception=True)
    conn.listener.on_frame = raise_on(b"boom")
    conn.feed_frame(BINARY, b"boom")
    await conn.expect_close(1011)


async def test_exception_not_disconnecting(make_conn, role):
    conn = await make_conn(role, disconnect_on_exception=False)
    conn.listener.on_frame = raise_on(b"boom")
    conn.feed(conn.peer_frame(TEXT, b"boom") + conn.peer_frame(TEXT, b"after"))
    conn.feed_frame(BINARY, b"boom")
    conn.feed_frame(PING, b"still alive")
    assert [f.payload for f in conn.frames] == [b"boom", b"after", b"boom", b"still alive"]
    assert [(f.opcode, f.payload) for f in conn.sent()] == [(PONG, b"still alive")]
    await flush()
    assert not conn.fake.closing
    assert conn.listener.disconnected_calls == 0


async def test_exception_on_ping_still_closes(conn):
    conn.listener.on_frame = raise_on(b"p")
    conn.feed_frame(PING, b"p")
    await conn.expect_close(1011)


async def test_exception_in_on_ws_connected_disconnects():
    listener = RecordingListener()

    def fail(transport):
        raise Boom("connected failed")

    listener.on_connected = fail
    proto, fake, _ = start_protocol(False, listener)
    feed(proto, upgrade_request(SERVER_KEY))
    if not fake.closing:  # the client answers the server's CLOSE, if any
        feed(proto, build_frame(CLOSE, close_payload(1011), mask=b"\x01\x02\x03\x04"))
    await fake.wait_lost()
    await listener.wait_disconnected(WAIT)
    await flush()
    assert listener.disconnected_calls == 1


# --------------------------------------------------------------------------
# on_ws_disconnected exactly once, on every path


async def settle_and_count(conn):
    await conn.wait_disconnected()
    await flush(10)
    assert conn.listener.disconnected_calls == 1
    assert conn.fake.lost


async def test_once_peer_closes_tcp(conn):
    conn.fake.peer_close()
    await settle_and_count(conn)


async def test_once_peer_eof(make_conn, role):
    conn = await make_conn(role, eof_capable=True)
    conn.fake.peer_eof()
    await settle_and_count(conn)


async def test_once_peer_reset(conn):
    conn.fake.peer_close(ConnectionResetError("reset by peer"))
    await settle_and_count(conn)


async def test_once_local_disconnect_called_twice(conn):
    conn.ws.disconnect()
    conn.ws.disconnect()
    await settle_and_count(conn)
    conn.ws.disconnect()  # after the end: still a no-op
    await flush()
    assert conn.listener.disconnected_calls == 1


async def test_once_local_disconnect_then_peer_close(conn):
    conn.ws.disconnect()
    conn.fake.peer_close()
    await settle_and_count(conn)


async def test_once_protocol_error(conn):
    conn.feed_frame(13, b"")  # reserved opcode
    await conn.expect_close(1002)
    await settle_and_count(conn)


async def test_once_protocol_error_then_peer_close(conn):
    conn.feed_frame(TEXT, b"\xff")
    conn.fake.peer_close()
    await settle_and_count(conn)


async def test_once_listener_exception(conn):
    conn.listener.on_frame = raise_on(b"x")
    conn.feed_frame(TEXT, b"x")
    await conn.expect_close(1011)
    await settle_and_count(conn)


@pytest.mark.parametrize("eof_capable", [False, True])
async def test_listener_exception_shuts_our_side_at_once(make_conn, role, eof_capable):
    """A listener exception sends CLOSE 1011 and then closes the transport, or
    half-closes it where it can; the default close_timeout (5 s) is not what
    shuts our side."""
    conn = await make_conn(role, eof_capable=eof_capable)
    conn.listener.on_frame = raise_on(b"x")
    conn.feed_frame(TEXT, b"x")
    assert [c.close_code for c in conn.sent_closes()] == [1011]
    assert conn.fake.closing or conn.fake.eof_written
    if not eof_capable:
        await conn.fake.wait_lost(timeout=1.0)


async def test_listener_exception_ends_within_close_timeout(make_conn, role):
    conn = await make_conn(role, close_timeout=0.05)
    conn.listener.on_frame = raise_on(b"x")
    conn.feed_frame(TEXT, b"x")
    await settle_and_count(conn)


async def test_once_auto_close(conn):
    conn.feed_frame(CLOSE, close_payload(1000))
    if conn.is_client:
        conn.fake.peer_close()
    await settle_and_count(conn)


async def test_once_client_close_timeout(make_conn):
    conn = await make_conn("client", close_timeout=0.02)
    conn.feed_frame(CLOSE, close_payload(1000))
    await settle_and_count(conn)


async def test_once_local_close_frame_then_peer_reply(conn):
    conn.ws.send_close(WSCloseCode.OK)
    conn.feed_frame(CLOSE, close_payload(1000))
    if conn.is_client:
        conn.fake.peer_close()
    await settle_and_count(conn)


async def test_once_disconnect_from_inside_callback(conn):
    def hook(transport, frame):
        transport.disconnect()
        transport.disconnect()

    conn.listener.on_frame = hook
    conn.feed(conn.peer_frame(TEXT, b"one") + conn.peer_frame(TEXT, b"two"))
    await settle_and_count(conn)
    assert [f.payload for f in conn.frames] == [b"one"], "no data after disconnect()"


async def test_wait_disconnected_completes(conn):
    waiter = asyncio.ensure_future(conn.ws.wait_disconnected())
    await flush()
    assert not waiter.done()
    conn.fake.peer_close()
    await asyncio.wait_for(waiter, WAIT)
    assert conn.listener.disconnected_calls == 1
    # and returns at once when already disconnected
    await asyncio.wait_for(conn.ws.wait_disconnected(), WAIT)
