"""Upgrade control without sockets: the response types, the error types,
request/response parsing and building, and the protocol driven through a
fake transport (server answers, client refusals split at every offset)."""
from __future__ import annotations

import asyncio
from http import HTTPStatus

import pytest
from multidict import CIMultiDict
from tests.support import (
    CLIENT_KEY,
    SERVER_KEY,
    FakeTransport,
    RecordingListener,
    feed,
    flush,
    new_protocol,
    switching_response,
    upgrade_request,
)

from picows import (
    WSError,
    WSHandshakeError,
    WSInvalidHeaderError,
    WSInvalidMessageError,
    WSInvalidStatusError,
    WSInvalidUpgradeError,
    WSInvalidURL,
    WSProtocolError,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    handshake,
)
from picows.api import _parse_url, _redact, _redirect_url

# -- WSUpgradeResponse constructors ---------------------------------------------


def test_create_101():
    r = WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": "chat",
                                               "Set-Cookie": "a=1"})
    assert r.status == HTTPStatus.SWITCHING_PROTOCOLS and r.version == b"HTTP/1.1"
    assert isinstance(r.headers, CIMultiDict)
    assert list(r.headers) == ["sec-websocket-protocol", "set-cookie"]
    assert r.headers["SEC-WEBSOCKET-PROTOCOL"] == "chat"
    assert r.body is None


@pytest.mark.parametrize("status", [400, 401, 403, HTTPStatus.TOO_MANY_REQUESTS, 503])
def test_create_error(status):
    r = WSUpgradeResponse.create_error_response(status, b"no", [("Retry-After", "1")])
    assert r.status == status and isinstance(r.status, HTTPStatus)
    assert r.body == b"no" and r.headers["retry-after"] == "1"


@pytest.mark.parametrize("status", [101, 200, 302, 399])
def test_create_error_below_400_is_value_error(status):
    with pytest.raises(ValueError):
        WSUpgradeResponse.create_error_response(status)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_create_redirect(status):
    r = WSUpgradeResponse.create_redirect_response(status, "/new", {"X-A": "b"})
    assert r.status == status and r.headers["Location"] == "/new"


@pytest.mark.parametrize("status", [200, 404, 101])
def test_create_redirect_non_3xx_is_value_error(status):
    with pytest.raises(ValueError):
        WSUpgradeResponse.create_redirect_response(status, "/x")


def test_create_ok():
    r = WSUpgradeResponse.create_ok_response(b"up")
    assert r.status == 200 and r.body == b"up"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = WSUpgradeResponse.create_ok_response(extra_headers={"Content-Type": "application/json"})
    assert r.headers.getall("content-type") == ["application/json"]


async def test_response_with_listener():
    ok = WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(),
                                       RecordingListener())
    assert ok.listener is not None
    err = WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(403), None)
    assert err.listener is None
    with pytest.raises(ValueError):
        WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(), None)
    with pytest.raises(ValueError):
        WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(),
                                      RecordingListener())


def test_build_response_non_101_has_length_and_close():
    raw = handshake.build_response(WSUpgradeResponse.create_error_response(
        401, b"body!", {"WWW-Authenticate": "Basic"}))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 401 Unauthorized"
    assert b"WWW-Authenticate: Basic" in lines
    assert b"Content-Length: 5" in lines and b"Connection: close" in lines
    assert body == b"body!"


def test_build_response_rejects_header_injection():
    with pytest.raises(ValueError):
        handshake.build_response(WSUpgradeResponse.create_error_response(
            400, None, {"X-A": "1\r\nSet-Cookie: evil=1"}))


# -- headers ------------------------------------------------------------------------


def test_request_headers_case_insensitive_lowercase_names_repeats_kept():
    raw = upgrade_request(SERVER_KEY, extra=b"User-Agent: ua\r\nX-Rep: 1\r\nx-rep: 2\r\n")
    request = handshake.parse_upgrade_request(raw)
    assert request.headers["User-Agent"] == request.headers["user-agent"] == "ua"
    assert request.headers.getall("X-REP") == ["1", "2"]
    assert all(name == name.lower() for name in request.headers)
    assert dict(request.headers)["user-agent"] == "ua"


def test_request_from_plain_dict_is_normalised():
    request = WSUpgradeRequest(b"GET", b"/", b"HTTP/1.1", {"Host": "x"})
    assert list(request.headers) == ["host"] and request.headers["HOST"] == "x"


def test_host_in_extra_headers_replaces_generated():
    raw = handshake.build_upgrade_request("gen", "/", CLIENT_KEY,
                                          [("HOST", "mine"), ("X-A", "1")])
    request = handshake.parse_http_request(raw)
    assert request.headers.getall("host") == ["mine"]
    assert request.headers["x-a"] == "1"


