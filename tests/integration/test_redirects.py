"""Client redirects (``max_redirects``) and upgrade control against an
independent peer, the ``websockets`` package: subprotocols, redirects and
errors both ways. Both loops; TCP and TLS where a test takes ``net``."""
from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import InvalidStatus

from picows import (
    WSInvalidStatusError,
    WSInvalidURL,
    WSListener,
    WSMsgType,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_connect,
)

from tests.support import EchoListener, RecordingListener, connect, raw_server, serve, wait_for


def redirect_to(location, status=302):
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_redirect_response(status, location), None)


# -- rules of max_redirects, picows on both ends ---------------------------------


async def check_redirect_lands_on_end(net, redirect) -> None:
    """/start answers `redirect(server)`, a redirect towards /end; the client
    follows it and its upgrade ends on /end."""
    def route(request):
        if request.path == b"/start":
            return redirect(server)
        return EchoListener()

    async with serve(net, route) as server:
        async with connect(net, server.url("/start")) as (transport, _):
            assert transport.request.path == b"/end"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_each_redirect_status_is_followed(net, status):
    await check_redirect_lands_on_end(net, lambda server: redirect_to("/end", status))


@pytest.mark.parametrize("status", [300, 304, 305])
async def test_other_3xx_are_not_followed(net, status):
    def route(request):
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse(b"HTTP/1.1", status, None, {"Location": "/end"}), None)

    async with serve(net, route) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url("/start"), **net.client_kwargs()))
    assert info.value.status == status


async def test_relative_and_absolute_locations(net):
    def route(request):
        if request.path == b"/a/b":
            return redirect_to("c?x=1")            # relative to /a/
        if request.path == b"/a/c?x=1":
            return redirect_to(server.url("/d"))    # absolute
        return EchoListener()

    async with serve(net, route) as server:
        async with connect(net, server.url("/a/b")) as (transport, _):
            assert transport.request.path == b"/d"
    assert [r.path for r in server.requests] == [b"/a/b", b"/a/c?x=1", b"/d"]


async def test_http_scheme_in_location_becomes_ws(net):
    scheme = "https" if net.tls else "http"
    await check_redirect_lands_on_end(
        net, lambda server: redirect_to(f"{scheme}://127.0.0.1:{server.port}/end"))


@pytest.mark.parametrize("limit", [0, 1, 5])
async def test_gives_up_after_max_redirects_with_last_response(net, limit):
    def route(request):
        n = int(request.path.decode().strip("/") or 0)
        return redirect_to(f"/{n + 1}")

    async with serve(net, route) as server:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url("/0"), max_redirects=limit,
                                      **net.client_kwargs()))
    assert len(server.requests) == limit + 1
    assert info.value.status == 302
    assert info.value.response.headers["location"] == f"/{limit + 1}"


async def test_default_is_five(tcp):
    def route(request):
        n = int(request.path.decode().strip("/") or 0)
        return redirect_to(f"/{n + 1}")

    async with serve(tcp, route) as server:
        with pytest.raises(WSInvalidStatusError):
            await wait_for(ws_connect(WSListener, server.url("/0")))
    assert len(server.requests) == 6


async def test_never_from_wss_to_ws(tls, tcp):
    async with serve(tcp) as plain:
        async with serve(tls, lambda request: redirect_to(plain.url("/"))) as secure:
            with pytest.raises(WSInvalidStatusError) as info:
                await wait_for(ws_connect(WSListener, secure.url("/"), **tls.client_kwargs()))
    assert info.value.status == 302
    assert plain.requests == []


async def test_ws_to_wss_is_followed(tls, tcp):
    async with serve(tls) as secure:
        async with serve(tcp, lambda request: redirect_to(secure.url("/s"))) as plain:
            transport, _ = await wait_for(ws_connect(
                RecordingListener, plain.url("/"), ssl_context=tls.client_ssl))
            assert transport.is_secure
            transport.disconnect()
            await wait_for(transport.wait_disconnected())
    assert [r.path for r in secure.requests] == [b"/s"]


async def test_credentials_kept_same_origin_dropped_elsewhere(tcp):
    async with serve(tcp) as other:
        def route(request):
            if request.path == b"/same":
                return redirect_to("/here")
            if request.path == b"/cross":
                return redirect_to(other.url("/there"))
            return EchoListener()

        async with serve(tcp, route) as server:
            base = f"ws://u:p@127.0.0.1:{server.port}"
            async with connect(tcp, base + "/same"):
                pass
            async with connect(tcp, base + "/cross"):
                pass
    by_path = {r.path: r.headers.get("authorization") for r in server.requests}
    assert by_path[b"/same"] == by_path[b"/here"] == "Basic dTpw"
    assert other.requests[0].headers.get("authorization") is None


async def test_bad_location_is_invalid_url(tcp):
    async with serve(tcp, lambda request: redirect_to("ftp://example.org/")) as server:
        with pytest.raises(WSInvalidURL):
            await wait_for(ws_connect(WSListener, server.url("/")))


