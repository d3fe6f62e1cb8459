"""TLS itself: which transport does it, certificates, handshake timeouts,
peers that do not speak TLS, the TLS side of closing, interop and flow control.

On the default asyncio loop picows does TLS itself (``_TLSLayer`` under a
``_TLSTransport``, see picows/picows.pyx); PICOWS_LOOP_TLS=1 and uvloop leave
it to the loop. Every test runs on both loops unless it is about picows' own
layer (``loop_factories=["asyncio"]``) or about uvloop's.

The peers that do not go through picows are asyncio streams (with or without
asyncio's TLS), a hand-driven ``ssl.SSLObject`` over a plain TCP stream where the
end of TLS itself is checked (close_notify or not), and the ``websockets`` package.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import ssl
import time

import pytest

from picows import WSCloseCode, WSMsgType, ws_connect, ws_create_server

from .test_interop_websockets import websockets_client, websockets_server

from tests.support import (EchoListener, Net, RecordingListener, client_upgrade, close_writer,
    connect, expected_accept, pattern, raw_handshake, raw_server, serve, wait_for)


KIB = 1024
MIB = 1024 * KIB
TLS_RECORD = 16 * KIB  # the most plaintext one TLS record carries
SIZES = [0, 1, 125, 126, 127, TLS_RECORD - 1, TLS_RECORD, TLS_RECORD + 1, 64 * KIB, MIB,
         5 * MIB]
HANDSHAKE_TIMEOUT = 0.3
FAST = 2.0  # what "soon" means for a timeout of HANDSHAKE_TIMEOUT or a close


def picows_tls(transport) -> bool:
    """Whether the transport is picows' own TLS transport."""
    return type(transport).__name__ == "_TLSTransport"


def is_asyncio_loop() -> bool:
    # uvloop.Loop is no SelectorEventLoop.
    return isinstance(asyncio.get_running_loop(), asyncio.SelectorEventLoop)


async def read_until_closed(reader: asyncio.StreamReader) -> tuple[bytes, str]:
    """Everything the peer sends, and how it ended: "eof" or "reset"."""
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    return data, "eof"


@contextlib.asynccontextmanager
async def echo_pair(net, initiator: str):
    """A connection whose other side echoes: yields the sending side's
    WSTransport and the listener that records the echo."""
    if initiator == "client":
        async with serve(net) as server, connect(net, server.url()) as (transport, client):
            yield transport, client
    else:
        async with serve(net, lambda request: RecordingListener()) as server, \
                connect(net, server.url(), EchoListener):
            listener, transport = await server.next_connected()
            yield transport, listener


