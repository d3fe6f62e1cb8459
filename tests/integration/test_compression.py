"""permessage-deflate (RFC 7692) over loopback, asyncio and uvloop, TCP and
TLS: picows with itself, with a raw client that checks the bytes on the wire,
and with the ``websockets`` package (public API only) on the other end."""
from __future__ import annotations

import asyncio
import contextlib
import random
import zlib
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import serve as websockets_serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

from picows import WSError, WSMsgType, ws_connect

from tests.support import (client_frame, close_writer, connect, expected_accept, raw_server,
    read_frame, serve, text_payload, wait_for)


PMD = "permessage-deflate"
TAIL = b"\x00\x00\xff\xff"
SIZES = [0, 1, 125, 126, 65536, 1 << 20]


def binary_payload(size: int) -> bytes:
    """Half random, half repeated: both stored and compressed blocks."""
    rnd = random.Random(size)
    half = rnd.randbytes(size // 2)
    return (half + half + b"\x00")[:size]


def payload_for(msg_type: WSMsgType, size: int) -> bytes:
    return text_payload(size) if msg_type == WSMsgType.TEXT else binary_payload(size)


# --------------------------------------------------------------------------
# picows <-> picows


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("msg_type", [WSMsgType.TEXT, WSMsgType.BINARY], ids=["text", "binary"])
async def test_picows_echo_compressed(net, msg_type, size):
    payload = payload_for(msg_type, size)
    async with serve(net, enable_compression=True) as server, \
            connect(net, server.url(), enable_compression=True) as (transport, client):
        assert transport.extensions is not None and transport.extensions.startswith(PMD)
        server_listener = await server.next_listener()
        assert server_listener.transport.extensions == transport.extensions
        transport.send(msg_type, payload)
        frame = await client.next_frame()
    assert (frame.msg_type, frame.fin, frame.rsv1) == (msg_type, True, False)
    assert frame.payload == payload


async def test_picows_many_messages_and_fragments(net):
    """Messages that refer back into earlier ones (context takeover on both
    sides), mixed with fragmented (uncompressed) messages and pings."""
    block = binary_payload(40000)
    async with serve(net, enable_compression=True) as server, \
            connect(net, server.url(), enable_compression=True) as (transport, client):
        expected = []
        for i in range(20):
            msg = block[i * 1000:i * 1000 + 5000] + str(i).encode()
            transport.send(WSMsgType.BINARY, msg)
            expected.append((WSMsgType.BINARY, True, msg))
            if i % 5 == 0:
                transport.send(WSMsgType.TEXT, b"frag", fin=False)
                transport.send_ping(b"p")
                transport.send(WSMsgType.CONTINUATION, b"ment %d" % i, fin=True)
                expected += [(WSMsgType.TEXT, False, b"frag"),
                             (WSMsgType.CONTINUATION, True, b"ment %d" % i)]
        got = [await client.next_frame() for _ in expected]
    assert [(f.msg_type, f.fin, f.payload) for f in got] == expected
    assert not any(f.rsv1 for f in got)


async def test_inflated_size_limit_end_to_end(net):
    """10 MiB of zeros deflate to about 10 KiB: the server's max_frame_size
    bounds what the frame inflates to, not only its length (CLOSE 1009)."""
    limit = 64 * 1024
    async with serve(net, enable_compression=True, max_frame_size=limit) as server, \
            connect(net, server.url(), enable_compression=True) as (transport, client):
        transport.send(WSMsgType.BINARY, b"fits")
        assert (await client.next_frame()).payload == b"fits"
        transport.send(WSMsgType.BINARY, bytes(10 * 1024 * 1024))
        close = await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
    assert close.close_code == 1009


@pytest.mark.parametrize("server_on, client_on", [(True, False), (False, True), (False, False)],
                         ids=["client-off", "server-off", "both-off"])
async def test_compression_off_on_one_side(net, server_on, client_on):
    payload = text_payload(5000)
    async with serve(net, enable_compression=server_on) as server, \
            connect(net, server.url(), enable_compression=client_on) as (transport, client):
        server_listener = await server.next_listener()
        assert transport.extensions is None
        assert server_listener.transport.extensions is None
        assert "sec-websocket-extensions" not in transport.response.headers
        transport.send(WSMsgType.TEXT, payload)
        frame = await client.next_frame()
    assert (frame.payload, frame.rsv1) == (payload, False)


# --------------------------------------------------------------------------
# picows server, raw client: what is on the wire


def masked_frame(opcode: int, payload: bytes, *, rsv1: bool = False, fin: bool = True) -> bytes:
    frame = client_frame(opcode, payload, fin=fin)
    return bytes([frame[0] | (0x40 if rsv1 else 0)]) + frame[1:]


async def read_frame_rsv(reader) -> tuple[bool, int, int, bytes]:
    """(fin, rsv bits, opcode, payload) of an unmasked frame."""
    (b0,) = await wait_for(reader.readexactly(1))
    fin, opcode, payload = await wait_for(read_frame(reader, first_byte=b0))
    return fin, (b0 >> 4) & 7, opcode, payload


@contextlib.asynccontextmanager
async def raw_client(net, port: int, offer: bytes | None) -> AsyncIterator[tuple]:
    """A raw connection that sent ``offer``; yields (reader, writer, headers of the 101)."""
    reader, writer = await wait_for(asyncio.open_connection("127.0.0.1", port,
                                                            **net.raw_kwargs()))
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    ext = b"" if offer is None else b"Sec-WebSocket-Extensions: " + offer + b"\r\n"
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key.encode() + b"\r\n"
                 b"Sec-WebSocket-Version: 13\r\n" + ext + b"\r\n")
    try:
        head = await wait_for(reader.readuntil(b"\r\n\r\n"))
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), head
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        assert headers["sec-websocket-accept"] == expected_accept(key)
        yield reader, writer, headers
    finally:
        await close_writer(writer)


