"""Faults: the peer resets (RST) or closes (FIN) the TCP connection in every
parser state, on both sides, 100 connections at a time; and listeners that
raise from every callback.

For every connection: on_ws_disconnected exactly once (or, when the fault
comes during the handshake, ws_connect raises WSError and no listener is
made); nothing reaches the loop's exception handler (the autouse fixture of
tests/conftest.py); and the process's open file descriptors return to their
baseline (/proc/self/fd) once the server is closed.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys

import pytest

from picows import WSCloseCode, WSError, WSListener, WSMsgType, ws_connect

from tests.support import (TIMEOUT, EchoListener, RecordingListener, client_frame, client_upgrade,
    close_payload, close_writer, connect, expected_accept, head_headers, pattern, raw_handshake,
    raw_server, read_frame, serve, server_frame, switching_response, wait_for)


REPEAT = 100
# Where the fault comes: the bytes the peer sends first, by parser state.
STATES = ["handshake", "header", "length", "mask", "payload", "close-frame", "closing"]
FAULTS = ["reset", "close"]
SETTLE = 0.05  # lets the parser consume the partial input before the fault

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts descriptors in /proc/self/fd")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def fds_back_to(baseline: int) -> None:
    """Wait (bounded) until the open descriptors are back to `baseline`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while open_fds() > baseline and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert open_fds() <= baseline, f"{open_fds() - baseline} descriptors leaked"


