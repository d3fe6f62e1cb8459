"""TLS itself: which transport does it, certificates, handshake timeouts,
peers that do not speak TLS, the TLS side of closing, interop and flow control.

On both loops picows does TLS itself (``_TLSLayer`` under a
``_TLSTransport``, see picows/_core/tls.pyx); PICOWS_LOOP_TLS=1 leaves it to
the loop. Every test runs on both loops. The layer's record path calls
OpenSSL directly where it can; PICOWS_TLS_SSL_MODULE=1 makes it call the ssl
module's methods instead (``record_path`` parametrises the echo tests).

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
    connect, expected_accept, pattern, raw_handshake, raw_server, serve, server_frame, tls_contexts,
    wait_for)


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


async def test_both_loops_use_picows_tls(tls):
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


async def test_picows_loop_tls_env_leaves_tls_to_the_loop(tls, monkeypatch):
    """PICOWS_LOOP_TLS=1: asyncio's or uvloop's own TLS transport, on both ends."""
    monkeypatch.setenv("PICOWS_LOOP_TLS", "1")
    on_uvloop = type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        _, server_transport = await server.next_connected()
        for tls_transport in (transport.underlying_transport,
                              server_transport.underlying_transport):
            assert not picows_tls(tls_transport)
            if on_uvloop:
                assert type(tls_transport).__module__ == "uvloop.loop"
                assert tls_transport.get_extra_info("ssl_object") is not None
            else:
                assert isinstance(tls_transport, asyncio.sslproto._SSLProtocolTransport)
                assert isinstance(tls_transport.get_extra_info("ssl_object"), ssl.SSLObject)
        payload = pattern(100 * KIB)
        transport.send(WSMsgType.BINARY, payload)
        assert (await client.next_frame()).payload == payload


def test_record_path_calls_openssl_directly():
    """On CPython 3.8-3.13 with an _ssl module that links libssl
    dynamically (every Linux and macOS build here), the layer drives OpenSSL
    directly; PICOWS_TLS_SSL_MODULE=1 turns it off."""
    import sys

    from picows.picows import _tls_uses_openssl
    if sys.platform == "win32" or not (3, 8) <= sys.version_info[:2] <= (3, 13):
        pytest.skip("the ssl module's methods only")
    assert _tls_uses_openssl() is (not os.environ.get("PICOWS_TLS_SSL_MODULE"))


def test_ssl_object_layout():
    """What the record path assumes of CPython's _ssl objects (see
    picows/_core/tls.pyx), checked through ctypes on this interpreter: the
    SSL* right after PySSLSocket's first field, its context after that, the
    BIO* first in PySSLMemoryBIO. (The layer checks the same on every
    connection and falls back to the ssl module's methods if it fails.)"""
    import ctypes
    import sys

    import _ssl
    if sys.implementation.name != "cpython" or not (3, 8) <= sys.version_info[:2] <= (3, 13):
        pytest.skip("the record path uses the ssl module's methods here")
    lib = ctypes.CDLL(_ssl.__file__)
    for name in ("SSL_get_rbio", "SSL_get_wbio"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_void_p
    ptr, head = ctypes.sizeof(ctypes.c_void_p), object.__basicsize__

    def field(obj, n: int) -> int | None:
        return ctypes.c_void_p.from_address(id(obj) + head + n * ptr).value

    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = ssl.create_default_context().wrap_bio(incoming, outgoing,
                                                    server_hostname="example.com")._sslobj
    assert field(sslobj, 2) == id(sslobj.context)
    assert lib.SSL_get_rbio(field(sslobj, 1)) == field(incoming, 0)
    assert lib.SSL_get_wbio(field(sslobj, 1)) == field(outgoing, 0)


@pytest.fixture(params=["openssl", "ssl-module"])
def record_path(request, monkeypatch):
    """Both record paths of picows' layer (see tls.pyx)."""
    if request.param == "ssl-module":
        monkeypatch.setenv("PICOWS_TLS_SSL_MODULE", "1")
    return request.param


def check_record_path(wstransport) -> None:
    """The layer under `wstransport` took the record path the environment asks."""
    from picows.picows import _tls_uses_openssl
    expected = "openssl" if _tls_uses_openssl() else "ssl-module"
    assert wstransport.underlying_transport._layer.record_path == expected


# --------------------------------------------------------------------------
# Echo


@pytest.mark.parametrize("initiator", ["client", "server"])
@pytest.mark.parametrize("size", SIZES)
async def test_echo_sizes(tls, size, initiator, record_path):
    """Sizes around the frame length encodings and the TLS record size (up
    to 5 MiB: many records per read and per write, and more than one write
    chunk of the record path); the side that sends first is the client or
    the server."""
    payload = pattern(size)
    async with echo_pair(tls, initiator) as (transport, receiver):
        check_record_path(transport)
        transport.send(WSMsgType.BINARY, payload)
        frame = await receiver.next_frame()
    assert (frame.msg_type, frame.fin, frame.payload_size) == (WSMsgType.BINARY, True, size)
    assert frame.payload == payload


@pytest.mark.parametrize("initiator", ["client", "server"])
async def test_echo_burst_in_order(tls, initiator, record_path):
    """1,000 small frames sent back to back, without waiting: many frames per
    TLS record and per read."""
    messages = [str(i).encode() + pattern(i % 200) for i in range(1000)]
    async with echo_pair(tls, initiator) as (transport, receiver):
        check_record_path(transport)
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


def tls12_client_context(tls) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cadata=b"".join(tls.client_ssl.get_ca_certs(binary_form=True)))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


async def hand_server_upgrade(tls, reader, writer) -> HandDrivenTLS:
    """A hand-driven TLS server peer that has done the TLS handshake and
    accepted the client's WebSocket upgrade."""
    peer = HandDrivenTLS(reader, writer, tls.server_ssl, server_side=True)
    await peer.handshake()
    head = await peer.read_until(b"\r\n\r\n")
    key = next(line.partition(":")[2].strip() for line in head.decode().split("\r\n")
               if line.lower().startswith("sec-websocket-key:"))
    peer.send(("HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Accept: {expected_accept(key)}\r\n\r\n").encode())
    return peer


async def send_and_read_echoes(peer: HandDrivenTLS, payloads: list[bytes]) -> list[bytes]:
    """Send `payloads` as binary frames in one flight and return the payloads
    of the client's echoes (short masked frames), answering the messages of
    a renegotiation in progress on the way."""
    for payload in payloads:
        peer.sslobj.write(server_frame(WSMsgType.BINARY, payload))
    peer._flush()
    data = b""
    while len(data) < sum(6 + len(payload) for payload in payloads):
        try:
            data += peer.sslobj.read(65536)
        except ssl.SSLWantReadError:
            peer._flush()
            await peer._receive()
        peer._flush()
    got = []
    while data:
        n = data[1] & 0x7F
        mask, body, data = data[2:6], data[6:6 + n], data[6 + n:]
        got.append(bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
    return got


async def echo_against_hand_server(tls, tcp, hand_server, echoes: asyncio.Queue):
    """Connect an echoing picows TLS 1.2 client to `hand_server` and return
    what the server puts in `echoes`."""
    async with raw_server(tcp, hand_server) as port:
        transport, _ = await wait_for(ws_connect(
            EchoListener, f"wss://127.0.0.1:{port}/", ssl_context=tls12_client_context(tls)))
        try:
            check_record_path(transport)
            return await wait_for(echoes.get())
        finally:
            transport.disconnect()
            await wait_for(transport.wait_disconnected())


def ssl_renegotiate(sslobj: ssl.SSLObject) -> None:
    """SSL_renegotiate() on the SSL* under `sslobj`: the ssl module has no
    API for it. The pointer is read as picows' layer reads it (the field
    after PySSLSocket's first; checked against the BIO it must hold)."""
    import ctypes

    import _ssl
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_renegotiate.argtypes = [ctypes.c_void_p]
    lib.SSL_get_wbio.argtypes = [ctypes.c_void_p]
    lib.SSL_get_wbio.restype = ctypes.c_void_p
    ptr = ctypes.sizeof(ctypes.c_void_p)
    ssl_ptr = ctypes.c_void_p.from_address(id(sslobj._sslobj) + object.__basicsize__ + ptr).value
    bio_ptr = ctypes.c_void_p.from_address(id(sslobj._sslobj._outgoing) + object.__basicsize__
                                           ).value if hasattr(sslobj._sslobj, "_outgoing") else None
    if bio_ptr is not None:
        assert lib.SSL_get_wbio(ssl_ptr) == bio_ptr
    assert lib.SSL_renegotiate(ssl_ptr) == 1


def ssl_renegotiate_pending(sslobj: ssl.SSLObject) -> bool:
    """SSL_renegotiate_pending() on the SSL* under `sslobj`."""
    import ctypes

    import _ssl
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_renegotiate_pending.argtypes = [ctypes.c_void_p]
    ptr = ctypes.sizeof(ctypes.c_void_p)
    ssl_ptr = ctypes.c_void_p.from_address(id(sslobj._sslobj) + object.__basicsize__ + ptr).value
    return bool(lib.SSL_renegotiate_pending(ssl_ptr))


@pytest.mark.skipif(ssl.OPENSSL_VERSION_INFO < (3,),
                    reason="OpenSSL 1.1 servers accept client renegotiation")
@pytest.mark.parametrize("after", ["idle", "sending"])
async def test_client_renegotiation_is_refused(tls, tcp, record_path, after):
    """TLS 1.2: a client asks the server to renegotiate (a new ClientHello in
    the middle of the connection). OpenSSL 3 servers refuse it (no
    client-initiated renegotiation unless SSL_OP_ALLOW_CLIENT_RENEGOTIATION),
    OpenSSL clients give up on such a refusal, and the server's websocket
    ends once, at once, without anything reaching the loop's exception
    handler; the server keeps serving. `sending`: the server is sending
    frames while the renegotiation comes in."""
    tls12 = Net("tls", tls.server_ssl, tls12_client_context(tls))
    async with serve(tls12) as server:
        reader, writer = await wait_for(asyncio.open_connection("127.0.0.1", server.port))
        try:
            peer = HandDrivenTLS(reader, writer, tls12.client_ssl, server_side=False)
            await peer.upgrade()
            assert peer.sslobj.version() == "TLSv1.2"
            listener, transport = await server.next_connected()
            check_record_path(transport)
            ssl_renegotiate(peer.sslobj)
            with pytest.raises(ssl.SSLWantReadError):
                peer.sslobj.do_handshake()
            peer._flush()
            if after == "sending":
                for _ in range(20):
                    transport.send(WSMsgType.BINARY, pattern(8 * KIB))
            _, ending = await wait_for(peer.read_to_end())
            # The client's fatal alert, answering the refusal.
            peer._flush()
            await wait_for(listener.disconnected, FAST)
            await wait_for(transport.wait_disconnected(), FAST)
        finally:
            await close_writer(writer)
        assert isinstance(ending, ssl.SSLError), repr(ending)
        assert "RENEGOTIATION" in str(ending).upper(), repr(ending)
        assert listener.disconnected_calls == 1
        async with connect(tls, server.url()) as (client_transport, client):
            client_transport.send(WSMsgType.TEXT, b"still serving")
            assert (await client.next_frame()).payload == b"still serving"


async def test_server_renegotiation_then_echo(tls, tcp, record_path):
    """TLS 1.2: the server asks for a renegotiation (HelloRequest); the
    picows client renegotiates (OpenSSL clients accept a server's request)
    inside its record path, and frames flow both ways afterwards."""
    echoes: asyncio.Queue = asyncio.Queue()

    async def hand_server(reader, writer):
        peer = await hand_server_upgrade(tls, reader, writer)
        ssl_renegotiate(peer.sslobj)
        peer.sslobj.do_handshake()  # the HelloRequest
        peer._flush()
        flights = 0
        while ssl_renegotiate_pending(peer.sslobj):
            with contextlib.suppress(ssl.SSLWantReadError):
                peer.sslobj.read(65536)
            peer._flush()
            if ssl_renegotiate_pending(peer.sslobj):
                await peer._receive()
                flights += 1
        got = await send_and_read_echoes(peer, [b"before", b"after"])
        echoes.put_nowait((got, peer.sslobj.version(), flights))
        await peer.read_to_end()

    got, version, flights = await echo_against_hand_server(tls, tcp, hand_server, echoes)
    assert version == "TLSv1.2"
    # The client's ClientHello, then its Finished.
    assert flights >= 2, flights
    assert got == [b"before", b"after"]


async def test_server_renegotiation_holds_writes_until_done(tls, tcp, record_path):
    """TLS 1.2: the server asks for a renegotiation (HelloRequest) and sends
    two frames right after it, in the same flight. The picows client
    renegotiates and gets the frames in the middle of it; its echo of the
    first meets the handshake in progress with the second frame still
    unread (OpenSSL: SSL_ERROR_SYSCALL without an error; the ssl module:
    SSLEOFError), the next ones SSL_ERROR_WANT_READ: all are held and go
    out, in order, once the renegotiation is done."""
    echoes: asyncio.Queue = asyncio.Queue()

    async def hand_server(reader, writer):
        peer = await hand_server_upgrade(tls, reader, writer)
        ssl_renegotiate(peer.sslobj)
        peer.sslobj.do_handshake()  # the HelloRequest
        got = await send_and_read_echoes(peer, [b"during", b"after"])
        echoes.put_nowait((got, peer.sslobj.version()))
        await peer.read_to_end()

    got, version = await echo_against_hand_server(tls, tcp, hand_server, echoes)
    assert version == "TLSv1.2"
    assert got == [b"during", b"after"]


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


async def test_invalid_server_hostname_raises_at_once(tls):
    """A server_hostname the ssl module refuses (a leading dot) fails
    ws_connect at once with that error; picows' layer used to leave it
    waiting. (uvloop's own TLS raises it too, but also reports it to the
    loop's exception handler, which the test fixtures forbid.)"""
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


async def test_empty_server_hostname_needs_check_hostname_off(tls):
    """server_hostname="" with a context that checks host names is refused,
    as the ssl module refuses it for sockets (an SSLObject would quietly skip
    the check); with check_hostname off it connects (the chain is still
    verified)."""
    async with serve(tls) as server:
        with pytest.raises(ValueError, match="check_hostname requires server_hostname"):
            await wait_for(ws_connect(RecordingListener, server.url(),
                                      ssl_context=tls.client_ssl, server_hostname=""))
        context = ssl.create_default_context()
        tls_contexts().ca.configure_trust(context)
        context.check_hostname = False
        async with connect(Net("tls", None, context), server.url(),
                           server_hostname="") as (transport, client):
            transport.send(WSMsgType.TEXT, b"unchecked name")
            assert (await client.next_frame()).payload == b"unchecked name"


@pytest.fixture(params=["from-c", "transport"])
def read_path(request, monkeypatch):
    """On asyncio's selector loop the layer reads the socket from C in
    place of the transport's _read_ready__get_buffer (see tls.pyx);
    PICOWS_NO_DIRECT_READ=1 leaves it to the transport."""
    if request.param == "transport":
        monkeypatch.setenv("PICOWS_NO_DIRECT_READ", "1")
    else:
        monkeypatch.delenv("PICOWS_NO_DIRECT_READ", raising=False)
    return request.param


def check_read_path(tls_transport, read_path: str) -> None:
    layer = tls_transport._layer
    tcp = layer._tcp
    expected = read_path == "from-c" and hasattr(tcp, "_read_ready_cb")  # asyncio
    assert (getattr(tcp, "_read_ready_cb", None) == layer._asyncio_read_ready) is expected


async def test_echo_on_each_read_path(tls, read_path):
    async with serve(tls) as server, connect(tls, server.url()) as (transport, client):
        check_read_path(transport.underlying_transport, read_path)
        listener, server_transport = await server.next_connected()
        check_read_path(server_transport.underlying_transport, read_path)
        for size in (1, 300 * KIB):
            transport.send(WSMsgType.BINARY, pattern(size))
            assert (await client.next_of(WSMsgType.BINARY)).payload == pattern(size)


async def test_tcp_reset_on_each_read_path(tls, read_path):
    """The peer resets TCP: the read fails with ECONNRESET, the connection
    ends once, and nothing reaches the loop's exception handler."""
    import socket
    import struct

    async with serve(tls, lambda request: RecordingListener()) as server:
        reader, writer = await raw_handshake(tls, server.port)
        listener, server_transport = await server.next_connected()
        check_read_path(server_transport.underlying_transport, read_path)
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        await wait_for(listener.disconnected)
        await wait_for(server_transport.wait_disconnected())
        assert listener.disconnected_calls == 1


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


async def test_connection_freed_by_reference_counting(tls, record_path):
    """Once both sides are disconnected, nothing of the connection waits for
    the garbage collector: the websocket protocol, the TLS transport and the
    layer hold no reference cycle (the layer lets go in connection_lost)."""
    import weakref

    server_listeners: list[weakref.ref] = []

    def factory(request):
        listener = EchoListener()
        server_listeners.append(weakref.ref(listener))
        return listener

    server = await ws_create_server(factory, "127.0.0.1", 0, **tls.server_kwargs())
    port = server.sockets[0].getsockname()[1]
    gc.collect()
    gc.disable()
    try:
        transport, client = await wait_for(ws_connect(
            RecordingListener, f"wss://127.0.0.1:{port}/", **tls.client_kwargs()))
        check_record_path(transport)
        transport.send(WSMsgType.BINARY, b"x" * 100_000)
        assert (await client.next_of(WSMsgType.BINARY)).payload == b"x" * 100_000
        refs = [weakref.ref(client), weakref.ref(transport.underlying_transport)]
        transport.disconnect()
        await wait_for(transport.wait_disconnected())
        del transport, client
        # The server side sees the end one loop iteration or so later.
        deadline = time.monotonic() + FAST
        while any(r() is not None for r in refs + server_listeners):
            assert time.monotonic() < deadline, "still alive without the gc"
            await asyncio.sleep(0.01)
        assert len(server_listeners) == 1
    finally:
        gc.enable()
        server.close()


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
            peer = await hand_server_upgrade(tls, reader, writer)
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


@pytest.mark.parametrize("side", ["server", "client"])
async def test_disconnect_sends_close_notify_picows_tls(tls, tcp, side, record_path):
    await check_disconnect_sends_close_notify(tls, tcp, side)


@pytest.mark.parametrize("side", ["server", "client"])
async def test_disconnect_sends_close_notify_loop_tls(tls, tcp, side, monkeypatch):
    monkeypatch.setenv("PICOWS_LOOP_TLS", "1")
    await check_disconnect_sends_close_notify(tls, tcp, side)


# --------------------------------------------------------------------------
# Interop with the websockets package over TLS

INTEROP_SIZES = [10, 20 * KIB, 200 * KIB]


async def test_websockets_client_against_picows_tls_server(tls):
    async with serve(tls) as server:
        async with websockets_client(tls, server.url()) as ws:
            listener, transport = await server.next_connected()
            assert picows_tls(transport.underlying_transport)
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
        assert picows_tls(transport.underlying_transport)
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