async def test_wire_format_server(net):
    """The 101 carries the agreement; the echo of a compressed message is one
    RSV1 frame that inflates (independently) to the message; control frames
    and fragments are sent plain."""
    peer = zlib.compressobj(wbits=-15)
    inflater = zlib.decompressobj(-15)
    async with serve(net, enable_compression=True) as server, \
            raw_client(net, server.port, b"permessage-deflate; client_max_window_bits") \
            as (reader, writer, headers):
        assert headers["sec-websocket-extensions"].split(";")[0].strip() == PMD
        for i in range(3):
            msg = text_payload(3000) + b"%d" % i
            data = peer.compress(msg) + peer.flush(zlib.Z_SYNC_FLUSH)
            writer.write(masked_frame(0x1, data[:-4], rsv1=True))
            fin, rsv, opcode, payload = await read_frame_rsv(reader)
            assert (fin, rsv, opcode) == (True, 4, 0x1)
            # one inflater for all: the server may keep its window
            assert inflater.decompress(payload + TAIL) == msg
        writer.write(masked_frame(0x9, b"ping"))
        assert await read_frame_rsv(reader) == (True, 0, 0xA, b"ping")
        writer.write(masked_frame(0x2, b"ab", fin=False) + masked_frame(0x0, b"cd"))
        assert await read_frame_rsv(reader) == (False, 0, 0x2, b"ab")
        assert await read_frame_rsv(reader) == (True, 0, 0x0, b"cd")


async def test_wire_format_server_no_context_takeover_and_window(net):
    offer = b"permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
    block = random.Random(1).randbytes(3000)
    async with serve(net, enable_compression=True) as server, \
            raw_client(net, server.port, offer) as (reader, writer, headers):
        agreed = [p.strip() for p in headers["sec-websocket-extensions"].split(";")]
        assert agreed[0] == PMD
        assert "server_no_context_takeover" in agreed
        assert "server_max_window_bits=10" in agreed
        for _ in range(3):
            writer.write(masked_frame(0x2, block + block))
            fin, rsv, opcode, payload = await read_frame_rsv(reader)
            assert (fin, rsv, opcode) == (True, 4, 0x2)
            # fresh 10-bit inflater for each message
            assert zlib.decompressobj(-10).decompress(payload + TAIL) == block + block


