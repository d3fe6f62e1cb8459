"""picows.websockets pieces without sockets: Headers, Close, exceptions,
limits, URIs, backoff, basic_auth, the upgrade adapter, and the
connection's receive path fed frames through a fake transport."""
from __future__ import annotations

import asyncio
import base64
import itertools
import re

import pytest

from picows.websockets import (Close, CloseCode, ConnectionClosedError, ConnectionClosedOK,
                               Headers, InvalidStatus, InvalidURI, MultipleValuesError,
                               Request, Response, basic_auth, process_exception)
from picows.websockets.asyncio import _upgrade
from picows.websockets.asyncio.client import _parse_uri, backoff
from picows.websockets.asyncio.connection import _parse_limits, parse_max_size
from picows.websockets.asyncio.server import ServerConnection, _origin_ok


# -- Headers ---------------------------------------------------------------------

def test_headers_case_insensitive_multidict():
    headers = Headers([("Set-Cookie", "a=1"), ("Host", "x")])
    headers["set-cookie"] = "b=2"
    assert headers["HOST"] == "x" and "host" in headers
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    with pytest.raises(MultipleValuesError):
        headers["Set-Cookie"]
    assert list(headers.raw_items())[0] == ("Set-Cookie", "a=1")
    assert str(headers).startswith("Set-Cookie: a=1\r\n")
    del headers["set-cookie"]
    assert "Set-Cookie" not in headers and len(headers) == 1
    assert headers.get("missing") is None
    copy = headers.copy()
    copy["X"] = "1"
    assert "X" not in headers
    assert Headers({"A": "1"}) == Headers([("a", "1")])
    assert Headers(Headers(A="1"))["a"] == "1"


# -- Close and exceptions --------------------------------------------------------

@pytest.mark.parametrize("close, text", [
    (Close(1000, ""), "1000 (OK)"),
    (Close(1001, "bye"), "1001 (going away) bye"),
    (Close(3001, ""), "3001 (registered)"),
    (Close(4000, "x"), "4000 (private use) x"),
    (Close(1234, ""), "1234 (unknown)"),
    (Close(1011, ""), "1011 (internal error)"),
])
def test_close_str(close, text):
    assert str(close) == text


def test_connection_closed_str_and_code():
    exc = ConnectionClosedOK(Close(1000, "a"), Close(1000, ""), True)
    assert str(exc) == "received 1000 (OK) a; then sent 1000 (OK)"
    assert exc.code == 1000 and exc.reason == "a"
    exc = ConnectionClosedError(None, None)
    assert str(exc) == "no close frame received or sent" and exc.code == 1006
    assert str(ConnectionClosedError(None, Close(1011, ""))) == \
        "sent 1011 (internal error); no close frame received"


def test_invalid_status_str():
    exc = InvalidStatus(Response(403, "Forbidden", Headers(), b""))
    assert str(exc) == "server rejected WebSocket connection: HTTP 403"


# -- limits ----------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (2 ** 20, (2 ** 20, 2 ** 20)),
    (None, (None, 2 ** 63 - 1)),
    ((1000, 100), (1000, 100)),
    ((1000, None), (1000, 1000)),
    ((None, 100), (None, 100)),
    ((100, 1000), (100, 100)),
])
def test_parse_max_size(value, expected):
    assert parse_max_size(value) == expected


@pytest.mark.parametrize("value, expected", [
    (16, (16, 4)), ((10, 2), (10, 2)), ((10, None), (10, 2)), (None, (None, None)),
    ((None, 3), (None, None)),
])
def test_parse_queue_limits(value, expected):
    assert _parse_limits(value, "max_queue") == expected


def test_parse_queue_limits_rejects_low_above_high():
    with pytest.raises(ValueError):
        _parse_limits((2, 10), "max_queue")


# -- client ----------------------------------------------------------------------

@pytest.mark.parametrize("uri", ["http://x/", "ws://", "ws://x/#frag", "ws://user@x/",
                                 "ws://x:port/"])
