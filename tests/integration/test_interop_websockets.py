"""Interoperability with an independent implementation, the ``websockets``
package, used only through its public API: picows client against a
websockets server, and websockets client against a picows server."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed

from picows import WSCloseCode, WSMsgType

from tests.support import EchoListener, RecordingListener, connect, pattern, serve, wait_for


SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


class Peer:
    """A websockets server: the handler's connections and their close codes."""

    def __init__(self) -> None:
        self.received: asyncio.Queue = asyncio.Queue()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.url = ""


@contextlib.asynccontextmanager
async def websockets_server(net, behaviour=None, **kwargs) -> AsyncIterator[Peer]:
    """Serve one behaviour(ws, peer) per connection (default: echo every message).

    When the connection ends, peer.closed gets (close_code, close_reason) as the
    websockets side saw them.
    """
    peer = Peer()

    async def echo(ws, peer):
        async for message in ws:
            peer.received.put_nowait(message)
            await ws.send(message)

    async def handler(ws):
        try:
            await (behaviour or echo)(ws, peer)
            await ws.wait_closed()
        finally:
            if not peer.closed.done():
                peer.closed.set_result((ws.close_code, ws.close_reason))

    ssl_kwargs = {"ssl": net.server_ssl} if net.tls else {}
    async with websockets_serve(handler, "127.0.0.1", 0, compression=None, max_size=None,
                                ping_interval=None, **ssl_kwargs, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        peer.url = f"{net.scheme}://127.0.0.1:{port}/"
        yield peer


def websockets_client(net, url, **kwargs):
    ssl_kwargs = {"ssl": net.client_ssl} if net.tls else {}
    return websockets_connect(url, compression=None, max_size=None, proxy=None,
                              ping_interval=None, open_timeout=10, close_timeout=5,
                              **ssl_kwargs, **kwargs)


async def collect_message(listener) -> list:
    """Frames of one message: up to and including the frame with fin set."""
    frames = [await listener.next_frame()]
    while not frames[-1].fin:
        frames.append(await listener.next_frame())
    return frames


# --------------------------------------------------------------------------
# picows client, websockets server


@pytest.mark.parametrize("size", SIZES)
async def test_client_binary_echo(net, size):
    payload = pattern(size)
    async with websockets_server(net) as peer, connect(net, peer.url) as (transport, client):
        transport.send(WSMsgType.BINARY, payload)
        frame = await client.next_frame()
        assert await wait_for(peer.received.get()) == payload
    assert (frame.msg_type, frame.fin, frame.payload) == (WSMsgType.BINARY, True, payload)


@pytest.mark.parametrize("text", ["", "hello", "h\u00e9llo \u20ac \U0001F600" * 1000],
                         ids=["empty", "ascii", "mixed-x1000"])
async def test_client_text_echo(net, text):
    async with websockets_server(net) as peer, connect(net, peer.url) as (transport, client):
        transport.send(WSMsgType.TEXT, text.encode())
        frame = await client.next_frame()
        assert await wait_for(peer.received.get()) == text
    assert (frame.msg_type, frame.fin) == (WSMsgType.TEXT, True)
    assert frame.payload.decode() == text


async def test_client_sends_fragmented(net):
    async with websockets_server(net) as peer, connect(net, peer.url) as (transport, client):
        transport.send(WSMsgType.TEXT, b"Hel", fin=False)
        transport.send(WSMsgType.CONTINUATION, b"lo, ", fin=False)
        transport.send(WSMsgType.CONTINUATION, "w\u00f6rld".encode(), fin=True)
        transport.send(WSMsgType.BINARY, b"\x00\x01", fin=False)
        transport.send(WSMsgType.CONTINUATION, b"\x02", fin=True)
        assert await wait_for(peer.received.get()) == "Hello, w\u00f6rld"
        assert await wait_for(peer.received.get()) == b"\x00\x01\x02"
        echoed = [await client.next_frame(), await client.next_frame()]
    assert [(f.msg_type, f.fin, f.payload) for f in echoed] == [
        (WSMsgType.TEXT, True, "Hello, w\u00f6rld".encode()),
        (WSMsgType.BINARY, True, b"\x00\x01\x02")]


async def test_client_receives_fragmented(net):
    async def send_fragments(ws, peer):
        await ws.send(["frag1-", "fr\u00e4g2-", "frag3"])
        await ws.send([b"\x00", b"\x01\x02"])

    async with websockets_server(net, send_fragments) as peer, \
            connect(net, peer.url) as (_, client):
        text = await collect_message(client)
        binary = await collect_message(client)
    for frames, msg_type in ((text, WSMsgType.TEXT), (binary, WSMsgType.BINARY)):
        assert len(frames) >= 2
        assert frames[0].msg_type == msg_type
        assert all(f.msg_type == WSMsgType.CONTINUATION for f in frames[1:])
        assert [f.fin for f in frames] == [False] * (len(frames) - 1) + [True]
    assert b"".join(f.payload for f in text).decode() == "frag1-fr\u00e4g2-frag3"
    assert b"".join(f.payload for f in binary) == b"\x00\x01\x02"


async def test_client_ping_gets_pong(net):
    async with websockets_server(net) as peer, connect(net, peer.url) as (transport, client):
        transport.send_ping(b"are you there")
        pong = await client.next_of(WSMsgType.PONG)
    assert pong.payload == b"are you there"


async def test_client_auto_pongs(net):
    async def ping(ws, peer):
        pong_waiter = await ws.ping(b"ping from websockets")
        await wait_for(pong_waiter)
        await ws.send("pong received")

    async with websockets_server(net, ping) as peer, connect(net, peer.url) as (_, client):
        frame = await client.next_frame()
    assert frame.payload == b"pong received"


async def test_client_without_auto_pong_answers_itself(net):
    pong_waiters = []

    async def ping(ws, peer):
        pong_waiters.append(await ws.ping(b"manual"))
        async for message in ws:
            await ws.send(message)

    async with websockets_server(net, ping) as peer, \
            connect(net, peer.url, enable_auto_pong=False) as (transport, client):
        frame = await client.next_of(WSMsgType.PING)
        assert frame.payload == b"manual"
        # A round trip after the PING: an automatic PONG would have arrived first.
        transport.send(WSMsgType.TEXT, b"sync")
        assert (await client.next_frame()).payload == b"sync"
        assert not pong_waiters[0].done(), "a PONG was sent although enable_auto_pong=False"
        transport.send_pong(frame.payload)
        await wait_for(pong_waiters[0])


@pytest.mark.parametrize("code, reason", [
    (WSCloseCode.OK, b""), (WSCloseCode.GOING_AWAY, b"bye"),
    (WSCloseCode.POLICY_VIOLATION, "n\u00f6pe".encode())])
async def test_client_close_code_reaches_websockets(net, code, reason):
    async with websockets_server(net) as peer, connect(net, peer.url) as (transport, client):
        transport.send_close(code, reason)
        reply = await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
        assert await wait_for(peer.closed) == (code, reason.decode())
    assert reply.close_code == code  # websockets echoes the code


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "going"), (1008, "policy"),
                                          (1011, "oops")])
