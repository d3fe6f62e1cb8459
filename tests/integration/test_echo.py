"""picows client <-> picows echo server over loopback: sizes, types, fragments,
ping/pong and the close handshake, on asyncio and uvloop, TCP and TLS."""
from __future__ import annotations

import asyncio

import pytest

from picows import WSCloseCode, WSMsgType

from tests.support import connect, pattern, raw_accept, raw_server, read_frame, serve, wait_for


# Payload lengths around the 7-bit / 16-bit / 64-bit length encodings
# (RFC 6455 section 5.2) and a couple of larger reads.
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]
BIG = 16 * 1024 * 1024
BIG_LIMIT = BIG + 1024


@pytest.mark.parametrize("size", SIZES)
async def test_echo_binary_sizes(net, size):
    payload = pattern(size)
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        transport.send(WSMsgType.BINARY, payload)
        frame = await client.next_frame()
    assert frame.msg_type == WSMsgType.BINARY
    assert frame.fin
    assert not frame.rsv1
    assert frame.payload_size == size
    assert frame.payload == payload


@pytest.mark.parametrize("text", ["", "a", "h\u00e9llo w\u00f6rld \u20ac \U0001F600",
                                  "\u20ac" * 42, "\U0001F600" * 16384 + "x"],
                         ids=["empty", "ascii", "mixed", "3-byte-x42", "4-byte-x16384"])
async def test_echo_text(net, text):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        transport.send(WSMsgType.TEXT, text.encode())
        frame = await client.next_frame()
    assert frame.msg_type == WSMsgType.TEXT
    assert frame.fin
    assert frame.payload.decode("utf-8") == text


async def _echo_big(net):
    payload = pattern(BIG)
    async with serve(net, max_frame_size=BIG_LIMIT) as server, \
            connect(net, server.url(), max_frame_size=BIG_LIMIT) as (transport, client):
        transport.send(WSMsgType.BINARY, payload)
        frame = await client.next_frame(timeout=60)
    assert frame.msg_type == WSMsgType.BINARY
    assert frame.payload_size == BIG
    assert frame.payload == payload


# 16 MiB is slow-ish: one loop per transport, not the whole matrix.
@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_echo_16mib_tcp(tcp):
    await _echo_big(tcp)


@pytest.mark.asyncio(loop_factories=["uvloop"])
async def test_echo_16mib_tls(tls):
    await _echo_big(tls)


async def test_echo_fragmented(net):
    parts = [(WSMsgType.TEXT, "Hel", False), (WSMsgType.CONTINUATION, "lo, ", False),
             (WSMsgType.CONTINUATION, "", False), (WSMsgType.CONTINUATION, "w\u00f6rld", True)]
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        for msg_type, text, fin in parts:
            transport.send(msg_type, text.encode(), fin=fin)
        got = [await client.next_frame() for _ in parts]
    assert [(f.msg_type, f.payload.decode(), f.fin) for f in got] == parts


async def test_echo_many_frames_in_order(net):
    """A burst of small frames arrives whole and in order (many per read)."""
    messages = [pattern(i % 300) + str(i).encode() for i in range(2000)]
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        for message in messages:
            transport.send(WSMsgType.BINARY, message)
        got = [(await client.next_frame()).payload for _ in messages]
    assert got == messages


async def test_echo_memoryview_and_bytearray(net):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        transport.send(WSMsgType.BINARY, bytearray(b"from a bytearray"))
        transport.send(WSMsgType.BINARY, memoryview(b"xxfrom a memoryviewxx")[2:-2])
        first = await client.next_frame()
        second = await client.next_frame()
    assert first.payload == b"from a bytearray"
    assert second.payload == b"from a memoryview"


