"""Upgrade control on the server, and the transport members that came with it.

The listener factory sees every well-formed HTTP/1.1 GET (upgrade or not) and
may answer any of them: a 101 with extra headers, an error with a body and
headers, a redirect, a 200 for health checks. Every test runs on both loops
(asyncio, uvloop) and, where it takes ``net``, over TCP and TLS.
"""
from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from picows import (
    WSCloseCode,
    WSInvalidHeaderError,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_connect,
    ws_create_server,
)

from tests.support import (
    TIMEOUT,
    EchoListener,
    RecordingListener,
    client_upgrade,
    expected_accept,
    close_writer,
    connect,
    raw_server,
    serve,
    wait_for,
)


async def raw_exchange(net, port: int, request: bytes) -> bytes:
    """Send `request` as it is and read the answer until the server closes."""
    reader, writer = await wait_for(asyncio.open_connection(
        "127.0.0.1", port, **net.raw_kwargs()))
    writer.write(request)
    chunks = []
    try:
        while True:
            chunk = await wait_for(reader.read(65536))
            if not chunk:
                break
            chunks.append(chunk)
    except (ConnectionError, OSError):
        pass
    finally:
        await close_writer(writer)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def listener_of(result):
    """The listener of what a route returned (serve() records the result)."""
    return getattr(result, "listener", result)


