"""Keepalive strategies (``auto_ping_strategy``) and application-level pings
(``WSListener.send_user_specific_ping`` / ``is_user_specific_pong``,
``WSTransport.notify_user_specific_pong_received``), on both loops, TCP and
TLS. The plain PING keepalive is in test_keepalive.py.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from picows import WSAutoPingStrategy, WSMsgType, ws_connect, ws_create_server

from tests.support import (
    RecordingListener,
    close_writer,
    connect,
    raw_handshake,
    read_frame,
    serve,
    wait_for,
)

IDLE = 0.25
REPLY = 0.3
PING = b'{"op":"ping"}'
PONG = b'{"op":"pong"}'


class ExchangeServer(RecordingListener):
    """Answers {"op":"ping"} text frames with {"op":"pong"}, as exchanges do."""

    def __init__(self, answer: bool = True) -> None:
        super().__init__()
        self.answer = answer
        self.pings = 0

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type == WSMsgType.TEXT and frame.get_payload_as_bytes() == PING:
            self.pings += 1
            if self.answer:
                transport.send(WSMsgType.TEXT, PONG)
            return
        super().on_ws_frame(transport, frame)


class HeartbeatClient(RecordingListener):
    """Heartbeats with JSON text instead of PING frames."""

    def __init__(self) -> None:
        super().__init__()
        self.pings_sent = 0
        self.pong_checks = 0

    def send_user_specific_ping(self, transport) -> None:
        self.pings_sent += 1
        transport.send(WSMsgType.TEXT, PING)

    def is_user_specific_pong(self, frame) -> bool:
        self.pong_checks += 1
        return (frame.msg_type == WSMsgType.TEXT
                and json.loads(frame.get_payload_as_bytes()) == {"op": "pong"})


class NotifyingClient(RecordingListener):
    """Heartbeats with JSON text and reports the pong itself."""

    def send_user_specific_ping(self, transport) -> None:
        transport.send(WSMsgType.TEXT, PING)

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type == WSMsgType.TEXT and frame.get_payload_as_bytes() == PONG:
            transport.notify_user_specific_pong_received()
            return
        super().on_ws_frame(transport, frame)


async def test_periodic_pings_even_while_data_flows(net):
    """PING_PERIODICALLY pings every idle timeout, however busy the line."""
    async with serve(net, enable_auto_ping=True, auto_ping_idle_timeout=IDLE,
                     auto_ping_reply_timeout=REPLY,
                     auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY) as server:
        async with connect(net, server.url()) as (transport, client):
            pings = 0
            started = time.monotonic()
            while time.monotonic() - started < 4 * IDLE:
                transport.send(WSMsgType.BINARY, b"busy")
                await asyncio.sleep(IDLE / 5)
            for frame in client.drain():
                pings += frame.msg_type == WSMsgType.PING
            # Under PING_WHEN_IDLE this busy client would never be pinged.
            assert pings >= 2
            assert not transport.is_close_frame_sent


async def test_when_idle_is_the_default(net):
    async with serve(net, enable_auto_ping=True, auto_ping_idle_timeout=IDLE,
                     auto_ping_reply_timeout=REPLY) as server:
        async with connect(net, server.url()) as (transport, client):
            started = time.monotonic()
            while time.monotonic() - started < 4 * IDLE:
                transport.send(WSMsgType.BINARY, b"busy")
                await asyncio.sleep(IDLE / 5)
            assert not [f for f in client.drain() if f.msg_type == WSMsgType.PING]


async def test_user_specific_ping_and_pong(net):
    """Keepalive sends the listener's JSON ping; the JSON pong is consumed
    (not passed to on_ws_frame) and keeps the connection."""
    async with serve(net, lambda request: ExchangeServer()) as server:
        async with connect(net, server.url(), HeartbeatClient, enable_auto_ping=True,
                           auto_ping_idle_timeout=IDLE / 2,
                           auto_ping_reply_timeout=REPLY) as (transport, client):
            exchange = await server.next_listener()
            await asyncio.sleep(8 * IDLE)
            assert client.pings_sent >= 3
            assert exchange.pings == client.pings_sent
            # No PING frames, no pongs delivered: only what the app sends.
            assert not client.drain()
            transport.send(WSMsgType.TEXT, b"still here")
            assert (await exchange.next_frame()).payload == b"still here"
            assert not transport.is_close_frame_sent


async def test_user_specific_pong_missing_closes_with_1011(net):
    async with serve(net, lambda request: ExchangeServer(answer=False)) as server:
        async with connect(net, server.url(), HeartbeatClient, enable_auto_ping=True,
                           auto_ping_idle_timeout=IDLE,
                           auto_ping_reply_timeout=REPLY) as (transport, client):
            exchange = await server.next_listener()
            close = await exchange.next_of(WSMsgType.CLOSE, timeout=10 * (IDLE + REPLY))
            assert close.payload == (1011).to_bytes(2, "big") + b"keepalive ping timeout"
            await wait_for(transport.wait_disconnected())
            assert client.pings_sent == 1


async def test_frames_are_not_offered_as_pongs_when_no_ping_waits(net):
    """is_user_specific_pong is only asked while a ping waits: the hot path
    of a connection without keepalive does not call it."""
    async with serve(net) as server:
        async with connect(net, server.url(), HeartbeatClient) as (transport, client):
            for _ in range(5):
                transport.send(WSMsgType.TEXT, PONG)
            for _ in range(5):
                assert (await client.next_frame()).payload == PONG
            assert client.pong_checks == 0


async def test_measure_roundtrip_time_with_user_specific_pings(net):
    async with serve(net, lambda request: ExchangeServer()) as server:
        async with connect(net, server.url(), HeartbeatClient) as (transport, client):
            rtts = await wait_for(transport.measure_roundtrip_time(3))
            assert len(rtts) == 3 and all(0 < rtt < 5 for rtt in rtts)
            assert client.pings_sent == 3
            assert not client.drain()


async def test_notify_user_specific_pong_received(net):
    async with serve(net, lambda request: ExchangeServer()) as server:
        async with connect(net, server.url(), NotifyingClient, enable_auto_ping=True,
                           auto_ping_idle_timeout=IDLE / 2,
                           auto_ping_reply_timeout=REPLY) as (transport, client):
            rtts = await wait_for(transport.measure_roundtrip_time(2))
            assert len(rtts) == 2
            await asyncio.sleep(6 * IDLE)
            assert not transport.is_close_frame_sent
            assert not client.disconnected.done()


async def test_server_side_periodic_ping_to_a_silent_raw_client(net):
    """A raw client that answers nothing: PING, then CLOSE 1011, then EOF."""
    async with serve(net, enable_auto_ping=True, auto_ping_idle_timeout=IDLE,
                     auto_ping_reply_timeout=REPLY,
                     auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY) as server:
        reader, writer = await raw_handshake(net, server.port)
        try:
            assert await wait_for(read_frame(reader)) == (True, WSMsgType.PING, b"")
            assert await wait_for(read_frame(reader)) == (
                True, WSMsgType.CLOSE, (1011).to_bytes(2, "big") + b"keepalive ping timeout")
            assert await wait_for(reader.read()) == b""
        finally:
            await close_writer(writer)


@pytest.mark.parametrize("strategy", [0, 3, "idle", None])
async def test_invalid_strategy(tcp, strategy):
    with pytest.raises(ValueError, match="auto_ping_strategy"):
        await ws_create_server(RecordingListener, "127.0.0.1", 0,
                               auto_ping_strategy=strategy)
    with pytest.raises(ValueError, match="auto_ping_strategy"):
        await ws_connect(RecordingListener, "ws://127.0.0.1:9/",
                         auto_ping_strategy=strategy)
