"""The HTTP upgrade handshake: picows.handshake directly, then through WSProtocol."""
from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from picows import WSError, WSMsgType, handshake
from picows.types import WSHandshakeError, WSUpgradeRequest

from tests.support import (BINARY, CLIENT_KEY, SERVER_KEY, TEXT, WAIT, RecordingListener,
    build_frame, expected_accept, feed, flush, start_protocol, switching_response, upgrade_request)


GOOD_HEADERS = [
    (b"Host", b"example.com"),
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Key", SERVER_KEY.encode()),
    (b"Sec-WebSocket-Version", b"13"),
]


def make_request(*, start: bytes = b"GET /ws HTTP/1.1", drop=(), replace=None,
                 extra=()) -> bytes:
    """A request head built from GOOD_HEADERS, minus ``drop``, with ``replace``d values."""
    replace = replace or {}
    lines = [start]
    for name, value in GOOD_HEADERS:
        if name.lower() in [d.lower() for d in drop]:
            continue
        lines.append(name + b": " + replace.get(name, value))
    lines.extend(name + b": " + value for name, value in extra)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def headers_of(err) -> dict:
    return {str(k).lower(): str(v) for k, v in dict(getattr(err, "headers", None) or {}).items()}


def status_of(err) -> int:
    return int(err.status)


# --------------------------------------------------------------------------
# accept key


def test_accept_key_rfc_example():
    # RFC 6455 section 1.3 example value.
    assert handshake.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert handshake.accept_key(CLIENT_KEY) == expected_accept(CLIENT_KEY)