class HandDrivenTLS:
    """TLS driven by hand, ssl.SSLObject over a plain asyncio stream: unlike
    asyncio's TLS, it tells how the peer ended the TLS connection."""

    def __init__(self, reader, writer, context: ssl.SSLContext, server_side: bool) -> None:
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                       server_hostname=None if server_side else "127.0.0.1")

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)

    async def _receive(self) -> None:
        data = await wait_for(self.reader.read(65536))
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    async def handshake(self) -> None:
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                await self._receive()
        self._flush()

    def send(self, data: bytes) -> None:
        self.sslobj.write(data)
        self._flush()

    async def upgrade(self) -> None:
        """TLS handshake, then the websocket upgrade; asserts the 101."""
        await wait_for(self.handshake())
        self.send(client_upgrade()[0])
        head = await wait_for(self.read_until(b"\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 101"), head

    async def read_until(self, marker: bytes) -> bytes:
        data = b""
        while marker not in data:
            try:
                data += self.sslobj.read(65536)
            except ssl.SSLWantReadError:
                await self._receive()
        return data

    async def read_to_end(self) -> tuple[bytes, Exception | None]:
        """The plaintext left, and how TLS ended: None after the peer's
        close_notify, else the error (SSLEOFError: TCP closed without one)."""
        data = b""
        while True:
            try:
                chunk = self.sslobj.read(65536)
            except ssl.SSLWantReadError:
                try:
                    await self._receive()
                except ConnectionError as exc:
                    return data, exc
                continue
            except ssl.SSLZeroReturnError:
                return data, None
            except ssl.SSLError as exc:
                return data, exc
            if not chunk:
                return data, None
            data += chunk

    def close(self) -> None:
        """Our close_notify (the answer, after the peer's), then TCP."""
        with contextlib.suppress(ssl.SSLError):
            self.sslobj.unwrap()
        self._flush()
        self.writer.close()


@contextlib.asynccontextmanager
async def hand_driven_client(tls, server):
    """A client of ``server`` whose TLS and upgrade are driven by hand:
    (peer, writer, server-side listener, server-side transport)."""
    reader, writer = await wait_for(asyncio.open_connection("127.0.0.1", server.port))
    try:
        peer = HandDrivenTLS(reader, writer, tls.client_ssl, server_side=False)
        await peer.upgrade()
        yield (peer, writer, *await server.next_connected())
    finally:
        await close_writer(writer)


# --------------------------------------------------------------------------
# Which transport does TLS, and what it tells


def check_picows_tls_extra_info(tls_transport, context: ssl.SSLContext, server_port: int,
                                client_side: bool) -> None:
    assert picows_tls(tls_transport), type(tls_transport)
    sslobj = tls_transport.get_extra_info("ssl_object")
    assert isinstance(sslobj, ssl.SSLObject)
    assert sslobj.version().startswith("TLS"), sslobj.version()
    assert sslobj.server_side is not client_side
    assert tls_transport.get_extra_info("sslcontext") is context
    cipher = tls_transport.get_extra_info("cipher")
    assert isinstance(cipher, tuple) and len(cipher) == 3
    assert cipher == sslobj.cipher()
    assert tls_transport.get_extra_info("compression") is None
    peercert = tls_transport.get_extra_info("peercert")
    if client_side:
        assert isinstance(peercert, dict) and peercert["subject"], peercert
        assert ("IP Address", "127.0.0.1") in peercert["subjectAltName"]
    else:
        assert peercert is None  # the client sent no certificate

    # Delegated to the TCP transport.
    peername = tls_transport.get_extra_info("peername")
    sockname = tls_transport.get_extra_info("sockname")
    port = peername[1] if client_side else sockname[1]
    assert port == server_port
    sock = tls_transport.get_extra_info("socket")
    assert sock.getpeername() == peername
    assert sock.getsockname() == sockname
    assert tls_transport.get_extra_info("no-such-info", "default") == "default"
    assert not tls_transport.is_closing()
    assert not tls_transport.can_write_eof()


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_asyncio_loop_uses_picows_tls(tls):
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        listener, server_transport = await server.next_connected()
        check_picows_tls_extra_info(transport.underlying_transport, tls.client_ssl,
                                    server.port, client_side=True)
        check_picows_tls_extra_info(server_transport.underlying_transport, tls.server_ssl,
                                    server.port, client_side=False)
        client_tcp = transport.underlying_transport.get_extra_info("peername")
        server_tcp = server_transport.underlying_transport.get_extra_info("sockname")
        assert client_tcp == server_tcp == ("127.0.0.1", server.port)
        assert (server_transport.underlying_transport.get_extra_info("peername")
                == transport.underlying_transport.get_extra_info("sockname"))
        transport.send(WSMsgType.BINARY, b"over picows TLS")
        assert (await client.next_frame()).payload == b"over picows TLS"


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_picows_loop_tls_env_leaves_tls_to_asyncio(tls, monkeypatch):
    monkeypatch.setenv("PICOWS_LOOP_TLS", "1")
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        _, server_transport = await server.next_connected()
        for tls_transport in (transport.underlying_transport,
                              server_transport.underlying_transport):
            assert not picows_tls(tls_transport)
            assert isinstance(tls_transport, asyncio.sslproto._SSLProtocolTransport)
            assert isinstance(tls_transport.get_extra_info("ssl_object"), ssl.SSLObject)
        payload = pattern(100 * KIB)
        transport.send(WSMsgType.BINARY, payload)
        assert (await client.next_frame()).payload == payload


@pytest.mark.asyncio(loop_factories=["uvloop"])
async def test_uvloop_keeps_its_own_tls(tls):
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        _, server_transport = await server.next_connected()
        for tls_transport in (transport.underlying_transport,
                              server_transport.underlying_transport):
            assert not picows_tls(tls_transport)
            assert type(tls_transport).__module__ == "uvloop.loop"
            assert tls_transport.get_extra_info("ssl_object") is not None
        payload = pattern(100 * KIB)
        transport.send(WSMsgType.BINARY, payload)
        assert (await client.next_frame()).payload == payload


# --------------------------------------------------------------------------
# Echo


@pytest.mark.parametrize("initiator", ["client", "server"])
@pytest.mark.parametrize("size", SIZES)
async def test_echo_sizes(tls, size, initiator):
    """Sizes around the frame length encodings and the TLS record size;
    the side that sends first is the client or the server."""
    payload = pattern(size)
    async with echo_pair(tls, initiator) as (transport, receiver):
        transport.send(WSMsgType.BINARY, payload)
        frame = await receiver.next_frame()
    assert (frame.msg_type, frame.fin, frame.payload_size) == (WSMsgType.BINARY, True, size)
    assert frame.payload == payload


@pytest.mark.parametrize("initiator", ["client", "server"])
async def test_echo_burst_in_order(tls, initiator):
    """1,000 small frames sent back to back, without waiting: many frames per
    TLS record and per read."""
    messages = [str(i).encode() + pattern(i % 200) for i in range(1000)]
    async with echo_pair(tls, initiator) as (transport, receiver):
        for message in messages:
            transport.send(WSMsgType.BINARY, message)
        got = [(await receiver.next_frame()).payload for _ in messages]
    assert got == messages


async def test_echo_over_tls_1_2(tls):
    """TLS 1.2 ends its handshake the other way round (the server's Finished
    comes last); the client offers nothing newer."""
    client_ssl = ssl.create_default_context(
        cadata=b"".join(tls.client_ssl.get_ca_certs(binary_form=True)))
    client_ssl.maximum_version = ssl.TLSVersion.TLSv1_2
    tls12 = Net("tls", tls.server_ssl, client_ssl)
    async with serve(tls12) as server, connect(tls12, server.url()) as (transport, client):
        _, server_transport = await server.next_connected()
        for side in (transport, server_transport):
            assert side.underlying_transport.get_extra_info("ssl_object").version() == "TLSv1.2"
        for size in (10, 20 * KIB, MIB):
            payload = pattern(size)
            transport.send(WSMsgType.BINARY, payload)
            assert (await client.next_frame()).payload == payload


# --------------------------------------------------------------------------
# Certificates


async def test_untrusted_certificate_fails_and_server_keeps_serving(tls, caplog):
    async with serve(tls) as server:
        # The default context does not trust the test CA.
        with pytest.raises(ssl.SSLCertVerificationError):
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      ssl_context=ssl.create_default_context()))
        async with connect(tls, server.url()) as (transport, client):
            transport.send(WSMsgType.TEXT, b"still serving")
            assert (await client.next_frame()).payload == b"still serving"
        assert len(server.requests) == 1  # only the good client got that far
    # An unretrieved exception is reported when its future is collected.
    gc.collect()
    for _ in range(3):
        await asyncio.sleep(0)
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "exception was never retrieved" in m], messages


