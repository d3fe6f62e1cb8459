"""Keepalive: enable_auto_ping with auto_ping_idle_timeout and
auto_ping_reply_timeout, on both sides, and
WSTransport.measure_roundtrip_time.

The documented behaviour: after ``auto_ping_idle_timeout`` seconds without
incoming data, a PING; no PONG within ``auto_ping_reply_timeout`` seconds,
CLOSE 1011 "keepalive ping timeout" and disconnect. Anything received counts
as activity. Strategies and application-level pings:
test_keepalive_strategies.py.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from picows import WSError, WSMsgType

from tests.support import (TIMEOUT, RecordingListener, client_frame, close_writer, connect,
    raw_accept, raw_handshake, raw_server, read_frame, serve, server_frame, wait_for)


IDLE = 0.3
REPLY = 0.3


def _since(started: float) -> float:
    return time.monotonic() - started


async def test_server_pings_an_idle_client_and_drops_a_silent_one(net):
    async with serve(net, enable_auto_ping=True, auto_ping_idle_timeout=IDLE,
                     auto_ping_reply_timeout=REPLY) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            listener = await server.next_listener()
            started = time.monotonic()
            # Idle: a PING after IDLE seconds; the answer keeps the connection.
            assert await wait_for(read_frame(reader)) == (True, WSMsgType.PING, b"")
            assert IDLE * 0.8 <= _since(started) < TIMEOUT / 2
            writer.write(client_frame(WSMsgType.PONG))
            answered = time.monotonic()
            # Idle again: another PING; this time no PONG, so CLOSE 1011 and
            # a disconnect.
            assert await wait_for(read_frame(reader)) == (True, WSMsgType.PING, b"")
            assert IDLE * 0.8 <= _since(answered) < TIMEOUT / 2
            pinged = time.monotonic()
            assert await wait_for(read_frame(reader)) == (
                True, WSMsgType.CLOSE, (1011).to_bytes(2, "big") + b"keepalive ping timeout")
            assert await wait_for(reader.read()) == b""
            assert REPLY * 0.8 <= _since(pinged) < TIMEOUT / 2
            await wait_for(listener.disconnected)
        finally:
            await close_writer(writer)
    assert listener.disconnected_calls == 1


async def test_incoming_data_defers_the_ping(net):
    """A client sending every IDLE/3 seconds is never pinged; once it stops,
    the PING follows after IDLE seconds."""
    async with serve(net, enable_auto_ping=True, auto_ping_idle_timeout=IDLE,
                     auto_ping_reply_timeout=REPLY) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            started = time.monotonic()
            while _since(started) < 3 * IDLE:
                await asyncio.sleep(IDLE / 3)
                writer.write(client_frame(WSMsgType.BINARY, b"busy"))
                last_sent = time.monotonic()
                # The echo, never a PING.
                assert await wait_for(read_frame(reader)) == (True, WSMsgType.BINARY,
                                                                     b"busy")
            assert await wait_for(read_frame(reader)) == (True, WSMsgType.PING, b"")
            assert IDLE * 0.8 <= _since(last_sent) < TIMEOUT / 2
            writer.write(client_frame(WSMsgType.PONG))
        finally:
            await close_writer(writer)


async def test_client_keepalive_against_a_ponging_server(net):
    """A picows client pinging a picows server (auto-PONG): several rounds
    and still connected; the PINGs reach the server's listener."""
    async with serve(net) as server, connect(net, server.url(), enable_auto_ping=True,
                                             auto_ping_idle_timeout=0.1,
                                             auto_ping_reply_timeout=REPLY) as (transport,
                                                                                client):
        server_listener = await server.next_listener()
        for _ in range(3):
            ping = await server_listener.next_frame(skip=())
            assert (ping.msg_type, ping.payload) == (WSMsgType.PING, b"")
        transport.send(WSMsgType.TEXT, b"alive")
        assert (await client.next_frame()).payload == b"alive"
    assert client.disconnected_calls == 1


