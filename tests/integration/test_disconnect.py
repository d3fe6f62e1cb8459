"""disconnect() and wait_disconnected() from both ends; on_ws_disconnected
runs exactly once whoever ends the connection and however."""
from __future__ import annotations

import asyncio
import logging
import os

import pytest

from picows import WSCloseCode, WSMsgType, ws_connect

from tests.support import (RecordingListener, close_writer, connect, raw_handshake, read_frame,
    serve, wait_for)


async def test_client_disconnect(net):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener, _ = await server.next_connected()
        transport.disconnect()
        transport.disconnect()  # idempotent
        assert await wait_for(transport.wait_disconnected()) is None
        await wait_for(server_listener.transport.wait_disconnected())
        # Already disconnected: returns at once, and again.
        assert await wait_for(transport.wait_disconnected(), 1) is None
        assert await wait_for(server_listener.transport.wait_disconnected(), 1) is None
        # Nothing happens on a closed transport.
        transport.disconnect()
        transport.send_close(WSCloseCode.OK)
    assert client.disconnected_calls == 1
    assert server_listener.disconnected_calls == 1
    assert client.connected_calls == 1
    assert server_listener.connected_calls == 1


async def test_server_disconnect(net):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener, server_transport = await server.next_connected()
        server_transport.disconnect()
        await wait_for(server_transport.wait_disconnected())
        await wait_for(transport.wait_disconnected())
    assert client.disconnected_calls == 1
    assert server_listener.disconnected_calls == 1


async def test_wait_disconnected_from_many_waiters(net):
    async with serve(net) as server, connect(net, server.url()) as (transport, _):
        waiters = [asyncio.ensure_future(transport.wait_disconnected()) for _ in range(3)]
        await asyncio.sleep(0)  # let them start waiting (ordering, not timing)
        assert not any(w.done() for w in waiters)
        transport.disconnect()
        assert await wait_for(asyncio.gather(*waiters)) == [None, None, None]


async def test_disconnect_flushes_pending_data(net):
    """Data sent right before disconnect() still reaches the peer."""
    payload = b"last words" * 10000
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener, _ = await server.next_connected()
        server_listener.transport.send(WSMsgType.BINARY, payload)
        server_listener.transport.send_close(WSCloseCode.GOING_AWAY, b"bye")
        server_listener.transport.disconnect()
        frame = await client.next_frame()
        close = await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
    assert frame.payload == payload
    assert close.close_code == WSCloseCode.GOING_AWAY


async def test_peer_vanishes(net):
    """A raw peer closing its socket without a CLOSE frame."""
    async with serve(net) as server:
        _, writer = await raw_handshake(net, server.port)
        server_listener, _ = await server.next_connected()
        writer.transport.abort()
        await close_writer(writer)
        await wait_for(server_listener.transport.wait_disconnected())
    assert server_listener.disconnected_calls == 1


async def test_server_close_while_connected(net):
    """Closing the asyncio.Server and disconnecting its connections ends the clients."""
    async with serve(net) as server:
        transport, client = await wait_for(ws_connect(RecordingListener, server.url(),
                                                         **net.client_kwargs()))
        server_listener, _ = await server.next_connected()
    # serve() disconnected every server-side connection on exit.
    await wait_for(transport.wait_disconnected())
    assert client.disconnected_calls == 1


async def test_nothing_sent_after_disconnect(net, caplog):
    """After disconnect() nothing more goes out: not straight to the socket,
    and not through the closing transport (which would log warnings)."""
    async with serve(net) as server:
        reader, writer = await raw_handshake(net, server.port)
        server_listener, server_transport = await server.next_connected()
        server_transport.send(WSMsgType.BINARY, b"before")
        server_transport.disconnect()
        for _ in range(10):
            server_transport.send(WSMsgType.BINARY, b"after")
        server_transport.send_ping(b"ping")
        assert await read_frame(reader) == (True, WSMsgType.BINARY, b"before")
        assert await wait_for(reader.read()) == b""
        await wait_for(server_transport.wait_disconnected())
        await close_writer(writer)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_loop_closes_the_socket_only_after_connection_lost(how):
    """What direct sends rely on: WSTransport writes straight to the socket's
    fd until connection_lost, so neither loop may close the socket before
    calling connection_lost (a reused fd number would get our bytes)."""
    loop = asyncio.get_running_loop()
    seen = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            self.fd = transport.get_extra_info("socket").fileno()

        def connection_lost(self, exc):
            try:
                os.fstat(self.fd)
                seen.append("open")
            except OSError:
                seen.append("closed")

    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(Probe, "127.0.0.1", port)
        getattr(transport, how)()
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.01)
    finally:
        server.close()
    assert seen == ["open"]