@pytest.mark.parametrize("server_hostname, verified", [("localhost", True),
                                                       ("wrong.example", False)])
async def test_server_hostname_kwarg_is_checked(tls, server_hostname, verified):
    """server_hostname, not the URL's host, is what the certificate must name
    (it names 127.0.0.1 and localhost)."""
    async with serve(tls) as server:
        connecting = ws_connect(RecordingListener, server.url(), ssl_context=tls.client_ssl,
                                server_hostname=server_hostname)
        if verified:
            transport, _ = await wait_for(connecting)
            transport.disconnect()
            await wait_for(transport.wait_disconnected())
        else:
            with pytest.raises(ssl.SSLCertVerificationError) as info:
                await wait_for(connecting)
            assert "wrong.example" in str(info.value)


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_invalid_server_hostname_raises_at_once(tls):
    """A server_hostname the ssl module refuses (a leading dot) fails
    ws_connect at once with that error; picows' layer used to leave it
    waiting. (uvloop raises it too, but also reports it to the loop's
    exception handler, which the test fixtures forbid.)"""
    async with serve(tls) as server:
        started = time.monotonic()
        with pytest.raises((UnicodeError, ValueError)):
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      ssl_context=tls.client_ssl,
                                      server_hostname=".bad"))
        assert time.monotonic() - started < 2
        # The server keeps serving.
        async with connect(tls, server.url()) as (transport, client):
            transport.send(WSMsgType.TEXT, b"still")
            assert (await client.next_frame()).payload == b"still"


