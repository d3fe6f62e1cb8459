"""max_write_buffer_size: a peer that never reads cannot pin unbounded
memory, even when the listener ignores pause_writing. Over the limit the
connection is dropped, logged with the peer's address, the transport's
buffer is freed and on_ws_disconnected runs once. Both sides, asyncio and
uvloop, TCP and TLS."""
from __future__ import annotations

import asyncio
import logging

import pytest

from picows import WSListener, WSMsgType, ws_connect, ws_create_server

from tests.support import close_writer, raw_accept, raw_handshake, raw_server, wait_for

LIMIT = 1 << 20
CHUNK = b"x" * (64 * 1024)
# Kernel socket buffers on loopback take a few MiB before anything queues
# in the transport; far more than that means the limit did not work.
GIVE_UP = 256 << 20


class Flooder(WSListener):
    """Sends as fast as the loop allows, deaf to pause_writing."""

    def __init__(self) -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.sent = 0
        self.disconnected_calls = 0
        self.disconnected = loop.create_future()
        self.transport = None

    def on_ws_connected(self, transport) -> None:
        self.transport = transport
        self.loop.call_soon(self._flood)

    def _flood(self) -> None:
        if self.disconnected.done() or self.sent > GIVE_UP:
            return
        for _ in range(16):
            self.transport.send(WSMsgType.BINARY, CHUNK)
            self.sent += len(CHUNK)
        self.loop.call_soon(self._flood)

    def on_ws_disconnected(self, transport) -> None:
        self.disconnected_calls += 1
        if not self.disconnected.done():
            self.disconnected.set_result(None)


async def buffer_freed(transport) -> bool:
    """The transport lets go of the queued bytes: at once on asyncio, once
    its handle closes on uvloop (a few loop iterations)."""
    for _ in range(200):
        if transport.underlying_transport.get_write_buffer_size() == 0:
            return True
        await asyncio.sleep(0.01)
    return False


def dropped_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "does not read" in r.getMessage()]


async def test_server_drops_a_client_that_does_not_read(net, caplog):
    caplog.set_level(logging.WARNING, logger="picows")
    listeners: list[Flooder] = []

    def route(request):
        listeners.append(Flooder())
        return listeners[-1]

    server = await ws_create_server(route, "127.0.0.1", 0, max_write_buffer_size=LIMIT,
                                    **net.server_kwargs())
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await raw_handshake(net, port, limit=1024)
        try:
            await wait_for(listeners[0].disconnected, 30)
        finally:
            await close_writer(writer)
        listener = listeners[0]
        assert listener.sent < GIVE_UP
        assert listener.disconnected_calls == 1
        assert await buffer_freed(listener.transport), "the queued bytes were not freed"
        records = dropped_records(caplog)
        assert len(records) == 1
        assert "127.0.0.1" in records[0].getMessage()
        assert records[0].levelno == logging.WARNING
    finally:
        server.close()
        await wait_for(server.wait_closed())


async def test_client_drops_a_server_that_does_not_read(net, caplog):
    caplog.set_level(logging.WARNING, logger="picows")
    stop = asyncio.Event()

    async def deaf(reader, writer):
        await raw_accept(reader, writer)
        # Never read again: the client's frames pile up.
        await stop.wait()

    async with raw_server(net, deaf) as port:
        try:
            transport, listener = await wait_for(ws_connect(
                Flooder, f"{net.scheme}://127.0.0.1:{port}/", max_write_buffer_size=LIMIT,
                **net.client_kwargs()))
            await wait_for(listener.disconnected, 30)
            assert listener.sent < GIVE_UP
            assert listener.disconnected_calls == 1
            assert await buffer_freed(transport)
            records = dropped_records(caplog)
            assert len(records) == 1 and "127.0.0.1" in records[0].getMessage()
            # Sending after the drop does nothing (and raises nothing).
            transport.send(WSMsgType.BINARY, CHUNK)
        finally:
            stop.set()


@pytest.mark.parametrize("value", [0, -1, 1.5, "1", True])
async def test_max_write_buffer_size_is_checked(value):
    with pytest.raises(ValueError, match="max_write_buffer_size"):
        await ws_create_server(lambda request: None, "127.0.0.1", 0,
                               max_write_buffer_size=value)
    with pytest.raises(ValueError, match="max_write_buffer_size"):
        await ws_connect(WSListener, "ws://127.0.0.1:1/", max_write_buffer_size=value)