def partial_frame(state: str, masked: bool) -> bytes:
    """A frame cut in the middle of the part `state` names."""
    mask_bit = 0x80 if masked else 0
    payload = pattern(1000)
    if state == "header":
        return bytes([0x82])
    if state == "length":
        return bytes([0x82, mask_bit | 127]) + struct.pack("!Q", len(payload))[:3]
    if state == "mask":
        assert masked, "only a client's frames have a mask"
        return bytes([0x82, 0x80 | 126]) + struct.pack("!H", len(payload)) + b"\x01\x02"
    if state == "payload":
        frame = client_frame(WSMsgType.BINARY, payload) if masked else \
            server_frame(WSMsgType.BINARY, payload)
        return frame[:len(frame) // 2]
    if state == "close-frame":
        frame = client_frame(WSMsgType.CLOSE, close_payload(1000, b"bye")) if masked else \
            server_frame(WSMsgType.CLOSE, close_payload(1000, b"bye"))
        return frame[:3]
    raise AssertionError(state)


def fault(writer: asyncio.StreamWriter, kind: str) -> None:
    if kind == "reset":
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


# --------------------------------------------------------------------------
# Server side: a picows server, raw clients that fail


class CloseOnConnect(RecordingListener):
    """The server starts the close handshake at once ("closing" state)."""

    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        transport.send_close(WSCloseCode.GOING_AWAY)


async def _faulty_client(net, port: int, state: str, kind: str) -> None:
    reader, writer = await wait_for(asyncio.open_connection(
        "127.0.0.1", port, **net.raw_kwargs()))
    try:
        request, key = client_upgrade("/closing" if state == "closing" else "/")
        if state == "handshake":
            writer.write(request[:len(request) // 2])
        else:
            writer.write(request)
            head = await wait_for(reader.readuntil(b"\r\n\r\n"))
            assert expected_accept(key).encode() in head
            if state == "closing":
                assert (await wait_for(read_frame(reader)))[1] == WSMsgType.CLOSE
            else:
                writer.write(partial_frame(state, masked=True))
        await writer.drain()
        await asyncio.sleep(SETTLE)
    finally:
        fault(writer, kind)
    await close_writer(writer)


@pytest.mark.parametrize("state", STATES)
async def test_server_survives_peer_faults(net, state):
    for kind in FAULTS:
        await _check_server_faults(net, state, kind)


async def _check_server_faults(net, state: str, kind: str) -> None:
    # Warm up once so that lazily opened descriptors (TLS, loop internals)
    # are in the baseline.
    async with serve(net) as server:
        async with connect(net, server.url()):
            pass
    baseline = open_fds()
    def route(request):
        return CloseOnConnect() if request.path == b"/closing" else EchoListener()

    async with serve(net, route, backlog=REPEAT * 2) as server:
        await wait_for(asyncio.gather(*[
            _faulty_client(net, server.port, state, kind) for _ in range(REPEAT)]))
        if state == "handshake":
            assert server.listeners == []
        else:
            assert len(server.listeners) == REPEAT
        await wait_for(asyncio.gather(*[lst.disconnected for lst in server.listeners]))
        await asyncio.sleep(0)
        # Still serving others.
        async with connect(net, server.url()) as (transport, client):
            transport.send(WSMsgType.TEXT, b"next")
            assert (await client.next_frame()).payload == b"next"
    for listener in server.listeners[:REPEAT]:
        assert listener.connected_calls == 1
        assert listener.disconnected_calls == 1, (state, kind)
    await fds_back_to(baseline)


# --------------------------------------------------------------------------
# Client side: picows clients, a raw server that fails


class CloseOnConnectClient(RecordingListener):
    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        transport.send_close(WSCloseCode.GOING_AWAY)


@contextlib.asynccontextmanager
async def faulty_server(net, state: str, kind: str):
    async def handler(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            response = switching_response(head_headers(head)[1].get("sec-websocket-key", ""))
            if state == "handshake":
                writer.write(response[:len(response) // 2])
            elif state == "closing":
                writer.write(response)
                _, opcode, _ = await wait_for(read_frame(reader, masked=True))
                assert opcode == WSMsgType.CLOSE
            else:
                writer.write(response + partial_frame(state, masked=False))
            await writer.drain()
            await asyncio.sleep(SETTLE)
        finally:
            fault(writer, kind)

    async with raw_server(net, handler, backlog=REPEAT * 2) as port:
        yield port


async def _faulty_connect(net, port: int, state: str):
    factory = CloseOnConnectClient if state == "closing" else RecordingListener
    url = f"{net.scheme}://127.0.0.1:{port}/"
    if state == "handshake":
        with pytest.raises(WSError):
            await wait_for(ws_connect(factory, url, **net.client_kwargs()))
        return None
    transport, listener = await wait_for(ws_connect(factory, url, **net.client_kwargs()))
    await wait_for(transport.wait_disconnected())
    return listener


@pytest.mark.parametrize("state", [s for s in STATES if s != "mask"])
async def test_client_survives_peer_faults(net, state):
    for kind in FAULTS:
        await _check_client_faults(net, state, kind)


async def _check_client_faults(net, state: str, kind: str) -> None:
    async with faulty_server(net, "header", "close") as port:
        await _faulty_connect(net, port, "header")
    baseline = open_fds()
    async with faulty_server(net, state, kind) as port:
        listeners = await wait_for(asyncio.gather(*[
            _faulty_connect(net, port, state) for _ in range(REPEAT)]))
        await asyncio.sleep(0)
    for listener in listeners:
        if state == "handshake":
            assert listener is None
        else:
            assert listener.connected_calls == 1
            assert listener.disconnected_calls == 1, (state, kind)
    await fds_back_to(baseline)


# --------------------------------------------------------------------------
# Listeners that raise from every callback


class Boom(Exception):
    pass


class RaisingEverywhere(WSListener):
    """Raises from every callback, and counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}
        self.disconnected = asyncio.get_running_loop().create_future()

    def _raise(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        raise Boom(name)

    def on_ws_connected(self, transport) -> None:
        self._raise("on_ws_connected")

    def on_ws_frame(self, transport, frame) -> None:
        self._raise("on_ws_frame")

    def on_ws_disconnected(self, transport) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        self._raise("on_ws_disconnected")

    def pause_writing(self) -> None:
        self._raise("pause_writing")

    def resume_writing(self) -> None:
        self._raise("resume_writing")


class RaisingAfterConnect(RaisingEverywhere):
    """on_ws_connected succeeds (and floods the peer, to get pause_writing);
    every other callback raises."""

    def on_ws_connected(self, transport) -> None:
        self.calls["on_ws_connected"] = 1
        transport.underlying_transport.set_write_buffer_limits(high=16 * 1024)
        for _ in range(64):
            transport.send(WSMsgType.BINARY, pattern(65536))


def _route(request):
    if request.path == b"/raise-everywhere":
        return RaisingEverywhere()
    if request.path == b"/raise-after-connect":
        return RaisingAfterConnect()
    return EchoListener()


async def _echo_still_works(net, server) -> None:
    async with connect(net, server.url("/")) as (transport, client):
        transport.send(WSMsgType.TEXT, b"still serving")
        assert (await client.next_frame()).payload == b"still serving"


@pytest.mark.parametrize("disconnect_on_exception", [True, False])
async def test_server_listener_raising_in_on_ws_connected(net, caplog,
                                                          disconnect_on_exception):
    """Documented: an exception from on_ws_connected disconnects (CLOSE 1011),
    whatever disconnect_on_exception says; on_ws_disconnected still runs once,
    and what it raises is logged."""
    async with serve(net, _route, disconnect_on_exception=disconnect_on_exception) as server:
        reader, writer = await raw_handshake(net, server.port, "/raise-everywhere")
        try:
            _, opcode, payload = await wait_for(read_frame(reader))
            assert opcode == WSMsgType.CLOSE
            assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.INTERNAL_ERROR
            writer.write(client_frame(WSMsgType.CLOSE, payload[:2]))
            assert await wait_for(reader.read()) == b""
        finally:
            await close_writer(writer)
        listener = server.listeners[0]
        await wait_for(listener.disconnected)
        await _echo_still_works(net, server)
    assert listener.calls == {"on_ws_connected": 1, "on_ws_disconnected": 1}
    assert "on_ws_connected raised" in caplog.text
    assert "on_ws_disconnected raised" in caplog.text


async def test_server_listener_raising_in_every_other_callback(net, caplog):
    """pause_writing / resume_writing exceptions are logged and change
    nothing; on_ws_frame's disconnects with 1011 (disconnect_on_exception)."""
    async with serve(net, _route) as server:
        reader, writer = await raw_handshake(net, server.port, "/raise-after-connect",
                                             limit=1024)
        try:
            listener = await server.next_listener()
            await wait_for(_until(lambda: listener.calls.get("pause_writing")))
            frames = []
            while len(frames) < 64:
                frames.append(await wait_for(read_frame(reader)))
            assert all(f == (True, WSMsgType.BINARY, pattern(65536)) for f in frames)
            await wait_for(_until(lambda: listener.calls.get("resume_writing")))
            writer.write(client_frame(WSMsgType.TEXT, b"raise"))
            _, opcode, payload = await wait_for(read_frame(reader))
            assert opcode == WSMsgType.CLOSE
            assert struct.unpack("!H", payload[:2])[0] == WSCloseCode.INTERNAL_ERROR
            writer.write(client_frame(WSMsgType.CLOSE, payload[:2]))
            await wait_for(listener.disconnected)
        finally:
            await close_writer(writer)
        await _echo_still_works(net, server)
    assert listener.calls == {"on_ws_connected": 1, "pause_writing": 1, "resume_writing": 1,
                              "on_ws_frame": 1, "on_ws_disconnected": 1}
    assert "pause_writing raised" in caplog.text
    assert "resume_writing raised" in caplog.text


async def test_server_listener_raising_kept_connected(net):
    """disconnect_on_exception=False: on_ws_frame raising is only logged."""
    async with serve(net, _route, disconnect_on_exception=False) as server:
        reader, writer = await raw_handshake(net, server.port, "/raise-after-connect",
                                             limit=1024)
        try:
            listener = await server.next_listener()
            for _ in range(64):
                await wait_for(read_frame(reader))
            for i in range(3):
                writer.write(client_frame(WSMsgType.TEXT, b"raise %d" % i))
            writer.write(client_frame(WSMsgType.PING, b"alive?"))
            assert await wait_for(read_frame(reader)) == (True, WSMsgType.PONG,
                                                                 b"alive?")
            assert listener.calls["on_ws_frame"] == 4  # the PING too
        finally:
            await close_writer(writer)
        await wait_for(listener.disconnected)
        await _echo_still_works(net, server)


async def test_factory_raising_is_500_and_server_goes_on(net):
    def route(request):
        if request.path == b"/broken":
            raise Boom("factory")
        return EchoListener()

    async with serve(net, route) as server:
        reader, writer = await wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, **net.raw_kwargs()))
        request, _ = client_upgrade("/broken")
        writer.write(request)
        head = await wait_for(reader.readuntil(b"\r\n\r\n"))
        await close_writer(writer)
        assert head.startswith(b"HTTP/1.1 500 "), head
        await _echo_still_works(net, server)


async def test_client_listener_raising_everywhere(net):
    """Client side: on_ws_connected raising makes the client send CLOSE 1011
    and disconnect; wait_disconnected re-raises the exception."""
    async with serve(net) as server:
        transport, listener = await wait_for(ws_connect(
            RaisingEverywhere, server.url(), **net.client_kwargs()))
        with pytest.raises(Boom, match="on_ws_connected"):
            await wait_for(transport.wait_disconnected())
        server_listener = await server.next_listener()
        close = await server_listener.next_of(WSMsgType.CLOSE)
        await wait_for(server_listener.disconnected)
        await _echo_still_works(net, server)
    assert close.close_code == WSCloseCode.INTERNAL_ERROR
    assert listener.calls == {"on_ws_connected": 1, "on_ws_disconnected": 1}


async def _until(cond, step: float = 0.01) -> None:
    while not cond():
        await asyncio.sleep(step)
