"""Every documented limit and timeout (docs/security.md), each with a test:
upgrade-request size and header count, the handshake timeout (also under 500
slow-loris clients), max_frame_size, the 125-byte control-frame limit, write
backpressure and paused reading, allowed_origins. close_timeout is tested in
test_close.py.

Peers that misbehave are raw sockets (tests/support/loopback.py); timing bounds are loose
upper bounds (TIMEOUT / 2) plus a lower bound at 80 % of the configured
timeout, so that a limit firing too early fails too.
"""
from __future__ import annotations

import asyncio
import inspect
import struct
import time
import zlib

import pytest

from picows import (
    WSCloseCode,
    WSHandshakeError,
    WSMsgType,
    ws_connect,
    ws_create_server,
)
from picows.handshake import MAX_HEAD_SIZE, MAX_HEADERS

from tests.support import (TIMEOUT, RecordingListener, check_elapsed, client_frame, client_upgrade,
    close_writer, connect, pattern, raise_nofile, raw_accept, raw_handshake, raw_server,
    read_frame, read_until_eof, serve, wait_for)


SHORT = 0.3  # a configured timeout short enough for the tests


async def _raw_exchange(net, port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection, return all the server answers."""
    reader, writer = await wait_for(asyncio.open_connection(
        "127.0.0.1", port, **net.raw_kwargs()))
    try:
        writer.write(data)
        return await wait_for(read_until_eof(reader))
    finally:
        await close_writer(writer)


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response[9:12])


# --------------------------------------------------------------------------
# The documented defaults


def test_documented_defaults():
    """The defaults docs/security.md and README.md state are the real ones."""
    for fn in (ws_connect, ws_create_server):
        params = inspect.signature(fn).parameters
        assert params["websocket_handshake_timeout"].default == 5
        assert params["max_frame_size"].default == 10 * 1024 * 1024
        assert params["close_timeout"].default == 5.0
        assert params["enable_auto_ping"].default is False
        assert params["auto_ping_idle_timeout"].default == 20.0
        assert params["auto_ping_reply_timeout"].default == 20.0
        assert params["enable_auto_pong"].default is True
        assert params["enable_auto_close"].default is True
        assert params["enable_utf8_validation"].default is True
        assert params["disconnect_on_exception"].default is True
        assert params["read_buffer_init_size"].default == 16 * 1024
    assert inspect.signature(ws_create_server).parameters["allowed_origins"].default is None
    assert MAX_HEAD_SIZE == 16 * 1024
    assert MAX_HEADERS == 128


# --------------------------------------------------------------------------
# Upgrade request: 16 KiB, 128 headers


def _request_with(pad_headers: int = 0, total_size: int | None = None) -> bytes:
    """A valid upgrade request with `pad_headers` extra header lines, padded
    with one long header to exactly `total_size` bytes when given."""
    base, _ = client_upgrade("/")
    head = base[:-2] + b"".join(b"X-Pad-%d: p\r\n" % i for i in range(pad_headers))
    if total_size is not None:
        filler = total_size - len(head) - len(b"X-Long: \r\n\r\n")
        assert filler >= 0
        head += b"X-Long: " + b"a" * filler + b"\r\n"
    return head + b"\r\n"


BASE_HEADERS = 5  # Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version


@pytest.mark.parametrize("size, status", [(MAX_HEAD_SIZE, 101), (MAX_HEAD_SIZE + 1, 431)],
                         ids=["16KiB", "16KiB+1"])
async def test_upgrade_request_size_limit(net, size, status):
    request = _request_with(total_size=size)
    assert len(request) == size
    async with serve(net) as server:
        if status == 101:
            reader, writer = await wait_for(asyncio.open_connection(
                "127.0.0.1", server.port, **net.raw_kwargs()))
            writer.write(request)
            response = await wait_for(reader.readuntil(b"\r\n\r\n"))
            await close_writer(writer)
        else:
            response = await _raw_exchange(net, server.port, request)
    assert _status(response) == status, response[:200]


async def test_endless_request_head_is_cut_at_16kib(net):
    """A head that never ends gets 431 as soon as it passes 16 KiB, long
    before the handshake timeout, and the server does not buffer more."""
    async with serve(net, websocket_handshake_timeout=TIMEOUT) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        started = time.monotonic()
        try:
            writer.write(b"GET / HTTP/1.1\r\nX-Endless: " + b"a" * (MAX_HEAD_SIZE + 100))
            response = await wait_for(read_until_eof(reader))
        finally:
            await close_writer(writer)
    assert _status(response) == 431, response[:200]
    assert time.monotonic() - started < TIMEOUT / 2
    assert server.requests == []


@pytest.mark.parametrize("headers, status", [(MAX_HEADERS, 101), (MAX_HEADERS + 1, 431)],
                         ids=["128", "129"])
async def test_upgrade_request_header_count_limit(net, headers, status):
    request = _request_with(pad_headers=headers - BASE_HEADERS)
    assert request.count(b"\r\n") - 2 == headers
    async with serve(net) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        writer.write(request)
        response = await wait_for(reader.readuntil(b"\r\n\r\n"))
        await close_writer(writer)
    assert _status(response) == status, response[:200]


# --------------------------------------------------------------------------
# Handshake timeout


async def test_trickling_handshake_is_dropped_after_the_timeout(net):
    """The timeout bounds the whole handshake: a client that keeps sending a
    byte every 50 ms but never finishes is still dropped after it."""
    request, _ = client_upgrade("/")
    async with serve(net, websocket_handshake_timeout=SHORT) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        started = time.monotonic()
        eof = asyncio.ensure_future(read_until_eof(reader))
        try:
            for byte in request[:-1]:
                if eof.done() or time.monotonic() - started > TIMEOUT / 2:
                    break
                writer.write(bytes([byte]))
                await asyncio.wait([eof], timeout=0.05)
            response = await wait_for(eof)
            check_elapsed(started, SHORT)
        finally:
            eof.cancel()
            await close_writer(writer)
    assert response == b""
    assert server.listeners == []


async def test_client_handshake_timeout(net):
    async def silent(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()

    async with raw_server(net, silent) as port:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await wait_for(ws_connect(RecordingListener, f"{net.scheme}://127.0.0.1:{port}/",
                                      websocket_handshake_timeout=SHORT,
                                      **net.client_kwargs()))
        check_elapsed(started, SHORT)


SLOW_CLIENTS = 500


async def test_slow_handshakes_do_not_block_others(tcp):
    """500 half-open handshakes sending one byte a second: a normal client
    still connects and echoes within 1 s, and the slow ones are dropped by
    the handshake timeout."""
    raise_nofile(4 * SLOW_CLIENTS + 256)
    handshake_timeout = 2.5
    request, _ = client_upgrade("/")
    async with serve(tcp, websocket_handshake_timeout=handshake_timeout,
                     backlog=SLOW_CLIENTS + 100) as server:
        conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for _ in range(0, SLOW_CLIENTS, 100):
            conns += await wait_for(asyncio.gather(*[
                asyncio.open_connection("127.0.0.1", server.port) for _ in range(100)]))
        started = time.monotonic()
        stop = asyncio.Event()

        async def trickle():
            # One byte a second on every slow connection.
            for i in range(len(request)):
                for _, writer in conns:
                    if not writer.is_closing():
                        writer.write(request[i:i + 1])
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                    return
                except asyncio.TimeoutError:
                    pass

        trickler = asyncio.ensure_future(trickle())
        try:
            await asyncio.sleep(0.1)  # the first byte of every slow client is in
            timings = []
            for _ in range(3):
                t0 = time.monotonic()
                async with connect(tcp, server.url()) as (transport, client):
                    transport.send(WSMsgType.BINARY, b"still served")
                    frame = await client.next_frame()
                    assert frame.payload == b"still served"
                timings.append(time.monotonic() - t0)
            print(f"\nconnect + echo with {SLOW_CLIENTS} slow handshakes open: "
                  f"{', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
            assert max(timings) < 1.0, timings
            # Every slow connection is dropped once its handshake times out.
            eofs = await wait_for(asyncio.gather(*[
                read_until_eof(reader) for reader, _ in conns]), TIMEOUT + handshake_timeout)
            check_elapsed(started, handshake_timeout)
            assert all(data == b"" for data in eofs)
        finally:
            stop.set()
            await trickler
            await asyncio.gather(*[close_writer(writer) for _, writer in conns])
    assert len(server.listeners) == 3


# --------------------------------------------------------------------------
# max_frame_size


LIMIT = 1000


@pytest.mark.parametrize("size, expected", [(LIMIT, "echo"), (LIMIT + 1, 1009)])
async def test_server_max_frame_size(net, size, expected):
    async with serve(net, max_frame_size=LIMIT) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            writer.write(client_frame(WSMsgType.BINARY, pattern(size)))
            _, opcode, payload = await wait_for(read_frame(reader))
        finally:
            await close_writer(writer)
    if expected == "echo":
        assert (opcode, payload) == (WSMsgType.BINARY, pattern(size))
    else:
        assert opcode == WSMsgType.CLOSE
        assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.MESSAGE_TOO_BIG


async def test_default_max_frame_size_checked_before_the_payload(net):
    """A header declaring 10 MiB + 1 bytes gets 1009 at once: the server
    does not wait for (or buffer) the payload."""
    async with serve(net) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            n = 10 * 1024 * 1024 + 1
            writer.write(bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n) + b"mask")
            _, opcode, payload = await wait_for(read_frame(reader))
        finally:
            await close_writer(writer)
    assert opcode == WSMsgType.CLOSE
    assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize("size, expected", [(LIMIT, "frame"), (LIMIT + 1, 1009)])
async def test_client_max_frame_size(net, size, expected):
    async with serve(net) as server, connect(net, server.url(),
                                             max_frame_size=LIMIT) as (transport, client):
        server_listener, server_transport = await server.next_connected()
        server_transport.send(WSMsgType.BINARY, pattern(size))
        if expected == "frame":
            frame = await client.next_frame()
            assert frame.payload == pattern(size)
        else:
            close = await server_listener.next_of(WSMsgType.CLOSE)
            assert close.close_code == WSCloseCode.MESSAGE_TOO_BIG
            await wait_for(transport.wait_disconnected())
            assert client.drain() == []


# --------------------------------------------------------------------------
# permessage-deflate: inflating is bounded, and never silently loses data


def _deflate(data: bytes, flush: int = zlib.Z_SYNC_FLUSH) -> bytes:
    """Raw DEFLATE as a peer sends it (RFC 7692 7.2.1)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(flush)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def _compressed_frame(payload: bytes, opcode: int = WSMsgType.BINARY) -> bytes:
    """A masked, compressed (RSV1) frame."""
    frame = bytearray(client_frame(opcode, payload))
    frame[0] |= 0x40
    return bytes(frame)


async def _deflate_exchange(net, frame: bytes, **server_kwargs):
    """Send one compressed frame to a server that negotiated deflate; return
    the first frame it answers with."""
    async with serve(net, enable_compression=True, **server_kwargs) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        try:
            request, _ = client_upgrade("/")
            writer.write(request[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
            head = await wait_for(reader.readuntil(b"\r\n\r\n"))
            assert b"permessage-deflate" in head, head
            writer.write(frame)
            b0 = (await wait_for(reader.readexactly(1)))[0]
            _, opcode, payload = await wait_for(read_frame(reader, first_byte=b0))
            if b0 & 0x40:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            return opcode, payload
        finally:
            await close_writer(writer)


async def test_decompression_bomb_gets_1009(net):
    """1 MiB of zeros deflates to about 1 KiB: inflating it past
    max_frame_size fails the connection with 1009 instead of allocating."""
    bomb = _deflate(bytes(1024 * 1024))
    assert len(bomb) < 2048
    opcode, payload = await _deflate_exchange(net, _compressed_frame(bomb),
                                              max_frame_size=64 * 1024)
    assert opcode == WSMsgType.CLOSE
    assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.MESSAGE_TOO_BIG


async def test_corrupt_deflate_data_gets_1007(net):
    opcode, payload = await _deflate_exchange(net, _compressed_frame(b"\xff\xff\xff\xff"))
    assert opcode == WSMsgType.CLOSE
    assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.INVALID_TEXT


async def test_compressed_message_within_limit_is_echoed(net):
    data = pattern(60_000)
    opcode, payload = await _deflate_exchange(net, _compressed_frame(_deflate(data)),
                                              max_frame_size=64 * 1024)
    assert (opcode, payload) == (WSMsgType.BINARY, data)


async def test_data_after_a_bfinal_block_is_not_lost(net):
    """RFC 7692 7.2.3.4: a peer may end a DEFLATE block with BFINAL set; what
    follows in the payload is decompressed "in the same manner". Here a
    message is "abc" in a BFINAL block followed by "def" in a new stream:
    the server must deliver (and so echo) b"abcdef", or fail the connection
    with 1007 if it will not read past BFINAL, but never silently drop
    "def"."""
    payload = _deflate(b"abc", zlib.Z_FINISH) + _deflate(b"def")
    opcode, echoed = await _deflate_exchange(net, _compressed_frame(payload))
    if opcode == WSMsgType.CLOSE:
        assert struct.unpack("!H", echoed[:2])[0] == WSCloseCode.INVALID_TEXT
    else:
        assert (opcode, echoed) == (WSMsgType.BINARY, b"abcdef")


# --------------------------------------------------------------------------
# Control frames: 125 bytes


async def test_control_frame_limit_incoming(net):
    async with serve(net) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            writer.write(client_frame(WSMsgType.PING, b"p" * 125))
            assert await wait_for(read_frame(reader)) == (True, WSMsgType.PONG,
                                                                  b"p" * 125)
            writer.write(client_frame(WSMsgType.PING, b"p" * 126))
            _, opcode, payload = await wait_for(read_frame(reader))
        finally:
            await close_writer(writer)
    assert opcode == WSMsgType.CLOSE
    assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.PROTOCOL_ERROR


async def test_control_frame_limit_outgoing(net):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        for send in (transport.send_ping, transport.send_pong,
                     lambda m: transport.send(WSMsgType.PING, m)):
            with pytest.raises(ValueError):
                send(b"x" * 126)
        with pytest.raises(ValueError):
            transport.send_close(WSCloseCode.OK, b"r" * 124)
        transport.send_ping(b"x" * 125)
        pong = await client.next_of(WSMsgType.PONG)
        assert pong.payload == b"x" * 125
        transport.send_close(WSCloseCode.OK, b"r" * 123)
        close = await client.next_of(WSMsgType.CLOSE)
        assert close.close_code == WSCloseCode.OK
        await wait_for(transport.wait_disconnected())


# --------------------------------------------------------------------------
# Backpressure: pause_writing / resume_writing, and paused reading


class ClientFlooder(RecordingListener):
    """Sends 64 KiB frames from on_ws_connected until pause_writing."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = asyncio.get_running_loop().create_future()
        self.resumed = asyncio.get_running_loop().create_future()
        self.sent = 0

    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        while not self.paused.done() and self.sent < 256 * 1024 * 1024:
            transport.send(WSMsgType.BINARY, pattern(65536))
            self.sent += 1

    def pause_writing(self) -> None:
        super().pause_writing()
        if not self.paused.done():
            self.paused.set_result(None)

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.resumed.done():
            self.resumed.set_result(None)


async def test_client_pause_and_resume_writing(net):
    """A server that does not read: the client's listener gets pause_writing,
    then resume_writing once the server reads everything."""
    start_reading = asyncio.Event()
    received = []

    async def slow_reader(reader, writer):
        await raw_accept(reader, writer)
        await start_reading.wait()
        while len(received) < flooder.sent:
            received.append(await read_frame(reader, masked=True))
        await reader.read()

    async with raw_server(net, slow_reader) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/", ClientFlooder) as (_, flooder):
        await wait_for(flooder.paused)
        assert flooder.pause_calls == 1 and flooder.resume_calls == 0
        assert flooder.sent < 256 * 1024 * 1024
        start_reading.set()
        await wait_for(flooder.resumed)
        await wait_for(_until(lambda: len(received) == flooder.sent))
    assert all(frame == (True, WSMsgType.BINARY, pattern(65536)) for frame in received)


async def _until(cond, step: float = 0.01) -> None:
    while not cond():
        await asyncio.sleep(step)


class PausingReader(RecordingListener):
    """Pauses the underlying transport's reading after every frame and
    resumes it a moment later, so frames arrive split across paused reads."""

    def on_ws_frame(self, transport, frame) -> None:
        super().on_ws_frame(transport, frame)
        underlying = transport.underlying_transport
        underlying.pause_reading()
        asyncio.get_running_loop().call_later(0.002, underlying.resume_reading)


SIZES = [0, 1, 125, 126, 1000, 65535, 65536, 200_000, 7, 3000]


def _text(size: int) -> bytes:
    """About `size` bytes of UTF-8 with 1-, 2- and 3-byte characters."""
    return ("ab\u00e9\u20ac" * (size // 3 + 1)).encode()[:size].decode(
        "utf-8", "ignore").encode()


async def _send_mixed(transport) -> list[tuple[int, bool, bytes]]:
    """Mixed sizes, TEXT and BINARY, some fragmented; returns what was sent."""
    sent = []
    for i, size in enumerate(SIZES * 3):
        payload = pattern(size) if i % 2 == 0 else _text(size)
        if i % 4 == 3 and size > 2:
            half = size // 2
            transport.send(WSMsgType.BINARY, payload[:half], fin=False)
            transport.send(WSMsgType.CONTINUATION, payload[half:], fin=True)
            sent += [(WSMsgType.BINARY, False, payload[:half]),
                     (WSMsgType.CONTINUATION, True, payload[half:])]
        else:
            msg_type = WSMsgType.TEXT if i % 2 else WSMsgType.BINARY
            transport.send(msg_type, payload)
            sent.append((msg_type, True, payload))
    return sent


@pytest.mark.parametrize("paused_side", ["client", "server"])
async def test_paused_reading_keeps_frames_intact(net, paused_side):
    """pause_reading / resume_reading on transport.underlying_transport, after
    every frame: frame parsing continues where it stopped."""
    server_factory = PausingReader if paused_side == "server" else RecordingListener
    client_factory = PausingReader if paused_side == "client" else RecordingListener
    async with serve(net, lambda request: server_factory()) as server, \
            connect(net, server.url(), client_factory) as (transport, client):
        server_listener, server_transport = await server.next_connected()
        sender, receiver = ((server_transport, client) if paused_side == "client"
                            else (transport, server_listener))
        sent = await _send_mixed(sender)
        got = [await receiver.next_frame() for _ in sent]
    assert [(f.msg_type, f.fin, f.payload) for f in got] == sent


async def test_reading_paused_from_on_ws_connected(net):
    """Reading paused before any frame arrives: nothing is delivered until
    resume_reading, then everything, in order."""
    class PausedAtStart(RecordingListener):
        def on_ws_connected(self, transport) -> None:
            super().on_ws_connected(transport)
            transport.underlying_transport.pause_reading()

    async with serve(net) as server, connect(net, server.url(), PausedAtStart) as (transport,
                                                                                   client):
        server_listener, server_transport = await server.next_connected()
        sent = await _send_mixed(server_transport)
        await asyncio.sleep(0.2)  # nothing may arrive while paused
        assert client.drain() == []
        transport.underlying_transport.resume_reading()
        got = [await client.next_frame() for _ in sent]
    assert [(f.msg_type, f.fin, f.payload) for f in got] == sent


# --------------------------------------------------------------------------
# allowed_origins


ALLOWED = ["https://example.com", "http://localhost:8080"]
REJECTED_ORIGINS = [
    "https://example.com.evil.org",
    "https://evil.org",
    "https://evil.org/https://example.com",
    "https://example.com/",
    "https://example.com:443",
    "https://example.com.",
    "http://example.com",
    "HTTPS://EXAMPLE.COM",
    "https://Example.com",
    "https://example.co",
    "xhttps://example.com",
    "null",
    "",
    "https://example.com, https://evil.org",
]


@pytest.mark.parametrize("origin", ALLOWED)
async def test_allowed_origin_is_accepted(net, origin):
    async with serve(net, allowed_origins=ALLOWED) as server, \
            connect(net, server.url(), extra_headers={"Origin": origin}) as (transport, client):
        transport.send(WSMsgType.TEXT, b"hi")
        assert (await client.next_frame()).payload == b"hi"
    assert server.requests[0].headers["origin"] == origin


@pytest.mark.parametrize("origin", REJECTED_ORIGINS + [None])
async def test_other_origins_get_403(net, origin):
    headers = None if origin is None else {"Origin": origin}
    async with serve(net, allowed_origins=ALLOWED) as server:
        with pytest.raises(WSHandshakeError) as info:
            await wait_for(ws_connect(RecordingListener, server.url(), extra_headers=headers,
                                      **net.client_kwargs()))
    assert info.value.status == 403
    assert server.requests == []  # the factory never saw the request


async def test_two_origin_headers_get_403(net):
    """Two Origin headers, one of them allowed: rejected, not the first or
    last one picked."""
    headers = [("Origin", "https://example.com"), ("Origin", "https://evil.org")]
    async with serve(net, allowed_origins=ALLOWED) as server:
        with pytest.raises(WSHandshakeError) as info:
            await wait_for(ws_connect(RecordingListener, server.url(), extra_headers=headers,
                                      **net.client_kwargs()))
    assert info.value.status == 403


async def test_origin_403_raw_response(tcp):
    request, _ = client_upgrade("/")
    request = request[:-2] + b"Origin: https://example.com.evil.org\r\n\r\n"
    async with serve(tcp, allowed_origins=ALLOWED) as server:
        response = await _raw_exchange(tcp, server.port, request)
    assert _status(response) == 403, response


async def test_empty_allowed_origins_rejects_everyone(tcp):
    async with serve(tcp, allowed_origins=[]) as server:
        with pytest.raises(WSHandshakeError) as info:
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      extra_headers={"Origin": "https://example.com"}))
    assert info.value.status == 403


async def test_no_allowed_origins_accepts_any(tcp):
    async with serve(tcp) as server:
        for headers in (None, {"Origin": "https://anything.example"}):
            async with connect(tcp, server.url(), extra_headers=headers) as (transport, client):
                transport.send(WSMsgType.TEXT, b"ok")
                assert (await client.next_frame()).payload == b"ok"


async def test_allowed_origins_accepts_a_generator(tcp):
    """allowed_origins is read once: a one-shot iterable works for every
    connection, not just the first."""
    async with serve(tcp, allowed_origins=(o for o in ALLOWED)) as server:
        for _ in range(2):
            async with connect(tcp, server.url(),
                               extra_headers={"Origin": ALLOWED[1]}) as (transport, client):
                transport.send(WSMsgType.TEXT, b"ok")
                assert (await client.next_frame()).payload == b"ok"

