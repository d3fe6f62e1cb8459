"""An async listener factory on the server: ws_create_server's factory may be
a coroutine function (or return any awaitable). The upgrade waits for it with
reading paused, under the handshake timeout, and then goes on as for a
synchronous result. Both loops, TCP and TLS."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from picows import (
    WSError,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_connect,
    ws_create_server,
)

from tests.support import EchoListener, RecordingListener, close_writer, wait_for


@contextlib.asynccontextmanager
async def server_with(net, factory, **kwargs):
    server = await ws_create_server(factory, "127.0.0.1", 0, **net.server_kwargs(), **kwargs)
    try:
        yield f"ws{'s' if net.tls else ''}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_coroutine_factory_upgrades(net):
    seen = []

    async def factory(request):
        await asyncio.sleep(0)          # really suspends
        seen.append(request.path)
        return EchoListener()

    async with server_with(net, factory) as url:
        transport, listener = await wait_for(
            ws_connect(RecordingListener, url + "/chat", **net.client_kwargs()))
        transport.send(WSMsgType.TEXT, b"hello")
        frame = await listener.next_frame()
        assert (frame.msg_type, frame.payload) == (WSMsgType.TEXT, b"hello")
        transport.disconnect()
        await wait_for(transport.wait_disconnected())
    assert seen == [b"/chat"]


@pytest.mark.parametrize("answer, status", [
    (lambda: None, 404),
    (lambda: WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(401, b"who?"), None), 401),
    (lambda: WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_redirect_response(302, "/elsewhere"), None), 302),
])
async def test_coroutine_factory_refusals(net, answer, status):
    async def factory(request):
        await asyncio.sleep(0)
        return answer()

    async with server_with(net, factory) as url:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, url, max_redirects=0,
                                      **net.client_kwargs()))
    assert info.value.status == status


async def test_coroutine_factory_raising_is_500(net, caplog):
    async def factory(request):
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    async with server_with(net, factory) as url:
        with pytest.raises(WSInvalidStatusError) as info:
            await wait_for(ws_connect(WSListener, url, **net.client_kwargs()))
    assert info.value.status == 500
    assert "ws_listener_factory raised" in caplog.text


async def test_slow_factory_is_bounded_by_the_handshake_timeout(net):
    cancelled = asyncio.Event()

    async def factory(request):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return EchoListener()

    async with server_with(net, factory, websocket_handshake_timeout=0.2) as url:
        # Aborted without an answer: no status for the client.
        with pytest.raises(WSError, match="connection lost during the handshake"):
            await wait_for(ws_connect(WSListener, url, **net.client_kwargs()))
        await wait_for(cancelled.wait())


async def test_client_gone_while_the_factory_runs(net):
    # Reading is paused while the factory runs, so the server notices the
    # client's close at the handshake timeout at the latest (here 0.3 s);
    # then the factory's task is cancelled and nothing is written.
    called = asyncio.Event()
    cancelled = asyncio.Event()

    async def factory(request):
        called.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return EchoListener()

    async with server_with(net, factory, websocket_handshake_timeout=0.3) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", port, **net.raw_kwargs()))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        await wait_for(called.wait())
        await close_writer(writer)
        await wait_for(cancelled.wait())