async def test_websockets_server_close_code_reaches_client(net, code, reason):
    async def close(ws, peer):
        await ws.close(code, reason)

    async with websockets_server(net, close) as peer, \
            connect(net, peer.url) as (transport, client):
        frame = await client.next_of(WSMsgType.CLOSE)
        await wait_for(transport.wait_disconnected())
        # picows answered the CLOSE (enable_auto_close): websockets received a
        # CLOSE frame (else it reports 1006). RFC 6455 5.5.1 lets the answer
        # carry another code and no reason, so only its presence is checked.
        received_code, _ = await wait_for(peer.closed)
        assert received_code != WSCloseCode.ABNORMAL_CLOSURE
    assert frame.close_code == code
    assert frame.close_message in ((reason.encode(),) if reason else (None, b""))


async def test_client_exception_closes_with_1011(net):
    class Raising(RecordingListener):
        def on_ws_frame(self, transport, frame):
            raise RuntimeError("listener failure")

    async with websockets_server(net) as peer, \
            connect(net, peer.url, Raising) as (transport, _):
        transport.send(WSMsgType.TEXT, b"x")
        with pytest.raises(RuntimeError, match="listener failure"):
            await wait_for(transport.wait_disconnected())
        code, _ = await wait_for(peer.closed)
    assert code == WSCloseCode.INTERNAL_ERROR


async def test_client_max_frame_size(net):
    async def send_big(ws, peer):
        await ws.send(b"x" * 1000)
        await ws.send(b"x" * 1001)

    async with websockets_server(net, send_big) as peer, \
            connect(net, peer.url, max_frame_size=1000) as (transport, client):
        first = await client.next_frame()
        await wait_for(transport.wait_disconnected())
        code, _ = await wait_for(peer.closed)
    assert first.payload_size == 1000
    assert code == WSCloseCode.MESSAGE_TOO_BIG
    assert [f for f in client.drain() if f.msg_type == WSMsgType.BINARY] == []


