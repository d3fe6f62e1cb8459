"""The server's listener factory as a router: paths, 404, the request it
sees (including the client's extra_headers)."""
from __future__ import annotations

import pytest
import websockets
from websockets.asyncio.client import connect as websockets_connect

from picows import WSError, WSListener, WSMsgType, ws_connect

from tests.support import EchoListener, RecordingListener, connect, serve, wait_for


class Greeter(RecordingListener):
    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        transport.send(WSMsgType.TEXT, b"hello from /greet")


def route(request):
    path = request.path.split(b"?", 1)[0]
    if path == b"/echo":
        return EchoListener()
    if path == b"/greet":
        return Greeter()
    return None


async def test_route_by_path(net):
    async with serve(net, route) as server:
        async with connect(net, server.url("/greet")) as (_, client):
            greeting = await client.next_frame()
        async with connect(net, server.url("/echo?x=1")) as (transport, client):
            transport.send(WSMsgType.TEXT, b"echoed")
            echo = await client.next_frame()
    assert greeting.payload == b"hello from /greet"
    assert echo.payload == b"echoed"
    assert [type(listener) for listener in server.listeners] == [Greeter, EchoListener]


@pytest.mark.parametrize("path", ["/", "/missing", "/echo/more"])
async def test_factory_returning_none_is_404(net, path):
    async with serve(net, route) as server:
        with pytest.raises(WSError, match="404"):
            await wait_for(ws_connect(WSListener, server.url(path), **net.client_kwargs()))
        # The server goes on serving after a 404.
        async with connect(net, server.url("/echo")) as (transport, client):
            transport.send(WSMsgType.BINARY, b"still here")
            frame = await client.next_frame()
    assert frame.payload == b"still here"
    assert [request.path for request in server.requests] == [path.encode(), b"/echo"]


async def test_404_seen_by_websockets_client(tcp):
    async with serve(tcp, route) as server:
        with pytest.raises(websockets.InvalidStatus) as info:
            await wait_for(websockets_connect(server.url("/missing"), proxy=None))
    assert info.value.response.status_code == 404


async def test_upgrade_request_fields(net):
    async with serve(net) as server, connect(net, server.url("/some/path?a=1&b=%20")):
        pass
    (request,) = server.requests
    assert request.method == b"GET"
    assert request.path == b"/some/path?a=1&b=%20"
    assert request.version == b"HTTP/1.1"
    assert request.headers["host"] in ("127.0.0.1", f"127.0.0.1:{server.port}")
    assert request.headers["upgrade"].lower() == "websocket"
    assert request.headers["sec-websocket-version"] == "13"
    assert all(name == name.lower() for name in request.headers)


@pytest.mark.parametrize("extra_headers", [
    {"X-Picows-Test": "dict value", "Authorization": "Bearer t0ken"},
    [("X-Picows-Test", "dict value"), ("Authorization", "Bearer t0ken")],
], ids=["dict", "pairs"])
async def test_extra_headers(net, extra_headers):
    async with serve(net) as server, connect(net, server.url(), extra_headers=extra_headers):
        pass
    (request,) = server.requests
    assert request.headers["x-picows-test"] == "dict value"
    assert request.headers["authorization"] == "Bearer t0ken"