def with_subprotocol(request):
    """Route: a 101 choosing the first offered subprotocol, with a cookie."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip()]
    extra = {"Set-Cookie": "session=abc; HttpOnly"}
    if offered:
        extra["Sec-WebSocket-Protocol"] = offered[0]
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_101_response(extra_headers=extra), EchoListener())


def edge_router(request):
    """What a deployment needs at the HTTP edge."""
    path = request.path
    if path == b"/health":
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_ok_response(b"OK\n"), None)
    if path == b"/private":
        if request.headers.get("Authorization") != "Bearer good":
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
                401, b"who are you?", {"WWW-Authenticate": 'Bearer realm="picows"'}), None)
        return EchoListener()
    if path == b"/busy":
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
            429, b"slow down", {"Retry-After": "7"}), None)
    if path == b"/old":
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_redirect_response(302, "/new"), None)
    if path == b"/proto":
        return with_subprotocol(request)
    if path == b"/new" or path == b"/":
        return EchoListener()
    return None


# -- plain HTTP on the WebSocket port --------------------------------------


async def test_health_check_plain_get(net):
    async with serve(net, edge_router) as server:
        raw = await raw_exchange(net, server.port,
                                 b"GET /health HTTP/1.1\r\nHost: lb\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == "3"
    assert headers["connection"] == "close"
    assert body == b"OK\n"
    assert [r.path for r in server.requests] == [b"/health"]
    assert server.requests[0].headers["Host"] == "lb"


async def test_plain_get_unknown_path_is_404(net):
    async with serve(net, edge_router) as server:
        raw = await raw_exchange(net, server.port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404 "), raw


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    (b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost x\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\n\r\n", 400),
], ids=["post", "http10", "body", "chunked", "bad-header-line", "no-host"])
async def test_bad_requests_get_4xx_logged_with_peer(net, caplog, request_bytes, status):
    caplog.set_level(logging.INFO, logger="picows.server")
    async with serve(net, edge_router) as server:
        raw = await raw_exchange(net, server.port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw
    if status == 405:
        assert split_response(raw)[1]["allow"] == "GET"
    assert server.requests == []  # the factory never saw them
    records = [r for r in caplog.records if r.name == "picows.server"
               and r.levelno == logging.INFO and "127.0.0.1" in r.getMessage()]
    assert records, [r.getMessage() for r in caplog.records]


# -- errors and redirects as the picows client sees them ---------------------


async def test_401_with_body_and_headers_reaches_client(net):
    async with serve(net, edge_router) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url("/private"),
                                      **net.client_kwargs()))
    exc = info.value
    assert exc.status == 401
    assert exc.response.status == 401
    assert exc.response.headers["WWW-Authenticate"] == 'Bearer realm="picows"'
    assert ("www-authenticate", 'Bearer realm="picows"') in exc.headers
    assert exc.raw_body == b"who are you?"
    assert exc.response.body == b"who are you?"
    assert exc.raw_header.startswith(b"HTTP/1.1 401 Unauthorized\r\n")


async def test_auth_header_accepted(net):
    async with serve(net, edge_router) as server:
        async with connect(net, server.url("/private"),
                           extra_headers={"Authorization": "Bearer good"}) as (transport, _):
            assert transport.response.status == 101


async def test_429_retry_after(net):
    async with serve(net, edge_router) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url("/busy"), **net.client_kwargs()))
    assert info.value.status == 429
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.raw_body == b"slow down"


async def test_server_redirect_is_followed(net):
    async with serve(net, edge_router) as server:
        async with connect(net, server.url("/old")) as (transport, _):
            assert transport.request.path == b"/new"
    assert [r.path for r in server.requests] == [b"/old", b"/new"]


async def test_server_redirect_not_followed_with_max_redirects_0(net):
    async with serve(net, edge_router) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url("/old"), max_redirects=0,
                                      **net.client_kwargs()))
    assert info.value.status == 302
    assert info.value.response.headers["Location"] == "/new"


async def test_factory_exception_is_500(net):
    def broken(request):
        raise RuntimeError("boom")

    async with serve(net, broken) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url(), **net.client_kwargs()))
    assert info.value.status == 500


def test_with_listener_rules():
    with pytest.raises(ValueError):
        WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(), None)
    with pytest.raises(ValueError):
        WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(403),
                                      WSListener())


# -- subprotocols and 101 headers ---------------------------------------------


async def test_subprotocol_and_cookie_in_101(net):
    async with serve(net, edge_router) as server:
        async with connect(net, server.url("/proto"), factory=EchoListener, extra_headers=[
                ("Sec-WebSocket-Protocol", "ocpp2.0.1, ocpp1.6")]) as (transport, _):
            assert transport.response.headers["Sec-WebSocket-Protocol"] == "ocpp2.0.1"
            assert transport.response.headers["set-cookie"] == "session=abc; HttpOnly"
            assert transport.request.headers["sec-websocket-protocol"] == "ocpp2.0.1, ocpp1.6"
            listener = listener_of(await server.next_listener())
            server_transport = await wait_for(listener.connected)
            assert server_transport.response.headers["sec-websocket-protocol"] == "ocpp2.0.1"
            assert server_transport.request.headers["Sec-WebSocket-Protocol"] == \
                "ocpp2.0.1, ocpp1.6"


async def test_server_choosing_unoffered_subprotocol_is_500(net, caplog):
    def route(request):
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(
            {"Sec-WebSocket-Protocol": "graphql-ws"}), EchoListener())

    async with serve(net, route) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url(), **net.client_kwargs(),
                                      extra_headers={"Sec-WebSocket-Protocol": "stomp"}))
    assert info.value.status == 500
    assert "subprotocol" in caplog.text


async def test_101_with_listener_for_non_upgrade_request_is_400(net):
    async with serve(net, with_subprotocol) as server:
        raw = await raw_exchange(net, server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 "), raw


async def test_client_listener_factory_gets_request_and_response(net):
    seen = []

    def factory(request, response):
        seen.append((request, response))
        return RecordingListener()

    async with serve(net) as server:
        async with connect(net, server.url("/x?y=1"), factory=factory) as (transport, _):
            pass
    [(request, response)] = seen
    assert request is transport.request
    assert response is transport.response
    assert request.method == b"GET" and request.path == b"/x?y=1"
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"
    assert int(response.status) == 101


async def test_host_in_extra_headers_replaces_generated(net):
    async with serve(net) as server:
        async with connect(net, server.url(), extra_headers={"host": "example.org"}):
            pass
    assert server.requests[0].headers.getall("host") == ["example.org"]


async def test_url_credentials_sent_as_basic_never_logged(net, caplog):
    caplog.set_level(logging.DEBUG, logger="picows")
    async with serve(net) as server:
        url = f"{net.scheme}://al%20ice:s3cr%3At@127.0.0.1:{server.port}/"
        async with connect(net, url):
            pass
    # base64("al ice:s3cr:t")
    assert server.requests[0].headers["Authorization"] == "Basic YWwgaWNlOnMzY3I6dA=="
    assert "s3cr" not in caplog.text
    assert "YWwgaWNl" not in caplog.text


async def test_ssl_context_ignored_for_ws_url(tcp, tls_pair):
    async with serve(tcp) as server:
        async with connect(tcp, server.url(), ssl_context=tls_pair[1]) as (transport, _):
            assert not transport.is_secure


# -- ws_create_server forms ------------------------------------------------------


async def test_create_server_with_sock(net):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await ws_create_server(lambda request: EchoListener(), sock=sock,
                                    **net.server_kwargs())
    try:
        url = f"{net.scheme}://127.0.0.1:{port}/"
        async with connect(net, url, factory=RecordingListener) as (transport, listener):
            transport.send(WSMsgType.TEXT, b"hi")
            frame = await listener.next_frame()
            assert frame.payload == b"hi"
    finally:
        server.close()
        await wait_for(server.wait_closed())


async def test_create_server_sock_with_port_is_an_error(tcp):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(ValueError):
            await ws_create_server(lambda request: EchoListener(), "127.0.0.1", 1234,
                                   sock=sock)
    finally:
        sock.close()


async def test_create_server_host_list_and_reuse_port(tcp):
    server = await ws_create_server(lambda request: EchoListener(), ["127.0.0.1"], None,
                                    reuse_address=True, start_serving=False)
    try:
        await server.start_serving()
        port = server.sockets[0].getsockname()[1]
        async with connect(tcp, f"ws://127.0.0.1:{port}/"):
            pass
    finally:
        server.close()
        await wait_for(server.wait_closed())


# -- transport members -------------------------------------------------------------


async def test_transport_flags(net):
    async with serve(net) as server:
        async with connect(net, server.url()) as (transport, _):
            listener = await server.next_listener()
            server_transport = await wait_for(listener.connected)
            assert transport.is_secure == net.tls == server_transport.is_secure
            assert transport.is_client_side and transport.is_client
            assert not server_transport.is_client_side
            assert not transport.is_disconnected
            assert transport.close_handshake is None
            assert server_transport.request.path == b"/"
            assert transport.request.path == b"/"
            assert int(server_transport.response.status) == 101
        assert transport.is_disconnected


async def test_close_handshake_client_first(net):
    async with serve(net) as server:
        async with connect(net, server.url()) as (transport, listener):
            server_listener = await server.next_listener()
            server_transport = await wait_for(server_listener.connected)
            transport.send_close(WSCloseCode.GOING_AWAY, "bye ünï")
            frame = await server_listener.next_of(WSMsgType.CLOSE)
            assert frame.close_message == "bye ünï".encode()
            await wait_for(transport.wait_disconnected())
            await wait_for(server_transport.wait_disconnected())
    ch = transport.close_handshake
    assert ch.sent.code == WSCloseCode.GOING_AWAY and ch.sent.reason == "bye ünï"
    assert ch.recv.code == WSCloseCode.GOING_AWAY
    assert ch.recv_then_sent is False
    sh = server_transport.close_handshake
    assert sh.recv.code == WSCloseCode.GOING_AWAY and sh.recv.reason == "bye ünï"
    assert sh.sent.code == WSCloseCode.GOING_AWAY
    assert sh.recv_then_sent is True


async def test_get_close_reason(net):
    reasons = []

    class Keep(RecordingListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.CLOSE:
                reasons.append(frame.get_close_reason())
            super().on_ws_frame(transport, frame)

    async with serve(net, lambda request: Keep()) as server:
        async with connect(net, server.url()) as (transport, _):
            transport.send_close(WSCloseCode.OK, b"done")
            await wait_for(transport.wait_disconnected())
        async with connect(net, server.url()) as (transport, _):
            transport.send_close(WSCloseCode.OK)
            await wait_for(transport.wait_disconnected())
    assert reasons == ["done", None]


async def test_disconnect_not_graceful_aborts(net):
    class Big(RecordingListener):
        pass

    async with serve(net, lambda request: Big()) as server:
        async with connect(net, server.url()) as (transport, _):
            listener = await server.next_listener()
            server_transport = await wait_for(listener.connected)
            server_transport.underlying_transport.set_write_buffer_limits(high=1 << 30)
            transport.underlying_transport.pause_reading()
            for _ in range(64):
                server_transport.send(WSMsgType.BINARY, b"x" * 65536)
            server_transport.disconnect(graceful=False)
            await wait_for(server_transport.wait_disconnected())
            assert server_transport.is_disconnected
            transport.underlying_transport.resume_reading()
            await wait_for(transport.wait_disconnected())


# -- logging ---------------------------------------------------------------------


async def test_logger_object_and_adapter(net, caplog):
    caplog.set_level(logging.DEBUG)
    server_logger = logging.getLogger("app.ws.server")
    client_logger = logging.LoggerAdapter(logging.getLogger("app.ws.client"), {"x": 1})
    async with serve(net, logger_name=server_logger) as server:
        async with connect(net, server.url(), logger_name=client_logger) as (transport, _):
            transport.send_close(WSCloseCode.OK, b"bye")
            await wait_for(transport.wait_disconnected())
    names = {r.name for r in caplog.records}
    assert "app.ws.server" in names and "app.ws.client" in names


async def test_logger_name_of_wrong_type(tcp):
    with pytest.raises(TypeError):
        await ws_connect(WSListener, "ws://127.0.0.1:1/", logger_name=42)


async def test_debug_story_of_a_connection(net, caplog):
    caplog.set_level(logging.DEBUG, logger="picows")
    async with serve(net, with_subprotocol, logger_name="story_s") as server:
        async with connect(net, server.url("/chat"), factory=EchoListener,
                           logger_name="story_c",
                           extra_headers={"Sec-WebSocket-Protocol": "stomp"}) as (transport, _):
            for _ in range(20):
                transport.send(WSMsgType.TEXT, b"hello")
            transport.send_close(WSCloseCode.OK, b"bye")
            await wait_for(transport.wait_disconnected())
        listener = listener_of(server.listeners[0])
        await wait_for(listener.disconnected)

    def story(name):
        return [r.getMessage() for r in caplog.records if r.name == name]

    server_story = "\n".join(story("picows.story_s"))
    client_story = "\n".join(story("picows.story_c"))
    assert "GET /chat HTTP/1.1 from ('127.0.0.1'" in server_story
    assert "101 Switching Protocols" in server_story
    assert "101 Switching Protocols from the server" in client_story
    assert "GET /chat HTTP/1.1 to ('127.0.0.1'" in client_story
    for text in (server_story, client_story):
        assert "handshake done: extensions=None, subprotocol=stomp" in text
        assert "CLOSE sent: 1000" in text
        assert "CLOSE received: 1000" in text
        assert "disconnected after the close handshake" in text
    assert "we close first" in client_story
    assert "the peer closes first" in server_story
    # Nothing per data frame: 20 messages and a handful of records.
    assert len(story("picows.story_c")) < 10, client_story


async def test_connect_timeout_still_works_with_refusal_without_length(net):
    """A refusal without Content-Length: the body is read until the server
    closes, and the error still carries the response."""

    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\n\r\nlater")
        await writer.drain()
        writer.close()

    async with raw_server(net, answer) as port:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, f"{net.scheme}://127.0.0.1:{port}/",
                                      **net.client_kwargs()), TIMEOUT)
    assert info.value.status == 503
    assert info.value.raw_body == b"later"
    assert info.value.response.headers["Retry-After"] == "3"


async def test_client_rejects_unoffered_subprotocol(net):

    async def answer(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0].decode()
        writer.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {expected_accept(key)}\r\n"
                      f"Sec-WebSocket-Protocol: chat\r\n\r\n").encode())
        await writer.drain()
        await reader.read()

    async with raw_server(net, answer) as port:
        url = f"{net.scheme}://127.0.0.1:{port}/"
        with pytest.raises(WSInvalidHeaderError) as info:
            await wait_for(ws_connect(WSListener, url, **net.client_kwargs()))
        assert info.value.name == "Sec-WebSocket-Protocol"
        with pytest.raises(WSInvalidHeaderError):
            await wait_for(ws_connect(WSListener, url, **net.client_kwargs(),
                                      extra_headers={"Sec-WebSocket-Protocol": "other"}))
        transport, _ = await wait_for(ws_connect(
            WSListener, url, **net.client_kwargs(),
            extra_headers={"Sec-WebSocket-Protocol": "other, chat"}))
        assert transport.response.headers["sec-websocket-protocol"] == "chat"
        transport.disconnect()
        await wait_for(transport.wait_disconnected())


async def test_raw_request_headers_case_insensitive(net):
    async with serve(net) as server:
        request, _ = client_upgrade("/")
        request = request.replace(b"\r\n\r\n", b"\r\nUser-Agent: raw/1\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        writer.write(request)
        await wait_for(reader.readuntil(b"\r\n\r\n"))
        await close_writer(writer)
    headers = server.requests[0].headers
    assert headers["User-Agent"] == headers["user-agent"] == "raw/1"
    assert headers.getall("x-a") == ["1", "2"]
    assert "user-agent" in list(headers)


# -- read_buffer_init_size -----------------------------------------------------------


@pytest.mark.parametrize("size", [1, 4096, 1 << 20])
async def test_read_buffer_init_size(net, size):
    payload = bytes(range(256)) * 1024   # 256 KiB: the buffer grows past any first size
    async with serve(net, read_buffer_init_size=size) as server:
        async with connect(net, server.url(), read_buffer_init_size=size) as (transport,
                                                                              listener):
            for message in (b"a", payload, b"b"):
                transport.send(WSMsgType.BINARY, message)
                assert (await listener.next_frame()).payload == message


@pytest.mark.parametrize("size", [0, -1, 1.5, 2 ** 40])
async def test_read_buffer_init_size_checked(size):
    with pytest.raises(ValueError):
        await ws_connect(WSListener, "ws://127.0.0.1:1/", read_buffer_init_size=size)
    with pytest.raises(ValueError):
        await ws_create_server(lambda r: None, "127.0.0.1", 0, read_buffer_init_size=size)