def test_new_client_key_is_16_random_bytes():
    import base64
    keys = {handshake.new_client_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


# --------------------------------------------------------------------------
# parse_upgrade_request: the validation table


ACCEPTED = {
    "base": make_request(),
    "upgrade-mixed-case": make_request(replace={b"Upgrade": b"WebSocket"}),
    "upgrade-upper-case": make_request(replace={b"Upgrade": b"WEBSOCKET"}),
    "connection-keep-alive-upgrade": make_request(replace={b"Connection": b"keep-alive, Upgrade"}),
    "connection-upgrade-keep-alive": make_request(replace={b"Connection": b"Upgrade, keep-alive"}),
    "connection-lowercase": make_request(replace={b"Connection": b"upgrade"}),
    "connection-no-space": make_request(replace={b"Connection": b"keep-alive,upgrade"}),
    "header-names-any-case": make_request().replace(b"Host:", b"HOST:").replace(
        b"Sec-WebSocket-Key:", b"sec-websocket-key:"),
    "extra-headers": make_request(extra=[(b"Origin", b"http://example.com"),
                                         (b"User-Agent", b"test")]),
    "query-string": make_request(start=b"GET /ws?a=1&b=2 HTTP/1.1"),
    "exactly-128-headers": make_request(
        extra=[(b"X-H%d" % i, b"v") for i in range(128 - len(GOOD_HEADERS))]),
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_request_accepted(raw):
    request = handshake.parse_upgrade_request(raw)
    assert isinstance(request, WSUpgradeRequest)
    assert request.method == b"GET"
    assert request.version == b"HTTP/1.1"
    assert isinstance(request.path, bytes)
    assert request.headers["sec-websocket-key"] == SERVER_KEY


def test_repeated_connection_headers_are_kept():
    # Repeated headers stay separate (multidict getall); the check reads all.
    raw = make_request(replace={b"Connection": b"keep-alive"},
                       extra=[(b"Connection", b"Upgrade")])
    request = handshake.parse_upgrade_request(raw)
    assert request.headers.getall("connection") == ["keep-alive", "Upgrade"]


@pytest.mark.parametrize("origin, ok", [(b"https://good.example", True),
                                        (b"https://evil.example", False), (None, False)])
def test_allowed_origins(origin, ok):
    extra = [(b"Origin", origin)] if origin is not None else []
    raw = make_request(extra=extra)
    allowed = ["https://good.example"]
    if ok:
        assert handshake.parse_upgrade_request(raw, allowed).headers["origin"] == origin.decode()
    else:
        with pytest.raises(WSHandshakeError) as info:
            handshake.parse_upgrade_request(raw, allowed)
        assert status_of(info.value) == 403


def test_request_fields_types_and_lowercase_headers():
    raw = make_request(start=b"GET /chat?room=1 HTTP/1.1", extra=[(b"X-Custom-Header", b"Va lue")])
    request = handshake.parse_upgrade_request(raw)
    assert request.method == b"GET"
    assert request.path == b"/chat?room=1"
    assert request.version == b"HTTP/1.1"
    assert isinstance(request.headers, Mapping)
    assert all(name == name.lower() for name in request.headers)
    assert request.headers["X-Custom-Header"] == "Va lue"
    assert request.headers["host"] == "example.com"
    assert request.headers["x-custom-header"] == "Va lue"
    assert request.headers["upgrade"] == "websocket"


@pytest.mark.parametrize("start", [b"POST /ws HTTP/1.1", b"get /ws HTTP/1.1"])
def test_request_not_get_405(start):
    with pytest.raises(WSHandshakeError) as info:
        handshake.parse_upgrade_request(make_request(start=start))
    assert status_of(info.value) == 405
    assert headers_of(info.value).get("allow") == "GET"


REJECTED_400 = {
    "http-1.0": make_request(start=b"GET /ws HTTP/1.0"),
    "http-2": make_request(start=b"GET /ws HTTP/2.0"),
    "no-version-in-request-line": make_request(start=b"GET /ws"),
    "garbage-request-line": make_request(start=b"hello"),
    "no-host": make_request(drop=[b"Host"]),
    "no-upgrade": make_request(drop=[b"Upgrade"]),
    "upgrade-h2c": make_request(replace={b"Upgrade": b"h2c"}),
    "upgrade-websocketx": make_request(replace={b"Upgrade": b"websocketx"}),
    "no-connection": make_request(drop=[b"Connection"]),
    "connection-keep-alive-only": make_request(replace={b"Connection": b"keep-alive"}),
    "connection-upgradex-token": make_request(replace={b"Connection": b"Upgradex"}),
    "connection-close": make_request(replace={b"Connection": b"close"}),
    "no-key": make_request(drop=[b"Sec-WebSocket-Key"]),
    "key-empty": make_request(replace={b"Sec-WebSocket-Key": b""}),
    "key-15-bytes": make_request(replace={b"Sec-WebSocket-Key": b"AAAAAAAAAAAAAAAAAAAA"}),
    "key-17-bytes": make_request(replace={b"Sec-WebSocket-Key": b"AAAAAAAAAAAAAAAAAAAAAAA="}),
    "key-not-base64": make_request(replace={b"Sec-WebSocket-Key": b"!!!!!!!!!!!!!!!!!!!!!!=="}),
    "header-without-colon": make_request(extra=[(b"X-Broken", b"")]).replace(
        b"X-Broken: ", b"X-Broken"),
    "space-before-colon": make_request().replace(b"Host:", b"Host :"),
    "obsolete-line-folding": make_request(extra=[(b"X-Folded", b"a\r\n b")]),
    "not-http-at-all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
}


@pytest.mark.parametrize("raw", REJECTED_400.values(), ids=REJECTED_400.keys())
def test_request_rejected_400(raw):
    with pytest.raises(WSHandshakeError) as info:
        handshake.parse_upgrade_request(raw)
    assert status_of(info.value) == 400
    assert isinstance(info.value, WSError)


@pytest.mark.parametrize("version", [b"0", b"8", b"12", b"14", b"13, 8", b"abc"])
def test_request_wrong_version_426(version):
    raw = make_request(replace={b"Sec-WebSocket-Version": version})
    with pytest.raises(WSHandshakeError) as info:
        handshake.parse_upgrade_request(raw)
    assert status_of(info.value) == 426
    assert headers_of(info.value).get("sec-websocket-version") == "13"


def test_request_missing_version_rejected():
    raw = make_request(drop=[b"Sec-WebSocket-Version"])
    with pytest.raises(WSHandshakeError) as info:
        handshake.parse_upgrade_request(raw)
    assert status_of(info.value) in (400, 426)


def test_request_more_than_128_headers_431():
    raw = make_request(extra=[(b"X-H%d" % i, b"v") for i in range(129 - len(GOOD_HEADERS))])
    with pytest.raises(WSHandshakeError) as info:
        handshake.parse_upgrade_request(raw)
    assert status_of(info.value) == 431


def test_build_upgrade_response_has_accept():
    request = handshake.parse_upgrade_request(make_request())
    response = handshake.build_upgrade_response(request)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert response.endswith(b"\r\n\r\n")
    lower = response.lower()
    assert b"\r\nupgrade: websocket\r\n" in lower
    assert b"\r\nconnection: upgrade\r\n" in lower
    assert b"\r\nsec-websocket-accept: " + expected_accept(SERVER_KEY).encode().lower() in lower


@pytest.mark.parametrize("status", [400, 404, 426, 431, 500])
def test_build_error_response(status):
    response = handshake.build_error_response(status, "why", [("Sec-WebSocket-Version", "13")])
    assert response.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in response
    assert b"\r\n\r\n" in response


# --------------------------------------------------------------------------
# parse_upgrade_response (client side)


def test_response_accepted():
    response = handshake.parse_upgrade_response(switching_response(CLIENT_KEY), CLIENT_KEY)
    assert response.status == 101


def test_build_upgrade_request_is_accepted_by_server_parser():
    raw = handshake.build_upgrade_request("example.com:8080", "/a/b?c=d", CLIENT_KEY)
    request = handshake.parse_upgrade_request(raw)
    assert request.path == b"/a/b?c=d"
    assert request.headers["host"] == "example.com:8080"
    assert request.headers["sec-websocket-key"] == CLIENT_KEY


@pytest.mark.parametrize("status_line, status", [
    (b"HTTP/1.1 404 Not Found", "404"),
    (b"HTTP/1.1 200 OK", "200"),
    (b"HTTP/1.1 400 Bad Request", "400"),
    (b"HTTP/1.1 426 Upgrade Required", "426"),
    (b"HTTP/1.1 503 Service Unavailable", "503"),
])
def test_response_non_101_rejected_naming_status(status_line, status):
    raw = status_line + b"\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(WSError) as info:
        handshake.parse_upgrade_response(raw, CLIENT_KEY)
    assert status in str(info.value)


@pytest.mark.parametrize("raw", [
    switching_response(CLIENT_KEY).replace(b"Upgrade: websocket\r\n", b""),
    switching_response(CLIENT_KEY).replace(b"Connection: Upgrade\r\n", b""),
    switching_response(CLIENT_KEY).replace(b"Upgrade: websocket", b"Upgrade: h2c"),
    switching_response(CLIENT_KEY, accept=expected_accept(SERVER_KEY)),
    switching_response(CLIENT_KEY, accept=""),
    switching_response(CLIENT_KEY).replace(b"Sec-WebSocket-Accept", b"X-Nothing"),
], ids=["no-upgrade", "no-connection", "upgrade-h2c", "wrong-accept", "empty-accept",
        "no-accept"])
def test_response_invalid_101_rejected(raw):
    with pytest.raises(WSError) as info:
        handshake.parse_upgrade_response(raw, CLIENT_KEY)
    assert "101" in str(info.value)


# --------------------------------------------------------------------------
# Through a server-role WSProtocol


class Side:
    """A protocol on a fake transport before the handshake (start_protocol)."""

    async def peer_closes(self) -> None:
        """The peer closes TCP: on_ws_disconnected runs, once."""
        self.fake.peer_close()
        await self.listener.wait_disconnected(WAIT)
        assert self.listener.disconnected_calls == 1


class ServerSide(Side):
    def __init__(self, factory=None, **kwargs):
        self.requests = []

        def default_factory(request):
            self.requests.append(request)
            return self.listener

        self.proto, self.fake, self.listener = start_protocol(
            False, listener_factory=factory or default_factory, **kwargs)

    def status_line(self) -> bytes:
        return self.fake.data().split(b"\r\n", 1)[0]


async def test_server_good_request_101():
    side = ServerSide()
    feed(side.proto, upgrade_request(SERVER_KEY))
    data = side.fake.data()
    assert data.startswith(b"HTTP/1.1 101 ")
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nsec-websocket-accept: " + expected_accept(SERVER_KEY).lower().encode() in head
    assert b"\r\nupgrade: websocket" in head
    assert not side.fake.closing
    assert (side.listener.connected_calls, side.listener.transport) == (1, side.proto.transport)
    request = side.requests[0]
    assert request.path == b"/ws" and request.method == b"GET"
    assert request.headers["host"] == "example.com"
    await side.peer_closes()


async def test_server_request_one_byte_at_a_time():
    side = ServerSide()
    raw = upgrade_request(SERVER_KEY)
    for i in range(len(raw)):
        assert side.fake.data() == b""
        feed(side.proto, raw[i:i + 1])
    assert side.status_line().startswith(b"HTTP/1.1 101 ")
    side.fake.peer_close()
    await flush()
    assert side.listener.disconnected_calls == 1


async def test_server_request_and_first_frame_in_one_chunk():
    side = ServerSide()
    frame = build_frame(TEXT, b"hello", mask=b"\x01\x02\x03\x04")
    feed(side.proto, upgrade_request(SERVER_KEY) + frame)
    assert side.status_line().startswith(b"HTTP/1.1 101 ")
    assert [f.payload for f in side.listener.frames] == [b"hello"]
    side.fake.peer_close()
    await flush()


# The WebSocket checks (Upgrade, Connection, key, version) come after the
# listener factory, which sees every well-formed HTTP/1.1 GET (upstream 2.3);
# the others are refused before it.
_AFTER_FACTORY = {"h2c", "no-connection-upgrade", "bad-key", "version-8"}


@pytest.mark.parametrize("raw, status", [
    (make_request(start=b"POST /ws HTTP/1.1"), 405),
    (make_request(start=b"GET /ws HTTP/1.0"), 400),
    (make_request(drop=[b"Host"]), 400),
    (make_request(replace={b"Upgrade": b"h2c"}), 400),
    (make_request(replace={b"Connection": b"keep-alive"}), 400),
    (make_request(replace={b"Sec-WebSocket-Key": b"short"}), 400),
    (b"garbage\r\n\r\n", 400),
    (make_request(replace={b"Sec-WebSocket-Version": b"8"}), 426),
    (make_request(extra=[(b"X-H%d" % i, b"v") for i in range(130)]), 431),
], ids=["post", "http10", "no-host", "h2c", "no-connection-upgrade", "bad-key", "garbage",
        "version-8", "too-many-headers"])
async def test_server_bad_request_gets_error_and_close(raw, status, request):
    side = ServerSide()
    feed(side.proto, raw)
    assert side.status_line().startswith(b"HTTP/1.1 %d " % status), side.fake.data()[:200]
    if status == 426:
        assert b"\r\nsec-websocket-version: 13\r\n" in side.fake.data().lower()
    await side.fake.wait_lost()
    if request.node.callspec.id not in _AFTER_FACTORY:
        assert side.requests == []
    assert side.proto.transport is None or side.listener.connected_calls == 0


async def test_server_origin_not_allowed_403():
    side = ServerSide(allowed_origins=["https://good.example"])
    feed(side.proto, upgrade_request(SERVER_KEY, extra=b"Origin: https://evil.example\r\n"))
    assert side.status_line().startswith(b"HTTP/1.1 403 ")
    await side.fake.wait_lost()
    assert side.requests == []


async def test_server_head_over_16k_without_end_gets_431():
    side = ServerSide()
    raw = make_request()[:-2]  # no terminating blank line
    raw += b"X-Big: " + b"a" * (16 * 1024) + b"\r\n"
    assert len(raw) > 16 * 1024
    feed(side.proto, raw)
    assert side.status_line().startswith(b"HTTP/1.1 431 "), side.fake.data()[:200]
    await side.fake.wait_lost()
    assert side.requests == []


def padded_request(total: int) -> bytes:
    """A valid request head of exactly ``total`` bytes (padding header)."""
    base = make_request(extra=[(b"X-Pad", b"")])
    raw = base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (total - len(base)))
    assert len(raw) == total
    return raw


async def test_server_head_of_exactly_16k_accepted():
    side = ServerSide()
    feed(side.proto, padded_request(16 * 1024))
    assert side.status_line().startswith(b"HTTP/1.1 101 ")
    side.fake.peer_close()
    await flush()


async def test_server_complete_head_over_16k_gets_431():
    side = ServerSide()
    feed(side.proto, padded_request(16 * 1024 + 1))
    assert side.status_line().startswith(b"HTTP/1.1 431 ")
    await side.fake.wait_lost()


async def test_server_frames_sent_in_on_ws_connected_follow_the_101():
    side = ServerSide()
    side.listener.on_connected = lambda ws: ws.send(WSMsgType.TEXT, b"greeting")
    feed(side.proto, upgrade_request(SERVER_KEY))
    head, sep, rest = side.fake.data().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and sep
    assert rest == build_frame(TEXT, b"greeting")
    side.fake.peer_close()
    await flush()


async def test_server_head_over_16k_one_byte_at_a_time_gets_431():
    side = ServerSide()
    raw = make_request()[:-2] + b"X-Big: " + b"a" * (16 * 1024) + b"\r\n"
    for i in range(0, len(raw), 1024):
        if side.fake.closing:
            break
        feed(side.proto, raw[i:i + 1024])
    assert side.status_line().startswith(b"HTTP/1.1 431 ")
    await side.fake.wait_lost()


async def test_server_factory_returns_none_404():
    requests = []

    def factory(request):
        requests.append(request)

    side = ServerSide(factory=factory)
    feed(side.proto, upgrade_request(SERVER_KEY))
    assert side.status_line().startswith(b"HTTP/1.1 404 ")
    await side.fake.wait_lost()
    assert len(requests) == 1 and requests[0].path == b"/ws"


async def test_server_factory_raises_500():
    def factory(request):
        raise RuntimeError("router exploded")

    side = ServerSide(factory=factory)
    feed(side.proto, upgrade_request(SERVER_KEY))
    assert side.status_line().startswith(b"HTTP/1.1 500 ")
    await side.fake.wait_lost()


async def test_server_factory_sees_request_headers():
    seen = []
    listener = RecordingListener()

    def factory(request):
        seen.append(request)
        return listener

    side = ServerSide(factory=factory)
    feed(side.proto, upgrade_request(SERVER_KEY, path=b"/route/7",
                                     extra=b"X-Token: abc\r\n"))
    assert side.status_line().startswith(b"HTTP/1.1 101 ")
    (request,) = seen
    assert request.path == b"/route/7"
    assert request.headers["x-token"] == "abc"
    side.fake.peer_close()
    await listener.wait_disconnected(WAIT)


async def test_server_handshake_timeout_closes():
    side = ServerSide(websocket_handshake_timeout=0.05)
    await side.fake.wait_lost()
    assert side.requests == []


# --------------------------------------------------------------------------
# Through a client-role WSProtocol


class ClientSide(Side):
    def __init__(self, **kwargs):
        self.request = handshake.build_upgrade_request("example.com", "/ws", CLIENT_KEY)
        self.proto, self.fake, self.listener = start_protocol(
            True, upgrade_request=self.request, **kwargs)


async def test_client_writes_request_and_completes():
    side = ClientSide()
    assert side.fake.data() == side.request
    feed(side.proto, switching_response(CLIENT_KEY) + build_frame(BINARY, b"\x00\x01"))
    transport, listener = await asyncio.wait_for(side.proto.handshake_future, WAIT)
    assert listener is side.listener
    assert transport is side.proto.transport
    assert [f.payload for f in side.listener.frames] == [b"\x00\x01"]
    await side.peer_closes()


async def test_client_response_one_byte_at_a_time():
    side = ClientSide()
    raw = switching_response(CLIENT_KEY)
    for i in range(len(raw)):
        assert not side.proto.handshake_future.done()
        feed(side.proto, raw[i:i + 1])
    await asyncio.wait_for(side.proto.handshake_future, WAIT)
    side.fake.peer_close()
    await flush()


@pytest.mark.parametrize("raw, needle", [
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "404"),
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "500"),
    (switching_response(CLIENT_KEY, accept=expected_accept(SERVER_KEY)), "101"),
    (switching_response(CLIENT_KEY).replace(b"Upgrade: websocket\r\n", b""), "101"),
], ids=["404", "500", "wrong-accept", "no-upgrade"])
async def test_client_rejected_response_fails_handshake(raw, needle):
    side = ClientSide()
    feed(side.proto, raw)
    with pytest.raises(WSError) as info:
        await asyncio.wait_for(side.proto.handshake_future, WAIT)
    assert needle in str(info.value)
    await side.fake.wait_lost()
    assert side.listener.connected_calls == 0