def test_parse_uri_rejects(uri):
    with pytest.raises(InvalidURI):
        _parse_uri(uri)


def test_parse_uri_credentials():
    assert _parse_uri("ws://us%40er:p%3Ass@host:8000/p?q=1") == (
        "ws://host:8000/p?q=1", ("us@er", "p:ss"))
    assert _parse_uri("wss://host/") == ("wss://host/", None)


def test_backoff():
    delays = list(itertools.islice(backoff(1.0, 2.0, 10.0, 2.0), 6))
    assert 0 <= delays[0] <= 1.0
    assert delays[1:] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_process_exception():
    assert process_exception(OSError()) is None
    assert process_exception(TimeoutError()) is None
    assert process_exception(InvalidStatus(Response(503, "", Headers()))) is None
    exc = InvalidStatus(Response(403, "", Headers()))
    assert process_exception(exc) is exc
    other = ValueError()
    assert process_exception(other) is other


# -- server ----------------------------------------------------------------------

class FakeServer:
    pass


def make_server_connection():
    return ServerConnection.__new__(ServerConnection)


def auth_request(value=None):
    headers = Headers()
    if value is not None:
        headers["Authorization"] = value
    return Request("/", headers)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_basic_auth_credentials():
    check = basic_auth(realm="my realm", credentials=[("a", "1"), ("b", "2")])
    conn = ServerConnection(FakeServer())
    assert check(conn, auth_request(basic("b", "2"))) is None
    assert conn.username == "b"
    for value in [None, basic("b", "3"), basic("c", "2"), "Bearer x", "Basic !!!"]:
        response = check(conn, auth_request(value))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="my realm", charset="UTF-8"'


async def test_basic_auth_check_credentials():
    check = basic_auth(check_credentials=lambda user, password: password == user[::-1])
    conn = ServerConnection(FakeServer())
    assert check(conn, auth_request(basic("abc", "cba"))) is None
    assert check(conn, auth_request(basic("abc", "abc"))).status_code == 401


def test_basic_auth_arguments():
    with pytest.raises(TypeError):
        basic_auth()
    with pytest.raises(TypeError):
        basic_auth(credentials=("a", "b"), check_credentials=lambda u, p: True)
    with pytest.raises(TypeError):
        basic_auth(credentials=["nope"])


async def test_respond():
    response = ServerConnection(FakeServer()).respond(404, "gone\n")
    assert (response.status_code, response.reason_phrase, response.body) == (
        404, "Not Found", b"gone\n")
    assert response.headers["Content-Length"] == "5"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_origin_ok():
    origins = ["https://a.example", re.compile(r"https://.*\.b\.example"), None]
    assert _origin_ok("https://a.example", origins)
    assert _origin_ok("https://x.b.example", origins)
    assert _origin_ok(None, origins)
    assert not _origin_ok("https://evil.example", origins)
    assert not _origin_ok(None, ["https://a.example"])


# -- the upgrade adapter -----------------------------------------------------------

def test_adapter_101_keeps_extra_headers():
    listener = ServerConnection.__new__(ServerConnection)
    headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade"),
                       ("Sec-WebSocket-Accept", "x"), ("Sec-WebSocket-Protocol", "chat"),
                       ("Set-Cookie", "a=1")])
    result = _upgrade.to_core_response(Response(101, "", headers), listener)
    assert result.listener is listener
    assert int(result.response.status) == 101
    assert result.response.headers["sec-websocket-protocol"] == "chat"
    assert result.response.headers["set-cookie"] == "a=1"
    assert "sec-websocket-accept" not in result.response.headers


@pytest.mark.parametrize("status, headers, body, expected", [
    (403, [("X", "1")], b"no\n", 403),
    (302, [("Location", "/b")], b"", 302),
    (200, [], b"up", 200),
    (302, [], b"", 500),  # a redirect without Location cannot be sent
])
def test_adapter_other_responses(status, headers, body, expected):
    listener = ServerConnection.__new__(ServerConnection)
    result = _upgrade.to_core_response(
        Response(status, "", Headers([("Content-Length", str(len(body)))] + headers), body),
        listener)
    assert result.listener is None
    assert int(result.response.status) == expected
    assert (result.response.body or b"") == body
    for name, value in headers:
        assert result.response.headers[name] == value


