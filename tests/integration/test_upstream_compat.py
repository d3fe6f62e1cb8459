"""Code written for the original picows (2.3) with the names of its upgrade
control, errors and transport runs unchanged (the differences are listed in
README.md: ``send``'s third positional stays ``rsv1``, header names iterate in
lowercase, stricter subprotocol checks)."""
from __future__ import annotations

import logging
from http import HTTPStatus

import pytest

from picows import (
    WSCloseCode,
    WSFrame,
    WSHandshakeError,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_connect,
)

from tests.support import serve, wait_for


# As in upstream's README and examples, written against its API.
class ServerClientListener(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        else:
            transport.send(frame.msg_type, frame.get_payload_as_bytes(), fin=frame.fin)


def listener_factory(r: WSUpgradeRequest):
    if r.path == b"/v1/ws":
        if r.headers.get("Sec-WebSocket-Protocol") == "echo.v1":
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_101_response(
                    extra_headers={"Sec-WebSocket-Protocol": "echo.v1"}),
                ServerClientListener())
        return ServerClientListener()
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(HTTPStatus.NOT_FOUND, b"404 Not Found"), None)


class ClientListener(WSListener):
    def __init__(self, request=None, response=None):
        self.request, self.response = request, response
        self.reply = None
        self.reason = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, b"Hello world", fin=True)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.reply = frame.get_payload_as_ascii_text()
            transport.send_close(WSCloseCode.OK, b"done")
        elif frame.msg_type == WSMsgType.CLOSE:
            self.reason = frame.get_close_reason()


async def test_upstream_style_server_and_client(net):
    async with serve(net, listener_factory) as server:
        url = server.url("/v1/ws")
        transport, client = await wait_for(ws_connect(
            lambda request, response: ClientListener(request, response), url,
            logger_name=logging.getLogger("upstream.client"),
            extra_headers={"Sec-WebSocket-Protocol": "echo.v1"},
            **net.client_kwargs()))
        assert client.response.status == HTTPStatus.SWITCHING_PROTOCOLS
        assert client.response.headers["Sec-WebSocket-Protocol"] == "echo.v1"
        assert transport.is_client_side and transport.is_secure == net.tls
        await wait_for(transport.wait_disconnected())
        assert transport.is_disconnected
        assert client.reply == "Hello world"
        assert client.reason == "done"
        assert transport.close_handshake.sent.code == WSCloseCode.OK
        assert transport.close_handshake.recv.reason == "done"
        assert not transport.close_handshake.recv_then_sent

        with pytest.raises(WSHandshakeError) as info:
            await wait_for(ws_connect(ClientListener, server.url("/nope"),
                                      **net.client_kwargs()))
        assert isinstance(info.value, WSInvalidStatusError)
        assert info.value.response.status == HTTPStatus.NOT_FOUND
        assert info.value.raw_body == b"404 Not Found"
