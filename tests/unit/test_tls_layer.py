"""picows's own TLS (``picows.picows.TLSLayer``, used on the default asyncio
loop), without sockets: the layer sits on a fake TCP transport, and its peer
is an ``ssl.SSLObject`` over two MemoryBIOs with a trustme certificate. The
websocket protocol on top is a real WSProtocol, so what crosses the layer is
the upgrade and frames.

Covered: the handshake in both roles, data both ways (across TLS record and
read-window sizes; records cut anywhere by the reads), close_notify sent on
close and received (an EOF for the websocket protocol), the handshake
timeout, corrupt records during and after the handshake, wrap_bio refusing a
server_hostname, a certificate for another name, writes queued before the
handshake finishes, application data arriving with the end of the handshake.
"""
from __future__ import annotations

import asyncio
import logging
import ssl

import pytest

from picows import WSMsgType
from picows.picows import TLSLayer

from tests.support import (BINARY, CLIENT_KEY, SERVER_KEY, TEXT, WAIT, FakeTransport,
    RecordingListener, build_frame, client_frame, decode_frames, feed, flush, new_protocol,
    pattern, server_frame, switching_response, tls_contexts, upgrade_request)


pytest.importorskip("trustme")

SIZES = [1, 125, 16 * 1024, 16 * 1024 + 1, 33 * 1024 + 7, 300 * 1024]
LOGGER = "tls-layer-test"


class Link:
    """A TLSLayer on a fake TCP transport, and its peer.

    ``role`` is the layer's (and its websocket protocol's): "server" or
    "client". ``pump()`` moves ciphertext both ways until nothing moves; the
    peer handshakes and decrypts what arrives into ``received``.
    """

    def __init__(self, role: str, *, server_hostname: str | None = "127.0.0.1",
                 peer_hostname: str = "127.0.0.1", handshake_timeout: float | None = None):
        contexts = tls_contexts()
        self.server_side = role == "server"
        self.listener = RecordingListener()
        factory = ((lambda request: self.listener) if self.server_side
                   else (lambda: self.listener))
        self.app = new_protocol(not self.server_side, factory, logger_name=LOGGER)
        self.layer = TLSLayer(contexts.server if self.server_side else contexts.client,
                              self.server_side, None if self.server_side else server_hostname,
                              self.app, handshake_timeout)
        self.tcp = FakeTransport(True, proto=self.layer)
        self.peer_in, self.peer_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.peer = (contexts.client if self.server_side else contexts.server).wrap_bio(
            self.peer_in, self.peer_out, server_side=not self.server_side,
            server_hostname=peer_hostname if self.server_side else None)
        self.peer_ready = False
        self.peer_error: Exception | None = None
        self.peer_eof = False
        self.received = bytearray()
        self._forwarded = 0

    def start(self) -> Link:
        self.layer.connection_made(self.tcp)
        return self

    def pump(self) -> None:
        while True:
            out = self.tcp.data()[self._forwarded:]
            self._forwarded += len(out)
            if out:
                self.peer_in.write(out)
            self._peer_step()
            back = self.peer_out.read()
            if back and not self.tcp.closing:
                feed(self.layer, back)
            if not out and not back:
                return

    def _peer_step(self) -> None:
        if self.peer_error is not None or self.peer_eof:
            return
        try:
            if not self.peer_ready:
                self.peer.do_handshake()
                self.peer_ready = True
            while True:
                data = self.peer.read(1 << 20)
                if not data:
                    self.peer_eof = True
                    return
                self.received += data
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.peer_eof = True
        except ssl.SSLError as exc:
            self.peer_error = exc

    def peer_send(self, data: bytes) -> None:
        self.peer.write(data)
        self.pump()

    def received_head(self) -> bytes:
        head, sep, _ = bytes(self.received).partition(b"\r\n\r\n")
        assert sep, f"no complete HTTP head received: {bytes(self.received)!r}"
        return head

    def received_frames(self):
        frames = decode_frames(bytes(self.received))
        assert all(f.masked == (not self.server_side) for f in frames)
        return frames

    async def upgrade(self) -> None:
        """TLS handshake, then the websocket upgrade across it."""
        self.pump()
        assert self.peer_ready and self.layer.ssl_object is not None
        if self.server_side:
            self.peer_send(upgrade_request(SERVER_KEY))
            assert self.received_head().startswith(b"HTTP/1.1 101 ")
        else:
            assert self.received_head().startswith(b"GET /ws HTTP/1.1")
            self.peer_send(switching_response(CLIENT_KEY))
        await self.listener.connected
        self.received.clear()

    def peer_frame(self, opcode: int, payload: bytes) -> bytes:
        return (client_frame if self.server_side else server_frame)(opcode, payload)

    async def finish(self) -> None:
        """The peer closes TCP; a client whose upgrade did not complete fails it."""
        if not self.tcp.lost:
            self.tcp.peer_close()
        await flush()
        upgrade = None if self.server_side else self.app.handshake_future
        if upgrade is not None:
            assert upgrade.done()
            assert (upgrade.exception() is None) == (self.listener.connected_calls == 1)
        assert self.listener.disconnected_calls == (1 if self.listener.connected_calls else 0)