def test_close_code_names():
    assert CloseCode.NORMAL_CLOSURE == 1000 and CloseCode.INVALID_DATA == 1007


# -- the receive path, fed through a fake transport ------------------------------

async def open_client(**kwargs):
    """A ClientConnection on a WSProtocol past the handshake, on a FakeTransport."""
    from tests.support import CLIENT_KEY, FakeTransport, feed, new_protocol, switching_response

    from picows.handshake import build_upgrade_request
    from picows.websockets import ClientConnection

    frame_limit = parse_max_size(kwargs.get("max_size", 2 ** 20))[1]
    conn = ClientConnection(ping_interval=None, **kwargs)
    fake = FakeTransport()
    proto = new_protocol(True, lambda: conn, max_frame_size=frame_limit,
                         upgrade_request=build_upgrade_request("example.com", "/", CLIENT_KEY),
                         client_key=CLIENT_KEY)
    fake.proto = proto
    proto.connection_made(fake)
    feed(proto, switching_response(CLIENT_KEY))
    await proto.handshake_future
    return conn, proto, fake


def whole_and_bytewise(data: bytes):
    return [[data], [data[i:i + 1] for i in range(len(data))]]


@pytest.mark.parametrize("split", [0, 1], ids=["whole", "bytewise"])
async def test_fragments_reassembled(split):
    from tests.support import BINARY, CONT, TEXT, build_frame, feed

    conn, proto, fake = await open_client()
    wire = (build_frame(TEXT, "h\xe9".encode()[:2], fin=False)
            + build_frame(CONT, "h\xe9".encode()[2:] + b"llo", fin=True)
            + build_frame(BINARY, b"\x00", fin=False) + build_frame(CONT, b"", fin=False)
            + build_frame(CONT, b"\x01", fin=True)
            + build_frame(TEXT, b"plain"))
    for chunk in whole_and_bytewise(wire)[split]:
        feed(proto, chunk)
    assert await conn.recv() == "h\xe9llo"
    assert await conn.recv() == b"\x00\x01"
    assert await conn.recv(decode=False) == b"plain"
    assert conn._frames == 0
    fake.peer_close()


async def test_max_size_counts_the_whole_message():
    from tests.support import CONT, TEXT, build_frame, decode_frames, feed

    conn, proto, fake = await open_client(max_size=10)
    mark = len(fake.data())
    feed(proto, build_frame(TEXT, b"123456", fin=False) + build_frame(CONT, b"78901", fin=True))
    (close,) = decode_frames(fake.data()[mark:])
    assert close.close_code == 1009
    assert fake.closing
    fake.peer_close()
    with pytest.raises(ConnectionClosedError) as raised:
        await conn.recv()
    assert raised.value.sent.code == 1009 and raised.value.rcvd is None


async def test_max_queue_pauses_the_transport():
    from tests.support import CONT, TEXT, build_frame, feed

    conn, proto, fake = await open_client(max_queue=(4, 1))
    feed(proto, b"".join(build_frame(TEXT, str(i).encode()) for i in range(3)))
    assert fake.is_reading()
    # A fragmented message counts a frame per fragment.
    feed(proto, build_frame(TEXT, b"a", fin=False) + build_frame(CONT, b"b", fin=True))
    assert not fake.is_reading()
    for expected in ["0", "1", "2"]:
        assert await conn.recv() == expected
        assert not fake.is_reading()
    assert await conn.recv() == "ab"
    assert fake.is_reading()
    fake.peer_close()


async def test_close_frame_details():
    from tests.support import CLOSE, build_frame, close_payload, feed

    conn, proto, fake = await open_client()
    feed(proto, build_frame(CLOSE, close_payload(1001, "gone".encode())))
    fake.peer_close()
    with pytest.raises(ConnectionClosedOK) as raised:
        await conn.recv()
    assert raised.value.rcvd == Close(1001, "gone")
    assert raised.value.sent == Close(1001, "")
    assert raised.value.rcvd_then_sent is True


