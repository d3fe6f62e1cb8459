"""Handshakes that fail or never finish, from both ends."""
from __future__ import annotations

import asyncio
import time

import pytest

from picows import WSError, WSListener, ws_connect

from tests.support import (TIMEOUT, close_writer, raw_handshake, raw_server, read_until_eof, serve,
    wait_for)


HANDSHAKE_TIMEOUT = 0.5


async def test_server_that_never_answers_times_out(net):
    got_request = asyncio.Event()

    async def silent(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        got_request.set()
        await reader.read()  # never answer; wait for the client to go away

    async with raw_server(net, silent) as port:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await wait_for(ws_connect(WSListener, f"{net.scheme}://127.0.0.1:{port}/",
                                      websocket_handshake_timeout=HANDSHAKE_TIMEOUT,
                                      **net.client_kwargs()))
        elapsed = time.monotonic() - started
    assert got_request.is_set()
    assert HANDSHAKE_TIMEOUT * 0.8 <= elapsed < TIMEOUT / 2


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
                         ids=["nothing", "partial-request"])
async def test_client_that_never_upgrades_is_dropped(net, sent):
    async with serve(net, websocket_handshake_timeout=HANDSHAKE_TIMEOUT) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        started = time.monotonic()
        writer.write(sent)
        try:
            response = await wait_for(read_until_eof(reader))
            elapsed = time.monotonic() - started
        finally:
            await close_writer(writer)
    assert not response.startswith(b"HTTP/1.1 101"), response
    assert HANDSHAKE_TIMEOUT * 0.8 <= elapsed < TIMEOUT / 2
    assert server.listeners == []


async def test_bad_upgrade_request_gets_400(net):
    """A GET without the Upgrade headers is answered 400 and the socket closed."""
    async with serve(net) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            response = await wait_for(read_until_eof(reader))
        finally:
            await close_writer(writer)
    assert response.startswith(b"HTTP/1.1 400"), response
    # The factory sees every request (it could answer a plain GET); the
    # listener it returned for this one never connects.
    assert all(listener.connected_calls == 0 for listener in server.listeners)


async def test_raw_upgrade_request_gets_101(net):
    """The server's answer to a hand-written RFC 6455 request is a proper 101."""
    async with serve(net) as server:
        # raw_handshake asserts the status and Sec-WebSocket-Accept.
        _, writer = await raw_handshake(net, server.port, "/raw")
        await close_writer(writer)
    assert [request.path for request in server.requests] == [b"/raw"]


@pytest.mark.parametrize("response, status", [
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "403"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "200"),
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "500"),
    (b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n", "426"),
], ids=["403", "200", "500", "426"])
async def test_failed_handshake_raises_wserror(net, response, status):
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        await reader.read()

    async with raw_server(net, answer) as port:
        with pytest.raises(WSError, match=status):
            await wait_for(ws_connect(WSListener, f"{net.scheme}://127.0.0.1:{port}/",
                                      **net.client_kwargs()))


async def test_wrong_accept_key_raises_wserror(net):
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with raw_server(net, answer) as port:
        with pytest.raises(WSError):
            await wait_for(ws_connect(WSListener, f"{net.scheme}://127.0.0.1:{port}/",
                                      **net.client_kwargs()))


BAD_URLS = ["http://127.0.0.1:{port}/", "https://127.0.0.1:{port}/", "ftp://127.0.0.1:{port}/",
            "127.0.0.1:{port}", "not a url", "ws://", "ws:///path", "ws://127.0.0.1:notaport/", ""]


@pytest.mark.parametrize("url", BAD_URLS)
async def test_bad_url_raises_before_connecting(tcp, url):
    connections = []

    async def count(reader, writer):
        connections.append(writer)
        await reader.read()

    async with raw_server(tcp, count) as port:
        with pytest.raises((ValueError, WSError)):
            await wait_for(ws_connect(WSListener, url.format(port=port)))
    assert connections == []


async def test_connection_refused_propagates(tcp):
    """Nothing listening: the OS error reaches the caller (create_connection's)."""
    async with raw_server(tcp, lambda r, w: r.read()) as port:
        pass  # the port is now closed
    with pytest.raises(OSError):
        await wait_for(ws_connect(WSListener, f"ws://127.0.0.1:{port}/"))