@pytest.fixture(params=["server", "client"])
def role(request) -> str:
    return request.param


@pytest.fixture
async def link(role):
    """A started Link past the TLS handshake and the websocket upgrade."""
    link = Link(role).start()
    await link.upgrade()
    yield link
    await link.finish()


# --------------------------------------------------------------------------
# Handshake and data


async def test_handshake(role):
    link = Link(role).start()
    # The client speaks first: a ClientHello, or nothing until one comes.
    assert bool(link.tcp.data()) == (role == "client")
    assert link.listener.connected_calls == 0
    link.pump()
    assert link.peer_ready
    if role == "client":
        assert link.layer.handshake_waiter.done()
        assert link.layer.handshake_waiter.result() is None
        assert link.received_head().startswith(b"GET /ws HTTP/1.1\r\n")
    else:
        assert link.layer.handshake_waiter is None
        assert link.received == b""  # the server waits for the upgrade request
    assert link.layer.app_protocol is link.app
    await link.finish()


async def test_extra_info(link, role):
    tls = link.listener.transport.underlying_transport
    assert tls.get_extra_info("ssl_object") is link.layer.ssl_object
    assert tls.get_extra_info("cipher") == link.layer.ssl_object.cipher()
    assert tls.get_extra_info("cipher")[1] == link.peer.cipher()[1]
    assert tls.get_extra_info("sslcontext") is link.layer._context
    assert not tls.can_write_eof()
    peercert = tls.get_extra_info("peercert")
    if role == "client":
        assert ("IP Address", "127.0.0.1") in peercert["subjectAltName"]
    else:
        assert not peercert  # the client presented no certificate
    assert tls.get_extra_info("no such thing", "default") == "default"


