"""Loopback helpers: a picows server and client over TCP or TLS, and a raw
RFC 6455 peer (asyncio streams and the wire helpers, independent of picows).

Every wait is bounded by ``TIMEOUT`` (``asyncio.wait_for``); nothing sleeps
for correctness.
"""
from __future__ import annotations

import asyncio
import contextlib
import resource
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any, Callable

from picows import WSListener, ws_connect, ws_create_server

from .listeners import TIMEOUT, EchoListener, RecordingListener
from .wire import client_upgrade, expected_accept, head_headers, switching_response


async def wait_for(aw, timeout: float = TIMEOUT):
    return await asyncio.wait_for(aw, timeout)


def check_elapsed(started: float, timeout: float) -> float:
    """A configured timeout fired: not before 80 % of it, and well within TIMEOUT."""
    elapsed = time.monotonic() - started
    assert timeout * 0.8 <= elapsed < TIMEOUT / 2, elapsed
    return elapsed


def raise_nofile(needed: int) -> None:
    """Raise RLIMIT_NOFILE to ``needed`` file descriptors, or skip the test."""
    import pytest  # here: the fuzz targets import tests.support without pytest

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Net:
    """How to reach a server: ``kind`` is "tcp" or "tls"."""

    def __init__(self, kind: str, server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.kind = kind
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl

    @property
    def tls(self) -> bool:
        return self.kind == "tls"

    @property
    def scheme(self) -> str:
        return "wss" if self.tls else "ws"

    def server_kwargs(self) -> dict:
        return {"ssl": self.server_ssl} if self.tls else {}

    def client_kwargs(self) -> dict:
        return {"ssl_context": self.client_ssl} if self.tls else {}

    def raw_kwargs(self) -> dict:
        """Keyword arguments for asyncio.open_connection / start_server clients."""
        return {"ssl": self.client_ssl, "server_hostname": "127.0.0.1"} if self.tls else {}

    def raw_server_kwargs(self) -> dict:
        return {"ssl": self.server_ssl} if self.tls else {}


class ServerHandle:
    """A running picows server that records every request and listener."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.server: Any = None
        self.port = 0
        self.requests: list[Any] = []
        self.listeners: list[WSListener] = []
        self.new_listener: asyncio.Queue = asyncio.Queue()

    def url(self, path: str = "/") -> str:
        return f"{self.net.scheme}://127.0.0.1:{self.port}{path}"

    async def next_listener(self, timeout: float = TIMEOUT):
        return await wait_for(self.new_listener.get(), timeout)

    async def next_connected(self, timeout: float = TIMEOUT) -> tuple[Any, Any]:
        """(listener, transport) of the next connection, once on_ws_connected ran."""
        listener = await self.next_listener(timeout)
        return listener, await wait_for(listener.connected, timeout)


@contextlib.asynccontextmanager
async def serve(net: Net, route: Callable | None = None,
                **kwargs) -> AsyncIterator[ServerHandle]:
    """Run ``ws_create_server`` on 127.0.0.1 and an ephemeral port.

    ``route(request)`` returns a listener or None (default: EchoListener for
    every path). On exit every server-side connection is disconnected and
    waited for, then the server is closed.
    """
    handle = ServerHandle(net)
    route = route or (lambda request: EchoListener())

    def factory(request):
        handle.requests.append(request)
        listener = route(request)
        if listener is not None:
            handle.listeners.append(listener)
            handle.new_listener.put_nowait(listener)
        return listener

    handle.server = await ws_create_server(factory, "127.0.0.1", 0,
                                           **net.server_kwargs(), **kwargs)
    handle.port = handle.server.sockets[0].getsockname()[1]
    try:
        yield handle
    finally:
        handle.server.close()
        for listener in handle.listeners:
            transport = getattr(listener, "transport", None)
            if transport is not None:
                transport.disconnect()
                with contextlib.suppress(Exception):
                    await wait_for(transport.wait_disconnected())
        await wait_for(handle.server.wait_closed())


@contextlib.asynccontextmanager
async def connect(net: Net, url: str, factory: Callable = RecordingListener,
                  **kwargs) -> AsyncIterator[tuple[Any, Any]]:
    """``ws_connect`` with the transport's TLS context; disconnects on exit."""
    transport, listener = await wait_for(ws_connect(factory, url, **net.client_kwargs(),
                                                    **kwargs))
    try:
        yield transport, listener
    finally:
        transport.disconnect()
        # wait_disconnected re-raises a listener exception; the test checks it.
        with contextlib.suppress(Exception):
            await wait_for(transport.wait_disconnected())


# --------------------------------------------------------------------------
# A raw peer


async def raw_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Server side of the upgrade, by hand: read the request, answer 101."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = head_headers(head)[1].get("sec-websocket-key", "")
    writer.write(switching_response(key))
    await writer.drain()
    return head


async def raw_handshake(net: Net, port: int, path: str = "/", *,
                        limit: int = 2 ** 16):
    """Open a raw connection and complete the upgrade by hand.

    Returns (reader, writer). ``limit`` is the StreamReader's buffer limit:
    once about twice that much is buffered unread, the StreamReader stops
    reading from the socket, i.e. the peer "stops reading".
    """
    reader, writer = await wait_for(asyncio.open_connection(
        "127.0.0.1", port, limit=limit, **net.raw_kwargs()))
    request, key = client_upgrade(path)
    writer.write(request)
    head = await wait_for(reader.readuntil(b"\r\n\r\n"))
    status, headers = head_headers(head)
    assert status.startswith(b"HTTP/1.1 101"), head
    assert headers.get("sec-websocket-accept") == expected_accept(key), head
    return reader, writer


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the peer sends until it closes (or the connection breaks)."""
    data = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return data
            data += chunk
    except (ConnectionError, ssl.SSLError):
        return data


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await wait_for(writer.wait_closed())


@contextlib.asynccontextmanager
async def raw_server(net: Net, on_connection: Callable, **kwargs) -> AsyncIterator[int]:
    """An asyncio stream server (``kwargs`` for ``asyncio.start_server``);
    yields its port. Open connections are closed on exit, and an exception
    in ``on_connection`` other than a broken connection fails the test."""
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task] = []

    async def handler(reader, writer):
        writers.append(writer)
        tasks.append(asyncio.current_task())
        try:
            await on_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass

    server = await asyncio.start_server(handler, "127.0.0.1", 0, **net.raw_server_kwargs(),
                                        **kwargs)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            await close_writer(writer)
        if tasks:
            results = await wait_for(asyncio.gather(*tasks, return_exceptions=True))
            # A failed assertion in a handler fails the test.
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        await wait_for(server.wait_closed())
