"""Zero-copy sends from Python (send_reuse_external_bytearray), frame-once
broadcast, and server shutdown (ws_server_connections, ws_close_server), on
both loops, TCP and TLS, with the websockets package as one of the peers."""
from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets

from picows import (
    WSCloseCode,
    WSMsgType,
    broadcast,
    ws_close_server,
    ws_server_connections,
)

from tests.support import (
    TIMEOUT,
    RecordingListener,
    close_writer,
    connect,
    pattern,
    raw_handshake,
    read_frame,
    serve,
    wait_for,
)

# -- send_reuse_external_bytearray --------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
@pytest.mark.parametrize("side", ["client", "server"])
async def test_send_reuse_external_bytearray(net, side, size):
    payload = pattern(size)
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener = await server.next_listener()
        buffer = bytearray(20) + bytearray(payload)
        if side == "client":
            transport.send_reuse_external_bytearray(WSMsgType.BINARY, buffer, 20)
            echo = await client.next_frame()
            assert echo.payload == payload
        else:
            server_listener.transport.send_reuse_external_bytearray(
                WSMsgType.BINARY, buffer, 20)
            frame = await client.next_frame()
            assert frame.payload == payload
            # The server does not mask: its buffer still holds the message.
            assert bytes(buffer[20:]) == payload


async def test_send_reuse_external_bytearray_repeatedly(net):
    """The buffer is reused: encode, send, encode again."""
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        buffer = bytearray(64)
        for i in range(50):
            message = f"quote {i}".encode()
            del buffer[14:]
            buffer += message
            transport.send_reuse_external_bytearray(WSMsgType.TEXT, buffer, 14)
            assert (await client.next_frame()).payload == message
        await server.next_listener()


async def test_send_reuse_external_bytearray_fragments_and_ping(net):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener = await server.next_listener()
        transport.send_reuse_external_bytearray(WSMsgType.TEXT, bytearray(14) + b"he", 14,
                                                fin=False)
        transport.send_reuse_external_bytearray(WSMsgType.CONTINUATION,
                                                bytearray(14) + b"llo", 14)
        # The server echoes each fragment as it came.
        first = await client.next_frame()
        second = await client.next_frame()
        assert (first.msg_type, first.fin, first.payload) == (WSMsgType.TEXT, False, b"he")
        assert (second.msg_type, second.fin, second.payload) == (WSMsgType.CONTINUATION,
                                                                 True, b"llo")
        transport.send_reuse_external_bytearray(WSMsgType.PING, bytearray(14) + b"p", 14)
        ping = await server_listener.next_of(WSMsgType.PING)
        assert ping.payload == b"p"
        assert (await client.next_of(WSMsgType.PONG)).payload == b"p"


async def test_send_reuse_external_bytearray_compressed(net):
    async with serve(net, enable_compression=True) as server, \
            connect(net, server.url(), enable_compression=True) as (transport, client):
        await server.next_listener()
        message = b"compress me " * 100
        transport.send_reuse_external_bytearray(WSMsgType.BINARY,
                                                bytearray(14) + message, 14)
        assert (await client.next_frame()).payload == message


async def test_send_reuse_external_bytearray_errors(tcp):
    async with serve(tcp) as server, connect(tcp, server.url()) as (transport, client):
        with pytest.raises(ValueError, match="at least 14"):
            transport.send_reuse_external_bytearray(WSMsgType.BINARY, bytearray(20), 13)
        with pytest.raises(ValueError, match="past the end"):
            transport.send_reuse_external_bytearray(WSMsgType.BINARY, bytearray(20), 21)
        with pytest.raises(ValueError, match="send_close"):
            transport.send_reuse_external_bytearray(WSMsgType.CLOSE, bytearray(20), 14)
        with pytest.raises(ValueError, match="125"):
            transport.send_reuse_external_bytearray(WSMsgType.PING, bytearray(14 + 126), 14)
        with pytest.raises(TypeError):
            transport.send_reuse_external_bytearray(WSMsgType.BINARY, bytes(20), 14)
        # Nothing after our CLOSE (RFC 6455 5.5.1).
        transport.send_close(WSCloseCode.OK)
        transport.send_reuse_external_bytearray(WSMsgType.BINARY, bytearray(14) + b"x", 14)
        assert (await client.next_of(WSMsgType.CLOSE)).msg_type == WSMsgType.CLOSE


# -- broadcast --------------------------------------------------------------


async def _server_transports(server, count: int) -> list:
    listeners = [await server.next_listener() for _ in range(count)]
    return [listener.transport for listener in listeners]