# --------------------------------------------------------------------------
# Handshake timeouts and peers that do not speak TLS


async def test_server_drops_client_that_never_starts_tls(tls):
    """A TCP client that sends nothing: dropped after ssl_handshake_timeout."""
    async with serve(tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT) as server:
        reader, writer = await wait_for(asyncio.open_connection("127.0.0.1", server.port))
        started = time.monotonic()
        try:
            data, _ = await wait_for(read_until_closed(reader), FAST)
        finally:
            await close_writer(writer)
        elapsed = time.monotonic() - started
    assert data == b""
    assert HANDSHAKE_TIMEOUT * 0.8 <= elapsed < FAST, elapsed
    assert server.requests == []


async def test_client_handshake_timeout(tls, tcp):
    """A TCP server that accepts and never answers the ClientHello."""
    got_hello = asyncio.Event()

    async def mute(reader, writer):
        if await reader.read(1):
            got_hello.set()
        await reader.read()

    async with raw_server(tcp, mute) as port:
        started = time.monotonic()
        with pytest.raises((OSError, asyncio.TimeoutError)) as info:
            await wait_for(ws_connect(RecordingListener, f"wss://127.0.0.1:{port}/",
                                      ssl_context=tls.client_ssl,
                                      ssl_handshake_timeout=HANDSHAKE_TIMEOUT), FAST)
        elapsed = time.monotonic() - started
    assert got_hello.is_set()
    # uvloop's own TLS: any of the above will do (it raises ConnectionAbortedError too).
    if is_asyncio_loop():
        assert type(info.value) is ConnectionAbortedError, repr(info.value)
    assert HANDSHAKE_TIMEOUT * 0.8 <= elapsed < FAST, elapsed


async def test_server_closes_during_tls_handshake(tls, tcp):
    """A TCP server that reads the ClientHello and closes: ws_connect raises
    at once (ConnectionResetError on picows' TLS), it does not hang."""
    async def close_at_once(reader, writer):
        await reader.read(1)
        writer.close()

    async with raw_server(tcp, close_at_once) as port:
        with pytest.raises((ConnectionError, ssl.SSLError)) as info:
            await wait_for(ws_connect(RecordingListener, f"wss://127.0.0.1:{port}/",
                                      ssl_context=tls.client_ssl), FAST)
    if is_asyncio_loop():
        assert type(info.value) is ConnectionResetError, repr(info.value)


async def test_connect_cancelled_during_tls_handshake(tls, tcp):
    """Cancelling ws_connect while the TLS handshake waits: CancelledError,
    the TCP connection is closed, nothing reaches the loop's exception handler."""
    got_hello = asyncio.Event()
    closed = asyncio.Event()

    async def mute(reader, writer):
        if await reader.read(1):
            got_hello.set()
        await read_until_closed(reader)
        closed.set()

    async with raw_server(tcp, mute) as port:
        connecting = asyncio.ensure_future(ws_connect(
            RecordingListener, f"wss://127.0.0.1:{port}/", ssl_context=tls.client_ssl))
        await wait_for(got_hello.wait())
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait_for(connecting)
        await wait_for(closed.wait(), FAST)


@pytest.mark.asyncio(loop_factories=["asyncio"])
@pytest.mark.parametrize("timeout", [0, -1.0])
@pytest.mark.parametrize("side", ["client", "server"])
async def test_non_positive_handshake_timeout_is_refused(tls, side, timeout):
    if side == "server":
        with pytest.raises(ValueError, match="ssl_handshake_timeout"):
            await ws_create_server(lambda request: EchoListener(), "127.0.0.1", 0,
                                   ssl=tls.server_ssl,
                                   ssl_handshake_timeout=timeout)
        return
    async with serve(tls) as server:
        with pytest.raises(ValueError, match="ssl_handshake_timeout"):
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      ssl_context=tls.client_ssl,
                                      ssl_handshake_timeout=timeout))
    assert server.requests == []