async def test_client_drops_a_server_that_never_pongs(net):
    pinged = asyncio.get_running_loop().create_future()
    closed = asyncio.get_running_loop().create_future()

    async def no_pong(reader, writer):
        await raw_accept(reader, writer)
        _, opcode, _ = await read_frame(reader, masked=True)
        pinged.set_result((opcode, time.monotonic()))
        closed.set_result(await read_frame(reader, masked=True))
        await reader.read()

    async with raw_server(net, no_pong) as port:
        started = time.monotonic()
        async with connect(net, f"{net.scheme}://127.0.0.1:{port}/", enable_auto_ping=True,
                           auto_ping_idle_timeout=IDLE,
                           auto_ping_reply_timeout=REPLY) as (transport, client):
            opcode, ping_time = await wait_for(pinged)
            assert opcode == WSMsgType.PING
            assert IDLE * 0.8 <= ping_time - started < TIMEOUT / 2
            await wait_for(transport.wait_disconnected())
            assert REPLY * 0.8 <= _since(ping_time) < TIMEOUT / 2
            assert await wait_for(closed) == (
                True, WSMsgType.CLOSE, (1011).to_bytes(2, "big") + b"keepalive ping timeout")
    assert client.disconnected_calls == 1


async def test_server_keepalive_off_by_default(tcp):
    async with serve(tcp) as server:
        reader, writer = await raw_handshake(tcp, server.port)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(read_frame(reader), 0.5)
        finally:
            await close_writer(writer)


# --------------------------------------------------------------------------
# measure_roundtrip_time


@pytest.mark.parametrize("side", ["client", "server"])
async def test_measure_roundtrip_time(net, side):
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        server_listener, server_transport = await server.next_connected()
        ws, listener = (transport, client) if side == "client" else (server_transport,
                                                                      server_listener)
        rtts = await wait_for(ws.measure_roundtrip_time(5))
        assert isinstance(rtts, list) and len(rtts) == 5
        assert all(isinstance(t, float) and 0 < t < TIMEOUT for t in rtts)
        # The PONGs still reach on_ws_frame.
        pongs = [await listener.next_of(WSMsgType.PONG) for _ in range(5)]
        assert len(pongs) == 5
        assert len(await wait_for(ws.measure_roundtrip_time(1))) == 1


async def test_measure_roundtrip_time_default_is_one_round(tcp):
    async with serve(tcp) as server, connect(tcp, server.url()) as (transport, _):
        rtts = await wait_for(transport.measure_roundtrip_time())
    assert len(rtts) == 1 and rtts[0] > 0


async def test_measure_roundtrip_time_peer_vanishes(net):
    """The peer never answers and then closes: the pending measurement fails
    with WSError instead of hanging."""
    async def no_pong(reader, writer):
        await raw_accept(reader, writer)
        _, opcode, _ = await read_frame(reader, masked=True)
        assert opcode == WSMsgType.PING
        writer.close()

    async with raw_server(net, no_pong) as port, \
            connect(net, f"{net.scheme}://127.0.0.1:{port}/") as (transport, _):
        with pytest.raises(WSError):
            await wait_for(transport.measure_roundtrip_time(3))


async def test_measure_roundtrip_time_after_disconnect(tcp):
    async with serve(tcp) as server, connect(tcp, server.url()) as (transport, _):
        transport.disconnect()
        await wait_for(transport.wait_disconnected())
        with pytest.raises(WSError):
            await transport.measure_roundtrip_time(1)


async def test_roundtrip_with_raw_server(tcp):
    """The measured time covers the peer's delay in answering."""
    delay = 0.2

    async def slow_pong(reader, writer):
        await raw_accept(reader, writer)
        while True:
            _, opcode, payload = await read_frame(reader, masked=True)
            if opcode == WSMsgType.PING:
                await asyncio.sleep(delay)
                writer.write(server_frame(WSMsgType.PONG, payload))
            elif opcode == WSMsgType.CLOSE:
                return

    async with raw_server(tcp, slow_pong) as port, \
            connect(tcp, f"ws://127.0.0.1:{port}/", factory=RecordingListener) as (transport, _):
        rtts = await wait_for(transport.measure_roundtrip_time(2))
    assert all(delay * 0.8 <= t < TIMEOUT / 2 for t in rtts), rtts