@pytest.mark.parametrize("validate", [True, False])
async def test_client_utf8_validation(net, validate):
    async def send_invalid(ws, peer):
        await ws.send(b"ok \xff\xfe", text=True)
        if not validate:
            await ws.send("after")

    async with websockets_server(net, send_invalid) as peer, \
            connect(net, peer.url, enable_utf8_validation=validate) as (transport, client):
        if validate:
            await wait_for(transport.wait_disconnected())
            code, _ = await wait_for(peer.closed)
            assert code == WSCloseCode.INVALID_TEXT
            assert [f for f in client.drain() if f.msg_type == WSMsgType.TEXT] == []
        else:
            frame = await client.next_frame()
            assert (frame.msg_type, frame.payload) == (WSMsgType.TEXT, b"ok \xff\xfe")
            assert (await client.next_frame()).payload == b"after"


# --------------------------------------------------------------------------
# websockets client, picows server


@pytest.mark.parametrize("message", [b"", b"binary \x00\xff", pattern(65536),
                                     pattern(1 << 20), "", "t\u00e9xt \U0001F600",
                                     "\u20ac" * 30000],
                         ids=["bin-empty", "bin-short", "bin-64k", "bin-1m", "text-empty",
                              "text-short", "text-90k"])
async def test_server_echo(net, message):
    async with serve(net) as server, websockets_client(net, server.url()) as ws:
        await ws.send(message)
        assert await wait_for(ws.recv()) == message


async def test_server_fragmented_both_ways(net):
    """websockets sends fragments; picows echoes frame by frame; websockets
    reassembles them."""
    async with serve(net) as server, websockets_client(net, server.url()) as ws:
        await ws.send(["Hel", "lo, ", "", "w\u00f6rld"])
        await ws.send([b"\x00", b"\x01", b"\x02"])
        assert await wait_for(ws.recv()) == "Hello, w\u00f6rld"
        assert await wait_for(ws.recv()) == b"\x00\x01\x02"


async def test_server_auto_pong(net):
    async with serve(net) as server, websockets_client(net, server.url()) as ws:
        pong_waiter = await ws.ping(b"12345")
        await wait_for(pong_waiter)


async def test_server_ping_gets_pong(net):
    async with serve(net) as server, websockets_client(net, server.url()) as ws:
        listener, transport = await server.next_connected()
        transport.send_ping(b"from picows")
        await ws.send("after ping")  # keeps websockets reading
        assert await wait_for(ws.recv()) == "after ping"
        pong = await listener.next_of(WSMsgType.PONG)
    assert pong.payload == b"from picows"


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "bye"), (1008, "n\u00f6pe")],
                         ids=["1000", "1001", "1008"])
async def test_websockets_client_close(net, code, reason):
    async with serve(net) as server:
        async with websockets_client(net, server.url()) as ws:
            listener, _ = await server.next_connected()
            await wait_for(ws.close(code, reason))
            # The server answered the CLOSE: the close handshake completed.
            assert ws.protocol.close_rcvd is not None
        frame = await listener.next_of(WSMsgType.CLOSE)
        await wait_for(listener.disconnected)
    assert frame.close_code == code
    assert frame.close_message in ((reason.encode(),) if reason else (None, b""))
    assert listener.disconnected_calls == 1


@pytest.mark.parametrize("code, reason", [(WSCloseCode.OK, b""),
                                          (WSCloseCode.POLICY_VIOLATION, b"policy"),
                                          (WSCloseCode.TRY_AGAIN_LATER, b"later")])
async def test_server_close_code_reaches_websockets(net, code, reason):
    async with serve(net) as server, websockets_client(net, server.url()) as ws:
        listener, transport = await server.next_connected()
        transport.send_close(code, reason)
        with pytest.raises(ConnectionClosed) as info:
            await wait_for(ws.recv())
        await wait_for(transport.wait_disconnected())
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason.decode())


async def test_server_max_frame_size(net):
    async with serve(net, max_frame_size=1000) as server, \
            websockets_client(net, server.url()) as ws:
        await ws.send(b"x" * 1000)
        assert await wait_for(ws.recv()) == b"x" * 1000
        await ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            await wait_for(ws.recv())
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == WSCloseCode.MESSAGE_TOO_BIG


async def test_server_rejects_invalid_utf8(net):
    async with serve(net) as server, websockets_client(net, server.url()) as ws:
        await ws.send(b"\xc3\x28", text=True)
        with pytest.raises(ConnectionClosed) as info:
            await wait_for(ws.recv())
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == WSCloseCode.INVALID_TEXT


async def test_server_listener_exception_closes_with_1011(net):
    class Raising(EchoListener):
        def on_ws_frame(self, transport, frame):
            raise RuntimeError("server listener failure")

    async with serve(net, lambda request: Raising()) as server, \
            websockets_client(net, server.url()) as ws:
        await ws.send("x")
        with pytest.raises(ConnectionClosed) as info:
            await wait_for(ws.recv())
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == WSCloseCode.INTERNAL_ERROR