async def test_tls_timeouts_are_accepted(tls):
    """ssl_handshake_timeout and ssl_shutdown_timeout are taken on both sides."""
    async with serve(tls, ssl_handshake_timeout=5, ssl_shutdown_timeout=5) as server, \
            connect(tls, server.url(), ssl_handshake_timeout=5,
                    ssl_shutdown_timeout=5) as (transport, client):
        transport.send(WSMsgType.BINARY, b"timeouts")
        assert (await client.next_frame()).payload == b"timeouts"


async def test_plain_tcp_client_is_dropped(tls):
    """An upgrade request in clear text is no ClientHello: the connection is
    dropped (at most after a TLS alert), no listener is made and the server
    keeps serving."""
    async with serve(tls) as server:
        reader, writer = await wait_for(asyncio.open_connection("127.0.0.1", server.port))
        writer.write(client_upgrade()[0])
        try:
            data, _ = await wait_for(read_until_closed(reader), FAST)
        finally:
            await close_writer(writer)
        assert not data.startswith(b"HTTP"), data
        if data:
            assert data[0] == 0x15, data  # a TLS alert record
        assert server.requests == [] and server.listeners == []
        async with connect(tls, server.url()) as (transport, client):
            transport.send(WSMsgType.TEXT, b"still serving")
            assert (await client.next_frame()).payload == b"still serving"
        assert len(server.listeners) == 1


async def test_corrupt_tls_record_drops_connection(tls):
    """After the upgrade, a record that does not decrypt: the server drops the
    connection, its listener is disconnected once, with no frame."""
    async with serve(tls) as server, \
            hand_driven_client(tls, server) as (peer, writer, listener, _):
        # application_data, TLS 1.2 on the wire, 64 bytes of noise.
        writer.write(b"\x17\x03\x03\x00\x40" + os.urandom(64))
        await wait_for(listener.disconnected, FAST)
        _, ending = await wait_for(peer.read_to_end())
    assert isinstance(ending, (ssl.SSLError, ConnectionError)), repr(ending)
    assert listener.disconnected_calls == 1
    assert listener.drain() == []


# --------------------------------------------------------------------------
# Closing


async def test_client_close_handshake(tls):
    """Client CLOSE, server CLOSE back: one on_ws_disconnected on each side."""
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        listener, server_transport = await server.next_connected()
        transport.send_close(WSCloseCode.GOING_AWAY, b"bye")
        received = await listener.next_of(WSMsgType.CLOSE)
        reply = await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
        await wait_for(server_transport.wait_disconnected())
        assert transport.underlying_transport.is_closing()
        assert server_transport.underlying_transport.is_closing()
    assert (received.close_code, received.close_message) == (WSCloseCode.GOING_AWAY, b"bye")
    assert reply.close_code == WSCloseCode.GOING_AWAY
    assert (client.disconnected_calls, listener.disconnected_calls) == (1, 1)


async def test_server_disconnect_is_seen_by_client(tls):
    """transport.disconnect() on the server, no CLOSE: the client is
    disconnected soon, once."""
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        listener, server_transport = await server.next_connected()
        server_transport.disconnect()
        await wait_for(client.disconnected, 1.0)
        await wait_for(transport.wait_disconnected(), 1.0)
        await wait_for(listener.disconnected)
    assert [f for f in client.drain() if f.msg_type == WSMsgType.CLOSE] == []
    assert (client.disconnected_calls, listener.disconnected_calls) == (1, 1)


async def test_disconnect_flushes_what_was_sent(tls):
    """disconnect() right after a large send: the message still arrives whole
    (encrypted and queued before the transport closes), then the disconnect."""
    payload = pattern(2 * MIB)
    async with serve(tls, lambda request: RecordingListener()) as server, \
            connect(tls, server.url()) as (transport, client):
        _, server_transport = await server.next_connected()
        server_transport.send(WSMsgType.BINARY, payload)
        server_transport.disconnect()
        frame = await client.next_frame()
        await wait_for(transport.wait_disconnected(), FAST)
    assert frame.payload == payload
    assert client.disconnected_calls == 1