# -- request checks before the factory ------------------------------------------------


@pytest.mark.parametrize("raw, status", [
    (b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n", 400),
])
def test_parse_http_request_rejects(raw, status):
    with pytest.raises(WSHandshakeError) as info:
        handshake.parse_http_request(raw)
    assert info.value.status == status


def test_parse_http_request_accepts_plain_get():
    request = handshake.parse_http_request(
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert request.path == b"/health"
    assert not handshake.is_upgrade_request(request)


# -- the server protocol through a fake transport -------------------------------------


def server(factory, **options):
    proto = new_protocol(False, factory, **options)
    fake = FakeTransport()
    fake.proto = proto
    proto.connection_made(fake)
    return proto, fake


@pytest.mark.parametrize("answer, status", [
    (lambda: WSUpgradeResponse.create_ok_response(b"ok"), b"200"),
    (lambda: WSUpgradeResponse.create_error_response(503, b"x", {"Retry-After": "5"}), b"503"),
    (lambda: WSUpgradeResponse.create_redirect_response(308, "/b"), b"308"),
])
async def test_server_non_101_answer_then_close(answer, status):
    proto, fake = server(lambda request: WSUpgradeResponseWithListener(answer(), None))
    feed(proto, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert fake.data().startswith(b"HTTP/1.1 " + status + b" ")
    assert b"\r\nConnection: close\r\n" in fake.data()
    await fake.wait_lost()
    assert proto.transport is None


async def test_server_101_with_headers_and_own_headers_win():
    listener = RecordingListener()

    def factory(request):
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(
            {"Sec-WebSocket-Protocol": "b", "Set-Cookie": "s=1",
             "Sec-WebSocket-Accept": "forged"}), listener)

    proto, fake = server(factory)
    feed(proto, upgrade_request(SERVER_KEY, extra=b"Sec-WebSocket-Protocol: a, b\r\n"))
    head = fake.data().split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 101 Switching Protocols"
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert b"Sec-WebSocket-Accept: forged" not in head
    assert b"Sec-WebSocket-Protocol: b" in head and b"Set-Cookie: s=1" in head
    assert proto.transport.response.headers["sec-websocket-protocol"] == "b"
    fake.peer_close()
    await flush()


async def test_server_factory_returning_junk_is_500():
    proto, fake = server(lambda request: "not a listener")
    feed(proto, upgrade_request(SERVER_KEY))
    assert fake.data().startswith(b"HTTP/1.1 500 ")
    await fake.wait_lost()


async def test_server_origin_checked_before_factory_for_upgrades_only():
    seen = []

    def factory(request):
        seen.append(request.path)
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(), None)

    proto, fake = server(factory, allowed_origins=["https://good"])
    feed(proto, upgrade_request(SERVER_KEY, extra=b"Origin: https://evil\r\n"))
    assert fake.data().startswith(b"HTTP/1.1 403 ")
    proto2, fake2 = server(factory, allowed_origins=["https://good"])
    feed(proto2, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert fake2.data().startswith(b"HTTP/1.1 200 ")
    assert seen == [b"/health"]
    await fake.wait_lost()
    await fake2.wait_lost()


# -- the client protocol: refusals and the 101 --------------------------------------


def client(subprotocols=None, factory=RecordingListener):
    request = handshake.build_upgrade_request("example.com", "/ws", CLIENT_KEY)
    proto = new_protocol(True, factory, upgrade_request=request, client_key=CLIENT_KEY)
    if subprotocols is not None:
        from picows.picows import WSProtocol, _ConnectionOptions
        proto = WSProtocol(_ConnectionOptions(factory), is_client=True,
                           upgrade_request=request, client_key=CLIENT_KEY,
                           subprotocols=subprotocols)
    fake = FakeTransport()
    fake.proto = proto
    proto.connection_made(fake)
    return proto, fake


REFUSAL = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n"
           b"Content-Length: 11\r\n\r\nlog in, pls")


@pytest.mark.parametrize("step", [1, 2, 7, len(REFUSAL)])
async def test_client_refusal_split_anywhere(step):
    proto, fake = client()
    for i in range(0, len(REFUSAL), step):
        feed(proto, REFUSAL[i:i + step])
    with pytest.raises(WSInvalidStatusError) as info:
        await asyncio.wait_for(proto.handshake_future, 2)
    exc = info.value
    assert exc.status == 401 and exc.raw_body == b"log in, pls"
    assert exc.raw_header == REFUSAL.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert exc.response.headers["www-authenticate"] == "Basic"
    assert ("www-authenticate", "Basic") in exc.headers
    assert isinstance(exc, WSHandshakeError) and isinstance(exc, WSError)
    await fake.wait_lost()


async def test_client_refusal_body_until_eof():
    proto, fake = client()
    feed(proto, b"HTTP/1.1 500 Oops\r\n\r\npart")
    assert not proto.handshake_future.done()
    fake.peer_close()
    with pytest.raises(WSInvalidStatusError) as info:
        await asyncio.wait_for(proto.handshake_future, 2)
    assert info.value.raw_body == b"part" and info.value.status == 500


@pytest.mark.parametrize("extra, error", [
    (b"Sec-WebSocket-Protocol: chat\r\n", WSInvalidHeaderError),
    (b"Sec-WebSocket-Extensions: permessage-deflate\r\n", WSInvalidHeaderError),
])
async def test_client_101_with_unoffered_choice(extra, error):
    proto, fake = client()
    feed(proto, switching_response(CLIENT_KEY, extra=extra))
    with pytest.raises(error):
        await asyncio.wait_for(proto.handshake_future, 2)
    await fake.wait_lost()


async def test_client_101_with_offered_subprotocol():
    proto, fake = client(subprotocols=["a", "chat"])
    feed(proto, switching_response(CLIENT_KEY, extra=b"Sec-WebSocket-Protocol: chat\r\n"))
    transport, _ = await asyncio.wait_for(proto.handshake_future, 2)
    assert transport.response.headers["Sec-WebSocket-Protocol"] == "chat"
    assert transport.request.headers["host"] == "example.com"
    fake.peer_close()
    await flush()


@pytest.mark.parametrize("response, error", [
    (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", WSInvalidUpgradeError),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", WSInvalidUpgradeError),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: nope\r\n\r\n", WSInvalidHeaderError),
    (b"HTTP/1.1 10x Huh\r\n\r\n", WSInvalidMessageError),
    (b"HTTP/1.1 101 OK\r\nbroken header\r\n\r\n", WSInvalidMessageError),
])
def test_parse_upgrade_response_error_types(response, error):
    with pytest.raises(error) as info:
        handshake.parse_upgrade_response(response, CLIENT_KEY)
    assert info.value.raw_header == response


def test_invalid_header_error_fields():
    exc = WSInvalidUpgradeError("Upgrade", "h2c")
    assert (exc.name, exc.value, exc.status) == ("Upgrade", "h2c", 101)
    assert isinstance(exc, WSInvalidHeaderError)


async def test_client_factory_two_arguments():
    seen = []

    def factory(request, response):
        seen.append((request.path, int(response.status)))
        return RecordingListener()

    proto, fake = client(factory=factory)
    feed(proto, switching_response(CLIENT_KEY))
    await asyncio.wait_for(proto.handshake_future, 2)
    assert seen == [(b"/ws", 101)]
    fake.peer_close()
    await flush()


# -- errors ------------------------------------------------------------------------


def test_handshake_error_both_signatures():
    old = WSHandshakeError(403, "Forbidden", [("X", "1")])
    assert (old.status, old.reason, old.headers) == (403, "Forbidden", [("X", "1")])
    assert old.response is None and old.raw_header is None and old.raw_body is None
    response = WSUpgradeResponse(b"HTTP/1.1", 302, b"Found", {"Location": "/x"})
    new = WSHandshakeError("moved", b"HEAD", b"BODY", response)
    assert (new.status, new.reason, new.raw_header, new.raw_body) == (
        302, "moved", b"HEAD", b"BODY")
    assert new.headers == [("location", "/x")]
    assert str(new) == "302 moved"


def test_protocol_error_and_invalid_url():
    exc = WSProtocolError(1002, "bad")
    assert exc.code == 1002 and isinstance(exc, WSError)
    assert issubclass(WSInvalidURL, ValueError) and issubclass(WSInvalidURL, WSError)


# -- URLs ----------------------------------------------------------------------------


def test_url_credentials_become_basic():
    t = _parse_url("ws://user:p%40ss@h:81/p?q=1")
    assert t.authorization == "Basic dXNlcjpwQHNz"
    assert (t.host, t.port, t.host_header, t.target) == ("h", 81, "h:81", "/p?q=1")


def test_redact_hides_credentials():
    assert "secret" not in _redact("ws://u:secret@h/")
    assert _redact("ws://h/x") == "ws://h/x"


@pytest.mark.parametrize("base, location, result", [
    ("ws://h/a/b", "c", "ws://h/a/c"),
    ("ws://h/a/b", "/c", "ws://h/c"),
    ("wss://h/a", "//other/x", "wss://other/x"),
    ("ws://h/a", "https://o/x", "wss://o/x"),
    ("ws://h/a", "HTTP://o/x", "ws://o/x"),
])
def test_redirect_url(base, location, result):
    assert _redirect_url(base, location) == result


@pytest.mark.parametrize("url", ["http://h/", "ws://", "ws://h:x/", "ws://h/a b"])
def test_bad_urls_raise_invalid_url(url):
    with pytest.raises(WSInvalidURL):
        _parse_url(url)


async def test_server_response_with_crlf_in_header_is_500_not_sent():
    def factory(request):
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
            403, None, {"X-A": "1\r\nSet-Cookie: evil=1"}), None)

    proto, fake = server(factory)
    feed(proto, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert fake.data().startswith(b"HTTP/1.1 500 ")
    assert b"evil" not in fake.data()
    await fake.wait_lost()


# -- an async listener factory (the server's upgrade waits for it) ---------------------


class Gate:
    """An async listener factory that waits until ``open(result)``."""

    def __init__(self) -> None:
        self.requests: list = []
        self.called = asyncio.Event()
        self.result: asyncio.Future = asyncio.get_running_loop().create_future()
        self.cancelled = False

    async def __call__(self, request):
        self.requests.append(request)
        self.called.set()
        try:
            result = await self.result
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(result, BaseException):
            raise result
        return result

    def open(self, result) -> None:
        self.result.set_result(result)


async def test_async_factory_pauses_then_upgrades_and_reads_what_waited():
    from tests.support import build_frame

    listener = RecordingListener()
    gate = Gate()
    proto, fake = server(gate)
    # The request and a frame right behind it, in one read.
    feed(proto, upgrade_request(SERVER_KEY)
         + build_frame(0x1, b"early", mask=b"\x01\x02\x03\x04"))
    await asyncio.wait_for(gate.called.wait(), 2)
    assert fake.reading_paused and fake.data() == b""
    assert proto.transport is None
    gate.open(listener)
    await asyncio.wait_for(listener.connected, 2)
    assert fake.data().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert not fake.reading_paused
    frame = await asyncio.wait_for(listener.next_frame(), 2)
    assert frame.payload == b"early"
    assert [r.path for r in gate.requests] == [b"/ws"]
    fake.peer_close()
    await flush()


@pytest.mark.parametrize("result, status", [
    (None, b"404"),
    (RuntimeError("boom"), b"500"),
    ("not a listener", b"500"),
    (WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(401, b"who?"),
                                   None), b"401"),
])
async def test_async_factory_results_as_sync_ones(result, status):
    gate = Gate()
    proto, fake = server(gate)
    feed(proto, upgrade_request(SERVER_KEY))
    await asyncio.wait_for(gate.called.wait(), 2)
    gate.open(result)
    await fake.wait_lost()
    assert fake.data().startswith(b"HTTP/1.1 " + status + b" ")
    assert proto.transport is None