async def test_protocol_error_is_connection_closed_error_with_sent_code():
    from tests.support import feed

    conn, proto, fake = await open_client()
    feed(proto, b"\x83\x00")  # reserved opcode 3
    fake.peer_close()
    with pytest.raises(ConnectionClosedError) as raised:
        await conn.recv()
    assert raised.value.sent.code == 1002


# -- a waiting recv() takes the message from on_ws_frame -------------------------

async def park(coro_factory, conn):
    """Start a receiving task and let it park its future."""
    task = asyncio.ensure_future(coro_factory())
    while conn._waiter is None:
        await asyncio.sleep(0)
    return task


@pytest.mark.parametrize("decode, sent, expected", [
    (None, b"text", "text"), (False, b"text", b"text"), (True, b"text", "text"),
])
async def test_waiting_recv_gets_the_message_handed_over(decode, sent, expected):
    from tests.support import TEXT, build_frame, feed

    conn, proto, fake = await open_client()
    task = await park(lambda: conn.recv(decode), conn)
    waiter = conn._waiter
    feed(proto, build_frame(TEXT, sent))
    # Resolved with the message itself: nothing went through the buffer.
    assert waiter.result() == sent.decode()
    assert len(conn._messages) == 0 and conn._frames == 0
    assert await task == expected
    fake.peer_close()


async def test_binary_handed_over_and_decoded():
    from tests.support import BINARY, build_frame, feed

    conn, proto, fake = await open_client()
    task = await park(lambda: conn.recv(decode=True), conn)
    feed(proto, build_frame(BINARY, "h\xe9".encode()))
    assert await task == "h\xe9"
    fake.peer_close()


@pytest.mark.parametrize("receiver", ["recv", "anext"])
async def test_recv_cancelled_after_the_hand_over_keeps_the_message(receiver):
    from tests.support import TEXT, build_frame, feed

    conn, proto, fake = await open_client()
    task = await park(conn.recv if receiver == "recv" else conn.__anext__, conn)
    # The message arrives and the task is cancelled before it runs again:
    # the message was handed over, the recv() does not return it.
    feed(proto, build_frame(TEXT, b"first") + build_frame(TEXT, b"second"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(conn._messages) == ["first", "second"] and conn._frames == 2
    assert await conn.recv() == "first"
    assert await conn.recv() == "second"
    assert conn._frames == 0
    fake.peer_close()


async def test_recv_cancelled_before_a_message_buffers_the_next():
    from tests.support import TEXT, build_frame, feed

    conn, proto, fake = await open_client()
    task = await park(conn.recv, conn)
    task.cancel()
    # Cancelled, not yet resumed: the next message finds a cancelled future.
    feed(proto, build_frame(TEXT, b"kept"))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await conn.recv() == "kept"
    fake.peer_close()


async def test_recv_streaming_waiting_gets_a_whole_message():
    from tests.support import TEXT, build_frame, feed

    conn, proto, fake = await open_client()

    async def stream():
        return [chunk async for chunk in conn.recv_streaming()]

    task = await park(stream, conn)
    feed(proto, build_frame(TEXT, b"whole"))
    assert await task == ["whole"]
    assert conn._frames == 0 and not conn._messages
    fake.peer_close()


async def test_async_for_gets_messages_handed_over_and_buffered():
    from tests.support import BINARY, CLOSE, TEXT, build_frame, close_payload, feed

    conn, proto, fake = await open_client()

    async def collect():
        return [message async for message in conn]

    task = await park(collect, conn)
    feed(proto, build_frame(TEXT, b"one"))
    while conn._waiter is None:
        await asyncio.sleep(0)
    feed(proto, build_frame(BINARY, b"two") + build_frame(TEXT, b"three")
         + build_frame(CLOSE, close_payload(1000, b"")))
    fake.peer_close()
    assert await task == ["one", b"two", "three"]