@pytest.mark.parametrize("ending", ["close_notify", "abort"])
async def test_peer_ends_tls_without_websocket_close(tls, ending):
    """A raw asyncio TLS client upgrades, then closes TLS (close_notify) or
    just TCP, without a websocket CLOSE: the server listener disconnects once."""
    async with serve(tls) as server:
        reader, writer = await raw_handshake(tls, server.port)
        listener, server_transport = await server.next_connected()
        started = time.monotonic()
        if ending == "close_notify":
            writer.close()
        else:
            writer.transport.abort()
        try:
            await wait_for(listener.disconnected, FAST)
            await wait_for(server_transport.wait_disconnected(), FAST)
        finally:
            await close_writer(writer)
        elapsed = time.monotonic() - started
    assert elapsed < FAST, elapsed
    assert listener.disconnected_calls == 1
    assert [f for f in listener.drain() if f.msg_type == WSMsgType.CLOSE] == []


async def check_disconnect_sends_close_notify(tls, tcp, side: str) -> None:
    """disconnect() on `side` ends TLS with a close_notify alert, as
    asyncio's and uvloop's TLS transports do when closed."""
    if side == "server":
        async with serve(tls) as server:
            async with hand_driven_client(tls, server) as (peer, _, listener, transport):
                transport.disconnect()
                rest, ending = await wait_for(peer.read_to_end())
            await wait_for(listener.disconnected)
    else:
        endings: asyncio.Queue = asyncio.Queue()

        async def hand_server(reader, writer):
            peer = HandDrivenTLS(reader, writer, tls.server_ssl, server_side=True)
            await peer.handshake()
            head = await peer.read_until(b"\r\n\r\n")
            key = next(line.partition(":")[2].strip() for line in head.decode().split("\r\n")
                       if line.lower().startswith("sec-websocket-key:"))
            peer.send(("HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Accept: {expected_accept(key)}\r\n\r\n").encode())
            endings.put_nowait(await peer.read_to_end())
            peer.close()

        async with raw_server(tcp, hand_server) as port:
            transport, _ = await wait_for(ws_connect(
                RecordingListener, f"wss://127.0.0.1:{port}/", ssl_context=tls.client_ssl))
            transport.disconnect()
            rest, ending = await wait_for(endings.get())
            await wait_for(transport.wait_disconnected())
    assert rest == b""
    assert ending is None, f"TLS ended without close_notify: {ending!r}"


@pytest.mark.asyncio(loop_factories=["asyncio"])
@pytest.mark.parametrize("side", ["server", "client"])
async def test_disconnect_sends_close_notify_picows_tls(tls, tcp, side):
    await check_disconnect_sends_close_notify(tls, tcp, side)


@pytest.mark.asyncio(loop_factories=["uvloop"])
@pytest.mark.parametrize("side", ["server", "client"])
async def test_disconnect_sends_close_notify_uvloop(tls, tcp, side):
    await check_disconnect_sends_close_notify(tls, tcp, side)


# --------------------------------------------------------------------------
# Interop with the websockets package over TLS

INTEROP_SIZES = [10, 20 * KIB, 200 * KIB]


async def test_websockets_client_against_picows_tls_server(tls):
    async with serve(tls) as server:
        async with websockets_client(tls, server.url()) as ws:
            listener, transport = await server.next_connected()
            assert picows_tls(transport.underlying_transport) is is_asyncio_loop()
            for size in INTEROP_SIZES:
                payload = pattern(size)
                await wait_for(ws.send(payload))
                assert await wait_for(ws.recv()) == payload
            await wait_for(ws.send("text " * 1000))
            assert await wait_for(ws.recv()) == "text " * 1000
        await wait_for(listener.disconnected)
    closes = [f for f in listener.drain() if f.msg_type == WSMsgType.CLOSE]
    assert [f.close_code for f in closes] == [WSCloseCode.OK]
    assert ws.close_code == WSCloseCode.OK