@pytest.mark.parametrize("size", SIZES)
async def test_data_to_the_app(link, size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    link.peer_send(link.peer_frame(BINARY, payload) + link.peer_frame(TEXT, b"after"))
    assert [(f.msg_type, f.payload) for f in link.listener.frames] == [
        (WSMsgType.BINARY, payload), (WSMsgType.TEXT, b"after")]


@pytest.mark.parametrize("size", SIZES)
async def test_data_from_the_app(link, size):
    payload = bytes(range(251)) * (size // 251) + bytes(size % 251)
    link.listener.transport.send(WSMsgType.BINARY, payload)
    link.listener.transport.send(WSMsgType.TEXT, b"after")
    link.pump()
    assert [(f.opcode, f.payload) for f in link.received_frames()] == [
        (BINARY, payload), (TEXT, b"after")]


def feed_in_pieces(layer, data: bytes, piece: int, *, retries: int = 0) -> None:
    """Like ``feed``, `piece` bytes per read; before each read, `retries`
    windows asked for and not used (a read that met EAGAIN)."""
    view = memoryview(data)
    while view:
        for _ in range(retries):
            layer.get_buffer(-1)
        buf = memoryview(layer.get_buffer(-1))
        n = min(piece, len(buf), len(view))
        buf[:n] = view[:n]
        layer.buffer_updated(n)
        view = view[n:]


@pytest.mark.parametrize("piece, retries", [(1, 0), (7, 1), (4099, 0), (16 * 1024 + 13, 2)])
async def test_records_split_across_reads(link, piece, retries):
    """A record cut anywhere by the socket waits, whole, for its end: the
    part that came first is kept across reads, also across windows asked
    for and not used."""
    sizes = [1, 300, 20 * 1024, 70 * 1024 + 5]
    payloads = [bytes([i]) * n for i, n in enumerate(sizes)]
    link.peer.write(b"".join(link.peer_frame(BINARY, p) for p in payloads))
    from picows.picows import _tls_uses_openssl
    assert link.layer.record_path == ("openssl" if _tls_uses_openssl() else "ssl-module")
    feed_in_pieces(link.layer, link.peer_out.read(), piece, retries=retries)
    assert [f.payload for f in link.listener.frames] == payloads
    # Records still flow both ways afterwards.
    link.listener.transport.send(WSMsgType.TEXT, b"reply")
    link.pump()
    assert [f.payload for f in link.received_frames()] == [b"reply"]


async def test_send_buffer_held_by_another_connection():
    """The records of a write go into one buffer per thread
    (includes/tlsbio.h). When a connection's record waits there unsent (here
    the close_notify of the user's own ssl_object.unwrap(), sent only when
    the layer next flushes), the other connections write into buffers of
    their own: theirs stay whole and in order, and the waiting record is
    still the one sent later."""
    held = Link("client").start()
    await held.upgrade()
    with pytest.raises(ssl.SSLWantReadError):
        held.layer.ssl_object.unwrap()  # close_notify into the layer's BIO
    link = Link("server").start()
    await link.upgrade()
    payloads = [pattern(n) for n in (5, 70 * 1024, 300 * 1024)]
    for p in payloads:
        link.listener.transport.send(WSMsgType.BINARY, p)
    link.pump()
    assert [f.payload for f in link.received_frames()] == payloads
    held.listener.transport.disconnect()  # the layer flushes what it holds
    held.pump()
    assert held.peer_error is None
    assert held.peer_eof, "the held close_notify did not reach the peer"
    await held.finish()
    await link.finish()


async def test_echo_both_ways_in_turn(link):
    link.listener.on_frame = lambda t, f: t.send(f.msg_type, f.get_payload_as_bytes()[::-1])
    for i in range(20):
        link.peer_send(link.peer_frame(BINARY, b"%d-abc" % i))
    assert [f.payload for f in link.received_frames()] == [(b"%d-abc" % i)[::-1]
                                                             for i in range(20)]


# --------------------------------------------------------------------------
# Closing


async def test_close_sends_close_notify(link):
    link.listener.transport.disconnect()
    link.pump()
    assert link.peer_eof, "no close_notify reached the peer"
    assert link.tcp.closing and not link.tcp.aborted
    await link.tcp.wait_lost()
    await link.listener.wait_disconnected(WAIT)
    assert link.listener.disconnected_calls == 1


async def test_close_notify_received_is_an_eof_for_the_app(link, caplog):
    caplog.set_level(logging.DEBUG, logger=f"picows.{LOGGER}")
    with pytest.raises(ssl.SSLWantReadError):
        link.peer.unwrap()  # sends close_notify; ours has not come yet
    link.pump()
    assert "peer closed its side (EOF)" in caplog.text
    # The websocket protocol does not keep a half-closed connection: the
    # layer answers with its own close_notify and closes TCP, gracefully.
    assert link.peer_eof
    assert link.tcp.closing and not link.tcp.aborted
    await link.listener.wait_disconnected(WAIT)


async def test_tcp_eof_during_handshake(role):
    link = Link(role).start()
    link.tcp.peer_eof()
    assert link.tcp.aborted
    if role == "client":
        with pytest.raises(ConnectionResetError, match="during the TLS handshake"):
            await link.layer.handshake_waiter
    await link.finish()
    assert link.listener.connected_calls == 0


async def test_connection_lost_during_handshake_fails_the_waiter():
    link = Link("client").start()
    link.tcp.peer_close()
    with pytest.raises(ConnectionResetError, match="during the TLS handshake"):
        await link.layer.handshake_waiter
    await link.finish()


# --------------------------------------------------------------------------
# Failures


@pytest.mark.parametrize("timeout", [0.05])
async def test_handshake_timeout_aborts(role, timeout):
    link = Link(role, handshake_timeout=timeout).start()
    await link.tcp.wait_lost(WAIT)  # the peer never answers
    assert link.tcp.aborted
    if role == "client":
        with pytest.raises(ConnectionAbortedError, match=f"longer than {timeout} seconds"):
            await link.layer.handshake_waiter
    assert link.listener.connected_calls == 0
    await link.finish()


async def test_handshake_timer_cancelled_once_connected(role):
    link = Link(role, handshake_timeout=0.05).start()
    await link.upgrade()
    with pytest.raises(asyncio.TimeoutError):  # four times the handshake timeout
        await link.tcp.wait_lost(0.2)
    assert not link.tcp.closing
    await link.finish()


CORRUPT_RECORD = b"\x17\x03\x03\x00\x20" + bytes(range(0x20))  # application data, bad MAC


async def test_corrupt_record_during_handshake_aborts(role):
    link = Link(role).start()
    feed(link.layer, b"\x16\x03\x01\x00\x05garbage and then some")
    assert link.tcp.aborted
    if role == "client":
        with pytest.raises(ssl.SSLError):
            await link.layer.handshake_waiter
    await link.finish()
    assert link.listener.connected_calls == 0


async def test_corrupt_record_after_handshake_aborts(link):
    feed(link.layer, CORRUPT_RECORD)
    assert link.tcp.aborted
    await link.tcp.wait_lost()
    await link.listener.wait_disconnected(WAIT)
    assert link.listener.frames == []
    # Nothing more is decrypted or written once it failed.
    written = len(link.tcp.data())
    link.listener.transport.send(WSMsgType.TEXT, b"too late")
    assert len(link.tcp.data()) == written


@pytest.mark.parametrize("hostname, error", [
    ("bad\x00host", TypeError),    # an embedded NUL
    ("x" * 64 + ".example", UnicodeError),  # a label over 63 characters (IDNA)
    (".example.com", UnicodeError),  # an empty label
])
async def test_wrap_bio_error_fails_the_handshake(hostname, error):
    link = Link("client", server_hostname=hostname).start()
    assert link.tcp.aborted
    assert link.tcp.data() == b""
    with pytest.raises(error):
        await link.layer.handshake_waiter
    await link.finish()
    assert link.listener.connected_calls == 0


async def test_check_hostname_without_server_hostname_fails():
    """SSLObject (unlike SSLSocket) takes check_hostname without a
    server_hostname and then skips the host name check: the layer refuses it
    as the ssl module does for sockets, before any byte is sent."""
    link = Link("client", server_hostname=None).start()
    assert link.tcp.aborted
    assert link.tcp.data() == b""
    link.pump()
    try:
        with pytest.raises(ValueError, match="check_hostname requires server_hostname"):
            await link.layer.handshake_waiter
    finally:
        await link.finish()
    assert link.listener.connected_calls == 0


async def test_certificate_for_another_name_fails():
    link = Link("client", server_hostname="example.org").start()
    link.pump()
    with pytest.raises(ssl.SSLCertVerificationError):
        await link.layer.handshake_waiter
    assert link.tcp.aborted
    await link.finish()
    assert link.listener.connected_calls == 0


# --------------------------------------------------------------------------
# Ordering


async def test_writes_before_the_handshake_are_queued():
    link = Link("client").start()
    hello = link.tcp.data()
    link.layer.app_transport.write(b"early ")
    link.layer.app_transport.writelines([b"bytes", b"\r\n"])
    assert link.tcp.data() == hello  # nothing can be encrypted yet
    link.pump()
    # Queued first, then what the websocket protocol wrote on connection_made.
    assert bytes(link.received).startswith(b"early bytes\r\nGET /ws HTTP/1.1\r\n")
    await link.finish()


async def test_data_with_the_end_of_the_handshake():
    link = Link("server").start()
    # The client peer's last handshake flight and its upgrade request and
    # first frame reach the layer in one read.
    while not link.peer_ready:
        try:
            link.peer.do_handshake()
            link.peer_ready = True
        except ssl.SSLWantReadError:
            feed(link.layer, link.peer_out.read())
            link.peer_in.write(link.tcp.data()[link._forwarded:])
            link._forwarded = len(link.tcp.data())
    link.peer.write(upgrade_request(SERVER_KEY) + build_frame(TEXT, b"first", mask=b"abcd"))
    feed(link.layer, link.peer_out.read())
    assert link.listener.connected_calls == 1
    assert [f.payload for f in link.listener.frames] == [b"first"]
    await link.finish()