async def test_send_rsv1_sets_the_bit(net):
    """send(..., rsv1=True) sets RSV1 on the wire (for extensions the user runs)."""
    first_bytes = asyncio.Queue()

    async def read_two_frames(reader, writer):
        await raw_accept(reader, writer)
        for _ in range(2):
            b0 = (await reader.readexactly(1))[0]
            first_bytes.put_nowait(b0)
            await read_frame(reader, masked=True, first_byte=b0)
        await reader.read()

    async with raw_server(net, read_two_frames) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/") as (transport, _):
        transport.send(WSMsgType.BINARY, b"compressed?", rsv1=True)
        transport.send(WSMsgType.BINARY, b"plain")
        first = await wait_for(first_bytes.get())
        second = await wait_for(first_bytes.get())
    assert first == 0x80 | 0x40 | WSMsgType.BINARY
    assert second == 0x80 | WSMsgType.BINARY


async def test_rsv1_without_extension_fails_with_1002(net):
    """No extension was negotiated, so a frame with RSV1 set fails the
    connection (RFC 6455 5.2) and WSFrame.rsv1 never reads True."""
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        transport.send(WSMsgType.BINARY, b"compressed?", rsv1=True)
        close = await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
        listener = await server.next_listener()
        await wait_for(listener.disconnected)
    assert close.close_code == WSCloseCode.PROTOCOL_ERROR
    assert [f for f in listener.drain() if f.msg_type == WSMsgType.BINARY] == []


@pytest.mark.parametrize("payload", [None, b"", b"ping payload", b"p" * 125],
                         ids=["none", "empty", "short", "125"])
async def test_ping_gets_auto_pong(net, payload):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        transport.send_ping(payload)
        pong = await client.next_of(WSMsgType.PONG)
    assert pong.payload == (payload or b"")


@pytest.mark.parametrize("initiator, code, reason", [
    ("client", WSCloseCode.GOING_AWAY, b"bye"),
    ("server", WSCloseCode.POLICY_VIOLATION, b"go away"),
])
async def test_close_handshake(net, initiator, code, reason):
    """One side sends CLOSE; the other sees it, answers it, and both sides end."""
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener, server_transport = await server.next_connected()
        sides = [(transport, client), (server_transport, server_listener)]
        if initiator == "server":
            sides.reverse()
        (closer, closer_listener), (_, peer_listener) = sides
        closer.send_close(code, reason)
        received = await peer_listener.next_of(WSMsgType.CLOSE)
        reply = await closer_listener.next_of(WSMsgType.CLOSE)
        await wait_for(client.disconnected)
        await wait_for(server_listener.disconnected)
        await wait_for(transport.wait_disconnected())
        await wait_for(server_transport.wait_disconnected())
    assert (received.close_code, received.close_message) == (code, reason)
    assert reply.msg_type == WSMsgType.CLOSE
    assert (client.disconnected_calls, server_listener.disconnected_calls) == (1, 1)


@pytest.mark.parametrize("side", ["server", "client"])
async def test_max_frame_size(net, side):
    """A frame declaring more than max_frame_size: CLOSE 1009, then disconnect.
    A frame of exactly max_frame_size still goes through."""
    limit = 1000
    server_kwargs = {"max_frame_size": limit} if side == "server" else {}
    client_kwargs = {"max_frame_size": limit} if side == "client" else {}
    async with serve(net, **server_kwargs) as server, \
            connect(net, server.url(), **client_kwargs) as (transport, client):
        listener = await server.next_listener()
        transport.send(WSMsgType.BINARY, pattern(limit))
        assert (await client.next_frame()).payload_size == limit
        # Too big for the server to read, or for the client to read the echo.
        transport.send(WSMsgType.BINARY, pattern(limit + 1))
        await wait_for(transport.wait_disconnected())
        await wait_for(listener.disconnected)
    client_frames, server_frames = client.drain(), listener.drain()
    # The side that refused the frame sent the CLOSE; the other one saw it.
    close_seen = server_frames if side == "client" else client_frames
    assert [f.close_code for f in close_seen if f.msg_type == WSMsgType.CLOSE] == [
        WSCloseCode.MESSAGE_TOO_BIG]
    assert [f for f in client_frames if f.msg_type == WSMsgType.BINARY] == []