async def test_picows_client_against_websockets_tls_server(tls):
    async with websockets_server(tls) as peer, connect(tls, peer.url) as (transport, client):
        assert picows_tls(transport.underlying_transport) is is_asyncio_loop()
        for size in INTEROP_SIZES:
            payload = pattern(size)
            transport.send(WSMsgType.BINARY, payload)
            assert await wait_for(peer.received.get()) == payload
            frame = await client.next_frame()
            assert (frame.msg_type, frame.payload) == (WSMsgType.BINARY, payload)
        transport.send_close(WSCloseCode.OK, b"done")
        await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
        assert await wait_for(peer.closed) == (WSCloseCode.OK, "done")


# --------------------------------------------------------------------------
# Flow control through picows' TLS transport

CHUNK = 8 * KIB
HIGH = 16 * KIB
MAX_BYTES = 256 * MIB  # the kernel buffers a few MiB; this means "never paused"


class PauseProbe(RecordingListener):
    """Records the TLS transport's write buffer size at each pause_writing."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.buffered_at_pause: list[int] = []
        self.resumed: asyncio.Future = asyncio.get_running_loop().create_future()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True
        self.buffered_at_pause.append(self.transport.underlying_transport.get_write_buffer_size())

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False
        if not self.resumed.done():
            self.resumed.set_result(None)


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_write_buffer_limits(tls):
    """high=16 KiB on the server's TLS transport: while the client does not
    read, the server is paused once a little over 16 KiB is buffered (the
    default would be 64 KiB), and resumed once the client reads again."""
    async with serve(tls, lambda request: PauseProbe()) as server, \
            connect(tls, server.url()) as (transport, client):
        probe, server_transport = await server.next_connected()
        server_tls = server_transport.underlying_transport
        server_tls.set_write_buffer_limits(high=HIGH)
        assert server_tls.get_write_buffer_limits() == (HIGH // 4, HIGH)
        transport.underlying_transport.pause_reading()

        chunk = pattern(CHUNK)
        sent = []
        while not probe.paused and len(sent) * CHUNK < MAX_BYTES:
            message = len(sent).to_bytes(4, "big") + chunk
            server_transport.send(WSMsgType.BINARY, message)
            sent.append(message)
        assert probe.paused, "pause_writing was never called"
        size = server_tls.get_write_buffer_size()
        assert isinstance(size, int) and size > HIGH, size
        # Paused by the write that went over the limit: over it by less than
        # one frame and its TLS record overhead (the default limit is 64 KiB).
        assert HIGH < probe.buffered_at_pause[0] <= HIGH + CHUNK + KIB, probe.buffered_at_pause

        transport.underlying_transport.resume_reading()
        got = [(await client.next_frame()).payload for _ in sent]
        await wait_for(probe.resumed)
    assert got == sent
    assert probe.pause_calls == probe.resume_calls == 1
    assert server_tls.get_write_buffer_size() == 0


@pytest.mark.asyncio(loop_factories=["asyncio"])
@pytest.mark.parametrize("side", ["client", "server"])
async def test_pause_and_resume_reading(tls, side):
    """A message sent while the receiving side's TLS transport is paused
    arrives only after resume_reading()."""
    async with serve(tls, lambda request: RecordingListener()) as server, \
            connect(tls, server.url()) as (client_transport, client):
        listener, server_transport = await server.next_connected()
        if side == "client":
            receiver, sender = client, server_transport
            receiving = client_transport.underlying_transport
        else:
            receiver, sender = listener, client_transport
            receiving = server_transport.underlying_transport
        assert receiving.is_reading()
        receiving.pause_reading()
        assert not receiving.is_reading()
        sender.send(WSMsgType.BINARY, b"sent while paused")
        assert sender.underlying_transport.get_write_buffer_size() == 0  # in the kernel
        # Nothing to await for something that must not happen: give the
        # loop some turns to read it if it would.
        await asyncio.sleep(0.05)
        assert receiver.drain() == []
        receiving.resume_reading()
        assert receiving.is_reading()
        frame = await receiver.next_frame()
    assert frame.payload == b"sent while paused"