@pytest.mark.parametrize("offer", [
    None,
    b"x-webkit-deflate-frame",
    b"permessage-deflate; unknown_param",
    b"permessage-deflate; server_max_window_bits=7",
    b"permessage-deflate; server_max_window_bits=1\xb2",
], ids=["none", "other", "unknown-param", "bits-7", "superscript-digit"])
async def test_server_declines_bad_offer(net, offer):
    async with serve(net, enable_compression=True) as server, \
            raw_client(net, server.port, offer) as (reader, writer, headers):
        assert "sec-websocket-extensions" not in headers
        writer.write(masked_frame(0x1, b"plain"))
        assert await read_frame_rsv(reader) == (True, 0, 0x1, b"plain")
        listener = await server.next_listener()
        assert listener.transport.extensions is None


# --------------------------------------------------------------------------
# picows client, raw server answering the offer


async def answer_with(net, extensions: bytes | None, on_request=None):
    """A raw server answering every upgrade with ``extensions``."""
    async def on_connection(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        if on_request is not None:
            on_request(head)
        key = ""
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        ext = b"" if extensions is None else b"Sec-WebSocket-Extensions: " + extensions + b"\r\n"
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + expected_accept(key).encode() + b"\r\n" + ext + b"\r\n")
        await writer.drain()
        await reader.read()  # until the client goes away

    return raw_server(net, on_connection)


@pytest.mark.parametrize("enabled, extensions", [
    (True, b"x-webkit-deflate-frame"),
    (True, b"permessage-deflate; unknown_param"),
    (True, b"permessage-deflate; client_max_window_bits=16"),
    (True, b"permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
    (True, b"permessage-deflate, permessage-deflate"),
    (False, b"permessage-deflate"),
], ids=["other", "unknown-param", "bits-16", "duplicate", "twice", "not-offered"])
async def test_client_rejects_bad_agreement(net, enabled, extensions):
    async with await answer_with(net, extensions) as port:
        with pytest.raises(WSError):
            await wait_for(ws_connect(lambda: None, f"{net.scheme}://127.0.0.1:{port}/",
                                      enable_compression=enabled, **net.client_kwargs()))


async def test_client_offer_on_the_wire(net):
    heads = []
    async with await answer_with(net, None, heads.append) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                    enable_compression=True) as (transport, _):
        assert transport.extensions is None  # offered, not accepted: plain
    offers = [line.split(b":", 1)[1].strip() for line in heads[0].split(b"\r\n")
              if line.lower().startswith(b"sec-websocket-extensions:")]
    assert len(offers) == 1 and offers[0].startswith(b"permessage-deflate")


async def test_wire_format_client(net):
    """What a picows client puts on the wire once the raw server accepted:
    one masked RSV1 frame per message, inflating with one shared inflater."""
    got: asyncio.Queue = asyncio.Queue()

    async def on_connection(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0]
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + expected_accept(key.decode()).encode()
                     + b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        inflater = zlib.decompressobj(-15)
        for _ in range(3):
            (b0,) = await reader.readexactly(1)
            fin, opcode, payload = await read_frame(reader, masked=True, first_byte=b0)
            got.put_nowait((fin, (b0 >> 4) & 7, opcode, inflater.decompress(payload + TAIL)))
        # and a compressed message the other way
        c = zlib.compressobj(wbits=-15)
        data = c.compress(b"from the server") + c.flush(zlib.Z_SYNC_FLUSH)
        writer.write(bytes([0xC1, len(data) - 4]) + data[:-4])
        await reader.read()

    msg = text_payload(5000)
    async with raw_server(net, on_connection) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                    enable_compression=True) as (transport, client):
        assert transport.extensions == PMD
        for _ in range(3):
            transport.send(WSMsgType.TEXT, msg)
            assert await wait_for(got.get()) == (True, 4, 0x1, msg)
        frame = await client.next_frame()
        assert (frame.msg_type, frame.rsv1, frame.payload) == (
            WSMsgType.TEXT, False, b"from the server")


