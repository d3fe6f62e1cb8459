"""The TLS handshake counts against websocket_handshake_timeout: a client
that never sends a ClientHello is dropped after that (it was held for the
loops' 60 s ssl_handshake_timeout), TLS and the upgrade share one budget,
and an ssl_handshake_timeout the caller passes is still theirs. asyncio
(picows' own TLS) and uvloop (the loop's TLS), both sides."""
from __future__ import annotations

import asyncio
import time

import pytest

from picows import WSListener, ws_connect, ws_create_server

from tests.support import close_writer, client_upgrade, wait_for

# Far below the loops' 60 s, far above the timeout under a loaded machine.
BOUND = 8.0


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> float:
    """Seconds until the server closed the connection (EOF or reset)."""
    started = time.monotonic()
    try:
        while await wait_for(reader.read(1024), timeout):
            pass
    except (ConnectionError, OSError):
        pass
    return time.monotonic() - started


@pytest.fixture
async def tls_server(tls_pair):
    servers = []

    async def start(**kwargs):
        server = await ws_create_server(lambda request: WSListener(), "127.0.0.1", 0,
                                        ssl=tls_pair[0], **kwargs)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await wait_for(server.wait_closed())


async def test_silent_client_dropped_after_the_handshake_timeout(tls_server):
    port = await tls_server(websocket_handshake_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # No ClientHello, ever.
        elapsed = await read_until_closed(reader, BOUND + 5)
    finally:
        await close_writer(writer)
    assert 0.3 < elapsed < BOUND


async def test_tls_and_upgrade_share_the_budget(tls_server, tls_pair):
    # The client takes 1 s to start TLS, then sends no upgrade request: it is
    # dropped 2 s after connecting, not 2 s after TLS.
    port = await tls_server(websocket_handshake_timeout=2.0)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await asyncio.sleep(1.0)
        await wait_for(writer.start_tls(tls_pair[1], server_hostname="127.0.0.1"))
        await read_until_closed(reader, BOUND + 5)
    finally:
        await close_writer(writer)
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 2.9, f"dropped {elapsed:.2f} s after connecting"


async def test_upgrade_still_works_within_the_budget(tls_server, tls_pair):
    port = await tls_server(websocket_handshake_timeout=5)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls_pair[1], server_hostname="127.0.0.1")
    try:
        request, _ = client_upgrade("/")
        writer.write(request)
        head = await wait_for(reader.readuntil(b"\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 101 ")
    finally:
        await close_writer(writer)


async def test_explicit_ssl_handshake_timeout_is_kept(tls_server):
    port = await tls_server(websocket_handshake_timeout=0.3, ssl_handshake_timeout=30)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # Still open after well over websocket_handshake_timeout: TLS has 30 s.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1024), 1.5)
    finally:
        await close_writer(writer)


async def test_client_gives_up_on_a_server_that_never_answers_tls():
    async def mute(reader, writer):
        await reader.read()   # reads the ClientHello, answers nothing

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises((asyncio.TimeoutError, ConnectionError)):
            await asyncio.wait_for(ws_connect(WSListener, f"wss://127.0.0.1:{port}/",
                                              websocket_handshake_timeout=0.5), BOUND + 5)
        assert time.monotonic() - started < BOUND
    finally:
        server.close()
