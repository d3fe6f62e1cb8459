"""Compression control (WSCompression): levels, memory levels, windows,
no context takeover, min_size, per-message opt-out, both compressor
backends, and broadcast's shared compressed frame. Both loops, TCP and TLS;
what goes on the wire is checked with raw peers and zlib, and the websockets
package is the independent peer."""
from __future__ import annotations

import asyncio
import random
import zlib

import pytest

from picows import WSCompression, WSHandshakeError, WSMsgType, broadcast

from tests.integration.test_compression import (TAIL, answer_with, deflate_of, masked_frame,
    raw_client, read_frame_rsv, websockets_client, websockets_server)
from tests.support import (connect, head_headers, raw_server, read_frame, serve,
    switching_response, text_payload, wait_for)

try:
    import isal  # noqa: F401
    HAVE_ISAL = True
except ImportError:
    HAVE_ISAL = False

BACKENDS = ["zlib", pytest.param("isal", marks=pytest.mark.skipif(
    not HAVE_ISAL, reason="the isal package is not installed"))]

PMD = "permessage-deflate"


def quotes(n: int, seed: int = 0) -> bytes:
    """JSON-like market data: repetitive keys, fresh numbers."""
    rnd = random.Random(seed)
    return b",".join(b'{"s":"BTCUSDT","b":%.2f,"a":%.2f,"q":%d}'
                     % (rnd.uniform(1, 9e4), rnd.uniform(1, 9e4), rnd.randrange(10 ** 6))
                     for _ in range(n))


MESSAGES = [b"", b"x", quotes(3), quotes(60), quotes(60, seed=1), random.Random(3).randbytes(5000),
            quotes(3000)]