# --------------------------------------------------------------------------
# websockets on the other end


def deflate_of(ws) -> PerMessageDeflate:
    """The permessage-deflate extension websockets negotiated on ``ws``."""
    extensions = ws.protocol.extensions
    assert len(extensions) == 1 and isinstance(extensions[0], PerMessageDeflate), extensions
    return extensions[0]


class Peer:
    def __init__(self) -> None:
        self.received: asyncio.Queue = asyncio.Queue()
        self.connections: list = []
        self.url = ""


@contextlib.asynccontextmanager
async def websockets_server(net, **kwargs) -> AsyncIterator[Peer]:
    """A websockets echo server with compression="deflate" (unless overridden)."""
    peer = Peer()

    async def handler(ws):
        peer.connections.append(ws)
        async for message in ws:
            peer.received.put_nowait(message)
            await ws.send(message)

    kwargs.setdefault("compression", "deflate")
    ssl_kwargs = {"ssl": net.server_ssl} if net.tls else {}
    async with websockets_serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None,
                                **ssl_kwargs, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        peer.url = f"{net.scheme}://127.0.0.1:{port}/"
        yield peer


def websockets_client(net, url, **kwargs):
    kwargs.setdefault("compression", "deflate")
    ssl_kwargs = {"ssl": net.client_ssl} if net.tls else {}
    return websockets_connect(url, max_size=None, proxy=None, ping_interval=None,
                              open_timeout=10, close_timeout=5, **ssl_kwargs, **kwargs)


# Messages: text, binary, empty, large, and repeats that context takeover shrinks.
BLOCK = random.Random(7).randbytes(30000)
MESSAGES = [
    "hello", b"\x00\x01\x02", "", b"", text_payload(70000).decode(), BLOCK, BLOCK,
    "h\u00e9llo \u20ac \U0001F600" * 500, BLOCK[:10000] + b"x", binary_payload(1 << 20),
]


# Agreements with websockets, as parameters of its extension factories (the
# client's offer or the server's policy); None: websockets' default for
# compression="deflate".
AGREEMENTS = {
    "default": None,
    "server-nct": dict(server_no_context_takeover=True),
    "client-nct": dict(client_no_context_takeover=True),
    "server-bits-9": dict(server_max_window_bits=9),
    "server-bits-10": dict(server_max_window_bits=10),
    "client-bits-9": dict(client_max_window_bits=9),
    "client-bits-10": dict(client_max_window_bits=10),
}


@pytest.mark.parametrize("agreement", list(AGREEMENTS))
async def test_picows_server_websockets_client(net, agreement):
    params = AGREEMENTS[agreement]
    kwargs = {} if params is None else {
        "extensions": [ClientPerMessageDeflateFactory(**params)]}
    async with serve(net, enable_compression=True) as server, \
            websockets_client(net, server.url(), **kwargs) as ws:
        deflate = deflate_of(ws)
        listener = await server.next_listener()
        assert listener.transport.extensions == ws.response.headers["Sec-WebSocket-Extensions"]
        if params is not None and params.get("server_no_context_takeover"):
            assert deflate.remote_no_context_takeover
        if params is not None and params.get("server_max_window_bits"):
            assert deflate.remote_max_window_bits == params["server_max_window_bits"]
        for message in MESSAGES:
            await ws.send(message)
            assert await wait_for(ws.recv()) == message
        # fragmented by websockets: compressed first frame and continuations
        await ws.send(["frag1-", "fr\u00e4g2-", "", "frag3"])
        assert await wait_for(ws.recv()) == "frag1-fr\u00e4g2-frag3"
        await ws.send([b"\x00" * 1000, b"\x01" * 1000])
        assert await wait_for(ws.recv()) == b"\x00" * 1000 + b"\x01" * 1000


