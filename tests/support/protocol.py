"""A ``WSProtocol`` on a fake transport, with no sockets.

``new_protocol`` is the one place the tests and the fuzz targets construct
``picows.picows.WSProtocol``: when its constructor changes, only this
function changes. ``start_protocol`` adds a ``FakeTransport`` and
``connection_made``; ``open_conn`` also completes the handshake and returns a
``Conn``, which builds the peer's frames and decodes what the library wrote.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from picows.handshake import build_upgrade_request
from picows.picows import WSProtocol, _ConnectionOptions

from .listeners import Frame, RecordingListener
from .transport import FakeTransport, feed, flush
from .wire import (
    CLIENT_KEY,
    CLOSE,
    SERVER_KEY,
    WireFrame,
    build_frame,
    build_header,
    close_payload,
    decode_frames,
    expected_accept,
    next_mask,
    switching_response,
    upgrade_request,
)

WAIT = 2.0  # upper bound for waiting on an event that must happen


def new_protocol(is_client: bool, listener_factory: Callable, *,
                 upgrade_request: bytes | None = None, client_key: str | None = None,
                 **options: Any) -> WSProtocol:
    """``WSProtocol(_ConnectionOptions(listener_factory, **options), ...)``;
    ``options`` are the keywords of ws_connect / ws_create_server. A client
    defaults to sending ``GET /ws`` to example.com with ``CLIENT_KEY``."""
    if is_client:
        if upgrade_request is None:
            upgrade_request = build_upgrade_request("example.com", "/ws", CLIENT_KEY)
        if client_key is None:
            client_key = CLIENT_KEY
    return WSProtocol(_ConnectionOptions(listener_factory, **options), is_client=is_client,
                      upgrade_request=upgrade_request, client_key=client_key)


def start_protocol(is_client: bool, listener: Any = None, *, eof_capable: bool = False,
                   listener_factory: Callable | None = None, **options: Any):
    """A protocol on a new FakeTransport, after connection_made (before the
    handshake): (proto, fake, listener). Without ``listener_factory`` the
    factory returns ``listener`` (a new RecordingListener by default)."""
    if listener is None:
        listener = RecordingListener()
    if listener_factory is None:
        listener_factory = (lambda: listener) if is_client else (lambda request: listener)
    proto = new_protocol(is_client, listener_factory, **options)
    fake = FakeTransport(eof_capable, proto=proto)
    proto.connection_made(fake)
    return proto, fake, listener


class Conn:
    """A WSProtocol past the handshake, with its fake transport and recording listener."""

    def __init__(self, role: str, proto, fake: FakeTransport, listener: RecordingListener):
        self.role = role
        self.is_client = role == "client"
        self.proto = proto
        self.fake = fake
        self.listener = listener
        self.mark = len(fake.data())  # offset in fake.data() where frames start

    @property
    def ws(self):
        return self.proto.transport

    @property
    def frames(self) -> list[Frame]:
        return self.listener.frames

    def feed(self, data: bytes) -> None:
        feed(self.proto, data)

    def peer_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
                   mask: Any = "auto") -> bytes:
        """A frame as the peer sends it: masked towards a server, not towards a client."""
        if mask == "auto":
            mask = None if self.is_client else next_mask()
        return build_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask)

    def peer_header(self, opcode: int, length: int, fin: bool = True, rsv: int = 0,
                    length_form: int | None = None):
        """(header, mask) as the peer sends it; mask is None towards a client."""
        mask = None if self.is_client else next_mask()
        return build_header(opcode, length, fin=fin, rsv=rsv, mask=mask,
                            length_form=length_form), mask

    def feed_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
                   mask: Any = "auto") -> None:
        self.feed(self.peer_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask))

    def written(self) -> bytes:
        return self.fake.data()[self.mark:]

    def sent(self) -> list[WireFrame]:
        """Frames the library wrote since the handshake, checked for the role's masking."""
        frames = decode_frames(self.written())
        for f in frames:
            assert f.masked == self.is_client, (
                f"{self.role} wrote a frame with mask bit {int(f.masked)}: {f.raw[:16]!r}")
        return frames

    def sent_closes(self) -> list[WireFrame]:
        return [f for f in self.sent() if f.opcode == CLOSE]

    async def wait_disconnected(self, timeout: float = WAIT) -> None:
        await self.listener.wait_disconnected(timeout)

    async def wait_closed(self) -> None:
        """The library closed the transport, and on_ws_disconnected ran once."""
        await self.fake.wait_lost(WAIT)
        await self.wait_disconnected()
        assert self.listener.disconnected_calls == 1

    async def finish(self) -> None:
        """End the connection: wait for the close the library started, or
        have the peer close TCP; on_ws_disconnected must run exactly once."""
        if not self.fake.lost:
            if self.fake.closing:
                await self.wait_disconnected()
            else:
                self.fake.peer_close()
        await flush()
        assert self.listener.disconnected_calls == 1, (
            f"on_ws_disconnected called {self.listener.disconnected_calls} times")

    async def expect_close(self, code: int, *, peer_completes: bool = True,
                           delivered: list[bytes] | None = None) -> WireFrame:
        """The connection wrote exactly one CLOSE with ``code`` and disconnects;
        with ``delivered``, the listener got frames with exactly these payloads.

        The CLOSE must be written at once. Then, unless the library already
        closed the transport, the peer completes the closing handshake
        (RFC 6455 7.1.7 / 5.5.1): it answers with its own CLOSE and, towards a
        client, the server closes TCP. The connection must then end, with
        no further CLOSE written. (test_rfc_rules checks separately that the
        transport is closed without the peer's help.)
        """
        closes = self.sent_closes()
        assert [c.close_code for c in closes] == [code], (
            f"expected one CLOSE {code}, wrote {[(c.close_code, c.payload) for c in closes]}")
        assert self.sent()[-1].opcode == CLOSE, "frames written after the CLOSE"
        if peer_completes and not self.fake.closing:
            self.feed(self.peer_frame(CLOSE, close_payload(code)))
            if self.is_client and not self.fake.closing:
                self.fake.peer_close()
        await self.wait_disconnected()
        assert self.fake.lost
        closes = self.sent_closes()
        assert [c.close_code for c in closes] == [code], "a second CLOSE was written"
        assert self.listener.disconnected_calls == 1
        if delivered is not None:
            assert [f.payload for f in self.frames] == delivered
        return closes[0]


async def open_conn(role: str, listener: RecordingListener | None = None,
                    eof_capable: bool = False, *, extra: bytes = b"", **options) -> Conn:
    """A connection past the handshake; ``extra`` adds header lines to the
    peer's head (the request towards a server, the 101 towards a client)."""
    assert role in ("server", "client")
    is_client = role == "client"
    proto, fake, listener = start_protocol(is_client, listener, eof_capable=eof_capable,
                                           **options)
    if is_client:
        assert fake.data().startswith(b"GET /ws HTTP/1.1\r\n")
        feed(proto, switching_response(CLIENT_KEY, extra=extra))
        ws, lst = await asyncio.wait_for(proto.handshake_future, WAIT)
        assert lst is listener
        assert ws is proto.transport
    else:
        feed(proto, upgrade_request(SERVER_KEY, extra=extra))
        head = fake.data()
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert expected_accept(SERVER_KEY).encode() in head
    assert proto.transport is not None
    assert (listener.connected_calls, listener.transport) == (1, proto.transport)
    return Conn(role, proto, fake, listener)
