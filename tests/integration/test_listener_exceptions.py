"""Exceptions raised by listeners: disconnect_on_exception True and False,
on either side, and wait_disconnected re-raising on the client side."""
from __future__ import annotations

import pytest

from picows import WSCloseCode, WSMsgType

from tests.support import EchoListener, RecordingListener, connect, serve, wait_for


class Boom(Exception):
    pass


class RaisingOnFirstFrame(RecordingListener):
    """Raises from on_ws_frame for the first data frame, records the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = False

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY) and not self.raised:
            self.raised = True
            raise Boom("raised by on_ws_frame")
        super().on_ws_frame(transport, frame)


class RaisingEcho(EchoListener):
    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type == WSMsgType.TEXT and frame.get_payload_as_bytes() == b"raise":
            raise Boom("raised by the server's on_ws_frame")
        super().on_ws_frame(transport, frame)


class RaisingOnConnected(EchoListener):
    def on_ws_connected(self, transport) -> None:
        super().on_ws_connected(transport)
        raise Boom("raised by on_ws_connected")


async def test_client_exception_disconnects_and_is_reraised(net):
    async with serve(net) as server, connect(net, server.url(), RaisingOnFirstFrame,
                                             disconnect_on_exception=True) as (transport, client):
        server_listener = await server.next_listener()
        transport.send(WSMsgType.TEXT, b"echo me")
        with pytest.raises(Boom, match="raised by on_ws_frame"):
            await wait_for(transport.wait_disconnected())
        await wait_for(server_listener.disconnected)
        close = await server_listener.next_of(WSMsgType.CLOSE)
    assert close.close_code == WSCloseCode.INTERNAL_ERROR
    assert client.disconnected_calls == 1
    assert server_listener.disconnected_calls == 1


async def test_client_exception_kept_connected(net):
    async with serve(net) as server, connect(net, server.url(), RaisingOnFirstFrame,
                                             disconnect_on_exception=False) as (transport, client):
        transport.send(WSMsgType.TEXT, b"raises")
        transport.send(WSMsgType.TEXT, b"goes through")
        frame = await client.next_frame()
        assert frame.payload == b"goes through"
        assert client.raised
        assert not client.disconnected.done()
        transport.disconnect()
        # A clean disconnect: nothing to re-raise.
        assert await wait_for(transport.wait_disconnected()) is None
    assert client.disconnected_calls == 1


@pytest.mark.parametrize("disconnect_on_exception", [True, False])
async def test_server_exception(net, disconnect_on_exception):
    """on_ws_frame raising on the server: CLOSE 1011 and disconnect, or
    nothing at all (the next frame is still echoed)."""
    async with serve(net, lambda request: RaisingEcho(),
                     disconnect_on_exception=disconnect_on_exception) as server, \
            connect(net, server.url()) as (transport, client):
        server_listener = await server.next_listener()
        transport.send(WSMsgType.TEXT, b"raise")
        if disconnect_on_exception:
            close = await client.next_of(WSMsgType.CLOSE)
            assert close.close_code == WSCloseCode.INTERNAL_ERROR
            await wait_for(transport.wait_disconnected())
            await wait_for(server_listener.disconnected)
        else:
            transport.send(WSMsgType.TEXT, b"still echoed")
            assert (await client.next_frame()).payload == b"still echoed"
            assert not server_listener.disconnected.done()
    assert client.disconnected_calls == 1
    assert server_listener.disconnected_calls == 1


@pytest.mark.parametrize("disconnect_on_exception", [True, False])
async def test_on_ws_connected_exception_disconnects(net, disconnect_on_exception):
    """on_ws_connected raising always disconnects (API reference)."""
    async with serve(net, lambda request: RaisingOnConnected(),
                     disconnect_on_exception=disconnect_on_exception) as server, \
            connect(net, server.url()) as (transport, client):
        server_listener = await server.next_listener()
        await wait_for(transport.wait_disconnected())
        await wait_for(server_listener.disconnected)
    assert client.disconnected_calls == 1
    assert server_listener.disconnected_calls == 1