async def test_client_handshake_timeout():
    side = ClientSide(websocket_handshake_timeout=0.05)
    with pytest.raises((WSError, asyncio.TimeoutError)):
        await asyncio.wait_for(side.proto.handshake_future, WAIT)
    await side.fake.wait_lost()


async def test_server_request_and_frames_split_at_every_offset():
    frames = (build_frame(TEXT, b"first", mask=b"\x01\x02\x03\x04")
              + build_frame(BINARY, b"x" * 130, mask=b"\x05\x06\x07\x08"))
    data = upgrade_request(SERVER_KEY) + frames
    for i in range(1, len(data)):
        side = ServerSide()
        feed(side.proto, data[:i])
        feed(side.proto, data[i:])
        assert side.status_line().startswith(b"HTTP/1.1 101 "), i
        assert [f.payload for f in side.listener.frames] == [b"first", b"x" * 130], i
        side.fake.peer_close()
    await flush()


async def test_client_response_and_frames_split_at_every_offset():
    data = switching_response(CLIENT_KEY) + build_frame(TEXT, b"first") + \
        build_frame(BINARY, b"y" * 130)
    for i in range(1, len(data)):
        side = ClientSide()
        feed(side.proto, data[:i])
        feed(side.proto, data[i:])
        await asyncio.wait_for(side.proto.handshake_future, WAIT)
        assert [f.payload for f in side.listener.frames] == [b"first", b"y" * 130], i
        side.fake.peer_close()
    await flush()