@pytest.mark.parametrize("agreement", list(AGREEMENTS))
async def test_picows_client_websockets_server(net, agreement):
    params = AGREEMENTS[agreement]
    kwargs = {} if params is None else {
        "extensions": [ServerPerMessageDeflateFactory(**params)]}
    async with websockets_server(net, **kwargs) as peer, \
            connect(net, peer.url, enable_compression=True) as (transport, client):
        assert transport.extensions is not None and transport.extensions.startswith(PMD)
        for message in MESSAGES:
            data = message.encode() if isinstance(message, str) else message
            msg_type = WSMsgType.TEXT if isinstance(message, str) else WSMsgType.BINARY
            transport.send(msg_type, data)
            assert await wait_for(peer.received.get()) == message
            frame = await client.next_frame()
            assert (frame.msg_type, frame.fin, frame.rsv1) == (msg_type, True, False)
            assert frame.payload == data
        transport.send(WSMsgType.TEXT, b"Hel", fin=False)
        transport.send(WSMsgType.CONTINUATION, b"lo, ", fin=False)
        transport.send(WSMsgType.CONTINUATION, "w\u00f6rld".encode(), fin=True)
        assert await wait_for(peer.received.get()) == "Hello, w\u00f6rld"
        frame = await client.next_frame()
        assert frame.payload == "Hello, w\u00f6rld".encode()
        deflate = deflate_of(peer.connections[0])
        assert transport.extensions == peer.connections[0].response.headers[
            "Sec-WebSocket-Extensions"]
        if params is not None and params.get("client_no_context_takeover"):
            assert deflate.remote_no_context_takeover
        if params is not None and params.get("client_max_window_bits"):
            assert deflate.remote_max_window_bits == params["client_max_window_bits"]


async def test_picows_client_receives_websockets_fragments(net):
    async def handler(ws):
        await ws.send(["frag1-", "fr\u00e4g2-", "frag3"])
        await ws.send([BLOCK, BLOCK[:5000]])
        await ws.wait_closed()

    ssl_kwargs = {"ssl": net.server_ssl} if net.tls else {}
    async with websockets_serve(handler, "127.0.0.1", 0, compression="deflate",
                                ping_interval=None, **ssl_kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                           enable_compression=True) as (transport, client):
            assert transport.extensions is not None
            messages = []
            for _ in range(2):
                frames = [await client.next_frame()]
                while not frames[-1].fin:
                    frames.append(await client.next_frame())
                assert len(frames) >= 2
                assert not any(f.rsv1 for f in frames)
                messages.append(b"".join(f.payload for f in frames))
    assert messages == ["frag1-fr\u00e4g2-frag3".encode(), BLOCK + BLOCK[:5000]]


@pytest.mark.parametrize("picows_on, websockets_on", [(False, True), (True, False)],
                         ids=["picows-off", "websockets-off"])
async def test_websockets_client_without_agreement(net, picows_on, websockets_on):
    async with serve(net, enable_compression=picows_on) as server, \
            websockets_client(net, server.url(),
                              compression="deflate" if websockets_on else None) as ws:
        assert ws.protocol.extensions == []
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send(BLOCK)
        assert await wait_for(ws.recv()) == BLOCK
        listener = await server.next_listener()
        assert listener.transport.extensions is None


@pytest.mark.parametrize("picows_on, websockets_on", [(False, True), (True, False)],
                         ids=["picows-off", "websockets-off"])
async def test_websockets_server_without_agreement(net, picows_on, websockets_on):
    async with websockets_server(net, compression="deflate" if websockets_on else None) \
            as peer, connect(net, peer.url, enable_compression=picows_on) as (transport, client):
        assert transport.extensions is None
        transport.send(WSMsgType.BINARY, BLOCK)
        assert (await client.next_frame()).payload == BLOCK
        assert peer.connections[0].protocol.extensions == []
