"""The close handshake against a raw peer: close_timeout when the peer never
finishes it (or never closes after a failure), and enable_auto_close=False
leaving the answer to the listener.

Timing bounds: at least 80 % of close_timeout, at most TIMEOUT / 2."""
from __future__ import annotations

import asyncio
import struct
import time

from picows import WSCloseCode, WSMsgType

from tests.support import (TIMEOUT, RecordingListener, check_elapsed, client_frame, close_payload,
    close_writer, connect, raw_accept, raw_handshake, raw_server, read_frame, read_until_eof,
    serve, server_frame, wait_for)


CLOSE_TIMEOUT = 0.5


class ManualCloser(RecordingListener):
    """Answers a CLOSE itself, with a code and reason of its own."""

    def on_ws_frame(self, transport, frame) -> None:
        super().on_ws_frame(transport, frame)
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(WSCloseCode.GOING_AWAY, b"manual")
            if not transport.is_client:
                transport.disconnect()


async def test_client_close_timeout_peer_never_answers(net):
    """The client sends CLOSE; the server neither answers nor closes TCP."""
    got_close = asyncio.Event()

    async def mute(reader, writer):
        await raw_accept(reader, writer)
        _, opcode, _ = await read_frame(reader, masked=True)
        if opcode == WSMsgType.CLOSE:
            got_close.set()
        await reader.read()

    async with raw_server(net, mute) as port, connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                       close_timeout=CLOSE_TIMEOUT) as (transport, client):
        started = time.monotonic()
        transport.send_close(WSCloseCode.OK)
        await wait_for(transport.wait_disconnected())
        check_elapsed(started, CLOSE_TIMEOUT)
    assert got_close.is_set()
    assert client.disconnected_calls == 1


async def test_server_close_timeout_peer_never_answers(net):
    """The server sends CLOSE; the client neither answers nor closes TCP."""
    async with serve(net, close_timeout=CLOSE_TIMEOUT) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            listener, transport = await server.next_connected()
            started = time.monotonic()
            transport.send_close(WSCloseCode.GOING_AWAY)
            assert (await wait_for(read_frame(reader)))[1] == WSMsgType.CLOSE
            await wait_for(listener.disconnected)
            check_elapsed(started, CLOSE_TIMEOUT)
            assert await wait_for(read_until_eof(reader)) == b""
        finally:
            await close_writer(writer)
    assert listener.disconnected_calls == 1


async def test_client_close_timeout_server_keeps_tcp_open(net):
    """The server answers CLOSE but never closes TCP, as RFC 6455 7.1.1 says it
    should: the client gives up after close_timeout."""
    async def answer_but_stay(reader, writer):
        await raw_accept(reader, writer)
        _, opcode, payload = await read_frame(reader, masked=True)
        assert opcode == WSMsgType.CLOSE
        writer.write(server_frame(WSMsgType.CLOSE, payload))
        await reader.read()

    async with raw_server(net, answer_but_stay) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                    close_timeout=CLOSE_TIMEOUT) as (transport, client):
        started = time.monotonic()
        transport.send_close(WSCloseCode.OK)
        assert (await client.next_of(WSMsgType.CLOSE)).close_code == WSCloseCode.OK
        await wait_for(transport.wait_disconnected())
        check_elapsed(started, CLOSE_TIMEOUT)
    assert client.disconnected_calls == 1


async def test_client_close_timeout_after_answering_the_server(net):
    """The server sends CLOSE, the client answers it, and the server never
    closes TCP: the client disconnects after close_timeout."""
    answered = asyncio.get_running_loop().create_future()

    async def close_but_stay(reader, writer):
        await raw_accept(reader, writer)
        writer.write(server_frame(WSMsgType.CLOSE, struct.pack("!H", 1001)))
        answered.set_result(await read_frame(reader, masked=True))
        await reader.read()

    async with raw_server(net, close_but_stay) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                    close_timeout=CLOSE_TIMEOUT) as (transport, client):
        _, opcode, payload = await wait_for(answered)
        started = time.monotonic()
        assert (opcode, payload) == (WSMsgType.CLOSE, struct.pack("!H", 1001))
        await wait_for(transport.wait_disconnected())
        check_elapsed(started, CLOSE_TIMEOUT * 0.9)
    assert client.disconnected_calls == 1


async def test_server_failing_peer_that_never_closes(net):
    """After a protocol error the server sends CLOSE 1002 and, on TCP,
    half-closes and waits for the peer's CLOSE or EOF: a peer that sends
    neither is cut off after close_timeout. TLS cannot half-close, so there
    the server closes at once."""
    async with serve(net, close_timeout=CLOSE_TIMEOUT) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            listener = await server.next_listener()
            started = time.monotonic()
            writer.write(client_frame(0x3, b"reserved opcode"))
            _, opcode, payload = await wait_for(read_frame(reader))
            assert opcode == WSMsgType.CLOSE
            assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.PROTOCOL_ERROR
            await wait_for(listener.disconnected)
            _check_failure_close(net, started)
            assert await wait_for(read_until_eof(reader)) == b""
        finally:
            await close_writer(writer)


def _check_failure_close(net, started: float) -> None:
    if net.tls:
        assert time.monotonic() - started < TIMEOUT / 2
    else:
        check_elapsed(started, CLOSE_TIMEOUT)


async def test_client_failing_peer_that_never_closes(net):
    got_close = asyncio.Event()

    async def violate_then_stay(reader, writer):
        await raw_accept(reader, writer)
        writer.write(server_frame(0x3, b"reserved opcode"))
        _, opcode, payload = await read_frame(reader, masked=True)
        assert opcode == WSMsgType.CLOSE
        assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.PROTOCOL_ERROR
        got_close.set()
        await reader.read()

    async with raw_server(net, violate_then_stay) as port:
        started = time.monotonic()
        async with connect(net, f"{net.scheme}://127.0.0.1:{port}/",
                           close_timeout=CLOSE_TIMEOUT) as (transport, client):
            await wait_for(transport.wait_disconnected())
            _check_failure_close(net, started)
    assert got_close.is_set()
    assert client.disconnected_calls == 1


async def test_server_without_auto_close(net):
    """enable_auto_close=False: the listener's own CLOSE is the answer."""
    async with serve(net, lambda request: ManualCloser(), enable_auto_close=False) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            writer.write(client_frame(WSMsgType.CLOSE, close_payload(1000, b"client")))
            fin, opcode, payload = await wait_for(read_frame(reader))
            eof = await wait_for(reader.read())
        finally:
            await close_writer(writer)
        listener = server.listeners[0]
        await wait_for(listener.disconnected)
    assert (fin, opcode) == (True, WSMsgType.CLOSE)
    assert payload == struct.pack("!H", 1001) + b"manual"
    assert eof == b""
    received = listener.drain()
    assert [(f.msg_type, f.close_code, f.close_message) for f in received] == [
        (WSMsgType.CLOSE, 1000, b"client")]


async def test_client_without_auto_close(net):
    closes = asyncio.Queue()

    async def close_first(reader, writer):
        await raw_accept(reader, writer)
        writer.write(server_frame(WSMsgType.CLOSE, close_payload(1000, b"server")))
        closes.put_nowait(await read_frame(reader, masked=True))

    async with raw_server(net, close_first) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/", ManualCloser,
                    enable_auto_close=False) as (_, client):
        fin, opcode, payload = await wait_for(closes.get())
        received = await client.next_of(WSMsgType.CLOSE)
    assert (fin, opcode) == (True, WSMsgType.CLOSE)
    assert payload == struct.pack("!H", 1001) + b"manual"
    assert (received.close_code, received.close_message) == (1000, b"server")