async def test_invalid_url_is_a_value_error():
    with pytest.raises(ValueError) as info:
        await ws_connect(WSListener, "http://127.0.0.1/")
    assert isinstance(info.value, WSInvalidURL)
    with pytest.raises(ValueError):
        await ws_connect(WSListener, "ws://127.0.0.1/", max_redirects=-1)


async def test_redirect_from_raw_server_keeps_headers_of_refusal(net):
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\nContent-Length: 4\r\n\r\nmove")
        await writer.drain()
        await reader.read()

    async with raw_server(net, answer) as port:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, f"{net.scheme}://127.0.0.1:{port}/",
                                      max_redirects=0, **net.client_kwargs()))
    assert ("location", "ftp://x/") in info.value.headers
    assert info.value.raw_body == b"move"


# -- interop: websockets as the peer ------------------------------------------------


@contextlib.asynccontextmanager
async def websockets_server(net, **kwargs):
    async def handler(ws):
        async for message in ws:
            await ws.send(message)

    ssl_kwargs = {"ssl": net.server_ssl} if net.tls else {}
    async with websockets_serve(handler, "127.0.0.1", 0, compression=None,
                                ping_interval=None, **ssl_kwargs, **kwargs) as server:
        yield server.sockets[0].getsockname()[1]


def websockets_client_kwargs(net):
    kwargs = {"compression": None, "ping_interval": None, "proxy": None}
    if net.tls:
        kwargs["ssl"] = net.client_ssl
    return kwargs


async def test_picows_client_subprotocol_with_websockets_server(net):
    async with websockets_server(net, subprotocols=["graphql-transport-ws"]) as port:
        url = f"{net.scheme}://127.0.0.1:{port}/"
        async with connect(net, url, extra_headers={
                "Sec-WebSocket-Protocol": "graphql-ws, graphql-transport-ws"}) as (t, listener):
            assert t.response.headers["Sec-WebSocket-Protocol"] == "graphql-transport-ws"
            t.send(WSMsgType.TEXT, b"ping")
            assert (await listener.next_frame()).payload == b"ping"


async def test_websockets_client_subprotocol_with_picows_server(net):
    def route(request):
        offered = [p.strip() for p in request.headers["sec-websocket-protocol"].split(",")]
        assert offered == ["ocpp2.0.1", "ocpp1.6"]
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(
            {"Sec-WebSocket-Protocol": "ocpp1.6"}), EchoListener())

    async with serve(net, route) as server:
        async with websockets_connect(server.url(), subprotocols=["ocpp2.0.1", "ocpp1.6"],
                                      **websockets_client_kwargs(net)) as ws:
            assert ws.subprotocol == "ocpp1.6"
            await ws.send("hi")
            assert await wait_for(ws.recv()) == "hi"


async def test_websockets_client_sees_picows_401(net):
    def route(request):
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
            HTTPStatus.UNAUTHORIZED, b"token expired",
            {"WWW-Authenticate": "Bearer"}), None)

    async with serve(net, route) as server:
        with pytest.raises(InvalidStatus) as info:
            await wait_for(websockets_connect(server.url(), **websockets_client_kwargs(net)))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.body == b"token expired"


async def test_websockets_client_follows_picows_redirect(net):
    def route(request):
        if request.path == b"/old":
            return redirect_to("/new", 301)
        return EchoListener()

    async with serve(net, route) as server:
        async with websockets_connect(server.url("/old"), **websockets_client_kwargs(net)) as ws:
            await ws.send("x")
            assert await wait_for(ws.recv()) == "x"
    assert [r.path for r in server.requests] == [b"/old", b"/new"]


async def test_picows_client_follows_websockets_redirect_and_sees_its_errors(net):
    def process_request(connection, request):
        if request.path == "/old":
            response = connection.respond(HTTPStatus.FOUND, "moved\n")
            response.headers["Location"] = "/new"
            return response
        if request.path == "/forbidden":
            return connection.respond(HTTPStatus.FORBIDDEN, "no entry\n")
        return None

    async with websockets_server(net, process_request=process_request) as port:
        base = f"{net.scheme}://127.0.0.1:{port}"
        async with connect(net, base + "/old") as (transport, listener):
            assert transport.request.path == b"/new"
            transport.send(WSMsgType.BINARY, b"abc")
            assert (await listener.next_frame()).payload == b"abc"
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, base + "/forbidden", **net.client_kwargs()))
    assert info.value.status == 403
    assert info.value.raw_body == b"no entry\n"
    assert info.value.response.headers["content-type"].startswith("text/plain")


async def test_websockets_health_check_style_plain_get(net):
    """A plain GET answered 200 by picows, read by an HTTP/1.1 client."""
    def route(request):
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_ok_response(b'{"ok": true}',
                                                 {"Content-Type": "application/json"}), None)

    async with serve(net, route) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await wait_for(reader.read())
        writer.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in data
    assert data.endswith(b'\r\n\r\n{"ok": true}')


async def test_redirect_not_followed_with_sock(tcp):
    import socket

    async with serve(tcp, lambda request: redirect_to("/elsewhere")) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, server.url("/"), sock=sock))
    assert info.value.status == 302
    assert len(server.requests) == 1
