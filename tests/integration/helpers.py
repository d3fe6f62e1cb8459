"""Helpers for the loopback tests: recording listeners, a server wrapper, and a
raw RFC 6455 client / HTTP server written from the RFC, independent of picows.

Every wait is bounded by ``TIMEOUT`` (``asyncio.wait_for``); nothing sleeps
for correctness.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Callable

from picows import WSListener, WSMsgType, ws_connect, ws_create_server

TIMEOUT = 10.0  # upper bound for anything that must happen on loopback
RFC_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DATA_TYPES = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)


async def wait_for(aw, timeout: float = TIMEOUT):
    return await asyncio.wait_for(aw, timeout)


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes of a given size."""
    block = bytes((i * 7 + 3) & 0xFF for i in range(251))  # 251: prime, so misalignments show
    return (block * (size // len(block) + 1))[:size]


# --------------------------------------------------------------------------
# Frames copied out of the callback


@dataclass(frozen=True)
class Frame:
    msg_type: WSMsgType
    fin: bool
    rsv1: bool
    payload: bytes
    payload_size: int
    close_code: int | None = None
    close_message: bytes | None = None


def copy_frame(frame) -> Frame:
    """Copy everything out of a WSFrame; it is only valid during on_ws_frame."""
    close_code = close_message = None
    if frame.msg_type == WSMsgType.CLOSE:
        close_code = int(frame.get_close_code())
        close_message = frame.get_close_message()
    return Frame(frame.msg_type, bool(frame.fin), bool(frame.rsv1),
                 frame.get_payload_as_bytes(), frame.payload_size,
                 close_code, close_message)


class RecordingListener(WSListener):
    """Copies every frame into a queue and records the callbacks."""

    def __init__(self) -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self.transport = None
        self.connected: asyncio.Future = loop.create_future()
        self.disconnected: asyncio.Future = loop.create_future()
        self.connected_calls = 0
        self.disconnected_calls = 0
        self.frames: asyncio.Queue = asyncio.Queue()
        self.pause_calls = 0
        self.resume_calls = 0

    def on_ws_connected(self, transport) -> None:
        self.connected_calls += 1
        self.transport = transport
        if not self.connected.done():
            self.connected.set_result(transport)

    def on_ws_frame(self, transport, frame) -> None:
        self.frames.put_nowait(copy_frame(frame))

    def on_ws_disconnected(self, transport) -> None:
        self.disconnected_calls += 1
        if not self.disconnected.done():
            self.disconnected.set_result(None)

    def pause_writing(self) -> None:
        self.pause_calls += 1

    def resume_writing(self) -> None:
        self.resume_calls += 1

    async def next_frame(self, *, skip=(WSMsgType.PING, WSMsgType.PONG),
                         timeout: float = TIMEOUT) -> Frame:
        """The next frame whose type is not in ``skip``."""
        while True:
            frame = await wait_for(self.frames.get(), timeout)
            if frame.msg_type not in skip:
                return frame

    async def next_of(self, msg_type: WSMsgType, timeout: float = TIMEOUT) -> Frame:
        """The next frame of ``msg_type``, skipping any other."""
        while True:
            frame = await wait_for(self.frames.get(), timeout)
            if frame.msg_type == msg_type:
                return frame


    def drain(self) -> list[Frame]:
        """Every frame recorded and not consumed yet."""
        frames = []
        while not self.frames.empty():
            frames.append(self.frames.get_nowait())
        return frames


class EchoListener(RecordingListener):
    """Echoes every data frame as it came (type, fin), records every frame."""

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in DATA_TYPES:
            transport.send(frame.msg_type, frame.get_payload_as_bytes(), fin=frame.fin)
        else:
            super().on_ws_frame(transport, frame)


# --------------------------------------------------------------------------
# Transports: plain TCP or TLS with a certificate made by trustme


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
# A raw RFC 6455 client, written from the RFC


def accept_for(key: str) -> str:
    """Sec-WebSocket-Accept for a key, RFC 6455 section 4.2.2."""
    return base64.b64encode(hashlib.sha1(key.encode() + RFC_GUID).digest()).decode()


def upgrade_request(path: str = "/", host: str = "127.0.0.1",
                    key: str | None = None) -> tuple[bytes, str]:
    key = key or base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\n"
               f"Host: {host}\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    return request, key


def client_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A masked frame, as a client must send it."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def server_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


async def read_frame(reader: asyncio.StreamReader, *, masked: bool = False,
                     first_byte: int | None = None) -> tuple[bool, int, bytes]:
    """Read one frame: (fin, opcode, payload). A client's frames are
    ``masked`` (RFC 6455 5.1); the payload is returned unmasked. Pass
    ``first_byte`` when the caller already read it."""
    if first_byte is None:
        b0, b1 = await reader.readexactly(2)
    else:
        b0, b1 = first_byte, (await reader.readexactly(1))[0]
    assert bool(b1 & 0x80) == masked, f"mask bit is {bool(b1 & 0x80)}, expected {masked}"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if masked else b""
    payload = await reader.readexactly(n)
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(b0 & 0x80), b0 & 0x0F, payload


async def read_server_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    return await read_frame(reader, masked=False)


async def raw_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Server side of the upgrade, by hand: read the request, answer 101."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = ""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())
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
    request, key = upgrade_request(path)
    writer.write(request)
    head = await wait_for(reader.readuntil(b"\r\n\r\n"))
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101"), head
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    assert headers.get("sec-websocket-accept") == accept_for(key), head
    return reader, writer


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await wait_for(writer.wait_closed())


@contextlib.asynccontextmanager
async def raw_server(net: Net, on_connection: Callable) -> AsyncIterator[int]:
    """An asyncio stream server; yields its port. Open connections are closed on exit."""
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task] = []

    async def handler(reader, writer):
        writers.append(writer)
        tasks.append(asyncio.current_task())
        try:
            await on_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass

    server = await asyncio.start_server(handler, "127.0.0.1", 0, **net.raw_server_kwargs())
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