async def test_broadcast_to_many(net):
    async with serve(net) as server, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(net, server.url()))
                   for _ in range(10)]
        transports = await _server_transports(server, 10)
        assert ws_server_connections(server.server) == frozenset(transports)
        for size in (0, 5, 300, 70_000):
            message = pattern(size)
            assert broadcast(transports, WSMsgType.BINARY, message) == []
            for _, listener in clients:
                frame = await listener.next_frame()
                assert (frame.msg_type, frame.payload) == (WSMsgType.BINARY, message)
        assert broadcast(transports, WSMsgType.TEXT, "héllo") == []
        for _, listener in clients:
            assert (await listener.next_frame()).payload == "héllo".encode()


async def test_broadcast_skips_closed_and_closing(net):
    async with serve(net) as server, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(net, server.url()))
                   for _ in range(3)]
        transports = await _server_transports(server, 3)
        transports[0].send_close(WSCloseCode.OK)        # closing
        clients[1][0].disconnect()                       # gone
        await wait_for(transports[1].wait_disconnected())
        skipped = broadcast(transports, WSMsgType.BINARY, b"news")
        assert skipped == transports[:2]
        assert (await clients[2][1].next_frame()).payload == b"news"


async def test_broadcast_skips_a_transport_paused_for_writing(net):
    """A peer that reads nothing: once its transport pauses writing it is
    skipped, so broadcast never buffers without bound."""
    async with serve(net) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            transport = (await server.next_listener()).transport
            transport.underlying_transport.set_write_buffer_limits(high=64 * 1024)
            message = bytes(256 * 1024)
            for _ in range(200):
                if broadcast([transport], WSMsgType.BINARY, message):
                    break
            else:
                pytest.fail("the transport never paused")
            assert transport.underlying_transport.get_write_buffer_size() < 64 * 1024 \
                + 2 * len(message) + 16
        finally:
            await close_writer(writer)


async def test_broadcast_mixed_compression_client_side_and_websockets(net):
    """Compressed connections compress their own copy; client-side
    transports mask their own; the websockets package receives it too."""
    async with serve(net, enable_compression=True) as server, \
            contextlib.AsyncExitStack() as stack:
        plain = await stack.enter_async_context(connect(net, server.url()))
        deflate = await stack.enter_async_context(
            connect(net, server.url(), enable_compression=True))
        peer = await stack.enter_async_context(websockets.connect(
            server.url(), ssl=net.client_kwargs().get("ssl_context"),
            compression="deflate"))
        transports = await _server_transports(server, 3)
        assert transports[1].extensions and transports[2].extensions
        message = b"quote " * 50
        assert broadcast(transports + [plain[0]], WSMsgType.BINARY, message) == []
        assert (await plain[1].next_frame()).payload == message
        assert (await deflate[1].next_frame()).payload == message
        assert await wait_for(peer.recv()) == message
        # plain[0] is a client transport: the server echoes what it got.
        assert (await plain[1].next_frame()).payload == message


async def test_broadcast_arguments(tcp):
    async with serve(tcp) as server, connect(tcp, server.url()):
        transports = await _server_transports(server, 1)
        with pytest.raises(ValueError, match="TEXT or BINARY"):
            broadcast(transports, WSMsgType.PING, b"")
        with pytest.raises(TypeError):
            broadcast([object()], WSMsgType.BINARY, b"")
        assert broadcast([], WSMsgType.BINARY, b"x") == []


# -- server shutdown --------------------------------------------------------


async def test_ws_close_server_sends_1001_and_waits(net):
    async with serve(net) as server, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(net, server.url()))
                   for _ in range(5)]
        await _server_transports(server, 5)
        await wait_for(ws_close_server(server.server))
        for transport, listener in clients:
            close = await listener.next_of(WSMsgType.CLOSE)
            assert close.close_code == WSCloseCode.GOING_AWAY
            await wait_for(transport.wait_disconnected())
        assert ws_server_connections(server.server) == frozenset()


async def test_ws_close_server_custom_code_and_a_silent_peer(net):
    """A peer that never answers the CLOSE is dropped after the timeout."""
    async with serve(net) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            await server.next_listener()
            loop = asyncio.get_running_loop()
            started = loop.time()
            await wait_for(ws_close_server(server.server, close_code=1012,
                                           close_message="restart", timeout=0.3))
            assert 0.25 <= loop.time() - started < TIMEOUT
            assert await wait_for(read_frame(reader)) == (
                True, WSMsgType.CLOSE, (1012).to_bytes(2, "big") + b"restart")
            assert await wait_for(reader.read()) == b""
        finally:
            await close_writer(writer)


async def test_ws_server_connections_of_an_unknown_server(tcp):
    loop = asyncio.get_running_loop()
    other = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    try:
        with pytest.raises(ValueError, match="ws_create_server"):
            ws_server_connections(other)
    finally:
        other.close()
        await other.wait_closed()


async def test_recording_listener_is_unaffected(tcp):
    """A server listener that never sees broadcast still echoes."""
    async with serve(tcp) as server, connect(tcp, server.url(),
                                             RecordingListener) as (transport, client):
        transport.send(WSMsgType.TEXT, b"x")
        assert (await client.next_frame()).payload == b"x"