async def test_async_factory_101_with_headers():
    listener = RecordingListener()
    gate = Gate()
    proto, fake = server(gate)
    feed(proto, upgrade_request(SERVER_KEY, extra=b"Sec-WebSocket-Protocol: a, b\r\n"))
    await asyncio.wait_for(gate.called.wait(), 2)
    gate.open(WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": "b"}), listener))
    await asyncio.wait_for(listener.connected, 2)
    assert b"\r\nSec-WebSocket-Protocol: b\r\n" in fake.data()
    assert proto.transport.response.headers["sec-websocket-protocol"] == "b"
    fake.peer_close()
    await flush()


async def test_async_factory_returning_a_future():
    listener = RecordingListener()
    future = asyncio.get_running_loop().create_future()
    proto, fake = server(lambda request: future)
    feed(proto, upgrade_request(SERVER_KEY))
    await flush()
    assert fake.data() == b""
    future.set_result(listener)
    await asyncio.wait_for(listener.connected, 2)
    assert fake.data().startswith(b"HTTP/1.1 101 ")
    fake.peer_close()
    await flush()


async def test_connection_lost_while_the_factory_runs_cancels_it():
    gate = Gate()
    proto, fake = server(gate)
    feed(proto, upgrade_request(SERVER_KEY))
    await asyncio.wait_for(gate.called.wait(), 2)
    fake.peer_close()
    await flush()
    assert gate.cancelled
    assert fake.data() == b""


async def test_handshake_timeout_covers_the_factory():
    gate = Gate()
    proto, fake = server(gate, websocket_handshake_timeout=0.05)
    feed(proto, upgrade_request(SERVER_KEY))
    await asyncio.wait_for(gate.called.wait(), 2)
    await fake.wait_lost()
    assert fake.aborted and fake.data() == b""
    await flush()
    assert gate.cancelled


async def test_the_factory_cancelling_itself_is_500():
    async def factory(request):
        raise asyncio.CancelledError

    proto, fake = server(factory)
    feed(proto, upgrade_request(SERVER_KEY))
    await fake.wait_lost()
    assert fake.data().startswith(b"HTTP/1.1 500 ")