SETTINGS = {
    "level-0": dict(level=0),
    "level-9": dict(level=9),
    "zlib-default-level": dict(level=-1),
    "mem-level-1": dict(mem_level=1),
    "windows-9": dict(client_max_window_bits=9, server_max_window_bits=9),
    "windows-12": dict(client_max_window_bits=12, server_max_window_bits=12),
    "no-context-takeover": dict(client_no_context_takeover=True,
                                server_no_context_takeover=True),
    "min-size-100": dict(min_size=100),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("settings", list(SETTINGS), ids=list(SETTINGS))
async def test_echo_with_settings(net, backend, settings):
    """picows on both ends, the same settings: every message arrives whole,
    in both directions, over many messages (context takeover or not)."""
    compression = WSCompression(backend=backend, **SETTINGS[settings])
    async with serve(net, enable_compression=compression) as server, \
            connect(net, server.url(), enable_compression=compression) as (transport, client):
        server_side = (await server.next_connected())[1]
        assert transport.extensions == server_side.extensions
        for i, msg in enumerate(MESSAGES * 2):
            msg_type = WSMsgType.TEXT if msg.isascii() and i % 2 else WSMsgType.BINARY
            transport.send(msg_type, msg)
            frame = await client.next_frame()
            assert (frame.msg_type, frame.payload) == (msg_type, msg)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_server_settings_on_the_wire(net, backend):
    """A server asked for nothing still keeps its own settings, and says so
    in the 101: no context takeover and a 9-bit window, so every message
    inflates alone with a fresh 9-bit inflater."""
    compression = WSCompression(server_no_context_takeover=True, server_max_window_bits=9,
                                level=9, backend=backend)
    block = quotes(200)
    async with serve(net, enable_compression=compression) as server, \
            raw_client(net, server.port, PMD.encode()) as (reader, writer, headers):
        agreed = [p.strip() for p in headers["sec-websocket-extensions"].split(";")]
        assert sorted(agreed) == sorted([PMD, "server_no_context_takeover",
                                         "server_max_window_bits=9"])
        for _ in range(3):
            writer.write(masked_frame(0x1, block))
            fin, rsv, opcode, payload = await read_frame_rsv(reader)
            assert (fin, rsv, opcode) == (True, 4, 0x1)
            assert len(payload) < len(block) // 2
            assert zlib.decompressobj(-9).decompress(payload + TAIL) == block


async def test_client_window_is_enforced(net):
    """A server that asked for client_max_window_bits=9 inflates with that
    window (512 bytes of memory): a message within it is fine; one that
    refers further back into an earlier message is invalid (1007)."""
    compression = WSCompression(client_max_window_bits=9)
    unique = random.Random(5).randbytes(2000)
    echo = zlib.decompressobj(-15)
    async with serve(net, enable_compression=compression) as server, \
            raw_client(net, server.port, f"{PMD}; client_max_window_bits".encode()) \
            as (reader, writer, headers):
        assert headers["sec-websocket-extensions"] == f"{PMD}; client_max_window_bits=9"
        for wbits in (9, 15):
            compressor = zlib.compressobj(wbits=-wbits)
            for _ in range(2):
                data = compressor.compress(unique) + compressor.flush(zlib.Z_SYNC_FLUSH)
                writer.write(masked_frame(0x2, data[:-4], rsv1=True))
                fin, rsv, opcode, payload = await read_frame_rsv(reader)
                if opcode == 0x8:
                    break
                assert echo.decompress(payload + TAIL) == unique
    # The second message of the 15-bit compressor refers 2000 bytes back.
    assert (wbits, opcode, int.from_bytes(payload[:2], "big")) == (15, 0x8, 1007)


async def test_min_size_on_the_wire(net):
    """Shorter than min_size: sent plain (RSV1 clear); from min_size on:
    compressed."""
    compression = WSCompression(min_size=100)
    async with serve(net, enable_compression=compression) as server, \
            raw_client(net, server.port, PMD.encode()) as (reader, writer, headers):
        inflater = zlib.decompressobj(-15)
        for size, rsv in [(0, 0), (99, 0), (100, 4), (5000, 4)]:
            msg = text_payload(size)
            writer.write(masked_frame(0x1, msg))
            fin, got_rsv, opcode, payload = await read_frame_rsv(reader)
            assert (fin, got_rsv, opcode) == (True, rsv, 0x1), size
            inflated = inflater.decompress(payload + TAIL) if rsv else payload
            assert inflated == msg


async def test_compress_false_server_side(net):
    """send(compress=False), send_reuse_external_bytearray(compress=False)
    and broadcast(compress=False) go out plain; compress=True (the default)
    compressed."""
    async with serve(net, enable_compression=True) as server, \
            raw_client(net, server.port, PMD.encode()) as (reader, writer, headers):
        ws = (await server.next_connected())[1]
        msg = quotes(50)
        ws.send(WSMsgType.TEXT, msg, compress=False)
        assert await read_frame_rsv(reader) == (True, 0, 0x1, msg)
        buf = bytearray(20) + msg
        ws.send_reuse_external_bytearray(WSMsgType.BINARY, buf, 20, compress=False)
        assert await read_frame_rsv(reader) == (True, 0, 0x2, msg)
        assert broadcast([ws], WSMsgType.TEXT, msg, compress=False) == []
        assert await read_frame_rsv(reader) == (True, 0, 0x1, msg)
        ws.send(WSMsgType.TEXT, msg)
        fin, rsv, opcode, payload = await read_frame_rsv(reader)
        assert (fin, rsv, opcode) == (True, 4, 0x1)  # the first compressed message
        assert zlib.decompressobj(-15).decompress(payload + TAIL) == msg


async def test_compress_false_client_side(net):
    """The client's frames: compress=False plain, the default compressed,
    and client_no_context_takeover keeps each message independent."""
    got: asyncio.Queue = asyncio.Queue()

    async def on_connection(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        headers = head_headers(head)[1]
        got.put_nowait(headers.get("sec-websocket-extensions"))
        writer.write(switching_response(headers["sec-websocket-key"], extra=(
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n")))
        while True:
            (b0,) = await reader.readexactly(1)
            fin, opcode, payload = await read_frame(reader, masked=True, first_byte=b0)
            rsv = (b0 >> 4) & 7
            if rsv:
                payload = zlib.decompressobj(-10).decompress(payload + TAIL)
            got.put_nowait((rsv, opcode, payload))

    compression = WSCompression(client_no_context_takeover=True)
    msg = quotes(40)
    async with raw_server(net, on_connection) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                    enable_compression=compression) as (transport, client):
        offer = await wait_for(got.get())
        assert offer == ("permessage-deflate; client_max_window_bits; "
                         "client_no_context_takeover")
        transport.send(WSMsgType.TEXT, msg, compress=False)
        assert await wait_for(got.get()) == (0, 0x1, msg)
        for _ in range(3):
            transport.send(WSMsgType.BINARY, msg)
            assert await wait_for(got.get()) == (4, 0x2, msg)


async def test_client_fails_when_server_ignores_request(net):
    """The client asked for server_no_context_takeover; a server that
    answers without it fails the handshake (RFC 7692 7.1.1.1)."""
    async with await answer_with(net, b"permessage-deflate") as port:
        with pytest.raises(WSHandshakeError, match="server_no_context_takeover"):
            async with connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                               enable_compression=WSCompression(
                                   server_no_context_takeover=True)):
                pass


# -- the websockets package on the other end -------------------------------------

async def test_client_settings_with_websockets_server(net):
    compression = WSCompression(client_max_window_bits=11, server_max_window_bits=10,
                                client_no_context_takeover=True,
                                server_no_context_takeover=True, level=6)
    async with websockets_server(net) as peer, \
            connect(net, peer.url, enable_compression=compression) as (transport, client):
        for msg in MESSAGES:
            transport.send(WSMsgType.BINARY, msg)
            assert (await client.next_frame()).payload == msg
        ext = deflate_of(peer.connections[0])
        assert ext.local_no_context_takeover and ext.remote_no_context_takeover
        assert (ext.local_max_window_bits, ext.remote_max_window_bits) == (10, 11)


async def test_server_settings_with_websockets_client(net):
    compression = WSCompression(server_no_context_takeover=True, server_max_window_bits=10,
                                client_max_window_bits=12, min_size=20)
    async with serve(net, enable_compression=compression) as server, \
            websockets_client(net, server.url()) as ws:
        ext = deflate_of(ws)
        assert ext.remote_no_context_takeover and ext.remote_max_window_bits == 10
        assert ext.local_max_window_bits == 12
        for msg in MESSAGES:
            await ws.send(msg)
            assert await wait_for(ws.recv()) == msg


# -- broadcast: one compressed frame for every connection without context takeover

async def test_broadcast_shares_one_compressed_frame(net):
    """Server with server_no_context_takeover: raw clients receive the very
    same compressed bytes, each inflating alone; picows and websockets
    clients, a client without compression and one with min_size all get
    every message."""
    compression = WSCompression(server_no_context_takeover=True)
    messages = [quotes(30, seed=i) for i in range(4)] + [b"tiny"]
    async with serve(net, enable_compression=compression) as server:
        async with raw_client(net, server.port, PMD.encode()) as (r1, w1, h1), \
                raw_client(net, server.port, PMD.encode()) as (r2, w2, h2), \
                connect(net, server.url(), enable_compression=True) as (_, picows_client), \
                connect(net, server.url()) as (_, plain_client), \
                websockets_client(net, server.url()) as ws_client:
            transports = [(await server.next_connected())[1] for _ in range(5)]
            for msg in messages:
                assert broadcast(transports, WSMsgType.TEXT, msg) == []
                f1 = await read_frame_rsv(r1)
                f2 = await read_frame_rsv(r2)
                assert f1 == f2
                assert f1[:3] == (True, 4, 0x1)
                assert zlib.decompressobj(-15).decompress(f1[3] + TAIL) == msg
                assert (await picows_client.next_frame()).payload == msg
                assert (await plain_client.next_frame()).payload == msg
                assert await wait_for(ws_client.recv()) == msg.decode()


async def test_broadcast_mixes_context_takeover_and_not(net):
    """One server, clients that asked for server_no_context_takeover and
    clients that did not: the shared frame goes only to the former, the
    others keep their own compressor (and its window) across broadcasts."""
    async with serve(net, enable_compression=True) as server:
        async with raw_client(net, server.port, f"{PMD}; server_no_context_takeover".encode()) \
                as (r_nct, _w1, _h1), \
                raw_client(net, server.port, PMD.encode()) as (r_ct, _w2, _h2):
            transports = [(await server.next_connected())[1] for _ in range(2)]
            inflater = zlib.decompressobj(-15)
            msg = quotes(40)
            for _ in range(3):
                broadcast(transports, WSMsgType.BINARY, msg)
                fin, rsv, opcode, payload = await read_frame_rsv(r_nct)
                assert zlib.decompressobj(-15).decompress(payload + TAIL) == msg
                fin, rsv, opcode, payload_ct = await read_frame_rsv(r_ct)
                assert inflater.decompress(payload_ct + TAIL) == msg
            # With context takeover the repeats refer back: smaller.
            assert len(payload_ct) < len(payload)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_broadcast_distinct_settings(net, backend):
    """Connections of two servers with different windows: each gets a frame
    its window allows."""
    msg = quotes(300)
    small = WSCompression(server_no_context_takeover=True, server_max_window_bits=9,
                          backend=backend)
    large = WSCompression(server_no_context_takeover=True, backend=backend)
    async with serve(net, enable_compression=small) as s1, \
            serve(net, enable_compression=large) as s2, \
            raw_client(net, s1.port, PMD.encode()) as (r1, _w1, _h1), \
            raw_client(net, s2.port, PMD.encode()) as (r2, _w2, _h2):
        transports = [(await s1.next_connected())[1],
                      (await s2.next_connected())[1]]
        for _ in range(2):
            broadcast(transports, WSMsgType.TEXT, msg)
            p1 = (await read_frame_rsv(r1))[3]
            p2 = (await read_frame_rsv(r2))[3]
            assert zlib.decompressobj(-9).decompress(p1 + TAIL) == msg
            assert zlib.decompressobj(-15).decompress(p2 + TAIL) == msg
